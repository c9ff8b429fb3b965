//! The CRDs' CEL rules (`x-kubernetes-validations`), evaluated client-side with kube's CEL validator against the
//! generated schema: what the API server will accept and refuse on create and on update.

use kube::core::cel::{validate_cel, validate_cel_update, ValidationErrors};

use crate::crd::{KafkaCluster, Topic};

fn messages(result: Result<(), ValidationErrors>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

#[test]
fn a_valid_topic_and_cluster_are_accepted() {
    assert_eq!(messages(validate_cel(&Topic::test())), Vec::<String>::new());
    assert_eq!(
        messages(validate_cel(&KafkaCluster::test())),
        Vec::<String>::new()
    );
}

#[test]
fn partitions_can_grow_but_never_shrink() {
    let old = Topic::test().partitions(6);
    assert_eq!(
        messages(validate_cel_update(&Topic::test().partitions(12), &old)),
        Vec::<String>::new()
    );
    assert_eq!(
        messages(validate_cel_update(&Topic::test().partitions(6), &old)),
        Vec::<String>::new()
    );
    assert_eq!(
        messages(validate_cel_update(&Topic::test().partitions(3), &old)),
        ["partitions cannot be decreased"],
        "shrinking a topic must be refused by the API server"
    );
}

#[test]
fn a_topic_needs_a_partition_and_a_replica() {
    assert_eq!(
        messages(validate_cel(&Topic::test().partitions(0))),
        ["a topic needs at least one partition"]
    );
    assert_eq!(
        messages(validate_cel(&Topic::test().replication_factor(0))),
        ["replicationFactor must be at least 1"]
    );
}

#[test]
fn a_topic_cannot_move_or_be_renamed() {
    let old = Topic::test();
    assert_eq!(
        messages(validate_cel_update(&Topic::test().cluster("other"), &old)),
        ["clusterRef cannot be changed; create a new Topic instead"]
    );
    assert_eq!(
        messages(validate_cel_update(
            &Topic::test().topic_name("renamed"),
            &old
        )),
        ["topicName cannot be changed; create a new Topic instead"],
        "setting topicName later would rename the topic"
    );
    let named = Topic::test().topic_name("orders.v1");
    assert_eq!(
        messages(validate_cel_update(&named.clone(), &named)),
        Vec::<String>::new()
    );
}

#[test]
fn a_cluster_needs_a_broker() {
    assert_eq!(
        messages(validate_cel(&KafkaCluster::test().brokers(0))),
        ["a cluster needs at least one broker"]
    );
    assert_eq!(
        messages(validate_cel(&KafkaCluster::test().ports(9092, 9092))),
        ["the kafka and http ports must differ"]
    );
}

#[test]
fn storage_is_fixed_at_creation_except_the_retention_flags() {
    let old = KafkaCluster::test().storage_class("fast");
    let scaled = KafkaCluster::test()
        .storage_class("fast")
        .brokers(5)
        .delete_claims(true, true);
    assert_eq!(
        messages(validate_cel_update(&scaled, &old)),
        Vec::<String>::new()
    );
    let resized = KafkaCluster::test()
        .storage_class("fast")
        .storage_size("20Gi");
    assert_eq!(
        messages(validate_cel_update(&resized, &old)),
        ["storage.size cannot be changed after creation (volume expansion is not supported yet)"]
    );
    let reclassed = KafkaCluster::test().storage_class("slow");
    assert_eq!(
        messages(validate_cel_update(&reclassed, &old)),
        ["storage.storageClassName cannot be changed after creation"]
    );
    let unclassed = KafkaCluster::test();
    assert_eq!(
        messages(validate_cel_update(&unclassed, &old)),
        ["storage.storageClassName cannot be changed after creation"]
    );
}
