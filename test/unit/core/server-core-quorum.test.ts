// The ZooKeeper layer of a quorum server, leader and learner, wired by hand:
// what the learner sends the leader is delivered, what the leader logs is
// "committed" at both (ZAB's job, tested on its own), in order.
import { describe, expect, it } from 'vitest';
import { ServerCore, type CoreOutput, type Outbound, type ServerRole } from '../../../src/core/zk/server-core.js';
import type { LoggedTxn } from '../../../src/core/zk/txn.js';
import { CreateMode, Err, EventType, OpCode } from '../../../src/proto/zk-constants.js';
import type { ZkRequest } from '../../../src/proto/zk-records.js';
import { sha1Base64 } from './harness.js';

const LEADER = 1;
const LEARNER = 2;

class Pair {
  now = 1_700_000_000_000;
  readonly cores = new Map<number, ServerCore>();
  readonly sent = new Map<number, Outbound[]>([[LEADER, []], [LEARNER, []]]);
  readonly closed = new Map<number, { connId: number; reason: string }[]>([[LEADER, []], [LEARNER, []]]);
  private uncommitted: LoggedTxn[] = [];
  private nextConn = 1;

  constructor() {
    for (const id of [LEADER, LEARNER]) {
      this.cores.set(id, new ServerCore({
        serverId: id, minSessionTimeoutMs: 4000, maxSessionTimeoutMs: 40000, skipAcl: false, superDigest: null,
        sha1Base64, containerCheckIntervalMs: 1000, ttlEnabled: true, watchesPerSessionMax: 1000, authIdsPerConnectionMax: 8,
      }, this.now));
    }
    this.setRoles('leader', 'learner');
  }

  core(id: number): ServerCore { return this.cores.get(id)!; }

  setRoles(leader: ServerRole, learner: ServerRole): void {
    this.core(LEADER).setRole(leader, this.now, 0x1_0000_0000n);
    this.core(LEARNER).setRole(learner, this.now);
    this.pump();
  }

  /** Delivers outputs until quiet: learner -> leader messages, leader -> learner answers. */
  pump(): void {
    for (let round = 0; round < 20; round++) {
      let moved = false;
      for (const [id, core] of this.cores) {
        const o: CoreOutput = core.drain();
        this.sent.get(id)!.push(...o.send);
        this.closed.get(id)!.push(...o.close);
        if (id === LEADER) this.uncommitted.push(...o.log);
        for (const m of o.toLeader) { this.core(LEADER).fromLearner(id, m, this.now); moved = true; }
        for (const m of o.toLearners) { this.core(m.serverId).fromLeader(m.msg, this.now); moved = true; }
      }
      if (!moved) return;
    }
  }

  /** ZAB committed everything the leader proposed: applied at both, in order. */
  commit(): void {
    const txns = this.uncommitted;
    this.uncommitted = [];
    for (const t of txns) for (const core of this.cores.values()) core.committedTxn(t);
    this.pump();
  }

  open(server: number, sessionId = 0n, passwd = Buffer.alloc(16)): number {
    const connId = this.nextConn++;
    this.core(server).connectionOpened(connId, '127.0.0.1');
    this.core(server).connect(connId, { protocolVersion: 0, lastZxidSeen: 0n, timeOut: 10000, sessionId, passwd, readOnly: false }, this.now, Buffer.alloc(16, connId));
    this.pump();
    return connId;
  }

  connectResp(server: number, connId: number) {
    const r = this.sent.get(server)!.find((s) => s.connId === connId && s.kind === 'connect');
    return r?.kind === 'connect' ? r.resp : undefined;
  }

  send(server: number, connId: number, xid: number, req: ZkRequest): void {
    this.core(server).request(connId, xid, req, this.now);
    this.pump();
  }

  replies(server: number, connId: number) {
    return this.sent.get(server)!.filter((s): s is Extract<Outbound, { kind: 'reply' }> => s.connId === connId && s.kind === 'reply');
  }
}

const create = (path: string, mode: number = CreateMode.PERSISTENT): ZkRequest =>
  ({ type: OpCode.create, path, data: Buffer.from('d'), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: mode });

describe('ServerCore in a quorum', () => {
  it('a learner forwards a new session and a write, and answers them once committed', () => {
    const q = new Pair();
    const conn = q.open(LEARNER);
    expect(q.connectResp(LEARNER, conn)).toBeUndefined(); // not before createSession commits
    q.commit();
    const session = q.connectResp(LEARNER, conn)!;
    expect(session.sessionId >> 56n).toBe(BigInt(LEARNER)); // the learner made the id
    q.send(LEARNER, conn, 1, create('/a', CreateMode.EPHEMERAL));
    q.send(LEARNER, conn, 2, { type: OpCode.exists, path: '/a', watch: false });
    expect(q.replies(LEARNER, conn)).toEqual([]); // the read waits behind the write
    q.commit();
    const r = q.replies(LEARNER, conn);
    expect(r.map((x) => [x.xid, x.err])).toEqual([[1, Err.OK], [2, Err.OK]]);
    expect(q.core(LEADER).tree.get('/a')?.ephemeralOwner).toBe(session.sessionId);
  });

  it('the leader refuses what its prep refuses, and the learner answers the error', () => {
    const q = new Pair();
    const conn = q.open(LEARNER);
    q.commit();
    q.send(LEARNER, conn, 1, create('/x/y'));
    q.commit();
    expect(q.replies(LEARNER, conn)[0].err).toBe(Err.NONODE);
  });

  it('a watch set on the learner fires there for a write made on the leader', () => {
    const q = new Pair();
    const a = q.open(LEARNER);
    const b = q.open(LEADER);
    q.commit();
    q.send(LEARNER, a, 1, { type: OpCode.exists, path: '/w', watch: true });
    q.send(LEADER, b, 1, create('/w'));
    q.commit();
    const ev = q.sent.get(LEARNER)!.filter((s) => s.connId === a && s.kind === 'event');
    expect(ev.map((e) => e.kind === 'event' && e.event.type)).toEqual([EventType.NodeCreated]);
  });

  it('sync on a learner is answered after every write proposed before it is applied there', () => {
    const q = new Pair();
    const a = q.open(LEARNER);
    const b = q.open(LEADER);
    q.commit();
    q.send(LEADER, b, 1, create('/s'));
    q.send(LEARNER, a, 1, { type: OpCode.sync, path: '/' });
    expect(q.replies(LEARNER, a)).toEqual([]);
    q.commit();
    expect(q.replies(LEARNER, a).map((r) => r.xid)).toEqual([1]);
    expect(q.core(LEARNER).tree.get('/s')).toBeDefined();
  });

  it('a session moves from the leader to the learner: revalidated there, and the old connection is closed', () => {
    const q = new Pair();
    const old = q.open(LEADER);
    q.commit();
    const { sessionId, passwd } = q.connectResp(LEADER, old)!;
    const moved = q.open(LEARNER, sessionId, passwd);
    expect(q.connectResp(LEARNER, moved)?.sessionId).toBe(sessionId);
    expect(q.closed.get(LEADER)!.map((c) => c.reason)).toContain('session moved to another server');
    const wrong = q.open(LEARNER, sessionId, Buffer.alloc(16, 9));
    expect(q.connectResp(LEARNER, wrong)?.sessionId).toBe(0n);
  });

  it('only the leader expires sessions, from the learner\'s touches; the learner closes the expired connection', () => {
    const q = new Pair();
    const a = q.open(LEARNER);
    q.commit();
    const { sessionId } = q.connectResp(LEARNER, a)!;
    for (let i = 0; i < 5; i++) {
      q.now += 3000;
      q.send(LEARNER, a, -2, { type: OpCode.ping });
      q.core(LEARNER).tick(q.now); // reports the touch
      q.core(LEADER).tick(q.now);
      q.pump();
    }
    q.commit();
    expect(q.core(LEADER).tree.sessions.has(sessionId)).toBe(true); // 15 s alive on a 10 s timeout
    q.now += 11_000;
    q.core(LEARNER).tick(q.now);
    q.core(LEADER).tick(q.now);
    q.pump();
    q.commit();
    expect(q.core(LEADER).tree.sessions.has(sessionId)).toBe(false);
    expect(q.closed.get(LEARNER)!.some((c) => c.connId === a && c.reason === 'session expired')).toBe(true);
  });

  it('a server that leaves its quorum closes every connection and accepts none', () => {
    const q = new Pair();
    const a = q.open(LEARNER);
    q.commit();
    q.setRoles('leader', 'down');
    expect(q.closed.get(LEARNER)!.map((c) => c.connId)).toContain(a);
    const b = q.open(LEARNER);
    expect(q.closed.get(LEARNER)!.find((c) => c.connId === b)?.reason).toMatch(/not serving/);
  });
});
