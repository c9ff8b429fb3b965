//! A KafkaCluster whose broker pods really run (as local processes, through the pod runner): the StatefulSet's
//! pods become Ready when the brokers answer `/readyz` (registered and unfenced in the cluster's metadata quorum),
//! the cluster's status follows them through a crash, and Topics reach those brokers; a volume keeps a broker's
//! data across its restart; and scaling up adds a broker-only node that follows the metadata log while the voter
//! set the cluster was created with stays as it is.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use serde_json::json;
use tributary_operator::crd::{KafkaCluster, Topic};

use crate::{
    pod_runner::PodRunner,
    support::{self, eventually, fresh_namespace, install_crds, kafka_cluster},
};

const CLUSTER: &str = "live";

/// `(Ready status, readyBrokers)` of cluster `name` once its status describes the current generation.
async fn cluster_state(clusters: &Api<KafkaCluster>, name: &str) -> Result<(String, i32), String> {
    let cluster = clusters.get(name).await.map_err(|e| e.to_string())?;
    let status = cluster.status.as_ref().ok_or("no status yet")?;
    if status.observed_generation != cluster.metadata.generation {
        return Err("status describes an older generation".to_owned());
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
        .ok_or("no Ready condition")?;
    Ok((ready, status.ready_brokers))
}

/// Waits up to a minute for cluster `name` to report `Ready=<ready>` with `brokers` ready brokers.
pub(crate) async fn wait_cluster_named(
    clusters: &Api<KafkaCluster>,
    runner: &PodRunner,
    name: &str,
    ready: &str,
    brokers: i32,
) {
    let what = format!("KafkaCluster {name} Ready={ready} with {brokers} ready brokers");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = cluster_state(clusters, name).await;
        if state
            .as_ref()
            .is_ok_and(|(r, b)| r == ready && *b == brokers)
        {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let logs: String = (0..brokers.max(1))
                .map(|i| {
                    format!(
                        "\nlast lines of {name}-{i}'s log:\n{}",
                        runner.log_tail(&format!("{name}-{i}"))
                    )
                })
                .collect();
            panic!("timed out waiting for {what}: {state:?}{logs}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn wait_cluster(clusters: &Api<KafkaCluster>, runner: &PodRunner, ready: &str, brokers: i32) {
    wait_cluster_named(clusters, runner, CLUSTER, ready, brokers).await;
}

async fn topic_partitions(
    admin: &tributary_operator::kafka_admin::AdminClient,
    name: &str,
) -> Result<i32, String> {
    admin
        .describe_topic(name)
        .await
        .map_err(|e| e.to_string())?
        .map(|d| d.partitions)
        .ok_or_else(|| format!("topic {name} does not exist"))
}

async fn wait_partitions(
    admin: &tributary_operator::kafka_admin::AdminClient,
    name: &str,
    partitions: i32,
    when: &str,
) {
    eventually(
        &format!("topic {name} with {partitions} partitions {when}"),
        || async {
            let actual = topic_partitions(admin, name).await?;
            if actual == partitions {
                Ok(())
            } else {
                Err(format!("{actual} partitions"))
            }
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a running kube-apiserver and a broker binary: run it through hack/test.sh"]
async fn brokers_run_and_the_cluster_follows_them() {
    let client: Client = support::client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client).await;
    let broker_bin = std::env::var_os("TRIBUTARY_BROKER_BIN")
        .map(std::path::PathBuf::from)
        .expect("TRIBUTARY_BROKER_BIN (hack/test.sh sets it)");
    let runner = PodRunner::start(client.clone(), &namespace, broker_bin);
    let bootstrap = format!("{}:9092", PodRunner::pod_ip(0));

    let config = tributary_operator::controller::Config {
        instance: Some("it".to_owned()),
        namespace: Some(namespace.clone()),
        bootstrap_override: Some(bootstrap.clone()),
        ..Default::default()
    };
    let operator = tokio::spawn(tributary_operator::controller::run(client.clone(), config));

    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    clusters
        .create(&PostParams::default(), &kafka_cluster(CLUSTER, 1))
        .await
        .expect("create KafkaCluster");
    wait_cluster(&clusters, &runner, "True", 1).await;
    let cluster = clusters.get(CLUSTER).await.expect("get cluster");
    let bootstrap_status = cluster
        .status
        .and_then(|s| s.bootstrap_address)
        .unwrap_or_default();
    assert!(
        bootstrap_status.starts_with(&format!("{CLUSTER}-bootstrap.{namespace}.svc:")),
        "status names the bootstrap Service: {bootstrap_status}"
    );

    // A Topic on the running broker.
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": { "name": "payments" },
        "spec": { "clusterRef": { "name": CLUSTER }, "partitions": 4, "replicationFactor": 1 },
    }))
    .expect("Topic");
    topics
        .create(&PostParams::default(), &topic)
        .await
        .expect("create Topic");
    let admin = tributary_operator::kafka_admin::AdminClient::new(bootstrap.clone());
    wait_partitions(&admin, "payments", 4, "on broker live-0").await;

    // A crash: the pod turns not Ready, the cluster with it; the restarted broker keeps its data (its volume).
    runner.crash("live-0");
    wait_cluster(&clusters, &runner, "False", 0).await;
    wait_cluster(&clusters, &runner, "True", 1).await;
    let pod = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &namespace)
        .get("live-0")
        .await
        .expect("get pod live-0");
    let restarts = pod
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.first().map(|c| c.restart_count))
        .unwrap_or_default();
    assert_eq!(restarts, 1, "the pod reports the restart");
    wait_partitions(&admin, "payments", 4, "after the restart").await;

    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    scale_up_adds_a_ready_broker(&clusters, &config_maps, &runner).await;

    operator.abort();
    drop(runner);
}

/// Scale up from one broker to two: the cluster keeps the voter set it was created with ({0}: a formatted broker
/// refuses another), the new broker is a `process.roles=broker` learner of the metadata log, and the cluster is
/// Ready with both.
async fn scale_up_adds_a_ready_broker(
    clusters: &Api<KafkaCluster>,
    config_maps: &Api<ConfigMap>,
    runner: &PodRunner,
) {
    clusters
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "brokers": 2 } })),
        )
        .await
        .expect("scale to 2 brokers");
    wait_cluster(clusters, runner, "True", 2).await;
    let status = clusters
        .get(CLUSTER)
        .await
        .expect("get cluster")
        .status
        .unwrap_or_default();
    assert_eq!(
        status.quorum_voters,
        [0],
        "the voters stay those the cluster was created with"
    );
    let config = config_maps
        .get(&format!("{CLUSTER}-config"))
        .await
        .expect("get the brokers' ConfigMap");
    let broker_1 = config
        .data
        .as_ref()
        .and_then(|d| d.get("broker-1.properties"))
        .cloned()
        .unwrap_or_default();
    assert!(
        broker_1.contains("\nprocess.roles=broker\n"),
        "broker 1 joins as a broker-only node: {broker_1}"
    );
    let second =
        tributary_operator::kafka_admin::AdminClient::new(format!("{}:9092", PodRunner::pod_ip(1)));
    // It follows the metadata log: it knows both brokers (its own registration went through voter 0) and the
    // topic created before it joined.
    eventually(
        "broker live-1 to list both brokers and the topic",
        || async {
            let seen = second.cluster_metadata().await.map_err(|e| e.to_string())?;
            let brokers: Vec<i32> = seen.brokers.keys().copied().collect();
            if brokers == [0, 1] && seen.topics.contains_key("payments") {
                Ok(())
            } else {
                Err(format!(
                    "broker live-1 lists brokers {brokers:?} and topics {:?}",
                    seen.topics.keys().collect::<Vec<_>>()
                ))
            }
        },
    )
    .await;
}
