# shellcheck shell=bash
# shellcheck disable=SC2034 # R, TOOL, ACP, GP are read by the scripts that source this file
# The benchmark client shared by hack/bench.sh and hack/bench-cluster.sh: Kafka's kafka-tools
# (ProducerPerformance, ConsumerPerformance, TopicCommand) and hack/bench/{AssignConsumerPerf,GroupPerf}.java,
# plus the functions that run them and parse their output into R[target.key.metric].
# Source it after defining log, die, note and now_ms and setting HERE, KREF, WORK, TOOL_HEAP, KAFKA_VERSION,
# RUN_TIMEOUT, PARTS, G_MEMBERS and the arrays CMDS, R (declare -A) and NOTE (declare -A); sourcing resolves
# the jars (hack/kafka-ref.sh classpath) and compiles the Java clients (cached), setting TOOL, ACP, GP, CP, L4J.
# TOPIC_RF (default 1) is the replication factor create_topic asks for.
# --- client ---------------------------------------------------------------------------------------
command -v java >/dev/null || die "java not found"
log "resolving Kafka $KAFKA_VERSION jars (cached after the first run)"
CP="$("$KREF" classpath)" || die "hack/kafka-ref.sh classpath failed"
L4J="$("$KREF" log4j)" || die "hack/kafka-ref.sh log4j failed"
read -ra HEAP <<<"$TOOL_HEAP"   # one or more JVM flags
TOOL=(java "${HEAP[@]}" "-Dlog4j2.configurationFile=$L4J" -Dkafka.ref.log.level=WARN -cp "$CP")

# Newer tools renamed some options (the old ones are deprecated); use whatever this version has.
PP_PROPS=--producer-props; CP_NUM=--messages
help_text="$("${TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --help 2>&1)"
[[ "$help_text" == *--command-property* ]] && PP_PROPS=--command-property
help_text="$("${TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance --help 2>&1)"
[[ "$help_text" == *--num-records* ]] && CP_NUM=--num-records

# Own clients (hack/bench/AssignConsumerPerf.java: group-free consumer; hack/bench/GroupPerf.java: consumer group),
# compiled together against the same kafka-clients jars into $TRIBUTARY_CACHE/bench-classes; recompiled only
# when a source, the Kafka version or javac change.
ACP_SRCS=("$HERE/bench/AssignConsumerPerf.java" "$HERE/bench/GroupPerf.java")
ACP_DIR="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/bench-classes"
ACP=()                 # java command line for AssignConsumerPerf; empty if it could not be compiled
GP=()                  # java command line for GroupPerf; empty if it could not be compiled
ACP_STATUS=""          # why not
compile_acp() {
  command -v javac >/dev/null || { ACP_STATUS="javac not found"; return 1; }
  local src sum tmp
  for src in "${ACP_SRCS[@]}"; do [[ -f "$src" ]] || { ACP_STATUS="$src missing"; return 1; }; done
  sum="$( { cat "${ACP_SRCS[@]}" | sha256sum; echo "kafka=$KAFKA_VERSION"; javac -version 2>&1; } | sha256sum | cut -c1-64)"
  CMDS+=("javac -d \"\${TRIBUTARY_CACHE:-\$HOME/.cache/tributary}/bench-classes\" -cp \"\$(hack/kafka-ref.sh classpath)\" hack/bench/AssignConsumerPerf.java hack/bench/GroupPerf.java  # cached by checksum")
  mkdir -p "$ACP_DIR" || { ACP_STATUS="cannot create $ACP_DIR"; return 1; }
  if ! (
    flock -w 300 9 || { echo "timed out waiting for $ACP_DIR/.lock" >"$WORK/acp-javac.log"; exit 1; }
    if [[ "$(cat "$ACP_DIR/.checksum" 2>/dev/null)" == "$sum" && -f "$ACP_DIR/AssignConsumerPerf.class" \
          && -f "$ACP_DIR/GroupPerf.class" ]]; then exit 0; fi
    log "compiling ${ACP_SRCS[*]} into $ACP_DIR"
    tmp="$(mktemp -d "$ACP_DIR/.javac.XXXXXX")" || exit 1
    if ! timeout 300 javac -nowarn -d "$tmp" -cp "$CP" "${ACP_SRCS[@]}" >"$WORK/acp-javac.log" 2>&1; then rm -rf "$tmp"; exit 1; fi
    rm -f "$ACP_DIR"/AssignConsumerPerf*.class "$ACP_DIR"/GroupPerf*.class "$ACP_DIR/.checksum"
    mv "$tmp"/*.class "$ACP_DIR"/ && rmdir "$tmp" && echo "$sum" >"$ACP_DIR/.checksum"
  ) 9>"$ACP_DIR/.lock"; then
    ACP_STATUS="javac failed: $(grep -m1 -E 'error|timed out' "$WORK/acp-javac.log" | cut -c1-160)"; return 1
  fi
  ACP=(java "${HEAP[@]}" "-Dlog4j2.configurationFile=$L4J" -Dkafka.ref.log.level=WARN -cp "$ACP_DIR:$CP" AssignConsumerPerf)
  GP=(java "${HEAP[@]}" "-Dlog4j2.configurationFile=$L4J" -Dkafka.ref.log.level=WARN -cp "$ACP_DIR:$CP" GroupPerf)
}
compile_acp || log "AssignConsumerPerf/GroupPerf unavailable: $ACP_STATUS"

# run LABEL TIMEOUT CMD...: stdout/stderr to $WORK/LABEL.{out,err}; records the command line.
# shellcheck disable=SC2016 # the recorded command line keeps $(...) for its reader to run
run() {
  local label="$1" tmo="$2"; shift 2
  local shown; shown="$(printf '%q ' "$@")"
  shown="${shown//"$(printf '%q' "$ACP_DIR:$CP")"/'"${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/bench-classes:$(hack/kafka-ref.sh classpath)"'}"
  shown="${shown//"$(printf '%q' "$CP")"/'"$(hack/kafka-ref.sh classpath)"'}"
  shown="${shown//"$(printf '%q' "-Dlog4j2.configurationFile=$L4J")"/'-Dlog4j2.configurationFile="$(hack/kafka-ref.sh log4j)"'}"
  CMDS+=("$shown")
  log "+ $shown"
  timeout -k 10 "$tmo" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err"
  local rc=$?
  (( rc == 124 )) && log "$label: timed out after ${tmo}s"
  return $rc
}

create_topic() { # TARGET BOOTSTRAP TOPIC [PARTITIONS]
  if ! run "$1-create-$3" 120 "${TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$2" \
      --create --if-not-exists --topic "$3" --partitions "${4:-$PARTS}" --replication-factor "${TOPIC_RF:-1}"; then
    note "$1" "CreateTopics for $3 failed ($(tail -n 1 "$WORK/$1-create-$3.err" "$WORK/$1-create-$3.out" 2>/dev/null | grep -v '^==>' | grep . | tail -n 1 | cut -c1-160)); relying on auto-creation"
  fi
}

# produce TARGET KEY BOOTSTRAP TOPIC N SIZE ACKS THROUGHPUT -> R[target.KEY.{rps,mbps,avg,max,p50,p95,p99,p999}]
produce() {
  local t="$1" key="$2" bs="$3" topic="$4" n="$5" size="$6" acks="$7" tput="$8" line
  run "$t-$key" "$RUN_TIMEOUT" "${TOOL[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
    --num-records "$n" --record-size "$size" --throughput "$tput" \
    "$PP_PROPS" "bootstrap.servers=$bs" "acks=$acks"
  local rc=$?
  line="$(grep -E 'records sent, .* 99\.9th' "$WORK/$t-$key.out" | tail -n 1)"
  if [[ -z "$line" ]]; then
    note "$t" "$key: no result (exit $rc; $(grep -m1 -E 'Exception|Error' "$WORK/$t-$key.err" "$WORK/$t-$key.out" | cut -c1-160))"
    return 1
  fi
  local v
  v="$(sed -nE 's/^([0-9]+) records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg latency, ([0-9.]+) ms max latency, ([0-9]+) ms 50th, ([0-9]+) ms 95th, ([0-9]+) ms 99th, ([0-9]+) ms 99\.9th.*/\1 \2 \3 \4 \5 \6 \7 \8 \9/p' <<<"$line")"
  [[ -n "$v" ]] || { note "$t" "$key: unparsable line: $line"; return 1; }
  read -r sent rps mbps avg max p50 p95 p99 p999 <<<"$v"
  R[$t.$key.rps]="$(printf '%.0f' "$rps")"; R[$t.$key.mbps]="$mbps"
  R[$t.$key.avg]="$avg"; R[$t.$key.max]="$(printf '%.0f' "$max")"
  R[$t.$key.p50]="$p50"; R[$t.$key.p95]="$p95"; R[$t.$key.p99]="$p99"; R[$t.$key.p999]="$p999"
  local errs; errs="$(grep -c 'Exception' "$WORK/$t-$key.err" 2>/dev/null)"
  (( sent != n )) && note "$t" "$key: only $sent of $n records sent"
  (( errs > 0 )) && note "$t" "$key: $errs exception lines in client stderr"
  log "$t $key: $line"
  return 0
}

# consume TARGET KEY BOOTSTRAP TOPIC N -> R[target.KEY.{rps,mbps,join,total_rps}]
consume() {
  local t="$1" key="$2" bs="$3" topic="$4" n="$5" line
  run "$t-$key" "$RUN_TIMEOUT" "${TOOL[@]}" org.apache.kafka.tools.ConsumerPerformance \
    --bootstrap-server "$bs" --topic "$topic" "$CP_NUM" "$n" --timeout 30000
  local rc=$?
  line="$(grep -A1 '^start.time' "$WORK/$t-$key.out" | tail -n 1)"
  if [[ -z "$line" || "$line" == start.time* ]]; then
    note "$t" "$key: no result (exit $rc; $(grep -m1 -E 'Exception|Error|WARN' "$WORK/$t-$key.err" "$WORK/$t-$key.out" | cut -c1-160))"
    return 1
  fi
  # start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
  # rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
  IFS=',' read -r _ _ _ _ nmsg nps join _ fmbps fnps <<<"$line"
  R[$t.$key.rps]="$(printf '%.0f' "$fnps")"; R[$t.$key.mbps]="$(printf '%.2f' "$fmbps")"
  R[$t.$key.total_rps]="$(printf '%.0f' "$nps")"; R[$t.$key.join]="$(printf '%.0f' "$join")"
  (( ${nmsg// /} < n )) && note "$t" "$key: consumed only ${nmsg// /} of $n records"
  log "$t $key: $line"
  return 0
}

# consume_assign TARGET KEY BOOTSTRAP TOPIC N -> R[target.KEY.{rps,mbps,frps,first,records,elapsed}]
# AssignConsumerPerf: assign() all partitions + seekToBeginning, no group.id, reads exactly N records.
consume_assign() {
  local t="$1" key="$2" bs="$3" topic="$4" n="$5" line
  if (( ${#ACP[@]} == 0 )); then note "$t" "$key: AssignConsumerPerf unavailable ($ACP_STATUS)"; return 1; fi
  # Its own bounds (60 s without progress, overall cap) end it before timeout(1) does, so it still reports.
  local cap=$(( RUN_TIMEOUT > 40 ? (RUN_TIMEOUT - 20) * 1000 : RUN_TIMEOUT * 500 ))
  run "$t-$key" "$RUN_TIMEOUT" "${ACP[@]}" --bootstrap-server "$bs" --topic "$topic" --num-records "$n" \
    --timeout-ms 60000 --max-ms "$cap"
  local rc=$?
  line="$(grep '^assign-consumer-perf ' "$WORK/$t-$key.out" | tail -n 1)"
  if [[ -z "$line" ]]; then
    note "$t" "$key: no result (exit $rc; $(grep -m1 -E 'Exception|Error|AssignConsumerPerf:' "$WORK/$t-$key.err" "$WORK/$t-$key.out" | cut -c1-160))"
    return 1
  fi
  local -A f=(); local kv
  for kv in ${line#assign-consumer-perf }; do f[${kv%%=*}]="${kv#*=}"; done
  R[$t.$key.records]="${f[records]:-}"
  R[$t.$key.first]="${f[first_record_ms]:-}"; R[$t.$key.elapsed]="${f[elapsed_ms]:-}"
  if [[ "${f[status]:-}" == ok ]]; then
    R[$t.$key.rps]="$(printf '%.0f' "${f[records_per_sec]}")"; R[$t.$key.mbps]="${f[mb_per_sec]}"
    [[ "${f[fetch_records_per_sec]:--1}" == -* ]] || R[$t.$key.frps]="$(printf '%.0f' "${f[fetch_records_per_sec]}")"
  fi
  [[ "${f[status]:-}" == ok ]] || note "$t" "$key: stopped early (${f[status]:-?}) after ${f[records]:-?} of $n records"
  [[ "${f[records]:-}" == "$n" ]] || note "$t" "$key: read ${f[records]:-?} records, $n were produced"
  [[ "${f[end_offsets]:-}" == "$n" ]] || note "$t" "$key: end offsets of $topic sum to ${f[end_offsets]:-?}, $n were produced"
  log "$t $key: $line"
  return 0
}

# consume_group TARGET KEY BOOTSTRAP TOPIC N -> R[target.KEY.{join,rebalance,rps,mbps,records,dups,redelivered}]
# GroupPerf: G_MEMBERS classic-protocol members (range assignor) join, read exactly N records once, then one
# more member joins the stable group.
consume_group() {
  local t="$1" key="$2" bs="$3" topic="$4" n="$5" line
  if (( ${#GP[@]} == 0 )); then note "$t" "$key: GroupPerf unavailable ($ACP_STATUS)"; return 1; fi
  local cap=$(( RUN_TIMEOUT > 40 ? (RUN_TIMEOUT - 20) * 1000 : RUN_TIMEOUT * 500 ))
  run "$t-$key" "$RUN_TIMEOUT" "${GP[@]}" --bootstrap-server "$bs" --topic "$topic" --num-records "$n" \
    --members "$G_MEMBERS" --group "bench-$key-$t" --timeout-ms 60000 --max-ms "$cap"
  local rc=$?
  line="$(grep '^group-perf ' "$WORK/$t-$key.out" | tail -n 1)"
  if [[ -z "$line" ]]; then
    note "$t" "$key: no result (exit $rc; $(grep -m1 -E 'Exception|Error|GroupPerf:' "$WORK/$t-$key.err" "$WORK/$t-$key.out" | cut -c1-160))"
    return 1
  fi
  local -A f=(); local kv
  for kv in ${line#group-perf }; do f[${kv%%=*}]="${kv#*=}"; done
  [[ "${f[join_ms]:--1}" == -* ]] || R[$t.$key.join]="${f[join_ms]}"
  [[ "${f[rebalance_ms]:--1}" == -* ]] || R[$t.$key.rebalance]="${f[rebalance_ms]}"
  if [[ "${f[consume_ms]:--1}" != -* ]]; then  # the consume phase ran
    R[$t.$key.records]="${f[records]:-}"; R[$t.$key.dups]="${f[duplicates]:-}"; R[$t.$key.redelivered]="${f[redelivered]:-}"
  fi
  if [[ "${f[status]:-}" == ok || "${f[status]:-}" == rebalance_timeout ]] && [[ "${f[records]:-}" == "$n" ]]; then
    R[$t.$key.rps]="$(printf '%.0f' "${f[records_per_sec]}")"; R[$t.$key.mbps]="${f[mb_per_sec]}"
  fi
  [[ "${f[status]:-}" == ok ]] || note "$t" "$key: GroupPerf stopped (${f[status]:-?}; exit $rc) after join_ms=${f[join_ms]:-?} records=${f[records]:-?} rebalance_ms=${f[rebalance_ms]:-?}"
  [[ "${f[records]:-}" == "$n" ]] || note "$t" "$key: group read ${f[records]:-?} distinct records, $n were produced"
  [[ "${f[end_offsets]:-}" == "$n" ]] || note "$t" "$key: end offsets of $topic sum to ${f[end_offsets]:-?}, $n were produced"
  [[ "${f[duplicates]:-0}" == 0 ]] || note "$t" "$key: ${f[duplicates]} records delivered more than once across members"
  [[ "${f[redelivered]:-0}" == 0 ]] || note "$t" "$key: ${f[redelivered]} records delivered again after the +1 rebalance (committed offsets not honoured)"
  [[ "${f[member_errors]:-0}" == 0 ]] || note "$t" "$key: ${f[member_errors]} exceptions in member poll loops"
  # Client-side warnings (e.g. failed offset commits) and the member states GroupPerf dumps on a timeout.
  local w
  w="$(grep -E '^\[.*\] (WARN|ERROR) ' "$WORK/$t-$key.err" | sed -E 's/^\[[^]]*\] //; s/clientId=group-perf-[0-9]+/clientId=group-perf-N/; s/partition [^ ]+ at offset [0-9]+/partition P at offset O/' | sort | uniq -c | sort -rn | head -n 3 | sed -E 's/^ *//' | cut -c1-200 | paste -sd '|' -)"
  [[ -z "$w" ]] || note "$t" "$key: client log (count message): ${w//|/ || }"
  log "$t $key: $line"
  return 0
}

