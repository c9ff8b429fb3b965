//! Replicas of partitions on this broker and the roles the metadata gives them (`manager`), the follower
//! fetchers that copy leaders' logs (`fetcher`, over a small Kafka client, `client`), the ISR proposals a
//! leader sends the controller (`isr`), and truncation by leader epoch (`truncation`). The high watermark
//! and follower progress live with each partition (`partition::replica_state`).

pub mod client;
pub mod fetcher;
pub mod isr;
pub mod manager;
pub mod truncation;
