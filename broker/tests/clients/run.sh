#!/usr/bin/env bash
# Runs the client compatibility suites against the tributary-broker binary:
#   1. hack/prereqs.sh (kcat, Python venv, Maven deps);
#   2. the pytest suite (arguments are passed to pytest); it starts its own brokers;
#   3. one broker for the Java suite, then `mvn test -DKAFKA_BOOTSTRAP=...`, then stops it.
# Env: TRIBUTARY_BROKER_BIN (default <repo>/target/debug/tributary-broker);
#      KAFKA_BOOTSTRAP=host:port runs both suites against an external broker instead (the
#      restart tests skip); TRIBUTARY_SKIP_JAVA=1 / TRIBUTARY_SKIP_PYTHON=1 skip a suite.
# Exits non-zero when any suite fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bash "$repo/hack/prereqs.sh" || { echo "run.sh: prereqs failed" >&2; exit 2; }
venv="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv"
export TRIBUTARY_BROKER_BIN="${TRIBUTARY_BROKER_BIN:-$repo/target/debug/tributary-broker}"
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
  work=""; pid=""
  stop_broker() {
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: broker $pid ignored SIGTERM for 30s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    pid=""
  }
  trap stop_broker EXIT
  bootstrap="$external"
  if [[ -z "$bootstrap" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/tributary-java.XXXXXX")"
    read -r port http_port < <("$venv/bin/python" -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
    printf 'auto.create.topics.enable=true\nnum.partitions=1\n' >"$work/broker.properties"
    "$TRIBUTARY_BROKER_BIN" --listen "127.0.0.1:$port" --advertised-listener "127.0.0.1:$port" \
      --data-dir "$work/data" --http-listen "127.0.0.1:$http_port" --node-id 1 \
      --config "$work/broker.properties" >"$work/broker.log" 2>&1 &
    pid=$!
    ready=0
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      if curl -fs -o /dev/null -m 1 "http://127.0.0.1:$http_port/readyz"; then ready=1; break; fi
      sleep 0.1
    done
    if [[ $ready != 1 ]]; then
      echo "run.sh: broker for the Java suite not ready within 30s; log tail:" >&2
      tail -n 40 "$work/broker.log" >&2
      exit 1
    fi
    bootstrap="127.0.0.1:$port"
  fi
  echo "run.sh: java suite against $bootstrap"
  (cd "$here/java" && mvn -B -ntp test -DKAFKA_BOOTSTRAP="$bootstrap")
  java_rc=$?
  if [[ $java_rc != 0 && -n "$work" ]]; then
    echo "run.sh: java suite failed; broker log tail ($work/broker.log):" >&2
    tail -n 40 "$work/broker.log" >&2
  fi
  stop_broker
  [[ -n "$work" && $java_rc == 0 ]] && rm -rf "$work"
fi

echo "run.sh: python suite exit $py_rc, java suite exit $java_rc"
[[ $py_rc == 0 && $java_rc == 0 ]]
