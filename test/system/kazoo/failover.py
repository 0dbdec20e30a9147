"""kazoo through a leader's kill -9: connected with a multi-server connect
string, writing all along; the test kills the leader when this script says
it is ready (argv[2]/ready) and says so (argv[2]/killed). The session, its
ephemeral and the writes must survive: at least 20 writes succeed after the
kill, and the node's version counts every acknowledged write."""
import os
import sys
import time

from kazoo.exceptions import ConnectionLoss, OperationTimeoutError, SessionMovedError
from kazoo.retry import KazooRetry

from common import check, client, main, unique_root, wait_for


def run(hosts):
    signals = sys.argv[2]
    zk = client(hosts, timeout=10.0)
    root = unique_root("failover")
    zk.ensure_path(root)
    session_id = zk.client_id[0]
    zk.create(root + "/eph", b"mine", ephemeral=True)
    zk.create(root + "/counter", b"0")
    open(os.path.join(signals, "ready"), "w").close()
    acked = 0
    after_kill = 0
    unknown = 0
    deadline = time.monotonic() + 30
    while after_kill < 20:
        check(time.monotonic() < deadline, "only %d writes succeeded after the kill" % after_kill)
        killed = os.path.exists(os.path.join(signals, "killed"))
        try:
            zk.set(root + "/counter", str(acked).encode())
            acked += 1
            if killed:
                after_kill += 1
        except (ConnectionLoss, OperationTimeoutError, SessionMovedError):
            unknown += 1  # the outcome of this one is unknown
            time.sleep(0.05)
        time.sleep(0.01)
    check(zk.client_id[0] == session_id, "the session changed: %x -> %x" % (session_id, zk.client_id[0]))
    stat = zk.exists(root + "/eph")
    check(stat is not None and stat.ephemeralOwner == session_id, "the ephemeral did not survive the failover")
    _, stat = zk.get(root + "/counter")
    check(acked <= stat.version <= acked + unknown, "version %d, acknowledged %d, unknown %d" % (stat.version, acked, unknown))


if __name__ == "__main__":
    main("failover", run)
