//! LeaveGroup (key 13).

use kafka_protocol::{
    messages::{leave_group_request::MemberIdentity, LeaveGroupRequest},
    ResponseError,
};

use crate::{
    code, group_broker, group_id, group_state, heartbeat_request, join_request, s, stable_group,
};

fn leave_v0(group: &str, member: &str) -> LeaveGroupRequest {
    LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_member_id(s(member))
}

fn leave_many(group: &str, members: &[(&str, Option<&str>)]) -> LeaveGroupRequest {
    LeaveGroupRequest::default()
        .with_group_id(group_id(group))
        .with_members(
            members
                .iter()
                .map(|(id, instance)| {
                    MemberIdentity::default()
                        .with_member_id(s(id))
                        .with_group_instance_id(instance.map(s))
                })
                .collect(),
        )
}

#[tokio::test]
async fn before_v3_one_member_leaves_and_the_group_empties() {
    let broker = group_broker().start().await;
    for version in 0..=2 {
        let group = format!("g{version}");
        let (member, _) = stable_group(&broker, &group).await;
        let response = broker.call(leave_v0(&group, &member), version).await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(
            group_state(&broker, &group).await,
            "Empty",
            "v{version}: the last member left"
        );
        let again = broker.call(leave_v0(&group, &member), version).await;
        assert_eq!(
            again.error_code,
            code(ResponseError::UnknownMemberId),
            "v{version}: leaving twice"
        );
    }
}

#[tokio::test]
async fn from_v3_members_leave_in_batches_with_an_error_each() {
    let broker = group_broker().start().await;
    for version in 3..=5 {
        let group = format!("g{version}");
        let (member, _) = stable_group(&broker, &group).await;
        let response = broker
            .call(
                leave_many(&group, &[(&member, None), ("stranger", None)]),
                version,
            )
            .await;
        assert_eq!(
            response.error_code, 0,
            "v{version}: the request as a whole succeeds"
        );
        let codes: Vec<(String, i16)> = response
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (member.clone(), 0),
                ("stranger".to_owned(), code(ResponseError::UnknownMemberId))
            ],
            "v{version}"
        );
        assert_eq!(group_state(&broker, &group).await, "Empty");
    }
}

#[tokio::test]
async fn static_members_leave_by_instance_id() {
    let broker = group_broker().start().await;
    let joined = broker
        .call(
            join_request("static", "").with_group_instance_id(Some(s("i1"))),
            5,
        )
        .await;
    assert_eq!(joined.error_code, 0);
    let wrong = broker
        .call(leave_many("static", &[("someone-else", Some("i1"))]), 4)
        .await;
    assert_eq!(
        wrong.members[0].error_code,
        code(ResponseError::FencedInstanceId)
    );
    let right = broker
        .call(leave_many("static", &[("", Some("i1"))]), 4)
        .await;
    assert_eq!(
        right.members[0].error_code, 0,
        "an empty member id with the instance id"
    );
}

#[tokio::test]
async fn a_leave_rebalances_the_members_that_stay() {
    let broker = group_broker().start().await;
    let (first, _) = stable_group(&broker, "g").await;
    let second = broker
        .call(join_request("g", ""), 9)
        .await
        .member_id
        .to_string();
    let (a, _) = tokio::join!(
        broker.call(join_request("g", &first), 9),
        broker.call(join_request("g", &second), 9)
    );
    let generation = a.generation_id;
    assert_eq!(broker.call(leave_v0("g", &second), 2).await.error_code, 0);
    let beat = broker
        .call(heartbeat_request("g", generation, &first), 4)
        .await;
    assert_eq!(
        beat.error_code,
        code(ResponseError::RebalanceInProgress),
        "the one who stays must rejoin"
    );
    let rejoined = broker.call(join_request("g", &first), 9).await;
    assert_eq!(
        (rejoined.error_code, rejoined.generation_id),
        (0, generation + 1)
    );
    assert_eq!(rejoined.members.len(), 1);
}

#[tokio::test]
async fn leaving_an_unknown_group_is_an_unknown_member() {
    let broker = group_broker().start().await;
    assert_eq!(
        broker.call(leave_v0("ghost", "m"), 2).await.error_code,
        code(ResponseError::UnknownMemberId)
    );
    let response = broker.call(leave_many("ghost", &[("m", None)]), 5).await;
    let refused = response.error_code == code(ResponseError::UnknownMemberId)
        || response
            .members
            .iter()
            .all(|m| m.error_code == code(ResponseError::UnknownMemberId));
    assert!(refused, "v5 must refuse the leave somewhere: {response:?}");
}
