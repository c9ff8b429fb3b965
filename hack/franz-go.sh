#!/usr/bin/env bash
# franz-go's kgo test suite (github.com/twmb/franz-go, from the Go module proxy) against a single broker:
# Tributary (the README's single-node broker) or Apache Kafka 4.x (hack/kafka-ref.sh), one after the other
# on the same machine, so the results say test by test which pass where.
#
# Usage: hack/franz-go.sh [tributary|kafka|both|ci]     (default both)
#   ci: Tributary only, and every test in hack/compat/franz-go/allowlist.txt must pass (hack/test.sh's
#       clients stage runs this; the allowlist only grows)
#   FRANZ_GO_VERSION=v1.22.3   the module version (its pkg/kgo tests are built once into the cache)
#   FRANZ_GO_RECORDS=2000      KGO_TEST_RECORDS: records per produce/consume test (bounds the run)
#   FRANZ_GO_TIMEOUT=600       seconds for one whole suite run (go test -timeout)
#   FRANZ_GO_SKIP='^TestTxn'   tests not run: they need transactions, which Tributary does not have yet and
#                              which otherwise hang until the timeout
#   TRIBUTARY_BIN=...          the broker binary (default: $TRIBUTARY_BROKER_BIN, else cargo build --release)
#   FRANZ_GO_OUT=hack/compat/franz-go   where <target>.tsv (test, PASS|FAIL|SKIP) and <target>.log go
# The suite's unit tests run too (they need no broker and pass or fail alike on both targets).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"

WHICH="${1:-both}"
VERSION="${FRANZ_GO_VERSION:-v1.22.3}"
RECORDS="${FRANZ_GO_RECORDS:-2000}"
TIMEOUT="${FRANZ_GO_TIMEOUT:-600}"
SKIP="${FRANZ_GO_SKIP:-^TestTxn}"
OUT="${FRANZ_GO_OUT:-$ROOT/hack/compat/franz-go}"
CACHE="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/franz-go-$VERSION"
mkdir -p "$OUT" "$CACHE"

log() { printf '[franz-go %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

build_suite() {
  [[ -x "$CACHE/kgo.test" ]] && return 0
  log "building the kgo tests of github.com/twmb/franz-go@$VERSION into $CACHE"
  local mod src
  mod="$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "github.com/twmb/franz-go@$VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$mod" ]] || { log "go mod download gave no directory"; exit 1; }
  # The module cache is read-only; the tests are built from a copy.
  src="$CACHE/src"; rm -rf "$src"; cp -r "$mod" "$src"; chmod -R u+w "$src"
  (cd "$src/pkg/kgo" && go test -c -o "$CACHE/kgo.test.tmp" .)
  mv "$CACHE/kgo.test.tmp" "$CACHE/kgo.test"
}

# run_suite TARGET SEEDS: the results table of one run.
run_suite() {
  local target="$1" seeds="$2" rc=0
  log "$target: running the kgo suite against $seeds (records $RECORDS, skip '$SKIP', timeout ${TIMEOUT}s)"
  (cd "$CACHE/src/pkg/kgo" && KGO_SEEDS="$seeds" KGO_TEST_RF=1 KGO_TEST_RECORDS="$RECORDS" \
    timeout $(( TIMEOUT + 60 )) "$CACHE/kgo.test" -test.v -test.timeout "${TIMEOUT}s" -test.skip "$SKIP") \
    >"$OUT/$target.log" 2>&1 || rc=$?
  # Top-level results only ("--- PASS: TestX (0.01s)", not the indented subtests).
  sed -nE 's/^--- (PASS|FAIL|SKIP): ([A-Za-z0-9_]+) .*/\2\t\1/p' "$OUT/$target.log" | sort -u >"$OUT/$target.tsv"
  if grep -q '^panic: test timed out' "$OUT/$target.log"; then
    grep -A8 '^panic: test timed out' "$OUT/$target.log" | sed -n 's/^[[:space:]]*\(Test[A-Za-z0-9_]*\) .*/\1/p' \
      | sort -u | while read -r t; do printf '%s\tTIMEOUT\n' "$t"; done >>"$OUT/$target.tsv"
  fi
  log "$target: exit $rc; $(cut -f2 "$OUT/$target.tsv" | sort | uniq -c | tr '\n' ' ')"
}

tributary() {
  local bin="${TRIBUTARY_BIN:-${TRIBUTARY_BROKER_BIN:-}}" dir
  if [[ -z "$bin" ]]; then
    (cd "$ROOT" && cargo build --release -q -p tributary-broker)
    bin="$(cargo_target_dir "$ROOT")/release/tributary-broker"
  fi
  dir="$(mktemp -d /tmp/franz-go-tributary.XXXXXX)"
  start_broker "$bin" "$dir" || exit 1
  run_suite tributary "$BROKER_KAFKA"
  stop_broker || true
  cp "$BROKER_LOG" "$OUT/tributary-broker.log" || true
  rm -rf "$dir"
}

kafka() {
  local port data
  port="$(free_port)"; data="$(mktemp -d /tmp/franz-go-kafka.XXXXXX)"
  printf 'default.replication.factor=1\noffsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n' >"$data.properties"
  "$HERE/kafka-ref.sh" start "$port" "$data" "$data.properties" >/dev/null
  run_suite kafka "127.0.0.1:$port"
  "$HERE/kafka-ref.sh" stop "$data" || true
  rm -rf "$data" "$data.properties"
}

allowlisted() {
  local allow="$ROOT/hack/compat/franz-go/allowlist.txt" missing
  missing="$(grep -v '^#' "$allow" | grep . | while read -r t; do
    [[ "$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$OUT/tributary.tsv")" == PASS ]] || echo "$t"
  done)"
  if [[ -n "$missing" ]]; then
    log "allowlisted kgo tests that did not pass (log: $OUT/tributary.log):"; echo "$missing" >&2; return 1
  fi
  log "all $(grep -v '^#' "$allow" | grep -c .) allowlisted kgo tests passed"
}

build_suite
case "$WHICH" in
  tributary) tributary ;;
  kafka) kafka ;;
  both) tributary; kafka ;;
  ci) tributary; allowlisted; exit ;;
  *) echo "usage: $0 [tributary|kafka|both|ci]" >&2; exit 2 ;;
esac

if [[ -f "$OUT/tributary.tsv" && -f "$OUT/kafka.tsv" ]]; then
  join -t $'\t' -a1 -a2 -e missing -o 0,1.2,2.2 "$OUT/tributary.tsv" "$OUT/kafka.tsv" >"$OUT/compare.tsv"
  log "tests whose results differ (test, tributary, kafka):"
  awk -F'\t' '$2 != $3' "$OUT/compare.tsv" >&2 || true
fi
