# shellcheck shell=bash
# Shell helpers shared by hack/*.sh and broker/tests/clients/run.sh: waiting with a bound, starting a broker
# on ports the kernel picks and waiting until it is ready, stopping a process with a bounded grace period, and
# log tails. Source it (`source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`); it only defines functions and
# changes no shell option, trap or working directory. Everything it prints goes to stderr, so it is safe in
# scripts whose stdout is read by their caller (hack/k8s-env.sh start).

# log_tail FILE [LINES]: the last LINES (default 40) lines of FILE on stderr, under a header naming it.
log_tail() {
  local file="$1" lines="${2:-40}"
  if [[ -r "$file" ]]; then
    printf -- '--- last %s lines of %s ---\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" >&2
    printf -- '--- end of %s ---\n' "$file" >&2
  else
    printf -- '--- %s: no such log ---\n' "$file" >&2
  fi
}

# log_tail_since FILE OFFSET [LINES]: like log_tail, but only what was appended after byte OFFSET (what
# `log_size FILE` returned before a start), for logs that are appended to across restarts.
log_tail_since() {
  local file="$1" offset="$2" lines="${3:-40}"
  printf -- '--- last %s lines written to %s since this start ---\n' "$lines" "$file" >&2
  tail -c "+$(( offset + 1 ))" "$file" 2>/dev/null | tail -n "$lines" >&2
  printf -- '--- end of %s ---\n' "$file" >&2
}

# log_size FILE: its size in bytes (0 when it does not exist), for log_tail_since and log_grep_since.
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# log_grep_since FILE OFFSET PATTERN: whether a line appended after byte OFFSET matches the regex PATTERN.
log_grep_since() { tail -c "+$(( $2 + 1 ))" "$1" 2>/dev/null | grep -q -- "$3"; }

# log_address FILE MARKER: the first IPv4 host:port on the first line of FILE containing the text MARKER, for
# programs that bind port 0 and log what they bound (the operator's "serving /metrics" line). Fails when
# there is no such line yet.
log_address() {
  local line
  line="$(grep -m 1 -F -- "$2" "$1" 2>/dev/null)" || return 1
  grep -o -m 1 -E '[0-9]+(\.[0-9]+){3}:[0-9]+' <<<"$line" | head -n 1 | grep .
}

# eventually [--timeout SECS] [--interval SECS] [--while CHECK] [--print] WHAT CMD [ARGS...]
# Runs CMD until it succeeds, at most SECS seconds (default $EVENTUALLY_TIMEOUT, else 30), sleeping SECS
# (default $EVENTUALLY_INTERVAL, else 0.5) between tries. CHECK, a command without arguments (a function
# name), must keep succeeding: when it fails the wait ends at once (a process it waits for died). CMD's output
# is kept from the terminal and the last try's is shown when the wait fails; with --print the successful
# try's stdout is printed (`port="$(eventually --print ...)"`) and its stderr dropped.
# Returns 0 when CMD succeeded, 1 on the time bound, 2 when CHECK failed, each failure with a message naming
# WHAT on stderr.
eventually() {
  local timeout="${EVENTUALLY_TIMEOUT:-30}" interval="${EVENTUALLY_INTERVAL:-0.5}" check="" print=0
  while (( $# )); do
    case "$1" in
      --timeout) timeout="$2"; shift 2 ;;
      --interval) interval="$2"; shift 2 ;;
      --while) check="$2"; shift 2 ;;
      --print) print=1; shift ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  (( $# >= 2 )) || { echo "eventually: usage: eventually [--timeout S] [--interval S] [--while CHECK] [--print] WHAT CMD..." >&2; return 2; }
  local what="$1" out deadline
  shift
  deadline=$(( $(date +%s) + ${timeout%.*} ))
  while :; do
    if (( print )); then
      if out="$("$@" 2>/dev/null)"; then printf '%s\n' "$out"; return 0; fi
    elif out="$("$@" 2>&1)"; then
      return 0
    fi
    if [[ -n "$check" ]] && ! "$check"; then
      printf 'gave up waiting for %s: %s failed\n' "$what" "$check" >&2
      return 2
    fi
    if (( $(date +%s) >= deadline )); then
      printf 'timed out after %ss waiting for %s\n' "$timeout" "$what" >&2
      [[ -z "$out" ]] || printf '  last try (%s): %s\n' "$*" "$(tail -n 5 <<<"$out")" >&2
      return 1
    fi
    sleep "$interval"
  done
}

# stop_process PID [SECS] [NAME]: SIGTERM, up to SECS seconds (default 30) for PID to exit, then SIGKILL.
# Returns PID's exit status when it is a child of this shell (reaped with wait), else 0 once it is gone;
# 137 and a message when it had to be killed.
stop_process() {
  local pid="$1" secs="${2:-30}" name="${3:-process $1}" i rc=0
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < secs * 10; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    printf '%s (pid %s) still running %ss after SIGTERM: SIGKILL\n' "$name" "$pid" "$secs" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for (( i = 0; i < 50; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid" 2>/dev/null || true
    return 137
  fi
  wait "$pid" 2>/dev/null || rc=$?
  # 127: not a child of this shell (its status is not ours to know); it is gone, which is what was asked.
  (( rc == 127 )) && rc=0
  return "$rc"
}

# port_or_free PORT: PORT when it can be bound on 127.0.0.1 (0: no preference), else a port the kernel hands
# out. Racy by nature (the port is released before its user binds it): only for programs that cannot bind
# port 0 and report what they bound (Apache Kafka, etcd, kube-apiserver). A tributary-broker gets port 0 and
# --bound-addresses-file instead (start_broker).
port_or_free() {
  python3 - "${1:-0}" <<'PY'
import socket, sys
want = int(sys.argv[1] or 0)
for port in ([want] if want else []) + [0]:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
PY
}

# free_port: port_or_free with no preference.
free_port() { port_or_free 0; }

# cargo_target_dir ROOT: where cargo puts binaries for the workspace at ROOT ($CARGO_TARGET_DIR or ROOT/target).
cargo_target_dir() {
  local dir="${CARGO_TARGET_DIR:-$1/target}"
  [[ "$dir" == /* ]] || dir="$1/$dir"
  echo "$dir"
}

# start_broker BIN DIR [BROKER ARGS...]
# Starts the tributary-broker BIN in the background with its Kafka and HTTP listeners on 127.0.0.1 port 0,
# its data in DIR/data, stdout and stderr appended to DIR/broker.log, and --bound-addresses-file
# DIR/addresses; waits for that file, then for GET /readyz to answer 200, at most $BROKER_START_TIMEOUT
# seconds (default 30). ARGS are more broker flags (--config FILE, --node-id N, ...); a --listen,
# --http-listen or --data-dir among them replaces the default (a restart that must keep its Kafka port
# passes `--listen 127.0.0.1:PORT` with the port it learned the first time).
# Sets BROKER_PID, BROKER_KAFKA (host:port for clients), BROKER_HTTP (host:port of /readyz and /metrics),
# BROKER_LOG, BROKER_CMD (the command line, an array, for reports) and BROKER_READY_MS (exec to /readyz 200).
# On failure (the broker exits, or the bound passes) it says why (also in BROKER_ERROR), prints what the
# broker logged, stops it and returns 1.
# Call it directly, not in $(...): the broker must be a child of the calling shell.
start_broker() {
  local bin="$1" dir="$2"
  shift 2
  mkdir -p "$dir"
  local addresses="$dir/addresses" flag args=()
  local -A given=()
  for flag in "$@"; do
    case "$flag" in --listen|--listen=*|--http-listen|--http-listen=*|--data-dir|--data-dir=*) given[${flag%%=*}]=1 ;; esac
  done
  [[ -n "${given[--listen]:-}" ]] || args+=(--listen 127.0.0.1:0)
  [[ -n "${given[--http-listen]:-}" ]] || args+=(--http-listen 127.0.0.1:0)
  [[ -n "${given[--data-dir]:-}" ]] || args+=(--data-dir "$dir/data")
  args+=(--bound-addresses-file "$addresses" "$@")
  # shellcheck disable=SC2034 # read by the callers
  BROKER_LOG="$dir/broker.log" BROKER_KAFKA="" BROKER_HTTP="" BROKER_READY_MS="" BROKER_ERROR=""
  BROKER_CMD=("$bin" "${args[@]}")
  # A file left by an earlier start in DIR would name ports that are not this broker's.
  rm -f "$addresses"
  printf '==== start at %s: %s\n' "$(date -u +%H:%M:%S)" "${BROKER_CMD[*]}" >>"$BROKER_LOG"
  local offset timeout="${BROKER_START_TIMEOUT:-30}" t0 t0_ms
  offset="$(log_size "$BROKER_LOG")"
  t0="$(date +%s)" t0_ms="$(date +%s%3N)"
  "${BROKER_CMD[@]}" >>"$BROKER_LOG" 2>&1 </dev/null &
  BROKER_PID=$!
  if ! eventually --timeout "$timeout" --interval 0.02 --while _broker_alive \
      "the broker to write $addresses" test -s "$addresses"; then
    _broker_start_failed "$offset" "wrote no $addresses within ${timeout}s"; return 1
  fi
  # shellcheck disable=SC2034 # read by the callers
  BROKER_KAFKA="$(sed -n 's/^kafka=//p' "$addresses")"
  BROKER_HTTP="$(sed -n 's/^http=//p' "$addresses")"
  local left=$(( timeout - ($(date +%s) - t0) ))
  (( left > 0 )) || left=1
  if ! eventually --timeout "$left" --interval 0.02 --while _broker_alive \
      "broker /readyz on $BROKER_HTTP" curl -fsS -o /dev/null --max-time 1 "http://$BROKER_HTTP/readyz"; then
    _broker_start_failed "$offset" "/readyz not 200 within ${timeout}s"; return 1
  fi
  # shellcheck disable=SC2034 # read by the callers
  BROKER_READY_MS=$(( $(date +%s%3N) - t0_ms ))
}

_broker_alive() { kill -0 "$BROKER_PID" 2>/dev/null; }

_broker_start_failed() { # OFFSET WHY
  local rc=0
  if _broker_alive; then
    stop_process "$BROKER_PID" 10 tributary-broker || true
    BROKER_ERROR="$2; stopped it"
  else
    wait "$BROKER_PID" 2>/dev/null || rc=$?
    BROKER_ERROR="exited with status $rc during start-up"
  fi
  echo "tributary-broker (pid $BROKER_PID) $BROKER_ERROR" >&2
  log_tail_since "$BROKER_LOG" "$1" 40
  BROKER_PID=""
}

# stop_broker: stop_process for the broker start_broker started ($BROKER_PID; a grace period of
# $BROKER_STOP_TIMEOUT seconds, default 30), then clears BROKER_PID. Returns the broker's exit status (0 after
# a clean SIGTERM shutdown); 0 when there is none.
stop_broker() {
  local rc=0
  stop_process "${BROKER_PID:-}" "${BROKER_STOP_TIMEOUT:-30}" tributary-broker || rc=$?
  BROKER_PID=""
  return "$rc"
}
