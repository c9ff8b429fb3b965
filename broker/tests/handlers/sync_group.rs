//! SyncGroup (key 14).

use kafka_protocol::{
    messages::{sync_group_request::SyncGroupRequestAssignment, SyncGroupRequest},
    ResponseError,
};

use crate::{
    code, group_broker, group_id, group_state, join_new_member, join_request, s, stable_group, sync,
};

#[tokio::test]
async fn the_leader_hands_out_assignments_and_each_member_gets_its_own() {
    let broker = group_broker().start().await;
    let (first, _) = stable_group(&broker, "g").await;
    let second = broker
        .call(join_request("g", ""), 9)
        .await
        .member_id
        .to_string();
    let (a, b) = tokio::join!(
        broker.call(join_request("g", &first), 9),
        broker.call(join_request("g", &second), 9)
    );
    assert_eq!((a.error_code, b.error_code), (0, 0));
    let generation = a.generation_id;
    let follower = SyncGroupRequest::default()
        .with_group_id(group_id("g"))
        .with_generation_id(generation)
        .with_member_id(s(&second));
    let (follower_sync, leader_sync) = tokio::join!(broker.call(follower, 3), async {
        tokio::task::yield_now().await;
        sync(
            &broker,
            "g",
            generation,
            &first,
            &[(&first, b"A"), (&second, b"B")],
        )
        .await
    });
    assert_eq!(
        (leader_sync.error_code, &leader_sync.assignment[..]),
        (0, &b"A"[..])
    );
    assert_eq!(
        (follower_sync.error_code, &follower_sync.assignment[..]),
        (0, &b"B"[..]),
        "the follower waited for the leader"
    );
    assert_eq!(
        leader_sync.protocol_type.as_deref(),
        Some("consumer"),
        "v5 names the protocol"
    );
    assert_eq!(leader_sync.protocol_name.as_deref(), Some("range"));
    assert_eq!(group_state(&broker, "g").await, "Stable");
    let again = sync(&broker, "g", generation, &second, &[]).await;
    assert_eq!(
        (again.error_code, &again.assignment[..]),
        (0, &b"B"[..]),
        "a stable group repeats the assignment"
    );
}

#[tokio::test]
async fn every_version_syncs() {
    let broker = group_broker().start().await;
    for version in 0..=5 {
        let group = format!("g{version}");
        let joined = join_new_member(&broker, &group).await;
        let mut request = SyncGroupRequest::default()
            .with_group_id(group_id(&group))
            .with_generation_id(joined.generation_id)
            .with_member_id(joined.member_id.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(bytes::Bytes::from_static(b"mine"))]);
        if version >= 5 {
            request = request
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
        }
        let response = broker.call(request, version).await;
        assert_eq!(
            (response.error_code, &response.assignment[..]),
            (0, &b"mine"[..]),
            "SyncGroup v{version}"
        );
    }
}

#[tokio::test]
async fn wrong_members_generations_and_protocols_are_refused() {
    let broker = group_broker().start().await;
    let joined = join_new_member(&broker, "g").await;
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    let cases = [
        (
            "an unknown group",
            sync(&broker, "ghost", generation, &member, &[]).await,
            ResponseError::UnknownMemberId,
        ),
        (
            "an unknown member",
            sync(&broker, "g", generation, "stranger", &[]).await,
            ResponseError::UnknownMemberId,
        ),
        (
            "an old generation",
            sync(&broker, "g", generation - 1, &member, &[]).await,
            ResponseError::IllegalGeneration,
        ),
    ];
    for (what, response, error) in cases {
        assert_eq!(response.error_code, code(error), "{what}");
    }
    let other_protocol = SyncGroupRequest::default()
        .with_group_id(group_id("g"))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("roundrobin")));
    let response = broker.call(other_protocol, 5).await;
    assert_eq!(
        response.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        group_state(&broker, "g").await,
        "CompletingRebalance",
        "refused syncs change nothing"
    );
}

#[tokio::test]
async fn a_sync_during_a_new_rebalance_is_told_to_rejoin() {
    let broker = group_broker().start().await;
    let (first, generation) = stable_group(&broker, "g").await;
    let second = broker
        .call(join_request("g", ""), 9)
        .await
        .member_id
        .to_string();
    let (_, response) = tokio::join!(broker.call(join_request("g", &second), 9), async {
        tokio::task::yield_now().await;
        let response = sync(&broker, "g", generation, &first, &[]).await;
        // Let the parked join finish.
        broker.call(join_request("g", &first), 9).await;
        response
    });
    assert_eq!(
        response.error_code,
        code(ResponseError::RebalanceInProgress)
    );
}
