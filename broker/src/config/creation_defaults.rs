//! Broker settings that a topic takes once, when it is created (`num.partitions`,
//! `default.replication.factor`, `offsets.topic.replication.factor`), as cluster-wide dynamic configs.
//!
//! Kafka reads these from `server.properties` only, so changing them restarts every broker. Tributary also
//! takes them through IncrementalAlterConfigs on the cluster-wide broker resource, so an operator can make the
//! replication defaults follow the broker count (RF 3 once there are three) without a rolling restart, and
//! every broker answers a CreateTopics with RF -1 the same way. They are stored beside the cluster-wide topic
//! defaults under their broker names, which no topic config shares.

use std::collections::BTreeMap;

use super::BrokerConfig;

/// One such setting: its broker name, the values it accepts and Kafka's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreationDefault {
    pub name: &'static str,
    pub min: i64,
    pub max: i64,
    pub kafka_default: i64,
    pub doc: &'static str,
}

pub const NUM_PARTITIONS: CreationDefault = CreationDefault {
    name: "num.partitions",
    min: 1,
    max: 1_000_000,
    kafka_default: 1,
    doc: "partitions of a topic created without a count (auto-created, or CreateTopics with -1)",
};

pub const DEFAULT_REPLICATION_FACTOR: CreationDefault = CreationDefault {
    name: "default.replication.factor",
    min: 1,
    max: i16::MAX as i64,
    kafka_default: 1,
    doc:
        "replication factor of a topic created without one (auto-created, or CreateTopics with -1)",
};

pub const OFFSETS_TOPIC_REPLICATION_FACTOR: CreationDefault = CreationDefault {
    name: "offsets.topic.replication.factor",
    min: 1,
    max: i16::MAX as i64,
    kafka_default: 3,
    doc: "replication factor of __consumer_offsets when the first group creates it (capped at the live brokers)",
};

pub const CREATION_DEFAULTS: &[CreationDefault] = &[
    NUM_PARTITIONS,
    DEFAULT_REPLICATION_FACTOR,
    OFFSETS_TOPIC_REPLICATION_FACTOR,
];

pub fn creation_default(name: &str) -> Option<CreationDefault> {
    CREATION_DEFAULTS.iter().copied().find(|d| d.name == name)
}

impl CreationDefault {
    /// This broker's own value: `server.properties` or the built-in default.
    pub fn configured(&self, config: &BrokerConfig) -> i64 {
        match self.name {
            "num.partitions" => i64::from(config.num_partitions),
            "default.replication.factor" => i64::from(config.default_replication_factor),
            _ => config
                .cluster
                .as_ref()
                .map_or(1, |c| i64::from(c.offsets_topic_replication_factor)),
        }
    }

    /// The value as stored, if it is an integer in range.
    pub fn parse(&self, value: &str) -> Option<i64> {
        value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|v| (self.min..=self.max).contains(v))
    }

    /// The cluster-wide dynamic value from `dynamic` (the image's broker configs) if one is set, else
    /// `configured` (this broker's `server.properties` or the built-in default).
    pub fn resolve(&self, dynamic: &BTreeMap<String, String>, configured: i64) -> i64 {
        match dynamic.get(self.name) {
            None => configured,
            Some(value) => self.parse(value).unwrap_or_else(|| {
                tracing::warn!(
                    config = self.name,
                    value,
                    "unparseable stored config value; using this broker's own"
                );
                configured
            }),
        }
    }

    /// Like [`Self::resolve`] for the settings that are replication factors.
    pub fn resolve_i16(&self, dynamic: &BTreeMap<String, String>, configured: i16) -> i16 {
        i16::try_from(self.resolve(dynamic, i64::from(configured))).unwrap_or(configured)
    }

    /// Like [`Self::resolve`] for a partition count.
    pub fn resolve_i32(&self, dynamic: &BTreeMap<String, String>, configured: i32) -> i32 {
        i32::try_from(self.resolve(dynamic, i64::from(configured))).unwrap_or(configured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_value_wins_over_the_configured_one() {
        let dynamic = BTreeMap::from([("default.replication.factor".to_owned(), "3".to_owned())]);
        assert_eq!(DEFAULT_REPLICATION_FACTOR.resolve_i16(&dynamic, 1), 3);
        assert_eq!(
            NUM_PARTITIONS.resolve_i32(&dynamic, 4),
            4,
            "not set: the file's"
        );
    }

    #[test]
    fn an_unparseable_stored_value_falls_back_to_the_configured_one() {
        let dynamic = BTreeMap::from([
            ("default.replication.factor".to_owned(), "0".to_owned()),
            ("num.partitions".to_owned(), "many".to_owned()),
        ]);
        assert_eq!(DEFAULT_REPLICATION_FACTOR.resolve_i16(&dynamic, 2), 2);
        assert_eq!(NUM_PARTITIONS.resolve_i32(&dynamic, 4), 4);
    }

    #[test]
    fn ranges_are_the_static_parsers() {
        assert_eq!(NUM_PARTITIONS.parse("1000000"), Some(1_000_000));
        assert_eq!(NUM_PARTITIONS.parse("1000001"), None);
        assert_eq!(DEFAULT_REPLICATION_FACTOR.parse("32768"), None);
        assert_eq!(OFFSETS_TOPIC_REPLICATION_FACTOR.parse(" 3 "), Some(3));
        assert_eq!(creation_default("segment.bytes"), None);
    }
}
