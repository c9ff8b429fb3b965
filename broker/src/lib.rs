//! Tributary broker: a Kafka-wire-compatible broker that stores each partition as an append-only log of
//! segment files and serves unmodified Kafka clients.

pub mod broker;
pub mod clock;
pub mod cluster;
pub mod cluster_identity;
pub mod config;
pub mod durable;
pub mod group;
pub mod handlers;
pub mod http;
pub mod log;
pub mod log_manager;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod quota;
pub mod replication;
pub mod server;
pub mod storage_health;

/// In-process brokers for tests (see the module docs); not used by the broker itself.
pub mod testing;

/// Formats an error with its sources, for log lines and client-visible messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
