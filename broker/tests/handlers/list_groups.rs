//! ListGroups (key 16).

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::{commit_simple, create_topic, group_broker, join_new_member, s, stable_group};

fn listed(response: &ListGroupsResponse) -> Vec<(String, String, String)> {
    let mut groups: Vec<_> = response
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                g.protocol_type.to_string(),
                g.group_state.to_string(),
            )
        })
        .collect();
    groups.sort();
    groups
}

#[tokio::test]
async fn lists_every_group_with_its_state_from_v4() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    stable_group(&broker, "stable").await;
    join_new_member(&broker, "joining").await;
    commit_simple(&broker, "simple", &[("events", 0, 1)]).await;
    for version in 0..=3 {
        let response = broker.call(ListGroupsRequest::default(), version).await;
        assert_eq!(response.error_code, 0, "v{version}");
        let names: Vec<String> = listed(&response)
            .into_iter()
            .map(|(id, kind, _)| format!("{id}:{kind}"))
            .collect();
        assert_eq!(
            names,
            vec!["joining:consumer", "simple:", "stable:consumer"],
            "v{version}"
        );
    }
    let v4 = broker.call(ListGroupsRequest::default(), 4).await;
    assert_eq!(
        listed(&v4),
        vec![
            (
                "joining".into(),
                "consumer".into(),
                "CompletingRebalance".into()
            ),
            ("simple".into(), "".into(), "Empty".into()),
            ("stable".into(), "consumer".into(), "Stable".into()),
        ]
    );
    let v5 = broker.call(ListGroupsRequest::default(), 5).await;
    assert!(
        v5.groups.iter().all(|g| &*g.group_type == "classic"),
        "v5: every group is a classic group"
    );
}

#[tokio::test]
async fn filters_by_state_and_type() {
    let broker = group_broker().start().await;
    create_topic(&broker, "events", 1).await;
    stable_group(&broker, "stable").await;
    commit_simple(&broker, "simple", &[("events", 0, 1)]).await;
    let stable_only = broker
        .call(
            ListGroupsRequest::default().with_states_filter(vec![s("stable")]),
            4,
        )
        .await;
    let names: Vec<String> = listed(&stable_only).into_iter().map(|g| g.0).collect();
    assert_eq!(names, vec!["stable"], "state filters ignore case");
    let classic = broker
        .call(
            ListGroupsRequest::default().with_types_filter(vec![s("Classic")]),
            5,
        )
        .await;
    assert_eq!(classic.groups.len(), 2);
    let consumer = broker
        .call(
            ListGroupsRequest::default().with_types_filter(vec![s("consumer")]),
            5,
        )
        .await;
    assert!(
        consumer.groups.is_empty(),
        "no group uses the new consumer protocol"
    );
}
