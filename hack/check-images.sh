#!/usr/bin/env bash
# Checks that every reference to the Tributary images agrees with the workspace version in Cargo.toml: the
# Dockerfiles' documented tags and VERSION args, the chart's version/appVersion and default image, the rendered
# install bundle, and the broker image of the example KafkaClusters. Needs only bash, grep and awk.
# Usage: hack/check-images.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REGISTRY=ghcr.io/tributary-dev
BROKER="${REGISTRY}/tributary-broker"
OPERATOR="${REGISTRY}/tributary-operator"

fail=0
bad() { echo "check-images: $*" >&2; fail=1; }

version="$(awk '/^\[workspace.package\]/ {p=1; next} /^\[/ {p=0} p && $1 == "version" {gsub(/"/, "", $3); print $3; exit}' Cargo.toml)"
[[ -n "$version" ]] || { echo "check-images: no [workspace.package] version in Cargo.toml" >&2; exit 1; }

# Dockerfiles: the documented build tag and the VERSION label argument.
for pair in "broker/Dockerfile:${BROKER}" "operator/Dockerfile:${OPERATOR}"; do
  file="${pair%%:*}"; image="${pair#*:}"
  grep -q -- "-t ${image}:${version} " "$file" || bad "$file does not document the tag ${image}:${version}"
  grep -qx "ARG VERSION=${version}" "$file" || bad "$file: ARG VERSION is not ${version}"
done

# The broker image's user is the group the operator gives broker volumes (fsGroup), so they are writable.
grep -qx 'USER 65532:65532' broker/Dockerfile || bad "broker/Dockerfile: USER is not 65532:65532"
grep -q 'pub const BROKER_FS_GROUP: i64 = 65532;' operator/src/cluster/build.rs \
  || bad "operator/src/cluster/build.rs: BROKER_FS_GROUP is not the broker image's uid 65532"

# Chart: version, appVersion, default image repository (the tag defaults to appVersion).
chart=charts/tributary/Chart.yaml values=charts/tributary/values.yaml
grep -qx "version: ${version}" "$chart" || bad "$chart: version is not ${version}"
grep -qx "appVersion: \"${version}\"" "$chart" || bad "$chart: appVersion is not \"${version}\""
grep -qx "  repository: ${OPERATOR}" "$values" || bad "$values: image.repository is not ${OPERATOR}"
grep -qx '  tag: ""' "$values" || bad "$values: image.tag should stay \"\" so the tag follows appVersion"

# The rendered bundle runs the operator image of this version.
operator_images="$(grep -E '^\s+image: ' manifests/install.yaml | awk '{print $2}' | tr -d '"' | sort -u)"
[[ "$operator_images" == "${OPERATOR}:${version}" ]] \
  || bad "manifests/install.yaml runs '${operator_images//$'\n'/ }', expected ${OPERATOR}:${version}"

# Example KafkaClusters use the broker image of this version.
for file in manifests/*.yaml; do
  [[ "$file" == manifests/install.yaml ]] && continue
  grep -q '^kind: KafkaCluster' "$file" || continue
  images="$(awk '$1 == "image:" {print $2}' "$file" | tr -d '"' | sort -u)"
  [[ "$images" == "${BROKER}:${version}" ]] || bad "$file uses image '${images}', expected ${BROKER}:${version}"
done

((fail == 0)) && echo "check-images: every image reference is ${BROKER}:${version} or ${OPERATOR}:${version}"
exit "$fail"
