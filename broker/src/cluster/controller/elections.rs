//! Leader elections the controller runs on request or on its own: preferred-leader elections (the first
//! replica of the assignment leads again when it is live and in sync: ElectLeaders type 0 and
//! `auto.leader.rebalance.enable`) and unclean elections (a live replica outside the ISR may lead a
//! leaderless partition, losing what only the ISR had: ElectLeaders type 1, an admin's explicit choice, or
//! on the controller's own where `unclean.leader.election.enable` is true for the topic).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{calls::CallOutput, Controller, TopicError};
use crate::cluster::{
    image::{MetadataImage, NodeId, PartitionChange, NO_LEADER},
    store::MetadataChange,
};

/// Kafka's ElectLeaders election types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// The outcome for one partition, as ElectLeaders reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    Elected(NodeId),
    /// ELECTION_NOT_NEEDED: the preferred replica already leads, or (unclean) there is a leader.
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is fenced or out of the ISR.
    PreferredNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no live replica can lead.
    EligibleNotAvailable,
    UnknownPartition,
}

/// What an election of `election_type` would do to one partition.
fn decide(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    election_type: ElectionType,
) -> (ElectionOutcome, Option<PartitionChange>) {
    let Some(partition) = image.partition(topic, index) else {
        return (ElectionOutcome::UnknownPartition, None);
    };
    let live = |id: &NodeId| image.eligible_replica(*id);
    match election_type {
        ElectionType::Preferred => {
            let Some(preferred) = partition.replicas.first().copied() else {
                return (ElectionOutcome::PreferredNotAvailable, None);
            };
            if partition.leader == preferred {
                return (ElectionOutcome::NotNeeded, None);
            }
            if !live(&preferred) || !partition.isr.contains(&preferred) {
                return (ElectionOutcome::PreferredNotAvailable, None);
            }
            let change = PartitionChange {
                leader: Some(preferred),
                ..PartitionChange::default()
            };
            (ElectionOutcome::Elected(preferred), Some(change))
        }
        ElectionType::Unclean => {
            if partition.leader != NO_LEADER {
                return (ElectionOutcome::NotNeeded, None);
            }
            // An ISR member first: nothing is lost if one is back.
            let clean = partition
                .replicas
                .iter()
                .copied()
                .find(|id| live(id) && partition.isr.contains(id));
            let chosen = clean.or_else(|| partition.replicas.iter().copied().find(|id| live(id)));
            match chosen {
                Some(leader) => {
                    let isr = if partition.isr.contains(&leader) {
                        None
                    } else {
                        tracing::warn!(
                            topic,
                            partition = index,
                            leader,
                            "unclean leader election: records only the old ISR held are lost"
                        );
                        Some(vec![leader])
                    };
                    let change = PartitionChange {
                        leader: Some(leader),
                        isr,
                        ..PartitionChange::default()
                    };
                    (ElectionOutcome::Elected(leader), Some(change))
                }
                None => (ElectionOutcome::EligibleNotAvailable, None),
            }
        }
    }
}

/// The topic config key, also a cluster-wide and a static broker default.
pub const UNCLEAN_CONFIG: &str = "unclean.leader.election.enable";

/// Whether `topic` may elect a leader from outside its ISR on its own, resolved as Kafka does: the topic's
/// config, else the cluster-wide dynamic default (IncrementalAlterConfigs on the broker resource), else the
/// static broker config `default`.
pub fn unclean_allowed(image: &MetadataImage, topic: &str, default: bool) -> bool {
    image
        .topics
        .get(topic)
        .and_then(|t| t.configs.get(UNCLEAN_CONFIG))
        .or_else(|| image.broker_configs.get(UNCLEAN_CONFIG))
        .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

/// The elections that give a leader to every leaderless partition that may take one from outside its ISR
/// (as Kafka's controller does periodically when `unclean.leader.election.enable` is true): a live ISR
/// member if one is back, else the first live replica, which then is the whole ISR.
pub fn automatic_unclean_elections(image: &MetadataImage, default: bool) -> Vec<MetadataChange> {
    let mut changes = Vec::new();
    for topic in image.topics.values() {
        if !topic.partitions.iter().any(|p| p.leader == NO_LEADER)
            || !unclean_allowed(image, &topic.name, default)
        {
            continue;
        }
        for (index, partition) in topic.partitions.iter().enumerate() {
            if partition.leader != NO_LEADER {
                continue;
            }
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            if let (ElectionOutcome::Elected(_), Some(change)) =
                decide(image, &topic.name, index, ElectionType::Unclean)
            {
                changes.push(MetadataChange::ChangePartition {
                    topic: topic.name.clone(),
                    partition: index,
                    change,
                });
            }
        }
    }
    changes
}

/// Partitions whose preferred leader should lead again under Kafka's rule: for each broker, when more
/// than `percentage` % of the partitions it is preferred for are led by others, every one of those whose
/// preferred replica is live and in sync moves back.
pub fn imbalanced_partitions(image: &MetadataImage, percentage: u32) -> Vec<(String, i32)> {
    let mut preferred_for: BTreeMap<NodeId, (usize, Vec<(String, i32)>)> = BTreeMap::new();
    for topic in image.topics.values() {
        for (index, partition) in topic.partitions.iter().enumerate() {
            let Some(preferred) = partition.replicas.first().copied() else {
                continue;
            };
            // A draining broker hands its leaderships away; electing it back would undo that.
            if image.draining(preferred) {
                continue;
            }
            let entry = preferred_for.entry(preferred).or_default();
            entry.0 += 1;
            if partition.leader != preferred {
                entry
                    .1
                    .push((topic.name.clone(), i32::try_from(index).unwrap_or(i32::MAX)));
            }
        }
    }
    preferred_for
        .into_values()
        .filter(|(total, misplaced)| misplaced.len() * 100 > *total * percentage as usize)
        .flat_map(|(_, misplaced)| misplaced)
        .filter(|(topic, index)| {
            matches!(
                decide(image, topic, *index, ElectionType::Preferred).0,
                ElectionOutcome::Elected(_)
            )
        })
        .collect()
}

impl Controller {
    /// ElectLeaders: `partitions` None means every partition (Kafka's "all").
    pub async fn elect_leaders(
        &self,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<(String, i32, ElectionOutcome)>, TopicError> {
        match self
            .call(super::ControllerCall::ElectLeaders {
                election_type,
                partitions,
            })
            .await?
        {
            CallOutput::Elections(outcomes) => Ok(outcomes),
            other => Err(super::calls::unexpected(&other)),
        }
    }

    pub(super) async fn elect_leaders_here(
        &self,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<(CallOutput, u64), TopicError> {
        let _decisions = self.topic_admin.lock().await;
        let image = self.image();
        let partitions = partitions.unwrap_or_else(|| {
            image
                .topics
                .values()
                .flat_map(|t| (0..t.partition_count()).map(move |i| (t.name.clone(), i)))
                .collect()
        });
        let mut outcomes = Vec::with_capacity(partitions.len());
        let mut changes = Vec::new();
        for (topic, index) in partitions {
            let (outcome, change) = decide(&image, &topic, index, election_type);
            if let Some(change) = change {
                changes.push(MetadataChange::ChangePartition {
                    topic: topic.clone(),
                    partition: index,
                    change,
                });
            }
            outcomes.push((topic, index, outcome));
        }
        let index = if changes.is_empty() {
            0
        } else {
            self.submit(changes).await?.1
        };
        Ok((CallOutput::Elections(outcomes), index))
    }

    /// `auto.leader.rebalance.enable`: moves leadership back to preferred replicas where Kafka's
    /// imbalance rule says so. Active controller only.
    pub(super) async fn rebalance_leaders(&self, percentage: u32) -> Result<usize, TopicError> {
        let image = self.image();
        let partitions = imbalanced_partitions(&image, percentage);
        if partitions.is_empty() {
            return Ok(0);
        }
        let count = partitions.len();
        tracing::info!(
            partitions = count,
            "moving leadership back to preferred replicas"
        );
        self.elect_leaders_here(ElectionType::Preferred, Some(partitions))
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cluster::{
        image::{BrokerRegistration, PartitionRegistration, TopicMetadata},
        store::apply_change,
    };

    fn image(partitions: Vec<PartitionRegistration>, fenced: &[NodeId]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=3 {
            image.brokers.insert(
                id,
                BrokerRegistration {
                    fenced: fenced.contains(&id),
                    ..BrokerRegistration::bare(id, 1)
                },
            );
        }
        image.topics.insert(
            "t".into(),
            TopicMetadata {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                replication_factor: 3,
                partitions,
                configs: Default::default(),
            },
        );
        image
    }

    fn led_by(replicas: Vec<NodeId>, leader: NodeId) -> PartitionRegistration {
        PartitionRegistration {
            leader,
            ..PartitionRegistration::new(replicas)
        }
    }

    #[test]
    fn the_preferred_replica_leads_again_only_when_live_and_in_sync() {
        let start = image(vec![led_by(vec![1, 2, 3], 2)], &[]);
        let (outcome, change) = decide(&start, "t", 0, ElectionType::Preferred);
        assert_eq!(outcome, ElectionOutcome::Elected(1));
        let after = apply_change(
            &start,
            MetadataChange::ChangePartition {
                topic: "t".into(),
                partition: 0,
                change: change.unwrap(),
            },
        )
        .unwrap();
        assert_eq!(after.topics["t"].partitions[0].leader_epoch, 1);
        assert_eq!(
            decide(&after, "t", 0, ElectionType::Preferred).0,
            ElectionOutcome::NotNeeded
        );
        let fenced = image(vec![led_by(vec![1, 2, 3], 2)], &[1]);
        assert_eq!(
            decide(&fenced, "t", 0, ElectionType::Preferred).0,
            ElectionOutcome::PreferredNotAvailable
        );
        let mut out_of_sync = led_by(vec![1, 2, 3], 2);
        out_of_sync.isr = vec![2, 3];
        assert_eq!(
            decide(
                &image(vec![out_of_sync], &[]),
                "t",
                0,
                ElectionType::Preferred
            )
            .0,
            ElectionOutcome::PreferredNotAvailable
        );
    }

    #[test]
    fn unclean_election_prefers_the_isr_and_otherwise_resets_it() {
        let mut leaderless = led_by(vec![1, 2, 3], NO_LEADER);
        leaderless.isr = vec![1];
        let (outcome, change) = decide(
            &image(vec![leaderless], &[1]),
            "t",
            0,
            ElectionType::Unclean,
        );
        assert_eq!(outcome, ElectionOutcome::Elected(2));
        assert_eq!(change.unwrap().isr, Some(vec![2]));
        let led = led_by(vec![1, 2, 3], 1);
        assert_eq!(
            decide(&image(vec![led], &[]), "t", 0, ElectionType::Unclean).0,
            ElectionOutcome::NotNeeded
        );
    }

    #[test]
    fn automatic_unclean_elections_follow_the_topic_then_the_cluster_then_the_broker_default() {
        let mut leaderless = led_by(vec![1, 2, 3], NO_LEADER);
        leaderless.isr = vec![1];
        let start = image(vec![leaderless, led_by(vec![2, 3, 1], 2)], &[1]);
        assert!(
            automatic_unclean_elections(&start, false).is_empty(),
            "off by default: the partition waits for broker 1"
        );
        let elected = |image: &MetadataImage, default| {
            automatic_unclean_elections(image, default)
                .into_iter()
                .map(|c| match c {
                    MetadataChange::ChangePartition {
                        partition, change, ..
                    } => (partition, change.leader, change.isr),
                    other => panic!("unexpected change {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        let only_the_leaderless = vec![(0, Some(2), Some(vec![2]))];
        assert_eq!(
            elected(&start, true),
            only_the_leaderless,
            "static broker default"
        );
        let mut cluster_wide = start.clone();
        cluster_wide
            .broker_configs
            .insert(UNCLEAN_CONFIG.into(), "true".into());
        assert_eq!(
            elected(&cluster_wide, false),
            only_the_leaderless,
            "cluster-wide dynamic default"
        );
        let with_topic_config = |image: &MetadataImage, value: &str| {
            let mut image = image.clone();
            let topic = image.topics.get_mut("t").unwrap();
            topic.configs.insert(UNCLEAN_CONFIG.into(), value.into());
            image
        };
        assert!(
            elected(&with_topic_config(&cluster_wide, "false"), true).is_empty(),
            "the topic's own config wins"
        );
        assert_eq!(
            elected(&with_topic_config(&start, "true"), false),
            only_the_leaderless
        );
        let everyone_fenced = image(
            vec![{
                let mut p = led_by(vec![1, 2, 3], NO_LEADER);
                p.isr = vec![1];
                p
            }],
            &[1, 2, 3],
        );
        assert!(
            elected(&everyone_fenced, true).is_empty(),
            "no live replica: still leaderless"
        );
    }

    #[test]
    fn rebalancing_follows_the_ten_percent_rule() {
        // Broker 1 is preferred for 10 partitions and leads 9: 10 % misplaced is not above 10 %.
        let mut partitions: Vec<_> = (0..9).map(|_| led_by(vec![1, 2, 3], 1)).collect();
        partitions.push(led_by(vec![1, 2, 3], 2));
        assert!(imbalanced_partitions(&image(partitions.clone(), &[]), 10).is_empty());
        partitions[0].leader = 3;
        let moved = imbalanced_partitions(&image(partitions, &[]), 10);
        assert_eq!(moved, [("t".to_owned(), 0), ("t".to_owned(), 9)]);
    }
}
