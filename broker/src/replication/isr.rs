//! How a leader's ISR changes reach the controller: the [`IsrProposer`] boundary, and its implementation on
//! this broker's [`Controller`]. A leader only *proposes*; the ISR changes when the metadata publishes the
//! new registration, so every broker sees the same ISR in the same order. A cluster's quorum will put its
//! controller RPC behind the same trait; tests put a fan-out to several single-node brokers behind it.

use std::sync::Arc;

// The same type as `group::offsets::BoxFuture`, named here so that replication imports nothing of the group
// coordinator.
use futures_util::future::BoxFuture;

pub use crate::cluster::controller::{AlterPartitionError, AlterPartitionRequest};
use crate::cluster::{controller::Controller, image::PartitionRegistration};

/// Sends a leader's AlterPartition to whoever commits metadata.
pub trait IsrProposer: Send + Sync + std::fmt::Debug {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<PartitionRegistration, AlterPartitionError>>;
}

impl IsrProposer for Controller {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<PartitionRegistration, AlterPartitionError>> {
        Box::pin(Controller::alter_partition(self, request))
    }
}

/// An `Arc<Controller>` as a proposer, for the composition root.
impl IsrProposer for Arc<Controller> {
    fn alter_partition(
        &self,
        request: AlterPartitionRequest,
    ) -> BoxFuture<'_, Result<PartitionRegistration, AlterPartitionError>> {
        Box::pin(Controller::alter_partition(self, request))
    }
}
