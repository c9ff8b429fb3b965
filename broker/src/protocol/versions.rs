//! The API versions this broker implements, advertised in ApiVersions. Only what is really handled is listed.

use std::ops::RangeInclusive;

use kafka_protocol::messages::ApiKey;

/// (API, advertised versions). Ranges follow what Apache Kafka 4.x advertises, capped by what is implemented.
pub const SUPPORTED_APIS: &[(ApiKey, RangeInclusive<i16>)] = &[
    // Produce v0-2 are advertised but refused, exactly as Kafka 4.0 does (KAFKA-18659): older librdkafka
    // builds derive features such as compression support from the advertised *minimum* of Produce.
    (ApiKey::Produce, 0..=12),
    (ApiKey::Fetch, 4..=17),
    (ApiKey::ListOffsets, 1..=10),
    (ApiKey::Metadata, 0..=12),
    (ApiKey::ApiVersions, 0..=4),
    (ApiKey::CreateTopics, 2..=7),
    (ApiKey::DeleteTopics, 1..=6),
    (ApiKey::InitProducerId, 0..=5),
    (ApiKey::DescribeConfigs, 1..=4),
    (ApiKey::CreatePartitions, 0..=3),
    // The non-incremental form: each resource's configs replace its overrides.
    (ApiKey::AlterConfigs, 0..=2),
    (ApiKey::IncrementalAlterConfigs, 0..=1),
    (ApiKey::DescribeCluster, 0..=2),
    (ApiKey::DescribeClientQuotas, 0..=1),
    (ApiKey::AlterClientQuotas, 0..=1),
    (ApiKey::FindCoordinator, 0..=6),
    (ApiKey::JoinGroup, 0..=9),
    (ApiKey::SyncGroup, 0..=5),
    (ApiKey::Heartbeat, 0..=4),
    (ApiKey::LeaveGroup, 0..=5),
    // v9 (member epochs of the new consumer protocol) and v10 (topic ids) are not implemented.
    (ApiKey::OffsetCommit, 2..=8),
    (ApiKey::OffsetFetch, 1..=8),
    (ApiKey::DescribeGroups, 0..=6),
    (ApiKey::ListGroups, 0..=5),
    (ApiKey::DeleteGroups, 0..=2),
    (ApiKey::OffsetDelete, 0..=0),
    // v0-1 were removed in Kafka 4.0 (KIP-896).
    (ApiKey::OffsetForLeaderEpoch, 2..=4),
    (ApiKey::ElectLeaders, 0..=2),
    // KIP-455; v1 adds allow_replication_factor_change (KIP-860).
    (ApiKey::AlterPartitionReassignments, 0..=1),
    (ApiKey::ListPartitionReassignments, 0..=0),
    // v0 was removed in Kafka 4.0 (KIP-896); one log directory per broker.
    (ApiKey::DescribeLogDirs, 1..=4),
    // KIP-966; the Java AdminClient (3.8+) describes topics with it when it is advertised.
    (ApiKey::DescribeTopicPartitions, 0..=0),
    // What `kafka-cluster.sh unregister` sends; refused while the broker still runs or holds replicas.
    (ApiKey::UnregisterBroker, 0..=0),
    // What kafka-metadata-quorum.sh describe sends (KIP-595; v2 adds the voters' endpoints, KIP-853).
    (ApiKey::DescribeQuorum, 0..=2),
    // What kafka-metadata-quorum.sh add-controller / remove-controller send (KIP-853).
    (ApiKey::AddRaftVoter, 0..=0),
    (ApiKey::RemoveRaftVoter, 0..=0),
];

pub fn supported_versions(api: ApiKey) -> Option<RangeInclusive<i16>> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _)| *key == api)
        .map(|(_, range)| range.clone())
}

/// Advertised versions that are nonetheless refused (the codec cannot decode them).
pub fn decodable(api: ApiKey, version: i16) -> bool {
    !(api == ApiKey::Produce && version < 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_version_is_known_to_the_codec() {
        for (api, range) in SUPPORTED_APIS {
            let codec = api.valid_versions();
            for version in range.clone().filter(|v| decodable(*api, *v)) {
                assert!(
                    version >= codec.min && version <= codec.max,
                    "{api:?} v{version} is advertised but kafka-protocol supports {}..={}",
                    codec.min,
                    codec.max
                );
            }
        }
    }
}
