#!/usr/bin/env bash
# The quick-start demo: install, build, start a three-server Quorate quorum on
# 127.0.0.1 (configured as a ZooKeeper ensemble is: zoo.cfg with server.N
# lines, myid), use it with `quorate zk` (zkCli's verbs), show who leads with
# `quorate quorum status`, kill -9 the leader and write again. The quorum keeps
# running until Ctrl-C, unless --once is given.
# (The full demo, with controllers and the example service, comes with the
# controller milestone.)
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
if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 60000 ]; then echo "demo: --port must be in 1024..60000 (it uses PORT..PORT+2 and PORT+1000..PORT+1005)" >&2; exit 2; fi

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
start() {
  local i=$1
  node dist/src/cli/main.js quorum --zoo-cfg "$DIR/s$i/zoo.cfg" 2>>"$DIR/s$i/server.log" &
  PIDS[$i]=$!
}
for i in 1 2 3; do
  mkdir -p "$DIR/s$i/data"
  echo "$i" > "$DIR/s$i/data/myid"
  cat > "$DIR/s$i/zoo.cfg" <<CFG
tickTime=2000
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
cleanup() { for i in 1 2 3; do kill "${PIDS[$i]}" 2>/dev/null || true; done; wait 2>/dev/null || true; }
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

if [ "$ONCE" = 1 ]; then exit 0; fi
echo
echo "== The quorum keeps running. Try, from another shell:"
echo "   node dist/src/cli/main.js zk --server $CONNECT ls /"
echo "   node dist/src/cli/main.js quorum status --server $CONNECT"
echo "   /usr/share/zookeeper/bin/zkCli.sh -server $CONNECT   (if Debian's zookeeper package is installed)"
echo "   Ctrl-C stops it."
wait
