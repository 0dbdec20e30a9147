// The ZooKeeper layer in simulations: every simulated server runs the real
// ServerCore over the real QuorumPeer, and simulated clients (sessions that
// move between servers when theirs fails, with ZooKeeper's lastZxidSeen) write
// and read a few znodes. What the clients see is recorded and checked
// against ZooKeeper's client guarantees (history-checker.ts).
import type { Outbound } from '../core/zk/server-core.js';
import { Err, OpCode } from '../proto/zk-constants.js';
import type { ZkRequest } from '../proto/zk-records.js';
import { checkHistory, type HistoryOp } from './history-checker.js';
import type { SimEnv, SimWorkload } from './sim-cluster.js';
import { Pipe } from './sim-client-net.js';
import { ZkApp, type ServerHooks } from './sim-zk-app.js';

const SESSION_TIMEOUT_MS = 1500;
const CLIENT_REQUEST_TIMEOUT_MS = 1000;
const PATHS = ['/k0', '/k1', '/k2'];
const WORLD = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];

interface InFlight { xid: number; kind: 'write' | 'read' | 'other'; path: string; value: string | null; invokeAt: number; watch?: boolean }

/** A ZooKeeper client session, as the Java client behaves: one connection at a time, requests in order. */
class SimClient {
  session = '';
  sessionId = 0n;
  passwd: Buffer = Buffer.alloc(16);
  lastZxidSeen = 0n;
  /** The connection, with the last delivery times each way: a connection delivers in order, as TCP. */
  conn: { server: number; connId: number; connected: boolean; openedAt: number; up: Pipe; down: Pipe } | null = null;
  inFlight: InFlight[] = [];
  nextXid = 1;
  writes = 0;
  generation = 0;
  /** Data watches armed on this connection, with the mzxid they were set at (forgotten on reconnect: no setWatches here). */
  watches = new Map<string, bigint>();

  constructor(readonly name: string) {}
}

export function zkWorkload(clientCount: number, firstCounter: bigint): SimWorkload {
  const history: HistoryOp[] = [];
  const apps = new Map<number, ZkApp>();
  const conns = new Map<string, SimClient>(); // `${server}:${connId}` -> client
  const watchProblems: string[] = [];
  const layerProblems: string[] = [];
  const stats = { watchesFired: 0, clientOps: 0, clientMoves: 0, clientConnects: 0, sessionsExpired: 0, requestsUnanswered: 0 };
  let env: SimEnv | null = null;
  let nextConnId = 1;
  const delay = () => env!.rng.range(0.05, 1);

  const hooks: ServerHooks = {
    deliver(server, out) {
      const c = conns.get(`${server}:${out.connId}`);
      if (c === undefined) return;
      const gen = c.generation;
      c.conn!.down.send(() => { if (c.generation === gen) onServerMessage(c, out); });
    },
    closed(server, connId) {
      const c = conns.get(`${server}:${connId}`);
      if (c === undefined) return;
      conns.delete(`${server}:${connId}`);
      const gen = c.generation;
      const close = () => { if (c.generation === gen) dropConnection(c, false); };
      // After what was sent before the close.
      if (c.conn !== null) c.conn.down.send(close); else env!.q.after(delay(), close);
    },
  };

  function dropConnection(c: SimClient, tellServer: boolean): void {
    if (c.conn === null) return;
    const { server, connId } = c.conn;
    conns.delete(`${server}:${connId}`);
    c.conn = null;
    c.generation++;
    c.watches.clear();
    stats.requestsUnanswered += c.inFlight.length;
    c.inFlight = []; // their outcome is unknown: not in the history
    if (tellServer) env!.drive(server, () => apps.get(server)!.core.connectionClosed(connId));
  }

  function send(c: SimClient, req: ZkRequest, f: Omit<InFlight, 'xid' | 'invokeAt'>): void {
    const conn = c.conn!;
    const xid = req.type === OpCode.ping ? -2 : c.nextXid++;
    if (xid !== -2) c.inFlight.push({ ...f, xid, invokeAt: env!.q.now });
    const gen = c.generation;
    conn.up.send(() => {
      if (c.generation !== gen) return;
      env!.drive(conn.server, () => apps.get(conn.server)!.core.request(conn.connId, xid, req, Math.floor(env!.q.now)));
    });
  }

  function connect(c: SimClient): void {
    const e = env!;
    const server = e.rng.pick(e.ids);
    const app = e.app(server);
    stats.clientConnects++;
    if (app === null) return; // refused: try again on the next step
    const connId = nextConnId++;
    c.conn = { server, connId, connected: false, openedAt: e.q.now, up: new Pipe(e.q, delay), down: new Pipe(e.q, delay) };
    conns.set(`${server}:${connId}`, c);
    const req = { protocolVersion: 0, lastZxidSeen: c.lastZxidSeen, timeOut: SESSION_TIMEOUT_MS, sessionId: c.sessionId, passwd: c.passwd, readOnly: false };
    const passwd = Buffer.from(Array.from({ length: 16 }, () => e.rng.int(256)));
    const gen = c.generation;
    c.conn.up.send(() => {
      if (c.generation !== gen) return;
      e.drive(server, () => {
        const core = apps.get(server)!.core;
        core.connectionOpened(connId, `10.0.0.${server}`);
        core.connect(connId, req, Math.floor(e.q.now), passwd);
      });
    });
  }

  function onServerMessage(c: SimClient, out: Outbound): void {
    const e = env!;
    if (out.kind === 'connect') {
      if (out.resp.timeOut <= 0 || out.resp.sessionId === 0n) {
        // Expired: a new session, with a new name in the history.
        stats.sessionsExpired++;
        dropConnection(c, true);
        c.sessionId = 0n;
        c.session = '';
        return;
      }
      if (c.sessionId === 0n) {
        c.sessionId = out.resp.sessionId;
        c.passwd = out.resp.passwd;
        c.session = `${c.name}/${out.resp.sessionId.toString(16)}`;
      }
      if (c.conn !== null) c.conn.connected = true;
      return;
    }
    if (out.kind === 'event') {
      if (c.watches.delete(out.event.path)) stats.watchesFired++;
      else if (watchProblems.length < 10) {
        // What must not happen: an event for a watch this connection never armed, or a one-shot
        // watch firing again after it fired (it is gone once fired; only a new read re-arms it).
        watchProblems.push(`watch event nobody armed: ${c.session} got type ${out.event.type} for ${out.event.path} with no data watch armed there on this connection (t=${e.q.now.toFixed(1)}ms)`);
      }
      return;
    }
    if (out.kind !== 'reply') return;
    if (out.zxid > c.lastZxidSeen) c.lastZxidSeen = out.zxid;
    if (out.xid < 0) return;
    const head = c.inFlight.shift();
    if (head === undefined || head.xid !== out.xid) {
      history.push({ session: c.session, kind: 'read', path: '(order)', value: `xid ${out.xid} answered, expected ${head?.xid}`, invokeAt: 0, respondAt: e.q.now, zxid: 0n, mzxid: -1n });
      return;
    }
    if (out.err !== Err.OK || head.kind === 'other') return;
    const body = out.body;
    const mzxid = body?.type === 'stat' || body?.type === 'data' ? body.stat.mzxid : out.zxid;
    // A watch fires before its client can see the change that triggered it (ZooKeeper's ordering guarantee).
    const armedAt = c.watches.get(head.path);
    if (armedAt !== undefined && mzxid > armedAt && watchProblems.length < 10) {
      watchProblems.push(`watch order: ${c.session} saw ${head.path} at mzxid 0x${mzxid.toString(16)} before the event of the watch set at 0x${armedAt.toString(16)} (t=${e.q.now.toFixed(1)}ms)`);
    }
    if (head.kind === 'read' && head.watch && armedAt === undefined) c.watches.set(head.path, mzxid);
    const value = head.kind === 'read' ? (body?.type === 'data' ? body.data?.toString() ?? null : null) : head.value;
    history.push({ session: c.session, kind: head.kind, path: head.path, value, invokeAt: head.invokeAt, respondAt: e.q.now, zxid: out.zxid, mzxid });
  }

  function step(c: SimClient): void {
    const e = env!;
    if (e.q.now >= e.endOfLoadMs) return;
    if (c.conn === null) {
      connect(c);
    } else if (!c.conn.connected) {
      if (e.q.now - c.conn.openedAt > CLIENT_REQUEST_TIMEOUT_MS) dropConnection(c, true);
    } else if (c.inFlight.length > 0 && e.q.now - c.inFlight[0].invokeAt > CLIENT_REQUEST_TIMEOUT_MS) {
      dropConnection(c, true); // the Java client gives up on a silent server and moves on
    } else if (e.rng.chance(0.01)) {
      stats.clientMoves++;
      dropConnection(c, true); // moves to another server (a load balancer, a client restart): where monotonic reads are at risk
    } else if (c.inFlight.length < 3) {
      stats.clientOps++;
      const path = e.rng.pick(PATHS);
      const r = e.rng.next();
      if (r < 0.1) {
        send(c, { type: OpCode.create, path, data: Buffer.from('init'), acl: WORLD, flags: 0 }, { kind: 'write', path, value: 'init' });
      } else if (r < 0.55) {
        const value = `${c.name}-${++c.writes}`;
        send(c, { type: OpCode.setData, path, data: Buffer.from(value), version: -1 }, { kind: 'write', path, value });
      } else if (r < 0.6) {
        send(c, { type: OpCode.sync, path }, { kind: 'other', path, value: null });
      } else {
        const watch = e.rng.chance(0.5);
        send(c, { type: OpCode.getData, path, watch }, { kind: 'read', path, value: null, watch });
      }
    } else {
      send(c, { type: OpCode.ping }, { kind: 'other', path: '', value: null });
    }
    e.q.after(e.rng.range(1, 6), () => step(c));
  }

  return {
    app(ctx) {
      const a = new ZkApp(ctx, hooks, firstCounter, (what) => { if (layerProblems.length < 10) layerProblems.push(what); });
      apps.set(ctx.id, a);
      return a;
    },
    start(e) {
      env = e;
      for (let i = 0; i < clientCount; i++) {
        const c = new SimClient(`c${i}`);
        e.q.after(e.rng.range(200, 400), () => step(c));
      }
    },
    check() {
      const order = history.filter((h) => h.path === '(order)').map((h) => `replies out of order for ${h.session}: ${h.value}`);
      return [...order, ...watchProblems, ...layerProblems, ...checkHistory(history.filter((h) => h.path !== '(order)'), new Map())];
    },
    stats() {
      return { ...stats, historyOps: history.length };
    },
  };
}
