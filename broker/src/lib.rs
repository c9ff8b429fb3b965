//! Tributary broker: a Kafka-wire-compatible broker that stores each partition as an append-only log of
//! segment files and serves unmodified Kafka clients.

pub mod broker;
pub mod config;
pub mod group;
pub mod handlers;
pub mod http;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod server;
/// In-process brokers for tests (see the module docs); not used by the broker itself.
pub mod testing;
