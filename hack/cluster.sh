#!/usr/bin/env bash
# Fault harness: a cluster of tributary-broker processes on loopback, faults injected by signals, and a
# workload + checker: idempotent acks=all producers of two clients side by side, confluent-kafka
# (hack/faults/workload.py, from the hack/prereqs.sh venv) and Apache kafka-clients
# (hack/faults/java/FaultsProducer.java, built by hack/faults/java/build.sh against the Java client suite's
# Maven dependencies), both histories checked by workload.py's checker.
#
# Usage: hack/cluster.sh COMMAND [ARGS]
#   up [N]            start N (default 3) combined broker,controller nodes, print the bootstrap servers and
#                     the run directory, and keep them running until Ctrl-C (then they are stopped)
#   down DIR          kill -9 the brokers of a run directory an `up` left behind (it should leave none)
#   SCENARIO...       run these scenarios, each on a fresh 3-node cluster, and print one result line each
#                     (ok/FAIL, then acked, read, lost, duplicated, out of order in total and per client):
#                       control          no faults, $RECORDS records per partition and producer
#                       kill-leader      kill -9 the leader of partition 0 under load, restart it, $ROUNDS rounds
#                       pause-follower   SIGSTOP a follower of partition 0 past replica.lag.time.max.ms: the
#                                        ISR shrinks; SIGCONT: it expands back
#                       pause-leader     SIGSTOP the leader of partition 0 for 8 s (fenced, a new leader is
#                                        elected), then SIGCONT, $ROUNDS rounds
#                       kill-controller  kill -9 the active controller (DescribeCluster) under load, $ROUNDS rounds
#                       no-quorum        two of three brokers down: acks=all is refused or times out (or, Java,
#                                        gets no producer id) and consumers see nothing above the high watermark
#                       rolling          SIGTERM and restart each broker in turn under load: no client error,
#                                        and the leaders balanced again afterwards
#                       crash-all        kill -9 every node at once under load (a second, fast producer per
#                                        client), restart all, $ROUNDS rounds
#                       rapid-kill       kill -9 the leader of partition 0, restart it after 1 s, kill the next
#                                        leader at once (no wait for the ISR), 2 x $ROUNDS rounds
#                       isolate-leader   (root) nodes on 127.0.0.2-4 in a network namespace of our own; the
#                                        leader of partition 0 cut off from the other nodes (ip rule blackhole)
#                                        for 8 s while clients still reach it, $ROUNDS rounds
#   short             control, and one round each of kill-leader, pause-follower, kill-controller, rolling and
#                     (as root) isolate-leader (hack/test.sh runs this; ~3 minutes)
#   chaos             every scenario (isolate-leader only as root), ROUNDS=3 and longer workloads
#   -h, --help        this text
# Every scenario: RF 3, min.insync.replicas 2, unclean election off, broker.session.timeout.ms 3000,
# broker.heartbeat.interval.ms 500, replica.lag.time.max.ms 5000; a confluent-kafka producer (tag p1) and a
# Java one (j1) on keys of their own, each at $RATE; the faults start once both have had an acknowledgement
# (and 3 s after they started). It ends by stopping the producers, waiting for a full ISR, reading
# every partition back (lost, duplicated, out of order, inconsistent offset), stopping the cluster and
# comparing the replicas' segment files batch by batch below the high watermark.
# Env: TRIBUTARY_BROKER_BIN (default ${CARGO_TARGET_DIR:-target}/debug/tributary-broker), TRIBUTARY_PYTHON
# (default the prereqs venv), RUN_ROOT (default $TMPDIR or /tmp; a run directory per scenario is made under
# it and kept when the scenario fails, or always with KEEP=1), ROUNDS, RECORDS (per partition, control run),
# RATE (records/s over all partitions, per producer), JAVA (default java), FAULTS_JAVA_LOG (the Java client's
# slf4j level, default warn, in RUN_DIR/TAG.err), BROKER_RUST_LOG (default info,openraft=warn).
# Exits non-zero when any scenario finds an anomaly. No broker outlives the script (trap on exit).
# shellcheck disable=SC2317 # with `exit` after main (last line) it takes every function for unreachable
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib.sh
source "$repo/hack/lib.sh"

usage() { sed -n '2,/^# shellcheck disable/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

BIN="${TRIBUTARY_BROKER_BIN:-$(cargo_target_dir "$repo")/debug/tributary-broker}"
PY="${TRIBUTARY_PYTHON:-${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv/bin/python}"
WL="$repo/hack/faults/workload.py"
RUN_ROOT="${RUN_ROOT:-${TMPDIR:-/tmp}}"
ROUNDS="${ROUNDS:-2}"
# Records per partition of the control run; the fault scenarios produce until a few seconds after their last
# fault (at most a few minutes).
RECORDS="${RECORDS:-1500}"
RATE="${RATE:-150}"
TOPIC=faults
PARTITIONS=3

say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now_ms() { date +%s%3N; }
# json_get FIELD...: reads one JSON object on stdin and prints obj[F1][F2]... (ints as keys work too).
json_get() {
  "$PY" -c 'import json,sys
v=json.loads(sys.stdin.read().strip().splitlines()[-1])
for k in sys.argv[1:]:
    v=v[int(k)] if isinstance(v,list) else v[k]
print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$@"
}

# ------------------------------------------------------------------------------------------ the cluster
N=0
RUN_DIR=""
# NETNS: when set (isolate-leader), the nodes and clients run in this network namespace of our own, node i on
# 127.0.0.(i+1) of its loopback (ports 9092 Kafka, 9093 controller, 9644 HTTP), clients from 127.0.0.1.
NETNS=""
# nsx CMD...: CMD in the namespace, if any. Not for `&`: a function in the background is a subshell whose $!
# is not CMD's pid (a kill -9 would miss the broker); background starts expand "${NSX[@]}" instead.
nsx() { "${NSX[@]}" "$@"; }
NSX=()
node_ip() { if [[ -n "$NETNS" ]]; then echo "127.0.0.$(( $1 + 1 ))"; else echo 127.0.0.1; fi; }
declare -a PIDS=() KAFKA_PORT=() CTRL_PORT=() HTTP_PORT=()
BG_PIDS=()

cleanup() {
  local i pid
  if [[ -n "${SCEN:-}" && "${SCEN_DONE:-0}" == 0 && -n "$RUN_DIR" ]]; then
    say "scenario $SCEN stopped before its checks; broker logs in $RUN_DIR/node-*/broker.log"
    SCEN_DONE=1
  fi
  for pid in "${BG_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for (( i = 1; i <= N; i++ )); do
    pid="${PIDS[i]:-}"
    [[ -n "$pid" ]] || continue
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    PIDS[i]=""
  done
  if [[ -n "$NETNS" ]]; then ip netns delete "$NETNS" 2>/dev/null || true; NETNS="" NSX=(); fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

node_dir() { echo "$RUN_DIR/node-$1"; }
node_log() { echo "$RUN_DIR/node-$1/broker.log"; }
bootstrap() {
  local i out=""
  for (( i = 1; i <= N; i++ )); do out+="${out:+,}$(node_ip "$i"):${KAFKA_PORT[i]}"; done
  echo "$out"
}
# live_bootstrap: the brokers that are running and not stopped.
live_bootstrap() {
  local i out=""
  for (( i = 1; i <= N; i++ )); do
    [[ -n "${PIDS[i]:-}" && ! -e "$RUN_DIR/node-$i/paused" ]] && out+="${out:+,}$(node_ip "$i"):${KAFKA_PORT[i]}"
  done
  echo "$out"
}

# listen_ports COUNT: COUNT distinct loopback ports, free now, below the kernel's ephemeral range. A node
# restarts on the ports it had, and a port in the ephemeral range can be taken while it is down: by any
# outgoing connection, or by a client's reconnect to that very port (TCP self-connect on loopback, nothing
# listening). Seen in no-quorum: a restart failed with "binding controller listener ... Address already in
# use" (the port free_port had picked was 60243, range 32768-60999).
listen_ports() {
  "$PY" - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
chosen = []
for port in random.sample(range(10000, low), max(0, low - 10000)):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    chosen.append(port)
    if len(chosen) == int(sys.argv[1]):
        break
print(" ".join(map(str, chosen)))
sys.exit(0 if len(chosen) == int(sys.argv[1]) else 1)
PY
}

# cluster_up N: formats and starts N combined nodes in a new run directory, waits until all are ready.
cluster_up() {
  N="$1"
  RUN_DIR="$(mktemp -d "$RUN_ROOT/tributary-faults.XXXXXX")"
  local i voters="" id free ports=()
  id="$("$BIN" random-uuid)"
  if [[ -z "$NETNS" ]]; then
    free="$(listen_ports $(( 3 * N )))" || { echo "cluster.sh: no free listen ports" >&2; return 1; }
    read -r -a ports <<<"$free"
  fi
  for (( i = 1; i <= N; i++ )); do
    if [[ -n "$NETNS" ]]; then
      KAFKA_PORT[i]=9092 CTRL_PORT[i]=9093 HTTP_PORT[i]=9644
    else
      KAFKA_PORT[i]="${ports[3 * i - 3]}" CTRL_PORT[i]="${ports[3 * i - 2]}" HTTP_PORT[i]="${ports[3 * i - 1]}"
    fi
    voters+="${voters:+,}$i@$(node_ip "$i"):${CTRL_PORT[i]}"
  done
  for (( i = 1; i <= N; i++ )); do
    mkdir -p "$(node_dir "$i")"
    cat >"$(node_dir "$i")/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://$(node_ip "$i"):${KAFKA_PORT[i]},CONTROLLER://$(node_ip "$i"):${CTRL_PORT[i]}
advertised.listeners=PLAINTEXT://$(node_ip "$i"):${KAFKA_PORT[i]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$(node_dir "$i")/data
num.partitions=$PARTITIONS
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
unclean.leader.election.enable=false
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
replica.lag.time.max.ms=5000
leader.imbalance.check.interval.seconds=5
EOF
    "$BIN" format -t "$id" -c "$(node_dir "$i")/server.properties" >>"$(node_log "$i")" 2>&1 ||
      { log_tail "$(node_log "$i")"; return 1; }
  done
  for (( i = 1; i <= N; i++ )); do node_start "$i"; done
  for (( i = 1; i <= N; i++ )); do node_wait_ready "$i" 60 || return 1; done
  say "cluster up: $N nodes, bootstrap $(bootstrap), run dir $RUN_DIR"
}

node_start() {
  local i="$1" log
  log="$(node_log "$i")"
  printf '==== start at %s\n' "$(date -u +%H:%M:%S.%3N)" >>"$log"
  RUST_LOG="${BROKER_RUST_LOG:-info,openraft=warn}" NO_COLOR=1 \
    "${NSX[@]}" "$BIN" --config "$(node_dir "$i")/server.properties" --http-listen "$(node_ip "$i"):${HTTP_PORT[i]}" \
    >>"$log" 2>&1 </dev/null &
  PIDS[i]=$!
  echo "${PIDS[i]}" >"$(node_dir "$i")/pid"
  rm -f "$(node_dir "$i")/paused"
}

node_alive() { [[ -n "${PIDS[$1]:-}" ]] && kill -0 "${PIDS[$1]}" 2>/dev/null; }
node_ready() { nsx curl -fsS -o /dev/null --max-time 1 "http://$(node_ip "$1"):${HTTP_PORT[$1]}/readyz"; }

node_wait_ready() { # I [SECS]
  local i="$1" t0
  t0="$(now_ms)"
  _alive_i="$i"
  if ! eventually --timeout "${2:-30}" --interval 0.1 --while _alive_check "node $i /readyz" node_ready "$i"; then
    log_tail "$(node_log "$i")" 30
    return 1
  fi
  say "node $i ready after $(( $(now_ms) - t0 )) ms"
}
_alive_check() { node_alive "$_alive_i"; }

node_kill() {
  local i="$1"
  say "kill -9 node $i (pid ${PIDS[i]})"
  kill -KILL "${PIDS[i]}" 2>/dev/null || true
  wait "${PIDS[i]}" 2>/dev/null || true
  PIDS[i]=""
}

node_term() { # I: SIGTERM (controlled shutdown), bounded; returns its exit status
  local i="$1" rc=0 t0
  t0="$(now_ms)"
  say "SIGTERM node $i (pid ${PIDS[i]})"
  stop_process "${PIDS[i]}" 30 "node $i" || rc=$?
  PIDS[i]=""
  say "node $i exited with status $rc after $(( $(now_ms) - t0 )) ms"
  return "$rc"
}

node_pause() { say "SIGSTOP node $1"; kill -STOP "${PIDS[$1]}"; touch "$(node_dir "$1")/paused"; }
node_resume() { say "SIGCONT node $1"; kill -CONT "${PIDS[$1]}"; rm -f "$(node_dir "$1")/paused"; }

cluster_down() {
  local i
  for (( i = 1; i <= N; i++ )); do
    [[ -n "${PIDS[i]:-}" ]] || continue
    kill -CONT "${PIDS[i]}" 2>/dev/null || true
    kill -KILL "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
    PIDS[i]=""
  done
}

wl() { nsx "$PY" "$WL" "$@"; }
# metadata_field P FIELD: leader (an id) or isr/replicas (space-separated ids) of partition P.
metadata_field() {
  local out
  out="$(wl metadata --bootstrap "$(live_bootstrap)" --topic "$TOPIC")" || return 1
  json_get "$1" "$2" <<<"$out" | tr -d '[],'
}
leader_of() {
  local l
  l="$(metadata_field "$1" leader)" || return 1
  [[ "$l" =~ ^[0-9]+$ && "$l" -ge 1 ]] || return 1
  echo "$l"
}
_leader_other_than() { local l; l="$(leader_of "$1")" && [[ "$l" != "$2" ]] && echo "$l"; }
controller_id() { wl controller --bootstrap "$(live_bootstrap)" 2>/dev/null | json_get controller; }

# ------------------------------------------------------------------------------------------ producers
# Every scenario runs, side by side, a confluent-kafka producer (workload.py produce, tags p1, p2) and an
# Apache kafka-clients one (hack/faults/java/FaultsProducer.java, tags j1, j2): both idempotent, acks=all,
# the tag as key, the same delivery-report lines in $RUN_DIR/TAG.acks, read back by the same checker.
JAVA="${JAVA:-java}"
# C1 only and the serial collector: on two shared cores the JVM's JIT and GC threads would take CPU from the
# brokers under test, and a producer of a few hundred records/s needs neither C2 nor a parallel GC.
JAVA_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m -Djava.net.preferIPv4Stack=true
  "-Dorg.slf4j.simpleLogger.defaultLogLevel=${FAULTS_JAVA_LOG:-warn}" -Dorg.slf4j.simpleLogger.showDateTime=true)
PRODUCERS=()
declare -A PRODUCER_PID=()

# producer_argv py|java: sets PRODUCER_ARGV to the command of that kind's producer (workload.py's arguments).
producer_argv() {
  case "$1" in
    py) PRODUCER_ARGV=("$PY" "$WL" produce) ;;
    java) PRODUCER_ARGV=("$JAVA" "${JAVA_OPTS[@]}" -cp "$FAULTS_JAVA_CP" dev.tributary.faults.FaultsProducer) ;;
    *) echo "producer_argv: unknown kind $1" >&2; return 2 ;;
  esac
}

# producer_start KIND TAG ARGS...: a producer (KIND py or java) in the background; its report lines go to
# $RUN_DIR/TAG.acks, its summary to $RUN_DIR/TAG.summary, it stops producing once $RUN_DIR/TAG.stop exists.
producer_start() {
  local kind="$1" tag="$2"
  shift 2
  producer_argv "$kind"
  "${NSX[@]}" "${PRODUCER_ARGV[@]}" --bootstrap "$(bootstrap)" --topic "$TOPIC" --partitions "$PARTITIONS" --tag "$tag" \
    --out "$RUN_DIR/$tag.acks" --stop-file "$RUN_DIR/$tag.stop" "$@" >"$RUN_DIR/$tag.summary" 2>"$RUN_DIR/$tag.err" &
  BG_PIDS+=($!)
  PRODUCER_PID[$tag]=$!
  PRODUCERS+=("$tag")
}

# producers_warm: waits (30 s at most) until every producer has had a record acknowledged, and 3 s in all,
# so that the first fault hits both clients while they produce (the JVM starts slower than Python).
producers_warm() {
  local t0 tag
  t0="$(now_ms)"
  eventually --timeout 30 --interval 0.2 "a first acknowledgement of every producer" _all_producers_acked ||
    anomaly "a producer had no record acknowledged 30 s after it started"
  for tag in "${PRODUCERS[@]}"; do
    say "producer $tag: first ack $(head -n 1 "$RUN_DIR/$tag.acks" | sed -n 's/.*"t": \([0-9.]*\).*/\1/p') s after its start"
  done
  while (( $(now_ms) - t0 < 3000 )); do sleep 0.2; done
}
_all_producers_acked() { local tag; for tag in "${PRODUCERS[@]}"; do grep -qs '"off"' "$RUN_DIR/$tag.acks" || return 1; done; }

# producers_stop: every producer stops producing 3 s from now.
producers_stop() { local tag; sleep 3; for tag in "${PRODUCERS[@]}"; do touch "$RUN_DIR/$tag.stop"; done; }

# producers_wait: waits for every producer; an anomaly for each that failed.
producers_wait() {
  local tag rc
  for tag in "${PRODUCERS[@]}"; do
    rc=0
    wait "${PRODUCER_PID[$tag]}" || rc=$?
    say "producer $tag: $(cat "$RUN_DIR/$tag.summary")"
    (( rc == 0 )) || { anomaly "producer $tag exited $rc"; tail -n 5 "$RUN_DIR/$tag.err" >&2; }
  done
  PRODUCERS=()
}

# ------------------------------------------------------------------------------------------ scenarios
SCEN="" SCEN_T0=0 SCEN_FAIL=() SCEN_DONE=0
# Extra arguments of the final check (a fault sets --seen FILE: records a consumer saw during the fault).
CHECK_ARGS=()
# A round-based fault sets it to end its rounds early (it has reported the anomaly why).
ROUNDS_OVER=0

anomaly() { SCEN_FAIL+=("$*"); say "ANOMALY: $*"; }

# scenario NAME [--bounded RECORDS] [--duration SECS] [--no-errors] [--fast] -- FAULT [ARGS...]
# The skeleton of every scenario: a fresh 3-node cluster and topic, the producers (one per client kind; with
# --fast a second, fast one per kind at 4 x RATE), FAULT ARGS... (a command), then the producers stop and
# finish checks. Load producers run until stopped (at most --duration, default 240 s) and FAULT starts
# once they produce; with --bounded the producers write RECORDS per partition and are done before FAULT.
# --no-errors: a failed delivery report is an anomaly.
scenario() {
  local name="$1" bounded="" duration=240 fast=0 load=()
  shift
  while [[ "$1" != -- ]]; do
    case "$1" in
      --bounded) bounded="$2"; shift 2 ;;
      --duration) duration="$2"; shift 2 ;;
      --no-errors) load+=(--no-errors); shift ;;
      --fast) fast=1; shift ;;
      *) echo "scenario: unknown option $1" >&2; return 2 ;;
    esac
  done
  shift
  SCEN="$name" SCEN_T0="$(now_ms)" SCEN_FAIL=() CHECK_ARGS=() ROUNDS_OVER=0
  say "===== scenario $SCEN"
  cluster_up 3
  wl create --bootstrap "$(bootstrap)" --topic "$TOPIC" --partitions "$PARTITIONS" --rf 3 --min-isr 2 >/dev/null
  if [[ -n "$bounded" ]]; then
    load+=(--records "$bounded" --rate "$RATE" --duration 60)
  else
    load+=(--records 100000 --rate "$RATE" --duration "$duration")
  fi
  producer_start py p1 "${load[@]}"
  producer_start java j1 "${load[@]}"
  if (( fast )); then
    # Fast ones too, so that batches of both clients are in flight on every node when a fault hits.
    producer_start py p2 "${load[@]}" --rate $(( RATE * 4 ))
    producer_start java j2 "${load[@]}" --rate $(( RATE * 4 ))
  fi
  if [[ -n "$bounded" ]]; then producers_wait; else producers_warm; fi
  "$@"
  if [[ -z "$bounded" ]]; then
    producers_stop
    producers_wait
  fi
  finish "${CHECK_ARGS[@]}"
}

# rounds N FAULT [ARGS...]: FAULT ARGS... ROUND for ROUND 1..N, or until FAULT sets ROUNDS_OVER.
rounds() {
  local n="$1" round
  shift
  for (( round = 1; round <= n && ! ROUNDS_OVER; round++ )); do "$@" "$round"; done
}

# finish [CHECK ARGS]: full ISR, read back, stop, compare replicas, result line.
finish() {
  local out rc=0
  out="$(wl await-isr --bootstrap "$(bootstrap)" --topic "$TOPIC" --size 3 --timeout 30)" ||
    anomaly "ISR not back to 3 replicas within 30 s: $(json_get partitions <<<"$out")"
  rc=0
  out="$(wl check --bootstrap "$(bootstrap)" --topic "$TOPIC" --partitions "$PARTITIONS" \
    --acks "$RUN_DIR"/*.acks --hw-out "$RUN_DIR/hw.json" "$@")" || rc=$?
  say "check: $out"
  printf '%s\n' "$out" >"$RUN_DIR/check.json"
  (( rc == 0 )) || anomaly "checker found anomalies"
  cluster_down
  if [[ -s "$RUN_DIR/hw.json" ]]; then
    rc=0
    out="$(wl replicas --topic "$TOPIC" --run-dir "$RUN_DIR" --hw "$RUN_DIR/hw.json")" || rc=$?
    say "replicas: $out"
    (( rc == 0 )) || anomaly "replicas differ below the high watermark"
  else
    anomaly "no high watermarks to compare replicas with"
  fi
  local secs=$(( ($(now_ms) - SCEN_T0) / 1000 )) line counts
  # The checker's counts in total and per client kind: "all: A acked, R read, L lost, ... | java: ...".
  counts="$(json_get tally <"$RUN_DIR/check.json" 2>/dev/null || echo 'no counts (the check failed)')"
  if (( ${#SCEN_FAIL[@]} )); then
    line="FAIL $SCEN (${secs}s): $(IFS=';'; echo "${SCEN_FAIL[*]}"); $counts; run dir $RUN_DIR"
  else
    line="ok   $SCEN (${secs}s): $counts"
    # Kept as well when a producer had failed deliveries (allowed, but worth a look).
    if [[ "${KEEP:-0}" != 1 ]] && ! grep -qs '"failed": [1-9]' "$RUN_DIR"/*.summary; then rm -rf "$RUN_DIR"; fi
  fi
  SCEN_DONE=1
  echo "$line" >>"${RESULTS_FILE:-/dev/null}"
  say "$line"
}

# --- what the faults share
# leader_before ROUND: the leader of partition 0 (20 s bound); none: an anomaly, the rounds end, prints nothing.
# Called as `leader="$(leader_before R)"; [[ -n $leader ]] || { rounds_over R; return 0; }` (the anomaly
# has to be raised in this shell, not in the command substitution).
leader_before() { eventually --print --timeout 20 "a leader of partition 0" leader_of 0 || true; }
rounds_over() { anomaly "no leader of partition 0 before round $1"; ROUNDS_OVER=1; }

# await_new_leader ROUND OLD HOW T0: waits (20 s) for a leader of partition 0 other than node OLD, which was
# HOW (killed, paused, isolated) at T0 (ms).
await_new_leader() {
  local round="$1" old="$2" how="$3" t0="$4" new
  new="$(eventually --print --timeout 20 "a new leader of partition 0" _leader_other_than 0 "$old")" ||
    anomaly "round $round: no leader of partition 0 other than $how node $old within 20 s"
  say "round $round: partition 0 leader $old ($how) -> ${new:-none} after $(( $(now_ms) - t0 )) ms"
}

# restart WHEN I: starts node I again and waits (60 s) until it is ready.
restart() { node_start "$2"; node_wait_ready "$2" 60 || anomaly "$1: node $2 not ready after restart"; }

# full_isr WHEN WHAT: waits (40 s) until every partition's ISR holds all 3 replicas again.
full_isr() {
  local t0
  t0="$(now_ms)"
  if wl await-isr --bootstrap "$(bootstrap)" --topic "$TOPIC" --size 3 --timeout 40 >/dev/null; then
    say "$1: ISR full $(( $(now_ms) - t0 )) ms $2"
  else
    anomaly "$1: ISR not full 40 s $2"
  fi
}

# hold T0 MS: sleeps until MS milliseconds after T0 (ms).
hold() { while (( $(now_ms) - $1 < $2 )); do sleep 0.2; done; }

# --- the faults
fault_kill_leader() {
  local round="$1" leader t0
  leader="$(leader_before "$round")"
  [[ -n "$leader" ]] || { rounds_over "$round"; return 0; }
  t0="$(now_ms)"
  node_kill "$leader"
  # The killed node stays leader until it is fenced (broker.session.timeout.ms), as in Kafka.
  await_new_leader "$round" "$leader" killed "$t0"
  sleep 3
  restart "round $round" "$leader"
  full_isr "round $round" "after the restart"
  sleep 2
}

fault_pause_follower() {
  local leader follower ctrl r t0 out
  leader="$(eventually --print --timeout 20 "a leader of partition 0" leader_of 0)"
  ctrl="$(controller_id || echo 0)"
  for r in $(metadata_field 0 replicas); do
    [[ "$r" != "$leader" ]] || continue
    follower="$r"
    [[ "$r" == "$ctrl" ]] || break # prefer a follower that is not the active controller
  done
  say "partition 0: leader $leader, pausing follower $follower (controller $ctrl)"
  t0="$(now_ms)"
  node_pause "$follower"
  out="$(wl await-isr --bootstrap "$(live_bootstrap)" --topic "$TOPIC" --partition 0 --without "$follower" --timeout 20)" ||
    anomaly "ISR of partition 0 still holds paused node $follower after 20 s"
  say "ISR without $follower after $(( $(now_ms) - t0 )) ms: $(json_get partitions 0 isr <<<"$out")"
  # Keep it stopped past replica.lag.time.max.ms (5 s) in any case.
  hold "$t0" 8000
  node_resume "$follower"
  full_isr "node $follower" "after SIGCONT"
}

fault_pause_leader() {
  local round="$1" leader t0
  leader="$(leader_before "$round")"
  [[ -n "$leader" ]] || { rounds_over "$round"; return 0; }
  t0="$(now_ms)"
  node_pause "$leader"
  await_new_leader "$round" "$leader" paused "$t0"
  hold "$t0" 8000
  node_resume "$leader"
  full_isr "round $round" "after SIGCONT"
  sleep 2
}

fault_kill_controller() {
  local round="$1" ctrl new t0 out
  ctrl="$(eventually --print --timeout 20 "a controller" controller_id)" ||
    { anomaly "no controller before round $round"; ROUNDS_OVER=1; return 0; }
  out="$(wl controller --bootstrap "$(live_bootstrap)" 2>/dev/null)"
  say "round $round: controller (Metadata, DescribeCluster): $out"
  [[ "$(json_get describe_cluster <<<"$out")" == "$ctrl" ]] || anomaly "DescribeCluster names another controller: $out"
  t0="$(now_ms)"
  node_kill "$ctrl"
  new="$(eventually --print --timeout 30 "a new controller" _other_controller "$ctrl")" ||
    anomaly "round $round: no controller other than $ctrl within 30 s"
  say "round $round: controller $ctrl -> ${new:-none} after $(( $(now_ms) - t0 )) ms"
  sleep 2
  restart "round $round" "$ctrl"
  full_isr "round $round" "after the restart"
  sleep 2
}
_other_controller() { local c; c="$(controller_id)" && [[ "$c" =~ ^[0-9]+$ && "$c" != "$1" && "$c" -ge 1 ]] && echo "$c"; }

# After the bounded producers: two of three nodes down; produce to the survivor must not be acknowledged and
# consumers of it must see nothing new.
fault_no_quorum() {
  local leader r down=() out hw_before hw_after t0 tag rc
  leader="$(leader_of 0)"
  for r in 1 2 3; do [[ "$r" == "$leader" ]] || down+=("$r"); done
  say "partition 0 leader $leader; killing ${down[*]}"
  node_kill "${down[0]}"
  node_kill "${down[1]}"
  sleep 1
  # Reads get 60 s: a consumer's FindCoordinator waits for the offsets topic to be created through the
  # controller (15 s without one), and the broker answers a connection's requests in order.
  t0="$(now_ms)"
  out="$(wl read --bootstrap "$(node_ip "$leader"):${KAFKA_PORT[leader]}" --topic "$TOPIC" --partition 0 --timeout 60 --out "$RUN_DIR/seen-before.jsonl")" ||
    anomaly "reading partition 0 from the surviving leader failed: $out"
  hw_before="$(json_get end_offsets 0 <<<"$out")"
  say "with one broker: partition 0 end offset $hw_before, read in $(( $(now_ms) - t0 )) ms"
  # One outage producer per client, at once; their reports and summaries are kept apart (TAG.reports and
  # TAG.outcome: not read as acks by the check, and their failures, which are expected, do not keep the run
  # directory as a load producer's would): none may be acknowledged.
  local -A pid=() flush=([outage]=30 [joutage]=20)
  for tag in outage joutage; do
    if [[ "$tag" == outage ]]; then producer_argv py; else producer_argv java; fi
    "${NSX[@]}" "${PRODUCER_ARGV[@]}" --bootstrap "$(node_ip "$leader"):${KAFKA_PORT[leader]}" --topic "$TOPIC" --partition 0 \
      --tag "$tag" --records 30 --rate 10 --duration 10 --delivery-timeout-ms 12000 --flush-timeout "${flush[$tag]}" \
      --out "$RUN_DIR/$tag.reports" >"$RUN_DIR/$tag.outcome" 2>"$RUN_DIR/$tag.err" &
    BG_PIDS+=($!)
    pid[$tag]=$!
  done
  for tag in outage joutage; do
    rc=0
    wait "${pid[$tag]}" || rc=$?
    out="$(cat "$RUN_DIR/$tag.outcome")"
    say "outage producer $tag (exit $rc): $out"
    [[ "$(json_get acked <<<"$out")" == 0 ]] || anomaly "$tag: acks=all produce acknowledged with one broker of three"
    # The Java client sends no record before it has a producer id, and while its InitProducerId is
    # retried (the broker cannot allocate one without a controller: FINDINGS.md) its batches do not expire:
    # they stay pending, none left the client ("sent": 0). Fine too: nothing could be acknowledged.
    if [[ "$tag" == joutage && "$(json_get sent <<<"$out")" == 0 && "$(json_get fatal <<<"$out")" == "[]" ]]; then
      say "$tag: no record left the client (no producer id without a controller)"
    else
      json_get errors <<<"$out" | grep -q 'NOT_ENOUGH_REPLICAS\|MSG_TIMED_OUT\|REQUEST_TIMED_OUT' ||
        anomaly "$tag: outage producer errors are not NOT_ENOUGH_REPLICAS/timeouts: $(json_get errors <<<"$out")"
    fi
  done
  out="$(wl read --bootstrap "$(node_ip "$leader"):${KAFKA_PORT[leader]}" --topic "$TOPIC" --partition 0 --timeout 60 --out "$RUN_DIR/seen-during.jsonl")" ||
    anomaly "second read from the surviving leader failed: $out"
  hw_after="$(json_get end_offsets 0 <<<"$out")"
  say "after the refused produce: partition 0 end offset $hw_after (was $hw_before)"
  [[ "$hw_after" == "$hw_before" ]] || anomaly "partition 0 end offset moved from $hw_before to $hw_after with one broker"
  ! grep -qE '"id": "j?outage-' "$RUN_DIR/seen-during.jsonl" || anomaly "a consumer saw an unacknowledged outage record"
  node_start "${down[0]}"
  node_start "${down[1]}"
  node_wait_ready "${down[0]}" 60 || anomaly "node ${down[0]} not ready after restart"
  node_wait_ready "${down[1]}" 60 || anomaly "node ${down[1]} not ready after restart"
  # The refused records may or may not be there in the end (the leader appended them); acked ones must be.
  CHECK_ARGS=(--seen "$RUN_DIR/seen-before.jsonl")
}

fault_rolling() {
  local i rc
  for (( i = 1; i <= N; i++ )); do
    rc=0
    node_term "$i" || rc=$?
    (( rc == 0 )) || anomaly "node $i exited with status $rc on SIGTERM"
    sleep 2
    restart "rolling" "$i"
    full_isr "node $i" "after its restart"
  done
  # Preferred leaders come back (auto.leader.rebalance.enable, checked every 5 s here): the 3 partitions
  # are led by 3 different nodes again.
  if eventually --timeout 30 "leaders balanced after the rolling restart" leaders_balanced; then
    say "leaders of partitions 0..$(( PARTITIONS - 1 )) balanced again: $(leaders_list)"
  else
    anomaly "leaders not balanced 30 s after the rolling restart: $(leaders_list)"
  fi
}

leaders_list() {
  local p out=""
  for (( p = 0; p < PARTITIONS; p++ )); do out+="$(leader_of "$p" || echo none) "; done
  echo "$out"
}
leaders_balanced() {
  local leaders
  leaders="$(leaders_list)"
  [[ "$(tr ' ' '\n' <<<"$leaders" | grep -E '^[0-9]+$' | sort -u | wc -l)" -eq "$PARTITIONS" ]]
}

fault_crash_all() {
  local round="$1" i
  say "round $round: kill -9 every node"
  for (( i = 1; i <= N; i++ )); do kill -KILL "${PIDS[i]}" 2>/dev/null || true; done
  for (( i = 1; i <= N; i++ )); do wait "${PIDS[i]}" 2>/dev/null || true; PIDS[i]=""; done
  sleep 2
  for (( i = 1; i <= N; i++ )); do node_start "$i"; done
  for (( i = 1; i <= N; i++ )); do node_wait_ready "$i" 60 || anomaly "round $round: node $i not ready after restart"; done
  full_isr "round $round" "after the restart"
  sleep 3
}

# Kill the leader of partition 0, restart it after 1 s, and kill the next leader as soon as it is elected,
# without waiting for the restarted node to rejoin the ISR.
fault_rapid_kill() {
  local round="$1" leader t0
  leader="$(leader_before "$round")"
  [[ -n "$leader" ]] || { rounds_over "$round"; return 0; }
  t0="$(now_ms)"
  node_kill "$leader"
  await_new_leader "$round" "$leader" killed "$t0"
  sleep 1
  restart "round $round" "$leader"
}

fault_isolate_leader() {
  local round="$1" leader t0 out
  leader="$(leader_before "$round")"
  [[ -n "$leader" ]] || { rounds_over "$round"; return 0; }
  t0="$(now_ms)"
  isolate "$leader" on
  touch "$(node_dir "$leader")/paused" # keep it out of live_bootstrap: its metadata is stale now
  await_new_leader "$round" "$leader" isolated "$t0"
  hold "$t0" 8000
  # What a consumer that still reaches the old leader sees now must survive the heal.
  out="$(wl read --bootstrap "$(node_ip "$leader"):${KAFKA_PORT[leader]}" --topic "$TOPIC" --partition 0 \
    --timeout 20 --out "$RUN_DIR/seen-isolated-$round.jsonl")" ||
    say "round $round: reading partition 0 from the isolated node failed (allowed): $out"
  say "round $round: the isolated node serves partition 0 up to $(json_get end_offsets 0 <<<"$out" 2>/dev/null || echo '?')"
  isolate "$leader" off
  rm -f "$(node_dir "$leader")/paused"
  full_isr "round $round" "after the heal"
  sleep 2
  cat "$RUN_DIR"/seen-isolated-*.jsonl >"$RUN_DIR/seen-isolated.jsonl" 2>/dev/null || true
  CHECK_ARGS=(--seen "$RUN_DIR/seen-isolated.jsonl")
}

# netns_up: a network namespace of our own whose loopback holds 127.0.0.0/8, with the `local` routing rule
# moved from pref 0 to 100 so that pref-10 blackhole rules between two 127.0.0.x addresses apply
# (CLUSTER.md section 4). Only loopback addresses; the host's lo is untouched. Needs root.
netns_up() {
  NETNS="tribtest-$$"
  NSX=(ip netns exec "$NETNS")
  ip netns add "$NETNS"
  ip netns exec "$NETNS" ip link set lo up
  # glibc's getaddrinfo(AF_INET, AI_ADDRCONFIG), which librdkafka calls with broker.address.family=v4,
  # finds no IPv4 address when 127.0.0.1 is the only one, and resolves nothing: name another loopback
  # address of lo explicitly (it is local either way).
  ip netns exec "$NETNS" ip addr add 127.0.0.2/32 dev lo
  ip netns exec "$NETNS" ip rule add pref 100 lookup local
  ip netns exec "$NETNS" ip rule del pref 0 lookup local
}

# isolate I on|off: blackholes traffic between node I's address and every other node's (both ways); clients
# (127.0.0.1) still reach every node.
isolate() {
  local i="$1" op="$2" j a b
  [[ "$op" == on ]] && op=add || op=del
  for (( j = 1; j <= N; j++ )); do
    (( j != i )) || continue
    a="$(node_ip "$i")" b="$(node_ip "$j")"
    ip netns exec "$NETNS" ip rule "$op" pref 10 from "$a" to "$b" blackhole
    ip netns exec "$NETNS" ip rule "$op" pref 10 from "$b" to "$a" blackhole
  done
  say "node $i isolated from the other nodes: $2"
}

# --- the scenarios: each states its load and its fault
scenario_control() { scenario control --bounded "$RECORDS" --no-errors -- true; }
scenario_kill_leader() { scenario kill-leader -- rounds "$ROUNDS" fault_kill_leader; }
scenario_pause_follower() { scenario pause-follower --duration 120 -- fault_pause_follower; }
scenario_pause_leader() { scenario pause-leader -- rounds "$ROUNDS" fault_pause_leader; }
scenario_kill_controller() { scenario kill-controller -- rounds "$ROUNDS" fault_kill_controller; }
scenario_no_quorum() { scenario no-quorum --bounded 200 --no-errors -- fault_no_quorum; }
scenario_rolling() { scenario rolling --duration 180 --no-errors -- fault_rolling; }
scenario_crash_all() { scenario crash-all --fast -- rounds "$ROUNDS" fault_crash_all; }
scenario_rapid_kill() { scenario rapid-kill -- rapid_kills $(( ROUNDS * 2 )); }
rapid_kills() { rounds "$1" fault_rapid_kill; full_isr rapid-kill "after the last restart"; }
scenario_isolate_leader() {
  [[ "$(id -u)" == 0 ]] || { echo "isolate-leader needs root (ip netns)" >&2; return 2; }
  netns_up
  scenario isolate-leader -- rounds "$ROUNDS" fault_isolate_leader
}

# run_scenarios SCENARIO...: each in a child `cluster.sh _one SCENARIO` (set -e holds there: an unexpected
# failure ends that scenario, its trap stops its brokers), then one line per scenario.
run_scenarios() {
  local s t0 rc results
  t0="$(date +%s)"
  [[ -x "$BIN" ]] || { echo "cluster.sh: no broker binary $BIN (cargo build -p tributary-broker)" >&2; exit 2; }
  [[ -x "$PY" ]] || { echo "cluster.sh: no python $PY (hack/prereqs.sh)" >&2; exit 2; }
  command -v "$JAVA" >/dev/null || { echo "cluster.sh: no $JAVA (a JDK 17+, hack/prereqs.sh)" >&2; exit 2; }
  for s in "$@"; do
    declare -F "scenario_${s//-/_}" >/dev/null || { echo "cluster.sh: unknown scenario $s" >&2; usage >&2; exit 2; }
  done
  # Built once per source (cached): a no-op on a warm machine, Maven and javac once on a fresh one.
  FAULTS_JAVA_CP="$(bash "$repo/hack/faults/java/build.sh")" ||
    { echo "cluster.sh: building the Java producer failed (hack/faults/java/build.sh)" >&2; exit 2; }
  export FAULTS_JAVA_CP
  results="$(mktemp "$RUN_ROOT/tributary-faults-results.XXXXXX")"
  for s in "$@"; do
    rc=0
    RESULTS_FILE="$results" ROUNDS="$ROUNDS" RECORDS="$RECORDS" RATE="$RATE" bash "$0" _one "$s" || rc=$?
    (( rc == 0 )) || grep -q " $s (" "$results" || echo "FAIL $s: stopped early (exit $rc); see above" >>"$results"
  done
  say "===== results ($(( $(date +%s) - t0 ))s)"
  cat "$results"
  rc=0
  grep -q '^FAIL' "$results" && rc=1
  rm -f "$results"
  return "$rc"
}

# Everything is in functions and the last line runs main and exits, so bash never reads on into a file
# edited under a running script (it reads scripts as it goes).
main() {
  cmd="${1:-}"
  [[ -n "$cmd" ]] || { usage >&2; exit 2; }
  shift
  case "$cmd" in
    -h|--help) usage ;;
    up)
      # UP_NETNS=1 (root): in a network namespace of our own, node i on 127.0.0.(i+1), as isolate-leader runs.
      [[ "${UP_NETNS:-0}" != 1 ]] || netns_up
      cluster_up "${1:-3}"
      echo "bootstrap: $(bootstrap)"
      echo "run dir:   $RUN_DIR (Ctrl-C stops the brokers)${NETNS:+; namespace $NETNS: ip netns exec $NETNS ...}"
      while :; do sleep 3600 & wait $!; done
      ;;
    down)
      dir="${1:?cluster.sh down DIR}"
      for f in "$dir"/node-*/pid; do
        [[ -e "$f" ]] && { kill -CONT "$(cat "$f")" 2>/dev/null || true; kill -KILL "$(cat "$f")" 2>/dev/null || true; }
      done
      ;;
    _one)
      "scenario_${1//-/_}"
      [[ "$SCEN_DONE" == 1 ]] || { say "scenario $1 did not finish; run dir $RUN_DIR"; exit 1; }
      grep -q "^FAIL $1 " "${RESULTS_FILE:-/dev/null}" && exit 1
      exit 0
      ;;
    short)
      local short=(control kill-leader pause-follower kill-controller rolling)
      [[ "$(id -u)" == 0 ]] && short+=(isolate-leader)
      ROUNDS=1 RECORDS="${RECORDS_SHORT:-600}" run_scenarios "${short[@]}"
      ;;
    chaos)
    local all=(control kill-leader pause-follower pause-leader kill-controller no-quorum rolling crash-all rapid-kill)
    [[ "$(id -u)" == 0 ]] && all+=(isolate-leader)
    ROUNDS="${ROUNDS_CHAOS:-3}" RECORDS="${RECORDS_CHAOS:-3000}" run_scenarios "${all[@]}"
    ;;
    *) run_scenarios "$cmd" "$@" ;;
  esac
}

main "$@"; exit
