"""Shared helpers for the kazoo compatibility scripts.

Each script is run as `/usr/bin/python3 <script>.py HOST:PORT[,HOST:PORT...]`
(Debian's python3-kazoo is importable only by Debian's /usr/bin/python3),
prints "OK <name>" and exits 0 on success, or prints "FAIL <name>: <why>"
(with a traceback) and exits 1. A watchdog bounds every script in time.
"""
import logging
import os
import sys
import threading
import time
import traceback
import uuid

from kazoo.client import KazooClient

# Kazoo logs connection drops at WARNING/ERROR; keep expected noise out of the
# test output but let real errors through.
logging.basicConfig(level=logging.ERROR, stream=sys.stderr,
                    format="kazoo-log %(levelname)s %(name)s: %(message)s")
logging.getLogger("kazoo.client").setLevel(logging.CRITICAL)
logging.getLogger("kazoo.protocol.connection").setLevel(logging.CRITICAL)


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def wait_for(pred, timeout, msg, interval=0.02):
    """Poll pred() until it is truthy; fail with msg after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed("timed out after %.1fs waiting for: %s" % (timeout, msg))
        time.sleep(interval)


_clients = []


def client(hosts, timeout=10.0, **kw):
    """A started KazooClient (connection bounded to 15 s), stopped at exit."""
    c = KazooClient(hosts=hosts, timeout=timeout, **kw)
    c.start(timeout=15)
    _clients.append(c)
    return c


def stop_quietly(c):
    try:
        c.stop()
    except Exception:
        pass
    try:
        c.close()
    except Exception:
        pass


def unique_root(name):
    return "/kazoo-%s-%d-%s" % (name, os.getpid(), uuid.uuid4().hex[:8])


def main(name, fn, limit=45.0):
    """Run fn(hosts) with a watchdog; report OK/FAIL and exit accordingly."""
    if len(sys.argv) < 2:
        print("usage: %s HOST:PORT" % sys.argv[0], file=sys.stderr)
        sys.exit(2)
    hosts = sys.argv[1]

    def watchdog():
        print("FAIL %s: watchdog: still running after %.0fs" % (name, limit), flush=True)
        for th in threading.enumerate():
            frame = sys._current_frames().get(th.ident)
            if frame is not None:
                print("--- thread %s\n%s" % (th.name, "".join(traceback.format_stack(frame))), file=sys.stderr)
        sys.stderr.flush()
        os._exit(3)

    dog = threading.Timer(limit, watchdog)
    dog.daemon = True
    dog.start()
    code = 0
    t0 = time.monotonic()
    try:
        fn(hosts)
        print("OK %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
    except Exception as e:  # noqa: BLE001 - report any failure
        traceback.print_exc()
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        code = 1
    finally:
        for c in _clients:
            stop_quietly(c)
    dog.cancel()
    sys.stdout.flush()
    sys.stderr.flush()
    # kazoo's worker threads are daemons, but exit hard so nothing can hang.
    os._exit(code)
