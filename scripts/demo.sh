#!/usr/bin/env bash
# The narrated tour of the quick start, built on `quorate demo` (which starts
# three quorum servers, three journal nodes and two instances of the example
# key-value service with their controllers, and starts again whatever dies):
# the quorum with `quorate zk`, writes and reads on the active instance, a
# kill -9 of the active service (the other takes over with the data), the
# killed one back as standby, and a manual failover back. Everything keeps
# running until Ctrl-C, unless --once is given (then the demo is stopped and
# the script exits 0). --port=N: the demo's base port (it uses N..N+21).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ONCE=0
PORT="${QUORATE_DEMO_PORT:-}"
for a in "$@"; do
  case "$a" in
    --once) ONCE=1 ;;
    --port=*) PORT="${a#--port=}" ;;
    *) echo "demo: unknown argument $a (use --once, --port=N)" >&2; exit 2 ;;
  esac
done
if [ -n "$PORT" ]; then
  case "$PORT" in *[!0-9]*) echo "demo: --port needs a number, got \"$PORT\"" >&2; exit 2 ;; esac
  if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 60000 ]; then echo "demo: --port must be in 1024..60000 (the demo uses PORT..PORT+21)" >&2; exit 2; fi
fi

[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
# The test suite runs the demo after building (rebuilding under other running tests would race them).
[ "${QUORATE_DEMO_NO_BUILD:-0}" = 1 ] || npm run build --silent

TOP="$(mktemp -d -t quorate-demo.XXXXXX)"
DIR="$TOP/run"
OUT="$TOP/demo.out"
quorate() { node dist/src/cli/main.js "$@"; }
node dist/src/cli/main.js demo --dir "$DIR" ${PORT:+--base-port "$PORT"} >"$OUT" 2>&1 &
DEMO_PID=$!
stop_demo() {
  kill -0 "$DEMO_PID" 2>/dev/null || return 0
  kill -TERM "$DEMO_PID" 2>/dev/null || true
  wait "$DEMO_PID"
}
trap 'stop_demo >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

# Evaluates JS with s = demo.json (read afresh; fetch at hand) and prints the result: node, not jq, which a fresh host may lack.
dj() { node -e "const s = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); const get = (u) => fetch(u, { signal: AbortSignal.timeout(2000) }).catch(() => null); (async () => $1)().then((v) => console.log(Array.isArray(v) ? v.join(' ') : v ?? ''))" "$DIR/demo.json"; }
fail() { echo "demo: $*" >&2; echo "--- the demo's output ($OUT):" >&2; tail -30 "$OUT" >&2; exit 1; }
# An HTTP call as the operator would make it: curl when there is one, else node's fetch (same output).
http() {
  local method=$1 url=$2 body=${3-}
  if command -v curl >/dev/null; then
    echo "\$ curl -sS -X $method ${body:+--data-binary '$body' }$url"
    curl -sS -X "$method" ${body:+--data-binary "$body"} -w ' [HTTP %{http_code}]\n' "$url" || true
  else
    echo "\$ (fetch) $method $url${body:+ <- '$body'}"
    node -e "fetch(process.argv[2], { method: process.argv[1], body: process.argv[3] || undefined }).then(async (r) => console.log(await r.text() + ' [HTTP ' + r.status + ']'), (e) => console.log(e.message))" "$method" "$url" "$body"
  fi
}

# Until demo.json says running (bounded: 180 s; the demo itself gives up sooner on a part that does not start).
for _ in $(seq 1 900); do
  kill -0 "$DEMO_PID" 2>/dev/null || fail "quorate demo exited before it was up"
  [ -f "$DIR/demo.json" ] && [ "$(dj s.phase)" = running ] && break
  sleep 0.2
done
[ "$(dj s.phase)" = running ] || fail "quorate demo was not up after 180 s"
CFG=$(dj s.configFile)
CONNECT=$(dj s.connectString)
IDS=$(dj "s.processes.filter((p) => p.kind === 'service').map((p) => p.instance)")
url() { dj "s.processes.find((p) => p.kind === '$1' && p.instance === '$2').urls.$3"; }
pid() { dj "s.processes.find((p) => p.kind === '$1' && p.instance === '$2').pid"; }
# The one instance whose controller says active (GET /active: 200 only there), or nothing.
active() { dj "{ const c = s.processes.filter((p) => p.kind === 'controller'); const a = (await Promise.all(c.map(async (p) => (await get(p.urls.admin + '/active'))?.status === 200 ? p.instance : null))).filter(Boolean); return a.length === 1 ? a[0] : ''; }"; }
ha_status() { echo "\$ quorate status --config $CFG --service kv"; quorate status --config "$CFG" --service kv || true; }
zk() { echo "\$ quorate zk --server $CONNECT $*"; quorate zk --server "$CONNECT" "$@"; }

echo "== quorate demo runs (data and logs in $DIR):"
sed -n '/^Quorum: /,/^$/p' "$OUT"
echo "== The quorum: three servers, one leader; quorate zk speaks to it as zkCli does"
echo "\$ quorate quorum status --server $CONNECT"
quorate quorum status --server "$CONNECT" || true
zk create /demo "hello from quorate"
zk create -s /demo/item- one
zk get -s /demo

A=$(active); [ -n "$A" ] || fail "no single active instance"
B=$(for i in $IDS; do [ "$i" != "$A" ] && echo "$i" && break; done)
echo "== The service kv: $A is active; writes go to it and are durable on a majority of the journal nodes"
ha_status
http PUT "$(url service "$A" service)/kv/greeting" "written on $A"
http GET "$(url service "$A" service)/kv/greeting"
echo "-- a standby refuses writes and names the active"
http PUT "$(url service "$B" service)/kv/greeting" "written on $B"

KILLED_PID=$(pid service "$A")
echo "== kill -9 of the active service ($A, pid $KILLED_PID); $B fences it (journal epoch) and takes over"
kill -9 "$KILLED_PID"
for _ in $(seq 1 300); do [ "$(active)" = "$B" ] && break; sleep 0.2; done
[ "$(active)" = "$B" ] || fail "$B did not become active"
ha_status
http GET "$(url service "$B" service)/kv/greeting"
http PUT "$(url service "$B" service)/kv/after" "written on $B after $A died"

echo "== The demo starts $A again; it comes back as standby (no automatic failback)"
for _ in $(seq 1 300); do
  [ "$(dj "{ const p = s.processes.find((p) => p.kind === 'service' && p.instance === '$A'); return p.pid !== $KILLED_PID && (await get(p.urls.service + '/health'))?.status === 200; }")" = true ] && break
  sleep 0.2
done
[ "$(pid service "$A")" != "$KILLED_PID" ] || fail "the demo did not start $A again"
grep -E "service $A .*(again|SIGKILL)" "$OUT" || true
# Until A's controller sees its service healthy again (a failover to it is refused before).
for _ in $(seq 1 300); do
  [ "$(dj "(await (await get(s.processes.find((p) => p.kind === 'controller' && p.instance === '$A').urls.admin + '/v1/status'))?.json())?.health")" = healthy ] && break
  sleep 0.2
done
ha_status
http GET "$(url service "$A" service)/kv/after"

echo "== A manual failover moves the role back to $A"
echo "\$ quorate failover --config $CFG --service kv --to $A"
quorate failover --config "$CFG" --service kv --to "$A"
ha_status
http PUT "$(url service "$A" service)/kv/greeting" "written on $A again"

if [ "$ONCE" = 1 ]; then
  echo "== Stopping the demo (SIGTERM): controllers, services, journal nodes, quorum servers"
  kill -TERM "$DEMO_PID"
  RC=0; wait "$DEMO_PID" || RC=$?
  tail -2 "$OUT"
  [ "$RC" = 0 ] || fail "quorate demo exited with $RC"
  rm -rf "$TOP" # a run that ends here leaves nothing behind; a failed one keeps its logs for a look
  exit 0
fi
echo
echo "== Everything keeps running; $A is active. Try, from another shell:"
echo "   node dist/src/cli/main.js status --config $CFG --service kv"
echo "   curl -X PUT --data-binary hello $(url service "$A" service)/kv/greeting"
echo "   curl -i $(url service "$B" service)/kv/greeting"
echo "   kill -9 $(pid service "$A")        # the active service: $B takes over, the demo starts $A again"
echo "   node dist/src/cli/main.js failover --config $CFG --service kv --to $B"
echo "   node dist/src/cli/main.js zk --server $CONNECT ls /quorate/quorate-demo/kv"
[ -x /usr/share/zookeeper/bin/zkCli.sh ] && echo "   /usr/share/zookeeper/bin/zkCli.sh -server $CONNECT"
echo "   What runs where: $DIR/demo.json; the demo's own messages: $OUT"
echo "   Ctrl-C stops everything."
wait "$DEMO_PID"
