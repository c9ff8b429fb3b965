#!/usr/bin/env bash
# Runs the client compatibility suites against the tributary-broker binary:
#   1. hack/prereqs.sh (kcat, Python venv, Maven deps);
#   2. the pytest suite (arguments are passed to pytest); it starts its own brokers;
#   3. one broker for the Java suite (ports chosen by the kernel: hack/lib.sh start_broker), then
#      `mvn test -DKAFKA_BOOTSTRAP=...`, then stops it.
# Env: TRIBUTARY_BROKER_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/debug/tributary-broker);
#      KAFKA_BOOTSTRAP=host:port runs both suites against an external broker instead (the
#      restart tests skip); TRIBUTARY_SKIP_JAVA=1 / TRIBUTARY_SKIP_PYTHON=1 skip a suite.
# Exits non-zero when any suite fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
# shellcheck source=hack/lib.sh
source "$repo/hack/lib.sh"
bash "$repo/hack/prereqs.sh" || { echo "run.sh: prereqs failed" >&2; exit 2; }
venv="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv"
export TRIBUTARY_BROKER_BIN="${TRIBUTARY_BROKER_BIN:-$(cargo_target_dir "$repo")/debug/tributary-broker}"
external="${KAFKA_BOOTSTRAP:-}"

if [[ -z "$external" && ! -x "$TRIBUTARY_BROKER_BIN" ]]; then
  echo "run.sh: broker binary $TRIBUTARY_BROKER_BIN not found (cargo build, or set TRIBUTARY_BROKER_BIN / KAFKA_BOOTSTRAP)" >&2
  exit 2
fi

py_rc=0
if [[ "${TRIBUTARY_SKIP_PYTHON:-0}" != 1 ]]; then
  echo "run.sh: python suite (broker: ${external:-$TRIBUTARY_BROKER_BIN})"
  (cd "$here/python" && "$venv/bin/python" -m pytest -ra "$@")
  py_rc=$?
fi

java_rc=0
if [[ "${TRIBUTARY_SKIP_JAVA:-0}" != 1 ]]; then
  work=""
  trap 'stop_broker || true' EXIT
  bootstrap="$external"
  if [[ -z "$bootstrap" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/tributary-java.XXXXXX")"
    printf 'auto.create.topics.enable=true\nnum.partitions=1\n' >"$work/broker.properties"
    if ! start_broker "$TRIBUTARY_BROKER_BIN" "$work" --node-id 1 --config "$work/broker.properties"; then
      echo "run.sh: the broker for the Java suite did not start (log: $BROKER_LOG)" >&2
      exit 1
    fi
    bootstrap="$BROKER_KAFKA"
  fi
  echo "run.sh: java suite against $bootstrap"
  (cd "$here/java" && mvn -B -ntp test -DKAFKA_BOOTSTRAP="$bootstrap")
  java_rc=$?
  if [[ $java_rc != 0 && -n "$work" ]]; then
    echo "run.sh: java suite failed" >&2
    log_tail "$BROKER_LOG" 40
  fi
  stop_broker
  [[ -n "$work" && $java_rc == 0 ]] && rm -rf "$work"
fi

echo "run.sh: python suite exit $py_rc, java suite exit $java_rc"
[[ $py_rc == 0 && $java_rc == 0 ]]
