#!/usr/bin/env bash
# Tributary vs Apache Kafka with a light client: librdkafka's own load tool, rdkafka_performance (built from the
# librdkafka tree that the rdkafka-sys crate bundles, by hack/librdkafka.sh perf-tool), so that the broker and
# not a JVM client is what is measured. hack/bench.sh runs it after its Java rows (BENCH_CLIENT=light runs only
# this; it can also be run directly).
#
# This is a benchmark, not a test: it exits 0 once a report was written (1 only for setup errors), and a broker
# that fails shows "n/a" in its column.
#
# Pinning: with two or more cores the broker (every thread, taskset -a) runs on BENCH_BROKER_CPUS (default 0)
# and every client process on BENCH_CLIENT_CPUS (default 1), so neither steals the other's core. The broker's
# CPU seconds (utime + stime from /proc/PID/stat, all threads) are read around each row and reported per
# million records; the 1-minute load average is printed per row.
#
# Targets, in this order, each with a fresh data directory: tributary ($TRIBUTARY_BIN, or
# `cargo build --release -p tributary-broker`; its durable default: fsync before acknowledging) and kafka
# (hack/kafka-ref.sh, Apache Kafka $KAFKA_VERSION single-node KRaft, its defaults: no fsync). Both brokers get
# log.retention.check.interval.ms=$BENCH_LIGHT_RETENTION_CHECK_MS so the retention row sees segments deleted.
#
# Rows (each on its own topic of BENCH_PARTITIONS=6 partitions, RF 1, created with Kafka's TopicCommand):
#   produce 100 B and 1 KiB at acks=1 and acks=all, unthrottled (rdkafka_performance -P, default client config:
#     linger.ms 5, no idempotence)
#   consume both acks=1 topics from the beginning (rdkafka_performance -G: a consumer group of one with a new
#     group id, auto.offset.reset=earliest; the tool's rate runs from the first record to the last, so the join
#     is left out). Not -C: its per-partition start races the first metadata answer, and partitions that lose
#     wait for a 500 ms offset-query timer while the others long-poll at their end, about 1 s added to a
#     sub-second row at random (seen on Tributary, whose metadata answers fastest)
#   the 100 B consume row again with the client's prefetch bounded (queued.max.messages.kbytes=8192,
#     fetch.queue.backoff.ms=1), and for every consume row the client's CPU seconds and minor page faults
#     (GNU time): the client's fetch and application threads share one core, so its own memory work shows
#   latency: 1 KiB acks=all at a fixed BENCH_LAT_RATE=5000 records/s for BENCH_LAT_SECS=20 s, per-record delivery
#     latency as p50/p99/p99.9/max, at librdkafka's default linger.ms (5) and at linger.ms=0 (where the broker's
#     own share is not hidden under the client's batching delay); hack/bench/rate_producer.c, compiled against
#     the same librdkafka (rdkafka_performance's -r/-l modes busy-wait and misread send times, see that file)
#   many producers: BENCH_MANY_PRODUCERS=50 client instances at once (rate_producer: one rd_kafka_t, so its own
#     connection, each), each 1 KiB acks=all at BENCH_MANY_RATE=100 records/s for BENCH_LAT_SECS, latency
#     across all of them
#   retention: 1 KiB acks=1 into a topic with retention.bytes=BENCH_RETENTION_MB MiB and
#     segment.bytes=BENCH_SEGMENT_MB MiB per partition, BENCH_RETENTION_FILL times the limit, then the size on
#     disk after two retention checks
#
# Environment: BENCH_TARGETS="tributary kafka", BENCH_SMALL_RECORDS=2000000 [400000] (100 B),
# BENCH_LARGE_RECORDS=500000 [100000] (1 KiB), BENCH_WARMUP_RECORDS=200000 [50000] (512 B acks=1, not reported),
# BENCH_RUN_TIMEOUT=600 [240] seconds per client run, BENCH_QUICK=1 (values in brackets; latency 5 s),
# BENCH_RESULTS=hack/bench/results/<date>-light[-quick].md, BENCH_WORK, BENCH_KEEP=1, TRIBUTARY_BIN,
# BENCH_NO_BUILD=1, BENCH_TRIBUTARY_PROPS='k=v;k=v' (more Tributary broker properties, e.g. Kafka's flush policy:
# log.flush.interval.messages=9223372036854775807), KAFKA_VERSION and KAFKA_REF_*: see hack/kafka-ref.sh.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
KREF="$HERE/kafka-ref.sh"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"

QUICK="${BENCH_QUICK:-0}"
q() { if [[ "$QUICK" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
TARGETS="${BENCH_TARGETS:-tributary kafka}"
N_SMALL="${BENCH_SMALL_RECORDS:-$(q 2000000 400000)}"
N_LARGE="${BENCH_LARGE_RECORDS:-$(q 500000 100000)}"
WARMUP="${BENCH_WARMUP_RECORDS:-$(q 200000 50000)}"
PARTS="${BENCH_PARTITIONS:-6}"
LAT_RATE="${BENCH_LAT_RATE:-5000}"
LAT_SECS="${BENCH_LAT_SECS:-$(q 20 5)}"
MANY="${BENCH_MANY_PRODUCERS:-50}"
MANY_RATE="${BENCH_MANY_RATE:-100}"
RETENTION_MB="${BENCH_RETENTION_MB:-$(q 64 16)}"
SEGMENT_MB="${BENCH_SEGMENT_MB:-$(q 16 4)}"
RETENTION_FILL="${BENCH_RETENTION_FILL:-3}"
RETENTION_CHECK_MS="${BENCH_LIGHT_RETENTION_CHECK_MS:-5000}"
RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-$(q 600 240)}"
BROKER_CPUS="${BENCH_BROKER_CPUS:-0}"
CLIENT_CPUS="${BENCH_CLIENT_CPUS:-1}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"; export KAFKA_VERSION
STAMP="$(date -u +%Y-%m-%d)"
RESULTS="${BENCH_RESULTS:-$HERE/bench/results/$STAMP-light$( [[ "$QUICK" == 1 ]] && echo -quick).md}"
if [[ -z "${BENCH_RESULTS:-}" && -e "$RESULTS" ]]; then RESULTS="${RESULTS%.md}-$(date -u +%H%M%S).md"; fi
WORK="${BENCH_WORK:-$(mktemp -d /tmp/tributary-bench-light.XXXXXX)}"
mkdir -p "$WORK" "$(dirname "$RESULTS")"
CLK_TCK="$(getconf CLK_TCK)"

declare -A R=() NOTE=()
CMDS=() KAFKA_DIRS=()
log() { printf '[bench-light %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
note() { NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"; log "note ($1): $2"; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local d
  [[ -z "${BROKER_PID:-}" ]] || stop_broker >/dev/null 2>&1 || true
  for d in "${KAFKA_DIRS[@]}"; do "$KREF" stop "$d" >/dev/null 2>&1 || true; done
  if [[ "${BENCH_KEEP:-0}" != 1 && -z "${BENCH_WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------------------------
PINNED=0
if (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then PINNED=1; fi
# Every client runs under GNU time when it is installed (Debian package `time`), which writes the client's user
# and system CPU seconds and minor page faults to $CLIENT_TIME for measure().
CLIENT_TIME=""
client() {
  local timed=()
  [[ -z "$CLIENT_TIME" || ! -x /usr/bin/time ]] || timed=(/usr/bin/time -o "$CLIENT_TIME" -f '%U %S %R')
  if (( PINNED )); then "${timed[@]}" taskset -c "$CLIENT_CPUS" "$@"; else "${timed[@]}" "$@"; fi
}
pin_broker() { (( PINNED )) && taskset -a -p -c "$BROKER_CPUS" "$1" >/dev/null; return 0; }

if [[ ! -x /usr/bin/time ]] && command -v apt-get >/dev/null; then
  log "apt-get install time (GNU time: the clients' CPU seconds and page faults)"
  { [[ $(id -u) -eq 0 ]] || SUDO=sudo; ${SUDO:-} apt-get install -y -qq time >/dev/null 2>&1; } \
    || log "no GNU time: the client CPU and page-fault rows will say n/a"
fi
log "building librdkafka's rdkafka_performance (cached after the first run)"
PERF="$("$HERE/librdkafka.sh" perf-tool)" || die "hack/librdkafka.sh perf-tool failed"
# rate_producer.c against the librdkafka tree the load tool was built from, cached by the source's checksum.
LIBRDKAFKA_TREE="$(cd "$(dirname "$PERF")/.." && pwd)"
RATE_SRC="$HERE/bench/rate_producer.c"
RATE_BIN="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/bench-light/rate_producer-$(cat "$RATE_SRC" "$LIBRDKAFKA_TREE/src/rdkafka.h" | sha256sum | cut -c1-12)"
if [[ ! -x "$RATE_BIN" ]]; then
  mkdir -p "$(dirname "$RATE_BIN")"
  gcc -O2 -pthread -I"$LIBRDKAFKA_TREE/src" "$RATE_SRC" -o "$RATE_BIN.tmp" "$LIBRDKAFKA_TREE/src/librdkafka.a" \
    -lm -lzstd -lssl -lcrypto -lz -ldl -lpthread -lrt 2>"$WORK/rate_producer.gcc.log" \
    || die "compiling $RATE_SRC failed: $(grep -m1 error "$WORK/rate_producer.gcc.log")"
  mv "$RATE_BIN.tmp" "$RATE_BIN"
fi
log "resolving Kafka $KAFKA_VERSION jars (cached after the first run)"
CP="$("$KREF" classpath)" || die "hack/kafka-ref.sh classpath failed"
L4J="$("$KREF" log4j)" || die "hack/kafka-ref.sh log4j failed"

TRIB_BIN="${TRIBUTARY_BIN:-}"
if [[ -z "$TRIB_BIN" && "${BENCH_NO_BUILD:-0}" != 1 && " $TARGETS " == *" tributary "* ]]; then
  log "building tributary-broker (release)"
  (cd "$ROOT" && cargo build --release -q -p tributary-broker) || die "cargo build failed"
  TRIB_BIN="$(cargo_target_dir "$ROOT")/release/tributary-broker"
fi

# cpu_ticks PID: user + system clock ticks of every thread of PID so far (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }

create_topic() { # NAME [CONFIG=VALUE...]
  local name="$1" args=() c; shift
  for c in "$@"; do args+=(--config "$c"); done
  client timeout 120 java -Xmx256m "-Dlog4j2.configurationFile=$L4J" -Dkafka.ref.log.level=WARN -cp "$CP" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$BS" --create --topic "$name" \
    --partitions "$PARTS" --replication-factor 1 "${args[@]}" >>"$WORK/$T-topics.log" 2>&1
}

# measure T KEY RECORDS CMD...: runs CMD (a client, pinned) and records the broker's CPU seconds, CPU seconds
# per million RECORDS and the load average into R[T.KEY.*]. Output in $WORK/T-KEY.out.
measure() {
  local t="$1" key="$2" records="$3" before after rc=0; shift 3
  CMDS+=("$(printf '%q ' "$@")")
  before="$(cpu_ticks "$PID")"
  CLIENT_TIME="$WORK/$t-$key.time"; rm -f "$CLIENT_TIME"
  "$@" >"$WORK/$t-$key.out" 2>&1 || rc=$?
  after="$(cpu_ticks "$PID")"
  if [[ -s "$CLIENT_TIME" ]]; then
    read -r R[$t.$key.client_user] R[$t.$key.client_sys] R[$t.$key.client_minflt] < <(tail -n 1 "$CLIENT_TIME")
    R[$t.$key.client_cpu]="$(awk -v u="${R[$t.$key.client_user]}" -v s="${R[$t.$key.client_sys]}" 'BEGIN { printf "%.2f", u + s }')"
  fi
  CLIENT_TIME=""
  R[$t.$key.cpu]="$(awk -v a="$before" -v b="$after" -v h="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / h }')"
  R[$t.$key.cpu_m]="$(awk -v c="${R[$t.$key.cpu]}" -v n="$records" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n }')"
  R[$t.$key.load]="$(cut -d' ' -f1 /proc/loadavg)"
  (( rc == 0 )) || note "$t" "$key: client exited $rc: $(tail -n 2 "$WORK/$t-$key.out" | tr '\n' ' ' | cut -c1-200)"
  return "$rc"
}

perf() { client timeout -k 5 "$RUN_TIMEOUT" "$PERF" -b "$BS" -q "$@"; }

# "% N messages produced (B bytes), D delivered (offset O, F failed) in T ms: R msgs/s and M MB/s, ..."
parse_produce() { # T KEY
  local line; line="$(grep -E '^% [0-9]+ messages produced' "$WORK/$1-$2.out" | tail -n 1)"
  [[ -n "$line" ]] || return 0
  R[$1.$2.rps]="$(sed -nE 's/.* ([0-9]+) msgs\/s and.*/\1/p' <<<"$line")"
  R[$1.$2.mbps]="$(sed -nE 's/.* msgs\/s and ([0-9.]+) MB\/s.*/\1/p' <<<"$line")"
  R[$1.$2.failed]="$(sed -nE 's/.*, ([0-9]+) failed\).*/\1/p' <<<"$line")"
}

# "% N messages (B bytes) consumed in T ms: R msgs/s (M MB/s)"
parse_consume() { # T KEY
  local line; line="$(grep -E '^% [0-9]+ messages \([0-9]+ bytes\) consumed' "$WORK/$1-$2.out" | tail -n 1)"
  [[ -n "$line" ]] || return 0
  R[$1.$2.records]="$(sed -nE 's/^% ([0-9]+) messages.*/\1/p' <<<"$line")"
  R[$1.$2.rps]="$(sed -nE 's/.*: ([0-9]+) msgs\/s.*/\1/p' <<<"$line")"
  R[$1.$2.mbps]="$(sed -nE 's/.*msgs\/s \(([0-9.]+) MB\/s\).*/\1/p' <<<"$line")"
}

# latencies T KEY FILE...: per-record latencies in microseconds, one per line -> p50/p99/p99.9/max in ms.
latencies() {
  local t="$1" key="$2"; shift 2
  local stats
  stats="$(cat "$@" 2>/dev/null | sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) exit
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
      i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
      printf "%d %.2f %.2f %.2f %.2f", NR, v[i50] / 1000, v[i99] / 1000, v[i999] / 1000, v[NR] / 1000 }')"
  [[ -n "$stats" ]] || return 0
  read -r R[$t.$key.samples] R[$t.$key.p50] R[$t.$key.p99] R[$t.$key.p999] R[$t.$key.max] <<<"$stats"
}


# --- one target -----------------------------------------------------------------------------------------------
start_target() { # T DIR
  local t="$1" dir="$2" conf="$2.properties"
  printf 'log.retention.check.interval.ms=%s\ngroup.initial.rebalance.delay.ms=0\n' "$RETENTION_CHECK_MS" >"$conf"
  if [[ "$t" == tributary ]]; then
    [[ -z "${BENCH_TRIBUTARY_PROPS:-}" ]] || tr ';' '\n' <<<"$BENCH_TRIBUTARY_PROPS" >>"$conf"
    [[ -x "$TRIB_BIN" ]] || { note "$t" "no broker binary (TRIBUTARY_BIN or a release build)"; return 1; }
    BROKER_START_TIMEOUT=60 start_broker "$TRIB_BIN" "$dir" --config "$conf" || { note "$t" "did not start: $BROKER_ERROR"; return 1; }
    CMDS+=("$(printf '%q ' "${BROKER_CMD[@]}")")
    PID="$BROKER_PID" BS="$BROKER_KAFKA" DATA="$dir/data"
  else
    local port; port="$(free_port)"
    BS="127.0.0.1:$port" DATA="$dir/logs"
    KAFKA_DIRS+=("$dir")
    CMDS+=("hack/kafka-ref.sh start $port $dir $conf")
    PID="$("$KREF" start "$port" "$dir" "$conf" 2>"$dir.start.err")" \
      || { note "$t" "did not start: $(tail -n 3 "$dir.start.err" | tr '\n' ' ' | cut -c1-200)"; return 1; }
  fi
  pin_broker "$PID"
}

stop_target() { # T DIR
  if [[ "$1" == tributary ]]; then stop_broker || true; BROKER_PID=""; else "$KREF" stop "$2" || true; fi
}

bench_target() {
  local t="$1" dir="$WORK/$1" key size n acks spec topic rate props
  T="$t"
  rm -rf "$dir"; mkdir -p "$dir"
  log "=== $t"
  start_target "$t" "$dir/broker" || return 1
  R[$t.rss_idle]="$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status")"

  # Warm-up (broker JIT for Kafka, page cache and segment creation for both), not reported.
  create_topic bench-warmup
  measure "$t" warmup "$WARMUP" perf -P -t bench-warmup -s 512 -c "$WARMUP" -a 1 || true

  for spec in "p100-a1 100 $N_SMALL 1" "p100-all 100 $N_SMALL -1" "p1k-a1 1024 $N_LARGE 1" "p1k-all 1024 $N_LARGE -1"; do
    read -r key size n acks <<<"$spec"
    kill -0 "$PID" 2>/dev/null || { note "$t" "broker died before $key"; return 1; }
    create_topic "bench-$key"
    measure "$t" "$key" "$n" perf -P -t "bench-$key" -s "$size" -c "$n" -a "$acks" && parse_produce "$t" "$key"
  done
  # c100q: the 100 B row again with the client's prefetch bounded to 8 MiB (librdkafka's default is 64 MiB a
  # partition, queued.max.messages.kbytes) and no backoff when it is full (fetch.queue.backoff.ms, 1000 ms by
  # default, would stall the row instead): on one client core, the fetch thread of a client whose broker
  # answers faster fills more of that queue with fresh memory, and the page faults slow the application thread.
  for spec in "c100 p100-a1 $N_SMALL" "c100q p100-a1 $N_SMALL -X queued.max.messages.kbytes=8192 -X fetch.queue.backoff.ms=1" \
      "c1k p1k-a1 $N_LARGE"; do
    read -r key size n props <<<"$spec"
    # shellcheck disable=SC2086 # props: zero or more words
    measure "$t" "$key" "$n" perf -G "bench-light-$key-$$" -t "bench-$size" -X auto.offset.reset=earliest -c "$n" $props \
      && parse_consume "$t" "$key"
  done

  # Fixed-rate rows: KEY TOPIC PRODUCERS RATE [librdkafka properties].
  for spec in "lat bench-lat 1 $LAT_RATE" "lat0 bench-lat0 1 $LAT_RATE linger.ms=0" "many bench-many $MANY $MANY_RATE"; do
    read -r key topic n rate props <<<"$spec"
    create_topic "$topic"
    # shellcheck disable=SC2086 # props: zero or more words
    measure "$t" "$key" $(( n * rate * LAT_SECS )) client timeout -k 5 "$RUN_TIMEOUT" "$RATE_BIN" "$BS" "$topic" \
      "$n" "$rate" "$LAT_SECS" 1024 -1 "$WORK/$t-$key.us" $props
    R[$t.$key.rps]="$(sed -nE 's/.* rps=([0-9]+).*/\1/p' "$WORK/$t-$key.out")"
    latencies "$t" "$key" "$WORK/$t-$key.us"
  done

  # Up to the retention limit and past it: the broker deletes segments while it takes writes.
  local limit=$(( RETENTION_MB * 1048576 )) records
  records=$(( RETENTION_FILL * limit * PARTS / 1024 ))
  create_topic bench-retention "retention.bytes=$limit" "segment.bytes=$(( SEGMENT_MB * 1048576 ))"
  measure "$t" ret "$records" perf -P -t bench-retention -s 1024 -c "$records" -a 1 && parse_produce "$t" ret
  sleep $(( 2 * RETENTION_CHECK_MS / 1000 + 1 ))
  R[$t.ret.written_mib]=$(( records * 1024 / 1048576 ))
  # Kafka renames a deleted segment to *.deleted and removes it file.delete.delay.ms (60 s) later: those
  # files are counted apart.
  R[$t.ret.disk_mib]="$(find "$DATA" -path '*/bench-retention-*' -type f ! -name '*.deleted' -printf '%s\n' \
    | awk '{ s += $1 } END { printf "%d", s / 1048576 }')"
  R[$t.ret.pending_mib]="$(find "$DATA" -path '*/bench-retention-*' -type f -name '*.deleted' -printf '%s\n' \
    | awk '{ s += $1 } END { printf "%d", s / 1048576 }')"
  R[$t.ret.bound_mib]=$(( PARTS * (RETENTION_MB + SEGMENT_MB) ))

  R[$t.rss_end]="$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status")"
  R[$t.hwm]="$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status")"
  stop_target "$t" "$dir/broker"
  [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$dir/broker/data" "$dir/broker/logs"
}

T_BEGIN="$(date +%s)"; LOAD_BEGIN="$(cut -d' ' -f1-3 /proc/loadavg)"
for t in $TARGETS; do
  case "$t" in tributary|kafka) bench_target "$t" || true ;; *) die "unknown target $t" ;; esac
done

# --- report ---------------------------------------------------------------------------------------------------
val() { local v="${R[$1]:-}"; echo "${v:-n/a}"; }
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
row() { local a b; a="$(val "tributary.$2")"; b="$(val "kafka.$2")"; printf '| %s | %s | %s | %s | %s |\n' "$1" "$a" "$b" "$(ratio "$a" "$b")" "$3"; }
load_rows() { # LABEL KEY: records/s is given by the caller; CPU and load here
  row "$1: broker CPU s per million records" "$2.cpu_m" lower
  row "$1: load average (1 min) after" "$2.load" -
}
{
  echo "# Tributary vs Apache Kafka $KAFKA_VERSION — light client (librdkafka: rdkafka_performance, hack/bench/rate_producer.c)$( [[ "$QUICK" == 1 ]] && echo ", quick")"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); repo commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(uname -r)"
  if (( PINNED )); then echo "- pinning: broker (all threads) on CPU $BROKER_CPUS, every client process on CPU $CLIENT_CPUS (taskset)"
  else echo "- pinning: none (fewer than 2 cores or no taskset): client and broker share the machine"; fi
  echo "- client: $PERF ($(grep -m1 -oE 'RD_KAFKA_VERSION[[:space:]]+0x[0-9a-f]+' "$(dirname "$PERF")/../src/rdkafka.h" 2>/dev/null | awk '{print $2}')), default config + acks; topics: $PARTS partitions, RF 1"
  echo "- tributary: ${TRIB_BIN:-n/a}, ${BENCH_TRIBUTARY_PROPS:+with $BENCH_TRIBUTARY_PROPS, not }durable default (fsync before acknowledging); kafka: hack/kafka-ref.sh (${KAFKA_REF_HEAP:--Xms1g -Xmx1g}), its default flush policy (no fsync)"
  echo "- both: log.retention.check.interval.ms=$RETENTION_CHECK_MS; warm-up $WARMUP x 512 B acks=1 before the rows (not reported)"
  echo "- total wall time: $(( $(date +%s) - T_BEGIN )) s; load average at start: $LOAD_BEGIN, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| Metric | Tributary | Kafka | Tributary / Kafka | better |"
  echo "|---|---:|---:|---:|---|"
  for spec in "p100-a1:Produce 100 B acks=1" "p100-all:Produce 100 B acks=all" "p1k-a1:Produce 1 KiB acks=1" "p1k-all:Produce 1 KiB acks=all"; do
    row "${spec#*:}, records/s" "${spec%%:*}.rps" higher
    row "${spec#*:}, MB/s" "${spec%%:*}.mbps" higher
    load_rows "${spec#*:}" "${spec%%:*}"
  done
  for spec in "c100:Consume 100 B:$N_SMALL" "c100q:Consume 100 B, client prefetch 8 MiB (queued.max.messages.kbytes=8192, fetch.queue.backoff.ms=1):$N_SMALL" \
      "c1k:Consume 1 KiB:$N_LARGE"; do
    IFS=: read -r key label n <<<"$spec"
    row "$label, records/s" "$key.rps" higher
    row "$label, MB/s" "$key.mbps" higher
    row "$label, records read (of $n)" "$key.records" -
    load_rows "$label" "$key"
    row "$label: client CPU s (user + system)" "$key.client_cpu" lower
    row "$label: client system CPU s" "$key.client_sys" lower
    row "$label: client minor page faults" "$key.client_minflt" lower
  done
  for spec in "lat:Latency 1 KiB acks=all @${LAT_RATE}/s (linger.ms 5, the default)" "lat0:Latency 1 KiB acks=all @${LAT_RATE}/s, linger.ms=0"; do
    IFS=: read -r key label <<<"$spec"
    row "$label: records/s" "$key.rps" higher
    for p in p50 p99 p999 max; do row "$label: $p ms" "$key.$p" lower; done
    load_rows "$label" "$key"
  done
  row "$MANY producers x ${MANY_RATE}/s, 1 KiB acks=all: records/s (all)" many.rps higher
  for p in p50 p99 p999 max; do row "$MANY producers: $p ms" "many.$p" lower; done
  row "$MANY producers: records acknowledged (of $(( MANY * MANY_RATE * LAT_SECS )))" many.samples -
  load_rows "$MANY producers" many
  row "Retention ${RETENTION_MB} MiB/partition, 1 KiB acks=1: records/s" ret.rps higher
  row "Retention: MiB written" ret.written_mib -
  row "Retention: MiB of live segments after two checks (retained: at least $(( PARTS * RETENTION_MB )) if every partition filled, at most $(( PARTS * (RETENTION_MB + SEGMENT_MB) )))" ret.disk_mib -
  row "Retention: MiB of deleted segments not yet removed (Kafka: *.deleted, file.delete.delay.ms)" ret.pending_mib lower
  load_rows "Retention" ret
  row "Idle RSS after start, MiB" rss_idle lower
  row "RSS after the rows, MiB" rss_end lower
  row "Peak RSS (VmHWM), MiB" hwm lower
  echo
  echo "Ratios are Tributary / Kafka. Produce rates are the tool's (first send to last delivery report); consume rates"
  echo "run from the first record to the last. Latency: per-record time from the produce call to its delivery report"
  echo "(hack/bench/rate_producer.c; one acknowledged warm-up record per client before timing)."
  echo "Unthrottled produce rows use librdkafka's default sticky partitioner: with the client far ahead of the"
  echo "broker most records of a row land in one partition (on both brokers alike), so the consume rows read"
  echo "mostly one partition at max.partition.fetch.bytes (1 MiB) a fetch."
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
exit 0
