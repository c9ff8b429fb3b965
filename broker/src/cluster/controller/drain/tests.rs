use super::*;
use crate::cluster::controller::test_images::image;

fn drain(image: &mut MetadataImage, id: NodeId) {
    image
        .node_configs
        .entry(id)
        .or_default()
        .insert(crate::config::DRAINING_CONFIG.into(), "true".into());
}

#[test]
fn the_draining_replica_is_replaced_in_place_by_the_least_loaded_receiver() {
    // Broker 4 holds one replica, broker 5 none: 5 gets the move; 1 and 3 keep their slots.
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None), (5, None)],
        &[("t", vec![vec![1, 2, 3]]), ("u", vec![vec![4, 1]])],
    );
    drain(&mut image, 2);
    let moves = plan(&image, 10);
    assert_eq!(
        moves,
        vec![PlannedMove {
            topic: "t".into(),
            partition: 0,
            target: vec![1, 5, 3]
        }],
        "only t-0 has a replica on 2; 5 is the least loaded broker not already a replica"
    );
}

#[test]
fn a_receiver_on_an_unused_rack_wins_over_a_less_loaded_one_on_a_used_rack() {
    let mut image = image(
        &[
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("a")),
            (4, Some("b")),
        ],
        &[("t", vec![vec![1, 2]]), ("u", vec![vec![4, 1]])],
    );
    drain(&mut image, 2);
    // 3 (rack a, load 0) is less loaded than 4 (rack b, load 1), but 1 already covers rack a.
    assert_eq!(plan(&image, 10)[0].target, vec![1, 4]);
}

#[test]
fn draining_and_fenced_brokers_receive_nothing() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", vec![vec![1, 2]])],
    );
    drain(&mut image, 2);
    drain(&mut image, 3);
    image.brokers.get_mut(&4).unwrap().fenced = true;
    assert_eq!(plan(&image, 10), vec![], "no receiver: the move waits");
    image.brokers.get_mut(&4).unwrap().fenced = false;
    assert_eq!(plan(&image, 10)[0].target, vec![1, 4]);
}

#[test]
fn moves_are_bounded_cluster_wide_counting_the_ones_in_progress() {
    let partitions: Vec<Vec<NodeId>> = (0..6).map(|_| vec![1, 2]).collect();
    let mut image = image(&[(1, None), (2, None), (3, None)], &[("t", partitions)]);
    drain(&mut image, 2);
    assert_eq!(plan(&image, 4).len(), 4);
    let moving = reassignment::start(&image, &image.topics["t"].partitions[5], &[1, 3], false)
        .unwrap()
        .unwrap();
    image.topics.get_mut("t").unwrap().partitions[5].apply(moving);
    let moves = plan(&image, 4);
    assert_eq!(moves.len(), 3, "one move already in progress: {moves:?}");
}

#[test]
fn a_partition_under_a_user_reassignment_is_left_alone() {
    let mut image = image(
        &[(1, None), (2, None), (3, None), (4, None)],
        &[("t", vec![vec![1, 2], vec![2, 3]])],
    );
    let user = reassignment::start(&image, &image.topics["t"].partitions[0], &[2, 4], false)
        .unwrap()
        .unwrap();
    image.topics.get_mut("t").unwrap().partitions[0].apply(user);
    drain(&mut image, 2);
    let moves = plan(&image, 10);
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].partition, 1, "t-0 is the user's move: {moves:?}");
}

#[test]
fn draining_is_refused_when_a_partition_has_nowhere_to_go() {
    let mut image = image(
        &[(1, None), (2, None), (3, None)],
        &[("ok", vec![vec![1, 2]]), ("full", vec![vec![1, 2, 3]])],
    );
    let why = refusal(&image, 2).expect("RF 3 on 3 brokers cannot leave 2");
    assert!(why.contains("full-0"), "names the partition: {why}");
    image.topics.remove("full");
    assert_eq!(refusal(&image, 2), None);
    drain(&mut image, 3);
    let why = refusal(&image, 2).expect("3 is draining, only 1 is left for RF 2");
    assert!(why.contains("ok-0"), "{why}");
}

#[test]
fn leaderships_move_to_a_non_draining_isr_member_and_the_isr_is_kept() {
    let mut image = image(
        &[(1, None), (2, None), (3, None)],
        &[("t", vec![vec![2, 3, 1]])],
    );
    drain(&mut image, 2);
    drain(&mut image, 3);
    let changes = leadership_changes(&image);
    assert_eq!(changes.len(), 1, "{changes:?}");
    match &changes[0] {
        MetadataChange::ChangePartition {
            topic,
            partition,
            change,
        } => {
            assert_eq!((topic.as_str(), *partition), ("t", 0));
            assert_eq!(
                change,
                &PartitionChange {
                    leader: Some(1),
                    ..PartitionChange::default()
                },
                "1 leads (3 is draining too) and the ISR is untouched"
            );
        }
        other => panic!("expected a partition change, got {other:?}"),
    }
}
