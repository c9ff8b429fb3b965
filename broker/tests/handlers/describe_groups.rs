//! DescribeGroups (key 15).

use kafka_protocol::{messages::DescribeGroupsRequest, ResponseError};
use tributary_broker::testing::CLIENT_ID;

use crate::{
    code, commit_simple, create_topic, group_broker, group_id, join_request, s, stable_group,
    subscription,
};

#[tokio::test]
async fn a_stable_group_is_described_with_its_members_in_every_version() {
    let broker = group_broker().start().await;
    let (member, _) = stable_group(&broker, "g").await;
    for version in 0..=6 {
        let response = broker
            .call(
                DescribeGroupsRequest::default().with_groups(vec![group_id("g")]),
                version,
            )
            .await;
        let group = &response.groups[0];
        assert_eq!(group.error_code, 0, "v{version}");
        assert_eq!(&*group.group_state, "Stable", "v{version}");
        assert_eq!(
            (&*group.protocol_type, &*group.protocol_data),
            ("consumer", "range"),
            "v{version}"
        );
        assert_eq!(group.members.len(), 1);
        let m = &group.members[0];
        assert_eq!(&*m.member_id, member.as_str());
        assert_eq!(&*m.client_id, CLIENT_ID);
        assert_eq!(
            m.member_metadata,
            subscription(&["events"]),
            "v{version}: the subscription"
        );
        assert_eq!(
            &m.member_assignment[..],
            b"assignment",
            "v{version}: the leader's assignment"
        );
        if version >= 3 {
            assert_eq!(
                group.authorized_operations,
                i32::MIN,
                "v{version}: not requested"
            );
        }
    }
}

#[tokio::test]
async fn static_instance_ids_are_described_from_v4() {
    let broker = group_broker().start().await;
    let joined = broker
        .call(
            join_request("static", "").with_group_instance_id(Some(s("i1"))),
            5,
        )
        .await;
    assert_eq!(joined.error_code, 0);
    let response = broker
        .call(
            DescribeGroupsRequest::default().with_groups(vec![group_id("static")]),
            4,
        )
        .await;
    assert_eq!(
        response.groups[0].members[0].group_instance_id.as_deref(),
        Some("i1")
    );
}

#[tokio::test]
async fn unknown_groups_are_dead_and_v6_says_not_found() {
    let broker = group_broker().start().await;
    for version in 0..=6 {
        let response = broker
            .call(
                DescribeGroupsRequest::default().with_groups(vec![group_id("ghost")]),
                version,
            )
            .await;
        let group = &response.groups[0];
        assert_eq!(&*group.group_state, "Dead", "v{version}");
        let expected = if version >= 6 {
            code(ResponseError::GroupIdNotFound)
        } else {
            0
        };
        assert_eq!(group.error_code, expected, "v{version}");
        assert!(group.members.is_empty());
    }
}

#[tokio::test]
async fn a_group_that_only_stores_offsets_is_empty() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    commit_simple(&broker, "simple", &[("events", 0, 1)]).await;
    let response = broker
        .call(
            DescribeGroupsRequest::default()
                .with_groups(vec![group_id("simple"), group_id("ghost")]),
            5,
        )
        .await;
    assert_eq!(&*response.groups[0].group_state, "Empty");
    assert_eq!(&*response.groups[0].protocol_type, "");
    assert_eq!(
        &*response.groups[1].group_state, "Dead",
        "one answer per requested group"
    );
}
