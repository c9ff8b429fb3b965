use super::*;
use crate::crd::QuorumMode;

fn view(replicas_on: &[(i32, i32)], largest: usize) -> ClusterView {
    ClusterView {
        replicas_on: replicas_on.iter().copied().collect(),
        largest_replication_factor: Some(("orders".to_owned(), largest)),
        disks: BTreeMap::new(),
        offsets_topic: None,
    }
}

const GIB: u64 = 1 << 30;

/// Limits with the given `min.insync.replicas` and the default free-space share.
fn min_isr(min_insync_replicas: i32) -> ScaleLimits {
    ScaleLimits {
        min_insync_replicas,
        free_space_percent: 10,
    }
}

/// A broker disk of `total_gib` holding `held_gib` of partition data with `usable_gib` free.
fn disk(held_gib: u64, total_gib: u64, usable_gib: u64) -> LogDirUsage {
    LogDirUsage {
        held_bytes: held_gib * GIB,
        total_bytes: Some(total_gib * GIB),
        usable_bytes: Some(usable_gib * GIB),
    }
}

#[test]
fn a_scale_down_whose_data_does_not_fit_on_the_remaining_disks_is_refused() {
    let mut tight = view(&[(0, 4), (1, 4), (2, 4), (3, 4)], 3);
    // 31 GiB leave; the three that stay have 12 GiB free each, 2 GiB of it headroom: 3 x 10 GiB.
    tight.disks = [
        (0, disk(8, 20, 12)),
        (1, disk(8, 20, 12)),
        (2, disk(8, 20, 12)),
        (3, disk(31, 40, 9)),
    ]
    .into();
    let blocked = static_plan(3, Some(4), &[], Ok(&tight), min_isr(2));
    let refusal = blocked.blocked.expect("blocked");
    assert_eq!(refusal.blocked_by().reason(), "NotEnoughDisk");
    assert_eq!(
        refusal.by,
        BlockedBy::NotEnoughDisk {
            free_space_percent: 10,
            leaving: vec![3],
            needed_bytes: 31 * GIB,
            available_bytes: 30 * GIB,
        }
    );
    assert!(blocked.drain.is_empty());
    assert_eq!(blocked.topology.brokers, 4, "nothing is removed");
    assert!(refusal.to_string().contains("larger volumes"), "{refusal}");

    // Asked to keep nothing free, the same three brokers have room for the 31 GiB.
    let no_reserve = ScaleLimits {
        free_space_percent: 0,
        ..min_isr(2)
    };
    let unreserved = static_plan(3, Some(4), &[], Ok(&tight), no_reserve);
    assert_eq!(unreserved.blocked, None);
    assert_eq!(unreserved.drain, [3]);

    // 30 GiB fit.
    tight.disks.insert(3, disk(30, 40, 10));
    let fits = static_plan(3, Some(4), &[], Ok(&tight), min_isr(2));
    assert_eq!(fits.blocked, None);
    assert_eq!(fits.drain, [3]);

    // Once draining, the check is not made again: the data is already on its way.
    tight.disks.insert(3, disk(40, 40, 0));
    let draining = static_plan(3, Some(4), &fits.removing, Ok(&tight), min_isr(2));
    assert_eq!(draining.blocked, None);
    assert_eq!(draining.drain, [3]);
}

#[test]
fn a_disk_that_did_not_answer_leaves_the_space_unchecked() {
    let mut unknown = view(&[(0, 4), (1, 4), (2, 4), (3, 4)], 3);
    unknown.disks = [
        (0, disk(8, 20, 1)),
        (1, disk(8, 20, 1)),
        (3, disk(30, 40, 10)),
    ]
    .into();
    assert_eq!(
        static_plan(3, Some(4), &[], Ok(&unknown), min_isr(2)).blocked,
        None
    );
    unknown.disks.insert(
        2,
        LogDirUsage {
            held_bytes: 0,
            total_bytes: None,
            usable_bytes: None,
        },
    );
    assert_eq!(
        static_plan(3, Some(4), &[], Ok(&unknown), min_isr(2)).blocked,
        None
    );
}

fn removing(id: i32, state: RemovalState, replicas: i32) -> RemovingBroker {
    RemovingBroker {
        id,
        state,
        replicas,
    }
}

fn three_voters() -> Voters {
    Voters::of_new_cluster(3)
}

/// [`plan`] for a cluster created with three brokers by an operator that formed static quorums.
fn static_plan(
    requested: i32,
    running: Option<i32>,
    previous: &[RemovingBroker],
    view: Result<&ClusterView, &str>,
    limits: ScaleLimits,
) -> ScalePlan {
    plan(
        requested,
        running,
        three_voters(),
        QuorumMode::Static,
        previous,
        view,
        limits,
    )
}

#[test]
fn scaling_up_or_creating_follows_the_spec_and_reads_nothing() {
    for running in [None, Some(3), Some(5)] {
        assert!(!needs_cluster_view(5, running, &[]));
        let plan = static_plan(5, running, &[], Err("not read"), min_isr(1));
        assert_eq!(plan.blocked, None, "running {running:?}");
        assert_eq!(plan.topology.brokers, 5);
        assert!(plan.drain.is_empty() && plan.undrain.is_empty() && plan.unregister.is_empty());
    }
}

#[test]
fn a_scale_down_drains_the_highest_ids_and_keeps_their_pods_until_they_hold_nothing() {
    assert!(needs_cluster_view(3, Some(5), &[]));
    let holding = view(&[(0, 4), (1, 4), (2, 4), (3, 2), (4, 0)], 3);
    let first = static_plan(3, Some(5), &[], Ok(&holding), min_isr(2));
    assert_eq!(first.blocked, None);
    assert_eq!(first.topology.brokers, 5, "broker 3 still holds replicas");
    assert_eq!(first.drain, [4, 3]);
    assert_eq!(
        first.removing,
        [
            removing(4, RemovalState::Drained, 0),
            removing(3, RemovalState::Draining, 2)
        ]
    );

    let empty = view(&[(0, 5), (1, 5), (2, 4)], 3);
    let second = static_plan(3, Some(5), &first.removing, Ok(&empty), min_isr(2));
    assert_eq!(
        second.topology.brokers, 3,
        "both drained: the StatefulSet shrinks"
    );
    assert!(second
        .removing
        .iter()
        .all(|b| b.state == RemovalState::Drained));

    // The next reconcile sees three pods: the drained brokers are unregistered.
    assert!(needs_cluster_view(3, Some(3), &second.removing));
    let third = static_plan(3, Some(3), &second.removing, Ok(&empty), min_isr(2));
    assert_eq!(third.topology.brokers, 3);
    assert_eq!(third.unregister, [4, 3]);
    assert!(third.drain.is_empty());

    let done = [
        removing(4, RemovalState::Removed, 0),
        removing(3, RemovalState::Removed, 0),
    ];
    assert!(!needs_cluster_view(3, Some(3), &done));
    let settled = static_plan(3, Some(3), &done, Err("not read"), min_isr(2));
    assert!(settled.unregister.is_empty());
    assert_eq!(
        settled.removing, done,
        "the record stays until the next scale"
    );
}

#[test]
fn raising_the_spec_again_cancels_the_drain_of_the_brokers_that_stay() {
    let previous = [
        removing(4, RemovalState::Draining, 3),
        removing(3, RemovalState::Draining, 1),
    ];
    let holding = view(&[(3, 1), (4, 3)], 3);
    let back_to_four = static_plan(4, Some(5), &previous, Ok(&holding), min_isr(1));
    assert_eq!(back_to_four.undrain, [3]);
    assert_eq!(back_to_four.drain, [4]);
    assert_eq!(back_to_four.topology.brokers, 5);

    let back_to_five = static_plan(5, Some(5), &previous, Ok(&holding), min_isr(1));
    assert_eq!(back_to_five.undrain, [4, 3]);
    assert!(back_to_five.removing.is_empty() && back_to_five.drain.is_empty());
    assert_eq!(back_to_five.topology.brokers, 5);
}

#[test]
fn a_topic_the_remaining_brokers_cannot_hold_blocks_and_undrains() {
    let previous = [removing(3, RemovalState::Draining, 2)];
    let plan = static_plan(3, Some(4), &previous, Ok(&view(&[(3, 2)], 4)), min_isr(1));
    let blocked = plan.blocked.expect("blocked");
    assert_eq!(blocked.blocked_by().reason(), "ReplicationFactorTooLarge");
    let message = blocked.to_string();
    assert!(
        message.contains("topic orders has replication factor 4")
            && message.contains("keep at least 4 brokers")
            && message.contains("nothing is removed"),
        "{message}"
    );
    assert_eq!(plan.topology.brokers, 4);
    assert!(plan.drain.is_empty());
    assert_eq!(
        plan.undrain,
        [3],
        "a drain started before the topic grew is called off"
    );
}

#[test]
fn too_few_brokers_for_min_insync_replicas_blocks() {
    let plan = static_plan(3, Some(4), &[], Ok(&view(&[], 2)), min_isr(4));
    let blocked = plan.blocked.expect("blocked");
    assert_eq!(blocked.blocked_by().reason(), "MinInsyncReplicas");
    assert!(
        blocked.to_string().contains("min.insync.replicas is 4"),
        "{blocked}"
    );
    assert_eq!(plan.topology.brokers, 4);
}

#[test]
fn unreadable_metadata_changes_nothing() {
    let previous = [removing(3, RemovalState::Draining, 2)];
    let plan = static_plan(3, Some(4), &previous, Err("connection refused"), min_isr(1));
    assert_eq!(
        plan.blocked.as_ref().map(|b| b.blocked_by().reason()),
        Some("ClusterUnreachable")
    );
    assert_eq!(plan.topology.brokers, 4);
    assert!(plan.undrain.is_empty() && plan.drain.is_empty());
    assert_eq!(
        plan.removing, previous,
        "the record is kept for the next try"
    );
}

#[test]
fn scaling_below_the_voters_is_refused_for_the_voters() {
    // Created with three brokers, scaled to five, then asked for two: voter 2 would go.
    let plan = static_plan(2, Some(5), &[], Ok(&view(&[], 1)), min_isr(1));
    assert_eq!(plan.topology.brokers, 5);
    let blocked = plan.blocked.expect("blocked");
    assert_eq!(blocked.blocked_by().reason(), "VoterRemovalNotSupported");
    let message = blocked.to_string();
    assert!(
        message.contains("brokers {0, 1, 2} are the voters")
            && message.contains("cannot go below 3"),
        "{message}"
    );
}

#[test]
fn a_dynamic_quorum_scales_below_its_voters_once_they_have_left() {
    // Three brokers, all voters, asked for one: allowed, but brokers 2 and 1 stay Draining while they vote,
    // however empty, so the StatefulSet keeps them until their voters are removed.
    let empty = view(&[], 1);
    let voting = plan(
        1,
        Some(3),
        three_voters(),
        QuorumMode::Formed,
        &[],
        Ok(&empty),
        min_isr(1),
    );
    assert_eq!(voting.blocked, None);
    assert_eq!(voting.drain, [2, 1]);
    assert_eq!(voting.topology.brokers, 3);
    assert!(voting
        .removing
        .iter()
        .all(|b| b.state == RemovalState::Draining && b.replicas == 0));

    // Voter 2 removed: broker 2 is done, broker 1 still votes.
    let two_voters = Voters::from_ids([0, 1]).expect("voters");
    let one_left = plan(
        1,
        Some(3),
        two_voters,
        QuorumMode::Formed,
        &voting.removing,
        Ok(&empty),
        min_isr(1),
    );
    assert_eq!(
        one_left.removing,
        [
            removing(2, RemovalState::Drained, 0),
            removing(1, RemovalState::Draining, 0)
        ]
    );
    assert_eq!(one_left.topology.brokers, 3);

    // Only broker 0 votes: the StatefulSet shrinks to it.
    let alone = Voters::from_ids([0]).expect("voters");
    let shrunk = plan(
        1,
        Some(3),
        alone,
        QuorumMode::Formed,
        &one_left.removing,
        Ok(&empty),
        min_isr(1),
    );
    assert_eq!(shrunk.topology.brokers, 1);
    assert!(shrunk
        .removing
        .iter()
        .all(|b| b.state == RemovalState::Drained));
}

#[test]
fn the_voters_run_even_when_the_statefulset_is_gone() {
    // The StatefulSet was deleted (say with --cascade=orphan) and the spec shrunk meanwhile: the voters' pods are
    // still built.
    let plan = static_plan(1, None, &[], Err("not read"), min_isr(1));
    assert_eq!(plan.topology.brokers, 3);
    assert_eq!(
        plan.blocked.map(|b| b.blocked_by().reason()),
        Some("VoterRemovalNotSupported")
    );
}

#[test]
fn the_view_counts_replicas_and_finds_the_largest_factor() {
    use crate::kafka_admin::PartitionPlacement;
    let placement = |replicas: Vec<i32>| PartitionPlacement {
        leader: replicas[0],
        replicas,
        ..PartitionPlacement::default()
    };
    let metadata = ClusterMetadata {
        cluster_id: None,
        controller_id: 0,
        brokers: BTreeMap::new(),
        topics: [
            (
                "a".to_owned(),
                [(0, placement(vec![0, 1]))].into_iter().collect(),
            ),
            (
                "b".to_owned(),
                [(0, placement(vec![1, 2, 3])), (1, placement(vec![2, 3, 0]))]
                    .into_iter()
                    .collect(),
            ),
        ]
        .into_iter()
        .collect(),
    };
    let view = ClusterView::of(&metadata);
    assert_eq!(
        view.replicas_on,
        [(0, 2), (1, 2), (2, 2), (3, 2)].into_iter().collect()
    );
    assert_eq!(view.largest_replication_factor, Some(("b".to_owned(), 3)));
}

#[test]
fn the_disks_are_read_only_before_a_scale_down_starts() {
    assert!(!needs_disk_view(3, Some(3), &[]));
    assert!(!needs_disk_view(5, Some(3), &[]));
    assert!(needs_disk_view(3, Some(4), &[]));
    assert!(!needs_disk_view(
        3,
        Some(4),
        &[removing(3, RemovalState::Draining, 2)]
    ));
    // A removal of an earlier scale-down, finished, does not count.
    assert!(needs_disk_view(
        3,
        Some(4),
        &[removing(4, RemovalState::Removed, 0)]
    ));
}

#[test]
fn a_partition_being_moved_counts_the_replicas_it_keeps() {
    use crate::kafka_admin::PartitionPlacement;
    // Moving from [1, 2, 3] to [1, 2, 4]: Metadata lists all four until the move completes.
    let moving = PartitionPlacement {
        leader: 1,
        replicas: vec![1, 2, 4, 3],
        removing: vec![3],
        ..PartitionPlacement::default()
    };
    let metadata = ClusterMetadata {
        topics: [("ledger".to_owned(), [(0, moving)].into_iter().collect())]
            .into_iter()
            .collect(),
        ..ClusterMetadata::default()
    };
    let view = ClusterView::of(&metadata);
    assert_eq!(
        view.largest_replication_factor,
        Some(("ledger".to_owned(), 3)),
        "a three-broker cluster can hold it"
    );
    assert_eq!(
        view.replicas_on,
        [(1, 1), (2, 1), (3, 1), (4, 1)].into_iter().collect(),
        "the leaving broker still holds its replica"
    );
}

#[test]
fn the_offsets_topic_is_lowered_before_anything_is_drained() {
    use crate::cluster::offsets_topic::OffsetsTopicView;
    let with_offsets = |replication_factor, moving| ClusterView {
        offsets_topic: Some(OffsetsTopicView {
            replication_factor,
            moving,
        }),
        ..view(&[(0, 3), (1, 3), (2, 3)], 1)
    };
    // Scaling 3 -> 1 with the offsets topic at RF 3: not blocked, but nothing drained yet.
    let first = static_plan(3, Some(5), &[], Ok(&with_offsets(5, false)), min_isr(1));
    assert_eq!(first.blocked, None, "the offsets topic blocks nothing");
    assert!(first.offsets_topic_first);
    assert!(first.drain.is_empty() && first.removing.is_empty());
    assert_eq!(first.topology.brokers, 5);
    // Lowered, but its move still runs: still waiting.
    let moving = static_plan(3, Some(5), &[], Ok(&with_offsets(3, true)), min_isr(1));
    assert!(moving.offsets_topic_first && moving.drain.is_empty());
    // Settled at what stays: the drain starts.
    let settled = static_plan(3, Some(5), &[], Ok(&with_offsets(3, false)), min_isr(1));
    assert!(!settled.offsets_topic_first);
    assert_eq!(settled.drain, [4, 3]);
    // A user topic of the same factor still blocks.
    let user = static_plan(3, Some(5), &[], Ok(&view(&[(0, 3)], 5)), min_isr(1));
    assert_eq!(
        user.blocked.map(|b| b.blocked_by().reason()),
        Some("ReplicationFactorTooLarge")
    );
}
