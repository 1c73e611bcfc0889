#!/usr/bin/env bash
# A real, local Apache Kafka broker (KRaft, one node that is both broker and controller)
# for machines without Docker: tests, CI, a laptop. Jars come from Maven Central through
# infra/kafka/pom.xml into .cache/kafka/<version>/lib at the repo root.
#
#   infra/kafka/kafka.sh fetch
#   infra/kafka/kafka.sh start  [--port N] [--controller-port N] [--dir DIR]
#   infra/kafka/kafka.sh stop   [--dir DIR]
#   infra/kafka/kafka.sh status [--dir DIR]
#   infra/kafka/kafka.sh run-class CLASS [ARGS...]    (a Kafka tool from the same classpath)
#
# `start` prints only the bootstrap address (127.0.0.1:PORT) on stdout; progress goes to
# stderr, so `BOOTSTRAP=$(infra/kafka/kafka.sh start)` works.
#
# Environment: KAFKA_VERSION (default: the one in pom.xml), KAFKA_PORT, KAFKA_DIR,
# KAFKA_HEAP_OPTS (default -Xms128m -Xmx512m), KAFKA_START_TIMEOUT (s, default 60),
# KAFKA_STOP_TIMEOUT (s, default 30), JAVA_HOME.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$SCRIPT_DIR/pom.xml"

die() { echo "kafka.sh: error: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*" >&2; }

pom_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1; }
KAFKA_VERSION=${KAFKA_VERSION:-$(pom_version)}
[[ -n "$KAFKA_VERSION" ]] || die "no kafka.version in $POM"
CACHE_DIR="$REPO_ROOT/.cache/kafka/$KAFKA_VERSION"
LIB_DIR="$CACHE_DIR/lib"

DEFAULT_PORT=${KAFKA_PORT:-9092}
DEFAULT_DIR=${KAFKA_DIR:-$REPO_ROOT/.cache/kafka/run}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}

# ---------------------------------------------------------------- prerequisites

JAVA=""
find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA=$(command -v java)
  else
    die "Java not found: install a JDK/JRE 17 or newer (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  local line major
  line=$("$JAVA" -version 2>&1 | head -n1)
  major=$(sed -n 's/.*version "\([0-9][0-9]*\)[."].*/\1/p' <<<"$line")
  [[ "$major" == 1 ]] && major=$(sed -n 's/.*version "1\.\([0-9]*\).*/\1/p' <<<"$line")
  [[ -n "$major" ]] || die "cannot tell the Java version from: $line"
  (( major >= 17 )) || die "Kafka $KAFKA_VERSION needs Java 17 or newer; $JAVA is: $line"
}

fetched() { [[ -f "$LIB_DIR/.complete" ]]; }

# ---------------------------------------------------------------- fetch

cmd_fetch() {
  if fetched; then
    say "Kafka $KAFKA_VERSION jars already in ${LIB_DIR#"$REPO_ROOT"/}"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) not found: it resolves Kafka's jars from Maven Central (Debian: apt-get install maven)"
  mkdir -p "$CACHE_DIR"
  # one fetch at a time per version (two test runners may start together)
  exec 8>"$CACHE_DIR/.fetch.lock"
  if command -v flock >/dev/null 2>&1; then flock 8; fi
  if fetched; then exec 8>&-; return 0; fi
  say "resolving Kafka $KAFKA_VERSION from Maven Central into ${LIB_DIR#"$REPO_ROOT"/} ..."
  local tmp="$CACHE_DIR/lib.tmp.$$" mvnlog="$CACHE_DIR/fetch.log"
  rm -rf "$tmp"
  if ! mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    tail -n 40 "$mvnlog" >&2
    rm -rf "$tmp"
    die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full log: $mvnlog)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn finished but $tmp has no kafka_2.13 jar"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  touch "$LIB_DIR/.complete"
  exec 8>&-   # release the lock (and keep the fd out of a broker started next)
  say "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIB_DIR" | cut -f1))"
}

# ---------------------------------------------------------------- helpers

PORT="" CPORT="" DIR="" PORT_GIVEN=0
parse_opts() {
  while (( $# )); do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; PORT=$2; PORT_GIVEN=1; shift 2 ;;
      --port=*) PORT=${1#*=}; PORT_GIVEN=1; shift ;;
      --controller-port) [[ $# -ge 2 ]] || die "--controller-port needs a value"; CPORT=$2; shift 2 ;;
      --controller-port=*) CPORT=${1#*=}; shift ;;
      --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR=$2; shift 2 ;;
      --dir=*) DIR=${1#*=}; shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option: $1 (see: kafka.sh --help)" ;;
    esac
  done
  PORT=${PORT:-$DEFAULT_PORT}
  if ! [[ "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then die "bad port: $PORT"; fi
  CPORT=${CPORT:-$((PORT + 1))}
  if ! [[ "$CPORT" =~ ^[0-9]+$ ]] || (( CPORT < 1 || CPORT > 65535 || CPORT == PORT )); then
    die "bad controller port: $CPORT"
  fi
  DIR=${DIR:-$DEFAULT_DIR}
  [[ "$DIR" == /* ]] || DIR="$PWD/$DIR"
  if [[ -d "$DIR" ]]; then DIR=$(cd "$DIR" && pwd); fi
}

pid_file() { echo "$DIR/kafka.pid"; }

# the broker's pid if this dir's broker is alive, else nothing
running_pid() {
  local pf pid
  pf=$(pid_file)
  [[ -f "$pf" ]] || return 1
  pid=$(cat "$pf" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  # guard against a recycled pid: it must be kafka.Kafka on this dir's config
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $DIR/server.properties" || return 1
  echo "$pid"
}

# alive = exists and is not a zombie waiting to be reaped
alive() {
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

recorded_port() { cat "$DIR/kafka.port" 2>/dev/null || echo "?"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A real Kafka request without a JVM: ApiVersions v0 over bash's /dev/tcp.
# Request: size=15 | api_key=18 | api_version=0 | correlation_id=0x0EBBF10A | client_id="ready"
# Response: size(4) | correlation_id(4) | error_code(2). Ready when the id echoes and error is 0.
api_versions_ok() {
  local port=$1 reply
  # shellcheck disable=SC2016
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x0e\xbb\xf1\x0a\x00\x05ready" >&3
    head -c 10 <&3 | od -An -tx1 | tr -d " \n"
  ' _ "$port" 2>/dev/null) || return 1
  [[ "${reply:8:12}" == "0ebbf10a0000" ]]
}

new_cluster_id() {
  # Kafka's Uuid: 16 random bytes, url-safe base64 without padding (22 chars); Kafka never
  # hands out ids starting with '-', so neither do we
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

write_server_properties() {
  cat >"$DIR/server.properties" <<EOF
# written by infra/kafka/kafka.sh on every start; edits are lost
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data

# one node: every internal topic has one replica
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

# after a kill -9 the restarted controller refuses the broker's new registration until the
# old one's session times out (default 9 s); a shorter session makes that restart quicker
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000

auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
EOF
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- start

cmd_start() {
  parse_opts "$@"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  # one start at a time per dir: a second caller waits, then finds the broker running
  exec 9>"$DIR/.start.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  local pid
  if pid=$(running_pid); then
    local rp
    rp=$(recorded_port)
    if (( PORT_GIVEN )) && [[ "$rp" != "$PORT" ]]; then
      die "a broker already runs from $DIR on port $rp (pid $pid), not $PORT; stop it first"
    fi
    say "already running (pid $pid, dir $DIR)"
    echo "127.0.0.1:$rp"
    return 0
  fi
  rm -f "$(pid_file)"

  find_java
  fetched || cmd_fetch

  port_open "$PORT" && die "port $PORT on 127.0.0.1 is already in use by another process"
  port_open "$CPORT" && die "controller port $CPORT on 127.0.0.1 is already in use by another process"

  write_server_properties
  echo "$PORT" >"$DIR/kafka.port"
  local cp="$LIB_DIR/*"
  local log4j_opt="-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-server.properties"

  if [[ ! -f "$DIR/data/meta.properties" ]]; then
    local cid
    cid=$(new_cluster_id)
    say "formatting $DIR/data (cluster id $cid)"
    if ! "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-tools.properties" -cp "$cp" kafka.tools.StorageTool format \
        -t "$cid" -c "$DIR/server.properties" --ignore-formatted >"$DIR/format.log" 2>&1; then
      cat "$DIR/format.log" >&2
      die "formatting the storage failed (log: $DIR/format.log)"
    fi
  fi

  [[ -f "$DIR/kafka.log" ]] && mv -f "$DIR/kafka.log" "$DIR/kafka.log.1"
  mkdir -p "$DIR/logs"
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # bash -c writes its own pid, then execs java in place: the pid file is the JVM's pid
  # shellcheck disable=SC2086,SC2016
  "${launcher[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file)" \
    "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dkafka.logs.dir="$DIR/logs" "$log4j_opt" \
    -cp "$cp" kafka.Kafka "$DIR/server.properties" \
    </dev/null >"$DIR/kafka.log" 2>&1 8>&- 9>&- &
  local launched=$!

  say "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CPORT), dir $DIR"
  local t0=$SECONDS
  pid=""
  while (( SECONDS - t0 < START_TIMEOUT )); do
    if [[ -z "$pid" ]]; then pid=$(cat "$(pid_file)" 2>/dev/null || true); fi
    if ! alive "${pid:-$launched}"; then
      say "the broker exited during startup; last lines of $DIR/kafka.log:"
      tail -n 40 "$DIR/kafka.log" >&2 || true
      rm -f "$(pid_file)"
      die "Kafka did not start"
    fi
    if grep -q 'Kafka Server started' "$DIR/kafka.log" 2>/dev/null && api_versions_ok "$PORT"; then
      say "ready in $((SECONDS - t0)) s (pid $pid)"
      echo "127.0.0.1:$PORT"
      return 0
    fi
    sleep 0.25
  done
  say "not ready after ${START_TIMEOUT} s; last lines of $DIR/kafka.log:"
  tail -n 40 "$DIR/kafka.log" >&2 || true
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(pid_file)"
  die "Kafka was not ready within ${START_TIMEOUT} s (raise KAFKA_START_TIMEOUT?)"
}

# ---------------------------------------------------------------- stop / status

cmd_stop() {
  parse_opts "$@"
  local pid
  if ! pid=$(running_pid); then
    rm -f "$(pid_file)"
    say "not running (dir $DIR)"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local t0=$SECONDS
  while alive "$pid" && (( SECONDS - t0 < STOP_TIMEOUT )); do sleep 0.2; done
  if alive "$pid"; then
    say "still alive after ${STOP_TIMEOUT} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  # the dead JVM stays a zombie until init reaps it (~1 s here); wait for that, so that
  # `kill -0 PID` or `ps -p PID` right after stop already says it is gone
  t0=$SECONDS
  while [[ -e "/proc/$pid" ]] && (( SECONDS - t0 < 5 )); do sleep 0.1; done
  rm -f "$(pid_file)"
  say "stopped"
}

cmd_status() {
  parse_opts "$@"
  local pid port
  if pid=$(running_pid); then
    port=$(recorded_port)
    if api_versions_ok "$port"; then
      echo "running: pid $pid, bootstrap 127.0.0.1:$port, dir $DIR, Kafka $KAFKA_VERSION"
      return 0
    fi
    echo "starting or unresponsive: pid $pid, port $port, dir $DIR"
    return 1
  fi
  echo "not running (dir $DIR)"
  return 3
}

cmd_run_class() {
  (( $# )) || die "run-class needs a main class, e.g. org.apache.kafka.tools.TopicCommand"
  find_java
  fetched || cmd_fetch
  exec "$JAVA" -Xmx256m "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-tools.properties" \
    -cp "$LIB_DIR/*" "$@"
}

# ---------------------------------------------------------------- main

sub=${1:-}
(( $# )) && shift
case "$sub" in
  fetch) cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  run-class) cmd_run_class "$@" ;;
  classpath) echo "$LIB_DIR/*" ;;
  -h|--help|help) usage ;;
  "") usage >&2; exit 2 ;;
  *) die "unknown command: $sub (fetch | start | stop | status | run-class | classpath)" ;;
esac
