//! `tributary-operator`: runs the KafkaCluster controller against the cluster the environment points at
//! (in-cluster service account, or KUBECONFIG).

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client")?;
    let instance = std::env::var("POD_NAME").ok();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "tributary-operator starting"
    );
    let settings = tributary_operator::controller::Settings {
        instance,
        bootstrap_override: std::env::var("TRIBUTARY_BOOTSTRAP_OVERRIDE").ok(),
        namespace: std::env::var("WATCH_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty()),
    };
    tributary_operator::controller::run(client, settings).await;
    tracing::info!("tributary-operator stopped");
    Ok(())
}
