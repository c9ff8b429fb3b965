#!/usr/bin/env bash
# Tributary vs Apache Kafka: the same load with the same client, one broker after the other.
#
# This is a benchmark, not a test: it always exits 0 once a report was written (exit 1 only for
# setup errors such as missing java/mvn), and a broker that fails shows "n/a" in its column.
#
# Client: Kafka's own org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance / TopicCommand
# from the kafka-tools jar (classpath from hack/kafka-ref.sh), with default client settings except
# bootstrap.servers and acks. Group-free consumer rows: hack/bench/AssignConsumerPerf.java (KafkaConsumer
# with assign() + seekToBeginning, no group.id); consumer-group rows: hack/bench/GroupPerf.java (N classic-protocol
# KafkaConsumer members, range assignor); both compiled with javac into
# ${TRIBUTARY_CACHE:-~/.cache/tributary}/bench-classes (recompiled when their checksum changes).
# Both brokers run with group.initial.rebalance.delay.ms=0 (kafka-ref.sh sets it; Tributary gets it via --config).
#
# Targets (in this order, each with a fresh data dir):
#   tributary  $TRIBUTARY_BIN, or built with `cargo build --release -p tributary-broker`
#              (BENCH_NO_BUILD=1 to skip building); ports: 0, read from --bound-addresses-file
#              (hack/lib.sh start_broker); readiness: GET /readyz == 200.
#   kafka      hack/kafka-ref.sh (Apache Kafka $KAFKA_VERSION, KRaft single node, -Xmx1g).
#
# Environment (defaults; BENCH_QUICK=1 switches to the quick values in brackets):
#   BENCH_TARGETS="tributary kafka"
#   BENCH_TRIBUTARY_PROPS=""      extra Tributary broker properties, ';'-separated (e.g. Kafka's flush policy)
#   BENCH_ONLY=all                "groups": only the consumer-group section (smoke produce + group load; no
#                                 warm-up, produce/consume/latency rows or recovery)
#   BENCH_SMALL_RECORDS=1000000 [200000]   records of BENCH_SMALL_SIZE=100 bytes
#   BENCH_LARGE_RECORDS=300000  [50000]    records of BENCH_LARGE_SIZE=1024 bytes
#   BENCH_PARTITIONS=6
#   BENCH_LAT_RATE=5000 BENCH_LAT_SECS=20 [5] BENCH_LAT_SIZE=1024 BENCH_LAT_ACKS=all
#   BENCH_GROUP_MEMBERS=10 BENCH_GROUP_PARTITIONS=60  consumer group section (GroupPerf)
#   BENCH_GROUP_RECORDS=1000000 [200000] BENCH_GROUP_SIZE=100   records pre-filled into its topic (acks=1)
#   BENCH_RECOVERY_MB=1024 [128]  unflushed data written before kill -9 (Tributary; 0 disables)
#   BENCH_KAFKA_RECOVERY=0        1: run the same recovery measurement against Kafka too
#   BENCH_IDLE_SECS=5 [2]         wait after start before reading VmRSS
#   BENCH_WARMUP_RECORDS=200000 [50000]  unreported warm-up produce (512 B, acks=1) before the load
#   BENCH_RUN_TIMEOUT=900 [240]   bound of every client run, seconds
#   BENCH_START_TIMEOUT=60 BENCH_RECOVERY_TIMEOUT=600
#   BENCH_TOOL_HEAP="-Xmx1g"      client JVM heap
#   BENCH_WORK=<mktemp dir>       data dirs and raw outputs; removed at the end unless BENCH_KEEP=1
#   BENCH_RESULTS=hack/bench/results/<date>[-quick].md
#   KAFKA_VERSION, TRIBUTARY_CACHE, KAFKA_REF_*: see hack/kafka-ref.sh
#   BENCH_CLIENT=both             java: the rows above only; light: only hack/bench-light.sh (librdkafka's
#                                 rdkafka_performance, broker and client pinned to their own cores, broker CPU
#                                 seconds per million records; its own results file); both: the Java rows, then
#                                 the light ones
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENT_KIND="${BENCH_CLIENT:-both}"
case "$CLIENT_KIND" in
  light) exec "$HERE/bench-light.sh" ;;
  java|both) ;;
  *) echo "BENCH_CLIENT must be java, light or both, got $CLIENT_KIND" >&2; exit 1 ;;
esac
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
KREF="$HERE/kafka-ref.sh"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"

QUICK="${BENCH_QUICK:-0}"
q() { if [[ "$QUICK" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
TARGETS="${BENCH_TARGETS:-tributary kafka}"
N_SMALL="${BENCH_SMALL_RECORDS:-$(q 1000000 200000)}"
S_SMALL="${BENCH_SMALL_SIZE:-100}"
N_LARGE="${BENCH_LARGE_RECORDS:-$(q 300000 50000)}"
S_LARGE="${BENCH_LARGE_SIZE:-1024}"
PARTS="${BENCH_PARTITIONS:-6}"
LAT_RATE="${BENCH_LAT_RATE:-5000}"
LAT_SECS="${BENCH_LAT_SECS:-$(q 20 5)}"
LAT_SIZE="${BENCH_LAT_SIZE:-1024}"
LAT_ACKS="${BENCH_LAT_ACKS:-all}"
RECOVERY_MB="${BENCH_RECOVERY_MB:-$(q 1024 128)}"
ONLY="${BENCH_ONLY:-all}"
[[ "$ONLY" == all || "$ONLY" == groups ]] || { echo "BENCH_ONLY must be all or groups, got $ONLY" >&2; exit 1; }
[[ "$ONLY" == groups ]] && RECOVERY_MB=0
G_MEMBERS="${BENCH_GROUP_MEMBERS:-10}"
G_PARTS="${BENCH_GROUP_PARTITIONS:-60}"
G_RECORDS="${BENCH_GROUP_RECORDS:-$(q 1000000 200000)}"
G_SIZE="${BENCH_GROUP_SIZE:-100}"
# Same for both brokers (hack/kafka-ref.sh writes 0 into Kafka's server.properties; Tributary's default is 3000).
GROUP_DELAY_PROP="group.initial.rebalance.delay.ms=0"
KAFKA_RECOVERY="${BENCH_KAFKA_RECOVERY:-0}"
IDLE_SECS="${BENCH_IDLE_SECS:-$(q 5 2)}"
WARMUP="${BENCH_WARMUP_RECORDS:-$(q 200000 50000)}"
RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-$(q 900 240)}"
START_TIMEOUT="${BENCH_START_TIMEOUT:-60}"
RECOVERY_TIMEOUT="${BENCH_RECOVERY_TIMEOUT:-600}"
TOOL_HEAP="${BENCH_TOOL_HEAP:--Xmx1g}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"; export KAFKA_VERSION
STAMP="$(date -u +%Y-%m-%d)"
RESULTS="${BENCH_RESULTS:-$HERE/bench/results/$STAMP$( [[ "$QUICK" == 1 ]] && echo -quick).md}"
if [[ -z "${BENCH_RESULTS:-}" && -e "$RESULTS" ]]; then
  RESULTS="${RESULTS%.md}-$(date -u +%H%M%S).md"
fi
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tributary-bench.XXXXXX)}"
mkdir -p "$WORK" "$(dirname "$RESULTS")"

declare -A R=()        # R[target.metric]=value
declare -A NOTE=()     # NOTE[target]="; "-joined notes
CMDS=()                # command lines, in order
TRIB_PID=""            # running tributary pid (for cleanup)
START_FAIL=""          # why the last broker_start failed
KAFKA_DIRS=()          # kafka-ref data dirs (for cleanup)

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
note() { NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"; log "note ($1): $2"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local d
  if [[ -n "$TRIB_PID" ]] && kill -0 "$TRIB_PID" 2>/dev/null; then kill -KILL "$TRIB_PID" 2>/dev/null; fi
  for d in "${KAFKA_DIRS[@]}"; do "$KREF" stop "$d" >/dev/null 2>&1 || true; done
  if [[ "${BENCH_KEEP:-0}" != 1 && -z "${BENCH_WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- client (hack/bench-lib.sh) ---------------------------------------------------------------------
# shellcheck source=hack/bench-lib.sh
source "$HERE/bench-lib.sh"

# --- brokers --------------------------------------------------------------------------------------
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
    TRIB_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/tributary-broker"
  fi
  [[ -x "$TRIB_BIN" ]] || { TRIB_STATUS="binary not found/executable: $TRIB_BIN"; return 1; }
  return 0
}

# start_tributary DIR TIMEOUT [CONFIG] -> TRIB_PID, START_MS, BS; returns 1 if not ready.
start_tributary() {
  local dir="$1" tmo="$2" conf="${3:-}" args=()
  [[ -n "$conf" ]] && args+=(--config "$conf")
  if ! BROKER_START_TIMEOUT="$tmo" start_broker "$TRIB_BIN" "$dir" "${args[@]}"; then
    START_FAIL="$BROKER_ERROR: $(tail -n 3 "$BROKER_LOG" | tr '\n' ' ' | cut -c1-300)"
    log "tributary $START_FAIL"
    CMDS+=("$(printf '%q ' "${BROKER_CMD[@]}")")
    TRIB_PID=""; return 1
  fi
  CMDS+=("$(printf '%q ' "${BROKER_CMD[@]}")")
  log "+ ${CMDS[-1]}"
  TRIB_PID="$BROKER_PID" START_MS="$BROKER_READY_MS" BS="$BROKER_KAFKA"
}

stop_tributary() {
  [[ -n "$TRIB_PID" ]] || return 0
  stop_broker   # TRIB_PID is start_broker's BROKER_PID
  TRIB_PID=""
}

kill9_tributary() {
  [[ -n "$TRIB_PID" ]] || return 0
  kill -KILL "$TRIB_PID" 2>/dev/null; wait "$TRIB_PID" 2>/dev/null; TRIB_PID=""
}

# generic broker control: broker_start TARGET DIR TIMEOUT [CONFIG] -> PID, START_MS, BS
broker_start() {
  local t="$1" dir="$2" tmo="$3" conf="${4:-}"
  if [[ "$t" == tributary ]]; then
    start_tributary "$dir" "$tmo" "$conf" || return 1
    PID="$TRIB_PID"
  else
    # Apache Kafka advertises the port it is configured with, so it needs a real one up front (racy).
    local port; port="$(free_port)"
    BS="127.0.0.1:$port"
    KAFKA_DIRS+=("$dir")
    local args=(start "$port" "$dir"); [[ -n "$conf" ]] && args+=("$conf")
    CMDS+=("hack/kafka-ref.sh ${args[*]}")
    log "+ hack/kafka-ref.sh ${args[*]}"
    PID="$(KAFKA_REF_START_TIMEOUT="$tmo" "$KREF" "${args[@]}" 2>"$dir.start.err")" || {
      START_FAIL="kafka-ref start failed: $(tail -n 5 "$dir.start.err" | tr '\n' ' ' | cut -c1-300)"; log "$START_FAIL"; return 1; }
    # shellcheck disable=SC2034 # startup.env sets all three; CONTROLLER_PORT is not needed here
    local PORT_MS READY_MS CONTROLLER_PORT
    # shellcheck disable=SC1091 # written by hack/kafka-ref.sh start
    source "$dir/startup.env"
    START_MS="$PORT_MS"; KAFKA_READY_MS="$READY_MS"
  fi
}
broker_stop() { if [[ "$1" == tributary ]]; then stop_tributary; else "$KREF" stop "$2"; fi; }
broker_kill9() {
  if [[ "$1" == tributary ]]; then kill9_tributary
  else local p; p="$("$KREF" status "$2")" && { kill -KILL "$p"; local i; for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; }
  fi
}
data_mib() { du -sm "$1" 2>/dev/null | awk '{print $1}'; }

# --- one target -----------------------------------------------------------------------------------
bench_target() {
  local t="$1"
  local dir="$WORK/$t"
  rm -rf "$dir"; mkdir -p "$dir"
  log "=== $t: starting"
  local conf=""
  if [[ "$t" == tributary ]]; then
    # Same group.initial.rebalance.delay.ms as kafka-ref.sh gives Kafka (Tributary's default is 3000).
    conf="$WORK/$t/groups.properties"; printf '%s\n' "$GROUP_DELAY_PROP" >"$conf"
    # Extra broker properties for this run, e.g. Kafka's flush behaviour for an apples-to-apples comparison:
    # BENCH_TRIBUTARY_PROPS='log.flush.interval.messages=9223372036854775807'
    if [[ -n "${BENCH_TRIBUTARY_PROPS:-}" ]]; then
      tr ';' '\n' <<<"$BENCH_TRIBUTARY_PROPS" >>"$conf"
      note "$t" "extra broker properties: $BENCH_TRIBUTARY_PROPS"
    fi
  fi
  if ! broker_start "$t" "$dir/main" "$START_TIMEOUT" "$conf"; then
    if [[ -n "$conf" ]]; then
      note "$t" "did not start with --config $conf ($GROUP_DELAY_PROP): $START_FAIL; starting without it (its group.initial.rebalance.delay.ms default applies)"
      broker_start "$t" "$dir/main" "$START_TIMEOUT" || { note "$t" "broker did not start: $START_FAIL"; return 1; }
    else
      note "$t" "broker did not start: $START_FAIL"; return 1
    fi
  fi
  R[$t.start_ms]="$START_MS"
  [[ "$t" == kafka ]] && note kafka "start-up: port accepts after ${START_MS} ms, 'Kafka Server started' after ${KAFKA_READY_MS} ms (exec of kafka.Kafka, excludes StorageTool format)"
  sleep "$IDLE_SECS"
  R[$t.rss]="$(rss_mib "$PID")"

  # Smoke test so that a broken broker fails fast instead of hitting every timeout.
  if ! ( RUN_TIMEOUT=60; produce "$t" smoke "$BS" bench-smoke 100 100 1 -1 ); then
    note "$t" "smoke produce (100 records) failed; skipping the load"
    broker_stop "$t" "$dir/main"; return 1
  fi
  # Warm-up (JIT, page cache, segment creation), same for every broker; not reported.
  if [[ "$ONLY" == all ]] && (( WARMUP > 0 )); then
    create_topic "$t" "$BS" bench-warmup
    produce "$t" warmup "$BS" bench-warmup "$WARMUP" 512 1 -1 || note "$t" "warm-up failed"
  fi

  local spec key size n acks specs=()
  [[ "$ONLY" == all ]] && specs=("p100-a1 $S_SMALL $N_SMALL 1" "p100-all $S_SMALL $N_SMALL all" \
                                 "p1k-a1 $S_LARGE $N_LARGE 1" "p1k-all $S_LARGE $N_LARGE all")
  for spec in "${specs[@]}"; do
    read -r key size n acks <<<"$spec"
    kill -0 "$PID" 2>/dev/null || { note "$t" "broker died before $key"; break; }
    create_topic "$t" "$BS" "bench-$key"
    produce "$t" "$key" "$BS" "bench-$key" "$n" "$size" "$acks" -1
  done
  if [[ "$ONLY" == groups ]]; then
    :
  elif kill -0 "$PID" 2>/dev/null; then
    # Group-free reads first (the comparable measurement: both brokers in the same state), then the
    # group-based ConsumerPerformance (fails on Tributary until it has consumer groups).
    consume_assign "$t" a100 "$BS" bench-p100-a1 "$N_SMALL"
    consume_assign "$t" a1k "$BS" bench-p1k-a1 "$N_LARGE"
    consume "$t" c100 "$BS" bench-p100-a1 "$N_SMALL"
    consume "$t" c1k "$BS" bench-p1k-a1 "$N_LARGE"
    create_topic "$t" "$BS" bench-lat
    produce "$t" lat "$BS" bench-lat $(( LAT_RATE * LAT_SECS )) "$LAT_SIZE" "$LAT_ACKS" "$LAT_RATE"
  else
    note "$t" "broker died during the produce runs"
  fi
  # Consumer group: G_MEMBERS members on a G_PARTS-partition topic pre-filled with G_RECORDS records.
  if kill -0 "$PID" 2>/dev/null; then
    create_topic "$t" "$BS" bench-group "$G_PARTS"
    if produce "$t" gload "$BS" bench-group "$G_RECORDS" "$G_SIZE" 1 -1; then
      consume_group "$t" grp "$BS" bench-group "$G_RECORDS"
    else
      note "$t" "consumer group: pre-filling bench-group failed"
    fi
  else
    note "$t" "broker died before the consumer-group section"
  fi
  R[$t.data_mib]="$(data_mib "$dir/main")"
  R[$t.hwm]="$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status" 2>/dev/null)"
  R[$t.rss_end]="$(rss_mib "$PID")"
  broker_stop "$t" "$dir/main"
  [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$dir/main/data" "$dir/main/logs"
  return 0
}

bench_recovery() {
  local t="$1"
  local dir="$WORK/$t/recovery" conf n
  (( RECOVERY_MB > 0 )) || return 0
  mkdir -p "$dir"; conf="$WORK/$t/no-fsync.properties"
  printf 'log.flush.interval.messages=9223372036854775807\n' >"$conf"
  log "=== $t: recovery of ~${RECOVERY_MB} MiB unflushed log"
  if ! broker_start "$t" "$dir" "$START_TIMEOUT" "$conf"; then
    if [[ "$t" == tributary ]]; then
      note "$t" "did not start with --config $conf (log.flush.interval.messages=9223372036854775807): $START_FAIL; measuring recovery without --config"
      conf=""
      broker_start "$t" "$dir" "$START_TIMEOUT" || { note "$t" "recovery: broker did not start"; return 1; }
    else
      note "$t" "recovery: broker did not start"; return 1
    fi
  fi
  n=$(( RECOVERY_MB * 1024 ))
  create_topic "$t" "$BS" bench-recovery
  produce "$t" rec-load "$BS" bench-recovery "$n" 1024 1 -1 || { note "$t" "recovery: load failed"; broker_stop "$t" "$dir"; return 1; }
  R[$t.rec_mib]="$(data_mib "$dir")"
  log "$t: kill -9 with ${R[$t.rec_mib]} MiB in $dir"
  CMDS+=("kill -9 <broker pid>")
  broker_kill9 "$t" "$dir"
  if broker_start "$t" "$dir" "$RECOVERY_TIMEOUT" "$conf"; then
    R[$t.rec_ms]="$START_MS"
    [[ "$t" == kafka ]] && R[$t.rec_ms]="$KAFKA_READY_MS"
    # How many records are visible after the restart (sum of end offsets).
    if run "$t-rec-offsets" 120 "${TOOL[@]}" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BS" --topic bench-recovery; then
      R[$t.rec_records]="$(awk -F: '{ s += $NF } END { print s + 0 }' "$WORK/$t-rec-offsets.out")"
      R[$t.rec_expected]="$n"
    fi
    broker_stop "$t" "$dir"
  else
    note "$t" "recovery: broker not ready within ${RECOVERY_TIMEOUT}s after kill -9"
  fi
  [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$dir/data" "$dir/logs"
}

# --- run ------------------------------------------------------------------------------------------
T_BEGIN="$(now_ms)"
LOAD_BEGIN="$(cut -d' ' -f1-3 /proc/loadavg)"
for t in $TARGETS; do
  case "$t" in
    tributary)
      if prepare_tributary; then
        if bench_target tributary; then bench_recovery tributary
        else note tributary "recovery skipped (broker unusable)"; fi
      else
        note tributary "$TRIB_STATUS"
      fi ;;
    kafka)
      bench_target kafka && [[ "$KAFKA_RECOVERY" == 1 ]] && bench_recovery kafka ;;
    *) die "unknown target $t" ;;
  esac
done

# --- report ---------------------------------------------------------------------------------------
val() { local v="${R[$1]:-}"; echo "${v:-n/a}"; }
ratio() { # a b
  awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
row() { # LABEL KEY BETTER
  local a b; a="$(val "tributary.$2")"; b="$(val "kafka.$2")"
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$a" "$b" "$(ratio "$a" "$b")" "$3"
}
fmt_n() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }

{
  echo "# Tributary vs Apache Kafka $KAFKA_VERSION — $( [[ "$QUICK" == 1 ]] && echo "quick" || echo "full") benchmark"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); repo commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(uname -r); $(java -version 2>&1 | head -n 1)"
  echo "- tributary: ${TRIB_BIN:-n/a}${TRIB_STATUS:+ ($TRIB_STATUS)}"
  echo "- kafka: $KAFKA_VERSION via hack/kafka-ref.sh (KRaft combined, ${KAFKA_REF_HEAP:--Xms1g -Xmx1g}, G1)"
  echo "- client: kafka-tools $KAFKA_VERSION ProducerPerformance/ConsumerPerformance and hack/bench/AssignConsumerPerf.java, hack/bench/GroupPerf.java (kafka-clients $KAFKA_VERSION), JVM $TOOL_HEAP, default client config + acks; client and broker share the machine"
  [[ "$ONLY" == all ]] && echo "- warm-up before the load: $WARMUP x 512 B, acks=1 (not reported)"
  echo "- consumer group: $G_MEMBERS members (+1), hack/bench/GroupPerf.java, group.protocol=classic, RangeAssignor (eager), default session/heartbeat settings, auto.offset.reset=earliest; topic with $G_PARTS partitions pre-filled with $(fmt_n "$G_RECORDS") x ${G_SIZE} B (acks=1); both brokers with $GROUP_DELAY_PROP"
  [[ "$ONLY" == groups ]] && echo "- BENCH_ONLY=groups: only the consumer-group section (no warm-up)"
  [[ "$ONLY" == all ]] && echo "- load: $(fmt_n "$N_SMALL") x ${S_SMALL} B and $(fmt_n "$N_LARGE") x ${S_LARGE} B records, topics with $PARTS partitions (RF 1); latency: ${LAT_RATE} rec/s x ${LAT_SECS} s, ${LAT_SIZE} B, acks=$LAT_ACKS"
  echo "- total wall time: $(( ($(now_ms) - T_BEGIN) / 1000 )) s; load average at start: $LOAD_BEGIN, at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
  echo
  if [[ "$ONLY" == all ]]; then
  echo "| Metric | Tributary | Kafka | Tributary / Kafka | better |"
  echo "|---|---:|---:|---:|---|"
  row "Produce ${S_SMALL} B acks=1, records/s" p100-a1.rps higher
  row "Produce ${S_SMALL} B acks=1, MB/s" p100-a1.mbps higher
  row "Produce ${S_SMALL} B acks=all, records/s" p100-all.rps higher
  row "Produce ${S_SMALL} B acks=all, MB/s" p100-all.mbps higher
  row "Produce ${S_LARGE} B acks=1, records/s" p1k-a1.rps higher
  row "Produce ${S_LARGE} B acks=1, MB/s" p1k-a1.mbps higher
  row "Produce ${S_LARGE} B acks=all, records/s" p1k-all.rps higher
  row "Produce ${S_LARGE} B acks=all, MB/s" p1k-all.mbps higher
  row "Produce ${S_LARGE} B acks=1, p99 ms (unthrottled)" p1k-a1.p99 lower
  row "Consume ${S_SMALL} B (assign, no group), records/s" a100.rps higher
  row "Consume ${S_SMALL} B (assign, no group), MB/s" a100.mbps higher
  row "Consume ${S_SMALL} B (assign, no group), records/s after the first record" a100.frps higher
  row "Consume ${S_SMALL} B (assign, no group), time to first record ms" a100.first lower
  row "Consume ${S_SMALL} B (assign, no group), records read (of $N_SMALL)" a100.records -
  row "Consume ${S_LARGE} B (assign, no group), records/s" a1k.rps higher
  row "Consume ${S_LARGE} B (assign, no group), MB/s" a1k.mbps higher
  row "Consume ${S_LARGE} B (assign, no group), records/s after the first record" a1k.frps higher
  row "Consume ${S_LARGE} B (assign, no group), time to first record ms" a1k.first lower
  row "Consume ${S_LARGE} B (assign, no group), records read (of $N_LARGE)" a1k.records -
  row "Consume ${S_SMALL} B, records/s (fetch phase)" c100.rps higher
  row "Consume ${S_SMALL} B, MB/s (fetch phase)" c100.mbps higher
  row "Consume ${S_LARGE} B, records/s (fetch phase)" c1k.rps higher
  row "Consume ${S_LARGE} B, MB/s (fetch phase)" c1k.mbps higher
  row "Consume ${S_LARGE} B, records/s (incl. group join)" c1k.total_rps higher
  row "Consumer group join (rebalance) ms" c1k.join lower
  row "Latency @${LAT_RATE}/s: achieved records/s" lat.rps higher
  row "Latency @${LAT_RATE}/s: p50 ms" lat.p50 lower
  row "Latency @${LAT_RATE}/s: p99 ms" lat.p99 lower
  row "Latency @${LAT_RATE}/s: p99.9 ms" lat.p999 lower
  row "Latency @${LAT_RATE}/s: max ms" lat.max lower
  row "Idle RSS after start, MiB" rss lower
  row "RSS after the load, MiB" rss_end lower
  row "Peak RSS (VmHWM) over the run, MiB" hwm lower
  row "Start-up ms (exec → /readyz 200 / Kafka port accepts)" start_ms lower
  row "On-disk data after the load, MiB" data_mib lower
  fi
  if (( RECOVERY_MB > 0 )); then
    row "Recovery: unflushed data at kill -9, MiB" rec_mib -
    row "Recovery: restart → ready after kill -9, ms" rec_ms lower
    row "Recovery: records visible after restart" rec_records higher
    row "Recovery: records produced" rec_expected -
  fi
  echo
  echo "Ratios are Tributary / Kafka; \"better\" says which direction is good. n/a: not measured or failed (see notes)."
  if [[ "$ONLY" == all ]]; then
  echo "\"assign, no group\" rows: hack/bench/AssignConsumerPerf.java (KafkaConsumer, assign() of all partitions + seekToBeginning, no group.id, default client config), reading the topics of the acks=1 produce rows; records/s and MB/s span metadata request → last record (connection set-up, offset reset and client warm-up included, as in time to first record); \"after the first record\" is the steady fetch phase only."
  echo "ConsumerPerformance rates exclude the group join (fetch.* columns) unless stated."
  [[ "$KAFKA_RECOVERY" == 1 ]] || echo "Recovery is measured for Tributary only (BENCH_KAFKA_RECOVERY=1 adds Kafka)."
  fi
  echo
  echo "## Consumer group, N=$G_MEMBERS members, $G_PARTS partitions"
  echo
  echo "| Metric | Tributary | Kafka | Tributary / Kafka | better |"
  echo "|---|---:|---:|---:|---|"
  row "Initial join (first subscribe → all $G_MEMBERS assigned, every partition once), ms" grp.join lower
  row "Rebalance on +1 member (subscribe → all $(( G_MEMBERS + 1 )) assigned), ms" grp.rebalance lower
  row "Group consume ${G_SIZE} B, records/s" grp.rps higher
  row "Group consume ${G_SIZE} B, MB/s" grp.mbps higher
  row "Group consume: distinct records read (of $G_RECORDS)" grp.records -
  row "Group consume: records delivered twice" grp.dups lower
  row "Produce ${G_SIZE} B acks=1 into the $G_PARTS-partition topic, records/s" gload.rps higher
  if [[ "$ONLY" == groups ]]; then
    row "Idle RSS after start, MiB" rss lower
    row "Peak RSS (VmHWM) over the run, MiB" hwm lower
  fi
  echo
  echo "GroupPerf (hack/bench/GroupPerf.java): $G_MEMBERS KafkaConsumer threads, same group.id, group.protocol=classic, partition.assignment.strategy=RangeAssignor, auto.offset.reset=earliest, otherwise default config (session.timeout.ms 45000, heartbeat.interval.ms 3000, auto-commit on). Join: first subscribe() → every member has an assignment of the same generation covering each partition exactly once (partitions stay paused until then). Consume: resume → the $(fmt_n "$G_RECORDS")th distinct record (duplicates checked per partition/offset across members). Rebalance: the extra member's subscribe() → all $(( G_MEMBERS + 1 )) members stable in a newer generation (eager protocol: includes the members' wait for their next heartbeat, up to heartbeat.interval.ms, and their offset commit before revoking). Both brokers: $GROUP_DELAY_PROP."
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
if [[ "$CLIENT_KIND" == both ]]; then
  log "light-client rows: hack/bench-light.sh"
  TRIBUTARY_BIN="${TRIB_BIN:-${TRIBUTARY_BIN:-}}" BENCH_RESULTS="" BENCH_WORK="" "$HERE/bench-light.sh" \
    || log "hack/bench-light.sh failed"
fi
exit 0
