// Fuzzy snapshots (TRAPS: Disk and Replication): a SnapshotWriter stepped
// while committed transactions keep being applied, then loaded and replayed
// from its zxid Z0, must give exactly the tree that applied everything.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JuteError, JuteWriter } from '../../../src/proto/jute.js';
import { OpCode } from '../../../src/proto/zk-constants.js';
import { writeAclList, type ACL } from '../../../src/proto/zk-records.js';
import { decodeLoggedTxn, deserializeTree, encodeLoggedTxn, serializeTree, SnapshotWriter } from '../../../src/proto/txn-codec.js';
import { DataTree } from '../../../src/core/zk/data-tree.js';
import type { LoggedTxn, Txn } from '../../../src/core/zk/txn.js';

const WORLD: ACL[] = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
const ACLS: (() => ACL[])[] = [
  () => WORLD,
  // Equal lists in distinct arrays, as replayed transactions have them.
  () => [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }],
  () => [{ perms: 1, id: { scheme: 'digest', id: 'u:hash' } }, { perms: 16, id: { scheme: 'ip', id: '10.0.0.1' } }],
];
const NAMES = ['a', 'b', 'c'];

/** A tree, the transactions applied to it, and a generator of valid ones (what RequestPrep would make). */
class World {
  readonly tree = new DataTree();
  readonly log: LoggedTxn[] = [];
  private zxid = 0n;
  private time = 1_700_000_000_000;
  private nextSession = 0x100n;

  apply(txn: Txn, sessionId = 0n): bigint {
    const hdr = { sessionId, cxid: 0, zxid: ++this.zxid, timeMs: (this.time += 7) };
    this.tree.apply(hdr, txn, []);
    this.log.push({ hdr, txn });
    return hdr.zxid;
  }

  private pick<T>(xs: T[], seed: number): T | undefined {
    return xs.length === 0 ? undefined : xs[seed % xs.length];
  }

  /** Nodes outside /zookeeper, sorted (the generator must be deterministic). */
  private paths(filter: (p: string) => boolean): string[] {
    return [...this.tree.nodes.keys()].filter((p) => p !== '/zookeeper' && !p.startsWith('/zookeeper/') && filter(p)).sort();
  }

  private parents(): string[] {
    return this.paths((p) => this.tree.get(p)!.ephemeralOwner === 0n && p.split('/').length < 5);
  }

  private leaves(): string[] {
    return this.paths((p) => p !== '/' && this.tree.get(p)!.children.size === 0);
  }

  private sessions(): bigint[] {
    return [...this.tree.sessions.keys()].sort((x, y) => (x < y ? -1 : 1));
  }

  private child(parent: string, name: string): string {
    return parent === '/' ? `/${name}` : `${parent}/${name}`;
  }

  private createTxn(path: string, parentCVersion: number, owner: bigint, seed: number): Txn {
    return { type: 'create', path, data: Buffer.from(`d${seed}`), acl: ACLS[seed % ACLS.length](), ephemeralOwner: owner, parentCVersion, op: OpCode.create };
  }

  /** One valid transaction chosen by (kind, a, b); applied. */
  step(kind: number, a: number, b: number): void {
    const t = this.tree;
    switch (kind % 10) {
      case 0: case 1: { // create (persistent, sequential, ephemeral), an error if it exists
        const parent = this.pick(this.parents(), a)!;
        const p = t.get(parent)!;
        const sequential = b % 3 === 0;
        const path = this.child(parent, sequential ? `s${String(p.cversion).padStart(10, '0')}` : NAMES[b % NAMES.length]);
        const owner = b % 4 === 1 ? this.pick(this.sessions(), a) ?? 0n : 0n;
        if (t.get(path)) { this.apply({ type: 'error', err: -110 }); return; }
        this.apply(this.createTxn(path, p.cversion + 1, owner, b), owner);
        return;
      }
      case 2: case 3: { // delete a leaf
        const path = this.pick(this.leaves(), a);
        if (path) this.apply({ type: 'delete', path });
        return;
      }
      case 4: { // setData
        const path = this.pick(this.paths(() => true), a)!;
        this.apply({ type: 'setData', path, data: b % 5 === 0 ? null : Buffer.from(`v${b}`), version: t.get(path)!.version + 1 });
        return;
      }
      case 5: { // setACL
        const path = this.pick(this.paths(() => true), a)!;
        this.apply({ type: 'setACL', path, acl: ACLS[b % ACLS.length](), version: t.get(path)!.aversion + 1 });
        return;
      }
      case 6: this.multi(a, b); return;
      case 7: this.apply({ type: 'createSession', timeoutMs: 4000 + a, passwd: Buffer.alloc(16, b) }, this.nextSession++); return;
      case 8: { // closeSession: its ephemerals go
        const s = this.pick(this.sessions(), a);
        if (s !== undefined) this.apply({ type: 'closeSession' }, s);
        return;
      }
      default: { // check, or a failed write
        const path = this.pick(this.paths(() => true), a)!;
        this.apply(b % 2 === 0 ? { type: 'check', path, version: t.get(path)!.version } : { type: 'error', err: -101 });
      }
    }
  }

  /** Multi transactions valid by construction (their ops apply in order). */
  private multi(a: number, b: number): void {
    const t = this.tree;
    switch (b % 4) {
      case 0: { // create p, setData p, create p/m
        const parent = this.pick(this.parents(), a)!;
        const name = NAMES[a % NAMES.length];
        const path = this.child(parent, `m${name}`);
        if (t.get(path) || path.split('/').length > 5) return;
        this.apply({ type: 'multi', txns: [
          this.createTxn(path, t.get(parent)!.cversion + 1, 0n, a),
          { type: 'setData', path, data: Buffer.from('m'), version: 1 },
          this.createTxn(`${path}/m`, 1, 0n, b),
        ] });
        return;
      }
      case 1: { // delete a leaf and create it again
        const path = this.pick(this.leaves(), a);
        if (!path) return;
        const parent = t.get(path.slice(0, Math.max(1, path.lastIndexOf('/'))))!;
        this.apply({ type: 'multi', txns: [{ type: 'delete', path }, this.createTxn(path, parent.cversion + 1, 0n, b)] });
        return;
      }
      case 2: { // setData, check, setACL on one node
        const path = this.pick(this.paths(() => true), a)!;
        const n = t.get(path)!;
        this.apply({ type: 'multi', txns: [
          { type: 'setData', path, data: Buffer.from(`x${a}`), version: n.version + 1 },
          { type: 'check', path, version: n.version + 1 },
          { type: 'setACL', path, acl: ACLS[a % ACLS.length](), version: n.aversion + 1 },
        ] });
        return;
      }
      default: // a failed multi applies nothing
        this.apply({ type: 'multi', txns: [{ type: 'error', err: 0 }, { type: 'error', err: -101 }] });
    }
  }
}

/** Load the snapshot and replay, through the log codec, every transaction after its zxid. */
function recover(payload: Buffer, log: LoggedTxn[]): DataTree {
  const tree = deserializeTree(payload);
  const z0 = tree.lastZxid;
  for (const t of log) {
    if (t.hdr.zxid <= z0) continue;
    const back = decodeLoggedTxn(encodeLoggedTxn(t));
    tree.apply(back.hdr, back.txn, []);
  }
  return tree;
}

function dump(t: DataTree) {
  return {
    lastZxid: t.lastZxid,
    nodes: [...t.nodes.entries()].sort(([x], [y]) => (x < y ? -1 : 1))
      .map(([p, n]) => [p, { ...n, data: n.data === null ? null : n.data.toString('hex'), children: [...n.children].sort() }]),
    sessions: [...t.sessions.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
    ephemerals: [...t.ephemerals.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([s, ps]) => [s, [...ps].sort()]),
    containers: [...t.containers].sort(),
    ttls: [...t.ttls].sort(),
    dataBytes: t.dataBytes,
  };
}

const op = fc.tuple(fc.nat({ max: 9 }), fc.nat({ max: 1000 }), fc.nat({ max: 1000 }));

describe('fuzzy snapshots: load, then replay from Z0', () => {
  it('equal the tree that applied everything, whatever changed between steps', () => {
    fc.assert(fc.property(
      fc.array(op, { minLength: 5, maxLength: 60 }),
      fc.array(fc.tuple(op, fc.nat({ max: 5 })), { minLength: 1, maxLength: 80 }),
      fc.array(op, { maxLength: 10 }),
      (before, during, after) => {
        const w = new World();
        w.step(7, 0, 1); // a session, so that ephemerals exist
        for (const [k, a, b] of before) w.step(k, a, b);
        const writer = new SnapshotWriter(w.tree);
        expect(writer.zxid).toBe(w.tree.lastZxid);
        let done = false;
        for (const [[k, a, b], budget] of during) {
          if (!done && budget > 0) done = writer.step(budget);
          w.step(k, a, b);
        }
        while (!done) done = writer.step(3);
        const payload = writer.finish();
        for (const [k, a, b] of after) w.step(k, a, b);
        const back = recover(payload, w.log);
        expect(dump(back)).toEqual(dump(w.tree));
        expect(back.goneEphemeralCount).toBe(0);
      },
    ), { numRuns: 400 });
  });

  it('a parent serialized, then a child created and deleted: the parent comes out with the child changes', () => {
    const w = new World();
    w.apply({ type: 'create', path: '/p', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    const writer = new SnapshotWriter(w.tree);
    stepUntilWritten(writer, w.tree, '/p');
    const c = w.apply({ type: 'create', path: '/p/c', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    const d = w.apply({ type: 'delete', path: '/p/c' });
    const snap = finish(writer);
    expect(deserializeTree(snap).get('/p')).toMatchObject({ cversion: 0, children: new Set() }); // the capture was what we meant
    const back = recover(snap, w.log);
    expect(back.get('/p')).toMatchObject({ cversion: 1, pzxid: d });
    expect(d).toBe(c + 1n);
    expect(dump(back)).toEqual(dump(w.tree));
  });

  it('a child deleted before its turn (after its parent was written) is skipped, and the parent pzxid still moves', () => {
    const w = new World();
    w.apply({ type: 'create', path: '/p', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    w.apply({ type: 'create', path: '/p/c', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    const writer = new SnapshotWriter(w.tree);
    stepUntilWritten(writer, w.tree, '/p');
    const d = w.apply({ type: 'delete', path: '/p/c' });
    const snap = finish(writer);
    const loaded = deserializeTree(snap);
    expect(loaded.get('/p/c')).toBeUndefined();
    expect(loaded.get('/p')!.pzxid).toBeLessThan(d);
    const back = recover(snap, w.log);
    expect(back.get('/p')!.pzxid).toBe(d);
    expect(dump(back)).toEqual(dump(w.tree));
  });

  it('a node deleted and created again between steps, with children of its own', () => {
    const w = new World();
    w.apply({ type: 'create', path: '/p', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    w.apply({ type: 'create', path: '/p/x', data: Buffer.from('one'), acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    const writer = new SnapshotWriter(w.tree);
    stepUntilWritten(writer, w.tree, '/p');
    w.apply({ type: 'delete', path: '/p/x' });
    w.apply({ type: 'create', path: '/p/x', data: Buffer.from('two'), acl: WORLD, ephemeralOwner: 0n, parentCVersion: 2, op: 1 });
    w.apply({ type: 'create', path: '/p/x/y', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    const snap = finish(writer);
    // /p/x is captured as its second incarnation, with its child, under the /p written before.
    const loaded = deserializeTree(snap);
    expect(loaded.get('/p/x')!.data?.toString()).toBe('two');
    expect(loaded.get('/p/x/y')).toBeDefined();
    expect(dump(recover(snap, w.log))).toEqual(dump(w.tree));
  });

  it('a sequential create in a parent written earlier: the cversion (hence the next suffix) comes out right', () => {
    const w = new World();
    w.apply({ type: 'create', path: '/q', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    for (let i = 0; i < 3; i++) w.apply({ type: 'create', path: `/q/s${String(i).padStart(10, '0')}`, data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: i + 1, op: 1 });
    const writer = new SnapshotWriter(w.tree);
    stepUntilWritten(writer, w.tree, '/q');
    w.apply({ type: 'delete', path: '/q/s0000000001' });
    w.apply({ type: 'create', path: '/q/s0000000003', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 4, op: 1 });
    const snap = finish(writer);
    expect(deserializeTree(snap).get('/q')!.cversion).toBe(3);
    const back = recover(snap, w.log);
    expect(back.get('/q')!.cversion).toBe(4);
    expect([...back.get('/q')!.children].sort()).toEqual(['s0000000000', 's0000000002', 's0000000003']);
    expect(dump(back)).toEqual(dump(w.tree));
  });

  it('an ephemeral whose session closes mid-snapshot, and a session created mid-snapshot', () => {
    const w = new World();
    w.apply({ type: 'createSession', timeoutMs: 5000, passwd: Buffer.alloc(16, 1) }, 0x10n);
    w.apply({ type: 'create', path: '/e', data: null, acl: WORLD, ephemeralOwner: 0x10n, parentCVersion: 1, op: 1 }, 0x10n);
    const writer = new SnapshotWriter(w.tree);
    w.apply({ type: 'createSession', timeoutMs: 6000, passwd: Buffer.alloc(16, 2) }, 0x11n);
    w.apply({ type: 'create', path: '/f', data: null, acl: WORLD, ephemeralOwner: 0x11n, parentCVersion: 2, op: 1 }, 0x11n);
    stepUntilWritten(writer, w.tree, '/e');
    w.apply({ type: 'closeSession' }, 0x10n);
    const snap = finish(writer);
    const loaded = deserializeTree(snap);
    expect([...loaded.sessions.keys()]).toEqual([0x10n]); // sessions as of Z0
    const back = recover(snap, w.log);
    expect([...back.sessions.keys()]).toEqual([0x11n]);
    expect(dump(back)).toEqual(dump(w.tree));
  });

  it('a closeSession whose ephemeral was gone before the walk reached it still moves the parent pzxid (ZOOKEEPER-3145)', () => {
    const w = new World();
    w.apply({ type: 'createSession', timeoutMs: 5000, passwd: Buffer.alloc(16, 1) }, 0x10n);
    w.apply({ type: 'create', path: '/p', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 });
    w.apply({ type: 'create', path: '/p/e', data: null, acl: WORLD, ephemeralOwner: 0x10n, parentCVersion: 1, op: 1 }, 0x10n);
    w.apply({ type: 'create', path: '/p/f', data: null, acl: WORLD, ephemeralOwner: 0x10n, parentCVersion: 2, op: 1 }, 0x10n);
    const writer = new SnapshotWriter(w.tree);
    stepUntilWritten(writer, w.tree, '/p');
    const close = w.apply({ type: 'closeSession' }, 0x10n);
    // /p/f comes back as a persistent node before the walk reaches it: captured, but not as the session's.
    w.apply({ type: 'create', path: '/p/f', data: Buffer.from('p'), acl: WORLD, ephemeralOwner: 0n, parentCVersion: 3, op: 1 });
    const snap = finish(writer);
    const loaded = deserializeTree(snap);
    expect(loaded.get('/p/e')).toBeUndefined();
    expect(loaded.get('/p/f')!.ephemeralOwner).toBe(0n);
    expect(loaded.goneEphemeralCount).toBe(2);
    const back = recover(snap, w.log);
    expect(back.get('/p')!.pzxid).toBe(close + 1n);
    expect(back.get('/p/f')!.data?.toString()).toBe('p');
    expect(back.goneEphemeralCount).toBe(0);
    expect(dump(back)).toEqual(dump(w.tree));
  });

  it('a stepped snapshot taken with nothing changing is the one serializeTree gives', () => {
    const w = new World();
    for (let i = 0; i < 300; i++) w.step(i * 7, i * 13, i * 31);
    const writer = new SnapshotWriter(w.tree);
    while (!writer.step(2));
    expect(writer.finish().equals(serializeTree(w.tree))).toBe(true);
    expect(() => new SnapshotWriter(w.tree).finish()).toThrow(/before step/);
  });
});

/** Step one node at a time until `path` has been written (watching which path the writer looks up). */
function stepUntilWritten(writer: SnapshotWriter, tree: DataTree, path: string): void {
  const nodes = tree.nodes as Map<string, unknown> & { get: (k: string) => unknown };
  const get = nodes.get.bind(nodes);
  let looked: string | undefined;
  nodes.get = (k: string) => { looked = k; return get(k); };
  try {
    for (;;) {
      looked = undefined;
      const done = writer.step(1);
      if (looked === path && tree.get(path)) return;
      if (done) throw new Error(`${path} was never written`);
    }
  } finally {
    delete (nodes as { get?: unknown }).get;
  }
}

function finish(writer: SnapshotWriter): Buffer {
  while (!writer.step(1000));
  return writer.finish();
}

describe('snapshot decoding', () => {
  function sample(): Buffer {
    const w = new World();
    for (let i = 0; i < 60; i++) w.step(i * 7, i * 13, i * 31);
    return serializeTree(w.tree);
  }

  it('refuses every truncation of a snapshot with a JuteError', () => {
    const snap = sample();
    expect(() => deserializeTree(snap)).not.toThrow();
    for (let len = 0; len < snap.length; len++) {
      expect(() => deserializeTree(snap.subarray(0, len)), `cut at ${len}`).toThrow(JuteError);
    }
    expect(() => deserializeTree(snap.subarray(0, snap.length - 16))).toThrow(/^snapshot .*(truncated|needs)/);
  });

  it('names what is wrong in a malformed snapshot', () => {
    const tree = new DataTree();
    const ok = serializeTree(tree);
    const header = 4 + 8 + 4; // format, zxid, no sessions
    const patched = (at: number, v: number) => { const b = Buffer.from(ok); b.writeInt32BE(v, at); return b; };
    expect(() => deserializeTree(patched(0, 7))).toThrow(/snapshot header: format 7 is not 2/);
    expect(() => deserializeTree(patched(header, 9))).toThrow(/unknown record tag 9/);
    expect(() => deserializeTree(Buffer.concat([ok, Buffer.alloc(3)]))).toThrow(/3 trailing bytes/);
    expect(() => deserializeTree(patched(ok.length - 12, 99))).toThrow(/end marker counts 99/);
    // The first ACL record (tag, count 1, perms, scheme, id) then the root's record: point the root at ACL list 5.
    const rootAt = header + 4 + 4 + 4 + (4 + 'world'.length) + (4 + 'anyone'.length);
    expect(ok.readInt32BE(rootAt)).toBe(2);
    const aclAt = rootAt + 4 + (4 + 1) + 4; // tag, path "/", empty data
    expect(() => deserializeTree(patched(aclAt, 5))).toThrow(/node 1 \(\/\): refers to ACL list 5 of 1/);
  });

  it('refuses a child before its parent, and a node twice', () => {
    const t = new DataTree();
    t.apply({ sessionId: 0n, cxid: 0, zxid: 1n, timeMs: 1 }, { type: 'create', path: '/b', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 }, []);
    t.apply({ sessionId: 0n, cxid: 0, zxid: 2n, timeMs: 1 }, { type: 'create', path: '/b/c', data: null, acl: WORLD, ephemeralOwner: 0n, parentCVersion: 1, op: 1 }, []);
    const snap = serializeTree(t);
    expect(deserializeTree(renamedTo(snap, '/b', '/b')).get('/b/c')).toBeDefined();
    expect(() => deserializeTree(renamedTo(snap, '/b', '/x'))).toThrow(/node \d+ \(\/b\/c\): comes before its parent/);
    expect(() => deserializeTree(renamedTo(snap, '/b', '/'))).toThrow(/node \d+ \(\/\): appears twice/);
    expect(() => deserializeTree(renamedTo(snap, '/b', 'b'))).toThrow(/node \d+ \(b\): malformed path/);
  });

  it('still loads a format-1 snapshot (written before snapshots were fuzzy)', () => {
    const w = new World();
    for (let i = 0; i < 80; i++) w.step(i * 7, i * 13, i * 31);
    const back = deserializeTree(serializeV1(w.tree));
    expect(dump(back)).toEqual(dump(w.tree));
  });
});

/** The payload with the first record of path `from` renamed `to`. */
function renamedTo(buf: Buffer, from: string, to: string): Buffer {
  const at = buf.indexOf(Buffer.concat([Buffer.from([0, 0, 0, from.length]), Buffer.from(from)]));
  const b = Buffer.from(buf);
  b.writeInt32BE(to.length, at);
  Buffer.from(to).copy(b, at + 4);
  return Buffer.concat([b.subarray(0, at + 4 + to.length), b.subarray(at + 4 + from.length)]);
}

/** Format 1, as serializeTree wrote it before: kept here to check that old data dirs still load. */
function serializeV1(tree: DataTree): Buffer {
  const w = new JuteWriter(1 << 16);
  w.writeInt(1).writeLong(tree.lastZxid).writeInt(tree.sessions.size);
  for (const [id, s] of tree.sessions) w.writeLong(id).writeInt(s.timeoutMs).writeBuffer(s.passwd);
  const aclIndex = new Map<ACL[], number>();
  const paths = [...tree.walk()];
  for (const [, n] of paths) if (!aclIndex.has(n.acl)) aclIndex.set(n.acl, aclIndex.size);
  w.writeInt(aclIndex.size);
  for (const a of aclIndex.keys()) writeAclList(w, a);
  w.writeInt(paths.length);
  for (const [path, n] of paths) {
    w.writeString(path).writeBuffer(n.data).writeInt(aclIndex.get(n.acl)!)
      .writeLong(n.czxid).writeLong(n.mzxid).writeLong(n.pzxid).writeLong(BigInt(n.ctimeMs)).writeLong(BigInt(n.mtimeMs))
      .writeInt(n.version).writeInt(n.cversion).writeInt(n.aversion).writeLong(n.ephemeralOwner);
  }
  return w.toBuffer();
}
