#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use openraft::{impls::leader_id_adv::LeaderId, type_config::alias::EntryOf, LogId, Membership};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::cluster::{
    image::{BrokerRegistration, PartitionChange, PartitionRegistration, TopicMetadata},
    raft::types::QuorumNode,
};

type Entry = EntryOf<TypeConfig>;

/// Records every image the state machine hands to its listener, in order.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<(u64, Arc<MetadataImage>)>>,
}

impl CommittedImageListener for Recorder {
    fn committed(&self, index: u64, image: Arc<MetadataImage>) {
        self.seen.lock().unwrap().push((index, image));
    }
}

impl Recorder {
    fn indexes(&self) -> Vec<u64> {
        self.seen.lock().unwrap().iter().map(|(i, _)| *i).collect()
    }

    fn last(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.seen.lock().unwrap().last().unwrap().1)
    }
}

fn initial() -> MetadataImage {
    MetadataImage {
        cluster_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        next_producer_id: 1000,
        ..MetadataImage::default()
    }
}

fn open(
    dir: &Path,
) -> (
    MetadataStateMachine,
    watch::Receiver<AppliedImage>,
    Arc<Recorder>,
) {
    let recorder = Arc::new(Recorder::default());
    let listener: Arc<dyn CommittedImageListener> = recorder.clone();
    let (sm, rx) = MetadataStateMachine::open(dir, initial(), listener).unwrap();
    (sm, rx, recorder)
}

fn log_id(index: u64) -> LogId<LeaderId<u64, u64>> {
    LogId::new(
        LeaderId {
            term: 1,
            node_id: 1,
        },
        index,
    )
}

fn normal(index: u64, changes: Vec<MetadataChange>) -> Entry {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(MetadataCommand { changes }),
    }
}

fn membership(index: u64) -> Entry {
    let voters = BTreeSet::from([1u64]);
    let nodes = BTreeMap::from([(1u64, QuorumNode::default())]);
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], nodes).unwrap()),
    }
}

async fn apply(sm: &mut MetadataStateMachine, entries: Vec<Entry>) {
    let stream = futures_util::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
    sm.apply(stream).await.unwrap();
}

fn topic(name: &str, partitions: usize, id: u128) -> TopicMetadata {
    TopicMetadata {
        name: name.to_owned(),
        id: Uuid::from_u128(id),
        partitions: vec![PartitionRegistration::new(vec![1]); partitions],
        replication_factor: 1,
        configs: BTreeMap::new(),
    }
}

fn broker(id: i32) -> BrokerRegistration {
    BrokerRegistration::bare(id, -1)
}

#[tokio::test]
async fn a_rejected_command_changes_nothing_and_the_rest_applies() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, rx, recorder) = open(dir.path());
    apply(
        &mut sm,
        vec![
            membership(0),
            normal(1, vec![MetadataChange::CreateTopic(topic("a", 1, 1))]),
            // The second change fails, so the first must not stay applied.
            normal(
                2,
                vec![
                    MetadataChange::CreateTopic(topic("b", 1, 2)),
                    MetadataChange::DeleteTopic { name: "zzz".into() },
                ],
            ),
            normal(3, vec![MetadataChange::AllocateProducerIds { count: 10 }]),
        ],
    )
    .await;
    let current = rx.borrow().clone();
    assert_eq!(current.applied_index, Some(3));
    assert_eq!(
        current.image.topics.keys().collect::<Vec<_>>(),
        ["a"],
        "topic b of the rejected entry must not exist"
    );
    assert_eq!(current.image.next_producer_id, 1010);
    assert_eq!(
        recorder.indexes(),
        [0, 1, 3],
        "the listener gets the opened image and each changed one, not the rejected entry"
    );
    let (applied, stored) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(3)));
    assert_eq!(stored.log_id(), &Some(log_id(0)));

    let err = apply_command(
        &current.image,
        4,
        MetadataCommand {
            changes: vec![MetadataChange::CreateTopic(topic("a", 1, 9))],
        },
    )
    .unwrap_err();
    assert_eq!(
        Rejection::from_metadata_error(&err),
        Rejection::TopicExists("a".into())
    );
}

#[tokio::test]
async fn a_broker_epoch_is_the_index_of_its_registration() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, rx, _) = open(dir.path());
    apply(
        &mut sm,
        vec![
            normal(5, vec![MetadataChange::RegisterBroker(broker(1))]),
            normal(
                6,
                vec![
                    MetadataChange::RegisterBroker(broker(2)),
                    MetadataChange::RegisterBroker(broker(1)),
                ],
            ),
        ],
    )
    .await;
    let image = rx.borrow().image.clone();
    assert_eq!(image.brokers[&1].epoch, 6, "re-registered at index 6");
    assert_eq!(image.brokers[&2].epoch, 6);
}

#[tokio::test]
async fn a_restart_loads_the_newest_snapshot_and_tells_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, _, _) = open(dir.path());
    apply(
        &mut sm,
        vec![
            membership(0),
            normal(1, vec![MetadataChange::CreateTopic(topic("a", 2, 1))]),
        ],
    )
    .await;
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    apply(
        &mut sm,
        vec![normal(
            2,
            vec![MetadataChange::CreateTopic(topic("b", 1, 2))],
        )],
    )
    .await;
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let expected = sm.image.clone();
    drop(sm);

    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        ["00000000000000000002-0000000001.checkpoint"],
        "only the newest snapshot is kept"
    );

    let (mut reopened, rx, recorder) = open(dir.path());
    assert_eq!(recorder.indexes(), [2]);
    assert_eq!(*recorder.last(), *expected);
    assert_eq!(rx.borrow().applied_index, Some(2));
    let (applied, stored) = reopened.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(2)));
    assert_eq!(stored.log_id(), &Some(log_id(0)));
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);
}

#[tokio::test]
async fn an_installed_snapshot_replaces_the_image_and_survives_restart() {
    let leader_dir = tempfile::tempdir().unwrap();
    let (mut leader, _, _) = open(leader_dir.path());
    apply(
        &mut leader,
        vec![
            membership(0),
            normal(1, vec![MetadataChange::CreateTopic(topic("a", 3, 1))]),
        ],
    )
    .await;
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (mut follower, rx, recorder) = open(dir.path());
    apply(
        &mut follower,
        vec![normal(
            0,
            vec![MetadataChange::CreateTopic(topic("stale", 1, 7))],
        )],
    )
    .await;
    follower
        .install_snapshot(&snapshot.meta, snapshot.snapshot.clone())
        .await
        .unwrap();
    assert_eq!(*rx.borrow().image, *leader.image);
    assert_eq!(recorder.indexes(), [0, 0, 1]);
    assert_eq!(
        *recorder.last(),
        *leader.image,
        "the listener gets the installed image"
    );
    drop(follower);
    let (_, rx, _) = open(dir.path());
    assert_eq!(*rx.borrow().image, *leader.image);

    // A snapshot whose content contradicts its metadata is refused.
    let mut wrong = snapshot.meta.clone();
    wrong.last_log_id = Some(log_id(9));
    let (mut other, _, _) = open(tempfile::tempdir().unwrap().path());
    let err = other
        .install_snapshot(&wrong, snapshot.snapshot)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_corrupt_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path()
            .join("00000000000000000004-0000000001.checkpoint"),
        b"{\"last_applied\":",
    )
    .unwrap();
    let listener: Arc<dyn CommittedImageListener> = Arc::new(Recorder::default());
    let err = MetadataStateMachine::open(dir.path(), initial(), listener).unwrap_err();
    assert!(
        matches!(err, StateMachineError::DecodeSnapshot { .. }),
        "unexpected {err:?}"
    );
}

/// Changes over a small universe of names and ids, so that many are valid and many are rejected.
fn change() -> impl Strategy<Value = MetadataChange> {
    let name = prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned);
    prop_oneof![
        (name.clone(), 1usize..3, any::<u8>())
            .prop_map(|(n, p, id)| MetadataChange::CreateTopic(topic(&n, p, u128::from(id)))),
        name.clone()
            .prop_map(|name| MetadataChange::DeleteTopic { name }),
        (name.clone(), 0usize..2).prop_map(|(name, added)| MetadataChange::CreatePartitions {
            name,
            added: vec![PartitionRegistration::new(vec![2]); added],
        }),
        (name.clone(), 0i32..3, 1i32..4).prop_map(|(topic, partition, leader)| {
            MetadataChange::ChangePartition {
                topic,
                partition,
                change: PartitionChange {
                    leader: Some(leader),
                    ..PartitionChange::default()
                },
            }
        }),
        (1i32..4).prop_map(|id| MetadataChange::RegisterBroker(broker(id))),
        (1i32..4).prop_map(|id| MetadataChange::UnregisterBroker { id }),
        (1i64..50).prop_map(|count| MetadataChange::AllocateProducerIds { count }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The image after applying every entry equals the image from a snapshot at any point plus a replay
    /// of the entries after it (what a restart or a lagging follower does), and equals the all-or-none
    /// fold of the commands.
    #[test]
    fn snapshot_plus_replay_equals_applying_everything(
        commands in prop::collection::vec(prop::collection::vec(change(), 1..4), 1..24),
        split in any::<prop::sample::Index>(),
    ) {
        let entries: Vec<Entry> = commands
            .iter()
            .enumerate()
            .map(|(i, changes)| normal(i as u64 + 1, changes.clone()))
            .collect();
        let split = split.index(entries.len() + 1);

        let mut model = initial();
        for (i, changes) in commands.iter().enumerate() {
            let command = MetadataCommand { changes: changes.clone() };
            if let Ok(Some(next)) = apply_command(&model, i as u64 + 1, command) {
                model = next;
            }
        }

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (mut sm, _, _) = open(dir.path());
            apply(&mut sm, entries[..split].to_vec()).await;
            sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
            apply(&mut sm, entries[split..].to_vec()).await;
            let everything = sm.image.clone();
            drop(sm);

            let (mut restarted, rx, recorder) = open(dir.path());
            let (applied, _) = restarted.applied_state().await.unwrap();
            let replay_from = applied.map_or(0, |id| id.index() as usize);
            prop_assert_eq!(replay_from, split);
            apply(&mut restarted, entries[replay_from..].to_vec()).await;
            prop_assert_eq!(&*restarted.image, &*everything);
            prop_assert_eq!(&*everything, &model);
            prop_assert_eq!(&*rx.borrow().image, &model);
            prop_assert_eq!(&*recorder.last(), &model);
            Ok(())
        })?;
    }
}
