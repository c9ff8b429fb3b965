#!/usr/bin/env bash
# Installs what the client compatibility suites (broker/tests/clients) need:
# kcat, curl and prometheus (with promtool) from Debian, a Python venv with pinned
# Kafka clients, the Java suite's Maven dependencies in ~/.m2, and the fault harness's
# Java producer built against them (hack/faults/java/build.sh). Idempotent and
# quick when done.
# Usage: hack/prereqs.sh   (run it; the venv is ${TRIBUTARY_CACHE:-~/.cache/tributary}/venv)
set -euo pipefail

_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_cache="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"
TRIBUTARY_VENV="${_cache}/venv"
export TRIBUTARY_VENV

# Pins: kafka-python 2.3.x is the newest 2.x line and supports Python 3.8-3.13
# (2.0.2 breaks on 3.12); 3.x changed APIs. confluent-kafka wheels bundle librdkafka.
_py_pins=(
  "confluent-kafka==2.16.1"
  "kafka-python==2.3.3"
  "pytest==8.4.2"
  "lz4==4.4.5"
  "python-snappy==0.7.3"
  "zstandard==0.25.0"
)
_stamp="${TRIBUTARY_VENV}/.tributary-pins"

step() { printf 'prereqs: %s\n' "$*"; }

# 1. Debian packages.
_missing=()
for pkg in kcat curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || _missing+=("$pkg")
done
if ((${#_missing[@]})); then
  _sudo=""; [[ $(id -u) -eq 0 ]] || _sudo="sudo"
  step "apt-get install ${_missing[*]}"
  $_sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $_sudo apt-get install -y -qq "${_missing[@]}" >/dev/null
else
  step "apt packages present (kcat, curl)"
fi

# 1b. Prometheus and promtool (Debian's 2.42) for the metrics test. The package's maintainer scripts would
# start a prometheus service on :9090; a policy-rc.d that refuses service starts keeps them from doing so
# (honoured by invoke-rc.d and deb-systemd-invoke alike) and is removed afterwards if we created it.
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  step "prometheus present ($(promtool --version 2>&1 | head -n 1 | cut -d' ' -f1-3))"
else
  _sudo=""; [[ $(id -u) -eq 0 ]] || _sudo="sudo"
  step "apt-get install prometheus (no service start)"
  _policy=/usr/sbin/policy-rc.d
  _made_policy=0
  if [[ ! -e "$_policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | $_sudo tee "$_policy" >/dev/null
    $_sudo chmod 755 "$_policy"
    _made_policy=1
  fi
  _rc=0
  { $_sudo apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive $_sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
    _rc=$?
  [[ $_made_policy == 1 ]] && $_sudo rm -f "$_policy"
  if [[ $_rc != 0 ]] || ! command -v promtool >/dev/null 2>&1; then
    echo "prereqs: installing prometheus failed (exit $_rc)" >&2
    exit 1
  fi
fi

# 2. Python venv with pinned clients.
_want="$(printf '%s\n' "${_py_pins[@]}")"
if [[ -x "${TRIBUTARY_VENV}/bin/python" && -f "$_stamp" && "$(cat "$_stamp")" == "$_want" ]]; then
  step "python venv up to date at ${TRIBUTARY_VENV}"
else
  step "python venv: installing ${_py_pins[*]} into ${TRIBUTARY_VENV}"
  mkdir -p "$_cache"
  [[ -x "${TRIBUTARY_VENV}/bin/python" ]] || python3 -m venv "${TRIBUTARY_VENV}"
  "${TRIBUTARY_VENV}/bin/python" -m pip install -q --disable-pip-version-check "${_py_pins[@]}"
  printf '%s' "$_want" >"$_stamp"
fi

# 3. Maven dependencies of the Java suite (into ~/.m2).
_pom="${_repo}/broker/tests/clients/java/pom.xml"
_mstamp="${_cache}/m2-resolved.sha256"
_msum="$(sha256sum "$_pom" | cut -d' ' -f1)"
if [[ -f "$_mstamp" && "$(cat "$_mstamp")" == "$_msum" ]]; then
  step "maven dependencies already resolved for $(basename "$(dirname "$_pom")")/pom.xml"
else
  step "maven: resolving test dependencies and plugins (dependency:go-offline)"
  _mlog="$(mktemp)"
  if ! mvn -q -B -Dstyle.color=never -f "$_pom" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:go-offline >"$_mlog" 2>&1; then
    tail -n 40 "$_mlog" >&2; rm -f "$_mlog"; exit 1
  fi
  rm -f "$_mlog"
  printf '%s' "$_msum" >"$_mstamp"
fi

# 4. The fault harness's Java producer (hack/cluster.sh), against the dependencies step 3 resolved.
step "fault harness Java producer: $(bash "${_repo}/hack/faults/java/build.sh" | cut -d: -f1)"
