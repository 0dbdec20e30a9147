"""kazoo Election: exactly one leader; when it leaves (returns, or its session
closes) another contender is elected."""
import threading

from common import check, client, main, unique_root, wait_for


def run(hosts):
    root = unique_root("election")
    path = root + "/election"
    clients = {name: client(hosts) for name in ("c1", "c2", "c3")}
    clients["c1"].ensure_path(root)

    guard = threading.Lock()
    leading = set()              # names currently leading
    max_leading = [0]
    history = []                 # names in the order they became leader
    release = {name: threading.Event() for name in clients}
    elections = {}

    def lead(name):
        with guard:
            leading.add(name)
            max_leading[0] = max(max_leading[0], len(leading))
            history.append(name)
        try:
            # hold leadership until told to step down (or the session goes away)
            release[name].wait(30)
        finally:
            with guard:
                leading.discard(name)

    threads = {}
    for name, zk in clients.items():
        e = zk.Election(path, name)
        elections[name] = e
        t = threading.Thread(target=e.run, args=(lead, name), daemon=True)
        threads[name] = t
        t.start()

    wait_for(lambda: len(history) == 1, 10, "a first leader")
    wait_for(lambda: len(clients["c1"].get_children(path)) == 3, 10, "3 contenders")
    first = history[0]
    check(sorted(elections["c1"].contenders()) == ["c1", "c2", "c3"],
          "contenders: %r" % elections["c1"].contenders())
    check(elections["c1"].contenders()[0] == first,
          "first contender %r is not the leader %r" % (elections["c1"].contenders()[0], first))

    # 1. The leader steps down by returning from its function: another one is elected.
    release[first].set()
    wait_for(lambda: len(history) == 2, 10, "a second leader after %s stepped down" % first)
    second = history[1]
    check(second != first, "the leader that stepped down was elected again")
    threads[first].join(5)
    check(not threads[first].is_alive(), "run() of %s did not return" % first)

    # 2. The leader's session closes (client stopped while leading): the last one is elected.
    # kazoo does not interrupt the leader function of a lost session; count
    # that leader out from the moment its session is closed.
    with guard:
        leading.discard(second)
    clients[second].stop()
    wait_for(lambda: len(history) == 3, 10, "a third leader after %s's session closed" % second)
    third = history[2]
    check(len({first, second, third}) == 3, "leaders: %r" % history)
    check(max_leading[0] == 1, "more than one leader at once (%d)" % max_leading[0])
    check(elections[third].contenders() == [third], "contenders: %r" % elections[third].contenders())
    # (second's lead() stays blocked on its event: releasing it would make
    # kazoo try to delete its lock node through a closed client; the daemon
    # thread ends with the process)

    release[third].set()
    threads[third].join(5)
    wait_for(lambda: clients[third].get_children(path) == [], 5, "no contenders left")
    clients[third].delete(root, recursive=True)


if __name__ == "__main__":
    main("election", run)
