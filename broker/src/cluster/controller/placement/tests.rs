use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::cluster::image::BrokerRegistration;

/// A broker for a test image: id, rack, fenced.
type Spec = (NodeId, Option<String>, bool);

fn image(brokers: &[Spec]) -> MetadataImage {
    MetadataImage {
        brokers: brokers
            .iter()
            .map(|(id, rack, fenced)| {
                let registration = BrokerRegistration {
                    rack: rack.clone(),
                    fenced: *fenced,
                    ..BrokerRegistration::bare(*id, 0)
                };
                (*id, registration)
            })
            .collect(),
        ..MetadataImage::default()
    }
}

fn racked(brokers: &[(NodeId, &str)]) -> MetadataImage {
    let specs: Vec<Spec> = brokers
        .iter()
        .map(|(id, rack)| (*id, Some((*rack).to_owned()), false))
        .collect();
    image(&specs)
}

fn plain(ids: &[NodeId]) -> MetadataImage {
    let specs: Vec<Spec> = ids.iter().map(|id| (*id, None, false)).collect();
    image(&specs)
}

fn place(image: &MetadataImage, topic: &str, count: i32, factor: i16) -> Vec<Vec<NodeId>> {
    place_partitions(image, topic, &[], count, factor)
        .unwrap()
        .into_iter()
        .map(|p| p.replicas)
        .collect()
}

fn counts<'a>(ids: impl Iterator<Item = &'a NodeId>) -> BTreeMap<NodeId, usize> {
    let mut counts = BTreeMap::new();
    for id in ids {
        *counts.entry(*id).or_insert(0) += 1;
    }
    counts
}

fn leader_counts(placed: &[Vec<NodeId>]) -> BTreeMap<NodeId, usize> {
    counts(placed.iter().map(|r| &r[0]))
}

fn replica_counts(placed: &[Vec<NodeId>]) -> BTreeMap<NodeId, usize> {
    counts(placed.iter().flatten())
}

#[test]
fn a_new_partition_is_led_by_its_first_replica_with_every_replica_in_sync() {
    let placed = place_partitions(&plain(&[1, 2, 3]), "orders", &[], 3, 3).unwrap();
    for p in placed {
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!(p.isr, p.replicas);
    }
}

#[test]
fn without_racks_leaders_and_replicas_are_even_and_pairs_vary() {
    let placed = place(&plain(&[1, 2, 3, 4]), "orders", 8, 2);
    assert_eq!(leader_counts(&placed).values().collect::<Vec<_>>(), [&2; 4]);
    assert_eq!(
        replica_counts(&placed).values().collect::<Vec<_>>(),
        [&4; 4]
    );
    // The follower shift moves after each pass over the brokers, so a leader does not always get the
    // same follower (round-robin from the leader would pair 1 with 2 every time).
    let followers_of: BTreeMap<NodeId, BTreeSet<NodeId>> =
        placed.iter().fold(BTreeMap::new(), |mut acc, r| {
            acc.entry(r[0]).or_default().insert(r[1]);
            acc
        });
    for (leader, followers) in followers_of {
        assert_eq!(
            followers.len(),
            2,
            "leader {leader} is always paired with {followers:?} in {placed:?}"
        );
    }
}

#[test]
fn different_topics_start_on_different_brokers() {
    let image = plain(&[1, 2, 3]);
    let first_leaders: BTreeSet<NodeId> = (0..12)
        .map(|i| place(&image, &format!("topic-{i}"), 1, 1)[0][0])
        .collect();
    assert_eq!(
        first_leaders,
        BTreeSet::from([1, 2, 3]),
        "partition 0 of twelve topics should be led by every broker"
    );
    assert_eq!(
        place(&image, "orders", 6, 2),
        place(&image, "orders", 6, 2),
        "placement is reproducible"
    );
}

#[test]
fn replicas_go_to_distinct_racks_and_leaders_rotate_over_racks() {
    let image = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
    let rack = |id: &NodeId| (*id + 1) / 2;
    let placed = place(&image, "orders", 6, 3);
    for replicas in &placed {
        let racks: BTreeSet<_> = replicas.iter().map(rack).collect();
        assert_eq!(racks.len(), 3, "{replicas:?} should span racks a, b and c");
    }
    let mut leader_racks = BTreeMap::new();
    for replicas in &placed {
        *leader_racks.entry(rack(&replicas[0])).or_insert(0) += 1;
    }
    assert_eq!(leader_racks.values().collect::<Vec<_>>(), [&2; 3]);
}

#[test]
fn a_small_rack_gets_a_replica_of_every_partition_before_a_rack_gets_two() {
    // Kafka ranks rack diversity above broker balance: the lone broker of rack b joins every partition.
    let image = racked(&[(1, "a"), (2, "a"), (3, "a"), (4, "b")]);
    for replicas in place(&image, "orders", 8, 2) {
        assert!(
            replicas.contains(&4),
            "{replicas:?} has no replica on rack b"
        );
    }
}

#[test]
fn brokers_without_a_rack_count_as_one_more_rack_as_in_kraft() {
    let image = image(&[
        (1, Some("a".into()), false),
        (2, Some("a".into()), false),
        (3, None, false),
        (4, None, false),
    ]);
    for replicas in place(&image, "orders", 4, 2) {
        let racked = replicas.iter().filter(|id| **id <= 2).count();
        assert_eq!(
            racked, 1,
            "{replicas:?} should have one replica on rack a and one off it"
        );
    }
}

#[test]
fn fenced_brokers_get_nothing_and_bound_the_replication_factor() {
    let image = image(&[(1, None, false), (2, None, true), (3, None, false)]);
    let placed = place(&image, "orders", 10, 2);
    assert!(placed.iter().flatten().all(|id| *id != 2), "{placed:?}");
    let err = place_partitions(&image, "orders", &[], 1, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "replication factor 3 is larger than the 2 available brokers"
    );
    assert!(matches!(
        place_partitions(&image, "orders", &[], 1, 0),
        Err(TopicError::ReplicationFactorTooSmall(0))
    ));
}

#[test]
fn growing_a_topic_after_a_broker_joined_keeps_partition_zero_leader_as_the_start() {
    let before = place_partitions(&plain(&[1, 2, 3]), "orders", &[], 3, 1).unwrap();
    let grown = place_partitions(&plain(&[1, 2, 3, 4]), "orders", &before, 5, 1).unwrap();
    let leaders: Vec<NodeId> = before.iter().chain(&grown).map(|p| p.leader).collect();
    // Partition p is led by the broker p places after partition 0's leader in the current broker list.
    let anchor = [1, 2, 3, 4]
        .iter()
        .position(|id| *id == leaders[0])
        .unwrap();
    for (index, leader) in leaders.iter().enumerate().skip(3) {
        assert_eq!(
            *leader,
            [1, 2, 3, 4][(anchor + index) % 4],
            "leaders {leaders:?}"
        );
    }
}

/// Brokers for a property test: 1 to 10 distinct ids, each with a rack drawn from up to four (or none),
/// a few of them fenced.
fn cluster_strategy() -> impl Strategy<Value = Vec<Spec>> {
    (
        proptest::collection::btree_set(0..40i32, 1..=10),
        0..=4usize,
        any::<u64>(),
    )
        .prop_map(|(ids, racks, bits)| {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| {
                    let draw = bits.rotate_left(u32::try_from(i * 7).unwrap());
                    let rack = match racks {
                        0 => None,
                        // Some brokers without a rack: the mixed case.
                        4 if draw % 5 == 0 => None,
                        n => Some(format!("rack-{}", (draw >> 8) % n as u64)),
                    };
                    (id, rack, i > 0 && draw % 7 == 0)
                })
                .collect()
        })
}

/// A partition's replicas fill racks evenly: no rack holds two more than another rack that still had a
/// free broker. With one replica per rack at most, that is "every rack is used before one is repeated".
fn assert_racks_filled_evenly(brokers: &[Spec], replicas: &[NodeId]) {
    let live: Vec<&Spec> = brokers.iter().filter(|b| !b.2).collect();
    let rack_of = |id: &NodeId| {
        live.iter()
            .find(|b| b.0 == *id)
            .map(|b| b.1.clone())
            .unwrap()
    };
    let mut sizes: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for b in &live {
        *sizes.entry(b.1.clone()).or_default() += 1;
    }
    let mut used: BTreeMap<Option<String>, usize> = sizes.keys().map(|r| (r.clone(), 0)).collect();
    for id in replicas {
        *used.get_mut(&rack_of(id)).unwrap() += 1;
    }
    for (rack, n) in &used {
        for (other, m) in &used {
            assert!(
                *n <= m + 1 || *m == sizes[other],
                "{replicas:?}: rack {rack:?} has {n} replicas while {other:?} has {m} of {} brokers",
                sizes[other]
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// For every cluster, partition count and replication factor: RF distinct live replicas per partition,
    /// racks filled evenly, and leader counts of any two live brokers differing by at most one (so with a
    /// multiple of the broker count, every broker leads exactly partitions / brokers).
    #[test]
    fn every_placement_is_valid_rack_diverse_and_leader_balanced(
        brokers in cluster_strategy(),
        partitions in 1..=60i32,
        factor_pick in 0..5usize,
        topic in "[a-z]{1,12}",
    ) {
        let live: Vec<NodeId> = brokers.iter().filter(|b| !b.2).map(|b| b.0).collect();
        let factor = 1 + factor_pick % live.len().min(5);
        let image = image(&brokers);
        let placed = place(&image, &topic, partitions, i16::try_from(factor).unwrap());
        prop_assert_eq!(placed.len(), usize::try_from(partitions).unwrap());
        for replicas in &placed {
            prop_assert_eq!(replicas.len(), factor);
            prop_assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), factor, "duplicates in {:?}", replicas);
            prop_assert!(replicas.iter().all(|id| live.contains(id)), "{:?} not all live in {:?}", replicas, live);
            assert_racks_filled_evenly(&brokers, replicas);
        }
        let leaders = leader_counts(&placed);
        let counts: Vec<usize> = live.iter().map(|id| leaders.get(id).copied().unwrap_or(0)).collect();
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        prop_assert!(max - min <= 1, "leader counts {:?} over {:?}", leaders, live);
    }

    /// When every rack has the same number of live brokers (no racks at all is one rack) and the partition
    /// count is a multiple k of the broker count, every broker holds exactly k * RF replicas and leads k:
    /// the case Kafka's assignor guarantees balance for.
    #[test]
    fn even_racks_give_exactly_balanced_replicas(
        racks in 1..=4usize,
        per_rack in 1..=4usize,
        multiple in 1..=5usize,
        factor_pick in 0..6usize,
        topic in "[a-z]{1,12}",
        first_id in 0..20i32,
        with_racks in any::<bool>(),
    ) {
        let brokers: Vec<Spec> = (0..racks * per_rack)
            .map(|i| {
                let rack = with_racks.then(|| format!("r{}", i % racks));
                (first_id + i32::try_from(i).unwrap(), rack, false)
            })
            .collect();
        let count = brokers.len();
        let factor = 1 + factor_pick % count.min(6);
        let partitions = multiple * count;
        let placed = place(&image(&brokers), &topic, i32::try_from(partitions).unwrap(), i16::try_from(factor).unwrap());
        let replicas = replica_counts(&placed);
        let leaders = leader_counts(&placed);
        for (id, _, _) in &brokers {
            prop_assert_eq!(replicas.get(id).copied().unwrap_or(0), multiple * factor, "replicas of {} in {:?}", id, placed);
            prop_assert_eq!(leaders.get(id).copied().unwrap_or(0), multiple, "leaders of {} in {:?}", id, placed);
        }
    }

    /// Growing a topic (CreatePartitions) on an unchanged cluster places the new partitions exactly as if
    /// the topic had been created with the final count, so the totals keep the balance above.
    #[test]
    fn growing_a_topic_continues_its_pattern(
        brokers in cluster_strategy(),
        first in 1..=30i32,
        added in 1..=30i32,
        factor_pick in 0..5usize,
        topic in "[a-z]{1,12}",
    ) {
        let live = brokers.iter().filter(|b| !b.2).count();
        let factor = i16::try_from(1 + factor_pick % live.min(5)).unwrap();
        let image = image(&brokers);
        let existing = place_partitions(&image, &topic, &[], first, factor).unwrap();
        let grown = place_partitions(&image, &topic, &existing, added, factor).unwrap();
        let at_once = place_partitions(&image, &topic, &[], first + added, factor).unwrap();
        let continued: Vec<_> = existing.into_iter().chain(grown).collect();
        prop_assert_eq!(continued, at_once);
    }
}
