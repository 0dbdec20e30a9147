#!/bin/sh
# A shell fencing method for the Redis recipe, run by the controller that is
# about to promote its instance, against the previous active (Quorate sets
# QUORATE_TARGET_HOST and QUORATE_TARGET_PORT: that instance's host and its
# servicePort, the Redis port). For the case graceful fencing cannot handle:
# the old active's controller is gone but its Redis still runs. It makes that
# Redis a replica of nobody (read-only); the controller then counts the fence
# once the Redis port is closed or the target's role hook answers standby.
# A Redis that is not running (connection refused) is left to that check.
# A hung Redis (SIGSTOP, a stuck host) is beyond this: follow with an ssh
# method that kills it (see cluster.yaml).
set -u
host=${QUORATE_TARGET_HOST:?QUORATE_TARGET_HOST is not set: run by the Quorate controller as a fencing method}
port=${QUORATE_TARGET_PORT:?QUORATE_TARGET_PORT is not set: give the instance a servicePort (its Redis port)}
out=$(redis-cli -h "$host" -p "$port" REPLICAOF 127.0.0.1 0 2>&1)
case $out in
  OK*) echo "fence: $host:$port is now a replica of nobody"; exit 0 ;;
  *"Connection refused"*) echo "fence: $host:$port refuses connections (not running)"; exit 0 ;;
esac
echo "fence: REPLICAOF 127.0.0.1 0 on $host:$port answered: $out" >&2
exit 1
