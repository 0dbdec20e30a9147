// node-zookeeper-client (pure JavaScript, CommonJS) against a
// ZooKeeper-compatible server. That client shuffles its connect string,
// waits `spinDelay` after trying every server and has no per-request timeout
// (ANCHORS pitfall 4), so every call here is wrapped in a timeout and every
// client is closed in afterEach.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

// ---- the part of the library's API these tests use (it ships no types)
interface NzkStat {
  czxid: Buffer; mzxid: Buffer; pzxid: Buffer; ctime: Buffer; mtime: Buffer;
  version: number; cversion: number; aversion: number;
  ephemeralOwner: Buffer; dataLength: number; numChildren: number;
}
interface NzkEvent { type: number; name: string; path: string; getType(): number; getPath(): string; toString(): string }
interface NzkError extends Error { code: number; name: string; getCode(): number; getName(): string }
type Cb<T> = (err: NzkError | null, value: T, extra?: unknown) => void;
type Watcher = (event: NzkEvent) => void;
interface NzkTxResult { type: number; path?: string; stat?: NzkStat; err?: number }
interface NzkTransaction {
  create(path: string, data?: Buffer, acls?: unknown[], mode?: number): NzkTransaction;
  create(path: string, data: Buffer, mode: number): NzkTransaction;
  setData(path: string, data: Buffer, version?: number): NzkTransaction;
  check(path: string, version?: number): NzkTransaction;
  remove(path: string, version?: number): NzkTransaction;
  commit(cb: (err: NzkError | null, results: NzkTxResult[]) => void): void;
}
interface NzkClient {
  connect(): void;
  close(): void;
  on(ev: string, fn: (...a: unknown[]) => void): void;
  once(ev: string, fn: (...a: unknown[]) => void): void;
  removeListener(ev: string, fn: (...a: unknown[]) => void): void;
  getSessionId(): Buffer;
  getSessionTimeout(): number;
  addAuthInfo(scheme: string, auth: Buffer): void;
  create(path: string, data: Buffer | null, acls: unknown[], mode: number, cb: Cb<string>): void;
  create(path: string, data: Buffer | null, mode: number, cb: Cb<string>): void;
  create(path: string, data: Buffer | null, cb: Cb<string>): void;
  remove(path: string, version: number, cb: Cb<void>): void;
  setData(path: string, data: Buffer, version: number, cb: Cb<NzkStat>): void; // null data throws in 1.1.3
  getData(path: string, watcher: Watcher | undefined, cb: (err: NzkError | null, data: Buffer | undefined, stat: NzkStat) => void): void;
  exists(path: string, watcher: Watcher | undefined, cb: Cb<NzkStat | null>): void;
  getChildren(path: string, watcher: Watcher | undefined, cb: (err: NzkError | null, children: string[], stat: NzkStat) => void): void;
  getACL(path: string, cb: (err: NzkError | null, acls: Array<{ permission: number; id: { scheme: string; id: string } }>) => void): void;
  transaction(): NzkTransaction;
}
interface NzkModule {
  createClient(connect: string, opts?: { sessionTimeout?: number; spinDelay?: number; retries?: number }): NzkClient;
  CreateMode: { PERSISTENT: number; EPHEMERAL: number; PERSISTENT_SEQUENTIAL: number; EPHEMERAL_SEQUENTIAL: number };
  Event: { NODE_CREATED: number; NODE_DELETED: number; NODE_DATA_CHANGED: number; NODE_CHILDREN_CHANGED: number };
  Exception: { NO_NODE: number; NODE_EXISTS: number; BAD_VERSION: number; NOT_EMPTY: number; NO_AUTH: number;
    NO_CHILDREN_FOR_EPHEMERALS: number; OK: number };
  ACL: new (perm: number, id: unknown) => unknown;
  Id: new (scheme: string, id: string) => unknown;
  Permission: { ALL: number; READ: number };
}

const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as NzkModule;

const CALL_MS = 10_000;
const T = 30_000;

/** Run a callback-style call with a timeout (the library has none). */
function call<T>(what: string, fn: (cb: (err: NzkError | null, value?: T) => void) => void, ms = CALL_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    try {
      fn((err, value) => {
        clearTimeout(timer);
        if (err) reject(err); else resolve(value as T);
      });
    } catch (e) {
      clearTimeout(timer);
      reject(e as Error);
    }
  });
}

/** The error code a rejected call carried (node-zookeeper-client Exception). */
async function errCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    const code = (e as NzkError).getCode?.();
    if (typeof code === 'number') return code;
    throw e;
  }
  throw new Error('expected the call to fail');
}

/** Resolve with the next event a one-shot watcher receives, or reject after ms. */
function nextEvent(ms = CALL_MS): { watcher: Watcher; event: Promise<NzkEvent> } {
  let watcher!: Watcher;
  const event = new Promise<NzkEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no watch event within ${ms} ms`)), ms);
    watcher = (e) => { clearTimeout(timer); resolve(e); };
  });
  return { watcher, event };
}

/** A watcher that keeps every event it is given (a one-shot watch must get one), and the first of them, or a rejection after ms. */
function recordEvents(ms = CALL_MS): { watcher: Watcher; events: NzkEvent[]; first: Promise<NzkEvent> } {
  const events: NzkEvent[] = [];
  let watcher!: Watcher;
  const first = new Promise<NzkEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no watch event within ${ms} ms`)), ms);
    watcher = (e) => { events.push(e); clearTimeout(timer); resolve(events[0]); };
  });
  return { watcher, events, first };
}

async function waitFor(what: string, pred: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    if (await pred()) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function runNodeZkClientSuite(getConnectString: () => string): void {
  describe('node-zookeeper-client', () => {
    const open: NzkClient[] = [];
    const root = `/nzk-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    const Ev = zookeeper.Event;
    const Ex = zookeeper.Exception;
    const Mode = zookeeper.CreateMode;

    async function connect(sessionTimeout = 10_000): Promise<NzkClient> {
      const c = zookeeper.createClient(getConnectString(), { sessionTimeout, spinDelay: 100, retries: 0 });
      open.push(c);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`node-zookeeper-client did not connect to ${getConnectString()} within 10 s`)), 10_000);
        c.once('connected', () => { clearTimeout(timer); resolve(); });
        c.connect();
      });
      return c;
    }

    /** close() only queues closeSession; resolve when the socket has closed. */
    async function closeClient(c: NzkClient): Promise<void> {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5_000);
        c.once('disconnected', () => { clearTimeout(timer); resolve(); });
        c.close();
      });
      const i = open.indexOf(c);
      if (i >= 0) open.splice(i, 1);
    }

    async function ensureRoot(c: NzkClient): Promise<void> {
      try {
        await call<string>('create root', (cb) => c.create(root, null, cb));
      } catch (e) {
        if ((e as NzkError).getCode?.() !== Ex.NODE_EXISTS) throw e;
      }
    }

    afterEach(async () => {
      for (const c of open.splice(0)) { try { c.close(); } catch { /* best effort */ } }
    });

    it('connect, create/getData/setData/remove with versions and error codes', async () => {
      const c = await connect();
      expect(c.getSessionId().length).toBe(8);
      expect(c.getSessionTimeout()).toBeGreaterThan(0);
      await ensureRoot(c);
      const p = `${root}/crud`;
      expect(await call<string>('create', (cb) => c.create(p, Buffer.from('v0'), cb))).toBe(p);
      expect(await errCode(call('create again', (cb) => c.create(p, Buffer.from('x'), cb)))).toBe(Ex.NODE_EXISTS);

      const [data0, stat0] = await call<[Buffer, NzkStat]>('getData', (cb) =>
        c.getData(p, undefined, (err, d, s) => cb(err, [d!, s])));
      expect(data0.toString()).toBe('v0');
      expect(stat0.version).toBe(0);
      expect(stat0.dataLength).toBe(2);
      expect(stat0.numChildren).toBe(0);
      expect(stat0.ephemeralOwner.equals(Buffer.alloc(8))).toBe(true);
      expect(stat0.czxid.equals(stat0.mzxid)).toBe(true);

      const stat1 = await call<NzkStat>('setData', (cb) => c.setData(p, Buffer.from('v1'), 0, cb));
      expect(stat1.version).toBe(1);
      expect(stat1.czxid.equals(stat0.czxid)).toBe(true);
      expect(stat1.mzxid.compare(stat0.mzxid)).toBe(1);
      expect(await errCode(call('setData bad version', (cb) => c.setData(p, Buffer.from('v2'), 0, cb)))).toBe(Ex.BAD_VERSION);
      const stat2 = await call<NzkStat>('setData any version', (cb) => c.setData(p, Buffer.from('v2'), -1, cb));
      expect(stat2.version).toBe(2);

      // empty and null data
      await call<NzkStat>('setData empty', (cb) => c.setData(p, Buffer.alloc(0), -1, cb));
      const [dataE, statE] = await call<[Buffer | undefined, NzkStat]>('getData empty', (cb) =>
        c.getData(p, undefined, (err, d, s) => cb(err, [d, s])));
      expect(dataE === undefined || dataE === null || dataE.length === 0).toBe(true);
      expect(statE.dataLength).toBe(0);

      // children, sequential names, non-empty delete, parent missing
      await call<string>('create child', (cb) => c.create(`${p}/kid`, null, cb));
      const seq = await call<string>('create sequential', (cb) => c.create(`${p}/seq-`, Buffer.from('s'), Mode.PERSISTENT_SEQUENTIAL, cb));
      expect(seq).toMatch(new RegExp(`^${p}/seq-\\d{10}$`));
      expect(seq).toBe(`${p}/seq-0000000001`);
      expect(await errCode(call('remove non-empty', (cb) => c.remove(p, -1, cb)))).toBe(Ex.NOT_EMPTY);
      expect(await errCode(call('create without parent', (cb) => c.create(`${p}/no/parent`, null, cb)))).toBe(Ex.NO_NODE);
      const [kids, pstat] = await call<[string[], NzkStat]>('getChildren', (cb) =>
        c.getChildren(p, undefined, (err, ch, s) => cb(err, [ch, s])));
      expect([...kids].sort()).toEqual(['kid', seq.slice(p.length + 1)]);
      expect(pstat.numChildren).toBe(2);
      expect(pstat.cversion).toBe(2);

      await call<void>('remove kid', (cb) => c.remove(`${p}/kid`, 0, cb));
      await call<void>('remove seq', (cb) => c.remove(seq, -1, cb));
      expect(await errCode(call('remove bad version', (cb) => c.remove(p, 1, cb)))).toBe(Ex.BAD_VERSION);
      await call<void>('remove', (cb) => c.remove(p, 3, cb));
      expect(await call<NzkStat | null>('exists', (cb) => c.exists(p, undefined, cb))).toBeNull();
      expect(await errCode(call('getData missing', (cb) => c.getData(p, undefined, (err, d) => cb(err, d))))).toBe(Ex.NO_NODE);
      expect(await errCode(call('remove missing', (cb) => c.remove(p, -1, cb)))).toBe(Ex.NO_NODE);
    }, T);

    it('exists watch: fires on create, data change, delete (one-shot each)', async () => {
      const w = await connect();
      const m = await connect();
      await ensureRoot(m);
      const p = `${root}/exists-watch`;
      const ev = (e: NzkEvent) => [e.getType(), e.getPath()];

      const onCreate = recordEvents();
      expect(await call<NzkStat | null>('exists missing', (cb) => w.exists(p, onCreate.watcher, cb))).toBeNull();
      await call<string>('create', (cb) => m.create(p, Buffer.from('a'), cb));
      expect(ev(await onCreate.first)).toEqual([Ev.NODE_CREATED, p]);

      const onChange = recordEvents();
      expect((await call<NzkStat | null>('exists', (cb) => w.exists(p, onChange.watcher, cb)))?.version).toBe(0);
      await call<NzkStat>('setData', (cb) => m.setData(p, Buffer.from('b'), -1, cb));
      expect(ev(await onChange.first)).toEqual([Ev.NODE_DATA_CHANGED, p]);

      // One-shot: a second change, not re-armed, must fire neither watch again; the getData watch
      // armed after it sees only the delete, which must not fire the two spent watches either.
      await call<NzkStat>('setData again', (cb) => m.setData(p, Buffer.from('c'), -1, cb));
      const onDelete = recordEvents();
      const data = await call<Buffer>('getData watch', (cb) => w.getData(p, onDelete.watcher, (err, d) => cb(err, d!)));
      expect(data.toString()).toBe('c');
      await call<void>('remove', (cb) => m.remove(p, -1, cb));
      expect(ev(await onDelete.first)).toEqual([Ev.NODE_DELETED, p]);
      // The server sends a session's notifications and replies in order: once a request made after
      // the delete is answered, every event the two changes and the delete caused has arrived.
      expect(await call<NzkStat | null>('exists after the delete', (cb) => w.exists(p, undefined, cb))).toBeNull();
      expect({ create: onCreate.events.map(ev), change: onChange.events.map(ev), delete: onDelete.events.map(ev) }).toEqual({
        create: [[Ev.NODE_CREATED, p]],
        change: [[Ev.NODE_DATA_CHANGED, p]],
        delete: [[Ev.NODE_DELETED, p]],
      });
    }, T);

    it('getChildren watch: fires on child create and delete', async () => {
      const w = await connect();
      const m = await connect();
      await ensureRoot(m);
      const p = `${root}/children-watch`;
      await call<string>('create parent', (cb) => m.create(p, null, cb));

      let n = nextEvent();
      const kids0 = await call<string[]>('getChildren', (cb) => w.getChildren(p, n.watcher, (err, ch) => cb(err, ch)));
      expect(kids0).toEqual([]);
      await call<NzkStat>('setData of parent does not fire a child watch', (cb) => m.setData(p, Buffer.from('x'), -1, cb));
      await call<string>('create child', (cb) => m.create(`${p}/a`, null, cb));
      let e = await n.event;
      expect([e.getType(), e.getPath()]).toEqual([Ev.NODE_CHILDREN_CHANGED, p]);

      n = nextEvent();
      const kids1 = await call<string[]>('getChildren again', (cb) => w.getChildren(p, n.watcher, (err, ch) => cb(err, ch)));
      expect(kids1).toEqual(['a']);
      await call<void>('remove child', (cb) => m.remove(`${p}/a`, -1, cb));
      e = await n.event;
      expect([e.getType(), e.getPath()]).toEqual([Ev.NODE_CHILDREN_CHANGED, p]);
      await call<void>('remove parent', (cb) => m.remove(p, -1, cb));
    }, T);

    it('transaction: commit applies all ops; a failing op applies none', async () => {
      const c = await connect();
      const o = await connect();
      await ensureRoot(c);
      const p = `${root}/txn`;
      await call<string>('create', (cb) => c.create(p, Buffer.from('0'), cb));

      const ok = await call<NzkTxResult[]>('commit', (cb) => c.transaction()
        .create(`${p}/a`, Buffer.from('A'))
        .create(`${p}/s-`, Buffer.from('S'), Mode.PERSISTENT_SEQUENTIAL)
        .setData(p, Buffer.from('1'), 0)
        .check(p, 1)
        .create(`${p}/tmp`)
        .remove(`${p}/tmp`)
        .commit(cb));
      expect(ok.length).toBe(6);
      expect(ok[0].path).toBe(`${p}/a`);
      expect(ok[1].path).toMatch(new RegExp(`^${p}/s-\\d{10}$`));
      expect(ok[2].stat?.version).toBe(1);
      expect(ok.map((r) => r.type)).toEqual([1, 1, 5, 13, 1, 2]); // create, create, setData, check, create, delete
      const [d] = await call<[Buffer]>('getData', (cb) => o.getData(p, undefined, (err, data) => cb(err, [data!])));
      expect(d.toString()).toBe('1');

      // failure: the check has the wrong version; nothing is applied
      let failed: { err: NzkError | null; results: NzkTxResult[] } | undefined;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('commit: no answer')), CALL_MS);
        c.transaction()
          .create(`${p}/b`, Buffer.from('B'))
          .setData(p, Buffer.from('2'))
          .check(p, 42)
          .create(`${p}/c`)
          .commit((err, results) => { clearTimeout(timer); failed = { err, results }; resolve(); });
      });
      expect(failed!.err?.getCode()).toBe(Ex.BAD_VERSION);
      expect(failed!.results.map((r) => r.err)).toEqual([0, 0, Ex.BAD_VERSION, -2]); // OK (rolled back), ..., RUNTIMEINCONSISTENCY
      expect(failed!.results.every((r) => r.type === -1)).toBe(true);
      expect(await call<NzkStat | null>('exists b', (cb) => o.exists(`${p}/b`, undefined, cb))).toBeNull();
      expect(await call<NzkStat | null>('exists c', (cb) => o.exists(`${p}/c`, undefined, cb))).toBeNull();
      expect((await call<NzkStat | null>('exists p', (cb) => o.exists(p, undefined, cb)))?.version).toBe(1);

      const exists = await call<NzkTxResult[]>('commit create existing', (cb) => c.transaction()
        .create(`${p}/a`).commit((err, r) => cb(null, err ? [{ type: -1, err: err.getCode() }] : r)));
      expect(exists[0].err).toBe(Ex.NODE_EXISTS);
    }, T);

    it('ephemerals belong to the session and are gone after close', async () => {
      const owner = await connect();
      const obs = await connect();
      await ensureRoot(obs);
      const p = `${root}/eph`;
      await call<string>('create parent', (cb) => obs.create(p, null, cb));
      await call<string>('create ephemeral', (cb) => owner.create(`${p}/e`, Buffer.from('x'), Mode.EPHEMERAL, cb));
      const seq = await call<string>('create ephemeral sequential', (cb) => owner.create(`${p}/es-`, null, Mode.EPHEMERAL_SEQUENTIAL, cb));
      expect(seq).toMatch(/\/es-\d{10}$/);
      expect(await errCode(call('child of ephemeral', (cb) => owner.create(`${p}/e/kid`, null, cb)))).toBe(Ex.NO_CHILDREN_FOR_EPHEMERALS);
      const st = await call<NzkStat | null>('exists', (cb) => obs.exists(`${p}/e`, undefined, cb));
      expect(st?.ephemeralOwner.toString('hex')).toBe(owner.getSessionId().toString('hex'));

      const n = nextEvent();
      await call<NzkStat | null>('exists watch', (cb) => obs.exists(`${p}/e`, n.watcher, cb));
      await closeClient(owner);
      const e = await n.event;
      expect([e.getType(), e.getPath()]).toEqual([Ev.NODE_DELETED, `${p}/e`]);
      await waitFor('ephemerals gone', async () =>
        (await call<string[]>('getChildren', (cb) => obs.getChildren(p, undefined, (err, ch) => cb(err, ch)))).length === 0);
    }, T);

    it('digest ACL: the owner reads, a client without auth gets NO_AUTH', async () => {
      const owner = await connect();
      const stranger = await connect();
      await ensureRoot(owner);
      owner.addAuthInfo('digest', Buffer.from('nzk:secret'));
      const p = `${root}/acl`;
      const digest = `nzk:${crypto.createHash('sha1').update('nzk:secret').digest('base64')}`;
      const acl = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('digest', digest))];
      await call<string>('create with acl', (cb) => owner.create(p, Buffer.from('hidden'), acl, Mode.PERSISTENT, cb));
      const [d] = await call<[Buffer]>('owner getData', (cb) => owner.getData(p, undefined, (err, data) => cb(err, [data!])));
      expect(d.toString()).toBe('hidden');
      const acls = await call<Array<{ permission: number; id: { scheme: string; id: string } }>>('getACL', (cb) => owner.getACL(p, cb));
      expect(acls.map((a) => [a.permission, a.id.scheme, a.id.id])).toEqual([[zookeeper.Permission.ALL, 'digest', digest]]);
      expect(await errCode(call('stranger getData', (cb) => stranger.getData(p, undefined, (err, data) => cb(err, data))))).toBe(Ex.NO_AUTH);
      expect(await errCode(call('stranger setData', (cb) => stranger.setData(p, Buffer.from('mine'), -1, cb)))).toBe(Ex.NO_AUTH);
      await call<void>('remove (needs DELETE on the parent only)', (cb) => stranger.remove(p, -1, cb));
    }, T);

    afterAll(async () => {
      let c: NzkClient;
      try { c = await connect(); } catch { return; /* server not there: nothing to clean */ }
      const rm = async (path: string): Promise<void> => {
        const kids = await call<string[]>('getChildren', (cb) => c.getChildren(path, undefined, (err, ch) => cb(err, ch))).catch(() => []);
        for (const k of kids) await rm(`${path}/${k}`);
        await call<void>('remove', (cb) => c.remove(path, -1, cb)).catch(() => undefined);
      };
      await rm(root);
      await closeClient(c);
    }, T);
  });
}
