#!/usr/bin/env bash
# Tributary vs Apache Kafka as 3-broker clusters: the same load with the same client, one cluster after the other,
# never two at once (2-core machine).
#
# This is a benchmark, not a test: it always exits 0 once a report was written (exit 1 only for setup errors),
# and a cluster that fails a row shows "n/a" there, with the reason in the notes.
#
# Clusters (in this order, each formatted fresh, all nodes on 127.0.0.1 with their own ports):
#   tributary    3 `tributary-broker` nodes, process.roles=broker,controller, node.id 1..3, one
#                controller.quorum.voters list, formatted with `tributary-broker format -t ID -c FILE`;
#                ready = GET /readyz 200 on every node (registered and unfenced). $TRIBUTARY_BIN, or
#                `cargo build --release -p tributary-broker` (BENCH_NO_BUILD=1 to skip building).
#                Tributary fsyncs every ISR member before acks=all is answered (its default).
#   kafka        hack/kafka-ref.sh cluster-start (Apache Kafka $KAFKA_VERSION, 3 KRaft combined nodes,
#                -Xms512m -Xmx512m each); Kafka's default flush policy (no fsync).
#   kafka-flush  the same with log.flush.interval.messages=1 (every append fsynced: durable vs durable).
# Both get the same properties (default.replication.factor=3, min.insync.replicas=2, internal topics RF 3,
# group.initial.rebalance.delay.ms=0) and Kafka's defaults for broker.session.timeout.ms (9000),
# broker.heartbeat.interval.ms (2000) and replica.lag.time.max.ms (30000); Tributary ignores keys it does not know.
#
# Rows (topics RF 3, $BENCH_PARTITIONS partitions; client: kafka-tools ProducerPerformance and
# hack/bench/AssignConsumerPerf.java from hack/bench-lib.sh, default client config + acks):
#   produce acks=all, 100 B and 1 KiB, unthrottled (records/s, MB/s)
#   produce latency at a fixed rate, 1 KiB, acks=all (p50/p99/p99.9/max)
#   consume (assign, no group) the topics of the produce rows
#   failover: hack/bench/failover_probe.py produces continuously (acks=all, idempotent, confluent-kafka) to the
#     3 partitions of bench-failover; kill -9 of the node that leads partition 0 (or of the active controller,
#     with the probe partition one it does not lead) → the first acknowledgement of a record the probe sent to
#     that partition after the kill (acks of records sent before it, already replicated, do not count). Then the node is restarted and every partition is back to ISR 3 before the
#     next kill. Median and max over the kills. Active controller: Tributary's DescribeCluster controller id;
#     Kafka's DescribeCluster names a random broker (KIP-590), so for Kafka the leader of the highest epoch in
#     the nodes' __cluster_metadata-0/quorum-state files.
#   move: one partition (RF 2) filled with $BENCH_MOVE_MB MiB of 1 KiB records (acks=1), then Kafka's own
#     kafka-reassign-partitions.sh --execute replaces one of its replicas by the third broker, while the
#     failover probe writes to that partition (acks=all, idempotent) → time from --execute until Metadata lists
#     exactly the target replicas, and the longest gap between two acknowledgements of the probe meanwhile.
#   drain: before any other topic exists, bench-drain (3 partitions, RF 2) is filled so that each broker holds
#     $BENCH_DRAIN_MB MiB (1 KiB records, acks=1); then every replica leaves one broker (not the active
#     controller) while the failover probe writes to the 3 partitions (acks=all, idempotent): on Tributary by its
#     drain flag (kafka-configs.sh --add-config tributary.broker.draining=true), on Kafka by
#     kafka-reassign-partitions.sh --execute replacing that broker by the third one in each of its partitions
#     (what a drain is without Cruise Control) → time until Metadata shows the broker in no replica set and
#     every ISR full, and the longest gap between two acknowledgements on one partition. The flag is cleared
#     and the topic deleted afterwards.
#   roll: a rolling restart, as an operator does it: each node in turn (the active controller last) gets
#     SIGTERM (controlled shutdown), is started again, and the next waits until every partition of bench-roll
#     (3 partitions, RF 3) is back to ISR 3 with a leader, while the failover probe writes to all 3 partitions
#     (acks=all, idempotent) → the time of the whole roll, the slowest node (SIGTERM → ISR 3 again), and the
#     longest gap between two acknowledgements on any one partition.
# The 1-minute load average is recorded at the end of every row and shown next to it.
#
# Environment (defaults; BENCH_QUICK=1 switches to the quick values in brackets, ~10 minutes in all):
#   BENCH_TARGETS="tributary kafka kafka-flush"
#   BENCH_NODES=3                        nodes per cluster, every one broker and controller (voter)
#   BENCH_SMALL_RECORDS=500000 [50000] x 100 B     BENCH_LARGE_RECORDS=150000 [15000] x 1024 B
#   BENCH_PARTITIONS=6
#   BENCH_LAT_RATE=1000 BENCH_LAT_SECS=20 [5] BENCH_LAT_SIZE=1024
#   BENCH_WARMUP_RECORDS=100000 [20000]  unreported warm-up produce (512 B, acks=1)
#   BENCH_FAILOVER_KILLS=10 [3]          kills of a partition leader, and as many of the active controller
#   BENCH_FAILOVER_TIMEOUT=90            bound of one kill → first ack, seconds
#   BENCH_MOVE_MB=1024 [128]             data in the moved partition; BENCH_MOVE_TIMEOUT=600 bound of the move, s
#   BENCH_DRAIN_MB=1024 [128]            data on the drained broker
#   BENCH_ROWS="drain load failover move roll" which groups of rows to run (load: produce, latency, consume)
#   BENCH_TRIBUTARY_PROPS=""             extra Tributary properties, ';'-separated (every node)
#   BENCH_KAFKA_PROPS=""                 extra Kafka properties, ';'-separated (both Kafka variants)
#   BENCH_RUN_TIMEOUT=900 [240] BENCH_START_TIMEOUT=120 BENCH_TOOL_HEAP="-Xmx1g"
#   BENCH_PYTHON=~/.cache/tributary/venv/bin/python (confluent-kafka, hack/prereqs.sh)
#   BENCH_WORK=<mktemp dir> (removed unless BENCH_KEEP=1)  BENCH_RESULTS=hack/bench/results/<date>-cluster[-quick].md
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
KREF="$HERE/kafka-ref.sh"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"

QUICK="${BENCH_QUICK:-0}"
q() { if [[ "$QUICK" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
TARGETS="${BENCH_TARGETS:-tributary kafka kafka-flush}"
N_SMALL="${BENCH_SMALL_RECORDS:-$(q 500000 50000)}"
N_LARGE="${BENCH_LARGE_RECORDS:-$(q 150000 15000)}"
PARTS="${BENCH_PARTITIONS:-6}"
LAT_RATE="${BENCH_LAT_RATE:-1000}"
LAT_SECS="${BENCH_LAT_SECS:-$(q 20 5)}"
LAT_SIZE="${BENCH_LAT_SIZE:-1024}"
WARMUP="${BENCH_WARMUP_RECORDS:-$(q 100000 20000)}"
KILLS="${BENCH_FAILOVER_KILLS:-$(q 10 3)}"
FO_TIMEOUT="${BENCH_FAILOVER_TIMEOUT:-90}"
MOVE_MB="${BENCH_MOVE_MB:-$(q 1024 128)}"
MOVE_TIMEOUT="${BENCH_MOVE_TIMEOUT:-600}"
DRAIN_MB="${BENCH_DRAIN_MB:-$(q 1024 128)}"
ROWS=" ${BENCH_ROWS:-drain load failover move roll} "
NODES="${BENCH_NODES:-3}"
export KAFKA_REF_CLUSTER_NODES="$NODES"
node_ids() { seq 1 "$NODES"; }
wants() { [[ "$ROWS" == *" $1 "* ]]; }
RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-$(q 900 240)}"
START_TIMEOUT="${BENCH_START_TIMEOUT:-120}"
TOOL_HEAP="${BENCH_TOOL_HEAP:--Xmx1g}"
PY="${BENCH_PYTHON:-${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/venv/bin/python}"
PROBE="$HERE/bench/failover_probe.py"
G_MEMBERS=0            # hack/bench-lib.sh's group client is not used here
TOPIC_RF=3
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"; export KAFKA_VERSION
export KAFKA_REF_HEAP="${KAFKA_REF_HEAP:--Xms512m -Xmx512m}"
STAMP="$(date -u +%Y-%m-%d)"
RESULTS="${BENCH_RESULTS:-$HERE/bench/results/$STAMP-cluster$( [[ "$QUICK" == 1 ]] && echo -quick).md}"
if [[ -z "${BENCH_RESULTS:-}" && -e "$RESULTS" ]]; then RESULTS="${RESULTS%.md}-$(date -u +%H%M%S).md"; fi
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tributary-bench-cluster.XXXXXX)}"
mkdir -p "$WORK" "$(dirname "$RESULTS")"

declare -A R=()        # R[target.metric]=value
declare -A NOTE=()     # NOTE[target]="; "-joined notes
CMDS=()
TRIB_PIDS=()           # node id - 1 → running tributary pid
KAFKA_BASES=()         # kafka-ref cluster dirs (for cleanup)
PROBE_PID=""
PROBE_OUT=""           # the running probe's acknowledgement log (probe_start)
BS=""                  # bootstrap servers of the running cluster

log() { printf '[bench-cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
note() { NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"; log "note ($1): $2"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local p b
  [[ -n "$PROBE_PID" ]] && kill -TERM "$PROBE_PID" 2>/dev/null
  for p in "${TRIB_PIDS[@]}"; do [[ -n "$p" ]] && kill -KILL "$p" 2>/dev/null; done
  for b in "${KAFKA_BASES[@]}"; do "$KREF" cluster-stop "$b" >/dev/null 2>&1 || true; done
  if [[ "${BENCH_KEEP:-0}" != 1 && -z "${BENCH_WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

"$PY" -c 'import confluent_kafka' 2>/dev/null || die "$PY has no confluent_kafka (run hack/prereqs.sh)"
# shellcheck source=hack/bench-lib.sh
source "$HERE/bench-lib.sh"

# --- tributary cluster ----------------------------------------------------------------------------
TRIB_BIN=""; TRIB_STATUS=""
prepare_tributary() {
  if [[ -n "${TRIBUTARY_BIN:-}" ]]; then
    TRIB_BIN="$TRIBUTARY_BIN"
  elif [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
    TRIB_STATUS="not built (BENCH_NO_BUILD=1, TRIBUTARY_BIN unset)"; return 1
  else
    CMDS+=("(cd $ROOT && cargo build --release -p tributary-broker)")
    log "building tributary-broker (log: $WORK/cargo-build.log)"
    if ! (cd "$ROOT" && timeout 1800 cargo build --release -p tributary-broker) >"$WORK/cargo-build.log" 2>&1; then
      TRIB_STATUS="cargo build failed: $(grep -m1 -E '^error' "$WORK/cargo-build.log" | cut -c1-160)"; return 1
    fi
    TRIB_BIN="$(cargo_target_dir "$ROOT")/release/tributary-broker"
  fi
  [[ -x "$TRIB_BIN" ]] || { TRIB_STATUS="binary not found/executable: $TRIB_BIN"; return 1; }
}

# trib_props DIR ID PORT CPORT VOTERS: the same keys hack/kafka-ref.sh cluster-start gives Kafka.
trib_props() {
  local dir="$1" id="$2" port="$3" cport="$4" voters="$5"
  cat <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  [[ -z "${BENCH_TRIBUTARY_PROPS:-}" ]] || tr ';' '\n' <<<"$BENCH_TRIBUTARY_PROPS"
}

# trib_launch BASE ID: starts node ID in the background (a child of this shell), TRIB_PIDS[ID-1].
trib_launch() {
  local base="$1" id="$2" dir="$1/node-$2"
  rm -f "$dir/addresses"
  local cmd=("$TRIB_BIN" --config "$dir/server.properties" --http-listen 127.0.0.1:0 --bound-addresses-file "$dir/addresses")
  printf '==== start at %s: %s\n' "$(date -u +%H:%M:%S)" "${cmd[*]}" >>"$dir/broker.log"
  RUST_LOG="${RUST_LOG:-info,openraft=warn}" NO_COLOR=1 "${cmd[@]}" >>"$dir/broker.log" 2>&1 </dev/null &
  TRIB_PIDS[id-1]=$!
  TRIB_LAST_CMD="$(printf '%q ' "${cmd[@]}")"
}

# trib_ready BASE ID: /readyz of node ID answers 200.
trib_ready() {
  local http
  http="$(sed -n 's/^http=//p' "$1/node-$2/addresses" 2>/dev/null)"
  [[ -n "$http" ]] && curl -fsS -o /dev/null --max-time 1 "http://$http/readyz" 2>/dev/null
}

# trib_wait BASE TIMEOUT IDS...: until every node in IDS is ready; 1 with their log tails otherwise.
trib_wait() {
  local base="$1" tmo="$2" id deadline; shift 2
  deadline=$(( $(date +%s) + tmo ))
  for id in "$@"; do
    while ! trib_ready "$base" "$id"; do
      if ! kill -0 "${TRIB_PIDS[id-1]}" 2>/dev/null; then
        log "tributary node $id exited"; log_tail "$base/node-$id/broker.log" 30; return 1
      fi
      if (( $(date +%s) >= deadline )); then
        log "tributary node $id not ready within ${tmo}s"; log_tail "$base/node-$id/broker.log" 30; return 1
      fi
      sleep 0.05
    done
  done
}

trib_start_cluster() {
  local base="$1" i ports=() p voters="" id
  while (( ${#ports[@]} < 2 * NODES )); do
    p="$(free_port)"; [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  for i in $(node_ids); do voters+="${voters:+,}$i@127.0.0.1:${ports[2*i-1]}"; done
  id="$("$TRIB_BIN" random-uuid)" || { START_FAIL="random-uuid failed"; return 1; }
  CMDS+=("$TRIB_BIN random-uuid")
  BS=""
  for i in $(node_ids); do
    mkdir -p "$base/node-$i"
    trib_props "$base/node-$i" "$i" "${ports[2*i-2]}" "${ports[2*i-1]}" "$voters" >"$base/node-$i/server.properties"
    if ! "$TRIB_BIN" format -t "$id" -c "$base/node-$i/server.properties" >>"$base/node-$i/broker.log" 2>&1; then
      START_FAIL="format of node $i failed: $(tail -n 2 "$base/node-$i/broker.log" | tr '\n' ' ' | cut -c1-200)"; return 1
    fi
    BS+="${BS:+,}127.0.0.1:${ports[2*i-2]}"
  done
  CMDS+=("$TRIB_BIN format -t $id -c $base/node-N/server.properties  # N = 1..$NODES")
  local t0; t0="$(now_ms)"
  for i in $(node_ids); do trib_launch "$base" "$i"; done
  CMDS+=("$TRIB_LAST_CMD &  # and the same for the other nodes")
  # shellcheck disable=SC2046
  trib_wait "$base" "$START_TIMEOUT" $(node_ids) || { START_FAIL="not every node became ready (see the log tails)"; return 1; }
  START_MS=$(( $(now_ms) - t0 ))
}

# --- generic cluster control ----------------------------------------------------------------------
# cluster_start TARGET BASE -> BS, START_MS
cluster_start() {
  local t="$1" base="$2"
  if [[ "$t" == tributary ]]; then trib_start_cluster "$base"; return; fi
  local extra="$WORK/$t.properties"
  : >"$extra"
  [[ "$t" == kafka-flush ]] && echo "log.flush.interval.messages=1" >>"$extra"
  [[ -z "${BENCH_KAFKA_PROPS:-}" ]] || tr ';' '\n' <<<"$BENCH_KAFKA_PROPS" >>"$extra"
  KAFKA_BASES+=("$base")
  CMDS+=("hack/kafka-ref.sh cluster-start $base $extra  # $(tr '\n' ' ' <"$extra")")
  log "+ ${CMDS[-1]}"
  if ! KAFKA_REF_START_TIMEOUT="$START_TIMEOUT" "$KREF" cluster-start "$base" "$extra" >"$base.start.out" 2>"$base.start.err"; then
    START_FAIL="kafka-ref cluster-start failed: $(tail -n 5 "$base.start.err" | tr '\n' ' ' | cut -c1-300)"; return 1
  fi
  BS="$(sed -n 's/^BOOTSTRAP=//p' "$base/cluster.env")"
  START_MS="$(sed -n 's/^READY_MS=//p' "$base/cluster.env")"
}

cluster_stop() {
  local t="$1" base="$2" i
  if [[ "$t" == tributary ]]; then
    for i in $(node_ids); do [[ -n "${TRIB_PIDS[i-1]:-}" ]] && { stop_process "${TRIB_PIDS[i-1]}" 30 "tributary node $i" || true; }; TRIB_PIDS[i-1]=""; done
  else
    "$KREF" cluster-stop "$base" || true
  fi
}

node_pid() { # TARGET BASE ID
  if [[ "$1" == tributary ]]; then echo "${TRIB_PIDS[$3-1]}"; else cat "$2/node-$3/kafka.pid"; fi
}

# node_kill9 TARGET BASE ID: kill -9, and DEAD_MS = when the process was seen gone (a JVM takes a few ms to
# go after SIGKILL and can still acknowledge records meanwhile).
node_kill9() { # TARGET BASE ID
  local pid; pid="$(node_pid "$@")"
  kill -KILL "$pid" 2>/dev/null
  if [[ "$1" == tributary ]]; then wait "$pid" 2>/dev/null; TRIB_PIDS[$3-1]=""
  else
    local i
    for i in $(seq 1 1000); do
      kill -0 "$pid" 2>/dev/null || break
      # Not our child: a zombie waits for whoever adopted it, but it serves nothing.
      [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
      sleep 0.005
    done
  fi
  DEAD_MS="$(now_ms)"
}

node_restart() { # TARGET BASE ID
  if [[ "$1" == tributary ]]; then
    trib_launch "$2" "$3" && trib_wait "$2" "$START_TIMEOUT" "$3"
  else
    KAFKA_REF_START_TIMEOUT="$START_TIMEOUT" "$KREF" node-start "$2" "$3" >>"$2.restarts.out" 2>&1
  fi
}

# active_controller TARGET BASE [TOPIC]: node id of the active controller (TOPIC, bench-failover, is the one
# whose metadata is asked for; asking auto-creates it).
active_controller() {
  if [[ "$1" == tributary ]]; then
    "$PY" "$PROBE" meta "$BS" "${3:-bench-failover}" 2>/dev/null | sed -n 's/^controller=//p'
  else
    # KRaft's DescribeCluster/Metadata name a random broker (KIP-590); the quorum state names the leader.
    cat "$2"/node-*/logs/__cluster_metadata-0/quorum-state 2>/dev/null | tr '}' '\n' \
      | sed -nE 's/.*"leaderId":(-?[0-9]+),"leaderEpoch":([0-9]+).*/\2 \1/p' | sort -n | tail -n 1 | cut -d' ' -f2
  fi
}

# shellcheck disable=SC2317 # called through eventually
# healthy [TOPIC]: every node in Metadata and every partition of TOPIC (bench-failover) with a leader and ISR 3.
healthy() {
  local m; m="$("$PY" "$PROBE" meta "$BS" "${1:-bench-failover}" 2>/dev/null)" || return 1
  grep -q "^brokers=$NODES\$" <<<"$m" || return 1
  ! grep '^partition=' <<<"$m" | grep -qvE 'leader=[0-9]+ isr=3 '
}

# probe_start TARGET KEY TOPIC PARTITIONS LABEL: the failover probe writing to every partition of TOPIC in the
# background (acks=all, idempotent) into PROBE_OUT=$WORK/TARGET-probe-KEY.log; returns once each partition got
# an acknowledgement, or notes "LABEL: ..." and stops it after 60 s.
probe_start() {
  local t="$1" key="$2" topic="$3" parts="$4" label="$5"
  PROBE_OUT="$WORK/$t-probe-$key.log"
  : >"$PROBE_OUT"
  CMDS+=("$PY hack/bench/failover_probe.py produce $BS $topic $parts $PROBE_OUT  # in the background during the $label")
  "$PY" "$PROBE" produce "$BS" "$topic" "$parts" "$PROBE_OUT" 2>"$WORK/$t-probe-$key.err" &
  PROBE_PID=$!
  if ! eventually --timeout 60 "acks on all $parts partitions of $topic" \
      bash -c "for (( p = 0; p < $parts; p++ )); do grep -q \" \$p ok \" '$PROBE_OUT' || exit 1; done"; then
    note "$t" "$label: the probe got no acks on every partition of $topic within 60 s ($(grep -m1 -E 'err|ERR|FAIL' "$WORK/$t-probe-$key.err" "$PROBE_OUT" | cut -c1-160))"
    probe_stop; return 1
  fi
}

probe_stop() {
  [[ -n "$PROBE_PID" ]] || return 0
  kill -TERM "$PROBE_PID" 2>/dev/null; wait "$PROBE_PID" 2>/dev/null; PROBE_PID=""
}

# longest_gap PROBE_LOG FROM TO: the longest time between two acknowledgements on one partition within
# [FROM, TO] (epoch ms).
longest_gap() {
  awk -v a="$2" -v b="$3" '$3 == "ok" && $1 >= a && $1 <= b { p = $2; if (p in prev) { g = $1 - prev[p]; if (g > max) max = g } prev[p] = $1 } END { print max + 0 }' "$1"
}

# --- failover -------------------------------------------------------------------------------------
# failover TARGET BASE MODE(leader|controller) -> R[t.fo_MODE.{p50,max,n,gaps}]
failover() {
  local t="$1" base="$2" mode="$3" i victim part m k first gaps=() errs=0 off out
  probe_start "$t" "$mode" bench-failover 3 "failover $mode" || return 1
  out="$PROBE_OUT"
  for (( i = 1; i <= KILLS; i++ )); do
    if ! eventually --timeout 120 --interval 1 "$t: 3 brokers and ISR 3 on bench-failover" healthy; then
      note "$t" "failover $mode: kill $i: cluster not back to 3 brokers / ISR 3 within 120 s after the previous restart ($("$PY" "$PROBE" meta "$BS" bench-failover 2>&1 | tr '\n' ' ' | cut -c1-200))"
      break
    fi
    # The restarted node of the previous kill gets its leaderships back by a preferred election a few seconds
    # after it rejoins the ISRs; a victim picked before that election would lead nothing when it is killed
    # (gaps of a few ms). So the victim and the leaders must read the same twice, 1 s apart, before the kill.
    local picked="" tries
    for (( tries = 0; tries < 30; tries++ )); do
      m="$("$PY" "$PROBE" meta "$BS" bench-failover 2>/dev/null)"
      if [[ "$mode" == leader ]]; then
        part=0; victim="$(sed -n 's/^partition=0 leader=\([0-9]*\).*/\1/p' <<<"$m")"
      else
        victim="$(active_controller "$t" "$base")"
        part="$(grep '^partition=' <<<"$m" | grep -v "leader=$victim " | head -n 1 | sed -n 's/^partition=\([0-9]*\).*/\1/p')"
      fi
      local now_picked="$victim|$(grep '^partition=' <<<"$m" | sed 's/ isr=.*//' | tr '\n' ' ')"
      [[ "$now_picked" == "$picked" ]] && break
      picked="$now_picked"
      sleep 1
    done
    (( tries < 30 )) || note "$t" "failover $mode: kill $i: leaders still moving after 30 s; killing node $victim anyway"
    if [[ "$mode" == controller && -z "$part" ]]; then
      part=0; note "$t" "failover controller: kill $i: the controller (node $victim) led every partition; timing partition 0 (also a leader failover)"
    fi
    [[ "$victim" =~ ^[0-9]+$ ]] && (( victim >= 1 && victim <= NODES )) || { note "$t" "failover $mode: kill $i: no $mode found (got '$victim')"; break; }
    off="$(log_size "$out")"
    k="$(now_ms)"
    node_kill9 "$t" "$base" "$victim"
    log "$t failover $mode: kill -9 of node $victim, timing partition $part"
    first=""
    local deadline=$(( k + FO_TIMEOUT * 1000 ))
    while (( $(now_ms) < deadline )); do
      # Sent after the kill and acknowledged after the victim was gone: a record sent in the few ms the
      # process takes to die can be acknowledged by it (gaps of 2-11 ms in earlier runs, both brokers).
      first="$(tail -c "+$(( off + 1 ))" "$out" | awk -v k="$k" -v d="$DEAD_MS" -v p="$part" '$5 > k && $1 > d && $2 == p && $3 == "ok" { print $1; exit }')"
      [[ -n "$first" ]] && break
      sleep 0.05
    done
    errs=$(( errs + $(tail -c "+$(( off + 1 ))" "$out" | grep -c ' err ') ))
    if [[ -n "$first" ]]; then
      gaps+=($(( first - k )))
      log "$t failover $mode: kill $i (node $victim): first ack on partition $part after $(( first - k )) ms"
    else
      note "$t" "failover $mode: kill $i (node $victim): no ack on partition $part within ${FO_TIMEOUT}s"
    fi
    CMDS+=("kill -9 <pid of node $victim>; restart it with the same config")
    if ! node_restart "$t" "$base" "$victim"; then
      note "$t" "failover $mode: node $victim did not restart after kill $i"; break
    fi
  done
  probe_stop
  R[$t.fo_$mode.load]="$(load1)"
  R[$t.fo_$mode.n]="${#gaps[@]}"
  (( errs > 0 )) && note "$t" "failover $mode: $errs failed deliveries ($(grep ' err ' "$out" | awk '{print $4}' | sort | uniq -c | tr '\n' ' '))"
  (( ${#gaps[@]} > 0 )) || return 1
  R[$t.fo_$mode.gaps]="$(tr ' ' ',' <<<"${gaps[*]}")"
  R[$t.fo_$mode.p50]="$(printf '%s\n' "${gaps[@]}" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }')"
  R[$t.fo_$mode.max]="$(printf '%s\n' "${gaps[@]}" | sort -n | tail -n 1)"
}

# node_stop TARGET BASE ID: SIGTERM (a controlled shutdown on both brokers) and wait until the process is gone.
node_stop() {
  local pid i; pid="$(node_pid "$@")"
  if [[ "$1" == tributary ]]; then stop_process "$pid" 60 "tributary node $3"; TRIB_PIDS[$3-1]=""; return; fi
  kill -TERM "$pid" 2>/dev/null
  for (( i = 0; i < 600; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 0
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null; return 1
}

# drain TARGET BASE: see the header. R[target.drain.{ms,mb,stall}]
drain() {
  local t="$1" base="$2" victim controller m t0 t1 parts=() p ids missing json
  TOPIC_RF=2 create_topic "$t" "$BS" bench-drain 3
  # Each partition gets half of DRAIN_MB: every broker holds two of the six replicas.
  if ! produce "$t" drainfill "$BS" bench-drain $(( DRAIN_MB * 1024 * 3 / 2 )) 1024 1 -1; then
    note "$t" "drain: filling bench-drain failed"; return 1
  fi
  controller="$(active_controller "$t" "$base" bench-drain)"
  victim=3; [[ "$controller" == 3 ]] && victim=2
  probe_start "$t" drain bench-drain 3 drain || return 1
  sleep 2
  m="$("$PY" "$PROBE" meta "$BS" bench-drain 2>/dev/null)"
  log "$t: draining node $victim ($DRAIN_MB MiB; active controller $controller): $(grep '^partition=' <<<"$m" | tr '\n' ' ')"
  t0="$(now_ms)"
  if [[ "$t" == tributary ]]; then
    run "$t-drain-flag" 120 "${TOOL[@]}" org.apache.kafka.tools.ConfigCommand --bootstrap-server "$BS" \
      --alter --entity-type brokers --entity-name "$victim" --add-config tributary.broker.draining=true \
      || { note "$t" "drain: setting the drain flag failed"; probe_stop; return 1; }
  else
    while read -r p ids; do
      [[ ",$ids," == *",$victim,"* ]] || continue
      missing="$(for b in $(node_ids); do [[ ",$ids," == *",$b,"* ]] || echo "$b"; done | head -n 1)"
      parts+=("{\"topic\":\"bench-drain\",\"partition\":$p,\"replicas\":[$(sed "s/\b$victim\b/$missing/" <<<"$ids")]}")
    done < <(sed -n 's/^partition=\([0-9]*\) .* ids=\([0-9,]*\).*/\1 \2/p' <<<"$m")
    json="$WORK/$t-drain.json"
    printf '{"version":1,"partitions":[%s]}\n' "$(IFS=,; echo "${parts[*]}")" >"$json"
    run "$t-drain-execute" 120 "${TOOL[@]}" org.apache.kafka.tools.reassign.ReassignPartitionsCommand \
      --bootstrap-server "$BS" --execute --reassignment-json-file "$json" \
      || { note "$t" "drain: --execute failed"; probe_stop; return 1; }
  fi
  CMDS+=("drain node $victim: $( [[ "$t" == tributary ]] && echo "kafka-configs.sh --alter --entity-type brokers --entity-name $victim --add-config tributary.broker.draining=true" || echo "kafka-reassign-partitions.sh --execute (each partition of node $victim moved to the third broker)")")
  t1=""
  while (( $(now_ms) - t0 < MOVE_TIMEOUT * 1000 )); do
    m="$("$PY" "$PROBE" meta "$BS" bench-drain 2>/dev/null | grep '^partition=')"
    if [[ -n "$m" ]] && ! grep -qE "ids=([0-9,]*,)?$victim(,|$| )" <<<"$m" && ! grep -qv ' isr=2 ' <<<"$m"; then t1="$(now_ms)"; break; fi
    sleep 0.2
  done
  sleep 1
  probe_stop
  if [[ "$t" == tributary ]]; then
    run "$t-drain-unflag" 120 "${TOOL[@]}" org.apache.kafka.tools.ConfigCommand --bootstrap-server "$BS" \
      --alter --entity-type brokers --entity-name "$victim" --delete-config tributary.broker.draining \
      || note "$t" "drain: clearing the drain flag failed"
  fi
  run "$t-drain-delete" 120 "${TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$BS" \
    --delete --topic bench-drain || note "$t" "drain: deleting bench-drain failed"
  if [[ -z "$t1" ]]; then note "$t" "drain: not complete after ${MOVE_TIMEOUT}s ($(tr '\n' ' ' <<<"$m"))"; return 1; fi
  R[$t.drain.ms]=$(( t1 - t0 ))
  R[$t.drain.mb]="$(awk -v ms=$(( t1 - t0 )) -v mb="$DRAIN_MB" 'BEGIN { printf "%.1f", mb / (ms / 1000) }')"
  R[$t.drain.stall]="$(longest_gap "$PROBE_OUT" "$t0" "$t1")"
  R[$t.drain.load]="$(load1)"
  log "$t: node $victim drained in ${R[$t.drain.ms]} ms (${R[$t.drain.mb]} MiB/s), longest ack gap ${R[$t.drain.stall]} ms"
}

# roll TARGET BASE: see the header. R[target.roll.{ms,slowest,stall}]
roll() {
  local t="$1" base="$2" controller order=() id t0 t1 s0 slowest=0 per=()
  create_topic "$t" "$BS" bench-roll 3
  if ! eventually --timeout 60 --interval 1 "$t: ISR 3 on bench-roll" healthy bench-roll; then
    note "$t" "roll: bench-roll not at ISR 3 within 60 s"; return 1
  fi
  probe_start "$t" roll bench-roll 3 roll || return 1
  controller="$(active_controller "$t" "$base" bench-roll)"
  for id in $(node_ids); do [[ "$id" == "$controller" ]] || order+=("$id"); done
  order+=("$controller")
  log "$t: rolling nodes ${order[*]} (active controller $controller last)"
  t0="$(now_ms)"
  for id in "${order[@]}"; do
    s0="$(now_ms)"
    CMDS+=("kill -TERM <pid of node $id>; wait; restart it with the same config; wait for ISR 3 on bench-roll")
    node_stop "$t" "$base" "$id" || note "$t" "roll: node $id needed SIGKILL"
    if ! node_restart "$t" "$base" "$id"; then note "$t" "roll: node $id did not restart"; break; fi
    if ! eventually --timeout 180 --interval 0.2 "$t: ISR 3 on bench-roll after node $id" healthy bench-roll; then
      note "$t" "roll: bench-roll not back to ISR 3 within 180 s after node $id"; break
    fi
    per+=("$id:$(( $(now_ms) - s0 ))")
    (( $(now_ms) - s0 > slowest )) && slowest=$(( $(now_ms) - s0 ))
  done
  t1="$(now_ms)"
  probe_stop
  (( ${#per[@]} == NODES )) || return 1
  R[$t.roll.ms]=$(( t1 - t0 ))
  R[$t.roll.slowest]="$slowest"
  R[$t.roll.nodes]="${per[*]}"
  R[$t.roll.stall]="$(longest_gap "$PROBE_OUT" "$t0" "$t1")"
  R[$t.roll.errs]="$(awk -v a="$t0" -v b="$t1" '$3 != "ok" && $1 >= a && $1 <= b' "$PROBE_OUT" | wc -l)"
  R[$t.roll.load]="$(load1)"
  log "$t: rolled $NODES nodes in ${R[$t.roll.ms]} ms (${per[*]}), longest ack gap ${R[$t.roll.stall]} ms, ${R[$t.roll.errs]} failed deliveries"
}

# --- one target -----------------------------------------------------------------------------------
# move TARGET: see the header. R[target.move.{ms,stall,mb}]
move() {
  local t="$1" line replicas first missing target json t0 t1 m ids
  TOPIC_RF=2 create_topic "$t" "$BS" bench-move 1
  if ! produce "$t" movefill "$BS" bench-move $(( MOVE_MB * 1024 )) 1024 1 -1; then
    note "$t" "move: filling bench-move failed"; return 1
  fi
  line="$("$PY" "$PROBE" meta "$BS" bench-move 2>/dev/null | grep '^partition=0 ')"
  replicas="$(sed -n 's/.* ids=\([0-9,]*\).*/\1/p' <<<"$line")"
  first="${replicas%%,*}"
  missing="$(for b in $(node_ids); do [[ ",$replicas," == *",$b,"* ]] || echo "$b"; done | head -n 1)"
  if [[ -z "$first" || -z "$missing" ]]; then note "$t" "move: cannot read the replicas of bench-move-0 ($line)"; return 1; fi
  target="$(printf '%s\n' "$first" "$missing" | sort -n | paste -sd,)"
  json="$WORK/$t-move.json"
  printf '{"version":1,"partitions":[{"topic":"bench-move","partition":0,"replicas":[%s,%s]}]}\n' "$first" "$missing" >"$json"
  probe_start "$t" move bench-move 1 move || return 1
  sleep 2
  log "$t: moving bench-move-0 from [$replicas] to [$first,$missing] ($MOVE_MB MiB)"
  t0="$(now_ms)"
  if ! run "$t-move-execute" 120 "${TOOL[@]}" org.apache.kafka.tools.reassign.ReassignPartitionsCommand \
      --bootstrap-server "$BS" --execute --reassignment-json-file "$json"; then
    note "$t" "move: --execute failed ($(grep -m1 -E 'Exception|Error' "$WORK/$t-move-execute.err" "$WORK/$t-move-execute.out" | cut -c1-160))"
    probe_stop; return 1
  fi
  t1=""
  while (( $(now_ms) - t0 < MOVE_TIMEOUT * 1000 )); do
    m="$("$PY" "$PROBE" meta "$BS" bench-move 2>/dev/null | grep '^partition=0 ')"
    ids="$(sed -n 's/.* ids=\([0-9,]*\).*/\1/p' <<<"$m")"
    if [[ "$ids" == "$target" && "$m" == *" isr=2 "* ]]; then t1="$(now_ms)"; break; fi
    sleep 0.2
  done
  sleep 1
  probe_stop
  if [[ -z "$t1" ]]; then note "$t" "move: not complete after ${MOVE_TIMEOUT}s ($m)"; return 1; fi
  R[$t.move.ms]=$(( t1 - t0 ))
  R[$t.move.mb]="$(awk -v ms=$(( t1 - t0 )) -v mb="$MOVE_MB" 'BEGIN { printf "%.1f", mb / (ms / 1000) }')"
  R[$t.move.stall]="$(longest_gap "$PROBE_OUT" "$t0" "$t1")"
  R[$t.move.load]="$(load1)"
  log "$t: move done in ${R[$t.move.ms]} ms (${R[$t.move.mb]} MiB/s), longest ack gap ${R[$t.move.stall]} ms"
}

bench_target() {
  local t="$1"
  local base="$WORK/$t"
  rm -rf "$base"; mkdir -p "$base"
  log "=== $t: starting a $NODES-node cluster"
  R[$t.load_start]="$(load1)"
  if ! cluster_start "$t" "$base"; then note "$t" "cluster did not start: $START_FAIL"; return 1; fi
  R[$t.start_ms]="$START_MS"
  log "$t: ready after $START_MS ms, bootstrap $BS"
  # First, while bench-drain is the only topic: a drain needs every partition to have somewhere else to go.
  wants drain && drain "$t" "$base"
  if ! ( RUN_TIMEOUT=60; produce "$t" smoke "$BS" bench-smoke 100 100 all -1 ); then
    note "$t" "smoke produce (100 records, acks=all) failed; skipping the load"
    cluster_stop "$t" "$base"; return 1
  fi
  if (( WARMUP > 0 )); then
    create_topic "$t" "$BS" bench-warmup
    produce "$t" warmup "$BS" bench-warmup "$WARMUP" 512 1 -1 || note "$t" "warm-up failed"
  fi
  local spec key size n
  if wants load; then
    for spec in "p100 100 $N_SMALL" "p1k 1024 $N_LARGE"; do
      read -r key size n <<<"$spec"
      create_topic "$t" "$BS" "bench-$key"
      produce "$t" "$key" "$BS" "bench-$key" "$n" "$size" all -1
      R[$t.$key.load]="$(load1)"
    done
    create_topic "$t" "$BS" bench-lat
    produce "$t" lat "$BS" bench-lat $(( LAT_RATE * LAT_SECS )) "$LAT_SIZE" all "$LAT_RATE"
    R[$t.lat.load]="$(load1)"
    consume_assign "$t" a100 "$BS" bench-p100 "$N_SMALL"; R[$t.a100.load]="$(load1)"
    consume_assign "$t" a1k "$BS" bench-p1k "$N_LARGE"; R[$t.a1k.load]="$(load1)"
  fi
  wants move && move "$t"
  wants roll && roll "$t" "$base"
  if wants failover && (( KILLS > 0 )); then
    create_topic "$t" "$BS" bench-failover 3
    failover "$t" "$base" leader
    failover "$t" "$base" controller
  fi
  cluster_stop "$t" "$base"
  [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$base"/node-*/data "$base"/node-*/logs
  return 0
}

# --- run ------------------------------------------------------------------------------------------
T_BEGIN="$(now_ms)"
LOAD_BEGIN="$(cut -d' ' -f1-3 /proc/loadavg)"
for t in $TARGETS; do
  case "$t" in
    tributary) if prepare_tributary; then bench_target tributary; else note tributary "$TRIB_STATUS"; fi ;;
    kafka|kafka-flush) bench_target "$t" ;;
    *) die "unknown target $t" ;;
  esac
done

# --- report ---------------------------------------------------------------------------------------
val() { local v="${R[$1]:-}"; echo "${v:-n/a}"; }
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
# row LABEL KEY METRIC BETTER: value and the row's load average per cluster, ratios against both Kafkas.
row() {
  local a b c; a="$(val "tributary.$2.$3")"; b="$(val "kafka.$2.$3")"; c="$(val "kafka-flush.$2.$3")"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$a" "$(val "tributary.$2.load")" \
    "$b" "$(val "kafka.$2.load")" "$c" "$(val "kafka-flush.$2.load")" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")" "$4"
}
fmt_n() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }

{
  echo "# Tributary vs Apache Kafka $KAFKA_VERSION, $NODES-broker clusters — $( [[ "$QUICK" == 1 ]] && echo quick || echo full) benchmark"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); repo commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(uname -r); $(java -version 2>&1 | head -n 1); shared with other builds (see the load columns)"
  echo "- clusters, one after the other: $NODES combined broker+controller nodes on 127.0.0.1, RF 3, min.insync.replicas=2, Kafka's default session (9 s) / heartbeat (2 s) / replica.lag.time.max.ms (30 s) on both"
  echo "- tributary: ${TRIB_BIN:-n/a}${TRIB_STATUS:+ ($TRIB_STATUS)}; fsyncs on every ISR member before acks=all${BENCH_TRIBUTARY_PROPS:+; extra: $BENCH_TRIBUTARY_PROPS}"
  echo "- kafka: $KAFKA_VERSION via hack/kafka-ref.sh cluster-start, $KAFKA_REF_HEAP, G1, default flush policy (no fsync)${BENCH_KAFKA_PROPS:+; extra: $BENCH_KAFKA_PROPS}"
  echo "- kafka-flush: the same with log.flush.interval.messages=1 (fsync of every append: durable vs durable)"
  echo "- client: kafka-tools $KAFKA_VERSION ProducerPerformance and hack/bench/AssignConsumerPerf.java, JVM $TOOL_HEAP, default config + acks=all; failover probe hack/bench/failover_probe.py (confluent-kafka $("$PY" -c 'import confluent_kafka as c; v = c.version(); print(v if isinstance(v, str) else v[0], "/ librdkafka", c.libversion()[0])' 2>/dev/null))"
  echo "- load: $(fmt_n "$N_SMALL") x 100 B and $(fmt_n "$N_LARGE") x 1024 B, topics of $PARTS partitions RF 3; latency: $LAT_RATE rec/s x $LAT_SECS s, $LAT_SIZE B; warm-up $(fmt_n "$WARMUP") x 512 B acks=1 (not reported); failover: $KILLS kills each"
  echo "- total wall time: $(( ($(now_ms) - T_BEGIN) / 1000 )) s; load average at start: $LOAD_BEGIN, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| Metric | Tributary | load | Kafka | load | Kafka flush=1 | load | Trib / Kafka | Trib / Kafka flush=1 | better |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  row "Produce 100 B acks=all, records/s" p100 rps higher
  row "Produce 100 B acks=all, MB/s" p100 mbps higher
  row "Produce 100 B acks=all, p99 ms (unthrottled)" p100 p99 lower
  row "Produce 1 KiB acks=all, records/s" p1k rps higher
  row "Produce 1 KiB acks=all, MB/s" p1k mbps higher
  row "Produce 1 KiB acks=all, p99 ms (unthrottled)" p1k p99 lower
  row "Latency @${LAT_RATE}/s 1 KiB acks=all: achieved records/s" lat rps higher
  row "Latency @${LAT_RATE}/s: p50 ms" lat p50 lower
  row "Latency @${LAT_RATE}/s: p99 ms" lat p99 lower
  row "Latency @${LAT_RATE}/s: p99.9 ms" lat p999 lower
  row "Latency @${LAT_RATE}/s: max ms" lat max lower
  row "Consume 100 B (assign, no group), records/s" a100 rps higher
  row "Consume 100 B (assign, no group), records/s after the first record" a100 frps higher
  row "Consume 1 KiB (assign, no group), records/s" a1k rps higher
  row "Consume 1 KiB (assign, no group), MB/s" a1k mbps higher
  row "Failover, kill -9 of a partition leader → first ack of a record sent after the kill, median ms" fo_leader p50 lower
  row "Failover, partition leader, max ms" fo_leader max lower
  row "Failover, kill -9 of the active controller → first ack on a partition it does not lead (it is a follower there), median ms" fo_controller p50 lower
  row "Failover, active controller, max ms" fo_controller max lower
  row "Move one partition of $MOVE_MB MiB to a new replica (kafka-reassign-partitions.sh --execute → target replicas in sync), ms" move ms lower
  row "Move, MiB/s" move mb higher
  row "Move: longest gap between acks=all acknowledgements on the moving partition, ms" move stall lower
  row "Drain a broker holding $DRAIN_MB MiB (3 partitions RF 2; Tributary's drain flag, Kafka's kafka-reassign-partitions.sh) → in no replica set, ISRs full, ms" drain ms lower
  row "Drain, MiB/s" drain mb higher
  row "Drain: longest gap between acks=all acknowledgements on one partition, ms" drain stall lower
  row "Rolling restart of $NODES nodes (SIGTERM, restart, ISR 3 again; active controller last), ms" roll ms lower
  row "Rolling restart: slowest node, SIGTERM → ISR 3 again, ms" roll slowest lower
  row "Rolling restart: longest gap between acks=all acknowledgements on one partition, ms" roll stall lower
  echo
  echo "load: the 1-minute load average when the row ended (2 cores; above 2 the cluster and client waited for CPU)."
  echo "Cluster start (format done; exec of the first node → all $NODES ready), ms: tributary $(val tributary.start_ms), kafka $(val kafka.start_ms), kafka-flush $(val kafka-flush.start_ms)."
  echo
  echo "Rolling restart per node (id:ms, in order): $(for t in $TARGETS; do printf '%s %s; ' "$t" "$(val "$t.roll.nodes")"; done)"
  echo
  echo "Failover gaps, ms (in kill order):"
  echo
  for t in $TARGETS; do
    echo "- $t: leader $(val "$t.fo_leader.gaps") ($(val "$t.fo_leader.n") of $KILLS kills timed); controller $(val "$t.fo_controller.gaps") ($(val "$t.fo_controller.n") of $KILLS)"
  done
  echo
  echo "## Notes"
  echo
  for t in $TARGETS; do echo "- $t: ${NOTE[$t]:-none}"; done
  echo
  echo "## Command lines"
  echo
  echo '```'
  printf '%s\n' "${CMDS[@]}"
  echo '```'
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
cat "$RESULTS"
log "results written to $RESULTS"
[[ "${BENCH_KEEP:-0}" == 1 || -n "${BENCH_WORK:-}" ]] && log "raw outputs kept in $WORK"
exit 0
