// The ZooKeeper server as a pure state machine. Drivers hand it inputs
// (a connection opened or closed, a decoded request, a tick, "transactions
// up to zxid are durable") with the current time; it returns what to do
// (transactions to persist, replies and watch events to send, connections to
// close). It never touches a socket, a file or a clock.
//
// Writes become transactions at once (validated against in-flight changes)
// and are answered only once committed: in standalone mode once fsynced; in a
// quorum later, once a majority has them. Replies on one connection leave in
// request order: reads queued behind a write of the same connection wait and
// are executed only when they reach the head of the queue.
import { Err, KeeperState, OpCode, Xid, CONTAINER_EPHEMERAL_OWNER, ttlOfEphemeralOwner } from '../../proto/zk-constants.js';
import type { ConnectRequest, ConnectResponse, Id, WatcherEvent, ZkRequest, ZkResponse } from '../../proto/zk-records.js';
import { SUPER_ID } from './acl.js';
import { type ApplyResult, DataTree } from './data-tree.js';
import { handleRead } from './read-handler.js';
import { RequestPrep } from './request-prep.js';
import { SessionTracker } from './session-tracker.js';
import type { LoggedTxn, Txn, TxnHeader } from './txn.js';
import type { WatchFire } from './watches.js';
import type { FromLeader, ToLeader } from './quorum-messages.js';
import { invariantFailed } from '../invariant.js';

/**
 * standalone: decides and logs everything itself. leader: decides every write (its own clients'
 * and those its learners forward), which the driver proposes through ZAB. learner: forwards writes
 * and session business to the leader, applies what ZAB commits. down: in no quorum (looking):
 * serves nothing, holds no connection.
 */
export type ServerRole = 'standalone' | 'leader' | 'learner' | 'down';

export interface ServerCoreOptions {
  serverId: number;
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  skipAcl: boolean;
  /** "super:<base64 sha1>" or null. */
  superDigest: string | null;
  /** base64(sha1(text)): handed in so the core needs no crypto module. */
  sha1Base64: (text: string) => string;
  containerCheckIntervalMs: number;
  ttlEnabled: boolean;
  watchesPerSessionMax: number;
  authIdsPerConnectionMax: number;
  /** reconfigEnabled: the leader accepts reconfig requests. */
  reconfigEnabled?: boolean;
  /** On the leader: the servers connected and in sync with it, itself included (for reconfig's quorum check). */
  syncedServers?: () => ReadonlySet<number>;
}

export type Outbound =
  | { connId: number; kind: 'connect'; resp: ConnectResponse }
  | { connId: number; kind: 'reply'; xid: number; zxid: bigint; err: number; opType: number; body?: ZkResponse }
  | { connId: number; kind: 'event'; event: WatcherEvent };

export interface CoreOutput {
  /** Transactions to make durable, in zxid order; then call committed(). */
  log: LoggedTxn[];
  send: Outbound[];
  close: { connId: number; reason: string }[];
  /** Learner: to the leader's ZooKeeper layer. */
  toLeader: ToLeader[];
  /** Leader: answers to learners. */
  toLearners: { serverId: number; msg: FromLeader }[];
}

/** A zxid not known yet: a learner learns it when the leader's transaction commits. */
const UNKNOWN_ZXID = -1n;

type QueueEntry =
  | { kind: 'write'; xid: number; opType: number; zxid: bigint; done: ApplyResult | null }
  | { kind: 'read'; xid: number; req: ZkRequest }
  | { kind: 'barrier'; xid: number; opType: number; zxid: bigint; body: ZkResponse }
  | { kind: 'connect'; zxid: bigint; resp: ConnectResponse };

interface Conn {
  id: number;
  ip: string;
  sessionId: bigint | null;
  ids: Id[];
  queue: QueueEntry[];
  closing: boolean;
}

interface PendingTxn extends LoggedTxn { connId: number | null }

export class ServerCore {
  readonly tree: DataTree;
  readonly sessions: SessionTracker;
  private readonly prep: RequestPrep;
  private readonly conns = new Map<number, Conn>();
  private readonly pendingTxns: PendingTxn[] = [];
  private lastProposedZxid = 0n;
  private nextContainerCheckMs = 0;
  private readonly containerDeletes = new Set<string>();
  /** Connections with a sync (barrier) still queued. */
  private readonly syncWaiters = new Set<Conn>();
  private out: CoreOutput = { log: [], send: [], close: [], toLeader: [], toLearners: [] };
  private role: ServerRole = 'standalone';
  /** Learner: sessions that sent something since the last touch to the leader. */
  private readonly touched = new Set<bigint>();
  /** Learner: re-attaching connections waiting for the leader's revalidation, by session. */
  private readonly revalidating = new Map<bigint, number>();
  /** Counters for the four-letter words. */
  readonly stats = { packetsReceived: 0, packetsSent: 0, requestsProcessed: 0, sessionsExpired: 0, authFailed: 0 };

  constructor(private readonly opts: ServerCoreOptions, nowMs: number, tree: DataTree = new DataTree()) {
    this.tree = tree;
    this.sessions = new SessionTracker(opts.serverId, nowMs);
    this.prep = new RequestPrep(this.tree, { skipAcl: opts.skipAcl, ttlEnabled: opts.ttlEnabled });
    this.nextContainerCheckMs = nowMs + opts.containerCheckIntervalMs;
  }

  /** Take the outputs accumulated since the last call. */
  drain(): CoreOutput {
    const o = this.out;
    this.out = { log: [], send: [], close: [], toLeader: [], toLearners: [] };
    return o;
  }

  get lastZxid(): bigint { return this.tree.lastZxid; }
  get serverRole(): ServerRole { return this.role; }
  get proposedZxid(): bigint { return this.lastProposedZxid; }
  get outstanding(): number { return this.pendingTxns.length; }
  get connectionCount(): number { return this.conns.size; }
  queueLength(connId: number): number { return this.conns.get(connId)?.queue.length ?? 0; }
  connSession(connId: number): bigint | null { return this.conns.get(connId)?.sessionId ?? null; }

  // ---- recovery ----

  /** Apply a transaction read back from disk (or sent by a leader) without replies. */
  replay(t: LoggedTxn): void {
    if (t.hdr.zxid <= this.tree.lastZxid) return;
    this.tree.apply(t.hdr, t.txn, []);
    if (t.txn.type === 'closeSession') this.sessions.remove(t.hdr.sessionId);
    if (t.hdr.zxid > this.lastProposedZxid) this.lastProposedZxid = t.hdr.zxid;
  }

  /** After loading a snapshot and replaying the log: track every session with a fresh deadline. */
  /** Returns the number of snapshot ephemeral marks the replay left (0 unless the log missed transactions). */
  recovered(nowMs: number): { staleEphemeralMarks: number } {
    this.lastProposedZxid = this.tree.lastZxid;
    const staleEphemeralMarks = this.tree.clearGoneEphemerals();
    for (const [id, s] of this.tree.sessions) {
      if (!this.sessions.get(id)) this.sessions.add(id, s.timeoutMs, nowMs);
    }
    this.sessions.restartDeadlines(nowMs);
    return { staleEphemeralMarks };
  }

  // ---- connections ----

  /**
   * A client connected from `ip`; `x509` is the subject of the client certificate the TLS port
   * verified (ZooKeeper's X509AuthenticationProvider identity), or null. Identities come only
   * from what the driver verified, never from the wire.
   */
  connectionOpened(connId: number, ip: string, x509: string | null = null): void {
    const ids: Id[] = [{ scheme: 'ip', id: ip }];
    if (x509 !== null && x509 !== '') ids.push({ scheme: 'x509', id: x509 });
    this.conns.set(connId, { id: connId, ip, sessionId: null, ids, queue: [], closing: false });
  }

  connectionClosed(connId: number): void {
    const c = this.conns.get(connId);
    if (!c) return;
    this.conns.delete(connId);
    this.tree.watches.removeWatcher(connId);
    if (c.sessionId !== null) {
      const s = this.sessions.get(c.sessionId);
      if (s && s.connId === connId) s.connId = null;
    }
  }

  private closeConn(c: Conn, reason: string): void {
    if (c.closing) return;
    c.closing = true;
    this.out.close.push({ connId: c.id, reason });
  }

  private nextZxid(): bigint {
    this.lastProposedZxid += 1n;
    return this.lastProposedZxid;
  }

  private propose(hdr: TxnHeader, txn: Txn, connId: number | null): void {
    const t: PendingTxn = { hdr, txn, connId };
    this.pendingTxns.push(t);
    this.out.log.push({ hdr, txn });
  }

  connect(connId: number, req: ConnectRequest, nowMs: number, newPasswd: Buffer): void {
    const c = this.conns.get(connId);
    if (!c || c.sessionId !== null) return;
    this.stats.packetsReceived++;
    if (this.role === 'down') {
      this.closeConn(c, 'this server is not serving: it is not part of a quorum with a leader');
      return;
    }
    if (req.lastZxidSeen > this.tree.lastZxid) {
      this.closeConn(c, `client has seen zxid 0x${req.lastZxidSeen.toString(16)}, ours is 0x${this.tree.lastZxid.toString(16)}`);
      return;
    }
    const timeoutMs = Math.min(this.opts.maxSessionTimeoutMs, Math.max(this.opts.minSessionTimeoutMs, req.timeOut));
    if (req.sessionId === 0n) {
      const id = this.sessions.newSessionId();
      const s = this.sessions.add(id, timeoutMs, nowMs, this.opts.serverId);
      s.connId = connId;
      c.sessionId = id;
      if (this.role === 'learner') {
        this.out.toLeader.push({ kind: 'createSession', sessionId: id, timeoutMs, passwd: newPasswd });
        c.queue.push({ kind: 'connect', zxid: UNKNOWN_ZXID, resp: { protocolVersion: 0, timeOut: timeoutMs, sessionId: id, passwd: newPasswd, readOnly: false } });
        return;
      }
      const zxid = this.nextZxid();
      this.propose({ sessionId: id, cxid: 0, zxid, timeMs: nowMs }, { type: 'createSession', timeoutMs, passwd: newPasswd }, connId);
      c.queue.push({ kind: 'connect', zxid, resp: { protocolVersion: 0, timeOut: timeoutMs, sessionId: id, passwd: newPasswd, readOnly: false } });
      return;
    }
    if (this.role === 'learner') {
      // The password is checked here (every server has the session); whether it is still alive
      // and may move to us, only the leader knows.
      const rec = this.tree.sessions.get(req.sessionId);
      if (!rec || !rec.passwd.equals(req.passwd)) {
        this.refuseSession(c, rec ? 'wrong session password' : 'session expired or unknown');
        return;
      }
      const waiting = this.revalidating.get(req.sessionId);
      if (waiting !== undefined && waiting !== connId) { const old = this.conns.get(waiting); if (old) this.closeConn(old, 'session re-attached on another connection'); }
      this.revalidating.set(req.sessionId, connId);
      this.out.toLeader.push({ kind: 'revalidate', sessionId: req.sessionId, timeoutMs });
      return;
    }
    const s = this.sessions.get(req.sessionId);
    const rec = this.tree.sessions.get(req.sessionId);
    if (!s || s.closing || !rec || !rec.passwd.equals(req.passwd)) {
      this.refuseSession(c, s && rec && !s.closing ? 'wrong session password' : 'session expired or unknown');
      return;
    }
    if (s.connId !== null && s.connId !== connId) {
      const old = this.conns.get(s.connId);
      if (old) this.closeConn(old, 'session re-attached on another connection');
    }
    s.connId = connId;
    s.owner = this.opts.serverId;
    s.timeoutMs = timeoutMs;
    this.sessions.touch(s.id, nowMs);
    c.sessionId = s.id;
    this.out.send.push({ connId, kind: 'connect', resp: { protocolVersion: 0, timeOut: timeoutMs, sessionId: s.id, passwd: rec.passwd, readOnly: false } });
  }

  /** Answers a connect with ZooKeeper's "expired" (a zero session) and closes the connection. */
  private refuseSession(c: Conn, reason: string): void {
    this.out.send.push({ connId: c.id, kind: 'connect', resp: { protocolVersion: 0, timeOut: 0, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false } });
    this.closeConn(c, reason);
  }

  // ---- requests ----

  request(connId: number, xid: number, req: ZkRequest, nowMs: number): void {
    const c = this.conns.get(connId);
    if (!c || c.closing) return;
    this.stats.packetsReceived++;
    if (c.sessionId === null) {
      this.closeConn(c, 'request before connect');
      return;
    }
    const sessionId = c.sessionId;
    const session = this.sessions.get(sessionId);
    if (session) this.sessions.touch(sessionId, nowMs);
    if (this.role === 'learner') {
      this.touched.add(sessionId);
      if (this.forwardRequest(c, sessionId, xid, req)) return;
    }
    switch (req.type) {
      case OpCode.ping:
        this.reply(c, Xid.ping, this.tree.lastZxid, Err.OK, OpCode.ping);
        return;
      case OpCode.auth:
        this.addAuth(c, req);
        return;
      case OpCode.sync:
        c.queue.push({ kind: 'barrier', xid, opType: req.type, zxid: this.lastProposedZxid, body: { type: 'path', path: req.path } });
        this.syncWaiters.add(c);
        this.flush(c);
        return;
      case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      case OpCode.delete: case OpCode.setData: case OpCode.setACL: case OpCode.check: case OpCode.multi:
      case OpCode.closeSession: {
        const zxid = this.nextZxid();
        const hdr: TxnHeader = { sessionId, cxid: xid, zxid, timeMs: nowMs };
        let txn: Txn;
        if (!session || session.closing) {
          txn = { type: 'error', err: Err.SESSIONEXPIRED };
        } else if (req.type === OpCode.closeSession) {
          session.closing = true;
          txn = { type: 'closeSession' };
        } else {
          txn = this.prep.prepare({ sessionId, ids: c.ids }, req, zxid);
        }
        this.propose(hdr, txn, connId);
        c.queue.push({ kind: 'write', xid, opType: req.type, zxid, done: null });
        return;
      }
      case OpCode.reconfig: {
        if (this.role !== 'leader') {
          // Standalone: answered as ZooKeeper's standalone server does (read-handler).
          c.queue.push({ kind: 'read', xid, req });
          this.flush(c);
          return;
        }
        const zxid = this.nextZxid();
        this.propose({ sessionId, cxid: xid, zxid, timeMs: nowMs }, this.prepareReconfig(c.ids, req, zxid), connId);
        c.queue.push({ kind: 'write', xid, opType: req.type, zxid, done: null });
        return;
      }
      default:
        c.queue.push({ kind: 'read', xid, req });
        this.flush(c);
    }
  }

  /** Learner: writes, closeSession and sync go to the leader; true if `req` was one of them. */
  private forwardRequest(c: Conn, sessionId: bigint, xid: number, req: ZkRequest): boolean {
    switch (req.type) {
      case OpCode.sync:
        this.out.toLeader.push({ kind: 'sync', sessionId, cxid: xid });
        c.queue.push({ kind: 'barrier', xid, opType: req.type, zxid: UNKNOWN_ZXID, body: { type: 'path', path: req.path } });
        return true;
      case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      case OpCode.delete: case OpCode.setData: case OpCode.setACL: case OpCode.check: case OpCode.multi:
      case OpCode.closeSession: case OpCode.reconfig:
        this.out.toLeader.push({ kind: 'request', sessionId, cxid: xid, req, ids: c.ids });
        c.queue.push({ kind: 'write', xid, opType: req.type, zxid: UNKNOWN_ZXID, done: null });
        return true;
      default:
        return false;
    }
  }

  private addAuth(c: Conn, req: Extract<ZkRequest, { type: typeof OpCode.auth }>): void {
    if (req.scheme !== 'digest') {
      this.stats.authFailed++;
      this.reply(c, Xid.auth, this.tree.lastZxid, Err.AUTHFAILED, OpCode.auth);
      this.event(c, { type: -1, state: KeeperState.AuthFailed, path: '' });
      this.closeConn(c, `addauth with unsupported scheme "${req.scheme}"`);
      return;
    }
    const text = req.auth.toString('utf8');
    const colon = text.indexOf(':');
    const user = colon < 0 ? text : text.slice(0, colon);
    const id = `${user}:${this.opts.sha1Base64(text)}`;
    if (c.ids.length < this.opts.authIdsPerConnectionMax && !c.ids.some((i) => i.scheme === 'digest' && i.id === id)) {
      c.ids.push({ scheme: 'digest', id });
      if (this.opts.superDigest !== null && id === this.opts.superDigest && !c.ids.some((i) => i.scheme === 'super')) c.ids.push(SUPER_ID);
    }
    this.reply(c, Xid.auth, this.tree.lastZxid, Err.OK, OpCode.auth);
  }

  private reply(c: Conn, xid: number, zxid: bigint, err: number, opType: number, body?: ZkResponse): void {
    this.stats.packetsSent++;
    this.out.send.push({ connId: c.id, kind: 'reply', xid, zxid, err, opType, body });
  }

  private event(c: Conn, event: WatcherEvent): void {
    this.stats.packetsSent++;
    this.out.send.push({ connId: c.id, kind: 'event', event });
  }

  /** Answer whatever is ready at the head of a connection's queue, in order. */
  private flush(c: Conn): void {
    const q = c.queue;
    let i = 0;
    for (; i < q.length; i++) {
      const e = q[i];
      if (e.kind === 'write') {
        if (e.done === null) break;
        this.stats.requestsProcessed++;
        const body = e.done.err !== Err.OK ? undefined
          : e.opType === OpCode.reconfig ? { type: 'config' as const, data: this.tree.get('/zookeeper/config')?.data ?? Buffer.alloc(0), stat: e.done.stat! }
            : writeBody(e.opType, e.done);
        this.reply(c, e.xid, e.zxid, e.done.err, e.opType, body);
        if (e.opType === OpCode.closeSession) this.closeConn(c, 'session closed by client');
      } else if (e.kind === 'connect') {
        if (e.zxid === UNKNOWN_ZXID || e.zxid > this.tree.lastZxid) break;
        this.out.send.push({ connId: c.id, kind: 'connect', resp: e.resp });
      } else if (e.kind === 'barrier') {
        if (e.zxid === UNKNOWN_ZXID || e.zxid > this.tree.lastZxid) break;
        this.stats.requestsProcessed++;
        this.reply(c, e.xid, this.tree.lastZxid, Err.OK, e.opType, e.body);
      } else {
        this.stats.requestsProcessed++;
        this.executeRead(c, e.xid, e.req);
      }
    }
    if (i > 0) q.splice(0, i);
  }

  private executeRead(c: Conn, xid: number, req: ZkRequest): void {
    const events: WatcherEvent[] = [];
    const r = handleRead(this.tree, {
      connId: c.id, sessionId: c.sessionId ?? 0n, ids: c.ids, skipAcl: this.opts.skipAcl, events,
      watchesMax: this.opts.watchesPerSessionMax,
    }, req);
    for (const ev of events) this.event(c, ev);
    this.reply(c, xid, this.tree.lastZxid, r.err, req.type, r.body);
  }

  // ---- commit ----

  /** Transactions up to zxid are durable (standalone) or committed (quorum): apply and answer them. */
  committed(zxid: bigint): void {
    let n = 0;
    const fires: WatchFire[] = [];
    while (n < this.pendingTxns.length && this.pendingTxns[n].hdr.zxid <= zxid) {
      const t = this.pendingTxns[n++];
      // Transactions apply once each, in zxid order: a zxid at or below the tree's was handed out twice.
      if (t.hdr.zxid <= this.tree.lastZxid) invariantFailed('zk.apply-in-zxid-order', { zxid: t.hdr.zxid, treeZxid: this.tree.lastZxid, type: t.txn.type, sessionId: t.hdr.sessionId });
      fires.length = 0;
      const res = this.tree.apply(t.hdr, t.txn, fires);
      this.prep.applied(t.hdr.zxid);
      this.afterApply(t, fires);
      const c = t.connId === null ? undefined : this.conns.get(t.connId);
      if (c) {
        const e = pendingEntry(c.queue, t.hdr.zxid);
        if (e && e.kind === 'write') e.done = res;
        // Answer at once, so a later transaction's events cannot overtake this reply.
        this.flush(c);
      }
      // A sync due at this zxid is answered now, with the reads queued behind it: they must not
      // see the next transaction (it may be that session's own later write).
      this.flushDueSyncs(c);
    }
    if (n > 0) this.pendingTxns.splice(0, n);
  }

  /** Flushes the connections (but `except`) whose queue starts with a sync now due. */
  private flushDueSyncs(except: Conn | undefined): void {
    // Only connections with a sync in their queue are looked at, not every connection per commit.
    for (const c of this.syncWaiters) {
      if (c !== except && c.queue.length > 0 && c.queue[0].kind === 'barrier') this.flush(c);
      if (!this.conns.has(c.id) || !c.queue.some((e) => e.kind === 'barrier')) this.syncWaiters.delete(c);
    }
  }

  /**
   * In a quorum: if `zxid` is this server's own next proposal (a leader's), applies and answers it
   * and returns true; the driver need not decode the transaction then (the hot path of a leader).
   */
  committedOwn(zxid: bigint): boolean {
    const head = this.pendingTxns[0];
    if (head === undefined || head.hdr.zxid !== zxid) return false;
    this.committed(zxid);
    return true;
  }

  /**
   * In a quorum: a transaction ZAB committed. The leader's own proposals are answered as in
   * standalone; anything else (a learner's commits, a new leader's backlog) is applied here, and a
   * learner answers the local client whose request it was (matched by session and cxid).
   */
  committedTxn(t: LoggedTxn): void {
    if (this.committedOwn(t.hdr.zxid)) return;
    if (t.hdr.zxid <= this.tree.lastZxid) return;
    const s = this.sessions.get(t.hdr.sessionId);
    const c = s?.connId != null ? this.conns.get(s.connId) : undefined;
    const fires: WatchFire[] = [];
    const res = this.tree.apply(t.hdr, t.txn, fires);
    if (t.hdr.zxid > this.lastProposedZxid) this.lastProposedZxid = t.hdr.zxid;
    // The local client's own request, if this transaction is one (a session's expiry is not).
    let own: number | null = null;
    if (c !== undefined) {
      const e = t.txn.type === 'createSession'
        ? c.queue.find((q) => q.kind === 'connect' && q.zxid === UNKNOWN_ZXID && q.resp.sessionId === t.hdr.sessionId)
        : c.queue.find((q) => q.kind === 'write' && q.zxid === UNKNOWN_ZXID && q.xid === t.hdr.cxid);
      if (e !== undefined && (e.kind === 'write' || e.kind === 'connect')) {
        e.zxid = t.hdr.zxid;
        if (e.kind === 'write') e.done = res;
        own = c.id;
      }
    }
    this.afterApply({ ...t, connId: own }, fires);
    if (c !== undefined) this.flush(c);
    this.flushDueSyncs(c);
  }

  private prepareReconfig(ids: readonly Id[], req: Extract<ZkRequest, { type: typeof OpCode.reconfig }>, zxid: bigint): Txn {
    if (this.opts.reconfigEnabled !== true) return { type: 'error', err: Err.RECONFIGDISABLED };
    return this.prep.prepareReconfig({ sessionId: 0n, ids }, req, zxid, this.opts.syncedServers?.() ?? new Set([this.opts.serverId]));
  }

  /** Leader: what a learner's ZooKeeper layer sent (`from` is its server id). */
  fromLearner(from: number, op: ToLeader, nowMs: number): void {
    if (this.role !== 'leader') return;
    switch (op.kind) {
      case 'touch':
        for (const id of op.sessions) {
          const s = this.sessions.get(id);
          if (s && (s.owner === from || s.owner === -1)) { s.owner = from; this.sessions.touch(id, nowMs); }
        }
        return;
      case 'createSession': {
        const s = this.sessions.add(op.sessionId, op.timeoutMs, nowMs, from);
        s.connId = null;
        this.propose({ sessionId: op.sessionId, cxid: 0, zxid: this.nextZxid(), timeMs: nowMs }, { type: 'createSession', timeoutMs: op.timeoutMs, passwd: op.passwd }, null);
        return;
      }
      case 'revalidate': {
        const s = this.sessions.get(op.sessionId);
        const valid = s !== undefined && !s.closing;
        if (valid) {
          if (s.connId !== null) { const old = this.conns.get(s.connId); if (old) this.closeConn(old, 'session moved to another server'); s.connId = null; }
          s.owner = from;
          s.timeoutMs = op.timeoutMs;
          this.sessions.touch(s.id, nowMs);
        }
        this.out.toLearners.push({ serverId: from, msg: { kind: 'revalidated', sessionId: op.sessionId, valid, timeoutMs: op.timeoutMs } });
        return;
      }
      case 'sync':
        // Answered by the replication layer right after the COMMIT of everything proposed so far.
        this.out.toLearners.push({ serverId: from, msg: { kind: 'synced', sessionId: op.sessionId, cxid: op.cxid, zxid: this.lastProposedZxid } });
        return;
      case 'request': {
        const { sessionId, cxid, req } = op;
        const zxid = this.nextZxid();
        const hdr: TxnHeader = { sessionId, cxid, zxid, timeMs: nowMs };
        const s = this.sessions.get(sessionId);
        if (s) this.sessions.touch(sessionId, nowMs);
        let txn: Txn;
        if (!s || s.closing) txn = { type: 'error', err: Err.SESSIONEXPIRED };
        else if (s.owner !== from && s.owner !== -1) txn = { type: 'error', err: Err.SESSIONMOVED };
        else if (req.type === OpCode.closeSession) { s.closing = true; txn = { type: 'closeSession' }; }
        else if (req.type === OpCode.reconfig) txn = this.prepareReconfig(op.ids, req, zxid);
        else txn = this.prep.prepare({ sessionId, ids: op.ids }, req, zxid);
        if (s && s.owner === -1) s.owner = from;
        this.propose(hdr, txn, null);
        return;
      }
    }
  }

  /** Learner: the leader's answers. */
  fromLeader(msg: FromLeader, nowMs: number): void {
    if (this.role !== 'learner') return;
    if (msg.kind === 'synced') {
      const s = this.sessions.get(msg.sessionId);
      const c = s?.connId != null ? this.conns.get(s.connId) : undefined;
      const e = c?.queue.find((q) => q.kind === 'barrier' && q.zxid === UNKNOWN_ZXID && q.xid === msg.cxid);
      if (c === undefined || e === undefined || e.kind !== 'barrier') return;
      e.zxid = msg.zxid;
      this.syncWaiters.add(c);
      this.flush(c);
      return;
    }
    const connId = this.revalidating.get(msg.sessionId);
    this.revalidating.delete(msg.sessionId);
    const c = connId === undefined ? undefined : this.conns.get(connId);
    if (c === undefined || c.closing) return;
    const rec = this.tree.sessions.get(msg.sessionId);
    if (!msg.valid || rec === undefined) { this.refuseSession(c, 'session expired or unknown'); return; }
    let s = this.sessions.get(msg.sessionId);
    if (s?.connId != null && s.connId !== c.id) { const old = this.conns.get(s.connId); if (old) this.closeConn(old, 'session re-attached on another connection'); }
    s ??= this.sessions.add(msg.sessionId, msg.timeoutMs, nowMs, this.opts.serverId);
    s.connId = c.id;
    s.timeoutMs = msg.timeoutMs;
    c.sessionId = msg.sessionId;
    this.touched.add(msg.sessionId);
    this.out.send.push({ connId: c.id, kind: 'connect', resp: { protocolVersion: 0, timeOut: msg.timeoutMs, sessionId: msg.sessionId, passwd: rec.passwd, readOnly: false } });
  }

  /**
   * Changes what this server does in its quorum. Leaving service closes every client connection
   * (a server out of broadcast must not keep sessions alive that the quorum may expire) and drops
   * what was in flight. A new leader tracks every session with a fresh deadline and proposes from
   * `startZxid` on; a learner tracks only its own connections' sessions.
   */
  setRole(role: ServerRole, nowMs: number, startZxid?: bigint): void {
    if (role === this.role) return;
    const wasServing = this.role !== 'down';
    this.role = role;
    if (wasServing) {
      for (const c of this.conns.values()) this.closeConn(c, `this server left ${role === 'down' ? 'its quorum' : 'its role'}: reconnect`);
    }
    this.pendingTxns.length = 0;
    this.prep.reset();
    this.syncWaiters.clear();
    this.revalidating.clear();
    this.touched.clear();
    this.containerDeletes.clear();
    this.sessions.clear();
    this.lastProposedZxid = this.tree.lastZxid;
    if (role === 'leader') {
      if (startZxid !== undefined) this.lastProposedZxid = startZxid;
      for (const [id, s] of this.tree.sessions) this.sessions.add(id, s.timeoutMs, nowMs);
      this.nextContainerCheckMs = nowMs + this.opts.containerCheckIntervalMs;
    }
  }

  private afterApply(t: PendingTxn, fires: WatchFire[]): void {
    for (const f of fires) {
      const wc = this.conns.get(f.watcher);
      if (wc && !wc.closing) this.event(wc, { type: f.type, state: KeeperState.SyncConnected, path: f.path });
    }
    if (t.txn.type === 'delete') this.containerDeletes.delete(t.txn.path);
    if (t.txn.type === 'closeSession') {
      const s = this.sessions.get(t.hdr.sessionId);
      this.sessions.remove(t.hdr.sessionId);
      if (s && s.connId !== null && s.connId !== t.connId) {
        const c = this.conns.get(s.connId);
        if (c) this.closeConn(c, 'session expired');
      }
    }
  }

  // ---- time ----

  /**
   * The driver saw its event loop held up for `ms` (a stalled disk write, a long GC pause, a
   * stopped process): pings that arrived meanwhile are still unread in the sockets, so no session
   * may be expired for that time. Call it before the tick that follows the stall.
   */
  serverStalled(ms: number): void {
    if (ms > 0) this.sessions.extendDeadlines(ms);
  }

  tick(nowMs: number): void {
    if (this.role === 'down') return;
    if (this.role === 'learner') {
      // Only the leader expires sessions; tell it who is alive here.
      if (this.touched.size > 0) {
        this.out.toLeader.push({ kind: 'touch', sessions: [...this.touched] });
        this.touched.clear();
      }
      return;
    }
    for (const s of this.sessions.expired(nowMs)) {
      this.stats.sessionsExpired++;
      s.closing = true;
      const zxid = this.nextZxid();
      this.propose({ sessionId: s.id, cxid: 0, zxid, timeMs: nowMs }, { type: 'closeSession' }, null);
    }
    if (nowMs >= this.nextContainerCheckMs) {
      this.nextContainerCheckMs = nowMs + this.opts.containerCheckIntervalMs;
      this.collectContainers(nowMs);
    }
  }

  /** Empty containers that once had children, and TTL nodes past their TTL, are deleted by the server. */
  private collectContainers(nowMs: number): void {
    const candidates: string[] = [];
    for (const p of this.tree.containers) {
      const n = this.tree.get(p);
      if (n && n.children.size === 0 && n.cversion > 0 && n.ephemeralOwner === CONTAINER_EPHEMERAL_OWNER) candidates.push(p);
    }
    for (const p of this.tree.ttls) {
      const n = this.tree.get(p);
      const ttl = n ? ttlOfEphemeralOwner(n.ephemeralOwner) : null;
      if (n && ttl !== null && n.children.size === 0 && nowMs - n.mtimeMs > Number(ttl)) candidates.push(p);
    }
    for (const p of candidates) {
      if (this.containerDeletes.has(p)) continue;
      const zxid = this.nextZxid();
      const txn = this.prep.prepareContainerDelete(p, zxid);
      if (txn.type === 'error') {
        this.lastProposedZxid -= 1n;
        continue;
      }
      this.containerDeletes.add(p);
      this.propose({ sessionId: 0n, cxid: 0, zxid, timeMs: nowMs }, txn, null);
    }
  }

  // ---- introspection for the four-letter words ----

  connections(): { connId: number; ip: string; sessionId: bigint | null; sessionTimeoutMs: number | null; queued: number }[] {
    return [...this.conns.values()].map((c) => ({
      connId: c.id, ip: c.ip, sessionId: c.sessionId, queued: c.queue.length,
      sessionTimeoutMs: c.sessionId === null ? null : this.sessions.get(c.sessionId)?.timeoutMs ?? null,
    }));
  }
}

/**
 * A connection's writes commit in the order they were queued, so the entry for
 * zxid is the first write still waiting: found near the front, not by a full scan.
 */
function pendingEntry(queue: QueueEntry[], zxid: bigint): QueueEntry | undefined {
  for (const q of queue) {
    if (q.kind === 'connect' && q.zxid === zxid) return q;
    if (q.kind === 'write' && q.done === null) return q.zxid === zxid ? q : queue.find((x) => x.kind === 'write' && x.zxid === zxid);
  }
  return undefined;
}

function writeBody(opType: number, r: ApplyResult): ZkResponse | undefined {
  switch (opType) {
    case OpCode.create: return { type: 'path', path: r.path! };
    case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL: return { type: 'pathStat', path: r.path!, stat: r.stat! };
    // A lone check answers the node's stat (SetDataResponse), as ZooKeeper does.
    case OpCode.setData: case OpCode.setACL: case OpCode.check: return { type: 'stat', stat: r.stat! };
    case OpCode.multi: return { type: 'multi', results: r.results ?? [] };
    default: return { type: 'empty' };
  }
}
