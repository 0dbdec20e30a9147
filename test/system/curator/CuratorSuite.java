// Apache Curator 5.4 recipes (Debian libcurator-*-java) against a
// ZooKeeper-compatible server.
//
//   java -cp <classes>:<jars> CuratorSuite HOST:PORT <test>
//
// Prints "OK <test> (<ms> ms)" and exits 0, or prints the failure and
// "FAIL <test>: ..." and exits 1. A watchdog exits with 3 after 45 s.
// Tests: leaderLatch, mutex, atomicLong, curatorCache, persistentNode.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public final class CuratorSuite {
    private static String connect;
    private static final List<CuratorFramework> clients = new ArrayList<>();

    static final class CheckFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;
        CheckFailed(String msg) { super(msg); }
    }

    static void check(boolean cond, String msg) {
        if (!cond) throw new CheckFailed(msg);
    }

    static void waitFor(BooleanSupplier pred, long timeoutMs, Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!pred.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new CheckFailed("timed out after " + timeoutMs + " ms waiting for: " + what.get());
            Thread.sleep(10);
        }
    }

    static void waitFor(BooleanSupplier pred, long timeoutMs, String what) throws InterruptedException {
        waitFor(pred, timeoutMs, () -> what);
    }

    static CuratorFramework client(int sessionTimeoutMs) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(sessionTimeoutMs)
            .connectionTimeoutMs(10_000)
            .retryPolicy(new ExponentialBackoffRetry(50, 5, 1000))
            .build();
        clients.add(c);
        c.start();
        check(c.blockUntilConnected(15, TimeUnit.SECONDS), "Curator client did not connect to " + connect);
        return c;
    }

    static CuratorFramework client() throws InterruptedException { return client(10_000); }

    static String root(String name) {
        return "/curator-" + name + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String s(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

    // ------------------------------------------------------------------ tests

    /** Two latches: exactly one leader; the leader closes, the other leads. */
    static void leaderLatch() throws Exception {
        String path = root("latch");
        CuratorFramework c1 = client();
        CuratorFramework c2 = client();
        LeaderLatch l1 = new LeaderLatch(c1, path, "latch-1");
        LeaderLatch l2 = new LeaderLatch(c2, path, "latch-2");
        l1.start();
        l2.start();
        waitFor(() -> l1.hasLeadership() || l2.hasLeadership(), 10_000, "a leader");
        Thread.sleep(200); // give a (wrong) second leader the chance to show up
        check(l1.hasLeadership() ^ l2.hasLeadership(), "not exactly one leader: " + l1.hasLeadership() + "/" + l2.hasLeadership());
        LeaderLatch leader = l1.hasLeadership() ? l1 : l2;
        LeaderLatch other = leader == l1 ? l2 : l1;
        waitFor(() -> { try { return l1.getParticipants().size() == 2; } catch (Exception e) { return false; } },
            5_000, "two participants");
        check(other.getLeader().getId().equals(leader.getId()),
            "the other latch sees leader " + other.getLeader().getId() + ", expected " + leader.getId());
        check(other.getLeader().isLeader(), "participant of the leader not marked leader");

        leader.close();
        check(other.await(10, TimeUnit.SECONDS), "the other latch did not become leader after the leader closed");
        check(other.hasLeadership(), "other has no leadership");
        check(other.getParticipants().size() == 1, "participants after close: " + other.getParticipants());
        check(other.getLeader().getId().equals(other.getId()), "leader id " + other.getLeader().getId());

        // The new leader's session closes: a third latch takes over.
        CuratorFramework c3 = client();
        LeaderLatch l3 = new LeaderLatch(c3, path, "latch-3");
        l3.start();
        waitFor(() -> { try { return l3.getParticipants().size() == 2; } catch (Exception e) { return false; } },
            5_000, "latch-3 participating");
        check(!l3.hasLeadership(), "latch-3 leads while " + other.getId() + " does");
        (other == l1 ? c1 : c2).close(); // closes the session: the ephemeral latch node goes away
        check(l3.await(10, TimeUnit.SECONDS), "latch-3 did not lead after the leader's session closed");
        l3.close();
        c3.delete().deletingChildrenIfNeeded().forPath(path);
    }

    /** InterProcessMutex across two clients (two threads each) guarding an unversioned counter. */
    static void mutex() throws Exception {
        String base = root("mutex");
        String counter = base + "/counter";
        String lockPath = base + "/lock";
        CuratorFramework c1 = client();
        CuratorFramework c2 = client();
        c1.create().creatingParentsIfNeeded().forPath(counter, b("0"));
        final int rounds = 8;
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger maxInside = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<?>> futures = new ArrayList<>();
        for (CuratorFramework c : List.of(c1, c2, c1, c2)) {
            futures.add(pool.submit(() -> {
                InterProcessMutex m = new InterProcessMutex(c, lockPath);
                for (int i = 0; i < rounds; i++) {
                    check(m.acquire(20, TimeUnit.SECONDS), "could not acquire the mutex in 20 s");
                    try {
                        maxInside.accumulateAndGet(inside.incrementAndGet(), Math::max);
                        int v = Integer.parseInt(s(c.getData().forPath(counter)));
                        Thread.sleep(2);
                        c.setData().forPath(counter, b(Integer.toString(v + 1)));
                        inside.decrementAndGet();
                    } finally {
                        m.release();
                    }
                }
                return null;
            }));
        }
        pool.shutdown();
        for (Future<?> f : futures) f.get(40, TimeUnit.SECONDS);
        check(maxInside.get() == 1, "mutual exclusion violated: " + maxInside.get() + " holders at once");
        int total = Integer.parseInt(s(c1.getData().forPath(counter)));
        check(total == 4 * rounds, "counter " + total + ", expected " + (4 * rounds));

        // Re-entrant in one thread; the other client cannot get it meanwhile.
        InterProcessMutex m1 = new InterProcessMutex(c1, lockPath);
        InterProcessMutex m2 = new InterProcessMutex(c2, lockPath);
        check(m1.acquire(5, TimeUnit.SECONDS) && m1.acquire(5, TimeUnit.SECONDS), "re-entrant acquire failed");
        check(m1.isAcquiredInThisProcess(), "not acquired in this process");
        check(!m2.acquire(300, TimeUnit.MILLISECONDS), "second client acquired a held mutex");
        m1.release();
        check(!m2.acquire(300, TimeUnit.MILLISECONDS), "released once of twice, yet the other client got it");
        m1.release();
        check(m2.acquire(5, TimeUnit.SECONDS), "the other client could not acquire after full release");
        m2.release();
        check(c1.getChildren().forPath(lockPath).isEmpty(), "lock nodes left: " + c1.getChildren().forPath(lockPath));
        c1.delete().deletingChildrenIfNeeded().forPath(base);
    }

    /** DistributedAtomicLong: concurrent increments from two clients add up. */
    static void atomicLong() throws Exception {
        String path = root("atomic");
        CuratorFramework c1 = client();
        CuratorFramework c2 = client();
        final int perThread = 20;
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Integer>> futures = new ArrayList<>();
        AtomicInteger optimisticFailures = new AtomicInteger();
        for (CuratorFramework c : List.of(c1, c2, c1, c2)) {
            futures.add(pool.submit(() -> {
                DistributedAtomicLong counter = new DistributedAtomicLong(c, path, new RetryNTimes(50, 2));
                int done = 0;
                for (int i = 0; i < perThread; i++) {
                    for (int attempt = 0; ; attempt++) {
                        check(attempt < 100, "increment did not succeed in 100 attempts");
                        AtomicValue<Long> v = counter.increment();
                        if (v.succeeded()) {
                            check(v.postValue() == v.preValue() + 1, "post " + v.postValue() + " pre " + v.preValue());
                            break;
                        }
                        optimisticFailures.incrementAndGet();
                    }
                    done++;
                }
                return done;
            }));
        }
        pool.shutdown();
        int sum = 0;
        for (Future<Integer> f : futures) sum += f.get(40, TimeUnit.SECONDS);
        AtomicValue<Long> v = new DistributedAtomicLong(c1, path, new RetryNTimes(3, 10)).get();
        check(v.succeeded(), "get failed");
        check(v.postValue() == 4L * perThread && sum == 4 * perThread,
            "counter " + v.postValue() + ", expected " + (4 * perThread));
        DistributedAtomicLong d = new DistributedAtomicLong(c2, path, new RetryNTimes(3, 10));
        AtomicValue<Long> added = d.add(100L);
        check(added.succeeded() && added.postValue() == 4L * perThread + 100, "add: " + added.postValue());
        check(d.compareAndSet(4L * perThread + 100, 7L).succeeded(), "compareAndSet with the right value failed");
        check(!d.compareAndSet(12345L, 8L).succeeded(), "compareAndSet with a wrong value succeeded");
        check(d.get().postValue() == 7L, "after compareAndSet: " + d.get().postValue());
        System.out.println("optimistic retries: " + optimisticFailures.get());
        c1.delete().deletingChildrenIfNeeded().forPath(path);
    }

    /** CuratorCache (persistent recursive watch, addWatch opcode 106) sees creates, changes, deletes at any depth. */
    static void curatorCache() throws Exception {
        String base = root("cache");
        CuratorFramework watcher = client();
        CuratorFramework writer = client();
        writer.create().forPath(base, b("root"));
        writer.create().forPath(base + "/pre", b("p0"));

        List<String> events = new CopyOnWriteArrayList<>();
        CountDownLatch initialized = new CountDownLatch(1);
        CuratorCache cache = CuratorCache.build(watcher, base);
        cache.listenable().addListener(CuratorCacheListener.builder()
            .forCreates(n -> events.add("create " + n.getPath() + " " + s(n.getData())))
            .forChanges((oldNode, node) -> events.add("change " + node.getPath() + " " + s(oldNode.getData()) + "->" + s(node.getData())))
            .forDeletes(n -> events.add("delete " + n.getPath()))
            .forInitialized(initialized::countDown)
            .build());
        cache.start();
        check(initialized.await(10, TimeUnit.SECONDS), "cache not initialized");
        check(events.containsAll(List.of("create " + base + " root", "create " + base + "/pre p0")) && events.size() == 2,
            "initial events " + events);
        events.clear();

        // A cache reads the data after each event, so back-to-back changes may
        // coalesce: make one change at a time and wait for the cache to show it.
        String[][] steps = {
            {"create", base + "/a", "a0", "create " + base + "/a a0"},
            {"set", base + "/a", "a1", "change " + base + "/a a0->a1"},
            {"create", base + "/a/b", "b0", "create " + base + "/a/b b0"},
            {"create", base + "/a/b/c", "c0", "create " + base + "/a/b/c c0"},
            {"set", base + "/a/b/c", "c1", "change " + base + "/a/b/c c0->c1"},
            {"set", base + "/a/b/c", "c2", "change " + base + "/a/b/c c1->c2"},
            {"delete", base + "/a/b/c", "", "delete " + base + "/a/b/c"},
            {"delete", base + "/pre", "", "delete " + base + "/pre"},
        };
        List<String> expected = new ArrayList<>();
        for (String[] st : steps) {
            switch (st[0]) {
                case "create": writer.create().forPath(st[1], b(st[2])); break;
                case "set": writer.setData().forPath(st[1], b(st[2])); break;
                default: writer.delete().forPath(st[1]); break;
            }
            expected.add(st[3]);
            waitFor(() -> events.size() >= expected.size(), 10_000, () -> "cache event '" + st[3] + "', have " + events);
        }
        Thread.sleep(100);
        check(events.equals(expected), "cache events\n  got      " + events + "\n  expected " + expected);
        check(cache.get(base + "/a").map(ChildData::getData).map(CuratorSuite::s).orElse("").equals("a1"), "cache content of /a");
        check(cache.get(base + "/pre").isEmpty(), "deleted node still in the cache");
        check(cache.size() == 3, "cache size " + cache.size());
        cache.close();

        // The bare persistent recursive watch (addWatch) fires repeatedly without being set again.
        List<String> raw = new CopyOnWriteArrayList<>();
        Watcher w = (WatchedEvent e) -> { if (e.getType() != Watcher.Event.EventType.None) raw.add(e.getType() + " " + e.getPath()); };
        watcher.watchers().add().withMode(AddWatchMode.PERSISTENT_RECURSIVE).usingWatcher(w).forPath(base + "/a");
        writer.setData().forPath(base + "/a/b", b("b1"));
        writer.setData().forPath(base + "/a/b", b("b2"));
        writer.create().forPath(base + "/a/b/d");
        writer.delete().forPath(base + "/a/b/d");
        writer.create().forPath(base + "/elsewhere");
        List<String> rawExpected = List.of(
            "NodeDataChanged " + base + "/a/b",
            "NodeDataChanged " + base + "/a/b",
            "NodeCreated " + base + "/a/b/d",
            "NodeDeleted " + base + "/a/b/d");
        waitFor(() -> raw.size() >= rawExpected.size(), 10_000, () -> "persistent recursive watch events, have " + raw);
        Thread.sleep(100);
        check(raw.equals(rawExpected), "persistent recursive events\n  got      " + raw + "\n  expected " + rawExpected);
        watcher.watchers().remove(w).ofType(Watcher.WatcherType.Any).forPath(base + "/a");
        writer.delete().deletingChildrenIfNeeded().forPath(base);
    }

    /** Expire a session the way ZooKeeper's tests do: a second handle takes over the session id and closes it. */
    static void expireSession(CuratorFramework c) throws Exception {
        ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
        long id = zk.getSessionId();
        byte[] pw = zk.getSessionPasswd();
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper thief = new ZooKeeper(connect, 4_000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        }, id, pw);
        try {
            check(connected.await(10, TimeUnit.SECONDS), "the second handle did not connect");
            check(thief.getSessionId() == id, "the second handle got another session");
        } finally {
            thief.close(5_000);
        }
    }

    /** PersistentNode: ephemeral exists while running, recreated after the session is lost, gone after close. */
    static void persistentNode() throws Exception {
        String base = root("pnode");
        String path = base + "/member";
        CuratorFramework observer = client();
        CuratorFramework owner = client(4_000);
        observer.create().forPath(base);
        List<ConnectionState> states = new CopyOnWriteArrayList<>();
        owner.getConnectionStateListenable().addListener((cl, st) -> states.add(st));

        PersistentNode node = new PersistentNode(owner, CreateMode.EPHEMERAL, false, path, b("alive"));
        node.start();
        check(node.waitForInitialCreate(10, TimeUnit.SECONDS), "node not created");
        long session1 = owner.getZookeeperClient().getZooKeeper().getSessionId();
        Stat st = observer.checkExists().forPath(path);
        check(st != null && st.getEphemeralOwner() == session1, "ephemeral owner " + (st == null ? "none" : Long.toHexString(st.getEphemeralOwner())));
        check("alive".equals(s(observer.getData().forPath(path))), "data");

        // Watch for the deletion caused by the session loss.
        CountDownLatch deleted = new CountDownLatch(1);
        observer.checkExists().usingWatcher((Watcher) e -> {
            if (e.getType() == Watcher.Event.EventType.NodeDeleted) deleted.countDown();
        }).forPath(path);

        expireSession(owner);
        check(deleted.await(10, TimeUnit.SECONDS), "ephemeral not deleted after the session was closed");
        waitFor(() -> states.contains(ConnectionState.LOST), 15_000, () -> "LOST state (states " + states + ")");
        waitFor(() -> {
            try {
                Stat s2 = observer.checkExists().forPath(path);
                return s2 != null && s2.getEphemeralOwner() != session1;
            } catch (Exception e) { return false; }
        }, 15_000, () -> "PersistentNode to recreate the ephemeral in a new session (states " + states + ")");
        long session2 = owner.getZookeeperClient().getZooKeeper().getSessionId();
        check(session2 != session1, "same session after expiry");
        check(observer.checkExists().forPath(path).getEphemeralOwner() == session2, "recreated node owned by another session");
        check(states.contains(ConnectionState.RECONNECTED), "no RECONNECTED state: " + states);

        node.close();
        waitFor(() -> { try { return observer.checkExists().forPath(path) == null; } catch (Exception e) { return false; } },
            5_000, "node gone after close");
        check(observer.getChildren().forPath(base).equals(Collections.emptyList()), "children left");
        observer.delete().forPath(base);
        System.out.println("states: " + states);
    }

    // ------------------------------------------------------------------ main

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: CuratorSuite HOST:PORT test");
            System.exit(2);
        }
        connect = args[0];
        String test = args[1];
        Thread dog = new Thread(() -> {
            try { Thread.sleep(45_000); } catch (InterruptedException e) { return; }
            System.out.println("FAIL " + test + ": watchdog: still running after 45 s");
            Thread.getAllStackTraces().forEach((t, st) -> {
                System.err.println("--- " + t.getName());
                for (StackTraceElement el : st) System.err.println("    at " + el);
            });
            System.out.flush();
            Runtime.getRuntime().halt(3);
        }, "watchdog");
        dog.setDaemon(true);
        dog.start();
        long t0 = System.nanoTime();
        int code = 0;
        try {
            switch (test) {
                case "leaderLatch": leaderLatch(); break;
                case "mutex": mutex(); break;
                case "atomicLong": atomicLong(); break;
                case "curatorCache": curatorCache(); break;
                case "persistentNode": persistentNode(); break;
                default: throw new IllegalArgumentException("unknown test " + test);
            }
            System.out.println("OK " + test + " (" + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms)");
        } catch (Throwable e) {
            Throwable cause = e instanceof java.util.concurrent.ExecutionException && e.getCause() != null ? e.getCause() : e;
            cause.printStackTrace();
            System.out.println("FAIL " + test + ": " + cause);
            code = 1;
        }
        for (CuratorFramework c : clients) {
            try { c.close(); } catch (Throwable ignored) { /* best effort */ }
        }
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }
}
