//! Topics against a real single-node broker process: create, grow, change config, adopt, conflict, refusals,
//! and deletion per policy, each checked through a real Kafka client (confluent-kafka) as well as the Topic's
//! status and Events.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use k8s_openapi::api::events::v1::Event;
use kube::{
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    Api, Client, ResourceExt,
};
use serde_json::{json, Value};
use tributary_operator::{
    controller,
    crd::{KafkaCluster, Topic},
    kafka_admin::{AdminClient, NewTopic},
};

use crate::support::{
    self, assert_partition_decrease_refused, eventually, fresh_namespace, install_crds,
    kafka_cluster,
};

const CLUSTER: &str = "kafka";

/// A broker process on a loopback port the kernel picks, killed on drop; it can be stopped and started again on
/// the same Kafka address (the operator was given it as its bootstrap override) and data.
struct Broker {
    child: Option<Child>,
    /// Kafka `host:port`, learned from the broker's addresses file on the first start.
    address: String,
    data: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Broker {
    async fn start() -> Broker {
        let mut broker = Broker {
            child: None,
            address: "127.0.0.1:0".to_owned(),
            data: tempfile::tempdir().expect("broker data dir"),
        };
        broker.start_again().await;
        broker
    }

    /// Starts the process on `address` (port 0 the first time) with its HTTP port on port 0, then waits for the
    /// addresses file it writes once both are bound and for its /readyz.
    async fn start_again(&mut self) {
        let log_path = self.data.path().join("broker.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("broker log file");
        let addresses = self.data.path().join("addresses");
        // A file left by the previous start would name its ports.
        let _ = std::fs::remove_file(&addresses);
        let child = Command::new(broker_binary())
            .arg("--listen")
            .arg(&self.address)
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .arg("--bound-addresses-file")
            .arg(&addresses)
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tributary-broker");
        let child = self.child.insert(child);
        let deadline = tokio::time::Instant::now() + support::WAIT;
        let mut http = None;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the broker exited with {status} before it was ready; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if http.is_none() {
                if let Some((kafka, bound_http)) = read_addresses(&addresses) {
                    self.address = kafka;
                    http = Some(bound_http);
                }
            }
            if let Some(http) = http {
                if support::http_ok(http, "/readyz").await {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker was not ready within {:?} (addresses file read: {}); log:\n{}",
                support::WAIT,
                http.is_some(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Kafka address and the HTTP address from a broker's `--bound-addresses-file`, once it is written.
fn read_addresses(path: &Path) -> Option<(String, SocketAddr)> {
    let text = std::fs::read_to_string(path).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    Some((value("kafka")?, value("http")?.parse().ok()?))
}

fn broker_binary() -> PathBuf {
    std::env::var_os("TRIBUTARY_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "TRIBUTARY_BROKER_BIN is not set: build the broker (`cargo build -p tributary-broker`) and point it \
                 at target/debug/tributary-broker (hack/test.sh does)"
            )
        })
}

pub(crate) fn python() -> PathBuf {
    std::env::var_os("TRIBUTARY_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/tributary/venv/bin/python"))
        })
        .expect("TRIBUTARY_PYTHON or HOME")
}

/// Runs `kafka_view.py` (confluent-kafka) and returns its output.
pub(crate) async fn kafka_view(bootstrap: &str, args: &[&str]) -> Result<String, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/kafka_view.py");
    let output = tokio::process::Command::new(python())
        .arg(&script)
        .arg(bootstrap)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", python().display()))?;
    if !output.status.success() {
        return Err(format!(
            "kafka_view.py {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What confluent-kafka sees of `topic`.
async fn client_view(bootstrap: &str, topic: &str) -> Result<Value, String> {
    let text = kafka_view(bootstrap, &["describe", topic]).await?;
    serde_json::from_str(&text).map_err(|e| format!("kafka_view output {text:?}: {e}"))
}

/// Waits until confluent-kafka sees `topic` in the state `check` accepts.
async fn client_sees(bootstrap: &str, topic: &str, what: &str, check: impl Fn(&Value) -> bool) {
    eventually(&format!("a Kafka client to see {what}"), || async {
        let view = client_view(bootstrap, topic).await?;
        if check(&view) {
            Ok(())
        } else {
            Err(format!("client sees {view}"))
        }
    })
    .await;
}

fn topic(name: &str, partitions: i32, extra: Value) -> Topic {
    let mut spec = json!({ "clusterRef": { "name": CLUSTER }, "partitions": partitions, "replicationFactor": 1 });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "Topic",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("Topic from JSON")
}

/// The Topic's Ready condition as `(status, reason, message)` once its status describes the current generation.
async fn ready_condition(
    topics: &Api<Topic>,
    name: &str,
) -> Result<(String, String, String), String> {
    let topic = topics.get(name).await.map_err(|e| e.to_string())?;
    let status = topic.status.as_ref().ok_or("no status yet")?;
    if status.observed_generation != topic.metadata.generation {
        return Err(format!(
            "status describes generation {:?}, spec is at {:?}",
            status.observed_generation, topic.metadata.generation
        ));
    }
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .ok_or("no Ready condition")?;
    Ok((
        ready.status.clone(),
        ready.reason.clone(),
        ready.message.clone(),
    ))
}

/// Waits until the Topic's Ready condition has `reason` for its current generation; returns the message.
async fn wait_reason(topics: &Api<Topic>, name: &str, reason: &str) -> String {
    eventually(&format!("Topic {name} to report {reason}"), || async {
        let (status, actual, message) = ready_condition(topics, name).await?;
        if actual == reason {
            Ok(message)
        } else {
            Err(format!("Ready={status} reason={actual}: {message}"))
        }
    })
    .await
}

async fn patch_spec(topics: &Api<Topic>, name: &str, spec: Value) {
    topics
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap_or_else(|e| panic!("patch Topic {name}: {e}"));
}

async fn delete_and_wait_gone(topics: &Api<Topic>, name: &str) {
    topics
        .delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete Topic {name}: {e}"));
    eventually(&format!("Topic {name} to be gone"), || async {
        match topics.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(t) => Err(format!("still there with finalizers {:?}", t.finalizers())),
        }
    })
    .await;
}

/// Waits for an Event with `reason` about the Topic `name`; returns its note.
async fn event_note(client: &Client, namespace: &str, name: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("a {reason} Event for Topic {name}"), || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .map(|e| e.note.unwrap_or_default())
            .ok_or_else(|| "no such Event yet".to_owned())
    })
    .await
}

#[tokio::test]
#[ignore = "needs a running kube-apiserver and a broker binary: run it through hack/test.sh"]
async fn topics_against_a_real_broker() {
    let client = support::client().await;
    install_crds(&client).await;
    let namespace = fresh_namespace(&client).await;
    let mut broker = Broker::start().await;
    let bootstrap = broker.address.clone();

    Api::<KafkaCluster>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &kafka_cluster(CLUSTER, 1))
        .await
        .expect("create KafkaCluster");
    let config = controller::Config {
        instance: Some("it".to_owned()),
        namespace: Some(namespace.clone()),
        bootstrap_override: Some(bootstrap.clone()),
        ..controller::Config::default()
    };
    let operator = tokio::spawn(controller::run(client.clone(), config));
    let topics: Api<Topic> = Api::namespaced(client.clone(), &namespace);

    // Create with 3 partitions and a retention.
    topics
        .create(
            &PostParams::default(),
            &topic(
                "orders",
                3,
                json!({ "config": { "retention.ms": "3600000" } }),
            ),
        )
        .await
        .expect("create Topic orders");
    wait_reason(&topics, "orders", "Reconciled").await;
    client_sees(
        &bootstrap,
        "orders",
        "orders with 3 partitions and retention.ms=3600000",
        |v| v["partitions"] == 3 && v["config"]["retention.ms"] == "3600000",
    )
    .await;
    let created = topics.get("orders").await.expect("get orders");
    let topic_id = created
        .status
        .and_then(|s| s.topic_id)
        .expect("status.topicId");
    assert_eq!(
        topic_id.len(),
        22,
        "topic id printed as Kafka tools do: {topic_id}"
    );
    assert!(event_note(&client, &namespace, "orders", "Created")
        .await
        .contains("3 partitions"));
    assert!(
        created
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"tributary.dev/topic".to_owned()),
        "the Topic carries the operator's finalizer"
    );

    // Grow to 6 partitions; a producer can write to the new last partition.
    patch_spec(&topics, "orders", json!({ "partitions": 6 })).await;
    client_sees(&bootstrap, "orders", "orders with 6 partitions", |v| {
        v["partitions"] == 6
    })
    .await;
    wait_reason(&topics, "orders", "Reconciled").await;
    kafka_view(&bootstrap, &["produce", "orders", "5"])
        .await
        .expect("produce to the new partition 5");

    // Change the retention.
    patch_spec(
        &topics,
        "orders",
        json!({ "config": { "retention.ms": "60000" } }),
    )
    .await;
    client_sees(&bootstrap, "orders", "retention.ms=60000", |v| {
        v["config"]["retention.ms"] == "60000"
    })
    .await;

    // Decreasing partitions is refused by the API server, with the rule's message.
    assert_partition_decrease_refused(&topics, "orders", 2).await;

    // Adopt a topic created behind the operator's back: grow it, and make its overrides those of the spec.
    let admin = AdminClient::new(bootstrap.clone());
    let legacy_config = [("segment.bytes".to_owned(), "1048576".to_owned())]
        .into_iter()
        .collect();
    admin
        .create_topic(&NewTopic {
            name: "legacy",
            partitions: 2,
            replication_factor: 1,
            config: &legacy_config,
        })
        .await
        .expect("create legacy topic directly");
    topics
        .create(
            &PostParams::default(),
            &topic(
                "legacy",
                4,
                json!({ "config": { "cleanup.policy": "compact" } }),
            ),
        )
        .await
        .expect("create Topic legacy");
    wait_reason(&topics, "legacy", "Reconciled").await;
    client_sees(
        &bootstrap,
        "legacy",
        "legacy adopted with 4 partitions and only the spec's config",
        |v| {
            v["partitions"] == 4
                && v["config"]["cleanup.policy"] == "compact"
                && v["config"].get("segment.bytes").is_none()
        },
    )
    .await;
    assert!(event_note(&client, &namespace, "legacy", "Adopted")
        .await
        .contains("2 partitions"));

    // A second Topic for the same Kafka topic is a conflict and changes nothing.
    topics
        .create(
            &PostParams::default(),
            &topic("orders-copy", 9, json!({ "topicName": "orders" })),
        )
        .await
        .expect("create Topic orders-copy");
    let message = wait_reason(&topics, "orders-copy", "Conflict").await;
    assert!(message.contains("Topic orders"), "{message}");
    let copy = topics.get("orders-copy").await.expect("get orders-copy");
    assert!(
        copy.status
            .unwrap_or_default()
            .conditions
            .iter()
            .any(|c| c.type_ == "Conflict" && c.status == "True"),
        "orders-copy has a Conflict condition"
    );
    event_note(&client, &namespace, "orders-copy", "Conflict").await;
    assert_eq!(
        client_view(&bootstrap, "orders")
            .await
            .expect("view orders")["partitions"],
        6
    );

    // A spec the broker refuses gets a condition and an Event, and other Topics keep reconciling.
    topics
        .create(
            &PostParams::default(),
            &topic("bad", 1, json!({ "config": { "retention.ms": "forever" } })),
        )
        .await
        .expect("create Topic bad");
    let message = wait_reason(&topics, "bad", "InvalidSpec").await;
    assert!(
        message.contains("retention.ms"),
        "the condition names the bad setting: {message}"
    );
    assert!(event_note(&client, &namespace, "bad", "InvalidSpec")
        .await
        .contains("retention.ms"));
    patch_spec(
        &topics,
        "orders",
        json!({ "config": { "retention.ms": "120000" } }),
    )
    .await;
    client_sees(
        &bootstrap,
        "orders",
        "retention.ms=120000 while bad is refused",
        |v| v["config"]["retention.ms"] == "120000",
    )
    .await;
    // Fixing the spec is picked up without anything else.
    patch_spec(
        &topics,
        "bad",
        json!({ "config": { "retention.ms": "1000" } }),
    )
    .await;
    wait_reason(&topics, "bad", "Reconciled").await;

    // Deleting the duplicate never deletes the owner's topic.
    delete_and_wait_gone(&topics, "orders-copy").await;
    assert_eq!(
        client_view(&bootstrap, "orders")
            .await
            .expect("view orders")["exists"],
        true
    );

    // Delete policy (the default) deletes the Kafka topic.
    delete_and_wait_gone(&topics, "orders").await;
    client_sees(&bootstrap, "orders", "orders deleted", |v| {
        v["exists"] == false
    })
    .await;

    // Orphan policy keeps it.
    patch_spec(&topics, "legacy", json!({ "deletionPolicy": "Orphan" })).await;
    delete_and_wait_gone(&topics, "legacy").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    client_sees(
        &bootstrap,
        "legacy",
        "legacy kept after an Orphan delete",
        |v| v["exists"] == true,
    )
    .await;

    // A Topic whose cluster does not exist says so, and never blocks its own deletion.
    topics
        .create(
            &PostParams::default(),
            &topic("stray", 1, json!({ "clusterRef": { "name": "nowhere" } })),
        )
        .await
        .expect("create Topic stray");
    let message = wait_reason(&topics, "stray", "ClusterNotFound").await;
    assert!(message.contains("nowhere"), "{message}");
    client_sees(
        &bootstrap,
        "stray",
        "no topic for a Topic without cluster",
        |v| v["exists"] == false,
    )
    .await;
    delete_and_wait_gone(&topics, "stray").await;

    // Brokers that cannot be reached: the Topic says so, a Warning Event tells a person, and the reconcile is
    // retried with backoff until they are back.
    broker.stop();
    patch_spec(&topics, "bad", json!({ "partitions": 2 })).await;
    let message = wait_reason(&topics, "bad", "KafkaUnavailable").await;
    assert!(
        message.contains(&bootstrap),
        "the condition names the address: {message}"
    );
    assert!(event_note(&client, &namespace, "bad", "KafkaUnavailable")
        .await
        .contains("retrying"));
    broker.start_again().await;
    client_sees(
        &bootstrap,
        "bad",
        "bad grown to 2 partitions once the broker is back",
        |v| v["partitions"] == 2,
    )
    .await;
    wait_reason(&topics, "bad", "Reconciled").await;

    operator.abort();
    drop(broker);
}
