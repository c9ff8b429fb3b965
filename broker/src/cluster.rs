//! Cluster metadata and its control: the metadata image (brokers, topics, partition registrations), the store
//! it lives in, the publisher that hands each change to those who follow the metadata, and the controller
//! that decides changes. Today a single-node store; a Raft quorum store comes next behind the same
//! [`store::MetadataStore`] boundary.

pub mod controller;
pub mod image;
pub mod member;
pub mod publisher;
pub mod raft;
pub mod rpc;
pub mod store;
