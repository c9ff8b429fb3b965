//! Replicas of partitions on this broker and the roles the metadata gives them (`manager`), the follower
//! fetchers that copy leaders' logs (`fetcher`, over a small Kafka client, `client`), the ISR proposals a
//! leader sends the controller (`isr`), the hook that tells other parts about leadership changes (`leadership`), truncation by leader epoch (`truncation`), and the replication throttle (`quota`). The high watermark
//! and follower progress live with each partition (`partition::replica_state`).

pub mod client;
pub mod fetcher;
pub mod isr;
pub mod leadership;
pub mod manager;
pub mod quota;
pub mod truncation;
