//! Producer ids for InitProducerId, handed out from blocks the active controller reserves in the metadata
//! (like Kafka's `RPCProducerIdManager`). A request never waits long for the controller: the next block is
//! fetched in the background once 90 % of the current one is used, so a broker that has served ids keeps
//! serving them through a controller outage; a broker with none left waits at most [`PATIENCE`] and then
//! answers a retriable error while the fetch goes on. Waiting out the whole forward timeout instead made
//! kafka-clients treat the eventual error as fatal (fault-harness finding 5).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

use super::{calls, CallOutput, Controller, ControllerCall, TopicError};

/// How long InitProducerId waits for a block when this broker has no id left. A healthy controller
/// answers in milliseconds.
const PATIENCE: Duration = Duration::from_secs(2);
/// The share of a block left when the next one is fetched.
const PREFETCH_AT_REMAINING: f64 = 0.1;

/// `next..end`.
#[derive(Debug, Default, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
    size: i64,
}

impl Block {
    fn remaining(&self) -> i64 {
        self.end - self.next
    }
}

#[derive(Debug, Default)]
struct State {
    current: Block,
    prefetched: Option<Block>,
    fetching: bool,
}

#[derive(Debug, Default)]
pub(super) struct ProducerIds {
    state: Mutex<State>,
    arrived: Notify,
}

/// Why no id could be handed out now.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// A block is being fetched: retry (Kafka answers COORDINATOR_LOAD_IN_PROGRESS).
    #[error("no producer id block yet; one is being fetched from the controller")]
    Loading,
}

impl ProducerIds {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An id from the current block, moving to the prefetched one when it is used up; and whether a
    /// fetch should start now.
    fn take(&self) -> (Option<i64>, bool) {
        let mut state = self.lock();
        if state.current.remaining() <= 0 {
            if let Some(next) = state.prefetched.take() {
                state.current = next;
            }
        }
        let id = (state.current.remaining() > 0).then(|| {
            state.current.next += 1;
            state.current.next - 1
        });
        let low = (state.current.remaining() as f64)
            <= PREFETCH_AT_REMAINING * state.current.size.max(1) as f64;
        let fetch = low && state.prefetched.is_none() && !state.fetching;
        if fetch {
            state.fetching = true;
        }
        (id, fetch)
    }

    fn deliver(&self, fetched: Result<Block, TopicError>) {
        let mut state = self.lock();
        state.fetching = false;
        match fetched {
            Ok(block) if state.current.remaining() <= 0 => state.current = block,
            Ok(block) => state.prefetched = Some(block),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "fetching a producer id block failed; the next request retries")
            }
        }
        drop(state);
        self.arrived.notify_waiters();
    }
}

impl Controller {
    /// Hands out a producer id, never reused across restarts or brokers.
    pub async fn allocate_producer_id(self: &Arc<Self>) -> Result<i64, ProducerIdError> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrived = self.producer_ids.arrived.notified();
            let (id, fetch) = self.producer_ids.take();
            if fetch {
                let controller = Arc::clone(self);
                tokio::spawn(async move {
                    let fetched = controller.fetch_producer_id_block().await;
                    controller.producer_ids.deliver(fetched);
                });
            }
            if let Some(id) = id {
                return Ok(id);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(ProducerIdError::Loading);
            }
        }
    }

    async fn fetch_producer_id_block(&self) -> Result<Block, TopicError> {
        match self.call(ControllerCall::AllocateProducerIds).await? {
            CallOutput::ProducerIds { start, count } => Ok(Block {
                next: start,
                end: start + count,
                size: count,
            }),
            other => Err(calls::unexpected(&other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn block(start: i64, size: i64) -> Result<Block, TopicError> {
        Ok(Block {
            next: start,
            end: start + size,
            size,
        })
    }

    #[test]
    fn the_next_block_is_fetched_before_the_current_one_runs_out() {
        let ids = ProducerIds::default();
        assert_eq!(ids.take(), (None, true), "empty: fetch");
        assert_eq!(ids.take(), (None, false), "one fetch at a time");
        ids.deliver(block(0, 10));
        let mut handed = Vec::new();
        let mut fetch_at = None;
        for _ in 0..10 {
            let (id, fetch) = ids.take();
            handed.push(id.unwrap());
            if fetch {
                fetch_at.get_or_insert(handed.len());
            }
        }
        assert_eq!(handed, (0..10).collect::<Vec<_>>());
        assert_eq!(fetch_at, Some(9), "fetched with 10 % left");
        ids.deliver(block(100, 10));
        assert_eq!(
            ids.take(),
            (Some(100), false),
            "the prefetched block follows"
        );
    }

    #[test]
    fn a_failed_fetch_is_retried_by_the_next_request() {
        let ids = ProducerIds::default();
        assert_eq!(ids.take(), (None, true));
        ids.deliver(Err(TopicError::Internal("no controller".into())));
        assert_eq!(ids.take(), (None, true));
    }
}
