//! JoinGroup (key 11).

use kafka_protocol::{messages::JoinGroupRequest, ResponseError};
use tributary_broker::testing::CLIENT_ID;

use crate::{
    code, group_broker, group_state, heartbeat_request, join_new_member, join_request, s,
    stable_group, subscription,
};

#[tokio::test]
async fn a_v4_plus_member_first_gets_an_id_then_leads_its_group() {
    let broker = group_broker().start().await;
    for version in 4..=9 {
        let group = format!("g{version}");
        let first = broker.call(join_request(&group, ""), version).await;
        assert_eq!(
            first.error_code,
            code(ResponseError::MemberIdRequired),
            "v{version}"
        );
        assert!(
            first.member_id.starts_with(CLIENT_ID),
            "v{version}: member id {:?} starts with the client id",
            first.member_id
        );
        let joined = broker
            .call(join_request(&group, &first.member_id), version)
            .await;
        assert_eq!(joined.error_code, 0, "v{version}");
        assert_eq!(joined.generation_id, 1, "v{version}: the first generation");
        assert_eq!(
            (joined.member_id.clone(), joined.leader.clone()),
            (first.member_id.clone(), first.member_id.clone()),
            "v{version}: the only member leads"
        );
        assert_eq!(joined.protocol_name.as_deref(), Some("range"), "v{version}");
        if version >= 7 {
            assert_eq!(
                joined.protocol_type.as_deref(),
                Some("consumer"),
                "v{version}"
            );
        }
        assert_eq!(
            joined.members.len(),
            1,
            "v{version}: the leader sees every member"
        );
        assert_eq!(
            joined.members[0].metadata,
            subscription(&["events"]),
            "v{version}: with its metadata"
        );
        assert_eq!(
            group_state(&broker, &group).await,
            "CompletingRebalance",
            "v{version}: waiting for the leader's sync"
        );
    }
}

#[tokio::test]
async fn before_v4_a_member_joins_without_a_round_trip() {
    let broker = group_broker().start().await;
    for version in 0..=3 {
        let group = format!("old{version}");
        let mut request = join_request(&group, "");
        if version == 0 {
            request = request.with_rebalance_timeout_ms(-1);
        }
        let joined = broker.call(request, version).await;
        assert_eq!(
            (joined.error_code, joined.generation_id),
            (0, 1),
            "v{version}"
        );
        assert!(
            !joined.member_id.is_empty(),
            "v{version}: the member id is assigned at once"
        );
    }
}

#[tokio::test]
async fn invalid_joins_are_refused() {
    let broker = group_broker().start().await;
    let cases: Vec<(&str, JoinGroupRequest, ResponseError)> = vec![
        (
            "empty group id",
            join_request("", ""),
            ResponseError::InvalidGroupId,
        ),
        (
            "session below group.min.session.timeout.ms",
            join_request("g", "").with_session_timeout_ms(10),
            ResponseError::InvalidSessionTimeout,
        ),
        (
            "session above group.max.session.timeout.ms",
            join_request("g", "").with_session_timeout_ms(1_800_001),
            ResponseError::InvalidSessionTimeout,
        ),
        (
            "no protocols",
            join_request("g", "").with_protocols(Vec::new()),
            ResponseError::InconsistentGroupProtocol,
        ),
        (
            "an unknown member of an unknown group",
            join_request("nobody-here", "made-up"),
            ResponseError::UnknownMemberId,
        ),
    ];
    for (what, request, error) in cases {
        let response = broker.call(request, 9).await;
        assert_eq!(response.error_code, code(error), "{what}");
        assert_eq!(response.generation_id, -1, "{what}");
    }
}

#[tokio::test]
async fn a_member_with_another_protocol_cannot_join() {
    let broker = group_broker().start().await;
    stable_group(&broker, "g").await;
    let other_type = join_request("g", "").with_protocol_type(s("connect"));
    assert_eq!(
        broker.call(other_type, 3).await.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let unknown_member = join_request("g", "made-up");
    assert_eq!(
        broker.call(unknown_member, 9).await.error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[tokio::test]
async fn a_second_member_starts_a_rebalance_that_completes_when_the_first_rejoins() {
    let broker = group_broker().start().await;
    let (first, generation) = stable_group(&broker, "g").await;
    let second = broker
        .call(join_request("g", ""), 9)
        .await
        .member_id
        .to_string();
    let (second_joined, first_rejoined) =
        tokio::join!(broker.call(join_request("g", &second), 9), async {
            tokio::task::yield_now().await;
            let beat = broker
                .call(heartbeat_request("g", generation, &first), 4)
                .await;
            assert_eq!(
                beat.error_code,
                code(ResponseError::RebalanceInProgress),
                "the first member is told to rejoin"
            );
            broker.call(join_request("g", &first), 9).await
        });
    assert_eq!(
        (first_rejoined.error_code, second_joined.error_code),
        (0, 0)
    );
    assert_eq!(first_rejoined.generation_id, generation + 1);
    assert_eq!(second_joined.generation_id, generation + 1);
    assert_eq!(
        &*first_rejoined.leader,
        first.as_str(),
        "the existing leader keeps leading"
    );
    assert_eq!(
        first_rejoined.members.len(),
        2,
        "the leader sees both members"
    );
    assert!(
        second_joined.members.is_empty(),
        "followers get no member list"
    );
}

#[tokio::test]
async fn static_members_keep_their_instance_and_fence_impostors() {
    let broker = group_broker().start().await;
    let with_instance =
        |member: &str| join_request("static", member).with_group_instance_id(Some(s("instance-1")));
    let joined = broker.call(with_instance(""), 5).await;
    assert_eq!(
        joined.error_code, 0,
        "a static member needs no MEMBER_ID_REQUIRED round trip"
    );
    assert_eq!(
        joined.members[0].group_instance_id.as_deref(),
        Some("instance-1"),
        "v5+ list instance ids"
    );
    let impostor = broker.call(with_instance("someone-else"), 5).await;
    assert_eq!(impostor.error_code, code(ResponseError::FencedInstanceId));
}

#[tokio::test]
async fn a_retried_join_of_a_known_member_returns_the_current_generation() {
    let broker = group_broker().start().await;
    let joined = join_new_member(&broker, "g").await;
    let retried = broker.call(join_request("g", &joined.member_id), 9).await;
    assert_eq!(
        (retried.error_code, retried.generation_id),
        (0, joined.generation_id),
        "no new rebalance for a retry"
    );
}
