//! Heartbeat (key 12).

use kafka_protocol::{messages::HeartbeatRequest, ResponseError};

use crate::{
    code, eventually, group_broker, group_id, group_state, heartbeat_request, join_request, s,
    stable_group, sync,
};

#[tokio::test]
async fn a_stable_member_heartbeats_in_every_version() {
    let broker = group_broker().start().await;
    let (member, generation) = stable_group(&broker, "g").await;
    for version in 0..=4 {
        let response = broker
            .call(heartbeat_request("g", generation, &member), version)
            .await;
        assert_eq!(response.error_code, 0, "Heartbeat v{version}");
    }
}

#[tokio::test]
async fn wrong_members_and_generations_are_refused() {
    let broker = group_broker().start().await;
    let (member, generation) = stable_group(&broker, "g").await;
    let cases = [
        (
            "an unknown group",
            heartbeat_request("ghost", generation, &member),
            ResponseError::UnknownMemberId,
        ),
        (
            "an unknown member",
            heartbeat_request("g", generation, "stranger"),
            ResponseError::UnknownMemberId,
        ),
        (
            "an old generation",
            heartbeat_request("g", generation - 1, &member),
            ResponseError::IllegalGeneration,
        ),
    ];
    for (what, request, error) in cases {
        assert_eq!(
            broker.call(request, 4).await.error_code,
            code(error),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_static_member_with_the_wrong_member_id_is_fenced() {
    let broker = group_broker().start().await;
    let joined = broker
        .call(
            join_request("static", "").with_group_instance_id(Some(s("i1"))),
            5,
        )
        .await;
    assert_eq!(joined.error_code, 0);
    let request = HeartbeatRequest::default()
        .with_group_id(group_id("static"))
        .with_generation_id(joined.generation_id)
        .with_member_id(s("not-the-owner"))
        .with_group_instance_id(Some(s("i1")));
    assert_eq!(
        broker.call(request, 3).await.error_code,
        code(ResponseError::FencedInstanceId)
    );
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let broker = group_broker()
        .property("group.min.session.timeout.ms", "100")
        .start()
        .await;
    let short = |member: &str| {
        join_request("g", member)
            .with_session_timeout_ms(300)
            .with_rebalance_timeout_ms(300)
    };
    let first = broker.call(short(""), 9).await;
    let joined = broker.call(short(&first.member_id), 9).await;
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    assert_eq!(
        sync(
            &broker,
            "g",
            joined.generation_id,
            &member,
            &[(&member, b"x")]
        )
        .await
        .error_code,
        0
    );
    // Heartbeats keep it: three session timeouts pass while it beats every 100 ms.
    for _ in 0..9 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let beat = broker
            .call(heartbeat_request("g", joined.generation_id, &member), 4)
            .await;
        assert_eq!(beat.error_code, 0, "a heartbeating member was removed");
    }
    eventually("the silent member's session expired", || async {
        group_state(&broker, "g").await == "Empty"
    })
    .await;
    let late = broker
        .call(heartbeat_request("g", joined.generation_id, &member), 4)
        .await;
    assert_eq!(late.error_code, code(ResponseError::UnknownMemberId));
}
