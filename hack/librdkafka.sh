#!/usr/bin/env bash
# librdkafka's own test suite (its tests/test-runner, from the librdkafka tree that the rdkafka-sys crate on
# crates.io bundles) against a single broker: Tributary (the README's single-node broker) or Apache Kafka 4.x
# (hack/kafka-ref.sh), one after the other on the same machine, so the results say test by test which pass
# where.
#
# Usage: hack/librdkafka.sh [tributary|kafka|both|ci|perf-tool]     (default both)
#   perf-tool: only builds librdkafka's load tool, examples/rdkafka_performance, and prints its path
#   ci: Tributary only, the test numbers in hack/compat/librdkafka/ci.txt (the quick part of the allowlist:
#       the whole allowlist takes far longer than CI's few minutes), and every allowlisted test among them
#       must pass (hack/test.sh's clients stage runs this; the allowlist only grows)
#   LIBRDKAFKA_CRATE=4.10.0+2.12.1  the rdkafka-sys version (bundles librdkafka 2.12.1); librdkafka and
#                                   tests/test-runner are built once into the cache (Debian build deps are
#                                   installed with apt-get when missing)
#   LIBRDKAFKA_TESTS='0001 0002'    test numbers to run (default: every number with a test that needs a
#                                   broker, less LIBRDKAFKA_SKIP; ci: those of ci.txt)
#   LIBRDKAFKA_SKIP='0098 0103 0129 0139 0150'  numbers not run: transactions (0098 consumer_txn,
#                                   0103 transactions, 0129 fetch_aborted_msgs; Tributary has none and they
#                                   would wait for their timeouts), and two mock-cluster tests the runner does
#                                   not flag as local (0139, 0150: they start librdkafka's mock cluster and
#                                   never talk to the broker)
#   LIBRDKAFKA_TEST_TIMEOUT=240     seconds for one test number (one test-runner process), then it is killed
#   LIBRDKAFKA_LONG_TESTS='0113=900'  numbers that need longer (NUMBER=SECONDS): 0113_cooperative_rebalance
#                                   runs ~45 sub-tests and takes ~580 s when every one passes
#   LIBRDKAFKA_RUN_TIMEOUT=3600     seconds for a whole run; numbers not started by then are NOTRUN
#   TEST_KAFKA_VERSION=4.4.0        the broker version the runner assumes (its version-gated tests)
#   TRIBUTARY_BIN=...               the broker binary (default: $TRIBUTARY_BROKER_BIN, else cargo build --release)
#   LIBRDKAFKA_OUT=hack/compat/librdkafka   where <target>.tsv (test, PASS|FAIL|SKIP|TIMEOUT|NOTRUN, seconds),
#                                   <target>.log and <target>-broker.log go
# Both brokers get num.partitions=4 for auto-created topics: the suite's tests produce to partitions 0..3 of
# topics they let the broker create (librdkafka's own test clusters are set up that way).
# Every test runs in the runner's normal mode (not -Q quick mode), one number per test-runner process (-p1),
# with -L: tests the runner flags local (unit tests, librdkafka's mock cluster) need no broker, test nothing of
# it, and are left out of the tables.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"

WHICH="${1:-both}"
CRATE="${LIBRDKAFKA_CRATE:-4.10.0+2.12.1}"
SKIP="${LIBRDKAFKA_SKIP:-0098 0103 0129 0139 0150}"
PER_TEST="${LIBRDKAFKA_TEST_TIMEOUT:-240}"
LONG_TESTS="${LIBRDKAFKA_LONG_TESTS:-0113=900}"
RUN_TIMEOUT="${LIBRDKAFKA_RUN_TIMEOUT:-3600}"
KAFKA_VER="${TEST_KAFKA_VERSION:-${KAFKA_VERSION:-4.4.0}}"
OUT="${LIBRDKAFKA_OUT:-$ROOT/hack/compat/librdkafka}"
ALLOW="$ROOT/hack/compat/librdkafka/allowlist.txt"
CI_LIST="$ROOT/hack/compat/librdkafka/ci.txt"
CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/librdkafka-$CRATE"
TREE="$CACHE/librdkafka"
mkdir -p "$OUT" "$CACHE"

log() { printf '[librdkafka %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BROKER_PID="" KAFKA_DATA=""
cleanup() {
  [[ -z "$BROKER_PID" ]] || stop_broker || true
  [[ -z "$KAFKA_DATA" ]] || "$HERE/kafka-ref.sh" stop "$KAFKA_DATA" || true
}
trap cleanup EXIT

# The C toolchain and the libraries configure looks for (zlib, zstd and OpenSSL, so the compression and
# SCRAM code is built; SASL GSSAPI and libcurl are configured out).
build_deps() {
  local pkg missing=() sudo=""
  for pkg in build-essential pkg-config zlib1g-dev libzstd-dev libssl-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  (( ${#missing[@]} )) || return 0
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  log "apt-get install ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The .crate through cargo itself (a throwaway manifest that depends on exactly this version), then
# librdkafka and tests/test-runner built in the unpacked tree; .built marks a finished build.
build_suite() {
  [[ -f "$CACHE/.built" && -x "$TREE/tests/test-runner" ]] && return 0
  build_deps
  local manifest crate
  manifest="$(mktemp -d)"
  mkdir -p "$manifest/src"; : >"$manifest/src/lib.rs"
  printf '[package]\nname = "librdkafka-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrdkafka-sys = { version = "=%s", default-features = false }\n' \
    "$CRATE" >"$manifest/Cargo.toml"
  log "fetching rdkafka-sys $CRATE with cargo"
  (cd "$manifest" && CARGO_TARGET_DIR="$manifest/target" timeout 600 cargo fetch -q)
  crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"rdkafka-sys-$CRATE.crate" | head -n 1)"
  rm -rf "$manifest"
  [[ -f "$crate" ]] || { log "cargo fetch left no rdkafka-sys-$CRATE.crate"; exit 1; }
  rm -rf "$TREE" "$CACHE/rdkafka-sys-$CRATE"
  tar -xzf "$crate" -C "$CACHE"
  mv "$CACHE/rdkafka-sys-$CRATE/librdkafka" "$TREE"
  rm -rf "$CACHE/rdkafka-sys-$CRATE"
  log "building librdkafka and tests/test-runner in $TREE (a few minutes, once; log $CACHE/build.log)"
  if ! (cd "$TREE" && ./configure --no-download --disable-gssapi --disable-curl --disable-lz4-ext &&
        nice -n 10 make -j"$(nproc)" libs && cd tests && nice -n 10 make -j"$(nproc)" test-runner) \
        >"$CACHE/build.log" 2>&1; then
    log_tail "$CACHE/build.log" 40; exit 1
  fi
  touch "$CACHE/.built"
}

# The runner's test table (tests/test.c), one "name<TAB>flags" line per test.
test_table() {
  sed -n '/^struct test tests\[\] = {/,/^};/p' "$TREE/tests/test.c" | tr '\n' ' ' | sed 's/_TEST(/\n_TEST(/g' \
    | sed -nE 's/^_TEST\(([0-9]{4}_[A-Za-z0-9_]+),[[:space:]]*([^,)]*).*/\1\t\2/p'
}

# The tests that need a broker (not TEST_F_LOCAL, not manual).
broker_tests() { test_table | awk -F'\t' '$2 !~ /TEST_F_LOCAL|TEST_F_MANUAL/ { print $1 }'; }

# The test numbers a run covers.
numbers() {
  if [[ "$WHICH" == ci ]]; then
    grep -v '^#' "$CI_LIST" | grep . | cut -c1-4 | sort -u
  elif [[ -n "${LIBRDKAFKA_TESTS:-}" ]]; then
    tr ' ' '\n' <<<"$LIBRDKAFKA_TESTS" | grep . | sort -u
  else
    broker_tests | cut -c1-4 | sort -u | grep -vxF -f <(tr ' ' '\n' <<<"$SKIP" | grep .)
  fi
}

# run_suite TARGET BOOTSTRAP: one test-runner per test number, results in $OUT/TARGET.tsv.
run_suite() {
  local target="$1" bootstrap="$2" conf work n rc t0 deadline names limit
  work="$(mktemp -d /tmp/librdkafka-run.XXXXXX)"; conf="$work/test.conf"
  printf 'bootstrap.servers=%s\n' "$bootstrap" >"$conf"
  names="$work/names"; broker_tests >"$names"
  : >"$OUT/$target.log"; : >"$work/rows"
  deadline=$(( $(date +%s) + RUN_TIMEOUT ))
  log "$target: librdkafka tests against $bootstrap (TEST_KAFKA_VERSION=$KAFKA_VER, ${PER_TEST}s a number, ${RUN_TIMEOUT}s in all)"
  for n in $(numbers); do
    if (( $(date +%s) >= deadline )); then
      grep "^$n" "$names" | while read -r t; do printf '%s\tNOTRUN\t0\n' "$t"; done >>"$work/rows"
      continue
    fi
    rc=0; t0="$(date +%s)"
    limit="$(tr ' ' '\n' <<<"$LONG_TESTS" | awk -F= -v n="$n" '$1 == n { print $2 }')"
    limit="${limit:-$PER_TEST}"
    # CI=true (set by CI runners) would make the runner run three tests at once and relax timings; unset so
    # a CI run and a run by hand behave alike. test-runner links librdkafka dynamically: this tree's, not
    # the system's (kcat's) older one.
    # KAFKA_PATH and BROKERS: the tests that shell out to Kafka's bin/ scripts (kafka-topics.sh to create
    # topics with configs, kafka-acls.sh, tests/java through kafka-run-class.sh) get Kafka 4.4's tools jar
    # in a distribution-shaped tree (hack/kafka-ref.sh dist), the same for both brokers.
    (cd "$TREE/tests" && env -u CI LD_LIBRARY_PATH="$TREE/src:$TREE/src-cpp" TESTS="$n" TEST_KAFKA_VERSION="$KAFKA_VER" RDKAFKA_TEST_CONF="$conf" \
      KAFKA_PATH="$KAFKA_DIST" BROKERS="$bootstrap" \
      TEST_LEVEL="${TEST_LEVEL:-2}" timeout -k 10 "$limit" ./test-runner -L -p1) >"$work/$n.log" 2>&1 || rc=$?
    { printf '==== %s (exit %s, %ss)\n' "$n" "$rc" "$(( $(date +%s) - t0 ))"; cat "$work/$n.log"; } >>"$OUT/$target.log"
    # The summary rows ("| 0001_multiobj | PASSED | 1.234s |"), the last one per test, broker tests only.
    sed 's/\x1b\[[0-9;]*m//g' "$work/$n.log" \
      | sed -nE 's/^\|[[:space:]]*([0-9]{4}_[A-Za-z0-9_]+)[[:space:]]*\|[[:space:]]*([A-Z]+)[[:space:]]*\|[[:space:]]*([0-9.]+)s.*/\1\t\2\t\3/p' \
      | awk -F'\t' '{ r[$1] = $0 } END { for (k in r) print r[k] }' \
      | grep -F -f <(sed 's/$/\t/' "$names") >"$work/$n.rows" || true
    grep "^$n" "$names" | while read -r t; do
      local row state secs
      row="$(awk -F'\t' -v t="$t" '$1 == t' "$work/$n.rows")"
      state="$(cut -f2 <<<"$row")"; secs="$(cut -f3 <<<"$row")"
      case "$state" in
        PASSED) state=PASS ;;
        FAILED) state=FAIL ;;
        SKIPPED) state=SKIP ;;
        "") if (( rc == 124 || rc == 137 )); then state=TIMEOUT; secs="$limit"; else state=FAIL; secs=0; fi ;;
        *) state=FAIL ;;   # RUNNING when the runner was killed in the middle of it
      esac
      # A row that says PASS from a runner that then failed (a leak check, a crash on exit) is not a pass.
      [[ "$state" != PASS || $rc == 0 ]] || state=FAIL
      printf '%s\t%s\t%s\n' "$t" "$state" "${secs:-0}"
    done >>"$work/rows"
  done
  sort -u "$work/rows" >"$OUT/$target.tsv"
  rm -rf "$work"
  log "$target: $(cut -f2 "$OUT/$target.tsv" | sort | uniq -c | tr '\n' ' ')"
}

tributary() {
  local bin="${TRIBUTARY_BIN:-${TRIBUTARY_BROKER_BIN:-}}" dir
  if [[ -z "$bin" ]]; then
    (cd "$ROOT" && cargo build --release -q -p tributary-broker)
    bin="$(cargo_target_dir "$ROOT")/release/tributary-broker"
  fi
  dir="$(mktemp -d /tmp/librdkafka-tributary.XXXXXX)"
  printf 'num.partitions=4\n' >"$dir/broker.properties"
  start_broker "$bin" "$dir" --config "$dir/broker.properties" || exit 1
  run_suite tributary "$BROKER_KAFKA"
  stop_broker || true
  cp "$BROKER_LOG" "$OUT/tributary-broker.log" || true
  rm -rf "$dir"
}

kafka() {
  local port
  port="$(free_port)"; KAFKA_DATA="$(mktemp -d /tmp/librdkafka-kafka.XXXXXX)"
  printf 'num.partitions=4\ndefault.replication.factor=1\noffsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n' >"$KAFKA_DATA.properties"
  "$HERE/kafka-ref.sh" start "$port" "$KAFKA_DATA" "$KAFKA_DATA.properties" >/dev/null
  run_suite kafka "127.0.0.1:$port"
  cp "$KAFKA_DATA/kafka.log" "$OUT/kafka-broker.log" || true
  "$HERE/kafka-ref.sh" stop "$KAFKA_DATA" || true
  rm -rf "$KAFKA_DATA" "$KAFKA_DATA.properties"
  KAFKA_DATA=""
}

# The allowlisted tests of the numbers ci.txt names.
ci_tests() { grep -v '^#' "$ALLOW" | grep . | grep -F -f <(grep -v '^#' "$CI_LIST" | grep . | cut -c1-4 | sed 's/$/_/'); }

allowlisted() {
  local missing
  missing="$(ci_tests | while read -r t; do
    [[ "$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$OUT/tributary.tsv")" == PASS ]] || echo "$t"
  done)"
  if [[ -n "$missing" ]]; then
    log "allowlisted librdkafka tests that did not pass (log: $OUT/tributary.log):"; echo "$missing" >&2; return 1
  fi
  log "all $(ci_tests | grep -c .) allowlisted librdkafka tests of ci.txt passed"
}

# librdkafka's load tool (examples/rdkafka_performance, linked statically against this tree's librdkafka) for
# the light-client benchmark (hack/bench-light.sh); prints its path.
perf_tool() {
  local tool="$TREE/examples/rdkafka_performance"
  if [[ ! -x "$tool" ]]; then
    log "building examples/rdkafka_performance (log $CACHE/build.log)"
    (cd "$TREE/examples" && nice -n 10 make rdkafka_performance) >>"$CACHE/build.log" 2>&1 \
      || { log_tail "$CACHE/build.log" 40; exit 1; }
  fi
  echo "$tool"
}

build_suite
[[ "$WHICH" == perf-tool ]] || KAFKA_DIST="$("$HERE/kafka-ref.sh" dist)"
case "$WHICH" in
  perf-tool) perf_tool; exit ;;
  tributary) tributary ;;
  kafka) kafka ;;
  both) tributary; kafka ;;
  ci) tributary; allowlisted; exit ;;
  *) echo "usage: $0 [tributary|kafka|both|ci|perf-tool]" >&2; exit 2 ;;
esac

if [[ -f "$OUT/tributary.tsv" && -f "$OUT/kafka.tsv" ]]; then
  join -t $'\t' -a1 -a2 -e missing -o 0,1.2,2.2 <(cut -f1,2 "$OUT/tributary.tsv") <(cut -f1,2 "$OUT/kafka.tsv") \
    >"$OUT/compare.tsv"
  log "tests whose results differ (test, tributary, kafka):"
  awk -F'\t' '$2 != $3' "$OUT/compare.tsv" >&2 || true
fi
