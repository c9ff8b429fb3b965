//! Replicas of partitions on this broker and the roles the metadata gives them (`manager`). Later: follower
//! fetchers, ISR changes, the high watermark across brokers and truncation by leader epoch.

pub mod manager;
pub mod truncation;
