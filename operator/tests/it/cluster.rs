//! A KafkaCluster whose broker pods really run (as local processes, through the pod runner): the StatefulSet's
//! pods become Ready when the brokers answer `/readyz` (registered and unfenced in the cluster's metadata quorum),
//! the cluster's status follows them through a crash, and Topics reach those brokers; a volume keeps a broker's
//! data across its restart; and scaling 1 -> 3 -> 1 moves the metadata quorum's voters with the fleet (a
//! dynamic quorum, KIP-853), restarting no broker that stays, while a voter whose volume is replaced on the
//! way is removed in its old incarnation and added again in its new one.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use serde_json::json;
use tributary_operator::{
    crd::{KafkaCluster, KafkaClusterStatus, QuorumMode, Topic},
    kafka_admin::AdminClient,
};

use crate::{
    pod_runner::PodRunner,
    support::{
        self, cluster_status, eventually, eventually_within, fresh_namespace, install_crds,
        kafka_cluster,
    },
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
    let admin = AdminClient::new(bootstrap.clone());
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
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &namespace);
    scale_up_adds_voters_and_scale_down_removes_them(
        &clusters,
        &config_maps,
        &pods,
        &runner,
        &admin,
    )
    .await;

    operator.abort();
    drop(runner);
}

/// The voters of the metadata quorum, as `admin`'s broker describes it, and the cluster's status (its record
/// of them, the quorum mode, the brokers that run).
async fn voters_now(
    clusters: &Api<KafkaCluster>,
    admin: &AdminClient,
) -> Result<(Vec<i32>, KafkaClusterStatus), String> {
    let quorum = admin.describe_quorum().await.map_err(|e| e.to_string())?;
    let mut voters: Vec<i32> = quorum.view.voters.iter().map(|v| v.id).collect();
    voters.sort_unstable();
    Ok((voters, cluster_status(clusters, CLUSTER).await?))
}

/// Scale up from one broker to three: every broker runs a controller (`process.roles=broker,controller` with
/// the same bootstrap servers), the new ones follow the metadata log and are made voters once caught up, so the
/// quorum grows from one voter to three; then back to one: voters 2 and 1 are removed, their brokers drained
/// and stopped, and the one left is again the only voter.
async fn scale_up_adds_voters_and_scale_down_removes_them(
    clusters: &Api<KafkaCluster>,
    config_maps: &Api<ConfigMap>,
    pods: &Api<k8s_openapi::api::core::v1::Pod>,
    runner: &PodRunner,
    admin: &AdminClient,
) {
    // A roll deletes the pod and the StatefulSet makes a new one; the pod runner's restarts keep the uid.
    let pod_0 = || async {
        pods.get("live-0")
            .await
            .expect("get pod live-0")
            .metadata
            .uid
            .expect("uid")
    };
    let first_pod_0 = pod_0().await;
    // The operator's replication defaults follow the running brokers, applied live.
    let live_defaults = |expected: [&'static str; 3]| async move {
        eventually(
            &format!("replication defaults {expected:?} applied live"),
            || async {
                let status = cluster_status(clusters, CLUSTER).await?;
                let applied = [
                    "default.replication.factor",
                    "offsets.topic.replication.factor",
                    "min.insync.replicas",
                ]
                .map(|key| {
                    status
                        .live_broker_config
                        .get(key)
                        .cloned()
                        .unwrap_or_default()
                });
                if applied == expected && status.pending_restarts.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "applied {applied:?}, pending restarts {:?}",
                        status.pending_restarts
                    ))
                }
            },
        )
        .await;
    };
    let scale = |brokers: i32| async move {
        clusters
            .patch(
                CLUSTER,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "brokers": brokers } })),
            )
            .await
            .expect("scale");
    };
    // A group commits at one broker, so the brokers create the offsets topic with one replica per partition.
    let bootstrap = format!("{}:9092", PodRunner::pod_ip(0));
    crate::topic::kafka_view(&bootstrap, &["commit", "payments", "auditors", "7"])
        .await
        .expect("commit a group offset");
    // The offsets topic as Metadata shows it: replicas and in-sync replicas per partition, every one settled
    // at `factor` (no move in progress).
    let offsets_topic_at = |factor: usize| async move {
        eventually_within(
            &format!("__consumer_offsets at replication factor {factor}, in sync"),
            std::time::Duration::from_secs(60),
            || async {
                let seen = admin.cluster_metadata().await.map_err(|e| e.to_string())?;
                let partitions = seen
                    .topics
                    .get("__consumer_offsets")
                    .ok_or("no offsets topic")?;
                let off: Vec<_> = partitions
                    .iter()
                    .filter(|(_, p)| p.replicas.len() != factor || p.isr.len() != factor)
                    .map(|(index, p)| (*index, p.replicas.clone(), p.isr.clone()))
                    .collect();
                if off.is_empty() {
                    Ok(())
                } else {
                    Err(format!("partitions (replicas, isr) not there yet: {off:?}"))
                }
            },
        )
        .await;
    };
    let committed = || async {
        let bootstrap = bootstrap.clone();
        eventually("the group's committed offset to read back", || {
            let bootstrap = bootstrap.clone();
            async move {
                crate::topic::kafka_view(&bootstrap, &["committed", "payments", "auditors"]).await
            }
        })
        .await
        .trim()
        .to_owned()
    };
    offsets_topic_at(1).await;

    let started = std::time::Instant::now();
    scale(3).await;
    wait_cluster(clusters, runner, "True", 3).await;
    eventually("voters 0, 1 and 2, recorded as a formed quorum", || async {
        let (voters, status) = voters_now(clusters, admin).await?;
        let seen = (voters, status.quorum_voters, status.quorum_mode);
        if seen.0 == [0, 1, 2] && seen.1 == seen.0 && seen.2 == Some(QuorumMode::Formed) {
            Ok(())
        } else {
            Err(format!("quorum voters, recorded voters, mode: {seen:?}"))
        }
    })
    .await;
    eprintln!(
        "scale 1 -> 3: three voters {:?} after the edit",
        started.elapsed()
    );
    live_defaults(["3", "3", "2"]).await;
    assert_eq!(pod_0().await, first_pod_0, "scaling up restarts no broker");
    // The operator raises the offsets topic it sized at one broker, so group offsets survive a broker loss.
    offsets_topic_at(3).await;
    eprintln!(
        "scale 1 -> 3: __consumer_offsets at replication factor 3 {:?} after the edit",
        started.elapsed()
    );
    assert_eq!(
        committed().await,
        "7",
        "the group's offset survives the move"
    );

    // A voter's disk is replaced: its pod comes back with an empty volume and a new directory id. The broker
    // refuses to vote in its old incarnation's place and says so in its last words; the operator removes that
    // incarnation, and the broker, now an observer, is made a voter again once caught up.
    let old_directory = |quorum: &tributary_operator::kafka_admin::QuorumDescription| {
        quorum
            .view
            .voters
            .iter()
            .find(|v| v.id == 2)
            .map(|v| v.directory_id.clone())
    };
    let before = old_directory(&admin.describe_quorum().await.expect("describe the quorum"))
        .expect("broker 2 votes");
    let wiped = std::time::Instant::now();
    runner.kill_and_hold("live-2");
    runner.wipe_volumes("live-2");
    pods.delete("live-2", &Default::default())
        .await
        .expect("delete pod live-2");
    eventually_within(
        "broker 2 to vote again with its new directory",
        std::time::Duration::from_secs(90),
        || async {
            let quorum = admin.describe_quorum().await.map_err(|e| e.to_string())?;
            let mut ids: Vec<i32> = quorum.view.voters.iter().map(|v| v.id).collect();
            ids.sort_unstable();
            match old_directory(&quorum) {
                Some(now) if now != before && ids == [0, 1, 2] => Ok(()),
                seen => Err(format!(
                    "voters {ids:?}, broker 2's directory {seen:?}; its log ends:\n{}",
                    runner.log_tail("live-2")
                )),
            }
        },
    )
    .await;
    wait_cluster(clusters, runner, "True", 3).await;
    eprintln!(
        "a voter's volume replaced: voting again with its new directory {:?} after the pod was deleted",
        wiped.elapsed()
    );
    let config = config_maps
        .get(&format!("{CLUSTER}-config"))
        .await
        .expect("get the brokers' ConfigMap");
    let data = config.data.unwrap_or_default();
    assert!(
        !data.contains_key("initial-controllers"),
        "the initial-controllers list is withdrawn once the quorum formed"
    );
    let broker_2 = data.get("broker-2.properties").cloned().unwrap_or_default();
    assert!(
        broker_2.contains("\nprocess.roles=broker,controller\n")
            && broker_2.contains("\ncontroller.quorum.bootstrap.servers="),
        "broker 2 runs a controller of the dynamic quorum: {broker_2}"
    );
    // A broker that joined later follows the metadata log: it knows the topic created before it.
    let third = AdminClient::new(format!("{}:9092", PodRunner::pod_ip(2)));
    eventually(
        "broker live-2 to list three brokers and the topic",
        || async {
            let seen = third.cluster_metadata().await.map_err(|e| e.to_string())?;
            let brokers: Vec<i32> = seen.brokers.keys().copied().collect();
            if brokers == [0, 1, 2] && seen.topics.contains_key("payments") {
                Ok(())
            } else {
                Err(format!("broker live-2 lists brokers {brokers:?}"))
            }
        },
    )
    .await;

    let started = std::time::Instant::now();
    scale(1).await;
    eventually_within(
        "voter 0 alone and brokers 1 and 2 gone",
        std::time::Duration::from_secs(120),
        || async {
            let (voters, status) = voters_now(clusters, admin).await?;
            let (recorded, running) = (status.quorum_voters, status.brokers);
            if voters == [0] && recorded == [0] && running == 1 {
                Ok(())
            } else {
                Err(format!(
                    "voters {voters:?}, recorded {recorded:?}, running {running}"
                ))
            }
        },
    )
    .await;
    wait_cluster(clusters, runner, "True", 1).await;
    eprintln!(
        "scale 3 -> 1: one voter and one broker {:?} after the edit",
        started.elapsed()
    );
    wait_partitions(admin, "payments", 4, "after the scale-down").await;
    // Lowered to one replica before brokers 2 and 1 were drained: RF 3 on one broker would have blocked it.
    offsets_topic_at(1).await;
    assert_eq!(
        committed().await,
        "7",
        "the group's offset survives the scale-down"
    );
    live_defaults(["1", "1", "1"]).await;
    assert_eq!(
        pod_0().await,
        first_pod_0,
        "scaling down restarts no broker it keeps"
    );
}
