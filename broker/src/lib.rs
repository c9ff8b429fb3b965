//! Tributary broker: a Kafka-wire-compatible broker that stores each partition as an append-only log of
//! segment files and serves unmodified Kafka clients.

pub mod log;
