use super::*;
use crate::cluster::{
    controller::{reassignment, test_images::image},
    image::PartitionRegistration,
};
use crate::config::{DRAINING_CONFIG, FILLING_CONFIG};

fn set(image: &mut MetadataImage, id: NodeId, flag: &str) {
    image
        .node_configs
        .entry(id)
        .or_default()
        .insert(flag.into(), "true".into());
}

/// Six partitions of replication factor 3 on brokers 1-3, placed as Kafka would (leaders rotate).
fn three_broker_topic() -> Vec<Vec<NodeId>> {
    vec![
        vec![1, 2, 3],
        vec![2, 3, 1],
        vec![3, 1, 2],
        vec![1, 3, 2],
        vec![2, 1, 3],
        vec![3, 2, 1],
    ]
}

/// The image after every planned move completed.
fn completed(mut image: MetadataImage, moves: &[PlannedMove]) -> MetadataImage {
    for m in moves {
        let topic = image.topics.get_mut(&m.topic).unwrap();
        topic.partitions[m.partition as usize] = PartitionRegistration::new(m.target.clone());
    }
    image
}

fn replicas_on(image: &MetadataImage, id: NodeId) -> usize {
    final_loads(image).0.get(&id).copied().unwrap_or(0)
}

#[test]
fn a_new_broker_gets_its_share_from_the_fullest_brokers_with_its_share_of_preferred_leaders() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", three_broker_topic())],
    );
    set(&mut image, 4, FILLING_CONFIG);
    let plan = plan(&image, 10);
    assert_eq!(
        plan.moves.len(),
        4,
        "18 replicas over 4 brokers: 4 each, rounded down"
    );
    assert!(
        plan.finished.is_empty(),
        "the moves onto 4 have not completed"
    );
    for m in &plan.moves {
        let before = &image.partition(&m.topic, m.partition).unwrap().replicas;
        let replaced: Vec<_> = before.iter().filter(|id| !m.target.contains(id)).collect();
        assert_eq!(replaced.len(), 1, "exactly one replica leaves {m:?}");
        let slot = before.iter().position(|id| id == replaced[0]).unwrap();
        assert_eq!(
            m.target[slot], 4,
            "4 takes the leaving replica's slot in {m:?}"
        );
    }
    let after = completed(image, &plan.moves);
    let loads: Vec<usize> = (1..=4).map(|id| replicas_on(&after, id)).collect();
    assert_eq!(loads.iter().sum::<usize>(), 18);
    assert!(
        loads.iter().all(|l| *l == 4 || *l == 5),
        "replica counts even out: {loads:?}"
    );
    let preferred_on_4 = final_loads(&after).1.get(&4).copied().unwrap_or(0);
    assert_eq!(
        preferred_on_4, 1,
        "six preferred leaderships over four brokers: one for 4"
    );

    let next = super::plan(&after, 10);
    assert!(
        next.moves.is_empty(),
        "nothing more to move: {:?}",
        next.moves
    );
    assert_eq!(next.finished, vec![4]);
}

#[test]
fn moves_wait_for_the_shared_budget_and_the_broker_is_not_finished_meanwhile() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", three_broker_topic())],
    );
    set(&mut image, 4, FILLING_CONFIG);
    // One user move in progress already (a reorder keeps it simple): it takes one of the three slots.
    let moving = &mut image.topics.get_mut("t").unwrap().partitions[5];
    moving.adding_replicas = vec![];
    moving.removing_replicas = vec![1];
    moving.replicas = vec![3, 2, 1];
    let first = plan(&image, 3);
    assert_eq!(first.moves.len(), 2, "three moves at most, one in progress");
    assert!(
        first.moves.iter().all(|m| m.partition != 5),
        "a moving partition is left alone"
    );
    assert!(first.finished.is_empty());
}

#[test]
fn a_broker_is_finished_only_once_nothing_is_moving_onto_it() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", three_broker_topic())],
    );
    set(&mut image, 4, FILLING_CONFIG);
    let plan_now = plan(&image, 10);
    // Start the moves as the controller would: 4 is added and catching up.
    for m in &plan_now.moves {
        let current = image.partition(&m.topic, m.partition).unwrap().clone();
        let change = reassignment::start(&image, &current, &m.target, false)
            .unwrap()
            .unwrap();
        let p = &mut image.topics.get_mut(&m.topic).unwrap().partitions[m.partition as usize];
        p.replicas = change.replicas.unwrap();
        p.adding_replicas = change.adding_replicas.unwrap_or_default();
        p.removing_replicas = change.removing_replicas.unwrap_or_default();
    }
    let during = plan(&image, 10);
    assert!(
        during.moves.is_empty(),
        "the in-flight moves already give 4 its share"
    );
    assert!(
        during.finished.is_empty(),
        "replicas are still on their way to 4"
    );
}

#[test]
fn a_move_never_puts_two_replicas_on_one_rack_where_there_were_three_racks() {
    let mut image = image(
        &[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("c")),
            (4, Some("a")),
        ],
        &[("t", three_broker_topic())],
    );
    set(&mut image, 4, FILLING_CONFIG);
    let plan = plan(&image, 10);
    assert!(!plan.moves.is_empty());
    for m in &plan.moves {
        let before = &image.partition(&m.topic, m.partition).unwrap().replicas;
        assert!(
            before.contains(&1) && !m.target.contains(&1),
            "only broker 1 (rack a) may hand a replica to 4 (rack a): {m:?}"
        );
    }
}

#[test]
fn an_even_cluster_moves_nothing_and_finishes_at_once() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", vec![vec![1, 2], vec![3, 4], vec![2, 1], vec![4, 3]])],
    );
    set(&mut image, 4, FILLING_CONFIG);
    let plan = plan(&image, 10);
    assert!(plan.moves.is_empty());
    assert_eq!(plan.finished, vec![4]);
}

#[test]
fn a_source_gives_only_while_it_holds_two_more_than_the_filling_broker() {
    // Loads 2, 2, 1 and a new broker 4: the share is 5 / 4 = 1; one move from 1 or 2, never from 3.
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", vec![vec![1, 2], vec![2, 1], vec![3]])],
    );
    set(&mut image, 4, FILLING_CONFIG);
    let plan = plan(&image, 10);
    assert_eq!(plan.moves.len(), 1, "{:?}", plan.moves);
    assert_ne!(plan.moves[0].partition, 2);
}

#[test]
fn a_draining_filling_broker_is_finished_and_a_fenced_one_waits() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None), (5, None)],
        &[("t", three_broker_topic())],
    );
    set(&mut image, 4, FILLING_CONFIG);
    set(&mut image, 4, DRAINING_CONFIG);
    set(&mut image, 5, FILLING_CONFIG);
    image.brokers.get_mut(&5).unwrap().fenced = true;
    let plan = plan(&image, 10);
    assert!(plan.moves.is_empty(), "{:?}", plan.moves);
    assert_eq!(plan.finished, vec![4]);
}

#[test]
fn flag_change_keeps_the_other_per_broker_configs() {
    let mut image = image(&[(1, None)], &[]);
    image
        .node_configs
        .entry(1)
        .or_default()
        .insert("leader.replication.throttled.rate".into(), "100".into());
    let on = flag_change(&image, 1, FILLING_CONFIG, true);
    let MetadataChange::SetNodeConfigs { id: 1, configs } = on else {
        panic!("{on:?}");
    };
    assert_eq!(configs.len(), 2);
    image.node_configs.insert(1, configs);
    let off = flag_change(&image, 1, FILLING_CONFIG, false);
    let MetadataChange::SetNodeConfigs { configs, .. } = off else {
        panic!("{off:?}");
    };
    assert_eq!(
        configs.keys().collect::<Vec<_>>(),
        vec!["leader.replication.throttled.rate"]
    );
}
