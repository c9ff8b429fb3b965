//! Metadata images for the controller's unit tests: brokers with optional racks, and topics whose partitions
//! are given as replica lists (each new, led by its first replica, fully in sync).

use crate::cluster::image::{
    BrokerRegistration, MetadataImage, NodeId, PartitionRegistration, TopicMetadata,
};

pub(super) fn image(
    brokers: &[(NodeId, Option<&str>)],
    topics: &[(&str, Vec<Vec<NodeId>>)],
) -> MetadataImage {
    let mut image = MetadataImage::default();
    for (id, rack) in brokers {
        image.brokers.insert(
            *id,
            BrokerRegistration {
                rack: rack.map(str::to_owned),
                ..BrokerRegistration::bare(*id, 1)
            },
        );
    }
    for (name, partitions) in topics {
        image.topics.insert(
            (*name).into(),
            TopicMetadata {
                name: (*name).into(),
                id: uuid::Uuid::new_v4(),
                replication_factor: partitions[0].len() as i16,
                partitions: partitions
                    .iter()
                    .map(|r| PartitionRegistration::new(r.clone()))
                    .collect(),
                configs: Default::default(),
            },
        );
    }
    image
}
