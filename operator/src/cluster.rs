//! The KafkaCluster reconciler, as a pipeline: `validate` (pure) -> `build` (pure, every desired object) -> apply
//! (server-side, with owner references) -> status.
//!
//! `validate` and `build` never do I/O, so every decision about what the objects look like is tested on inline
//! YAML without an API server.

pub mod build;
pub mod offsets_topic;
pub mod reconcile;
pub mod roll;
pub mod scale;
pub mod status;
pub mod validate;
pub mod voters;

pub use self::{
    build::{build, DesiredObjects},
    validate::{validate, Invalid, Problem, ValidatedKafkaCluster},
};
