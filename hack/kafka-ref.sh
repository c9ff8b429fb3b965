#!/usr/bin/env bash
# Reference Apache Kafka (single node, KRaft combined mode) on 127.0.0.1, from Maven Central jars.
#
# Usage:
#   hack/kafka-ref.sh start PORT DATA_DIR [EXTRA.properties]
#       Formats DATA_DIR (if not formatted yet) and starts kafka.Kafka in the background.
#       Returns only when the broker is ready (PLAINTEXT port accepts connections and the log says
#       "Kafka Server started"), bounded by KAFKA_REF_START_TIMEOUT seconds (default 60).
#       Prints the broker pid on stdout. Logs: DATA_DIR/kafka.log. Lines of EXTRA.properties are
#       appended to the generated server.properties (later keys win).
#   hack/kafka-ref.sh stop DATA_DIR       SIGTERM, wait (KAFKA_REF_STOP_TIMEOUT, default 30 s), SIGKILL.
#   hack/kafka-ref.sh cluster-start BASE_DIR [EXTRA.properties]
#       KAFKA_REF_CLUSTER_NODES (3) KRaft combined nodes (broker,controller, all voters; node.id 1..N) on 127.0.0.1 with distinct ports, one
#       cluster id, RF 3 defaults (default.replication.factor=3, min.insync.replicas=2, internal topics RF 3).
#       Node N lives in BASE_DIR/node-N (each a DATA_DIR for stop/status/node-start). All three JVMs start
#       together (a quorum needs a majority); returns when every node logged "Kafka Server started". Writes
#       BASE_DIR/cluster.env: BOOTSTRAP=host:port,... NODE_N_PORT= NODE_N_CONTROLLER_PORT= NODE_N_PID=
#       READY_MS=<exec of the first JVM → all three started, ms>. Ports: KAFKA_REF_CLUSTER_PORTS="k1 c1 k2 c2
#       k3 c3" or free loopback ports (racy, as for start). Heap: KAFKA_REF_HEAP (default -Xms512m -Xmx512m here).
#   hack/kafka-ref.sh node-start BASE_DIR N   restart node N of a cluster (same ports/config), wait for it.
#   hack/kafka-ref.sh cluster-stop BASE_DIR   stop every node of the cluster.
#   hack/kafka-ref.sh status DATA_DIR     exit 0 and print pid if running, else exit 1.
#   hack/kafka-ref.sh classpath           prints the classpath (for `java -cp "$(...)" CLASS`).
#   hack/kafka-ref.sh setup               only resolves the jars (Maven), prints the cache dir.
#   hack/kafka-ref.sh log4j               prints the path of the log4j2 config for tools
#                                         (use -Dlog4j2.configurationFile=PATH).
#   hack/kafka-ref.sh dist                builds once and prints a directory shaped like Kafka's binary
#                                         distribution: libs/ (the jars, linked) and bin/ (kafka-topics.sh,
#                                         kafka-configs.sh, kafka-acls.sh, ... and kafka-run-class.sh), for
#                                         tools that take KAFKA_PATH/KAFKA_HOME and run its scripts.
#
# Exit codes: 0 ok; 1 failure (message on stderr, for start the tail of kafka.log too);
#             2 usage error; 3 start refused because a broker is already running in DATA_DIR.
#
# Environment:
#   KAFKA_VERSION            Kafka version on Maven Central (default 4.4.0).
#   TRIBUTARY_CACHE          cache root (default ~/.cache/tributary); jars are resolved into
#                            $TRIBUTARY_CACHE/kafka-$KAFKA_VERSION/ once, later runs do no Maven work.
#   KAFKA_REF_HEAP           JVM heap flags (default "-Xms1g -Xmx1g").
#   KAFKA_REF_JVM_OPTS       extra JVM flags.
#   KAFKA_REF_CONTROLLER_PORT  controller listener port (default: a free loopback port; Kafka needs both ports
#                            up front, it writes them into its quorum voters and advertised listeners).
#   KAFKA_REF_START_TIMEOUT / KAFKA_REF_STOP_TIMEOUT  seconds (defaults 60 / 30).
#   KAFKA_REF_LOG_LEVEL      root log level (default INFO).
#
# Files written into DATA_DIR: server.properties, kafka.log, kafka.pid, logs/ (the log dir),
# startup.env (PORT_MS=<exec→port accepts, ms> READY_MS=<exec→"Kafka Server started", ms>).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "$HERE/lib.sh"
POM_DIR="$HERE/kafka-ref"
CACHE_DIR="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/kafka-$KAFKA_VERSION"
CP_FILE="$CACHE_DIR/classpath.txt"
START_TIMEOUT="${KAFKA_REF_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_REF_STOP_TIMEOUT:-30}"

die() { echo "kafka-ref: $*" >&2; exit 1; }
usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
now_ms() { date +%s%3N; }

# --- jars -----------------------------------------------------------------------------------------
classpath_ok() {
  [[ -s "$CP_FILE" ]] || return 1
  local j jars
  IFS=: read -r -a jars <"$CP_FILE" || true   # one line, maybe without a newline
  for j in "${jars[@]}"; do [[ -f "$j" ]] || return 1; done
}

ensure_classpath() {
  classpath_ok && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once to resolve Kafka $KAFKA_VERSION jars)"
  command -v java >/dev/null || die "java not found"
  mkdir -p "$CACHE_DIR"
  # Serialise concurrent first runs (test harnesses may start several brokers at once).
  exec 9>"$CACHE_DIR/.lock"
  flock -w 900 9 || die "timed out waiting for $CACHE_DIR/.lock"
  if ! classpath_ok; then
    local tmp="$CACHE_DIR/classpath.txt.tmp.$$"
    if ! timeout 900 mvn -q -B -f "$POM_DIR/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$tmp" \
        >"$CACHE_DIR/mvn.log" 2>&1; then
      tail -n 30 "$CACHE_DIR/mvn.log" >&2
      rm -f "$tmp"
      die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $CACHE_DIR/mvn.log)"
    fi
    mv "$tmp" "$CP_FILE"
  fi
  cp "$POM_DIR/log4j2.properties" "$CACHE_DIR/log4j2.properties"
  flock -u 9
}

# --- a distribution-shaped tree -------------------------------------------------------------------
# The scripts of Kafka's bin/ that third-party test suites call, each a class of the Maven tools jar.
DIST_TOOLS="
kafka-topics.sh org.apache.kafka.tools.TopicCommand
kafka-configs.sh org.apache.kafka.tools.ConfigCommand
kafka-acls.sh org.apache.kafka.tools.AclCommand
kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-reassign-partitions.sh org.apache.kafka.tools.reassign.ReassignPartitionsCommand
kafka-leader-election.sh org.apache.kafka.tools.LeaderElectionCommand
kafka-metadata-quorum.sh org.apache.kafka.tools.MetadataQuorumCommand
kafka-cluster.sh org.apache.kafka.tools.ClusterTool
kafka-features.sh org.apache.kafka.tools.FeatureCommand
kafka-get-offsets.sh org.apache.kafka.tools.GetOffsetShell
kafka-delete-records.sh org.apache.kafka.tools.DeleteRecordsCommand
kafka-log-dirs.sh org.apache.kafka.tools.LogDirsCommand
kafka-broker-api-versions.sh org.apache.kafka.tools.BrokerApiVersionsCommand
kafka-console-producer.sh org.apache.kafka.tools.ConsoleProducer
kafka-console-consumer.sh org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-storage.sh kafka.tools.StorageTool
"

ensure_dist() {
  ensure_classpath
  local dist="$CACHE_DIR/dist" tmp jar name class
  # Rebuilt when the classpath changes (a new resolve), so libs/ never links a jar that is gone.
  [[ -f "$dist/.classpath" ]] && cmp -s "$dist/.classpath" "$CP_FILE" && { echo "$dist"; return 0; }
  # Two first runs at once would each replace the tree (and one would move its copy inside the other's).
  exec 8>"$CACHE_DIR/.dist.lock"
  flock -w 300 8 || die "timed out waiting for $CACHE_DIR/.dist.lock"
  [[ -f "$dist/.classpath" ]] && cmp -s "$dist/.classpath" "$CP_FILE" && { flock -u 8; echo "$dist"; return 0; }
  tmp="$CACHE_DIR/dist.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/libs" "$tmp/config"
  tr ':' '\n' <"$CP_FILE" | grep . | while read -r jar; do ln -s "$jar" "$tmp/libs/$(basename "$jar")"; done
  cp "$CACHE_DIR/log4j2.properties" "$tmp/config/tools-log4j2.properties"
  # Like Kafka's own: CLASSPATH (set by callers such as librdkafka's tests/java/run-class.sh) goes first,
  # KAFKA_HEAP_OPTS and KAFKA_OPTS are honoured.
  cat >"$tmp/bin/kafka-run-class.sh" <<'SCRIPT'
#!/usr/bin/env bash
base="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  "-Dlog4j2.configurationFile=${KAFKA_LOG4J_CONFIG:-$base/config/tools-log4j2.properties}" ${KAFKA_OPTS:-} \
  -cp "${CLASSPATH:+$CLASSPATH:}$base/libs/*" "$@"
SCRIPT
  while read -r name class; do
    [[ -n "$name" ]] || continue
    printf '#!/usr/bin/env bash\nexec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" %s "$@"\n' "$class" \
      >"$tmp/bin/$name"
  done <<<"$DIST_TOOLS"
  chmod +x "$tmp"/bin/*.sh
  cp "$CP_FILE" "$tmp/.classpath"
  rm -rf "$dist"; mv "$tmp" "$dist"
  flock -u 8
  echo "$dist"
}

# --- helpers --------------------------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid from DATA_DIR/kafka.pid if that process is alive and is our broker for this DATA_DIR.
running_pid() {
  local dir="$1" pid
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid="$(cat "$dir/kafka.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/server.properties" || return 1
  echo "$pid"
}

random_cluster_id() {
  # Kafka Uuid: 16 random bytes, base64url without padding (22 chars); avoid a leading '-'.
  local id i
  for i in $(seq 1 20); do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && { echo "$id"; return 0; }
  done
  die "could not generate a cluster id"
}

# --- subcommands ----------------------------------------------------------------------------------
cmd_start() {
  [[ $# -ge 2 && $# -le 3 ]] || usage
  local port="$1" dir="$2" extra="${3:-}"
  [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number: $port"
  [[ -z "$extra" || -f "$extra" ]] || die "extra properties file not found: $extra"
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  if pid="$(running_pid "$dir")"; then
    echo "kafka-ref: a broker is already running for $dir (pid $pid)" >&2; exit 3
  fi
  port_open "$port" && die "port 127.0.0.1:$port is already in use"
  ensure_classpath
  local cp; cp="$(cat "$CP_FILE")"
  # Kafka cannot report a port-0 bind back to us (it would advertise and vote on port 0): pick one (racy).
  local cport="${KAFKA_REF_CONTROLLER_PORT:-$(free_port)}"
  [[ "$cport" != "$port" ]] || cport="$(free_port)"
  [[ -n "$cport" ]] || die "no free loopback port found for the controller"

  cat >"$dir/server.properties" <<EOF
# Generated by hack/kafka-ref.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  if [[ -n "$extra" ]]; then
    { echo "# --- from $extra"; cat "$extra"; echo; } >>"$dir/server.properties"
  fi

  local log4j="-Dlog4j2.configurationFile=$CACHE_DIR/log4j2.properties -Dkafka.ref.log.level=${KAFKA_REF_LOG_LEVEL:-INFO}"
  if [[ ! -f "$dir/logs/meta.properties" ]]; then
    # shellcheck disable=SC2086
    if ! timeout 120 java -Xmx256m $log4j -cp "$cp" kafka.tools.StorageTool format \
        -t "$(random_cluster_id)" -c "$dir/server.properties" >>"$dir/kafka.log" 2>&1; then
      tail -n 20 "$dir/kafka.log" >&2
      die "StorageTool format failed (log: $dir/kafka.log)"
    fi
  fi

  # Only look at log lines written by this start (the log is appended to across restarts).
  local log_off; log_off="$(log_size "$dir/kafka.log")"
  local t0; t0="$(now_ms)"
  # setsid: the broker outlives this script and is not hit by the caller's Ctrl-C.
  # shellcheck disable=SC2086
  setsid java ${KAFKA_REF_HEAP:--Xms1g -Xmx1g} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true ${KAFKA_REF_JVM_OPTS:-} $log4j \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 </dev/null &
  KAFKA_PID=$!
  echo "$KAFKA_PID" >"$dir/kafka.pid"

  local rc=0 port_ms="" ready_ms=""
  eventually --timeout "$START_TIMEOUT" --interval 0.05 --while kafka_alive "port $port" port_open "$port" || rc=$?
  if (( rc == 0 )); then
    port_ms=$(( $(now_ms) - t0 ))
    local left=$(( START_TIMEOUT - port_ms / 1000 ))
    (( left > 0 )) || left=1
    eventually --timeout "$left" --interval 0.05 --while kafka_alive "'Kafka Server started' in $dir/kafka.log" \
      log_grep_since "$dir/kafka.log" "$log_off" "Kafka Server started" || rc=$?
  fi
  if (( rc == 2 )); then
    log_tail_since "$dir/kafka.log" "$log_off" 30
    rm -f "$dir/kafka.pid"
    die "broker exited during start-up (log: $dir/kafka.log)"
  elif (( rc != 0 )); then
    log_tail_since "$dir/kafka.log" "$log_off" 30
    KAFKA_REF_STOP_TIMEOUT=5 cmd_stop "$dir" || true
    die "broker not ready within ${START_TIMEOUT}s (log: $dir/kafka.log)"
  fi
  ready_ms=$(( $(now_ms) - t0 ))
  echo "PORT_MS=$port_ms READY_MS=$ready_ms CONTROLLER_PORT=$cport" >"$dir/startup.env"
  echo "$KAFKA_PID"
}

kafka_alive() { kill -0 "$KAFKA_PID" 2>/dev/null; }

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local dir="$1" pid
  [[ -d "$dir" ]] || return 0
  dir="$(cd "$dir" && pwd)"
  pid="$(running_pid "$dir")" || { rm -f "$dir/kafka.pid"; return 0; }
  # Not a child of this shell: stop_process returns 0 once it is gone, 137 after a SIGKILL.
  stop_process "$pid" "${KAFKA_REF_STOP_TIMEOUT:-$STOP_TIMEOUT}" "kafka-ref: broker" || true
  kill -0 "$pid" 2>/dev/null && die "pid $pid still alive"
  rm -f "$dir/kafka.pid"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local dir; dir="$(cd "$1" 2>/dev/null && pwd)" || exit 1
  running_pid "$dir" || exit 1
}

# --- cluster mode (KAFKA_REF_CLUSTER_NODES, 3 by default, combined nodes) -----------------------------------------------------------------
CLUSTER_NODES="${KAFKA_REF_CLUSTER_NODES:-3}"

# node_props DIR ID PORT CPORT VOTERS: the server.properties of cluster node ID (RF 3, min ISR 2).
node_props() {
  local dir="$1" id="$2" port="$3" cport="$4" voters="$5"
  cat <<EOF
# Generated by hack/kafka-ref.sh cluster-start
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
}

# launch_node DIR: starts kafka.Kafka on DIR/server.properties in the background (setsid), sets NODE_PID and
# NODE_LOG_OFF (kafka.log size before this start), writes DIR/kafka.pid.
launch_node() {
  local dir="$1" cp log4j
  cp="$(cat "$CP_FILE")"
  log4j="-Dlog4j2.configurationFile=$CACHE_DIR/log4j2.properties -Dkafka.ref.log.level=${KAFKA_REF_LOG_LEVEL:-INFO}"
  NODE_LOG_OFF="$(log_size "$dir/kafka.log")"
  # shellcheck disable=SC2086
  setsid java ${KAFKA_REF_HEAP:--Xms512m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true ${KAFKA_REF_JVM_OPTS:-} $log4j \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 </dev/null &
  NODE_PID=$!
  echo "$NODE_PID" >"$dir/kafka.pid"
}

# wait_node DIR PID LOG_OFF TIMEOUT: until "Kafka Server started" was logged since LOG_OFF; 1 (with the log
# tail) when PID exits or the bound passes.
wait_node() {
  local dir="$1" pid="$2" off="$3" tmo="$4" rc=0
  KAFKA_PID="$pid"
  eventually --timeout "$tmo" --interval 0.1 --while kafka_alive "'Kafka Server started' in $dir/kafka.log" \
    log_grep_since "$dir/kafka.log" "$off" "Kafka Server started" || rc=$?
  (( rc == 0 )) && return 0
  log_tail_since "$dir/kafka.log" "$off" 30
  (( rc == 2 )) && { rm -f "$dir/kafka.pid"; echo "kafka-ref: node in $dir exited during start-up" >&2; return 1; }
  echo "kafka-ref: node in $dir not started within ${tmo}s" >&2
  return 1
}

cmd_cluster_start() {
  [[ $# -ge 1 && $# -le 2 ]] || usage
  local base="$1" extra="${2:-}" i pid
  [[ -z "$extra" || -f "$extra" ]] || die "extra properties file not found: $extra"
  mkdir -p "$base"; base="$(cd "$base" && pwd)"
  for i in $(seq 1 "$CLUSTER_NODES"); do
    if pid="$(running_pid "$base/node-$i")"; then
      echo "kafka-ref: node $i is already running in $base/node-$i (pid $pid)" >&2; exit 3
    fi
  done
  ensure_classpath
  local ports=() p
  if [[ -n "${KAFKA_REF_CLUSTER_PORTS:-}" ]]; then
    read -r -a ports <<<"$KAFKA_REF_CLUSTER_PORTS"
    (( ${#ports[@]} == 2 * CLUSTER_NODES )) || die "KAFKA_REF_CLUSTER_PORTS needs $(( 2 * CLUSTER_NODES )) ports"
  else
    # Kafka writes the ports into its voters and advertised listeners: pick distinct free ones (racy).
    while (( ${#ports[@]} < 2 * CLUSTER_NODES )); do
      p="$(free_port)"; [[ -n "$p" ]] || die "no free loopback port"
      [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
    done
  fi
  for p in "${ports[@]}"; do port_open "$p" && die "port 127.0.0.1:$p is already in use"; done
  local voters="" bootstrap=""
  for i in $(seq 1 "$CLUSTER_NODES"); do
    voters+="${voters:+,}$i@127.0.0.1:${ports[2*i-1]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${ports[2*i-2]}"
  done
  local id cp dir
  id="$(random_cluster_id)"
  cp="$(cat "$CP_FILE")"
  local log4j="-Dlog4j2.configurationFile=$CACHE_DIR/log4j2.properties -Dkafka.ref.log.level=${KAFKA_REF_LOG_LEVEL:-INFO}"
  for i in $(seq 1 "$CLUSTER_NODES"); do
    dir="$base/node-$i"; mkdir -p "$dir"
    node_props "$dir" "$i" "${ports[2*i-2]}" "${ports[2*i-1]}" "$voters" >"$dir/server.properties"
    [[ -z "$extra" ]] || { echo "# --- from $extra"; cat "$extra"; echo; } >>"$dir/server.properties"
  done
  # The three formats run side by side (one JVM each, ~10 s on a busy 2-core machine).
  local fpids=()
  for i in $(seq 1 "$CLUSTER_NODES"); do
    dir="$base/node-$i"
    [[ -f "$dir/logs/meta.properties" ]] && continue
    # shellcheck disable=SC2086
    timeout 120 java -Xmx256m $log4j -cp "$cp" kafka.tools.StorageTool format \
      -t "$id" -c "$dir/server.properties" >>"$dir/kafka.log" 2>&1 &
    fpids+=("$i:$!")
  done
  for p in "${fpids[@]}"; do
    wait "${p#*:}" || { tail -n 20 "$base/node-${p%%:*}/kafka.log" >&2; die "StorageTool format failed for node ${p%%:*} (log: $base/node-${p%%:*}/kafka.log)"; }
  done
  local t0 pids=() offs=() left
  t0="$(now_ms)"
  for i in $(seq 1 "$CLUSTER_NODES"); do
    launch_node "$base/node-$i"; pids+=("$NODE_PID"); offs+=("$NODE_LOG_OFF")
  done
  for i in $(seq 1 "$CLUSTER_NODES"); do
    left=$(( START_TIMEOUT - ($(now_ms) - t0) / 1000 )); (( left > 0 )) || left=1
    if ! wait_node "$base/node-$i" "${pids[i-1]}" "${offs[i-1]}" "$left"; then
      KAFKA_REF_STOP_TIMEOUT=5 cmd_cluster_stop "$base" || true
      die "cluster node $i did not start (log: $base/node-$i/kafka.log)"
    fi
  done
  {
    echo "CLUSTER_ID=$id"
    echo "BOOTSTRAP=$bootstrap"
    for i in $(seq 1 "$CLUSTER_NODES"); do
      echo "NODE_${i}_PORT=${ports[2*i-2]} NODE_${i}_CONTROLLER_PORT=${ports[2*i-1]} NODE_${i}_PID=${pids[i-1]}"
    done
    echo "READY_MS=$(( $(now_ms) - t0 ))"
  } >"$base/cluster.env"
  cat "$base/cluster.env"
}

cmd_node_start() {
  [[ $# -eq 2 ]] || usage
  local base dir pid t0
  base="$(cd "$1" && pwd)" || die "no such cluster dir: $1"
  dir="$base/node-$2"
  [[ -f "$dir/server.properties" ]] || die "no node $2 in $base"
  if pid="$(running_pid "$dir")"; then echo "kafka-ref: node $2 is already running (pid $pid)" >&2; exit 3; fi
  ensure_classpath
  t0="$(now_ms)"
  launch_node "$dir"
  wait_node "$dir" "$NODE_PID" "$NODE_LOG_OFF" "$START_TIMEOUT" \
    || { KAFKA_REF_STOP_TIMEOUT=5 cmd_stop "$dir" || true; die "node $2 did not start"; }
  sed -i -E "s/NODE_$2_PID=[0-9]+/NODE_$2_PID=$NODE_PID/" "$base/cluster.env"
  echo "NODE_PID=$NODE_PID READY_MS=$(( $(now_ms) - t0 ))"
}

cmd_cluster_stop() {
  [[ $# -eq 1 ]] || usage
  [[ -d "$1" ]] || return 0
  local base d pid rc=0
  base="$(cd "$1" && pwd)"
  # SIGTERM to every node first: one by one, the last node's controlled shutdown would wait for a quorum
  # that is already gone (and be SIGKILLed after the grace period).
  for d in "$base"/node-*; do pid="$(running_pid "$d")" && kill -TERM "$pid" 2>/dev/null; done
  for d in "$base"/node-*; do [[ -d "$d" ]] && { cmd_stop "$d" || rc=1; }; done
  return "$rc"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  cluster-start) shift; cmd_cluster_start "$@" ;;
  node-start) shift; cmd_node_start "$@" ;;
  cluster-stop) shift; cmd_cluster_stop "$@" ;;
  classpath) ensure_classpath; cat "$CP_FILE" ;;
  setup) ensure_classpath; echo "$CACHE_DIR" ;;
  log4j) ensure_classpath; echo "$CACHE_DIR/log4j2.properties" ;;
  dist) ensure_dist ;;
  *) usage ;;
esac
