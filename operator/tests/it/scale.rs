//! Day-2 operations on a three-broker KafkaCluster while an idempotent acks=all producer writes (a consumer group
//! reads everything acknowledged at the end; the longest produce stall is reported):
//! - 3 -> 5 through the scale subresource (what `kubectl scale` sends): the new brokers are filled with their share;
//! - 5 -> 3 refused while a topic has replication factor 5 (ScaleDownBlocked, nothing moves), then, once that
//!   topic is gone, brokers 4 and 3 drained (status.removingBrokers Draining -> Drained), the StatefulSet shrunk
//!   and both unregistered (Removed), with the operator killed and replaced after the drain started; no pod of
//!   the brokers that stay is replaced;
//! - a restart-requiring broker config change rolls the three brokers one at a time, the active controller last;
//! - a live one (log retention) is applied with IncrementalAlterConfigs and restarts none;
//! - a Topic grows from 3 to 12 partitions and from replication factor 1 to 3.

use std::{path::PathBuf, time::Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use serde_json::{json, Value};
use tributary_operator::{
    crd::{KafkaCluster, RemovalState, Topic},
    kafka_admin::{AdminClient, NewTopic},
};

use crate::{
    cluster::wait_cluster_named,
    pod_runner::PodRunner,
    support::{self, cluster_status, eventually_within, fresh_namespace, install_crds},
    topic::python,
};

const CLUSTER: &str = "scaler";
const TOPIC: &str = "ledger";

fn cluster() -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": { "name": CLUSTER },
        "spec": {
            "brokers": 3,
            "image": "tributary:it",
            // The pod runner's brokers share the host's disk, whose fill the test does not control (a CI disk
            // more than 90 % full refused the scale-down at the default); the check itself still runs.
            "storage": { "size": "1Gi", "scaleDownFreeSpacePercent": 0 },
            "brokerConfig": {
                "broker.session.timeout.ms": "3000",
                "broker.heartbeat.interval.ms": "500",
                // Small follower fetches, so that a throttle can hold a drain of these small partitions (the
                // first fetch of a move passes whole, whatever the rate).
                "replica.fetch.max.bytes": "1024",
            },
        },
    }))
    .expect("KafkaCluster from JSON")
}

/// Replicas per broker over every topic, as `admin`'s broker sees them.
async fn replicas_per_broker(
    admin: &AdminClient,
) -> Result<std::collections::BTreeMap<i32, usize>, String> {
    let metadata = admin.cluster_metadata().await.map_err(|e| e.to_string())?;
    let mut counts = std::collections::BTreeMap::new();
    for partitions in metadata.topics.values() {
        for partition in partitions.values() {
            for id in &partition.replicas {
                *counts.entry(*id).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

async fn scale_to(clusters: &Api<KafkaCluster>, brokers: i32) {
    clusters
        .patch_scale(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": brokers } })),
        )
        .await
        .expect("patch the scale subresource");
}

async fn restarts(pods: &Api<Pod>, name: &str) -> i32 {
    pods.get(name)
        .await
        .ok()
        .and_then(|p| {
            p.status?
                .container_statuses?
                .first()
                .map(|c| c.restart_count)
        })
        .unwrap_or_default()
}

/// The uids of the pods of brokers 0-2: a pod that was deleted and recreated has a new one.
async fn pod_uids(pods: &Api<Pod>) -> Vec<String> {
    let mut uids = Vec::new();
    for ordinal in 0..3 {
        let pod = pods
            .get(&format!("{CLUSTER}-{ordinal}"))
            .await
            .expect("get pod");
        uids.push(pod.metadata.uid.unwrap_or_default());
    }
    uids
}

async fn condition(clusters: &Api<KafkaCluster>, type_: &str) -> Option<(String, String, String)> {
    let status = clusters.get(CLUSTER).await.ok()?.status?;
    status
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason, c.message))
}

#[tokio::test]
#[ignore = "needs a running kube-apiserver, a broker binary and the Python venv: run it through hack/test.sh"]
async fn scale_up_fills_and_scale_down_drains_under_acks_all_writes() {
    let client: Client = support::client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client).await;
    let broker_bin = std::env::var_os("TRIBUTARY_BROKER_BIN")
        .map(PathBuf::from)
        .expect("TRIBUTARY_BROKER_BIN (hack/test.sh sets it)");
    let runner = PodRunner::start(client.clone(), &namespace, broker_bin);
    let bootstrap = format!("{}:9092", PodRunner::pod_ip(0));
    let config = tributary_operator::controller::Config {
        instance: Some("it".to_owned()),
        namespace: Some(namespace.clone()),
        bootstrap_override: Some(bootstrap.clone()),
        ..Default::default()
    };
    let mut operator = tokio::spawn(tributary_operator::controller::run(
        client.clone(),
        config.clone(),
    ));
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    clusters
        .create(&PostParams::default(), &cluster())
        .await
        .expect("create KafkaCluster");
    wait_cluster_named(&clusters, &runner, CLUSTER, "True", 3).await;
    let initial_uids = pod_uids(&pods).await;
    let admin = AdminClient::new(bootstrap.clone());
    admin
        .create_topic(&NewTopic {
            name: TOPIC,
            partitions: 6,
            replication_factor: 3,
            config: &Default::default(),
        })
        .await
        .expect("create the topic");

    let work = tempfile::tempdir().expect("tempdir");
    let stop = work.path().join("stop");
    let acked = work.path().join("acked");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/kafka_view.py");
    let producer = tokio::process::Command::new(python())
        .arg(&script)
        .args([bootstrap.as_str(), "produce-until", TOPIC])
        .arg(&stop)
        .arg(&acked)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the producer");
    let started = Instant::now();

    // 3 -> 5 through the scale subresource: brokers 3 and 4 join and get their share (18 replicas over 5
    // brokers: 3 each at least).
    scale_to(&clusters, 5).await;
    assert_eq!(
        clusters.get(CLUSTER).await.expect("get").spec.brokers,
        5,
        "the scale subresource edits spec.brokers"
    );
    wait_cluster_named(&clusters, &runner, CLUSTER, "True", 5).await;
    let filled = eventually_within(
        "brokers 3 and 4 to hold their share",
        std::time::Duration::from_secs(90),
        || async {
            let counts = replicas_per_broker(&admin).await?;
            // 18 replicas in all: no fill move is still in flight (a move lists its leaving replica too),
            // so the throttle set later holds only the drain.
            ([3, 4]
                .iter()
                .all(|id| counts.get(id).copied().unwrap_or(0) >= 3)
                && counts.values().sum::<usize>() == 18)
                .then_some(counts.clone())
                .ok_or_else(|| format!("replicas per broker {counts:?}"))
        },
    )
    .await;
    eprintln!(
        "scale 3 -> 5: brokers 3 and 4 filled {:?} after the scale ({filled:?})",
        started.elapsed()
    );
    let status = cluster_status(&clusters, CLUSTER).await.expect("get");
    assert_eq!(
        status.brokers, 5,
        "status.brokers is the scale subresource's count"
    );

    // 5 -> 3 while a topic needs five brokers: refused, nothing removed.
    admin
        .create_topic(&NewTopic {
            name: "wide",
            partitions: 1,
            replication_factor: 5,
            config: &Default::default(),
        })
        .await
        .expect("create the RF 5 topic");
    scale_to(&clusters, 3).await;
    let (_, reason, message) = eventually_within(
        "the scale-down to be blocked",
        std::time::Duration::from_secs(30),
        || async {
            match condition(&clusters, "ScaleDownBlocked").await {
                Some(c) if c.0 == "True" => Ok(c),
                other => Err(format!("ScaleDownBlocked is {other:?}")),
            }
        },
    )
    .await;
    assert_eq!(reason, "ReplicationFactorTooLarge", "{message}");
    assert!(
        message.contains("topic wide has replication factor 5"),
        "{message}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let counts = replicas_per_broker(&admin).await.expect("metadata");
    for id in [3, 4] {
        assert_eq!(
            counts.get(&id).copied().unwrap_or(0),
            filled[&id] + 1,
            "a blocked scale-down moves nothing (broker {id})"
        );
    }

    // The brokers that stay receive the drained replicas: a follower throttle far below the producer's
    // traffic holds every move (the controller's drains obey the rates like any move), so the drain is
    // certainly under way when the operator is killed, and it ends only once the throttle is lifted. It is
    // set as a user would, in spec.brokerConfig: a cluster-wide default rate, applied live.
    const RATE: &str = "follower.replication.throttled.rate";
    let throttle = |on: bool| {
        let clusters = clusters.clone();
        async move {
            clusters
                .patch(
                    CLUSTER,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({ "spec": { "brokerConfig": { RATE: on.then_some("100") } } }),
                    ),
                )
                .await
                .expect("patch spec.brokerConfig");
            eventually_within(
                "the throttle change applied live",
                std::time::Duration::from_secs(30),
                || async {
                    let status = cluster_status(&clusters, CLUSTER).await?;
                    let applied = status.live_broker_config.get(RATE).cloned();
                    (applied.is_some() == on && status.pending_restarts.is_empty())
                        .then_some(())
                        .ok_or_else(|| {
                            format!(
                                "applied {applied:?}, restarts {:?}",
                                status.pending_restarts
                            )
                        })
                },
            )
            .await;
        }
    };
    throttle(true).await;
    // Without that topic the scale-down goes ahead: drained, shrunk, unregistered.
    admin
        .delete_topic("wide")
        .await
        .expect("delete the RF 5 topic");
    let drain_started = Instant::now();
    // The operator is killed once the scale-down has started and before it finished; its successor must
    // resume from the status and the cluster metadata alone.
    let at_kill = eventually_within(
        "the scale-down to start",
        std::time::Duration::from_secs(30),
        || async {
            let status = cluster_status(&clusters, CLUSTER).await?;
            let states: Vec<RemovalState> =
                status.removing_brokers.iter().map(|b| b.state).collect();
            if states.contains(&RemovalState::Draining) {
                Ok((states, status.brokers))
            } else {
                let blocked = condition(&clusters, "ScaleDownBlocked").await;
                Err(format!("removing {states:?}, ScaleDownBlocked {blocked:?}"))
            }
        },
    )
    .await;
    operator.abort();
    let _ = operator.await;
    eprintln!(
        "operator killed with brokers 4 and 3 {:?} and {} brokers running; a new one takes over",
        at_kill.0, at_kill.1
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    operator = tokio::spawn(tributary_operator::controller::run(client.clone(), config));
    // Still held: the new operator finds the drain where the old one left it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let held = cluster_status(&clusters, CLUSTER).await.expect("status");
    let counts = replicas_per_broker(&admin).await.expect("metadata");
    assert!(
        held.brokers == 5
            && counts.get(&3).copied().unwrap_or(0) + counts.get(&4).copied().unwrap_or(0) > 0,
        "the throttled drain is still under way ({} brokers, replicas {counts:?})",
        held.brokers
    );
    let lifted = Instant::now();
    throttle(false).await;
    eventually_within(
        "brokers 4 and 3 to be drained and removed",
        std::time::Duration::from_secs(120),
        || async {
            let status = cluster_status(&clusters, CLUSTER).await?;
            let removing: Vec<_> = status
                .removing_brokers
                .iter()
                .map(|b| (b.id, b.state))
                .collect();
            (removing == [(4, RemovalState::Removed), (3, RemovalState::Removed)]
                && status.brokers == 3)
                .then_some(())
                .ok_or_else(|| format!("removing {removing:?}, {} brokers", status.brokers))
        },
    )
    .await;
    eprintln!(
        "scale 5 -> 3: brokers 4 and 3 drained and removed in {:?}, {:?} after the throttle was lifted",
        drain_started.elapsed(),
        lifted.elapsed()
    );
    let counts = replicas_per_broker(&admin).await.expect("metadata");
    assert!(
        !counts.contains_key(&3) && !counts.contains_key(&4),
        "brokers 3 and 4 hold nothing: {counts:?}"
    );
    assert_eq!(
        counts.values().sum::<usize>(),
        18,
        "every partition kept its three replicas: {counts:?}"
    );
    wait_cluster_named(&clusters, &runner, CLUSTER, "True", 3).await;
    for ordinal in [3, 4] {
        assert!(
            pods.get_opt(&format!("{CLUSTER}-{ordinal}"))
                .await
                .expect("get pod")
                .is_none(),
            "the StatefulSet removed pod {CLUSTER}-{ordinal}"
        );
    }

    // A restart-requiring config change rolls the three brokers one at a time, the active controller last.
    let controller = admin
        .cluster_metadata()
        .await
        .expect("metadata")
        .controller_id;
    let before = pod_uids(&pods).await;
    assert_eq!(
        before, initial_uids,
        "scaling 3 -> 5 -> 3 replaced none of the pods of brokers 0-2"
    );
    for ordinal in 0..3 {
        assert_eq!(
            restarts(&pods, &format!("{CLUSTER}-{ordinal}")).await,
            0,
            "broker {ordinal} stays and was never restarted"
        );
    }
    let roll_started = Instant::now();
    clusters
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "spec": { "brokerConfig": { "replica.lag.time.max.ms": "20000" } } }),
            ),
        )
        .await
        .expect("change the broker config");
    let seen_pending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let created = eventually_within(
        "every broker restarted once with the new config",
        std::time::Duration::from_secs(180),
        || {
            let (clusters, pods, before, seen) = (
                clusters.clone(),
                pods.clone(),
                before.clone(),
                seen_pending.clone(),
            );
            async move {
                let status = cluster_status(&clusters, CLUSTER).await?;
                if !status.pending_restarts.is_empty() {
                    seen.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                let mut created = Vec::new();
                for ordinal in 0..3 {
                    let pod = pods
                        .get(&format!("{CLUSTER}-{ordinal}"))
                        .await
                        .map_err(|e| e.to_string())?;
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if pod.metadata.uid.as_deref() == Some(before[ordinal as usize].as_str())
                        || !ready
                    {
                        return Err(format!(
                            "pod {ordinal} not restarted and ready yet; pending {:?}",
                            status.pending_restarts
                        ));
                    }
                    created.push(pod.metadata.creation_timestamp.map(|t| t.0));
                }
                status
                    .pending_restarts
                    .is_empty()
                    .then_some(created)
                    .ok_or_else(|| format!("pending {:?}", status.pending_restarts))
            }
        },
    )
    .await;
    let rolled_in = roll_started.elapsed();
    assert!(
        seen_pending.load(std::sync::atomic::Ordering::Relaxed),
        "status listed the pending restarts"
    );
    let last = created.iter().max().cloned().flatten();
    assert_eq!(
        created[usize::try_from(controller).expect("a controller id")],
        last,
        "the active controller (broker {controller}) restarted last: {created:?}"
    );
    wait_cluster_named(&clusters, &runner, CLUSTER, "True", 3).await;
    eprintln!(
        "rolling config change over 3 brokers: {rolled_in:?}, active controller {controller} last"
    );

    // A config the brokers take live is applied with IncrementalAlterConfigs: no pod restarts.
    let rolled = pod_uids(&pods).await;
    clusters
        .patch(
            CLUSTER,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "brokerConfig": { "log.retention.hours": "200" } } })),
        )
        .await
        .expect("change a live broker config");
    let live_started = Instant::now();
    eventually_within(
        "the brokers to apply log.retention.hours=200",
        std::time::Duration::from_secs(30),
        || async {
            let value =
                crate::topic::kafka_view(&bootstrap, &["config", TOPIC, "retention.ms"]).await?;
            (value.trim() == "720000000")
                .then_some(())
                .ok_or_else(|| format!("retention.ms of {TOPIC} is {value}"))
        },
    )
    .await;
    eprintln!(
        "live broker config change applied in {:?}",
        live_started.elapsed()
    );
    let status = eventually_within(
        "the status to record the live config",
        std::time::Duration::from_secs(10),
        || async {
            let status = cluster_status(&clusters, CLUSTER).await?;
            let recorded = status
                .live_broker_config
                .get("log.retention.hours")
                .cloned();
            if recorded.as_deref() == Some("200") {
                Ok(status)
            } else {
                Err(format!("live config {:?}", status.live_broker_config))
            }
        },
    )
    .await;
    assert!(
        status.pending_restarts.is_empty(),
        "{:?}",
        status.pending_restarts
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        pod_uids(&pods).await,
        rolled,
        "a live config change restarts no broker"
    );

    std::fs::write(&stop, b"").expect("stop file");
    let output = producer.wait_with_output().await.expect("the producer");
    assert!(
        output.status.success(),
        "producer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("producer summary");
    let acknowledged = summary["acknowledged"].as_u64().unwrap_or(0);
    assert!(acknowledged > 100, "producer summary {summary}");
    let consumed = crate::topic::kafka_view(
        &bootstrap,
        &[
            "consume-all",
            TOPIC,
            "scale-check",
            acked.to_str().expect("utf-8 path"),
        ],
    )
    .await
    .expect("consume");
    let consumed: Value = serde_json::from_str(&consumed).expect("consumer summary");
    assert_eq!(
        consumed["missing"], 0,
        "every acknowledged record is consumed: {consumed}"
    );
    eprintln!(
        "scaling 3 -> 5 -> 3 and a rolling restart under acks=all: {acknowledged} acknowledged, {} failed, longest produce stall {} ms, \
         all consumed",
        summary["failed"], summary["longest_stall_ms"]
    );

    // A Topic grows from 3 to 12 partitions and from replication factor 1 to 3 on the three brokers.
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": { "name": "grown" },
        "spec": { "clusterRef": { "name": CLUSTER }, "partitions": 3, "replicationFactor": 1 },
    }))
    .expect("Topic");
    topics
        .create(&PostParams::default(), &topic)
        .await
        .expect("create Topic");
    let shape = |partitions: usize, factor: usize| {
        let admin = &admin;
        move || async move {
            let metadata = admin.cluster_metadata().await.map_err(|e| e.to_string())?;
            let placed = metadata.topics.get("grown").cloned().unwrap_or_default();
            let ok = placed.len() == partitions
                && placed
                    .values()
                    .all(|p| p.replicas.len() == factor && p.isr.len() == factor && p.leader >= 0);
            ok.then_some(())
                .ok_or_else(|| format!("topic grown is {placed:?}"))
        }
    };
    eventually_within(
        "topic grown with 3 partitions of 1 replica",
        std::time::Duration::from_secs(30),
        shape(3, 1),
    )
    .await;
    let grow_started = Instant::now();
    topics
        .patch(
            "grown",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "partitions": 12, "replicationFactor": 3 } })),
        )
        .await
        .expect("patch the Topic");
    eventually_within(
        "topic grown with 12 partitions of 3 in-sync replicas",
        std::time::Duration::from_secs(60),
        shape(12, 3),
    )
    .await;
    eprintln!(
        "Topic 3 -> 12 partitions, replication factor 1 -> 3: in sync {:?} after the edit",
        grow_started.elapsed()
    );
    operator.abort();
    drop(runner);
}
