//! Helpers shared by the tests against a real control plane: waiting with a bound, CRD installation, fresh
//! namespaces, a client from KUBECONFIG, an HTTP probe.

use std::{future::Future, net::SocketAddr, time::Duration};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
    Api, Client, Resource, ResourceExt,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_operator::crd::{crds_dir, KafkaCluster, KafkaClusterStatus};

/// Field manager of what the test itself applies.
pub(crate) const MANAGER: &str = "tributary-operator-it";
/// Bound of every wait for the operator or a Kubernetes controller.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
pub(crate) const CLUSTER: &str = "demo";
pub(crate) const CONFIG_HASH_ANNOTATION: &str = "tributary.dev/config-hash";

/// Bound of the wait for the garbage collector. It only follows owner references to kinds it has discovered, and
/// it rediscovers API resources every 30 s: on a fresh control plane the KafkaCluster CRD is seconds old when the
/// cluster is deleted, so the collector can need up to ~30 s before it even sees the deletion.
pub(crate) const GC_WAIT: Duration = Duration::from_secs(75);

/// Polls `check` every 200 ms until it returns `Ok`, or panics after `WAIT` with the last reason it gave.
pub(crate) async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    eventually_within(what, WAIT, check).await
}

/// [`eventually`] with another bound.
pub(crate) async fn eventually_within<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(reason) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {bound:?} waiting for {what}: {reason}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Whether an HTTP GET of `path` on `address` answers 200 within a second.
pub(crate) async fn http_ok(address: SocketAddr, path: &str) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", address.ip());
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.ends_with(b"200"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The API server's refusal of `result`, with its code and message.
pub(crate) fn refusal<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    what: &str,
) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("{what}: expected the API server to refuse it, got {other:?}"),
    }
}

pub(crate) fn kafka_cluster(name: &str, brokers: i32) -> KafkaCluster {
    serde_json::from_value(json!({
        "apiVersion": "tributary.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": { "name": name },
        "spec": {
            "brokers": brokers,
            "image": "tributary:it",
            "storage": { "size": "1Gi" },
        },
    }))
    .expect("KafkaCluster from JSON")
}

pub(crate) fn owned_by(owner_references: &[OwnerReference], cluster: &KafkaCluster) -> bool {
    owner_references.iter().any(|owner| {
        owner.kind == "KafkaCluster"
            && owner.name == cluster.name_any()
            && Some(&owner.uid) == cluster.meta().uid.as_ref()
            && owner.controller == Some(true)
    })
}

/// Server-side applies every CRD of `crds/` and waits until each is Established.
pub(crate) async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut files: Vec<_> = std::fs::read_dir(crds_dir())
        .expect("read crds/")
        .map(|entry| entry.expect("crds/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CRD in {}", crds_dir().display());
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read CRD file");
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", path.display()));
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("server-side apply of CRD {name}: {e}"));
        tokio::time::timeout(
            WAIT,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not Established after {WAIT:?}"))
        .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
    }
}

/// Creates a fresh namespace (its `default` ServiceAccount is not needed: nothing here runs a pod).
pub(crate) async fn fresh_namespace(client: &Client) -> String {
    let name = format!(
        "tributary-it-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 1_000_000)
            .unwrap_or_default()
    );
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).expect("Namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    name
}

/// A client for the control plane `KUBECONFIG` points at, with test logging set up.
pub(crate) async fn client() -> Client {
    let kubeconfig = std::env::var_os("KUBECONFIG").unwrap_or_else(|| {
        panic!(
            "KUBECONFIG is not set: this test needs a running kube-apiserver + kube-controller-manager. Run it \
             through hack/test.sh, or `eval \"$(hack/k8s-env.sh start DIR)\"` first."
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tributary_operator=debug".into()),
        )
        .with_test_writer()
        .try_init();
    Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("kube client from KUBECONFIG={kubeconfig:?}: {e}"))
}

/// Asserts that the API server refuses shrinking Topic `name` to `partitions` with the CRD's CEL message, and that
/// the stored spec is unchanged.
pub(crate) async fn assert_partition_decrease_refused(
    topics: &Api<tributary_operator::crd::Topic>,
    name: &str,
    partitions: i32,
) {
    let before = topics.get(name).await.expect("get Topic").spec.partitions;
    let (code, message) = refusal(
        topics
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "partitions": partitions } })),
            )
            .await,
        &format!("shrinking Topic {name} from {before} to {partitions} partitions"),
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("partitions cannot be decreased"),
        "the refusal should name the rule: {message}"
    );
    let after = topics.get(name).await.expect("get Topic").spec.partitions;
    assert_eq!(after, before, "a refused patch must not apply");
}

/// The status of KafkaCluster `name` (empty before the operator wrote one).
pub(crate) async fn cluster_status(
    clusters: &Api<KafkaCluster>,
    name: &str,
) -> Result<KafkaClusterStatus, String> {
    Ok(clusters
        .get(name)
        .await
        .map_err(|e| e.to_string())?
        .status
        .unwrap_or_default())
}
