#!/usr/bin/env bash
# Runs the project's tests on a bare machine, installing what they need. Stages, in this order:
#   rust           cargo fmt --check, cargo clippy -D warnings, cargo test --workspace (tests that need a
#                  control plane are #[ignore]d there and run in the control-plane stage)
#   prerequisites  hack/prereqs.sh (kcat, curl, Debian's prometheus with promtool, a Python venv with
#                  confluent-kafka and kafka-python, the Java suite's Maven dependencies) and a debug
#                  tributary-broker, for the two stages below
#   control plane  kube-apiserver, etcd and kube-controller-manager from hack/k8s-env.sh (built from their Go
#                  modules once, then cached); against them the operator's ignored tests (operator/tests/it,
#                  operator/tests/leader_election.rs: Topics against a real broker process) and
#                  hack/chart-test.sh (the Helm chart, the install bundle, the operator with the chart's RBAC)
#   clients        broker/tests/clients/run.sh: the kcat, confluent-kafka and kafka-python suites, the Java
#                  kafka-clients suite, and the metrics test (promtool and a real Prometheus); franz-go's kgo
#                  integration tests (hack/franz-go.sh ci, the allowlisted ones must pass); librdkafka's own
#                  test suite (hack/librdkafka.sh ci: built once from the rdkafka-sys crate, the allowlisted
#                  tests must pass); then Kafka's command-line tools against broker clusters (the ignored
#                  kafka_tools cluster tests)
#   faults         hack/cluster.sh short: 3 broker processes, idempotent acks=all producers (confluent-kafka
#                  and Java kafka-clients side by side), a no-fault run, one kill -9 of a partition leader, a
#                  follower SIGSTOPped past replica.lag.time.max.ms, a kill -9 of the active controller, a
#                  rolling SIGTERM restart, and (as root) a leader cut off in a network namespace; every acked
#                  record read back and the replicas compared (~3 min); before it hack/faults/test_workload.py
#                  (the checker, no broker)
#
# Usage: hack/test.sh [--fast] [--skip-clients] [--skip-faults]
#   (no option)      full mode, every stage: what CI runs (.ci/run)
#   --fast           rust, prerequisites, clients and faults; no control plane and no chart (no Go build either)
#   --skip-clients   leave out the clients stage, in either mode (also SKIP_CLIENTS=1)
#   --skip-faults    leave out the faults stage, in either mode (also SKIP_FAULTS=1); with --fast and
#                    --skip-clients only the rust stage runs
#   -h, --help       this text
# Environment: TRIBUTARY_CACHE (default ~/.cache/tributary) keeps the venv, the Kubernetes binaries and other
# downloads between runs; CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

mode=full
skip_clients="${SKIP_CLIENTS:-0}"
skip_faults="${SKIP_FAULTS:-0}"
[[ "$skip_clients" == 0 || "$skip_clients" == 1 ]] || { echo "test.sh: SKIP_CLIENTS must be 0 or 1, got $skip_clients" >&2; exit 2; }
[[ "$skip_faults" == 0 || "$skip_faults" == 1 ]] || { echo "test.sh: SKIP_FAULTS must be 0 or 1, got $skip_faults" >&2; exit 2; }
while (( $# )); do
  case "$1" in
    --fast) mode=fast ;;
    --skip-clients) skip_clients=1 ;;
    --skip-faults) skip_faults=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; echo "test.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
run_control_plane=1; [[ "$mode" == fast ]] && run_control_plane=0
run_clients=1; [[ "$skip_clients" == 1 ]] && run_clients=0
run_faults=1; [[ "$skip_faults" == 1 ]] && run_faults=0

step() { printf '\n==> %s\n' "$*"; }
t_start="$(date +%s)"
ran=(rust) skipped=()

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
target="$(cargo_target_dir "$PWD")"
mkdir -p "$target"
cargo test --workspace 2>&1 | tee "$target/cargo-test.log"
grep -q "test result: ok" "$target/cargo-test.log"

if (( run_control_plane || run_clients || run_faults )); then
  step "prerequisites (kcat, Prometheus, Python clients, Maven deps)"
  bash hack/prereqs.sh
  # The operator's Topic test looks at topics through confluent-kafka from this venv.
  export TRIBUTARY_PYTHON="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv/bin/python"

  step "broker binary (for the Topic tests, the client suites and the fault harness)"
  cargo build -p tributary-broker
  export TRIBUTARY_BROKER_BIN="$target/debug/tributary-broker"
fi

if (( run_control_plane )); then
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
  ran+=("control plane")
else
  skipped+=("control plane (--fast)")
fi

if (( run_clients )); then
  step "real-client suites"
  bash broker/tests/clients/run.sh
  # franz-go's kgo integration tests (Go module proxy), the allowlisted ones must pass.
  FRANZ_GO_OUT="$(mktemp -d)" bash hack/franz-go.sh ci
  # librdkafka's test-runner (its source from the rdkafka-sys crate, built once), the allowlisted ones must pass.
  LIBRDKAFKA_OUT="$(mktemp -d)" bash hack/librdkafka.sh ci
  # Kafka's own tools (kafka-reassign-partitions, kafka-metadata-quorum describe / add-controller /
  # remove-controller, kafka-configs) against 4-broker clusters: need Java and the Kafka jars, which the
  # prerequisites provide; without them they fail rather than skip.
  cargo test -p tributary-broker --test cluster kafka_tools:: -- --ignored --test-threads=1
  ran+=(clients)
else
  skipped+=("clients (--skip-clients / SKIP_CLIENTS=1)")
fi

if (( run_faults )); then
  step "fault harness (its checker on made-up histories, then hack/cluster.sh short)"
  "${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv/bin/python" -m pytest -q -p no:cacheprovider hack/faults/test_workload.py
  bash hack/cluster.sh short
  ran+=(faults)
else
  skipped+=("faults (--skip-faults / SKIP_FAULTS=1)")
fi

summary="ran: ${ran[0]}"
for stage in "${ran[@]:1}"; do summary+=", $stage"; done
for stage in "${skipped[@]}"; do summary+="; skipped: $stage"; done
step "ok in $(( $(date +%s) - t_start ))s ($mode mode; $summary)"
