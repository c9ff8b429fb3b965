//! Replica placement for new partitions, the way Kafka's assignor places them (`AdminUtils`'
//! rack-aware assignment, whose goals KRaft's `StripedReplicaPlacer` keeps): each partition's replicas on
//! as many distinct racks as the live brokers allow, leaders spread evenly over the brokers, and followers
//! shifted from block to block so the same brokers are not always paired.
//!
//! Placement is a pure function of the topic name, the partition index and the live brokers: partitions
//! added later to a topic (CreatePartitions) continue the pattern of the ones before, so a topic grown from
//! 3 to 6 partitions is placed as if it had been created with 6. Kafka draws the start offsets at random;
//! here they come from a hash of the topic name, so different topics still start on different brokers while
//! every placement stays reproducible.
//!
//! Racks follow KRaft, not the ZooKeeper-era tools: Kafka's controller never refuses a placement because
//! only some brokers have `broker.rack` (the "Not all brokers have rack information" refusal belongs to
//! the old `--zookeeper` path and `kafka-reassign-partitions`); brokers without a rack are grouped as one
//! more rack. Must never place on a fenced broker, and never reads anything but the image it is given.

use std::collections::BTreeMap;

use super::TopicError;
use crate::cluster::image::{MetadataImage, NodeId, PartitionRegistration};

/// Places `count` new partitions of `topic`, numbered from `existing.len()`, on the image's live brokers.
/// `existing` are the topic's current partitions (empty for a new topic); the first one's preferred
/// leader anchors the pattern, as Kafka's CreatePartitions anchors it.
pub(super) fn place_partitions(
    image: &MetadataImage,
    topic: &str,
    existing: &[PartitionRegistration],
    count: i32,
    replication_factor: i16,
) -> Result<Vec<PartitionRegistration>, TopicError> {
    if replication_factor < 1 {
        return Err(TopicError::ReplicationFactorTooSmall(replication_factor));
    }
    let brokers: Vec<(NodeId, Option<&str>)> = image
        .live_brokers()
        // A draining broker is being emptied: a new replica there would only have to move again.
        .filter(|b| !image.draining(b.id))
        .map(|b| (b.id, b.rack.as_deref()))
        .collect();
    let factor = usize::try_from(replication_factor).unwrap_or(usize::MAX);
    if factor > brokers.len() {
        return Err(TopicError::ReplicationFactorTooLarge {
            requested: replication_factor,
            available: brokers.len(),
        });
    }
    let layout = RackLayout::new(&brokers);
    let anchor = existing.first().and_then(|p| p.replicas.first().copied());
    let pattern = Pattern::new(&layout, topic, anchor);
    let first = existing.len();
    let count = usize::try_from(count).unwrap_or(0);
    Ok((first..first + count)
        .map(|index| PartitionRegistration::new(pattern.replicas(&layout, index, factor)))
        .collect())
}

/// The live brokers grouped by rack, and Kafka's rack-alternated order of them: the first broker of every
/// rack, then the second of every rack, and so on (racks by name, brokers by id). Walking this list puts
/// consecutive replicas on different racks as long as racks have brokers left.
#[derive(Debug)]
struct RackLayout {
    alternated: Vec<NodeId>,
    /// Rack (as an index into the sorted racks) of each entry of `alternated`.
    rack_of: Vec<usize>,
    /// Number of live brokers in each rack.
    rack_sizes: Vec<usize>,
}

impl RackLayout {
    fn new(brokers: &[(NodeId, Option<&str>)]) -> Self {
        let mut racks: BTreeMap<Option<&str>, Vec<NodeId>> = BTreeMap::new();
        for (id, rack) in brokers {
            racks.entry(*rack).or_default().push(*id);
        }
        let mut racks: Vec<Vec<NodeId>> = racks.into_values().collect();
        for members in &mut racks {
            members.sort_unstable();
        }
        let deepest = racks.iter().map(Vec::len).max().unwrap_or(0);
        let mut alternated = Vec::with_capacity(brokers.len());
        let mut rack_of = Vec::with_capacity(brokers.len());
        for depth in 0..deepest {
            for (rack, members) in racks.iter().enumerate() {
                if let Some(id) = members.get(depth) {
                    alternated.push(*id);
                    rack_of.push(rack);
                }
            }
        }
        Self {
            alternated,
            rack_of,
            rack_sizes: racks.iter().map(Vec::len).collect(),
        }
    }

    fn brokers(&self) -> usize {
        self.alternated.len()
    }
}

/// Where a topic's pattern starts in the rack-alternated list, and its first follower shift.
#[derive(Debug)]
struct Pattern {
    start: usize,
    shift: usize,
}

impl Pattern {
    fn new(layout: &RackLayout, topic: &str, anchor: Option<NodeId>) -> Self {
        let brokers = layout.brokers().max(1);
        let seed = fnv1a(topic.as_bytes());
        // Kafka keeps partition 0's leader as the start when it grows a topic, so new leaders go on from
        // the old ones even if brokers came or went since; the hash is the start a new topic would get.
        let hashed = usize::try_from(seed % brokers as u64).unwrap_or(0);
        let start = anchor
            .and_then(|id| layout.alternated.iter().position(|b| *b == id))
            .unwrap_or(hashed);
        let shift = usize::try_from((seed >> 32) % brokers as u64).unwrap_or(0);
        Self { start, shift }
    }

    /// The replicas of partition `index`, preferred leader first. The leader steps through the
    /// rack-alternated list one broker per partition; followers are taken walking on from the leader at an
    /// offset that grows by one rack-round per full pass over the brokers, skipping a broker whose rack
    /// already holds more replicas than some rack that still has a free broker.
    fn replicas(&self, layout: &RackLayout, index: usize, factor: usize) -> Vec<NodeId> {
        let brokers = layout.brokers();
        let leader = (self.start + index) % brokers;
        let mut chosen = Vec::with_capacity(factor);
        chosen.push(leader);
        if factor == 1 || brokers == 1 {
            return vec![layout.alternated[leader]];
        }
        let others = brokers - 1;
        let racks = layout.rack_sizes.len();
        let pass_shift = ((self.shift + index / brokers) % others) * (racks % others) % others;
        let mut per_rack = vec![0usize; racks];
        per_rack[layout.rack_of[leader]] = 1;
        let mut step = 0usize;
        while chosen.len() < factor {
            let candidate = (leader + 1 + (pass_shift + step) % others) % brokers;
            step += 1;
            if chosen.contains(&candidate) {
                continue;
            }
            let rack = layout.rack_of[candidate];
            // The candidate's own rack has a free broker (the candidate), so the minimum exists.
            let lowest = (0..racks)
                .filter(|r| per_rack[*r] < layout.rack_sizes[*r])
                .map(|r| per_rack[r])
                .min()
                .unwrap_or(0);
            if per_rack[rack] > lowest {
                continue;
            }
            per_rack[rack] += 1;
            chosen.push(candidate);
        }
        chosen.into_iter().map(|i| layout.alternated[i]).collect()
    }
}

/// 64-bit FNV-1a: a stable hash (unlike std's, which may change between Rust releases), so a topic keeps
/// its start offsets across builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
