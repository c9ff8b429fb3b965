//! A three-broker cluster of real `tributary-broker` processes, configured the way Apache Kafka's KRaft
//! combined-mode nodes are (`server.properties` with Kafka's names, `format -t ID -c FILE` first): the
//! brokers form one cluster with one metadata quorum, admin calls work on any broker, and a killed broker is
//! fenced and its leaderships move to the in-sync replicas. Loopback only; every wait is bounded.
#![allow(clippy::unwrap_used)]

mod drain;
mod fill;
mod fixture;
mod groups;
mod kafka_tools;
mod membership;
mod quorum;
mod reassignment;
mod replication;
mod storage;
