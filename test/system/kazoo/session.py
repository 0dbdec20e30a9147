"""Session loss with kazoo: expire a session the way kazoo's test harness
used to (connect a second client with the same session id and password, then
close it); the first client's listener must see LOST, its ephemerals must be
gone, and kazoo must come back with a new session."""
import logging
import threading
import time

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from common import check, client, main, stop_quietly, unique_root, wait_for


def run(hosts):
    root = unique_root("session")
    observer = client(hosts)
    observer.ensure_path(root)

    # Short session (4 s = 2 x the default tickTime, the server's minimum).
    zk = client(hosts, timeout=4.0)
    states = []
    lock = threading.Lock()

    def listener(state):
        with lock:
            states.append(state)

    zk.add_listener(listener)
    session_id, password = zk.client_id
    check(session_id != 0 and len(password) == 16, "client_id %r" % (zk.client_id,))
    eph = root + "/eph"
    zk.create(eph, b"mine", ephemeral=True)
    stat = observer.exists(eph)
    check(stat is not None and stat.ephemeralOwner == session_id,
          "ephemeralOwner %r != session %x" % (stat and stat.ephemeralOwner, session_id))

    # A data watch from the observer sees the ephemeral go away.
    deleted = threading.Event()

    def on_event(event):
        if event.type == "DELETED":
            deleted.set()

    observer.exists(eph, watch=on_event)

    # Expire: a second client takes over the session, then closes it.
    t0 = time.monotonic()
    thief = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=4.0)
    thief.start(timeout=15)
    check(thief.client_id[0] == session_id, "second client got a different session %r" % (thief.client_id,))
    thief.stop()
    thief.close()

    check(deleted.wait(10), "ephemeral of the closed session was not deleted")
    check(observer.exists(eph) is None, "ephemeral still there")
    wait_for(lambda: KazooState.LOST in states, 15, "the first client's listener to see LOST (states %r)" % states)
    lost_after = time.monotonic() - t0

    # kazoo reconnects on its own with a brand-new session.
    wait_for(lambda: zk.connected and zk.client_id and zk.client_id[0] != session_id, 15,
             "a new session after LOST (state %s)" % zk.state)
    with lock:
        seen = list(states)
    check(seen[-1] == KazooState.CONNECTED, "last state %r" % seen)
    check(zk.exists(eph) is None, "the new session still sees the old ephemeral")
    zk.create(eph, b"again", ephemeral=True)
    check(observer.exists(eph).ephemeralOwner == zk.client_id[0], "new ephemeral has the wrong owner")

    # A closed session cannot be resumed: the server answers the reconnect
    # with "expired" (kazoo logs "Session has expired") and kazoo starts over
    # with a new session.
    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    klog = logging.getLogger("kazoo.client")
    capture = Capture(level=logging.WARNING)
    klog.addHandler(capture)
    klog.setLevel(logging.WARNING)
    klog.propagate = False
    try:
        ghost = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=4.0)
        ghost.start(timeout=15)
        check(ghost.client_id[0] != session_id, "the closed session %x was resumed" % session_id)
        check(any("expired" in r.lower() for r in records), "kazoo did not see an expiry: %r" % records)
        stop_quietly(ghost)
    finally:
        klog.removeHandler(capture)
        klog.setLevel(logging.CRITICAL)

    zk.stop()
    wait_for(lambda: observer.exists(eph) is None, 10, "ephemeral gone after a clean stop")
    observer.delete(root, recursive=True)
    print("session lost noticed %.2fs after the second client took over; states %s" % (lost_after, seen))


if __name__ == "__main__":
    main("session", run)
