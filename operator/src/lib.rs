//! The Tributary Kubernetes operator: turns `KafkaCluster` and `Topic` custom resources into Kubernetes objects
//! (and, later, Kafka admin calls).
//!
//! A KafkaCluster is reconciled as a pipeline: validate (pure) -> build desired objects (pure) -> server-side apply
//! -> status. Nothing in the pure steps may do I/O.

pub mod cluster;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod runtime;

#[cfg(test)]
mod fixtures;
