#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use openraft::{
    impls::leader_id_adv::LeaderId, testing::log::StoreBuilder, type_config::TypeConfigExt,
    EntryPayload, LogId, StorageError, Vote,
};
use tempfile::TempDir;

use super::*;
use crate::cluster::{
    image::MetadataImage,
    raft::{
        state_machine::{CommittedImageListener, MetadataStateMachine},
        types::MetadataCommand,
    },
};

#[derive(Debug)]
struct IgnoreImages;

impl CommittedImageListener for IgnoreImages {
    fn committed(&self, _index: u64, _image: Arc<MetadataImage>) {}
}

/// Fresh stores in a fresh directory for each of openraft's conformance tests.
struct FreshStores;

impl StoreBuilder<TypeConfig, MetadataLogStore, MetadataStateMachine, TempDir> for FreshStores {
    async fn build(
        &self,
    ) -> Result<(TempDir, MetadataLogStore, MetadataStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let log = MetadataLogStore::open(dir.path()).unwrap();
        let (sm, _) = MetadataStateMachine::open(
            dir.path(),
            MetadataImage::default(),
            Arc::new(IgnoreImages),
        )
        .unwrap();
        Ok((dir, log, sm))
    }
}

#[tokio::test]
async fn passes_openraft_storage_conformance_suite() {
    openraft::testing::log::Suite::test_all(FreshStores)
        .await
        .unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<LeaderId<u64, u64>> {
    LogId::new(LeaderId { term, node_id: 1 }, index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(MetadataCommand {
            changes: Vec::new(),
        }),
    }
}

async fn append(store: &mut MetadataLogStore, entries: Vec<Entry>) {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await.unwrap();
    rx.await
        .unwrap()
        .expect("the flush callback reports success");
}

async fn indexes(store: &mut MetadataLogStore) -> Vec<u64> {
    store
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index())
        .collect()
}

fn entries_file(dir: &TempDir) -> PathBuf {
    dir.path().join(ENTRIES_FILE)
}

#[tokio::test]
async fn log_vote_and_committed_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataLogStore::open(dir.path()).unwrap();
    append(&mut store, (1..=5).map(|i| entry(1, i)).collect()).await;
    let vote = Vote::new_committed(2, 1);
    store.save_vote(&vote).await.unwrap();
    store.save_committed(Some(log_id(1, 4))).await.unwrap();
    drop(store);

    let mut reopened = MetadataLogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&mut reopened).await, [1, 2, 3, 4, 5]);
    assert_eq!(reopened.read_vote().await.unwrap(), Some(vote));
    assert_eq!(
        reopened.read_committed().await.unwrap(),
        Some(log_id(1, 4)),
        "the committed id must survive, so a restart re-applies committed entries"
    );
    let state = reopened.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(1, 5)));
    assert_eq!(state.last_purged_log_id, None);
}

#[tokio::test]
async fn truncation_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataLogStore::open(dir.path()).unwrap();
    append(&mut store, (1..=6).map(|i| entry(1, i)).collect()).await;
    store.truncate_after(Some(log_id(1, 4))).await.unwrap();
    append(&mut store, vec![entry(2, 5), entry(2, 6), entry(2, 7)]).await;
    store.purge(log_id(1, 2)).await.unwrap();
    append(&mut store, vec![entry(2, 8)]).await;
    drop(store);

    let mut reopened = MetadataLogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&mut reopened).await, [3, 4, 5, 6, 7, 8]);
    let terms: Vec<u64> = reopened
        .try_get_log_entries(5..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.committed_leader_id().term)
        .collect();
    assert_eq!(
        terms,
        [2, 2, 2, 2],
        "the replaced entries are the new term's"
    );
    let state = reopened.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(2, 8)));

    // A purge past the end leaves an empty log whose last id is the purged one.
    reopened.purge(log_id(2, 10)).await.unwrap();
    drop(reopened);
    let mut emptied = MetadataLogStore::open(dir.path()).unwrap();
    assert!(indexes(&mut emptied).await.is_empty());
    let state = emptied.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 10)));
    append(&mut emptied, vec![entry(3, 11)]).await;
    drop(emptied);
    let mut again = MetadataLogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&mut again).await, [11]);
}

#[tokio::test]
async fn a_torn_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataLogStore::open(dir.path()).unwrap();
    append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
    drop(store);
    let path = entries_file(&dir);
    let full = fs::read(&path).unwrap();
    let third = {
        let mut buf = Vec::new();
        encode_record(&mut buf, &LogRecordRef::Entry(&entry(1, 3))).unwrap();
        buf.len()
    };

    // A crash in the middle of the third record, then in the middle of a header.
    for cut in [third / 2, third - 3] {
        fs::write(&path, &full[..full.len() - cut]).unwrap();
        let mut reopened = MetadataLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut reopened).await, [1, 2], "cut {cut} bytes");
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            (full.len() - third) as u64,
            "the torn bytes are removed from the file"
        );
        append(&mut reopened, vec![entry(1, 3)]).await;
        drop(reopened);
        let mut healed = MetadataLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut healed).await, [1, 2, 3]);
    }

    // A last record whose bytes never reached the disk, and a zero-filled tail.
    let mut bad_last = full.clone();
    let last = bad_last.len() - 2;
    bad_last[last] ^= 0xff;
    let mut zero_tail = full.clone();
    zero_tail.extend_from_slice(&[0; 4096]);
    for (name, bytes) in [
        ("checksum of the last record", bad_last),
        ("zero tail", zero_tail),
    ] {
        fs::write(&path, &bytes).unwrap();
        let mut reopened = MetadataLogStore::open(dir.path()).unwrap();
        let expected: &[u64] = if name == "zero tail" {
            &[1, 2, 3]
        } else {
            &[1, 2]
        };
        assert_eq!(indexes(&mut reopened).await, expected, "{name}");
    }
}

#[tokio::test]
async fn corruption_before_the_tail_is_an_error_not_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = MetadataLogStore::open(dir.path()).unwrap();
    append(&mut store, (1..=3).map(|i| entry(1, i)).collect()).await;
    drop(store);
    let path = entries_file(&dir);
    let full = fs::read(&path).unwrap();

    let mut flipped = full.clone();
    flipped[HEADER_LEN + 3] ^= 0x01;
    fs::write(&path, &flipped).unwrap();
    let err = MetadataLogStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LogStoreError::Corrupt { position: 0, reason, .. } if reason.contains("checksum")),
        "unexpected {err:?}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        flipped,
        "a corrupt log is left as it is for a person to look at"
    );

    // A record length that cannot be, with more data after it.
    let mut bad_len = full.clone();
    bad_len[..4].copy_from_slice(&0u32.to_le_bytes());
    fs::write(&path, &bad_len).unwrap();
    assert!(matches!(
        MetadataLogStore::open(dir.path()),
        Err(LogStoreError::Corrupt { position: 0, .. })
    ));

    // A corrupt quorum state (it is replaced atomically, so it cannot be torn).
    fs::write(&path, &full).unwrap();
    fs::write(dir.path().join(QUORUM_STATE_FILE), b"{\"vote\":").unwrap();
    assert!(matches!(
        MetadataLogStore::open(dir.path()),
        Err(LogStoreError::DecodeQuorumState { .. })
    ));
}

#[tokio::test]
async fn a_gap_between_entries_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut buf = Vec::new();
    encode_record(&mut buf, &LogRecordRef::Entry(&entry(1, 1))).unwrap();
    let second = buf.len() as u64;
    encode_record(&mut buf, &LogRecordRef::Entry(&entry(1, 3))).unwrap();
    fs::write(entries_file(&dir), &buf).unwrap();
    let err = MetadataLogStore::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LogStoreError::Corrupt { position, .. } if *position == second),
        "unexpected {err:?}"
    );
}
