//! DescribeLogDirs (key 35, v1-4): this broker's one log directory, with the size of every partition
//! replica it holds (leader or follower) and the directory's total and usable bytes (v4). The Java
//! AdminClient's `describeLogDirs` and `kafka-reassign-partitions.sh --generate` call it on each broker.

use std::collections::BTreeMap;

use kafka_protocol::{
    messages::{
        describe_log_dirs_response::{
            DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
        },
        DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
    },
    protocol::StrBytes,
    ResponseError,
};

use super::{code, RequestContext};
use crate::storage_health::free_space;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for partition in ctx.broker.replicas.all_partitions() {
        let asked = wanted.as_ref().is_none_or(|w| {
            w.get(&partition.topic)
                .is_some_and(|indexes| indexes.contains(&partition.index))
        });
        if !asked {
            continue;
        }
        let stats = partition.log_stats();
        let lag = (partition.high_watermark() - stats.log_end_offset).max(0);
        by_topic.entry(partition.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition.index)
                .with_partition_size(i64::try_from(stats.size_bytes).unwrap_or(i64::MAX))
                .with_offset_lag(lag)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    let dir = &ctx.broker.config.data_dir;
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    match free_space(dir) {
        Ok((usable, total)) => {
            result = result
                .with_total_bytes(i64::try_from(total).unwrap_or(i64::MAX))
                .with_usable_bytes(i64::try_from(usable).unwrap_or(i64::MAX));
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "DescribeLogDirs: the log directory cannot be measured");
            result = result
                .with_error_code(code(ResponseError::KafkaStorageError))
                .with_total_bytes(-1)
                .with_usable_bytes(-1);
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
