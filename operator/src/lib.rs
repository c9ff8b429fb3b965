//! The Tributary Kubernetes operator: turns `KafkaCluster` custom resources into Kubernetes objects and `Topic`
//! custom resources into Kafka admin calls.
//!
//! A KafkaCluster is reconciled as a pipeline: validate (pure) -> build desired objects (pure) -> server-side apply
//! -> status. A Topic is planned (pure) against what the brokers describe, then changed through the admin API.
//! Nothing in the pure steps may do I/O.

pub mod cluster;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod kafka_admin;
pub mod leader;
pub mod metrics;
pub mod runtime;
pub mod topic;

#[cfg(test)]
mod fixtures;
