//! Idempotent-producer state of one partition: for each producer id, its epoch and the sequence ranges of its
//! last five batches (clients keep up to five sequenced batches in flight).
//!
//! Decides whether a batch is new, a duplicate of one already written (answered with the original offsets),
//! out of order, or from a fenced epoch. Never writes anything: the caller appends, then records the batch.
//! Rebuilt from the log's batch headers on start, so it survives restarts. Not synchronized; lives inside the
//! partition's lock.

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer; Kafka's `max.in.flight.requests.per.connection` limit for idempotence.
pub const BATCHES_PER_PRODUCER: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchSequence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in order: append it.
    Append,
    /// Already written: answer with these offsets and write nothing.
    Duplicate(BatchSequence),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    FencedEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id}: sequence {got} out of order (expected {expected})")]
    OutOfOrder {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

/// The last sequence of a batch, which wraps from `i32::MAX` to 0 as in Kafka.
pub fn last_sequence(base_sequence: i32, last_offset_delta: i32) -> i32 {
    if base_sequence > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base_sequence) - 1
    } else {
        base_sequence + last_offset_delta
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (last_seq == i32::MAX && next_seq == 0)
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, ProducerStateError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its batches were deleted by retention): any sequence starts it, as in
            // Kafka, so a producer whose state expired can carry on.
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::FencedEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerStateError::OutOfOrder {
                    producer_id,
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        match entry.batches.back() {
            Some(last) if !in_sequence(last.last_seq, first_seq) => {
                Err(ProducerStateError::OutOfOrder {
                    producer_id,
                    expected: last.last_seq.wrapping_add(1),
                    got: first_seq,
                })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records a batch that was written (or found in the log on start).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchSequence) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = epoch;
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn batch(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchSequence {
        BatchSequence {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
            max_timestamp: 0,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(7, 0, 0, 9).unwrap(), SequenceCheck::Append);
        states.record(7, 0, batch(0, 9, 100));
        assert_eq!(states.check(7, 0, 10, 19).unwrap(), SequenceCheck::Append);
        states.record(7, 0, batch(10, 19, 110));
        assert_eq!(
            states.check(7, 0, 0, 9).unwrap(),
            SequenceCheck::Duplicate(batch(0, 9, 100))
        );
        assert_eq!(
            states.check(7, 0, 25, 30).unwrap_err(),
            ProducerStateError::OutOfOrder {
                producer_id: 7,
                expected: 20,
                got: 25
            }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(1, 0, batch(i * 10, i * 10 + 9, i64::from(i) * 10));
        }
        assert!(matches!(
            states.check(1, 0, 10, 19).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
        // The oldest batch fell out of the window: a retry of it is out of order, not silently re-appended.
        assert!(states.check(1, 0, 0, 9).is_err());
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut states = ProducerStates::default();
        states.record(1, 3, batch(0, 4, 0));
        assert!(matches!(
            states.check(1, 2, 5, 5),
            Err(ProducerStateError::FencedEpoch { current: 3, .. })
        ));
        assert_eq!(states.check(1, 4, 0, 0).unwrap(), SequenceCheck::Append);
        assert!(states.check(1, 4, 5, 5).is_err());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        let mut states = ProducerStates::default();
        states.record(1, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(states.check(1, 0, 0, 4).unwrap(), SequenceCheck::Append);
    }
}
