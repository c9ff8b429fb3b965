//! `tributary-operator`: runs the Tributary controllers against the cluster the environment points at (in-cluster
//! service account, or KUBECONFIG). Flags: `tributary-operator --help`; the process lifecycle is in `runtime`.

use clap::Parser as _;
use tributary_operator::runtime::{self, Args};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    runtime::init_logging(&args)?;
    runtime::run(args).await
}
