"""kazoo transactions (multi): all-or-nothing, per-op results on failure."""
from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, RolledBackError,
                              RuntimeInconsistency)
from kazoo.protocol.states import ZnodeStat

from common import check, client, main, unique_root


def names(results):
    return [type(r).__name__ for r in results]


def run(hosts):
    root = unique_root("txn")
    zk = client(hosts)
    other = client(hosts)
    zk.ensure_path(root)
    zk.create(root + "/existing", b"e0")

    # --- success: every op applied, results in order
    t = zk.transaction()
    t.create(root + "/a", b"A")
    t.create(root + "/seq-", b"S", sequence=True)
    t.set_data(root + "/existing", b"e1", version=0)
    t.check(root + "/existing", 1)            # version after the set_data above
    t.create(root + "/gone", b"")
    t.delete(root + "/gone")
    res = t.commit()
    check(len(res) == 6, "results: %r" % res)
    check(res[0] == root + "/a", "create result %r" % res[0])
    check(isinstance(res[1], str) and res[1].startswith(root + "/seq-") and len(res[1]) == len(root + "/seq-") + 10,
          "sequential create result %r" % res[1])
    check(isinstance(res[2], ZnodeStat) and res[2].version == 1, "set_data result %r" % (res[2],))
    check(res[3] is True and res[5] is True, "check/delete results %r" % res)
    check(res[4] == root + "/gone", "create result %r" % res[4])
    # visible to another session, all at the same zxid
    check(other.get(root + "/a")[0] == b"A", "a not visible")
    check(other.get(root + "/existing")[0] == b"e1", "existing not updated")
    check(other.exists(root + "/gone") is None, "gone still exists")
    a_stat = other.exists(root + "/a")
    e_stat = other.exists(root + "/existing")
    check(a_stat.czxid == e_stat.mzxid, "ops of one transaction at different zxids: %x vs %x"
          % (a_stat.czxid, e_stat.mzxid))

    # --- failure in the middle (bad version): nothing applied; ops before the
    # failing one are RolledBackError, the failing one carries its error, ops
    # after it RuntimeInconsistency.
    before = other.get(root + "/existing")
    t = zk.transaction()
    t.create(root + "/b", b"B")
    t.set_data(root + "/existing", b"e2")
    t.check(root + "/existing", 99)
    t.create(root + "/c", b"C")
    res = t.commit()
    check(names(res) == ["RolledBackError", "RolledBackError", "BadVersionError", "RuntimeInconsistency"],
          "results of failed transaction: %r" % names(res))
    check(isinstance(res[2], BadVersionError) and isinstance(res[0], RolledBackError)
          and isinstance(res[3], RuntimeInconsistency), "exception types %r" % res)
    check(other.exists(root + "/b") is None and other.exists(root + "/c") is None, "failed transaction created nodes")
    after = other.get(root + "/existing")
    check(after[0] == before[0] and after[1].mzxid == before[1].mzxid, "failed transaction changed data")

    # --- other failure codes
    t = zk.transaction()
    t.create(root + "/a")                      # exists already
    res = t.commit()
    check(len(res) == 1 and isinstance(res[0], NodeExistsError), "create existing: %r" % res)

    t = zk.transaction()
    t.create(root + "/d")
    t.delete(root + "/missing")
    res = t.commit()
    check(isinstance(res[0], RolledBackError) and isinstance(res[1], NoNodeError), "delete missing: %r" % res)
    check(other.exists(root + "/d") is None, "d created by a failed transaction")

    t = zk.transaction()
    t.create(root + "/a/child")
    t.delete(root + "/a")                      # not empty because of the op before
    res = t.commit()
    check(isinstance(res[0], RolledBackError) and isinstance(res[1], NotEmptyError), "delete non-empty: %r" % res)
    check(other.exists(root + "/a/child") is None, "child created by a failed transaction")

    t = zk.transaction()
    t.create(root + "/e", b"")
    t.create(root + "/e/f", b"")              # parent created earlier in the same transaction
    t.delete(root + "/e/f")
    t.delete(root + "/e")
    res = t.commit()
    check(res == [root + "/e", root + "/e/f", True, True], "create-then-delete: %r" % res)

    # --- the context-manager form commits on exit
    with zk.transaction() as t:
        t.create(root + "/ctx", b"1")
    check(other.get(root + "/ctx")[0] == b"1", "context-manager transaction not committed")

    zk.delete(root, recursive=True)


if __name__ == "__main__":
    main("transaction", run)
