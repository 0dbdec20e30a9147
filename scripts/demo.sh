#!/usr/bin/env bash
# The quick-start demo: install, build, start a three-server Quorate quorum on
# 127.0.0.1 (configured as a ZooKeeper ensemble is: zoo.cfg with server.N
# lines, myid), use it with `quorate zk` (zkCli's verbs), show who leads with
# `quorate quorum status`, kill -9 the leader and write again. Then the HA
# part: three journal nodes, two instances of the example service (writing to
# their journal while active) and their controllers; `quorate status`, kill -9
# of the active service (the other takes over), a manual failover back.
# Everything keeps running until Ctrl-C, unless --once is given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ONCE=0
PORT="${QUORATE_DEMO_PORT:-2181}"
for a in "$@"; do
  case "$a" in
    --once) ONCE=1 ;;
    --port=*) PORT="${a#--port=}" ;;
    *) echo "demo: unknown argument $a (use --once, --port=N)" >&2; exit 2 ;;
  esac
done
case "$PORT" in ''|*[!0-9]*) echo "demo: --port needs a number, got \"$PORT\"" >&2; exit 2 ;; esac
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 60000 ]; then echo "demo: --port must be in 1024..60000 (it uses PORT..PORT+2, PORT+1000..PORT+1005 and PORT+1100..PORT+1301)" >&2; exit 2; fi

[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
# The test suite runs the demo after building (rebuilding under other running tests would race them).
[ "${QUORATE_DEMO_NO_BUILD:-0}" = 1 ] || npm run build --silent

DIR="$(mktemp -d -t quorate-demo.XXXXXX)"
SERVERS=""
for i in 1 2 3; do
  SERVERS="${SERVERS}server.$i=127.0.0.1:$((PORT + 1000 + i * 2 - 2)):$((PORT + 1000 + i * 2 - 1));127.0.0.1:$((PORT + i - 1))
"
done
declare -a PIDS=(0 0 0 0)
declare -a HA_PIDS=()
start() {
  local i=$1
  node dist/src/cli/main.js quorum --zoo-cfg "$DIR/s$i/zoo.cfg" 2>>"$DIR/s$i/server.log" &
  PIDS[$i]=$!
}
for i in 1 2 3; do
  mkdir -p "$DIR/s$i/data"
  echo "$i" > "$DIR/s$i/data/myid"
  cat > "$DIR/s$i/zoo.cfg" <<CFG
tickTime=200
initLimit=10
syncLimit=5
dataDir=$DIR/s$i/data
clientPort=$((PORT + i - 1))
clientPortAddress=127.0.0.1
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,cons,wchs,dirs,isro,envi
$SERVERS
CFG
  start "$i"
done
cleanup() { for p in "${HA_PIDS[@]}" "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

CONNECT="127.0.0.1:$PORT,127.0.0.1:$((PORT + 1)),127.0.0.1:$((PORT + 2))"
quorate() { node dist/src/cli/main.js "$@"; }
# Until exactly one server leads (bounded: 30 s).
wait_leader() {
  for _ in $(seq 1 300); do
    if quorate quorum status --server "$CONNECT" >/dev/null 2>&1; then return 0; fi
    for i in 1 2 3; do
      if [ "${PIDS[$i]}" != 0 ] && ! kill -0 "${PIDS[$i]}" 2>/dev/null && [ "${KILLED:-0}" != "$i" ]; then
        echo "demo: server $i exited:"; tail -20 "$DIR/s$i/server.log"; exit 1
      fi
    done
    sleep 0.1
  done
  echo "demo: no leader after 30 s"; quorate quorum status --server "$CONNECT" || true; exit 1
}

zk() { echo "\$ quorate zk --server $CONNECT $*"; quorate zk --server "$CONNECT" "$@"; }
status() { echo "\$ quorate quorum status --server $CONNECT"; quorate quorum status --server "$CONNECT" || true; }

wait_leader
echo "== A Quorate quorum of three on 127.0.0.1 (client ports $PORT-$((PORT + 2))), data and logs in $DIR"
status
zk create /demo "hello from quorate"
zk create -s /demo/item- one
zk create -s /demo/item- two
zk ls /demo
zk get -s /demo

LEADER_PORT=$(quorate quorum status --server "$CONNECT" | awk '$2 == "leader" { split($1, a, ":"); print a[2] }')
KILLED=$((LEADER_PORT - PORT + 1))
echo "== kill -9 of the leader (server $KILLED, pid ${PIDS[$KILLED]}); the other two elect a new one"
kill -9 "${PIDS[$KILLED]}"
wait_leader
status
zk set /demo "written after the leader died"
zk get /demo
echo "== server $KILLED restarts and catches up as a follower"
start "$KILLED"
KILLED=0
for _ in $(seq 1 300); do
  [ "$(quorate quorum status --server "$CONNECT" | grep -c -E ' (leader|follower) ')" = 3 ] && break
  sleep 0.1
done
status

# ---- the HA part: journal nodes, the example service, controllers ----------
J=$((PORT + 1100)); S=$((PORT + 1200)); A=$((PORT + 1300))
CFG="$DIR/cluster.yaml"
hooks() { echo "{ toActive: { http: \"http://127.0.0.1:$1/role\" }, toStandby: { http: \"http://127.0.0.1:$1/role\" }, role: { http: \"http://127.0.0.1:$1/role\" } }"; }
cat > "$CFG" <<CFG
cluster: demo
journal:
  dataDir: $DIR/journal-{id}
  nodes:
    - { id: 1, host: 127.0.0.1, port: $J }
    - { id: 2, host: 127.0.0.1, port: $((J + 1)) }
    - { id: 3, host: 127.0.0.1, port: $((J + 2)) }
controller:
  connectString: $CONNECT
  sessionTimeoutMs: 6000
  allowLoopbackWithoutToken: true
services:
  - name: orders
    journal: true
    fencing: [graceful, journal]
    instances:
      - { id: a, host: 127.0.0.1, adminPort: $A, servicePort: $S, hooks: $(hooks $S) }
      - { id: b, host: 127.0.0.1, adminPort: $((A + 1)), servicePort: $((S + 1)), hooks: $(hooks $((S + 1))) }
CFG
# Started as node itself (not through the quorate function) so that $! is the process to stop.
for i in 1 2 3; do node dist/src/cli/main.js journal --config "$CFG" --id "$i" 2>>"$DIR/journal-$i.log" & HA_PIDS+=($!); done
JN="1@127.0.0.1:$J,2@127.0.0.1:$((J + 1)),3@127.0.0.1:$((J + 2))"
declare -A SVC_PID
start_service() { node dist/examples/example-service.js --instance "$1" --port "$2" --journal-nodes "$JN" --journal orders 2>>"$DIR/service-$1.log" & SVC_PID[$1]=$!; HA_PIDS+=($!); }
start_service a "$S"
start_service b "$((S + 1))"
for id in a b; do node dist/src/cli/main.js controller --config "$CFG" --service orders --id "$id" 2>>"$DIR/controller-$id.log" & HA_PIDS+=($!); done
ha_status() { echo "\$ quorate status --config $CFG --service orders"; quorate status --config "$CFG" --service orders || true; }
# Until exactly one instance is active (bounded: 30 s).
wait_active() {
  for _ in $(seq 1 300); do
    quorate status --config "$CFG" --service orders >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "demo: no single active instance after 30 s"; ha_status; tail -5 "$DIR"/controller-*.log; exit 1
}
wait_active
echo "== Two instances of the example service, each with a controller; the active one writes to its journal"
ha_status
ACTIVE=$(quorate status --config "$CFG" --service orders | awk '$2 == "ACTIVE" { print $1 }')
echo "== kill -9 of the active service ($ACTIVE); the other instance fences it (journal epoch) and takes over"
kill -9 "${SVC_PID[$ACTIVE]}"
wait "${SVC_PID[$ACTIVE]}" 2>/dev/null || true
sleep 0.5
wait_active
ha_status
echo "== $ACTIVE's service restarts: it comes back standby (no automatic failback); a manual failover moves the role back"
if [ "$ACTIVE" = a ]; then start_service a "$S"; else start_service b "$((S + 1))"; fi
for _ in $(seq 1 300); do quorate status --config "$CFG" --service orders --json 2>/dev/null | grep -q '"health": "unhealthy"' || break; sleep 0.1; done
sleep 0.5
echo "\$ quorate failover --config $CFG --service orders --to $ACTIVE"
quorate failover --config "$CFG" --service orders --to "$ACTIVE"
ha_status
echo "\$ quorate journal status --config $CFG --journal orders"
quorate journal status --config "$CFG" --journal orders || true

if [ "$ONCE" = 1 ]; then exit 0; fi
echo
echo "== Everything keeps running. Try, from another shell:"
echo "   node dist/src/cli/main.js status --config $CFG --service orders"
echo "   node dist/src/cli/main.js failover --config $CFG --service orders"
echo "   node dist/src/cli/main.js zk --server $CONNECT ls /quorate/demo/orders"
echo "   node dist/src/cli/main.js quorum status --server $CONNECT"
echo "   /usr/share/zookeeper/bin/zkCli.sh -server $CONNECT   (if Debian's zookeeper package is installed)"
echo "   Ctrl-C stops it."
wait
