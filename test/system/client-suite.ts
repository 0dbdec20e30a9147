// The ZkClient (src/client) against a ZooKeeper-compatible server: Apache
// ZooKeeper 3.8 in client-vs-apache.test.ts, our quorum server elsewhere.
// Every test works under its own path below a per-run base node and closes
// the clients it opens. Timing bounds are generous: Apache ZooKeeper 3.8.0
// sometimes holds a reply until the next ping (ANCHORS pitfall 2).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Acls, AddWatchMode, CreateMode, Err, EventType, KeeperState, Op, OpCode, Perm, WatcherType, ZkClient, ZkError,
  type WatchEvent, type ZkClientOptions, type ZkState,
} from '../../src/client/index.js';

export interface ClientSuiteOptions {
  /** The server implements whoAmI (opcode 107; Apache ZooKeeper 3.8.0 does). Default true. */
  whoAmI?: boolean;
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function expectZkError(p: Promise<unknown>, code: number): Promise<ZkError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ZkError);
    expect((e as ZkError).codeName).toBe(Object.entries(Err).find(([, v]) => v === code)?.[0]);
    return e as ZkError;
  }
  throw new Error(`expected ZkError code ${code}, but the call succeeded`);
}

export function runClientSuite(connectString: () => string, suiteOpts: ClientSuiteOptions = {}): void {
  describe('ZkClient', () => {
    let root: ZkClient;
    let base = '';
    const opened: ZkClient[] = [];
    let seq = 0;

    async function open(o: Partial<ZkClientOptions> = {}, chroot = ''): Promise<ZkClient> {
      const c = new ZkClient({ connectString: connectString() + chroot, sessionTimeoutMs: 10_000, ...o });
      opened.push(c);
      await c.connect({ timeoutMs: 20_000 });
      return c;
    }
    /** A fresh persistent node for one test. */
    async function node(name: string): Promise<string> {
      const p = `${base}/${name}-${++seq}`;
      await root.create(p, null);
      return p;
    }

    beforeAll(async () => {
      root = new ZkClient({ connectString: connectString(), sessionTimeoutMs: 10_000 });
      await root.connect({ timeoutMs: 30_000 });
      base = `/zkclient-suite-${process.pid}-${Date.now().toString(36)}`;
      await root.create(base, 'suite');
    }, 40_000);
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((c) => c.close({ timeoutMs: 3000 }).catch(() => {})));
    }, 20_000);
    afterAll(async () => {
      await root?.close({ timeoutMs: 3000 });
    }, 10_000);

    it('connects: session id, negotiated timeout, state events', async () => {
      const c = new ZkClient({ connectString: connectString(), sessionTimeoutMs: 10_000 });
      opened.push(c);
      const states: ZkState[] = [];
      c.on('state', (s) => states.push(s));
      await c.connect({ timeoutMs: 20_000 });
      expect(c.state).toBe('connected');
      expect(c.sessionId).not.toBe(0n);
      expect(typeof c.sessionId).toBe('bigint');
      expect(c.sessionPasswd.length).toBeGreaterThan(0);
      expect(c.negotiatedTimeoutMs).toBeGreaterThan(0);
      expect(states).toEqual(['connecting', 'connected']);
      expect(await c.exists('/')).not.toBeNull();
    }, 30_000);

    it('create / getData / setData / delete with versions and error codes', async () => {
      const p = await node('crud');
      expect(await root.create(`${p}/a`, 'one')).toBe(`${p}/a`);
      const { data, stat } = await root.getData(`${p}/a`);
      expect(data?.toString()).toBe('one');
      expect(stat.version).toBe(0);
      expect(stat.dataLength).toBe(3);
      await expectZkError(root.create(`${p}/a`, 'again'), Err.NODEEXISTS);
      const e = await expectZkError(root.getData(`${p}/missing`), Err.NONODE);
      expect(e.message).toBe(`NONODE: ${p}/missing`);
      expect(e.path).toBe(`${p}/missing`);
      await expectZkError(root.create(`${p}/missing/child`, null), Err.NONODE);
      await expectZkError(root.delete(`${p}/missing`), Err.NONODE);
      await expectZkError(root.setData(`${p}/a`, 'x', 5), Err.BADVERSION);
      const s1 = await root.setData(`${p}/a`, 'two', 0);
      expect(s1.version).toBe(1);
      expect(s1.mzxid > stat.mzxid).toBe(true);
      expect((await root.setData(`${p}/a`, 'three')).version).toBe(2);
      await expectZkError(root.delete(`${p}/a`, 1), Err.BADVERSION);
      await root.create(`${p}/a/kid`, null);
      await expectZkError(root.delete(`${p}/a`), Err.NOTEMPTY);
      await root.delete(`${p}/a/kid`, 0);
      await root.delete(`${p}/a`, 2);
      expect(await root.exists(`${p}/a`)).toBeNull();
      // A null buffer is not an empty one.
      await root.create(`${p}/null`, null);
      await root.create(`${p}/empty`, Buffer.alloc(0));
      expect((await root.getData(`${p}/null`)).data).toBeNull();
      expect((await root.getData(`${p}/empty`)).data).toEqual(Buffer.alloc(0));
      const c2 = await root.create2(`${p}/c2`, Buffer.from([1, 2, 3]));
      expect(c2.path).toBe(`${p}/c2`);
      expect(c2.stat.dataLength).toBe(3);
      expect((await root.getChildren(p)).sort()).toEqual(['c2', 'empty', 'null']);
      const g2 = await root.getChildren2(p);
      expect(g2.children.sort()).toEqual(['c2', 'empty', 'null']);
      expect(g2.stat.numChildren).toBe(3);
      await root.create(`${p}/c2/deep`, null);
      expect(await root.getAllChildrenNumber(p)).toBe(4);
    }, 30_000);

    it('ephemeral, sequential (%010d from the parent cversion), NOCHILDRENFOREPHEMERALS', async () => {
      const p = await node('seq');
      const c = await open();
      const eph = await c.create(`${p}/eph`, 'e', { mode: CreateMode.EPHEMERAL });
      expect((await c.exists(eph))!.ephemeralOwner).toBe(c.sessionId);
      await expectZkError(c.create(`${eph}/child`, null), Err.NOCHILDRENFOREPHEMERALS);
      await root.create(`${p}/plain`, null); // cversion 2 (eph + plain)
      const s1 = await c.create(`${p}/s-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL });
      const s2 = await c.create(`${p}/s-`, null, { mode: CreateMode.EPHEMERAL_SEQUENTIAL });
      expect(s1).toBe(`${p}/s-0000000002`);
      expect(s2).toBe(`${p}/s-0000000003`);
      expect(await c.getEphemerals(p)).toEqual(expect.arrayContaining([eph, s2]));
      expect((await c.getEphemerals(p)).length).toBe(2);
      expect(await c.create(`${p}/`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL })).toBe(`${p}/0000000004`);
    }, 30_000);

    it('container and TTL nodes (extendedTypesEnabled)', async () => {
      const p = await node('ext');
      const cont = await root.create2(`${p}/cont`, 'c', { mode: CreateMode.CONTAINER });
      expect(cont.path).toBe(`${p}/cont`);
      // ZooKeeper shows clients ephemeralOwner 0 for containers and TTL nodes.
      expect(cont.stat.ephemeralOwner).toBe(0n);
      expect(await root.create(`${p}/cont2`, null, { mode: CreateMode.CONTAINER })).toBe(`${p}/cont2`);
      await root.create(`${p}/cont/kid`, null);
      const ttl = await root.create2(`${p}/ttl`, 't', { mode: CreateMode.PERSISTENT_WITH_TTL, ttlMs: 60_000 });
      expect(ttl.path).toBe(`${p}/ttl`);
      expect(ttl.stat.ephemeralOwner).toBe(0n);
      const ttlSeq = await root.create(`${p}/ttl-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, ttlMs: 60_000 });
      expect(ttlSeq).toMatch(/\/ttl-\d{10}$/);
      await expectZkError(root.create(`${p}/bad`, null, { mode: CreateMode.PERSISTENT_WITH_TTL }), Err.BADARGUMENTS);
      await expectZkError(root.create(`${p}/bad`, null, { ttlMs: 10 }), Err.BADARGUMENTS);
      await expectZkError(root.create(`${p}/bad`, null, { mode: CreateMode.EPHEMERAL_SEQUENTIAL + 10 }), Err.BADARGUMENTS);
    }, 30_000);

    it('invalid paths are refused before anything is sent', async () => {
      for (const bad of ['', 'a', '/a/', '//a', '/a//b', '/a/./b', '/a/../b', '/.', '/a\u0000b', '/a\u0001', '/\ud83d\ude00']) {
        const e = await expectZkError(root.exists(bad), Err.BADARGUMENTS);
        expect(e.message).toMatch(/invalid path/);
      }
      expect(await root.exists('/a..b/.c/d.')).toBeNull();
      await expectZkError(root.create(`${base}/x`, null, { mode: CreateMode.PERSISTENT, acl: [] }), Err.BADARGUMENTS);
    }, 20_000);

    it('exists watch on a missing node fires NodeCreated', async () => {
      const p = await node('existsw');
      const c = await open();
      const events: WatchEvent[] = [];
      expect(await c.exists(`${p}/n`, (ev) => events.push(ev))).toBeNull();
      await root.create(`${p}/n`, 'x');
      await waitFor(() => events.length > 0, 10_000, 'NodeCreated');
      expect(events).toEqual([{ type: EventType.NodeCreated, state: KeeperState.SyncConnected, path: `${p}/n` }]);
      // One-shot: a later change does not fire it again.
      await root.setData(`${p}/n`, 'y');
      await c.sync(p);
      await c.exists('/');
      expect(events.length).toBe(1);
    }, 30_000);

    it('a data watch fires before the new data is readable', async () => {
      const p = await node('order');
      await root.setData(p, 'v1');
      const reader = await open();
      const log: string[] = [];
      await reader.getData(p, (ev) => log.push(`event ${ev.type}`));
      const write = root.setData(p, 'v2');
      for (let i = 0; i < 2000; i++) {
        const { data } = await reader.getData(p);
        if (data?.toString() === 'v2') {
          log.push('read v2');
          break;
        }
      }
      await write;
      expect(log).toEqual([`event ${EventType.NodeDataChanged}`, 'read v2']);
    }, 30_000);

    it('child watches and data watches see deletes', async () => {
      const p = await node('childw');
      const c = await open();
      const child: WatchEvent[] = [];
      const data: WatchEvent[] = [];
      expect(await c.getChildren(p, (ev) => child.push(ev))).toEqual([]);
      await root.create(`${p}/k`, null);
      await waitFor(() => child.length === 1, 10_000, 'NodeChildrenChanged');
      expect(child[0]).toEqual({ type: EventType.NodeChildrenChanged, state: KeeperState.SyncConnected, path: p });
      await c.getChildren(`${p}/k`, (ev) => child.push(ev));
      await c.getData(`${p}/k`, (ev) => data.push(ev));
      await root.delete(`${p}/k`);
      await waitFor(() => child.length === 2 && data.length === 1, 10_000, 'NodeDeleted to child and data watchers');
      expect(child[1].type).toBe(EventType.NodeDeleted);
      expect(data[0]).toEqual({ type: EventType.NodeDeleted, state: KeeperState.SyncConnected, path: `${p}/k` });
    }, 30_000);

    it('persistent and persistent-recursive watches; removeWatches', async () => {
      // Separate paths: ZooKeeper 3.8 keeps one watch mode per (session, path), so a
      // second addWatch (or a one-shot watch) on the same path replaces the first (fixed in 3.9).
      const p = await node('pw');
      const q = await node('pwq');
      const c = await open();
      const rec: WatchEvent[] = [];
      const per: WatchEvent[] = [];
      const recW = (ev: WatchEvent): void => { rec.push(ev); };
      const perW = (ev: WatchEvent): void => { per.push(ev); };
      await c.addWatch(p, AddWatchMode.PERSISTENT_RECURSIVE, recW);
      await c.addWatch(q, AddWatchMode.PERSISTENT, perW);
      for (const x of [p, q]) {
        await root.create(`${x}/a`, null);
        await root.setData(`${x}/a`, 'x');
        await root.create(`${x}/a/b`, null);
        await root.delete(`${x}/a/b`);
        await root.setData(x, 'self');
        await root.setData(x, 'again');
      }
      await waitFor(() => rec.length >= 6 && per.length >= 3, 10_000, 'persistent events');
      expect(rec.map((e) => [e.type, e.path])).toEqual([
        [EventType.NodeCreated, `${p}/a`], [EventType.NodeDataChanged, `${p}/a`],
        [EventType.NodeCreated, `${p}/a/b`], [EventType.NodeDeleted, `${p}/a/b`],
        [EventType.NodeDataChanged, p], [EventType.NodeDataChanged, p],
      ]);
      expect(per.map((e) => [e.type, e.path])).toEqual([
        [EventType.NodeChildrenChanged, q], [EventType.NodeDataChanged, q], [EventType.NodeDataChanged, q],
      ]);
      await c.removeWatches(p, WatcherType.PersistentRecursive, recW);
      expect(rec.at(-1)).toEqual({ type: EventType.PersistentWatchRemoved, state: KeeperState.SyncConnected, path: p });
      await c.removeWatches(q, WatcherType.Persistent);
      expect(per.at(-1)?.type).toBe(EventType.PersistentWatchRemoved);
      await expectZkError(c.removeWatches(q, WatcherType.Persistent), Err.NOWATCHER);
      expect(await c.checkWatches(p, WatcherType.Any)).toBe(false);
      expect(await c.checkWatches(q, WatcherType.Any)).toBe(false);
      const counts = [rec.length, per.length];
      await root.setData(p, 'after');
      await root.create(`${p}/a/z`, null);
      await root.setData(q, 'after');
      await c.sync(p);
      await c.exists(p);
      expect([rec.length, per.length]).toEqual(counts);
    }, 30_000);

    it('removeWatches of a one-shot watch: local and on the server', async () => {
      const p = await node('rmw');
      const c = await open();
      const got: WatchEvent[] = [];
      const w = (ev: WatchEvent): void => { got.push(ev); };
      await c.getData(p, w);
      await c.getChildren(p, w);
      expect(await c.checkWatches(p, WatcherType.Data)).toBe(true);
      await c.removeWatches(p, WatcherType.Data, w);
      expect(got.map((e) => e.type)).toEqual([EventType.DataWatchRemoved]);
      expect(await c.checkWatches(p, WatcherType.Data)).toBe(false);
      expect(await c.checkWatches(p, WatcherType.Children)).toBe(true);
      await c.removeWatches(p, WatcherType.Any, w, true);
      expect(got.map((e) => e.type)).toEqual([EventType.DataWatchRemoved, EventType.ChildWatchRemoved]);
      await root.create(`${p}/k`, null);
      await root.setData(p, 'x');
      await c.sync(p);
      await c.exists(p);
      expect(got.length).toBe(2);
    }, 30_000);

    it('watch(): async iterators for persistent and re-armed watches', async () => {
      const p = await node('iter');
      const c = await open();
      const stream = c.watch(p, 'children');
      await stream.ready;
      const seen: string[] = [];
      const consumer = (async () => {
        for await (const ev of stream) {
          const kids = ev.type === EventType.NodeChildrenChanged ? await c.getChildren(p) : [];
          seen.push(kids.sort().join(','));
          if (kids.length >= 2) break;
        }
      })();
      await root.create(`${p}/a`, null);
      await waitFor(() => seen.length >= 1, 10_000, 'first child event');
      await root.create(`${p}/b`, null);
      await consumer;
      expect(seen.at(-1)).toBe('a,b');
      expect(await c.checkWatches(p, WatcherType.Children).catch(() => false)).toBe(false);

      const rec = c.watch(p, 'persistentRecursive');
      await rec.ready;
      const it = rec[Symbol.asyncIterator]();
      await root.create(`${p}/a/x`, null);
      const first = await it.next();
      expect(first.value).toMatchObject({ type: EventType.NodeCreated, path: `${p}/a/x` });
      await it.return!();
      expect(await c.checkWatches(p, WatcherType.Any)).toBe(false);
      expect((await it.next()).done).toBe(true);
    }, 30_000);

    it('multi: success, and failure with per-op results and nothing applied', async () => {
      const p = await node('multi');
      await root.create(`${p}/b`, null);
      const ok = await root.multi([
        Op.create(`${p}/a`, 'x'), Op.create(`${p}/s-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL }),
        Op.setData(`${p}/a`, 'y', 0), Op.check(`${p}/b`, 0), Op.delete(`${p}/b`, 0),
      ]);
      expect(ok.map((r) => r.type)).toEqual([OpCode.create, OpCode.create, OpCode.setData, OpCode.check, OpCode.delete]);
      expect(ok[0]).toEqual({ type: OpCode.create, path: `${p}/a` });
      expect(ok[1]).toMatchObject({ path: `${p}/s-0000000002` });
      expect((await root.getData(`${p}/a`)).data?.toString()).toBe('y');
      expect(await root.exists(`${p}/b`)).toBeNull();

      const e = await expectZkError(root.multi([
        Op.create(`${p}/c`, null), Op.setData(`${p}/missing`, 'z'), Op.delete(`${p}/a`),
      ]), Err.NONODE);
      expect(e.path).toBe(`${p}/missing`);
      expect(e.results).toEqual([
        { type: OpCode.error, err: Err.OK }, { type: OpCode.error, err: Err.NONODE }, { type: OpCode.error, err: Err.RUNTIMEINCONSISTENCY },
      ]);
      expect(await root.exists(`${p}/c`)).toBeNull();
      expect(await root.exists(`${p}/a`)).not.toBeNull();
      await expectZkError(root.multi([Op.check(`${p}/a`, 7)]), Err.BADVERSION);
      expect(await root.multi([])).toEqual([]);
    }, 30_000);

    it('multiRead answers each op on its own', async () => {
      const p = await node('mread');
      await root.create(`${p}/a`, 'A');
      const r = await root.multiRead([Op.getData(`${p}/a`), Op.getChildren(p), Op.getData(`${p}/nope`)]);
      expect(r.length).toBe(3);
      expect(r[0]).toMatchObject({ type: OpCode.getData });
      expect((r[0] as { data: Buffer }).data.toString()).toBe('A');
      expect(r[1]).toEqual({ type: OpCode.getChildren, children: ['a'] });
      expect(r[2]).toEqual({ type: OpCode.error, err: Err.NONODE });
      await expectZkError(root.multiRead([Op.create(`${p}/x`, null)]), Err.BADARGUMENTS);
    }, 30_000);

    it('ACLs with digest auth: NOAUTH without it, setACL with versions', async () => {
      const p = await node('acl');
      const a = await open();
      await a.addAuth('digest', 'alice:secret');
      await a.create(`${p}/s`, 'hidden', { acl: Acls.CREATOR_ALL_ACL });
      const { acl, stat } = await a.getACL(`${p}/s`);
      expect(acl.length).toBe(1);
      expect(acl[0].perms).toBe(Perm.ALL);
      expect(acl[0].id.scheme).toBe('digest');
      expect(acl[0].id.id).toMatch(/^alice:/);
      expect(stat.aversion).toBe(0);
      const b = await open();
      await expectZkError(b.getData(`${p}/s`), Err.NOAUTH);
      await expectZkError(b.setData(`${p}/s`, 'x'), Err.NOAUTH);
      await expectZkError(b.create(`${p}/noauth`, null, { acl: Acls.CREATOR_ALL_ACL }), Err.INVALIDACL);
      await b.addAuth('digest', 'alice:secret');
      expect((await b.getData(`${p}/s`)).data?.toString()).toBe('hidden');
      const readable = [...Acls.READ_ACL_UNSAFE, ...Acls.CREATOR_ALL_ACL];
      await expectZkError(a.setACL(`${p}/s`, readable, 3), Err.BADVERSION);
      expect((await a.setACL(`${p}/s`, readable, 0)).aversion).toBe(1);
      const c = await open();
      expect((await c.getData(`${p}/s`)).data?.toString()).toBe('hidden');
      await expectZkError(c.setData(`${p}/s`, 'no'), Err.NOAUTH);
      // Credentials survive a reconnect (replayed before other requests).
      a.testHooks.dropConnection();
      expect((await a.setData(`${p}/s`, 'by alice')).version).toBe(1);
    }, 30_000);

    it('sync and whoAmI', async () => {
      const c = await open();
      await c.sync(base);
      await c.sync();
      if (suiteOpts.whoAmI === false) return;
      const before = await c.whoAmI();
      expect(before).toEqual(expect.arrayContaining([{ authScheme: 'ip', user: '127.0.0.1' }]));
      await c.addAuth('digest', 'bob:pw');
      const after = await c.whoAmI();
      expect(after).toEqual(expect.arrayContaining([{ authScheme: 'digest', user: 'bob' }]));
    }, 30_000);

    it('pipelined requests are answered in order', async () => {
      const p = await node('pipe');
      const c = await open();
      const paths = await Promise.all(Array.from({ length: 300 }, () => c.create(`${p}/n-`, null, { mode: CreateMode.PERSISTENT_SEQUENTIAL })));
      const expected = Array.from({ length: 300 }, (_, i) => `${p}/n-${String(i).padStart(10, '0')}`);
      expect(paths).toEqual(expected);
      const reads = await Promise.all(paths.slice(0, 50).map((x) => c.exists(x)));
      expect(reads.every((s) => s !== null)).toBe(true);
    }, 30_000);

    it('large data round-trips; over 1 MiB is refused client-side', async () => {
      const p = await node('big');
      const big = Buffer.alloc(600 * 1024, 7);
      await root.setData(p, big);
      expect((await root.getData(p)).data?.equals(big)).toBe(true);
      await expectZkError(root.setData(p, Buffer.alloc(1100 * 1024)), Err.BADARGUMENTS);
      expect(root.state).toBe('connected');
      expect(await root.exists(p)).not.toBeNull();
    }, 30_000);

    it('chroot: paths are prefixed and stripped, in replies and events', async () => {
      const p = await node('chroot');
      const c = await open({}, p);
      expect(await c.create('/x', 'd')).toBe('/x');
      expect((await root.getData(`${p}/x`)).data?.toString()).toBe('d');
      expect(await c.getChildren('/')).toEqual(['x']);
      const events: WatchEvent[] = [];
      await c.exists('/y', (ev) => events.push(ev));
      await root.create(`${p}/y`, null);
      await waitFor(() => events.length === 1, 10_000, 'chrooted event');
      expect(events[0].path).toBe('/y');
      const r = await c.multi([Op.create('/m', null)]);
      expect(r[0]).toEqual({ type: OpCode.create, path: '/m' });
      expect((await c.create2('/s-', null, { mode: CreateMode.EPHEMERAL_SEQUENTIAL })).path).toMatch(/^\/s-\d{10}$/);
      expect((await c.getEphemerals('/')).every((e) => e.startsWith('/s-'))).toBe(true);
    }, 30_000);

    it('a dropped socket: in-flight requests fail with CONNECTIONLOSS, the session is re-attached', async () => {
      const p = await node('drop');
      const c = await open();
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      const sid = c.sessionId;
      const states: ZkState[] = [];
      c.on('state', (s) => states.push(s));
      const inFlight = c.getData(p);
      c.testHooks.dropConnection();
      const e = await expectZkError(inFlight, Err.CONNECTIONLOSS);
      expect(e.path).toBe(p);
      expect(c.state).toBe('disconnected');
      const after = c.getData(p); // waits for the re-attach
      await after;
      expect(c.state).toBe('connected');
      expect(c.sessionId).toBe(sid);
      expect(states).toEqual(['disconnected', 'connected']);
      expect((await root.exists(eph))?.ephemeralOwner).toBe(sid);
    }, 30_000);

    it('re-attach after a partition keeps ephemerals and re-arms watches (setWatches / setWatches2)', async () => {
      const p = await node('reattach');
      await root.setData(p, 'v1');
      const c = await open();
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      const sid = c.sessionId;
      const data: WatchEvent[] = [];
      const child: WatchEvent[] = [];
      const later: WatchEvent[] = [];
      const pers: WatchEvent[] = [];
      await c.getData(p, (ev) => data.push(ev));
      await c.getChildren(p, (ev) => child.push(ev));
      await c.exists(`${p}/later`, (ev) => later.push(ev));
      await c.addWatch(`${p}/pw`, AddWatchMode.PERSISTENT, (ev) => pers.push(ev));
      c.testHooks.partition(60_000);
      expect(c.state).toBe('disconnected');
      const queued = c.getData(p);
      await root.setData(p, 'v2');
      await root.create(`${p}/k`, null);
      await root.create(`${p}/later`, null);
      c.testHooks.heal();
      expect((await queued).data?.toString()).toBe('v2');
      expect(c.sessionId).toBe(sid);
      await waitFor(() => data.length === 1 && child.length === 1 && later.length === 1, 10_000, 'missed events after re-attach');
      expect(data[0]).toMatchObject({ type: EventType.NodeDataChanged, path: p });
      expect(child[0]).toMatchObject({ type: EventType.NodeChildrenChanged, path: p });
      expect(later[0]).toMatchObject({ type: EventType.NodeCreated, path: `${p}/later` });
      await root.create(`${p}/pw`, null);
      await waitFor(() => pers.length === 1, 10_000, 'persistent watch re-armed');
      expect(pers[0]).toMatchObject({ type: EventType.NodeCreated, path: `${p}/pw` });
      expect((await root.exists(eph))?.ephemeralOwner).toBe(sid);
    }, 40_000);

    it('requests that wait too long for a connection fail with CONNECTIONLOSS', async () => {
      const c = await open({ requestTimeoutMs: 300 });
      c.testHooks.partition(60_000);
      const t0 = Date.now();
      await expectZkError(c.exists('/'), Err.CONNECTIONLOSS);
      expect(Date.now() - t0).toBeLessThan(5000);
      c.testHooks.heal();
      await waitFor(() => c.state === 'connected', 15_000, 'reconnect');
    }, 30_000);

    it('session expiry after a partition: SESSIONEXPIRED, terminal, ephemerals gone', async () => {
      const p = await node('expire');
      const c = await open({ sessionTimeoutMs: 2000, requestTimeoutMs: 60_000 });
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      const watchEvents: WatchEvent[] = [];
      await c.exists(`${p}/other`, (ev) => watchEvents.push(ev));
      const states: ZkState[] = [];
      c.on('state', (s) => states.push(s));
      c.testHooks.partition(120_000);
      await waitFor(async () => (await root.exists(eph)) === null, c.negotiatedTimeoutMs * 3 + 15_000, 'the ephemeral to go');
      const queued = c.getData(p);
      c.testHooks.heal();
      await expectZkError(queued, Err.SESSIONEXPIRED);
      expect(c.state).toBe('expired');
      expect(states).toEqual(['disconnected', 'expired']);
      expect(watchEvents).toEqual([{ type: EventType.None, state: KeeperState.Expired, path: '' }]);
      await expectZkError(c.exists('/'), Err.SESSIONEXPIRED);
      await c.close();
      expect(c.state).toBe('closed');
    }, 60_000);

    it('session expiry when pings stop: the server expires it, the client learns on reconnect', async () => {
      const p = await node('noping');
      const c = await open({ sessionTimeoutMs: 2000, requestTimeoutMs: 60_000 });
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      c.testHooks.pausePings(true);
      await waitFor(() => c.state === 'expired', c.negotiatedTimeoutMs * 3 + 15_000, 'expiry');
      expect(await root.exists(eph)).toBeNull();
    }, 60_000);

    it('pings keep an idle session alive past its timeout', async () => {
      const p = await node('idle');
      const c = await open({ sessionTimeoutMs: 2000 });
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      const sid = c.sessionId;
      const states: ZkState[] = [];
      c.on('state', (s) => states.push(s));
      await new Promise((r) => setTimeout(r, c.negotiatedTimeoutMs * 2 + 500));
      expect(states).toEqual([]);
      expect(c.sessionId).toBe(sid);
      expect((await root.exists(eph))?.ephemeralOwner).toBe(sid);
    }, 60_000);

    it('re-attach from a second client with the session id and password; a wrong password is expired', async () => {
      const p = await node('takeover');
      const a = await open();
      const eph = await a.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      a.testHooks.partition(120_000);
      const b = await open({ session: { id: a.sessionId, passwd: a.sessionPasswd } });
      expect(b.sessionId).toBe(a.sessionId);
      expect(await b.getEphemerals(p)).toEqual([eph]);
      const bad = Buffer.from(a.sessionPasswd);
      bad[0] ^= 0xff;
      const c = new ZkClient({ connectString: connectString(), sessionTimeoutMs: 10_000, session: { id: a.sessionId, passwd: bad } });
      opened.push(c);
      await expectZkError(c.connect({ timeoutMs: 20_000 }), Err.SESSIONEXPIRED);
      expect(c.state).toBe('expired');
      await b.close();
      await waitFor(async () => (await root.exists(eph)) === null, 5000, 'ephemeral gone after close');
      await a.close({ timeoutMs: 200 });
    }, 40_000);

    it('close ends the session: ephemerals gone, later calls fail', async () => {
      const p = await node('close');
      const c = await open();
      const eph = await c.create(`${p}/e`, null, { mode: CreateMode.EPHEMERAL });
      const states: ZkState[] = [];
      c.on('state', (s) => states.push(s));
      const ev: WatchEvent[] = [];
      await c.exists(`${p}/nothing`, (e) => ev.push(e));
      await c.close();
      expect(c.state).toBe('closed');
      expect(states).toEqual(['closed']);
      expect(ev).toEqual([{ type: EventType.None, state: KeeperState.Closed, path: '' }]);
      await waitFor(async () => (await root.exists(eph)) === null, 5000, 'ephemeral gone after close');
      await expectZkError(c.exists('/'), Err.SESSIONEXPIRED);
      await c.close();
    }, 30_000);
  });
}
