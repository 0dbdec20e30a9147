"""kazoo DataWatch and ChildrenWatch (and raw one-shot watches) see updates."""
import threading

from kazoo.protocol.states import EventType

from common import check, client, main, unique_root, wait_for


def run(hosts):
    root = unique_root("watches")
    w = client(hosts)   # the watching client
    m = client(hosts)   # the client making the changes
    m.ensure_path(root)
    node = root + "/data"

    # --- DataWatch: called with the current value, then on every change, and on deletion.
    seen = []
    lock = threading.Lock()

    @w.DataWatch(node)
    def on_data(data, stat):  # noqa: ARG001 - kazoo calls it with (data, stat)
        with lock:
            seen.append((data, stat.version if stat else None))

    wait_for(lambda: seen, 5, "DataWatch initial call")
    check(seen[0] == (None, None), "initial DataWatch call for a missing node: %r" % (seen[0],))
    m.create(node, b"v0")
    wait_for(lambda: (b"v0", 0) in seen, 5, "DataWatch sees creation (v0)")
    for i in range(1, 4):
        m.set(node, b"v%d" % i)
        wait_for(lambda i=i: (b"v%d" % i, i) in seen, 5, "DataWatch sees v%d" % i)
    m.delete(node)
    wait_for(lambda: seen[-1] == (None, None), 5, "DataWatch sees deletion")
    versions = [v for _, v in seen if v is not None]
    check(versions == sorted(versions), "DataWatch went back in time: %r" % seen)

    # --- ChildrenWatch: current children, then every change.
    parent = root + "/parent"
    m.create(parent)
    kids = []

    @w.ChildrenWatch(parent)
    def on_children(children):
        with lock:
            kids.append(sorted(children))

    wait_for(lambda: kids, 5, "ChildrenWatch initial call")
    check(kids[0] == [], "initial children: %r" % kids[0])
    m.create(parent + "/a")
    wait_for(lambda: kids[-1] == ["a"], 5, "ChildrenWatch sees a")
    m.create(parent + "/b", ephemeral=True)
    wait_for(lambda: kids[-1] == ["a", "b"], 5, "ChildrenWatch sees b")
    m.set(parent + "/a", b"data change is not a child change")
    m.delete(parent + "/a")
    wait_for(lambda: kids[-1] == ["b"], 5, "ChildrenWatch sees a removed")
    check(["a", "b"] in kids, "history: %r" % kids)

    # --- Raw one-shot watches: fire once, with the right type and path.
    events = []
    ev_lock = threading.Lock()

    def record(event):
        with ev_lock:
            events.append((event.type, event.path))

    raw = root + "/raw"
    check(w.exists(raw, watch=record) is None, "raw node exists already")
    m.create(raw, b"x")
    wait_for(lambda: (EventType.CREATED, raw) in events, 5, "exists watch fires on create")
    data, _ = w.get(raw, watch=record)
    check(data == b"x", "raw data %r" % data)
    w.get_children(raw, watch=record)
    m.set(raw, b"y")
    wait_for(lambda: (EventType.CHANGED, raw) in events, 5, "get watch fires on set")
    m.set(raw, b"z")              # the data watch was used up: no second CHANGED
    m.create(raw + "/kid")
    wait_for(lambda: (EventType.CHILD, raw) in events, 5, "child watch fires on create")
    # barrier: kazoo delivers watch callbacks in order on one thread, so once
    # the marker's event is recorded, any (wrong) second CHANGED would be too.
    marker = root + "/marker"
    w.exists(marker, watch=record)
    m.create(marker)
    wait_for(lambda: (EventType.CREATED, marker) in events, 5, "marker watch")
    with ev_lock:
        got = [e for e in events if e[1] != marker]
    check(got == [(EventType.CREATED, raw), (EventType.CHANGED, raw), (EventType.CHILD, raw)],
          "raw watch events: %r" % got)

    # --- Deleting a watched node fires the data watch as DELETED (and the child watch).
    events.clear()
    w.get(raw + "/kid", watch=record)
    w.get_children(raw + "/kid", watch=record)
    m.delete(raw + "/kid")
    wait_for(lambda: len(events) >= 2, 5, "watches fire on delete")
    check(set(events) == {(EventType.DELETED, raw + "/kid")} and len(events) == 2,
          "delete watch events: %r" % events)

    m.delete(root, recursive=True)


if __name__ == "__main__":
    main("watches", run)
