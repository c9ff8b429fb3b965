#!/usr/bin/env bash
# The Helm chart, the install bundle and the operator binary against a real control plane (hack/k8s-env.sh).
#
#   static     helm lint --strict (default values and the other modes), values.schema.json refuses unknown
#              keys, two replicas without leader election are refused, charts/tributary/crds/ == crds/,
#              manifests/install.yaml fresh, image references agree (hack/check-images.sh)
#   dry-run    the rendered chart (cluster-wide and namespaced modes) and install.yaml pass
#              `kubectl apply --dry-run=server`
#   install    `helm install` creates the CRDs, Deployment (its pod admitted under Pod Security "restricted"),
#              ServiceAccount, RBAC, metrics Service; the examples in manifests/ validate against the CRDs
#   rbac       `kubectl auth can-i` as the chart's ServiceAccount: what the operator needs is allowed (reading and
#              deleting broker pods, for rolling restarts), the rest (secrets, creating or changing pods,
#              deleting anything else, Leases outside the release namespace) is refused
#   operator   the operator binary runs locally with a token of that ServiceAccount (no admin rights) and leader
#              election: it takes the Lease, reconciles manifests/kafkacluster.yaml (StatefulSet, Services,
#              ConfigMap, PodDisruptionBudget, status, Event) with no Forbidden error; a second replica stands by;
#              `promtool check metrics` accepts /metrics; SIGTERM releases the Lease and the standby takes over;
#              a leader whose Lease is taken stops and exits non-zero
#   topic      the same token-run operator, pointed at a broker process (--bootstrap-override), makes
#              manifests/topic.yaml Ready (kcat sees its 6 partitions); a real Prometheus scrapes the operator and
#              the broker and its HTTP API returns both's series; deleting the Topic deletes the Kafka topic
#   namespaced `helm upgrade --set watchNamespace=...` swaps the ClusterRole for a Role; the operator with
#              --namespace reconciles a cluster there with only that Role
#   uninstall  `helm uninstall` removes the operator
#
# Usage: hack/chart-test.sh            (KUBECONFIG must point at a running control plane, as admin)
#        hack/chart-test.sh static     only the checks that need no cluster
# Env:   TRIBUTARY_OPERATOR_BIN, TRIBUTARY_BROKER_BIN (default: cargo build, then
#        ${CARGO_TARGET_DIR:-target}/debug/...); CHART_TEST_DIR keeps logs and kubeconfigs there (default: a
#        temp dir, removed on success).
# Each step is a function that fails the script; on any failure the operators' and the broker's log tails are
# printed. The broker, the operators and Prometheus listen on port 0 and report the port the kernel chose
# (the broker in an addresses file, the operators and Prometheus in their logs).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
# shellcheck source=hack/lib.sh
source hack/lib.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "$*" in
  static) mode=static ;;
  "") mode=all ;;
  -h|--help) usage; exit 0 ;;
  *) usage >&2; echo "chart-test: unknown arguments: $*" >&2; exit 2 ;;
esac

PATH="$(bash hack/k8s-env.sh bindir):$PATH"
export PATH

RELEASE=tributary
NS=tributary-system          # release namespace (operator, Lease)
APP_NS=chart-test            # where the test's KafkaCluster lives
SA=tributary-operator        # the chart's ServiceAccount for release "tributary"
SA_USER="system:serviceaccount:${NS}:${SA}"
LEASE=tributary-operator
WAIT=45                      # bound of every wait, seconds
EVENTUALLY_TIMEOUT=$WAIT     # for eventually (hack/lib.sh)

work="${CHART_TEST_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tributary-chart.XXXXXX")}"
mkdir -p "$work"
pids=()

say() { printf 'chart-test: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
# On any exit: stop what is still running (SIGTERM, then SIGKILL after 10 s); after a failure, show its logs.
cleanup() {
  local rc=$? pid log
  for pid in "${pids[@]}"; do stop_process "$pid" 10 || true; done
  if (( rc != 0 )); then
    for log in "$work"/operator-*.log "$work"/broker/broker.log; do
      [[ -f "$log" ]] && log_tail "$log" 20
    done
    say "failed (exit $rc); logs in $work"
  fi
}
trap cleanup EXIT

kc() { kubectl --request-timeout=10s "$@"; }
as_sa() { kc --kubeconfig "$work/sa.kubeconfig" "$@"; }
lease_holder() { kc -n "$NS" get lease "$LEASE" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
holder_is() { [[ "$(lease_holder)" == "$1"_* ]]; }
http_ok() { curl -fsS --max-time 2 "$1" >/dev/null; }
exited() { ! kill -0 "$1" 2>/dev/null; }
metric() { curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
metric_is() { [[ "$(metric "$1" "$2")" == "$3" ]]; }
metric_positive() { awk -v v="$(metric "$1" "$2")" 'BEGIN {exit !(v + 0 > 0)}'; }

never_forbidden() { # NAME MESSAGE: fails with MESSAGE when operator NAME's log shows a Forbidden answer
  if grep -qi forbidden "$work/operator-$1.log"; then
    grep -i forbidden "$work/operator-$1.log" | head -n 5 >&2
    fail "$2"
  fi
}

step_static() {
  say "helm lint --strict (defaults, namespaced + 2 replicas + ServiceMonitor)"
  helm lint --strict charts/tributary >"$work/lint.log" || { cat "$work/lint.log" >&2; fail "helm lint"; }
  helm lint --strict charts/tributary --set watchNamespace="$APP_NS" --set replicaCount=2 \
    --set metrics.serviceMonitor.enabled=true >"$work/lint.log" || { cat "$work/lint.log" >&2; fail "helm lint (options)"; }
  if helm template "$RELEASE" charts/tributary --set replicaCount=2 --set leaderElection.enabled=false \
      >/dev/null 2>&1; then
    fail "two replicas without leader election rendered; the chart must refuse them"
  fi
  if helm template "$RELEASE" charts/tributary --set replicas=2 >/dev/null 2>&1; then
    fail "a misspelled value (replicas) rendered; values.schema.json must refuse unknown keys"
  fi
  helm template "$RELEASE" charts/tributary | grep 'kind: ServiceMonitor' >/dev/null \
    && fail "the ServiceMonitor is rendered although it is off by default"
  helm template "$RELEASE" charts/tributary --set metrics.serviceMonitor.enabled=true \
    | grep 'kind: ServiceMonitor' >/dev/null || fail "metrics.serviceMonitor.enabled=true renders no ServiceMonitor"
  bash hack/render-manifests.sh --check || fail "derived files are stale"
  bash hack/check-images.sh || fail "image references disagree"
}

step_dry_run() {
  # A re-run on the same control plane starts from scratch.
  if helm status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
    say "removing the release left by an earlier run"
    helm uninstall "$RELEASE" -n "$NS" >/dev/null
  fi
  kc -n "$APP_NS" delete kafkacluster dev invalid scoped --ignore-not-found --wait=false >/dev/null 2>&1 || true
  say "kubectl apply --dry-run=server of the rendered chart and manifests/install.yaml"
  kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc create namespace "$APP_NS" --dry-run=client -o yaml | kc apply -f - >/dev/null
  # The PodSecurity admission plugin then refuses an operator pod that is not "restricted"-compliant, and
  # step_install waits for that pod.
  kc label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  # Likewise the broker pods the operator's StatefulSets create (step_operator waits for pod dev-0).
  kc label namespace "$APP_NS" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  helm template "$RELEASE" charts/tributary --namespace "$NS" --include-crds \
    | kc apply --server-side --dry-run=server --force-conflicts --field-manager=chart-test -f - >"$work/dry-run.log" \
    || { cat "$work/dry-run.log" >&2; fail "dry-run of the chart (cluster-wide)"; }
  helm template "$RELEASE" charts/tributary --namespace "$NS" --set watchNamespace="$APP_NS" --set replicaCount=2 \
    | kc apply --server-side --dry-run=server --force-conflicts --field-manager=chart-test -f - >"$work/dry-run.log" \
    || { cat "$work/dry-run.log" >&2; fail "dry-run of the chart (namespaced)"; }
  kc apply --server-side --dry-run=server --force-conflicts --field-manager=chart-test -f manifests/install.yaml >"$work/dry-run.log" \
    || { cat "$work/dry-run.log" >&2; fail "dry-run of manifests/install.yaml"; }
}

step_install() {
  say "helm install $RELEASE into $NS"
  helm install "$RELEASE" charts/tributary --namespace "$NS" >"$work/helm-install.log" \
    || { cat "$work/helm-install.log" >&2; fail "helm install"; }
  helm status "$RELEASE" -n "$NS" | grep 'STATUS: deployed' >/dev/null || fail "release not deployed"
  grep -q 'kubectl apply' "$work/helm-install.log" || fail "NOTES.txt does not say what to apply next"
  local crd
  for crd in kafkaclusters.tributary.dev topics.tributary.dev; do
    eventually "CRD $crd Established" kc wait --for=condition=Established --timeout=5s "crd/$crd"
  done
  kc -n "$NS" get serviceaccount "$SA" >/dev/null || fail "no ServiceAccount $SA"
  kc get clusterrole "$SA" >/dev/null || fail "no ClusterRole $SA"
  kc get clusterrolebinding "$SA" >/dev/null || fail "no ClusterRoleBinding $SA"
  kc -n "$NS" get role "$SA-leader-election" >/dev/null || fail "no leader-election Role"
  kc -n "$NS" get service "$SA-metrics" -o jsonpath='{.metadata.annotations.prometheus\.io/scrape}' \
    | grep -x true >/dev/null || fail "metrics Service lacks prometheus.io/scrape"
  local sts='{.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}/{.spec.template.spec.securityContext.runAsNonRoot}/{.spec.template.spec.containers[0].securityContext.capabilities.drop[0]}/{.spec.template.spec.securityContext.seccompProfile.type}'
  [[ "$(kc -n "$NS" get deployment "$SA" -o jsonpath="$sts")" == "true/true/ALL/RuntimeDefault" ]] \
    || fail "Deployment security context is not read-only/non-root/drop ALL/RuntimeDefault"
  # No scheduler or kubelet here: the pod exists (Pending), which proves the Deployment and ReplicaSet are valid.
  eventually "the operator pod" bash -c "kubectl -n $NS get pods -l app.kubernetes.io/component=operator -o name | grep -q pod/"
  say "examples in manifests/ validate against the installed CRDs"
  local example
  for example in manifests/kafkacluster.yaml manifests/kafkacluster-production.yaml manifests/topic.yaml; do
    kc -n "$APP_NS" apply --server-side --dry-run=server --field-manager=chart-test -f "$example" >/dev/null \
      || fail "$example does not validate"
  done
}

step_rbac() {
  say "ServiceAccount token and kubectl auth can-i as $SA_USER"
  local server ca token
  server="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(kc config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  token="$(kc -n "$NS" create token "$SA" --duration=1h)"
  cat >"$work/sa.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: $SA
  user: {token: "$token"}
contexts:
- name: sa
  context: {cluster: test, user: $SA, namespace: $NS}
current-context: sa
EOF
  chmod 600 "$work/sa.kubeconfig"
  [[ "$(as_sa auth whoami -o jsonpath='{.status.userInfo.username}')" == "$SA_USER" ]] \
    || fail "the token does not authenticate as $SA_USER"
  local allowed=(
    "list kafkaclusters.tributary.dev -A" "watch topics.tributary.dev -A" "patch kafkaclusters.tributary.dev --subresource=status -n $APP_NS"
    "patch topics.tributary.dev --subresource=status -n $APP_NS" "patch topics.tributary.dev -n $APP_NS"
    "create statefulsets.apps -n $APP_NS" "patch services -n $APP_NS" "patch configmaps -n $APP_NS"
    "patch poddisruptionbudgets.policy -n $APP_NS" "create events.events.k8s.io -n $APP_NS"
    "create leases.coordination.k8s.io -n $NS" "update leases.coordination.k8s.io/$LEASE -n $NS"
    "get pods -n $APP_NS" "list pods -n $APP_NS" "delete pods -n $APP_NS"
  )
  local refused=(
    "get secrets -n $APP_NS" "list secrets -A" "delete namespaces" "create pods -n $APP_NS" "patch pods -n $APP_NS"
    "update pods -n $APP_NS" "create pods/eviction -n $APP_NS"
    "delete statefulsets.apps -n $APP_NS" "delete kafkaclusters.tributary.dev -n $APP_NS"
    "update kafkaclusters.tributary.dev -n $APP_NS" "create persistentvolumeclaims -n $APP_NS"
    "update leases.coordination.k8s.io/kube-controller-manager -n kube-system" "create leases.coordination.k8s.io -n $APP_NS"
    "create clusterrolebindings.rbac.authorization.k8s.io" "create events -n $APP_NS"
    "update topics.tributary.dev -n $APP_NS" "update topics.tributary.dev --subresource=finalizers -n $APP_NS"
  )
  local check
  for check in "${allowed[@]}"; do
    # shellcheck disable=SC2086
    kc auth can-i $check --as="$SA_USER" >/dev/null || fail "the chart does not grant: $check"
  done
  for check in "${refused[@]}"; do
    # shellcheck disable=SC2086
    if kc auth can-i $check --as="$SA_USER" >/dev/null 2>&1; then fail "the chart grants more than needed: $check"; fi
  done
  # The same through the token, not impersonation.
  if as_sa -n "$APP_NS" get secrets >/dev/null 2>&1; then fail "the operator token can read secrets"; fi
  say "rbac: ${#allowed[@]} needed permissions granted, ${#refused[@]} others refused"
}

# start_operator NAME [ARGS...]: runs the binary with the ServiceAccount token and leader election, logs to
# $work; its metrics side port is port 0, read back from its "serving /metrics" log line. Sets op_pid[NAME]
# and op_port[NAME].
declare -A op_pid=() op_port=()
start_operator() {
  local name="$1" address
  shift
  KUBECONFIG="$work/sa.kubeconfig" POD_NAME="$name" RUST_LOG=info,tributary_operator=debug \
    "$operator_bin" --leader-elect --leader-election-namespace "$NS" --metrics-listen 127.0.0.1:0 \
    --log-format json "$@" >"$work/operator-$name.log" 2>&1 &
  pids+=($!)
  op_pid[$name]=$!
  address="$(eventually --print "$name to log its metrics address" \
    log_address "$work/operator-$name.log" 'serving /metrics')"
  op_port[$name]="${address##*:}"
}

cluster_reconciled() {
  local got
  got="$(kc -n "$APP_NS" get kafkacluster dev -o jsonpath='{.metadata.generation}/{.status.observedGeneration}/{.status.conditions[?(@.type=="Reconciling")].type}')"
  [[ "$got" == 1/1/Reconciling ]]
}

step_operator() {
  operator_bin="${TRIBUTARY_OPERATOR_BIN:-}"
  if [[ -z "$operator_bin" ]]; then
    # A no-op when the binary is fresh; never test a stale one.
    cargo build -q -p tributary-operator --bin tributary-operator
    operator_bin="$(cargo_target_dir "$repo")/debug/tributary-operator"
  fi
  local port_a port_b
  start_operator op-a
  port_a="${op_port[op-a]}"
  say "operator op-a (ServiceAccount token, --leader-elect, metrics on :$port_a)"
  eventually "op-a /readyz" http_ok "http://127.0.0.1:$port_a/readyz"
  eventually "op-a to hold Lease $NS/$LEASE" holder_is op-a
  eventually "op-a leader gauge" metric_is "$port_a" tributary_operator_leader 1

  say "apply manifests/kafkacluster.yaml in $APP_NS; the operator reconciles it with the chart's RBAC only"
  kc -n "$APP_NS" apply --server-side --field-manager=chart-test -f manifests/kafkacluster.yaml >/dev/null
  eventually "StatefulSet dev" kc -n "$APP_NS" get statefulset dev
  local object
  for object in configmap/dev-config service/dev-brokers service/dev-bootstrap poddisruptionbudget/dev; do
    eventually "$object" kc -n "$APP_NS" get "$object"
  done
  eventually "KafkaCluster dev status (observedGeneration 1, conditions)" cluster_reconciled
  [[ "$(kc -n "$APP_NS" get statefulset dev -o jsonpath='{.spec.template.spec.containers[0].image}')" \
    == "$(awk '$1 == "image:" {print $2}' manifests/kafkacluster.yaml)" ]] || fail "StatefulSet image differs from the example"
  eventually "the StatefulSet controller to create pod dev-0 (Pod Security restricted)" kc -n "$APP_NS" get pod dev-0
  # The KafkaCluster pipeline publishes Events about problems: an invalid spec proves the Events permission.
  kc -n "$APP_NS" apply --server-side --field-manager=chart-test -f - >/dev/null <<'EOF'
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: invalid}
spec:
  brokers: 1
  image: ghcr.io/tributary-dev/tributary-broker:0.1.0
  storage: {size: 1Gi}
  brokerConfig: {node.id: "7"}
EOF
  eventually "an InvalidSpec Event from tributary-operator" bash -c "kubectl -n $APP_NS get events.events.k8s.io \
    --field-selector reason=InvalidSpec,regarding.name=invalid -o jsonpath='{.items[*].reportingController}' \
    | grep -q tributary-operator"
  eventually "the invalid cluster's Degraded condition" bash -c "kubectl -n $APP_NS get kafkacluster invalid \
    -o jsonpath='{.status.conditions[?(@.type==\"Degraded\")].status}' | grep -qx True"
  eventually "a successful KafkaCluster reconcile in the metrics" \
    metric_positive "$port_a" 'tributary_operator_reconciles_total{kind="KafkaCluster",result="success"}'
  # Cluster-wide: every KafkaCluster of the control plane counts, including other tests' (hack/test.sh shares it).
  eventually "managed objects gauge (all KafkaClusters of the control plane)" managed_clusters_match "$port_a"
  never_forbidden op-a "the operator hit a permission the chart does not grant"

  say "promtool check metrics on op-a's /metrics"
  curl -fsS --max-time 5 "http://127.0.0.1:$port_a/metrics" >"$work/metrics.txt"
  promtool check metrics <"$work/metrics.txt" || { cat "$work/metrics.txt" >&2; fail "promtool check metrics"; }
  curl -fsS --max-time 5 -H 'Accept: application/openmetrics-text; version=1.0.0' \
    "http://127.0.0.1:$port_a/metrics" | tail -n 1 | grep -x '# EOF' >/dev/null || fail "no OpenMetrics answer when asked for it"
  say "metrics: $(grep -c '^tributary_operator_' "$work/metrics.txt") samples, $(grep -c '^# TYPE' "$work/metrics.txt") families"

  say "a second replica op-b stands by while op-a leads"
  start_operator op-b
  port_b="${op_port[op-b]}"
  eventually "op-b /readyz" http_ok "http://127.0.0.1:$port_b/readyz"
  eventually "op-b to wait for the Lease" grep -q 'waiting for the leader-election Lease' "$work/operator-op-b.log"
  metric_is "$port_b" tributary_operator_leader 0 || fail "op-b claims leadership while op-a holds the Lease"
  holder_is op-a || fail "the Lease moved to $(lease_holder) while op-a runs"
  [[ -z "$(metric "$port_b" 'tributary_operator_reconciles_total{kind="KafkaCluster",result="success"}')" ]] \
    || fail "the standby op-b reconciled"

  say "SIGTERM op-a: it releases the Lease and op-b takes over"
  local t0 rc=0
  t0="$(date +%s)"
  stop_process "${op_pid[op-a]}" "$WAIT" op-a || rc=$?
  ((rc == 0)) || fail "op-a exited with $rc after SIGTERM"
  grep -q 'released the leader-election Lease' "$work/operator-op-a.log" || fail "op-a did not release the Lease"
  eventually "op-b to hold the Lease" holder_is op-b
  eventually "op-b to reconcile" \
    metric_positive "$port_b" 'tributary_operator_reconciles_total{kind="KafkaCluster",result="success"}'
  say "failover took $(( $(date +%s) - t0 ))s"

  say "another holder takes the Lease: op-b stops acting and exits non-zero"
  kc -n "$NS" patch lease "$LEASE" --type=merge \
    -p '{"spec":{"holderIdentity":"intruder","leaseDurationSeconds":60}}' >/dev/null
  eventually "op-b to exit" exited "${op_pid[op-b]}" || fail "op-b still runs ${WAIT}s after losing the Lease"
  rc=0; wait "${op_pid[op-b]}" || rc=$?
  ((rc != 0)) || fail "op-b exited with 0 after losing leadership; Kubernetes would not restart it"
  grep -q 'lost leadership' "$work/operator-op-b.log" || fail "op-b did not log that it lost leadership"
  [[ "$(lease_holder)" == intruder ]] || fail "op-b stepping down changed the new holder's Lease"
  kc -n "$NS" delete lease "$LEASE" >/dev/null
  pids=()
}

step_namespaced() {
  say "watchNamespace=$APP_NS: helm upgrade to a namespaced Role; the operator runs with --namespace on it alone"
  helm upgrade "$RELEASE" charts/tributary --namespace "$NS" --set watchNamespace="$APP_NS" >/dev/null \
    || fail "helm upgrade to watchNamespace=$APP_NS"
  if kc get clusterrole "$SA" >/dev/null 2>&1; then fail "a ClusterRole is left in namespaced mode"; fi
  kc -n "$APP_NS" get role "$SA" >/dev/null || fail "no Role $SA in $APP_NS"
  kc auth can-i list kafkaclusters.tributary.dev -n "$APP_NS" --as="$SA_USER" >/dev/null \
    || fail "namespaced mode does not grant list kafkaclusters in $APP_NS"
  if kc auth can-i list kafkaclusters.tributary.dev -A --as="$SA_USER" >/dev/null 2>&1; then
    fail "namespaced mode still grants cluster-wide list"
  fi
  local port
  start_operator op-c --namespace "$APP_NS"
  port="${op_port[op-c]}"
  eventually "op-c to hold the Lease" holder_is op-c
  kc -n "$APP_NS" apply --server-side --field-manager=chart-test -f - >/dev/null <<'EOF'
apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata: {name: scoped}
spec:
  brokers: 1
  image: ghcr.io/tributary-dev/tributary-broker:0.1.0
  storage: {size: 1Gi}
EOF
  eventually "StatefulSet scoped (namespaced mode)" kc -n "$APP_NS" get statefulset scoped
  eventually "status of KafkaCluster scoped" bash -c "kubectl -n $APP_NS get kafkacluster scoped \
    -o jsonpath='{.status.observedGeneration}' | grep -qx 1"
  eventually "managed objects gauge (namespaced)" \
    metric_is "$port" 'tributary_operator_managed_objects{kind="KafkaCluster"}' 3
  never_forbidden op-c "namespaced mode: the operator hit a permission the Role does not grant"
  local rc=0
  stop_process "${op_pid[op-c]}" "$WAIT" op-c || rc=$?
  ((rc == 0)) || fail "op-c exited with $rc after SIGTERM"
  pids=()
}

# prom_count QUERY: how many series a query through Prometheus' HTTP API returns with a value > 0.
prom_count() {
  curl -fsS --max-time 5 --get "$prom_url/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(sum(float(s["value"][1]) > 0 for s in r))'
}
prom_has() { (( $(prom_count "$1") >= $2 )); }

managed_clusters_match() { # PORT: the gauge equals the KafkaClusters the API server lists in all namespaces
  metric_is "$1" 'tributary_operator_managed_objects{kind="KafkaCluster"}' \
    "$(kc get kafkaclusters.tributary.dev -A --no-headers 2>/dev/null | wc -l)"
}

kafka_partitions() { # TOPIC: partitions a Kafka client (kcat) sees, 0 when the topic does not exist
  kcat -L -J -b "$BROKER_KAFKA" -m 5 \
    | python3 -c 'import json, sys; t = [t for t in json.load(sys.stdin)["topics"] if t["topic"] == sys.argv[1]]; print(len(t[0]["partitions"]) if t else 0)' "$1"
}
kafka_partitions_are() { [[ "$(kafka_partitions "$1")" == "$2" ]]; }

step_topic() {
  say "Topic: an operator with the ServiceAccount token reconciles manifests/topic.yaml on a real broker process"
  local broker_bin="${TRIBUTARY_BROKER_BIN:-}"
  if [[ -z "$broker_bin" ]]; then
    cargo build -q -p tributary-broker
    broker_bin="$(cargo_target_dir "$repo")/debug/tributary-broker"
  fi
  # Auto-creation off: only the operator creates the topic.
  mkdir -p "$work/broker"
  printf 'auto.create.topics.enable=false\n' >"$work/broker/broker.properties"
  start_broker "$broker_bin" "$work/broker" --config "$work/broker/broker.properties" || fail "the broker did not start"
  pids+=("$BROKER_PID")
  start_operator op-t --bootstrap-override "$BROKER_KAFKA"
  eventually "op-t to hold the Lease" holder_is op-t

  kc -n "$APP_NS" apply --server-side --field-manager=chart-test -f manifests/topic.yaml >/dev/null
  eventually "Topic orders Ready" bash -c "kubectl -n $APP_NS get topic orders \
    -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  eventually "kcat to see shop.orders with 6 partitions" kafka_partitions_are shop.orders 6
  [[ -n "$(kc -n "$APP_NS" get topic orders -o jsonpath='{.status.topicId}')" ]] || fail "Topic orders has no topicId"

  say "Prometheus scrapes the operator and the broker"
  prom_url="$(python3 broker/tests/clients/python/prom.py start "$work/prometheus" \
    "operator=127.0.0.1:${op_port[op-t]}" "broker=$BROKER_HTTP")" || fail "prometheus did not start"
  eventually "Prometheus: the operator's Topic reconciles" \
    prom_has 'tributary_operator_reconciles_total{job="operator",kind="Topic",result="success"}' 1
  eventually "Prometheus: the operator's managed Topics" prom_has 'tributary_operator_managed_objects{job="operator",kind="Topic"}' 1
  eventually "Prometheus: an empty Topic backlog once reconciled" \
    prom_has 'tributary_operator_reconcile_backlog{job="operator",kind="Topic"} == bool 0' 1
  eventually "Prometheus: the broker's CreateTopics requests" \
    prom_has 'tributary_requests_total{job="broker",api="CreateTopics"}' 1
  eventually "Prometheus: the broker's 6 partitions of shop.orders" \
    prom_has 'tributary_log_segments{job="broker",topic="shop.orders"}' 6
  python3 broker/tests/clients/python/prom.py stop "$work/prometheus"

  say "delete the Topic (deletionPolicy Delete): the operator removes the Kafka topic and its finalizer"
  kc -n "$APP_NS" delete topic orders --timeout="${WAIT}s" >/dev/null || fail "Topic orders was not deleted"
  eventually "shop.orders gone from Kafka" kafka_partitions_are shop.orders 0
  never_forbidden op-t "the Topic controller hit a permission the chart does not grant"
  local pid
  for pid in "${pids[@]}"; do stop_process "$pid" 30 || true; done
  pids=()
  kc -n "$NS" delete lease "$LEASE" --ignore-not-found >/dev/null
}

step_uninstall() {
  say "helm uninstall"
  kc -n "$APP_NS" delete kafkacluster dev invalid scoped --wait=false >/dev/null
  helm uninstall "$RELEASE" -n "$NS" >/dev/null || fail "helm uninstall"
  eventually "Deployment removed" bash -c "! kubectl -n $NS get deployment $SA"
  if kc -n "$APP_NS" get role "$SA" >/dev/null 2>&1; then fail "Role left behind"; fi
  kc get crd kafkaclusters.tributary.dev >/dev/null || fail "helm uninstall removed a CRD (Helm keeps crds/ by design)"
}

if [[ "$mode" == static ]]; then
  steps=(step_static)
else
  [[ -n "${KUBECONFIG:-}" ]] || fail "KUBECONFIG is not set; start a control plane with hack/k8s-env.sh start DIR"
  command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus; hack/prereqs.sh installs it)"
  steps=(step_static step_dry_run step_install step_rbac step_operator step_topic step_namespaced step_uninstall)
fi
t_start="$(date +%s)"
for step in "${steps[@]}"; do "$step"; done
say "ok: ${steps[*]} in $(( $(date +%s) - t_start ))s"
trap - EXIT
[[ -n "${CHART_TEST_DIR:-}" ]] || rm -rf "$work"
