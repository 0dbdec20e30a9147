#!/bin/sh
# Quorate's to-active hook for the Redis recipe: make this Redis the primary.
#
#   to-active.sh REDIS_HOST REDIS_PORT AGENT_URL [MAX_BEHIND_BYTES]
#
# The controller runs it once it holds the lock and has fenced the previous
# active, so the old primary takes no more writes and every replica's offset
# is final. A replica that lacks part of what another reachable replica holds
# would, once primary, make that one resynchronize from it and drop the
# difference: writes a client may have had acknowledged (WAIT 1 counts any one
# replica). So this refuses (exit 4) when the agent finds this Redis more than
# MAX_BEHIND_BYTES (default 0) behind a peer that may be promoted; the
# controller then backs off and the more advanced replica takes the lock.
# Exit 0 once Redis reports role master; anything else fails the promotion.
# A password: export REDISCLI_AUTH in the controller's environment.
set -u

fail() { code=$1; shift; echo "to-active: $*" >&2; exit "$code"; }

[ $# -ge 3 ] && [ $# -le 4 ] || fail 2 "usage: to-active.sh REDIS_HOST REDIS_PORT AGENT_URL [MAX_BEHIND_BYTES]"
host=$1 port=$2 agent=$3 max=${4:-0}
case $port in ''|*[!0-9]*) fail 2 "REDIS_PORT must be a port number, got '$port'";; esac
case $max in ''|*[!0-9]*) fail 2 "MAX_BEHIND_BYTES must be a whole number of bytes, got '$max'";; esac
command -v redis-cli >/dev/null || fail 2 "redis-cli is not installed (apt-get install redis-tools)"
command -v curl >/dev/null || fail 2 "curl is not installed"

answer=$(curl -sS --fail --max-time 2 "$agent/v1/behind" 2>&1) || fail 3 "cannot ask the agent at $agent how far behind this Redis is: $answer"
set -- $answer
behind=${1:-} peer=${2:-}
case $behind in ''|*[!0-9]*) fail 3 "the agent at $agent answered '$answer', not 'BYTES PEER'";; esac
if [ "$behind" -gt "$max" ]; then
  fail 4 "refusing to promote: this Redis is $behind bytes behind instance $peer (more than $max); the controller backs off and $peer can take over"
fi

out=$(redis-cli -h "$host" -p "$port" REPLICAOF NO ONE 2>&1)
[ "$out" = OK ] || fail 5 "REPLICAOF NO ONE on $host:$port answered: $out"
role=$(redis-cli -h "$host" -p "$port" ROLE 2>&1 | head -n 1)
[ "$role" = master ] || fail 5 "after REPLICAOF NO ONE, $host:$port reports role '$role'"
echo "$host:$port is the primary ($behind bytes behind the most advanced peer)"
