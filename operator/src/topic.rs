//! The Topic reconciler: one-way from Kubernetes to the brokers. It creates the Kafka topic, grows its partitions,
//! keeps its config overrides equal to the spec, adopts a topic that already exists, reports a second Topic for
//! the same name as a conflict, and deletes the topic per `spec.deletionPolicy` when the Topic is deleted.
//!
//! `plan` and `status` are pure; `reconcile` does the I/O. Nothing here builds Kubernetes workloads.

pub mod plan;
pub mod reconcile;
pub mod status;

use std::sync::Arc;

use kube::runtime::reflector::Store;

use crate::{controller::Context, crd::Topic, kafka_admin::AdminClients};

/// State shared by every Topic reconcile.
#[derive(Debug)]
pub struct TopicContext {
    /// Client, Event recorder and retry backoff shared with the other controllers.
    pub base: Arc<Context>,
    /// Every Topic the controller watches, to find duplicates for one Kafka topic.
    pub topics: Store<Topic>,
    /// One admin client per bootstrap address.
    pub admin: AdminClients,
    /// Reach every cluster's brokers at this address instead of its bootstrap Service (tests, or an operator
    /// running outside the Kubernetes network).
    pub bootstrap_override: Option<String>,
}
