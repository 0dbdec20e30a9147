#!/usr/bin/env bash
# The quick-start demo: install, build, start a Quorate quorum server on
# 127.0.0.1, and use it with `quorate zk` (zkCli's verbs) and a four-letter
# word. The server keeps running until Ctrl-C, unless --once is given.
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

[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run build --silent

DIR="$(mktemp -d -t quorate-demo.XXXXXX)"
cat > "$DIR/zoo.cfg" <<CFG
tickTime=2000
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,cons,wchs,dirs,isro,envi
CFG
mkdir -p "$DIR/data"

node dist/src/cli/main.js quorum --zoo-cfg "$DIR/zoo.cfg" 2>"$DIR/server.log" &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "demo: the server did not start:"; cat "$DIR/server.log"; exit 1; }
  sleep 0.1
done

zk() { echo "\$ quorate zk --server 127.0.0.1:$PORT $*"; node dist/src/cli/main.js zk --server "127.0.0.1:$PORT" "$@"; }
echo "== Quorate quorum server (standalone) on 127.0.0.1:$PORT, data in $DIR/data, log in $DIR/server.log"
zk create /demo "hello from quorate"
zk create -s /demo/item- one
zk create -s /demo/item- two
zk ls /demo
zk get -s /demo
zk set /demo "changed"
zk get /demo
echo "\$ echo srvr | nc 127.0.0.1 $PORT"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf srvr >&3; cat <&3; exec 3<&-

if [ "$ONCE" = 1 ]; then exit 0; fi
echo
echo "== The server keeps running. Try, from another shell:"
echo "   node dist/src/cli/main.js zk --server 127.0.0.1:$PORT ls /"
echo "   /usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:$PORT   (if Debian's zookeeper package is installed)"
echo "   Ctrl-C stops it."
wait "$SERVER"
