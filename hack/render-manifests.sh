#!/usr/bin/env bash
# Regenerates what is derived from the chart: charts/tributary/crds/ (a copy of crds/, which crdgen generates) and
# manifests/install.yaml (the chart rendered with its default values, for `kubectl apply` without Helm).
#
# Usage: hack/render-manifests.sh           rewrite both
#        hack/render-manifests.sh --check   exit 1 (with a diff) when either is stale; writes nothing
# helm comes from PATH, else from $(hack/k8s-env.sh bindir) (run `hack/k8s-env.sh build` once).
set -euo pipefail
cd "$(dirname "$0")/.."

NAMESPACE=tributary-system
RELEASE=tributary
check=0
[[ "${1:-}" == --check ]] && check=1

if ! command -v helm >/dev/null; then
  PATH="$(bash hack/k8s-env.sh bindir):$PATH"
  command -v helm >/dev/null || { echo "render-manifests: helm not found; run hack/k8s-env.sh build" >&2; exit 1; }
fi

render_install() {
  cat <<HEADER
# The Tributary operator, rendered from charts/tributary with its default values by hack/render-manifests.sh —
# DO NOT EDIT (a test fails when this file is stale).
#
#   kubectl apply --server-side -f manifests/install.yaml
#
# Installs the CRDs, the namespace ${NAMESPACE}, the operator Deployment, its ServiceAccount, RBAC and metrics
# Service. For other settings (namespaced RBAC, replicas, ServiceMonitor) install the chart with Helm instead.
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${NAMESPACE}
  labels:
    app.kubernetes.io/part-of: tributary
HEADER
  helm template "$RELEASE" charts/tributary --namespace "$NAMESPACE" --include-crds
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ((check)); then
  render_install >"$tmp/install.yaml"
  stale=0
  if ! diff -r crds charts/tributary/crds >"$tmp/crds.diff"; then
    echo "render-manifests: charts/tributary/crds/ differs from crds/ — run hack/render-manifests.sh" >&2
    cat "$tmp/crds.diff" >&2; stale=1
  fi
  if ! diff -u manifests/install.yaml "$tmp/install.yaml" >"$tmp/install.diff"; then
    echo "render-manifests: manifests/install.yaml is stale — run hack/render-manifests.sh" >&2
    head -n 60 "$tmp/install.diff" >&2; stale=1
  fi
  ((stale == 0)) && echo "render-manifests: charts/tributary/crds/ and manifests/install.yaml are up to date"
  exit "$stale"
fi

# The CRDs first: install.yaml includes the chart's copy of them.
rm -f charts/tributary/crds/*.yaml
cp crds/*.yaml charts/tributary/crds/
render_install >"$tmp/install.yaml"
cp "$tmp/install.yaml" manifests/install.yaml
echo "render-manifests: wrote charts/tributary/crds/ and manifests/install.yaml"
