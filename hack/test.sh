#!/usr/bin/env bash
# Runs every test of the project on a bare machine: installs what the suites need (hack/prereqs.sh), checks
# formatting and lints, runs the Rust tests, then the real-client suites (kcat, confluent-kafka, kafka-python,
# the Java kafka-clients) against a freshly built broker, and the metrics test (promtool and a real Prometheus,
# Debian's package, also installed by hack/prereqs.sh).
#
# Environment: TRIBUTARY_CACHE (default ~/.cache/tributary) keeps the Python venv and other downloads between
# runs; SKIP_CLIENTS=1 runs only the Rust checks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace 2>&1 | tee target/cargo-test.log
grep -q "test result: ok" target/cargo-test.log

step "prerequisites (kcat, Python clients, Maven deps)"
bash hack/prereqs.sh
# The operator's Topic test looks at topics through confluent-kafka from this venv.
export TRIBUTARY_PYTHON="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv/bin/python"

step "broker binary (for the Topic tests and the client suites)"
cargo build -p tributary-broker
export TRIBUTARY_BROKER_BIN="$PWD/target/debug/tributary-broker"

step "operator against a real kube-apiserver (and Topics against a real broker)"
bash hack/k8s-env.sh build
k8s_dir="$(mktemp -d "${TMPDIR:-/tmp}/tributary-k8s.XXXXXX")"
# On failure the control plane is stopped and its logs stay in $k8s_dir.
trap 'bash hack/k8s-env.sh stop "$k8s_dir" || true; echo "control plane logs: $k8s_dir/*.log" >&2' EXIT
# An assignment, not `eval "$(...)"`, so a failed start stops the script.
k8s_env="$(bash hack/k8s-env.sh start "$k8s_dir")"
eval "$k8s_env"
export KUBECONFIG
cargo test -p tributary-operator --test it --test leader_election -- --ignored --test-threads=1
step "Helm chart, install bundle and the operator binary with the chart's RBAC (same control plane)"
bash hack/chart-test.sh
bash hack/k8s-env.sh stop "$k8s_dir"
trap - EXIT
unset KUBECONFIG
rm -rf "$k8s_dir"

if [[ "${SKIP_CLIENTS:-0}" == 1 ]]; then
  exit 0
fi


step "real-client suites"
bash broker/tests/clients/run.sh
