#!/usr/bin/env bash
# Topic operator benchmark: time from `kubectl apply` of Topic manifests to the topics being usable in Kafka (a
# confluent-kafka client sees every partition) and to every Topic reporting Ready, for 1 Topic (three runs) and
# for BENCH_TOPICS (default 1000) Topics applied at once; then the time until deleting them all removed them from
# Kafka. A benchmark, not a test: it prints figures and writes hack/bench/results/topics-<date>.md.
#
# Runs everything locally: the control plane from hack/k8s-env.sh, a release tributary-broker on loopback (topic
# auto-creation off, so only the operator creates topics), and the release tributary-operator process pointed at
# that broker (--bootstrap-override) and watching one namespace. Both listen on port 0 (hack/lib.sh start_broker).
#
# Environment: BENCH_TOPICS=1000, BENCH_PARTITIONS=3, BENCH_TIMEOUT=300 (seconds per measurement),
# BENCH_KEEP=1 keeps the work directory (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

topics="${BENCH_TOPICS:-1000}"
partitions="${BENCH_PARTITIONS:-3}"
timeout_s="${BENCH_TIMEOUT:-300}"
cache="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
python="$cache/venv/bin/python"

bash hack/prereqs.sh >/dev/null
cargo build --release -p tributary-operator -p tributary-broker
target_dir="$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bash hack/k8s-env.sh build
PATH="$(bash hack/k8s-env.sh bindir):$PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/tributary-bench-topics.XXXXXX")"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do stop_process "$pid" 30 || true; done
  bash hack/k8s-env.sh stop "$work/k8s" >/dev/null 2>&1 || true
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/k8s"
eval "$(bash hack/k8s-env.sh start "$work/k8s")"
export KUBECONFIG
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd/kafkaclusters.tributary.dev crd/topics.tributary.dev >/dev/null
kubectl create namespace bench >/dev/null
kubectl apply -n bench -f - >/dev/null <<'YAML'
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: bench
spec:
  brokers: 1
  image: tributary:bench
  storage:
    size: 1Gi
YAML

mkdir -p "$work/broker"
printf 'auto.create.topics.enable=false\n' > "$work/broker/broker.properties"
start_broker "$target_dir/release/tributary-broker" "$work/broker" --config "$work/broker/broker.properties"
pids+=("$BROKER_PID")
bootstrap="$BROKER_KAFKA"

# Nothing here reads the operator's metrics: port 0, wherever it lands.
"$target_dir/release/tributary-operator" --log-level warn --bootstrap-override "$bootstrap" \
  --namespace bench --metrics-listen 127.0.0.1:0 > "$work/operator.log" 2>&1 &
pids+=($!)
# The operator is up once it has written the KafkaCluster's status.
cluster_observed() { [[ -n "$(kubectl get kafkacluster bench -n bench -o jsonpath='{.status.observedGeneration}')" ]]; }
eventually --timeout 60 --interval 0.1 "the operator to write KafkaCluster bench's status" cluster_observed \
  || { log_tail "$work/operator.log"; exit 1; }

run() { # COUNT PREFIX
  "$python" hack/bench/topics.py --bootstrap "$bootstrap" --namespace bench --cluster bench \
    --count "$1" --partitions "$partitions" --prefix "$2" --timeout "$timeout_s"
}

results=()
for i in 1 2 3; do
  results+=("$(run 1 "single$i")")
  echo "${results[-1]}"
done
results+=("$(run "$topics" many)")
echo "${results[-1]}"

mkdir -p hack/bench/results
out="hack/bench/results/topics-$(date -u +%Y-%m-%d-%H%M%S).md"
{
  echo "# Topic operator benchmark, $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores. Control plane from hack/k8s-env.sh, release tributary-broker and tributary-operator"
  echo "on loopback, $partitions partitions per topic, replication factor 1. Times from the start of \`kubectl apply\`."
  echo
  echo "| Topics | kubectl apply (s) | usable in Kafka (s) | all Ready (s) | deleted from Kafka after kubectl delete (s) |"
  echo "|---:|---:|---:|---:|---:|"
  for line in "${results[@]}"; do
    "$python" -c 'import json,sys; r=json.loads(sys.argv[1]); print("| {topics} | {kubectl_apply_s} | {usable_in_kafka_s} | {all_ready_s} | {deleted_from_kafka_s} |".format(**r))' "$line"
  done
} > "$out"
cat "$out"
echo "written to $out"
