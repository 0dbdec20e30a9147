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

out=$(redis-cli -h "$host" -p "$port" REPLICAOF "$to_host" "$to_port" 2>&1)
case $out in OK*) ;; *) fail 5 "REPLICAOF $to_host $to_port on $host:$port answered: $out";; esac
role=$(redis-cli -h "$host" -p "$port" ROLE 2>&1 | head -n 1)
[ "$role" = slave ] || fail 5 "after REPLICAOF, $host:$port reports role '$role'"
echo "$host:$port is a replica of $what ($to_host:$to_port)"
