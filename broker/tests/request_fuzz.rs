//! Fuzzes the request path from raw frame bytes to response (decoding, dispatch, handlers, encoding) with
//! proptest: valid requests of every advertised API and version are mutated (bit flips, truncation,
//! insertion, header tampering) and fed to the frame entry point of a real broker (the `testing` fixture) with a real data directory.
//! Nothing may panic, and afterwards the broker must still serve and the data written before must be intact.
//!
//! Stable Rust only (cargo-fuzz needs nightly); run longer with `PROPTEST_CASES=100000 cargo test --test
//! request_fuzz`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        create_topics_request::CreatableTopic, fetch_request::*, list_offsets_request::*,
        metadata_request::MetadataRequestTopic, produce_request::*, *,
    },
    protocol::{Request, StrBytes},
};
use proptest::prelude::*;
use tributary_broker::{
    log::builder::BatchBuilder,
    protocol::supported_versions,
    testing::{request_frame, TestBroker},
};

fn batch(value: &[u8]) -> Bytes {
    BatchBuilder::new()
        .timestamp(1_700_000_000_000)
        .record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::copy_from_slice(value)),
        )
        .build()
        .unwrap()
}

fn frame<R: Request>(version: i16, body: &R) -> Vec<u8> {
    request_frame(body, version, 7)
        .unwrap_or_else(|e| panic!("encoding API key {} v{version}: {e}", R::KEY))
        .to_vec()
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("fuzzed"))
}

/// Valid requests for every advertised version of every API: the seeds that mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let versions = |api| {
        supported_versions(api)
            .expect("advertised")
            .filter(move |v| api != ApiKey::Produce || *v >= 3)
    };
    let mut seeds = Vec::new();
    for v in versions(ApiKey::ApiVersions) {
        seeds.push(frame(v, &ApiVersionsRequest::default()));
    }
    for v in versions(ApiKey::Metadata) {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic()))
            ]))
            .with_allow_auto_topic_creation(true);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::Produce) {
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(b"v")))])]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::Fetch).filter(|v| *v < 13) {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::ListOffsets) {
        let request = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic())
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-2)])]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::CreateTopics) {
        let request = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("other")))
            .with_num_partitions(2)
            .with_replication_factor(1)]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::InitProducerId) {
        let request = InitProducerIdRequest::default().with_transaction_timeout_ms(1000);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeTopicPartitions) {
        let request = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                describe_topic_partitions_request::TopicRequest::default().with_name(topic()),
            ])
            .with_response_partition_limit(1)
            .with_cursor(Some(
                describe_topic_partitions_request::Cursor::default()
                    .with_topic_name(topic())
                    .with_partition_index(0),
            ));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeCluster) {
        seeds.push(frame(v, &DescribeClusterRequest::default()));
    }
    for v in versions(ApiKey::DescribeClientQuotas) {
        let request = DescribeClientQuotasRequest::default().with_components(vec![
            describe_client_quotas_request::ComponentData::default()
                .with_entity_type(StrBytes::from_static_str("client-id"))
                .with_match_type(0)
                .with_match(Some(StrBytes::from_static_str("fuzzed"))),
        ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::AlterClientQuotas) {
        let request = AlterClientQuotasRequest::default().with_entries(vec![
            alter_client_quotas_request::EntryData::default()
                .with_entity(vec![alter_client_quotas_request::EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(Some(StrBytes::from_static_str("fuzzed")))])
                .with_ops(vec![alter_client_quotas_request::OpData::default()
                    .with_key(StrBytes::from_static_str("producer_byte_rate"))
                    .with_value(1e9)]),
        ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("fuzzed")),
        ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::CreatePartitions) {
        let request = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("other")))
                .with_count(3),
        ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DeleteTopics) {
        seeds.push(frame(v, &DeleteTopicsRequest::default()));
    }
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        seeds.push(frame(v, &IncrementalAlterConfigsRequest::default()));
    }
    // Empty, like IncrementalAlterConfigs': a mutated resource must not change the fuzz topic's retention.
    for v in versions(ApiKey::AlterConfigs) {
        seeds.push(frame(v, &AlterConfigsRequest::default()));
    }
    let group = || GroupId(StrBytes::from_static_str("fuzz-group"));
    for v in versions(ApiKey::FindCoordinator) {
        let request = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("fuzz-group")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("fuzz-group"))
        };
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::JoinGroup) {
        let request = JoinGroupRequest::default()
            // A group per version: a second member would (rightly) wait for the first to rejoin.
            .with_group_id(GroupId(StrBytes::from_string(format!("fuzz-join-{v}"))))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { -1 })
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"\0\0\0\0\0\0\0\0"))]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::SyncGroup) {
        let request = SyncGroupRequest::default()
            .with_group_id(group())
            .with_member_id(StrBytes::from_static_str("m"));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::Heartbeat) {
        let request = HeartbeatRequest::default()
            .with_group_id(group())
            .with_member_id(StrBytes::from_static_str("m"));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::LeaveGroup) {
        let request = if v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group())
                .with_members(vec![leave_group_request::MemberIdentity::default()
                    .with_member_id(StrBytes::from_static_str("m"))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group())
                .with_member_id(StrBytes::from_static_str("m"))
        };
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::OffsetCommit) {
        let request = OffsetCommitRequest::default()
            .with_group_id(group())
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_committed_offset(1),
                    ]),
            ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::OffsetFetch) {
        let request = if v >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(group()),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(group())
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic())
                        .with_partition_indexes(vec![0]),
                ]))
        };
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeGroups) {
        seeds.push(frame(
            v,
            &DescribeGroupsRequest::default().with_groups(vec![group()]),
        ));
    }
    for v in versions(ApiKey::ListGroups) {
        seeds.push(frame(v, &ListGroupsRequest::default()));
    }
    for v in versions(ApiKey::DeleteGroups) {
        seeds.push(frame(
            v,
            &DeleteGroupsRequest::default().with_groups_names(vec![group()]),
        ));
    }
    for v in versions(ApiKey::OffsetDelete) {
        let request = OffsetDeleteRequest::default()
            .with_group_id(group())
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default(),
                    ]),
            ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        let request = kafka_protocol::messages::OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![
                        kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_leader_epoch(0),
                    ]),
            ]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::ElectLeaders) {
        let request = kafka_protocol::messages::ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(1_000)
            .with_topic_partitions(Some(vec![
                kafka_protocol::messages::elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic())
                    .with_partitions(vec![0]),
            ]));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::AlterPartitionReassignments) {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        let request = kafka_protocol::messages::AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(1_000)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![kafka_protocol::messages::BrokerId(1)])),
                    ReassignablePartition::default().with_partition_index(1),
                ])]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::ListPartitionReassignments) {
        let request = kafka_protocol::messages::ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(1_000)
            .with_topics(Some(vec![
                kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0]),
            ]));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeLogDirs) {
        use kafka_protocol::messages::{
            describe_log_dirs_request::DescribableLogDirTopic, DescribeLogDirsRequest,
        };
        let wanted = DescribableLogDirTopic::default()
            .with_topic(topic())
            .with_partitions(vec![0]);
        let request = DescribeLogDirsRequest::default().with_topics(Some(vec![wanted]));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::UnregisterBroker) {
        // An id nobody registered: the broker answers BROKER_ID_NOT_REGISTERED; mutations may name this
        // broker, which is refused while it runs.
        let request = kafka_protocol::messages::UnregisterBrokerRequest::default()
            .with_broker_id(kafka_protocol::messages::BrokerId(9));
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::AddRaftVoter) {
        // A node that does not follow the log: refused without changing the quorum.
        use kafka_protocol::messages::add_raft_voter_request::Listener;
        let request = kafka_protocol::messages::AddRaftVoterRequest::default()
            .with_voter_id(9)
            .with_timeout_ms(100)
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(1)]);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::RemoveRaftVoter) {
        let request = kafka_protocol::messages::RemoveRaftVoterRequest::default().with_voter_id(9);
        seeds.push(frame(v, &request));
    }
    for v in versions(ApiKey::DescribeQuorum) {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        let request = kafka_protocol::messages::DescribeQuorumRequest::default().with_topics(vec![
            TopicData::default()
                .with_topic_name(kafka_protocol::messages::TopicName(
                    StrBytes::from_static_str("__cluster_metadata"),
                ))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
        ]);
        seeds.push(frame(v, &request));
    }
    // Every advertised API has seeds, so a newly advertised API cannot go unfuzzed.
    for (api, _) in tributary_broker::protocol::SUPPORTED_APIS {
        let key = *api as i16;
        assert!(
            seeds
                .iter()
                .any(|s| i16::from_be_bytes([s[0], s[1]]) == key),
            "no fuzz seed for {api:?}"
        );
    }
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Truncate { len: usize },
    Insert { at: usize, bytes: Vec<u8> },
}

fn mutate(mut frame: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip { at, bit } if !frame.is_empty() => {
                let i = at % frame.len();
                frame[i] ^= 1 << (bit % 8);
            }
            Mutation::Set { at, byte } if !frame.is_empty() => {
                let i = at % frame.len();
                frame[i] = *byte;
            }
            Mutation::Truncate { len } => frame.truncate(*len % (frame.len() + 1)),
            Mutation::Insert { at, bytes } => {
                let i = at % (frame.len() + 1);
                frame.splice(i..i, bytes.iter().copied());
            }
            _ => {}
        }
    }
    frame
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (
            any::<usize>(),
            prop_oneof![Just(0u8), Just(0xff), Just(0x7f), Just(0x80), any::<u8>()]
        )
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    broker: TestBroker,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let broker = runtime.block_on(
            TestBroker::builder()
                .property("num.partitions", "2")
                .group_initial_rebalance_delay_ms(0)
                // A mutated request may park (a join waiting for a rebalance); that is an answer too.
                .call_timeout(Duration::from_millis(200))
                .start(),
        );
        Self { runtime, broker }
    }

    /// Sends one frame and returns the response without its size prefix; a closed connection (Err) is an
    /// acceptable answer to garbage, a panic is not.
    fn send(&self, frame: &[u8]) -> Option<Vec<u8>> {
        self.runtime
            .block_on(self.broker.call_frame(frame))
            .ok()
            .flatten()
            .map(|response| response.to_vec())
    }
}

fn fetch_all(h: &Harness) -> Vec<u8> {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    h.send(&frame(12, &request))
        .expect("a valid fetch must be answered")
}

#[test]
fn mutated_requests_never_panic_or_damage_stored_data() {
    let harness = Harness::new();
    let seeds = seeds();
    // Create the topic and write a known record before fuzzing.
    for seed in &seeds {
        let _ = harness.send(seed);
    }
    let before = fetch_all(&harness);
    let mut sent = BytesMut::new();
    sent.put_slice(&before);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // A mutated CreateTopics/CreatePartitions can ask for up to 1,000,000 partitions, and creating them
    // costs a few fsyncs each: about a third of random seeds grew a topic to over 10,000 partitions and
    // ran for minutes. CI runs one fixed seed; set PROPTEST_RNG_SEED (and PROPTEST_CASES) to explore.
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(1);
    }
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..6));
    runner
        .run(&strategy, |(seed, mutations)| {
            let fuzzed = mutate(seeds[seed].clone(), &mutations);
            let _ = harness.send(&fuzzed);
            Ok(())
        })
        .unwrap();
    // Mutated produce requests may legitimately have appended records; what was there before must be unchanged.
    let after = fetch_all(&harness);
    let records_before = &before[before.len().saturating_sub(batch(b"v").len())..];
    assert!(
        after
            .windows(records_before.len())
            .any(|w| w == records_before),
        "the batch written before fuzzing is no longer served"
    );
    let metadata = MetadataRequest::default().with_topics(None);
    assert!(
        harness.send(&frame(12, &metadata)).is_some(),
        "broker stopped answering Metadata"
    );
}

#[test]
fn every_advertised_version_answers_a_valid_request() {
    let harness = Harness::new();
    for (i, seed) in seeds().iter().enumerate() {
        let api = i16::from_be_bytes([seed[0], seed[1]]);
        let version = i16::from_be_bytes([seed[2], seed[3]]);
        assert!(
            harness.send(seed).is_some(),
            "API key {api} v{version} (seed {i}) got no response"
        );
    }
}

#[test]
fn oversized_and_undersized_frames_are_refused_before_allocation() {
    use tributary_broker::protocol::check_frame_size;
    assert!(check_frame_size(i32::MAX, 100 << 20).is_err());
    assert!(check_frame_size(-1, 100 << 20).is_err());
    assert!(check_frame_size(3, 100 << 20).is_err());
    assert_eq!(check_frame_size(64, 100 << 20).unwrap(), 64);
}

#[test]
fn huge_array_counts_are_a_decode_error_not_an_abort() {
    // Metadata v0 whose topic array claims 54 million entries in 5 bytes (kafka-protocol-rs PR #152).
    let harness = Harness::new();
    let bomb = [0u8, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0x03, 0x3c, 0x0c, 0x00, 0xb6];
    assert!(harness.send(&bomb).is_none());
    let metadata = MetadataRequest::default().with_topics(None);
    assert!(harness.send(&frame(12, &metadata)).is_some());
}

#[test]
fn api_versions_with_an_unknown_version_gets_a_v0_answer_listing_the_ranges() {
    use kafka_protocol::protocol::Decodable;
    let harness = Harness::new();
    // ApiVersions v99 with a v2 (flexible) header the broker cannot know how to read.
    let mut request = vec![0u8, 18, 0, 99, 0, 0, 0, 5, 0, 4];
    request.extend_from_slice(b"test\0\0\0");
    let response = harness
        .send(&request)
        .expect("an unsupported ApiVersions must be answered");
    let mut body = Bytes::from(response);
    let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    assert_eq!(
        correlation, 5,
        "correlation id (v0 header: no tagged fields)"
    );
    let _ = body.split_to(4);
    let decoded = ApiVersionsResponse::decode(&mut body, 0).expect("the body must be v0-shaped");
    assert_eq!(decoded.error_code, 35, "UNSUPPORTED_VERSION");
    let fetch = decoded
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .expect("Fetch listed");
    assert_eq!((fetch.min_version, fetch.max_version), (4, 17));
    assert!(
        bytes::Buf::remaining(&body) == 0,
        "nothing after the v0 body"
    );
}
