//! The metadata quorum on openraft: its types, the durable log and vote, the state machine (the metadata
//! image), and the network between controllers. Nothing outside this folder names an openraft type.

pub mod config;
pub mod log_store;
pub mod network;
pub mod quorum;
pub mod state_machine;
pub mod types;
