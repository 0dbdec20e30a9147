"""kazoo Lock: two clients contend; at most one holder at a time."""
import threading
import time

from kazoo.exceptions import LockTimeout

from common import check, client, main, unique_root, wait_for

ROUNDS = 15  # per client


def run(hosts):
    root = unique_root("lock")
    a = client(hosts)
    b = client(hosts)
    a.ensure_path(root)
    a.create(root + "/counter", b"0")
    lock_path = root + "/lock"

    holders = []          # identifiers currently inside the critical section
    max_holders = [0]
    guard = threading.Lock()
    errors = []

    def worker(zk, ident):
        lk = zk.Lock(lock_path, ident)
        try:
            for _ in range(ROUNDS):
                check(lk.acquire(timeout=20), "%s could not get the lock within 20s" % ident)
                try:
                    with guard:
                        holders.append(ident)
                        max_holders[0] = max(max_holders[0], len(holders))
                    # unprotected read-modify-write: only correct under mutual exclusion
                    data, stat = zk.get(root + "/counter")
                    time.sleep(0.002)
                    zk.set(root + "/counter", str(int(data) + 1).encode())
                    with guard:
                        holders.remove(ident)
                finally:
                    lk.release()
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %r" % (ident, e))

    ta = threading.Thread(target=worker, args=(a, "client-a"))
    tb = threading.Thread(target=worker, args=(b, "client-b"))
    ta.start()
    tb.start()
    ta.join(40)
    tb.join(40)
    check(not ta.is_alive() and not tb.is_alive(), "lock workers did not finish")
    check(not errors, "worker errors: %s" % errors)
    check(max_holders[0] == 1, "mutual exclusion violated: %d holders at once" % max_holders[0])
    data, _ = a.get(root + "/counter")
    check(int(data) == 2 * ROUNDS, "counter is %s, expected %d" % (data, 2 * ROUNDS))

    # While A holds the lock: B cannot take it (non-blocking, and with a timeout),
    # and both see A as the (only) contender.
    la = a.Lock(lock_path, "holder-a")
    lb = b.Lock(lock_path, "waiter-b")
    check(la.acquire(timeout=5), "A could not take the free lock")
    check(lb.acquire(blocking=False) is False, "B took a lock A holds (non-blocking)")
    t0 = time.monotonic()
    try:
        lb.acquire(timeout=0.5)
        raise AssertionError("B took a lock A holds (timeout)")
    except LockTimeout:
        pass
    check(time.monotonic() - t0 < 5, "acquire(timeout=0.5) took too long")
    check(lb.contenders() == ["holder-a"], "contenders while A holds: %r" % lb.contenders())

    # B waits in the background; A's release hands the lock over.
    got = threading.Event()

    def wait_b():
        if lb.acquire(timeout=15):
            got.set()

    tw = threading.Thread(target=wait_b)
    tw.start()
    wait_for(lambda: len(a.get_children(lock_path)) == 2, 5, "B's lock node to appear")
    check(not got.is_set(), "B got the lock while A still holds it")
    la.release()
    check(got.wait(10), "B did not get the lock after A released it")
    tw.join(5)
    check(lb.contenders() == ["waiter-b"], "contenders after hand-over: %r" % lb.contenders())

    # Losing the holder's session releases the lock too: A waits, B's client stops.
    la2 = a.Lock(lock_path, "holder-a2")
    got_a = threading.Event()

    def wait_a():
        if la2.acquire(timeout=15):
            got_a.set()

    tw = threading.Thread(target=wait_a)
    tw.start()
    wait_for(lambda: len(a.get_children(lock_path)) == 2, 5, "A's lock node to appear")
    b.stop()  # closes B's session: its ephemeral lock node goes away
    check(got_a.wait(10), "A did not get the lock after B's session closed")
    tw.join(5)
    la2.release()
    check(a.get_children(lock_path) == [], "lock nodes left: %r" % a.get_children(lock_path))

    a.delete(root, recursive=True)


if __name__ == "__main__":
    main("lock", run)
