import { describe, expect, it } from 'vitest';
import { CoreHarness, sha1Base64 } from './harness.js';
import { Err, EventType, OpCode, Perm, CreateMode } from '../../../src/proto/zk-constants.js';
import { OPEN_ACL_UNSAFE } from '../../../src/core/zk/acl.js';
import type { ZkRequest } from '../../../src/proto/zk-records.js';

const create = (path: string, data: string | null = 'x', flags = 0, type: 1 | 15 = OpCode.create): ZkRequest =>
  ({ type, path, data: data === null ? null : Buffer.from(data), acl: OPEN_ACL_UNSAFE, flags });

describe('ServerCore: replies and ordering (TRAPS: the client port)', () => {
  it('answers a write only after commit, and reads queued behind it wait in order', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.send(connId, 1, create('/a', 'one'));
    h.send(connId, 2, { type: OpCode.getData, path: '/a', watch: false });
    expect(h.repliesTo(connId)).toHaveLength(0);
    h.commit();
    const r = h.repliesTo(connId);
    expect(r.map((x) => x.xid)).toEqual([1, 2]);
    expect(r[1].err).toBe(Err.OK);
    expect(r[1].body).toMatchObject({ type: 'data' });
  });

  it('a read behind a write sees that write but not a later one committed in the same batch', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.call(connId, create('/k', 'v0'));
    h.send(connId, 1, { type: OpCode.setData, path: '/k', data: Buffer.from('v1'), version: -1 });
    h.send(connId, 2, { type: OpCode.getData, path: '/k', watch: false });
    h.send(connId, 3, { type: OpCode.setData, path: '/k', data: Buffer.from('v2'), version: -1 });
    h.commit();
    const read = h.repliesTo(connId).find((x) => x.xid === 2)!;
    expect(read.body?.type === 'data' && read.body.data?.toString()).toBe('v1');
  });

  it('reads from another session do not see an uncommitted write', () => {
    const h = new CoreHarness();
    const a = h.session();
    const b = h.session();
    h.send(a.connId, 1, create('/u'));
    h.send(b.connId, 1, { type: OpCode.exists, path: '/u', watch: false });
    expect(h.repliesTo(b.connId).at(-1)!.err).toBe(Err.NONODE);
  });

  it('create answers the path only; create2 answers path and stat', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    expect(h.call(connId, create('/p')).body).toEqual({ type: 'path', path: '/p' });
    const r2 = h.call(connId, create('/q', 'abc', 0, OpCode.create2));
    expect(r2.body?.type).toBe('pathStat');
    if (r2.body?.type === 'pathStat') expect(r2.body.stat.dataLength).toBe(3);
  });

  it('a failed write still takes a zxid and keeps its place in line', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.call(connId, create('/d'));
    const before = h.core.proposedZxid;
    const r = h.call(connId, create('/d'));
    expect(r.err).toBe(Err.NODEEXISTS);
    expect(r.zxid).toBe(before + 1n);
    expect(h.logged.at(-1)!.txn).toEqual({ type: 'error', err: Err.NODEEXISTS });
  });

  it('validates against in-flight changes: two pipelined creates of one path, the second fails', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.send(connId, 1, create('/x'));
    h.send(connId, 2, create('/x'));
    h.send(connId, 3, { type: OpCode.delete, path: '/x', version: 0 });
    h.send(connId, 4, { type: OpCode.delete, path: '/x', version: -1 });
    h.commit();
    expect(h.repliesTo(connId).map((r) => r.err)).toEqual([Err.OK, Err.NODEEXISTS, Err.OK, Err.NONODE]);
  });

  it('null data is not empty data', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.call(connId, create('/n', null));
    h.call(connId, create('/e', ''));
    const n = h.call(connId, { type: OpCode.getData, path: '/n', watch: false });
    const e = h.call(connId, { type: OpCode.getData, path: '/e', watch: false });
    expect(n.body?.type === 'data' && n.body.data).toBeNull();
    expect(e.body?.type === 'data' && e.body.data?.length).toBe(0);
  });

  it('sequential suffix is the parent cversion, %010d', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.call(connId, create('/s'));
    h.call(connId, create('/s/other'));
    const r = h.call(connId, create('/s/n-', 'x', CreateMode.PERSISTENT_SEQUENTIAL));
    expect(r.body).toEqual({ type: 'path', path: '/s/n-0000000001' });
    h.call(connId, { type: OpCode.delete, path: '/s/other', version: -1 });
    // delete does not bump cversion (as ZooKeeper): next suffix is 2
    expect(h.call(connId, create('/s/n-', 'x', CreateMode.PERSISTENT_SEQUENTIAL)).body).toEqual({ type: 'path', path: '/s/n-0000000002' });
  });

  it('error codes as ZooKeeper: NONODE, BADVERSION, NOTEMPTY, NOCHILDRENFOREPHEMERALS, BADARGUMENTS', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    expect(h.call(connId, create('/a/b')).err).toBe(Err.NONODE);
    h.call(connId, create('/a'));
    expect(h.call(connId, { type: OpCode.setData, path: '/a', data: null, version: 7 }).err).toBe(Err.BADVERSION);
    h.call(connId, create('/a/b'));
    expect(h.call(connId, { type: OpCode.delete, path: '/a', version: -1 }).err).toBe(Err.NOTEMPTY);
    h.call(connId, create('/eph', 'x', CreateMode.EPHEMERAL));
    expect(h.call(connId, create('/eph/c')).err).toBe(Err.NOCHILDRENFOREPHEMERALS);
    expect(h.call(connId, create('/bad/')).err).toBe(Err.BADARGUMENTS);
    expect(h.call(connId, create('/a/./b')).err).toBe(Err.BADARGUMENTS);
  });

  it('stat fields: version, cversion, pzxid, numChildren, ephemeralOwner', () => {
    const h = new CoreHarness();
    const { connId, sessionId } = h.session();
    const c = h.call(connId, create('/st', 'a', 0, OpCode.create2));
    const czxid = c.zxid;
    h.call(connId, { type: OpCode.setData, path: '/st', data: Buffer.from('bb'), version: 0 });
    const kid = h.call(connId, create('/st/k', 'x', CreateMode.EPHEMERAL, OpCode.create2));
    const r = h.call(connId, { type: OpCode.exists, path: '/st', watch: false });
    expect(r.body?.type).toBe('stat');
    if (r.body?.type !== 'stat') return;
    expect(r.body.stat).toMatchObject({ czxid, version: 1, cversion: 1, numChildren: 1, dataLength: 2, pzxid: kid.zxid, ephemeralOwner: 0n });
    if (kid.body?.type === 'pathStat') expect(kid.body.stat.ephemeralOwner).toBe(sessionId);
  });
});

describe('ServerCore: multi', () => {
  it('all or nothing, with ZooKeeper per-op results on failure', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    h.call(connId, create('/m'));
    const r = h.call(connId, {
      type: OpCode.multi, ops: [
        { type: OpCode.create, path: '/m/1', data: null, acl: OPEN_ACL_UNSAFE, flags: 0 },
        { type: OpCode.check, path: '/m', version: 5 },
        { type: OpCode.delete, path: '/m', version: -1 },
      ],
    });
    expect(r.err).toBe(Err.OK);
    expect(r.body).toEqual({ type: 'multi', results: [
      { type: OpCode.error, err: Err.OK }, { type: OpCode.error, err: Err.BADVERSION }, { type: OpCode.error, err: Err.RUNTIMEINCONSISTENCY },
    ] });
    expect(h.call(connId, { type: OpCode.exists, path: '/m/1', watch: false }).err).toBe(Err.NONODE);
    // The failed multi's in-flight changes were rolled back: /m/1 can be created now.
    expect(h.call(connId, create('/m/1')).err).toBe(Err.OK);
  });

  it('later ops see earlier ops of the same multi', () => {
    const h = new CoreHarness();
    const { connId } = h.session();
    const r = h.call(connId, {
      type: OpCode.multi, ops: [
        { type: OpCode.create, path: '/t', data: null, acl: OPEN_ACL_UNSAFE, flags: 0 },
        { type: OpCode.create2, path: '/t/c', data: Buffer.from('z'), acl: OPEN_ACL_UNSAFE, flags: 0 },
        { type: OpCode.setData, path: '/t', data: Buffer.from('y'), version: 0 },
        { type: OpCode.check, path: '/t', version: 1 },
      ],
    });
    expect(r.body?.type === 'multi' && r.body.results.map((x) => x.type)).toEqual([OpCode.create, OpCode.create2, OpCode.setData, OpCode.check]);
  });
});

describe('ServerCore: watches', () => {
  it('exists on a missing node arms a watch; the event precedes the reply that reveals the change', () => {
    const h = new CoreHarness();
    const a = h.session();
    const b = h.session();
    expect(h.call(a.connId, { type: OpCode.exists, path: '/w', watch: true }).err).toBe(Err.NONODE);
    h.send(b.connId, 5, create('/w'));
    h.commit();
    const evIdx = h.sent.findIndex((s) => s.connId === a.connId && s.kind === 'event');
    expect(evIdx).toBeGreaterThan(-1);
    const ev = h.sent[evIdx];
    expect(ev.kind === 'event' && ev.event).toMatchObject({ type: EventType.NodeCreated, path: '/w' });
    // one-shot: a second change does not fire again
    h.call(b.connId, { type: OpCode.setData, path: '/w', data: null, version: -1 });
    expect(h.eventsTo(a.connId)).toHaveLength(1);
  });

  it('child watch fires NodeChildrenChanged; delete fires NodeDeleted once to a data+child watcher', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.call(a.connId, create('/p'));
    h.call(a.connId, { type: OpCode.getChildren, path: '/p', watch: true });
    h.call(a.connId, { type: OpCode.getData, path: '/p', watch: true });
    h.call(a.connId, create('/p/c'));
    expect(h.eventsTo(a.connId).map((e) => e.event.type)).toEqual([EventType.NodeChildrenChanged]);
    h.call(a.connId, { type: OpCode.getChildren, path: '/p', watch: true });
    h.call(a.connId, { type: OpCode.delete, path: '/p/c', version: -1 });
    h.call(a.connId, { type: OpCode.getChildren, path: '/p', watch: true });
    h.call(a.connId, { type: OpCode.delete, path: '/p', version: -1 });
    const types = h.eventsTo(a.connId).map((e) => `${e.event.type}:${e.event.path}`);
    expect(types).toEqual([`${EventType.NodeChildrenChanged}:/p`, `${EventType.NodeChildrenChanged}:/p`, `${EventType.NodeDeleted}:/p`]);
  });

  it('persistent recursive watch sees descendants, not child-list changes, and stays', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.call(a.connId, { type: OpCode.addWatch, path: '/r', mode: 1 });
    h.call(a.connId, create('/r'));
    h.call(a.connId, create('/r/x'));
    h.call(a.connId, { type: OpCode.setData, path: '/r/x', data: null, version: -1 });
    expect(h.eventsTo(a.connId).map((e) => `${e.event.type}:${e.event.path}`)).toEqual([
      `${EventType.NodeCreated}:/r`, `${EventType.NodeCreated}:/r/x`, `${EventType.NodeDataChanged}:/r/x`,
    ]);
  });

  it('setWatches re-arms, and fires at once for changes since relativeZxid', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.call(a.connId, create('/sw', 'v'));
    const rel = h.core.lastZxid;
    h.call(a.connId, { type: OpCode.setData, path: '/sw', data: null, version: -1 });
    h.call(a.connId, {
      type: OpCode.setWatches, relativeZxid: rel, dataWatches: ['/sw'], existWatches: ['/later'], childWatches: [],
      persistentWatches: [], persistentRecursiveWatches: [],
    }, -8);
    expect(h.eventsTo(a.connId).map((e) => e.event.type)).toEqual([EventType.NodeDataChanged]);
    h.call(a.connId, create('/later'));
    expect(h.eventsTo(a.connId).map((e) => e.event.type)).toEqual([EventType.NodeDataChanged, EventType.NodeCreated]);
  });
});

describe('ServerCore: sessions', () => {
  it('gives sessions back the time the driver was held up, and no more', () => {
    const h = new CoreHarness();
    const a = h.session(4000);
    h.call(a.connId, create('/e', 'x', CreateMode.EPHEMERAL));
    h.core.serverStalled(6000);
    h.tick(9000); // 9 s after the last ping, 6 s of them held up: 3 s heard-from time left to run out
    h.commit();
    expect(h.core.tree.get('/e')).toBeDefined();
    h.tick(1500);
    h.commit();
    expect(h.core.tree.get('/e')).toBeUndefined();
  });

  it('expiry deletes ephemerals and fires their watches', () => {
    const h = new CoreHarness();
    const a = h.session(4000);
    const b = h.session(40000);
    h.call(a.connId, create('/e', 'x', CreateMode.EPHEMERAL));
    h.call(b.connId, { type: OpCode.exists, path: '/e', watch: true });
    h.tick(3000);
    h.send(b.connId, -2, { type: OpCode.ping });
    h.tick(1500);
    h.commit();
    expect(h.eventsTo(b.connId).map((e) => e.event.type)).toEqual([EventType.NodeDeleted]);
    expect(h.closed.some((c) => c.connId === a.connId)).toBe(true);
    expect(h.core.tree.get('/e')).toBeUndefined();
  });

  it('re-attach with the right password keeps the session; a wrong one is refused like an expired session', () => {
    const h = new CoreHarness();
    const a = h.session();
    const c2 = h.reattach(a.sessionId, a.passwd);
    const ok = h.sent.find((s) => s.connId === c2 && s.kind === 'connect');
    expect(ok?.kind === 'connect' && ok.resp.sessionId).toBe(a.sessionId);
    expect(h.closed.some((c) => c.connId === a.connId)).toBe(true);
    const c3 = h.reattach(a.sessionId, Buffer.alloc(16, 9));
    const bad = h.sent.find((s) => s.connId === c3 && s.kind === 'connect');
    expect(bad?.kind === 'connect' && bad.resp.timeOut).toBe(0);
    expect(h.closed.some((c) => c.connId === c3)).toBe(true);
  });

  it('refuses a client that has seen a later zxid than ours', () => {
    const h = new CoreHarness();
    const a = h.session();
    const c = h.reattach(a.sessionId, a.passwd, h.core.lastZxid + 10n);
    expect(h.closed.some((x) => x.connId === c)).toBe(true);
  });

  it('an ephemeral create from a closing session is refused (ZOOKEEPER-1208)', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.send(a.connId, 1, { type: OpCode.closeSession });
    h.send(a.connId, 2, create('/late', 'x', CreateMode.EPHEMERAL));
    h.commit();
    expect(h.repliesTo(a.connId).map((r) => r.err)).toEqual([Err.OK, Err.SESSIONEXPIRED]);
    expect(h.core.tree.get('/late')).toBeUndefined();
  });

  it('session ids carry the server id in the top byte and stay exact as 64-bit values', () => {
    const h = new CoreHarness({ serverId: 200 });
    const a = h.session();
    expect(BigInt.asUintN(64, a.sessionId) >> 56n).toBe(200n);
  });

  it('negotiates the timeout into [min, max]', () => {
    const h = new CoreHarness();
    const s = h.session(100);
    const r = h.sent.find((x) => x.connId === s.connId && x.kind === 'connect');
    expect(r?.kind === 'connect' && r.resp.timeOut).toBe(4000);
  });
});

describe('ServerCore: ACLs', () => {
  const digestAcl = (user: string, pw: string, perms: number = Perm.ALL) =>
    [{ perms, id: { scheme: 'digest', id: `${user}:${sha1Base64(`${user}:${pw}`)}` } }];

  it('digest auth grants access; others get NOAUTH; getACL hides the hash without ADMIN', () => {
    const h = new CoreHarness();
    const a = h.session();
    const b = h.session();
    h.send(a.connId, -4, { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('alice:secret') });
    const acl = [...digestAcl('alice', 'secret'), { perms: Perm.READ, id: { scheme: 'world', id: 'anyone' } }];
    expect(h.call(a.connId, { type: OpCode.create, path: '/sec', data: null, acl, flags: 0 }).err).toBe(Err.OK);
    expect(h.call(b.connId, { type: OpCode.setData, path: '/sec', data: null, version: -1 }).err).toBe(Err.NOAUTH);
    const seen = h.call(b.connId, { type: OpCode.getACL, path: '/sec' });
    expect(seen.body?.type === 'acl' && seen.body.acl[0].id.id).toBe('alice:x');
    const owner = h.call(a.connId, { type: OpCode.getACL, path: '/sec' });
    expect(owner.body?.type === 'acl' && owner.body.acl[0].id.id).toBe(acl[0].id.id);
  });

  it('the auth scheme expands to the caller identities, and is invalid without any', () => {
    const h = new CoreHarness();
    const a = h.session();
    const authAcl = [{ perms: Perm.ALL, id: { scheme: 'auth', id: '' } }];
    expect(h.call(a.connId, { type: OpCode.create, path: '/x', data: null, acl: authAcl, flags: 0 }).err).toBe(Err.INVALIDACL);
    h.send(a.connId, -4, { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('bob:pw') });
    expect(h.call(a.connId, { type: OpCode.create, path: '/x', data: null, acl: authAcl, flags: 0 }).err).toBe(Err.OK);
    expect(h.core.tree.get('/x')!.acl).toEqual(digestAcl('bob', 'pw'));
  });

  it('super digest passes every check; skipACL turns checks off', () => {
    const superDigest = `super:${sha1Base64('super:adm')}`;
    const h = new CoreHarness({ superDigest });
    const a = h.session();
    const b = h.session();
    h.call(a.connId, { type: OpCode.create, path: '/locked', data: null, acl: digestAcl('x', 'y'), flags: 0 });
    expect(h.call(b.connId, { type: OpCode.getData, path: '/locked', watch: false }).err).toBe(Err.NOAUTH);
    h.send(b.connId, -4, { type: OpCode.auth, authType: 0, scheme: 'digest', auth: Buffer.from('super:adm') });
    expect(h.call(b.connId, { type: OpCode.getData, path: '/locked', watch: false }).err).toBe(Err.OK);
    const s = new CoreHarness({ skipAcl: true });
    const c = s.session();
    s.call(c.connId, { type: OpCode.create, path: '/locked', data: null, acl: digestAcl('x', 'y'), flags: 0 });
    expect(s.call(c.connId, { type: OpCode.delete, path: '/locked', version: -1 }).err).toBe(Err.OK);
  });

  it('ip ACLs match the connection address', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.call(a.connId, { type: OpCode.create, path: '/ip', data: null, acl: [{ perms: Perm.ALL, id: { scheme: 'ip', id: '127.0.0.0/8' } }], flags: 0 });
    expect(h.call(a.connId, { type: OpCode.getData, path: '/ip', watch: false }).err).toBe(Err.OK);
    h.call(a.connId, { type: OpCode.create, path: '/ip2', data: null, acl: [{ perms: Perm.ALL, id: { scheme: 'ip', id: '10.0.0.1' } }], flags: 0 });
    expect(h.call(a.connId, { type: OpCode.getData, path: '/ip2', watch: false }).err).toBe(Err.NOAUTH);
  });
});

describe('ServerCore: containers and TTL nodes', () => {
  it('an emptied container is deleted by the server; a TTL node after its TTL', () => {
    const h = new CoreHarness();
    const a = h.session();
    h.call(a.connId, { type: OpCode.createContainer, path: '/c', data: null, acl: OPEN_ACL_UNSAFE, flags: CreateMode.CONTAINER });
    h.call(a.connId, create('/c/k'));
    h.call(a.connId, { type: OpCode.createTTL, path: '/ttl', data: null, acl: OPEN_ACL_UNSAFE, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 500n });
    h.tick(1100);
    h.commit();
    expect(h.core.tree.get('/c')).toBeDefined();
    expect(h.core.tree.get('/ttl')).toBeUndefined();
    h.call(a.connId, { type: OpCode.delete, path: '/c/k', version: -1 });
    h.tick(1100);
    h.commit();
    expect(h.core.tree.get('/c')).toBeUndefined();
  });

  it('TTL out of range is BADARGUMENTS', () => {
    const h = new CoreHarness();
    const a = h.session();
    expect(h.call(a.connId, { type: OpCode.createTTL, path: '/t', data: null, acl: OPEN_ACL_UNSAFE, flags: CreateMode.PERSISTENT_WITH_TTL, ttl: 0n }).err).toBe(Err.BADARGUMENTS);
  });
});

describe('ServerCore: 64-bit zxids (TRAPS: numbers)', () => {
  it('keeps counting exactly across the 32-bit counter boundary', async () => {
    const { DataTree } = await import('../../../src/core/zk/data-tree.js');
    const tree = new DataTree();
    tree.lastZxid = 0xffff_fffen;
    const h = new CoreHarness({}, tree);
    const { connId } = h.session();
    const zxids: bigint[] = [];
    for (let i = 0; i < 3; i++) zxids.push(h.call(connId, create(`/z${i}`)).zxid);
    expect(zxids).toEqual([0x1_0000_0000n, 0x1_0000_0001n, 0x1_0000_0002n]);
    const st = h.call(connId, { type: OpCode.exists, path: '/z2', watch: false });
    expect(st.body?.type === 'stat' && st.body.stat.czxid).toBe(0x1_0000_0002n);
  });
});

describe('ServerCore: sync', () => {
  it('a sync waits for writes of other sessions proposed before it, then answers', () => {
    const h = new CoreHarness();
    const a = h.session();
    const b = h.session();
    h.send(a.connId, 1, create('/synced'));
    h.send(b.connId, 7, { type: OpCode.sync, path: '/synced' });
    expect(h.repliesTo(b.connId).filter((r) => r.xid === 7)).toHaveLength(0);
    h.commit();
    const r = h.repliesTo(b.connId).find((x) => x.xid === 7);
    expect(r?.body).toEqual({ type: 'path', path: '/synced' });
    // A sync with nothing in flight answers at once.
    h.send(b.connId, 8, { type: OpCode.sync, path: '/' });
    expect(h.repliesTo(b.connId).some((x) => x.xid === 8)).toBe(true);
  });
});
