//! Crash points of a clean and a model-based property test: what a restart after any failure must show.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Runs a clean that "crashes" after `steps` file operations of the install, reopens the directory as
/// after a crash and checks it: no leftovers, no record lost, no key resurrected, offsets ascending.
/// Returns whether the install finished.
fn crash_at(steps: usize) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let mut model = overwrite_scenario(&mut log);
    // A first clean at 2000 keeps the k3 tombstone (first cleaned at 2000). Then a second round of writes.
    log.clean_now(2000).unwrap().unwrap();
    for i in 61..86i64 {
        if i % 5 == 3 {
            continue;
        }
        let key = format!("k{}", i % 5);
        let value = format!("v{i}");
        let offset = put(&mut log, &key, Some(&value), 1000 + i);
        model.insert(key, (offset, Some(value)));
    }
    log.roll().unwrap();
    let end = log.log_end_offset();
    // The crashing clean drops the tombstone (its horizon has passed) and supersedes the first round.
    let now = 2000 + DAY;
    let cleaned = log.compaction_plan(now).unwrap().execute().unwrap();
    let finished = log.install_cleaned_steps(cleaned, steps).unwrap().is_some();
    drop(log);
    let decided = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().ends_with(".log.swap")
        })
        .count();

    let (mut log, report) = reopen_after_crash(dir.path());
    assert_eq!(
        report.swaps_completed, decided,
        "step {steps}: decided swaps are completed"
    );
    assert!(leftover_files(dir.path()).is_empty(), "step {steps}");
    assert_eq!(log.log_end_offset(), end, "step {steps}");
    assert_eq!(log.log_start_offset(), 0, "step {steps}");
    let check = |log: &Log, fully: bool| {
        let seen = read_all(log);
        let mut last = BTreeMap::new();
        for s in &seen {
            last.insert(s.key.clone().unwrap(), (s.offset, s.value.clone()));
        }
        for (key, (offset, value)) in &model {
            let copies = seen.iter().filter(|s| s.offset == *offset).count();
            match value {
                Some(_) => {
                    assert_eq!(
                        last.get(key),
                        Some(&(*offset, value.clone())),
                        "step {steps} {key}"
                    );
                    assert_eq!(copies, 1, "step {steps}: latest {key} exactly once");
                }
                // Deleted: the tombstone may be gone, but no older value may show.
                None => assert!(
                    last.get(key).is_none_or(|l| l == &(*offset, None)),
                    "step {steps}: {key} resurrected as {:?}",
                    last.get(key)
                ),
            }
        }
        if fully {
            assert_eq!(
                seen.len(),
                model.len() - 1,
                "step {steps}: {:?}",
                pairs(&seen)
            );
        }
    };
    check(&log, finished);
    // Whatever state the crash left, the next clean reaches the fully compacted log.
    log.clean_now(now).unwrap();
    check(&log, true);
    finished
}

#[test]
fn log_compaction_survives_a_crash_at_every_install_step() {
    let mut steps = 0;
    while !crash_at(steps) {
        steps += 1;
    }
    assert!(steps > 10, "the install has many steps, got {steps}");
}

#[test]
fn log_compaction_recovery_drops_cleaned_files_and_completes_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    overwrite_scenario(&mut log);
    let seen_before = pairs(&read_all(&log));
    // Crash during execute: a half-written cleaned segment next to the originals.
    std::fs::write(segment_path(dir.path(), 0, "log.cleaned"), b"partial").unwrap();
    std::fs::write(segment_path(dir.path(), 0, "index.cleaned"), b"").unwrap();
    drop(log);
    let (log, report) = reopen_after_crash(dir.path());
    assert_eq!(report.swaps_completed, 0);
    assert_eq!(pairs(&read_all(&log)), seen_before);
    assert!(leftover_files(dir.path()).is_empty());

    // A decided swap, built by hand: segment 0's swap holds only its last batch.
    let first = log.read(0, 1).unwrap();
    let second_base = log.segments.keys().nth(1).copied().unwrap();
    let slice = log.read(second_base - 1, 1).unwrap();
    assert_eq!(first.first_batch_base_offset, 0);
    std::fs::write(segment_path(dir.path(), 0, "log.swap"), slice_bytes(&slice)).unwrap();
    drop(log);
    let (log, report) = reopen_after_crash(dir.path());
    assert_eq!(report.swaps_completed, 1);
    let seen = pairs(&read_all(&log));
    assert_eq!(seen[0], seen_before[second_base as usize - 1]);
    assert_eq!(seen[1..], seen_before[second_base as usize..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Random appends (values and tombstones over a few keys), rolls and cleans: a consumer reading the
    /// whole log always ends with the model map, and below the cleaner checkpoint each key appears once.
    #[test]
    fn log_compaction_matches_a_model_map(
        ops in prop::collection::vec((0u8..6, prop::option::weighted(0.8, 0u16..1000), 0u8..12), 1..120),
        crash_step in 0usize..30,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path());
        let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut now = 10_000i64;
        for (key, value, action) in ops {
            now += 1000;
            let key = format!("key-{key}");
            let value = value.map(|v| format!("value-{v}"));
            put(&mut log, &key, value.as_deref(), now);
            model.insert(key, value);
            match action {
                0 => { log.roll().unwrap(); }
                1 => { log.clean_now(now).unwrap(); }
                // Far enough ahead that every tombstone so far has expired.
                2 => { log.clean_now(now + DAY + 1).unwrap(); }
                // A clean that crashes after `crash_step` install steps, then an unclean restart.
                3 => {
                    if let Some(plan) = log.compaction_plan(now + DAY + 1) {
                        let cleaned = plan.execute().unwrap();
                        if log.install_cleaned_steps(cleaned, crash_step).unwrap().is_none() {
                            drop(log);
                            log = reopen_after_crash(dir.path()).0;
                            prop_assert!(leftover_files(dir.path()).is_empty());
                        }
                    }
                }
                _ => {}
            }
            let seen = read_all(&log);
            let mut consumer: BTreeMap<String, Option<String>> = BTreeMap::new();
            for s in &seen {
                consumer.insert(s.key.clone().unwrap(), s.value.clone());
            }
            for (k, v) in &model {
                match v {
                    Some(_) => prop_assert_eq!(consumer.get(k), Some(v), "key {}", k),
                    None => prop_assert!(consumer.get(k).is_none_or(|c| c.is_none()), "key {} resurrected", k),
                }
            }
            prop_assert!(consumer.keys().all(|k| model.contains_key(k)));
            let clean: Vec<_> = seen.iter().filter(|s| s.offset < log.cleaner_checkpoint()).collect();
            let mut keys: Vec<_> = clean.iter().map(|s| s.key.clone()).collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(keys.len(), n, "a key appears twice below the checkpoint");
        }
    }
}
