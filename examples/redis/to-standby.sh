#!/bin/sh
# Quorate's to-standby hook for the Redis recipe: stop taking writes now.
#
#   to-standby.sh REDIS_HOST REDIS_PORT AGENT_URL
#
# The controller runs it when it demotes this instance: on its own (unhealthy,
# lease lost, asked to cede) or because the next active is fencing it, in which
# case nobody is active yet. It makes this Redis a replica of the active when
# the agent knows one, else a replica of nobody (127.0.0.1 port 0 never
# answers): read-only either way, which is what fences a Redis. The agent points
# it at the new active as soon as there is one.
# A primary first stops taking writes (CLIENT PAUSE WRITE) and gives its online
# replicas up to 2 s to receive everything it has: REPLICAOF drops what is still
# in its buffers for them, and the next active's to-active.sh would refuse to be
# promoted without it (a planned failover, quorate failover, would fail).
# Exit 0 once Redis reports role slave.
set -u

fail() { code=$1; shift; echo "to-standby: $*" >&2; exit "$code"; }

[ $# -eq 3 ] || fail 2 "usage: to-standby.sh REDIS_HOST REDIS_PORT AGENT_URL"
host=$1 port=$2 agent=$3
case $port in ''|*[!0-9]*) fail 2 "REDIS_PORT must be a port number, got '$port'";; esac
command -v redis-cli >/dev/null || fail 2 "redis-cli is not installed (apt-get install redis-tools)"

# Not knowing the active is no reason to stay writable: the agent may be down, or nobody is active yet.
primary=$(curl -sS --fail --max-time 1 "$agent/v1/primary" 2>/dev/null) || primary=
set -- $primary
if [ $# -eq 3 ] && ! { [ "$1" = "$host" ] && [ "$2" = "$port" ]; }; then
  to_host=$1 to_port=$2 what="instance $3"
else
  to_host=127.0.0.1 to_port=0 what="nobody yet"
fi

# Replicas (online, by what this primary's INFO lists) whose own offset is below this primary's.
replicas_behind() {
  info=$(redis-cli -h "$host" -p "$port" INFO replication 2>/dev/null | tr -d '\r')
  offset=$(printf '%s\n' "$info" | sed -n 's/^master_repl_offset:\([0-9]*\)$/\1/p')
  [ -n "$offset" ] || { echo 0; return; }
  n=0
  # The primary learns replicas' offsets from their acknowledgements, once a second: ask them.
  for r in $(printf '%s\n' "$info" | sed -n 's/^slave[0-9]*:ip=\([^,]*\),port=\([0-9]*\),state=online,.*/\1:\2/p'); do
    theirs=$(redis-cli -h "${r%:*}" -p "${r##*:}" INFO replication 2>/dev/null | tr -d '\r' | sed -n 's/^master_repl_offset:\([0-9]*\)$/\1/p')
    if [ -z "$theirs" ] || [ "$theirs" -lt "$offset" ]; then n=$((n + 1)); fi
  done
  echo $n
}

if [ "$(redis-cli -h "$host" -p "$port" ROLE 2>/dev/null | head -n 1)" = master ]; then
  redis-cli -h "$host" -p "$port" CLIENT PAUSE 3000 WRITE >/dev/null 2>&1
  tries=0
  while behind=$(replicas_behind) && [ "$behind" -gt 0 ] && [ $tries -lt 20 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  [ "$behind" -eq 0 ] || echo "to-standby: $behind replica(s) still behind after 2 s; stepping down anyway" >&2
fi

out=$(redis-cli -h "$host" -p "$port" REPLICAOF "$to_host" "$to_port" 2>&1)
case $out in OK*) ;; *) fail 5 "REPLICAOF $to_host $to_port on $host:$port answered: $out";; esac
role=$(redis-cli -h "$host" -p "$port" ROLE 2>&1 | head -n 1)
[ "$role" = slave ] || fail 5 "after REPLICAOF, $host:$port reports role '$role'"
# Writes paused above now meet a replica and fail (READONLY) instead of waiting for the pause to end.
redis-cli -h "$host" -p "$port" CLIENT UNPAUSE >/dev/null 2>&1
echo "$host:$port is a replica of $what ($to_host:$to_port)"
