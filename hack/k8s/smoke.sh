#!/usr/bin/env bash
# Smoke test of hack/k8s-env.sh: build (or reuse), start a control plane in a temp dir,
# apply a headless Service + StatefulSet with a volumeClaimTemplate, check that
# kube-controller-manager creates the Pods (Pending: no scheduler/kubelet) and the PVCs,
# that ownerReferences + garbage collection work, that helm talks to the apiserver, then stop.
# Usage: hack/k8s/smoke.sh [DIR]   (DIR defaults to a mktemp dir, removed on success)
set -euo pipefail

_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
env_sh="${_repo}/hack/k8s-env.sh"
dir="${1:-$(mktemp -d -t tributary-k8s.XXXXXX)}"
say() { printf 'smoke: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; "$env_sh" status "$dir" >&2 || true; exit 1; }

"$env_sh" build
bin="$("$env_sh" bindir)"
export PATH="${bin}:${PATH}"  # kubectl and helm of the pinned versions
trap '"$env_sh" stop "$dir" || true' EXIT
t0=$(date +%s.%N)
eval "$("$env_sh" start "$dir")"
say "start took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1fs", b - a}')"
export KUBECONFIG

kubectl version -o yaml | grep -E 'gitVersion' >&2
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
---
apiVersion: v1
kind: Service
metadata: {name: brokers, namespace: smoke}
spec:
  clusterIP: None
  selector: {app: broker}
  ports: [{name: kafka, port: 9092}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: broker, namespace: smoke}
spec:
  serviceName: brokers
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: broker}}
  template:
    metadata: {labels: {app: broker}}
    spec:
      containers:
      - name: broker
        image: tributary:dev
        ports: [{containerPort: 9092, name: kafka}]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
EOF

# Parallel pod management: the controller creates all 3 Pods without waiting for Ready.
for _ in $(seq 1 60); do
  pods=$(kubectl -n smoke get pods -l app=broker -o name | wc -l)
  pvcs=$(kubectl -n smoke get pvc -o name | wc -l)
  ((pods == 3 && pvcs == 3)) && break
  sleep 0.5
done
kubectl -n smoke get statefulset,pods,pvc -o wide >&2
((pods == 3)) || fail "expected 3 pods, got $pods"
((pvcs == 3)) || fail "expected 3 PVCs, got $pvcs"
phase=$(kubectl -n smoke get pod broker-0 -o jsonpath='{.status.phase}')
[[ $phase == Pending ]] || fail "broker-0 phase $phase, expected Pending"
kubectl -n smoke get pvc data-broker-0 -o jsonpath='{.spec.resources.requests.storage}' | grep -qx 1Gi \
  || fail "PVC data-broker-0 lacks the template's request"
owner=$(kubectl -n smoke get pod broker-1 -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')
[[ $owner == StatefulSet/broker ]] || fail "broker-1 owner is '$owner'"

# Garbage collector: deleting the StatefulSet (background) deletes its Pods.
kubectl -n smoke delete statefulset broker --wait=false >&2
for _ in $(seq 1 60); do
  pods=$(kubectl -n smoke get pods -o name | wc -l)
  ((pods == 0)) && break
  sleep 0.5
done
((pods == 0)) || fail "garbage collector left $pods pods"

helm version >&2
# A chart with kubeVersion checks the server version the ldflags set.
helm create "${dir}/demo" >/dev/null
sed -i 's/^appVersion:.*/&\nkubeVersion: ">=1.30.0-0"/' "${dir}/demo/Chart.yaml"
helm lint "${dir}/demo" >&2 || fail "helm lint"
helm install demo "${dir}/demo" -n demo --create-namespace >/dev/null || fail "helm install"
helm list -n demo | grep -q 'deployed' || fail "helm release not deployed"
for _ in $(seq 1 60); do
  pods=$(kubectl -n demo get pods -o name | wc -l)
  ((pods == 1)) && break
  sleep 0.5
done
((pods == 1)) || fail "the chart's Deployment made $pods pods, expected 1"
helm uninstall demo -n demo >/dev/null || fail "helm uninstall"
say "ok: 3 Pods (Pending) + 3 PVCs created, GC removed the Pods, helm install/uninstall of a chart worked"

"$env_sh" stop "$dir"
trap - EXIT
[[ $# -ge 1 ]] || rm -rf "$dir"
