// The client against a scripted server: handshake fields, xids, strict reply
// order, the packet limit, pings and the read timeout, expiry, re-attach
// (auth then setWatches then waiting requests), timeouts and close.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Err, EventType, KeeperState, OpCode, Xid } from '../../../src/proto/zk-constants.js';
import { EMPTY_STAT, writeStat } from '../../../src/proto/zk-records.js';
import { AddWatchMode, ZkClient, ZkError, type WatchEvent } from '../../../src/client/index.js';
import { FakeZk } from './fake-zk.js';

let fz: FakeZk;
const clients: ZkClient[] = [];
function client(o: Partial<ConstructorParameters<typeof ZkClient>[0]> = {}): ZkClient {
  const c = new ZkClient({ connectString: fz.connectString, sessionTimeoutMs: 3000, ...o });
  clients.push(c);
  return c;
}
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (!(e instanceof ZkError)) throw e;
    return e.codeName;
  }
}
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
const statBody = (w: Parameters<Parameters<FakeZk['conns'][0]['reply']>[3] & object>[0]): void => writeStat(w, EMPTY_STAT);

beforeEach(async () => { fz = await FakeZk.start(); });
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close({ timeoutMs: 100 }).catch(() => {})));
  await fz.stop();
});

describe('ZkClient wire protocol (scripted server)', () => {
  it('sends the handshake fields, then xids from 1, and tracks the last zxid', async () => {
    const c = client({ sessionTimeoutMs: 4321 });
    await c.connect();
    const conn = fz.conns[0];
    expect(conn.connectReq).toEqual({ protocolVersion: 0, lastZxidSeen: 0n, timeOut: 4321, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false });
    expect(c.sessionId).toBe(0x1234_5678_9abc_def0n);
    expect(c.negotiatedTimeoutMs).toBe(4321);
    fz.onRequest = (cn, r) => cn.reply(r.xid, 0, BigInt(100 + r.xid), statBody);
    await c.exists('/a');
    await c.exists('/b');
    expect(conn.requests.map((r) => [r.xid, r.type])).toEqual([[1, OpCode.exists], [2, OpCode.exists]]);
    expect(conn.requests[1].req).toEqual({ type: OpCode.exists, path: '/b', watch: false });
    expect(c.lastZxidSeen).toBe(102n);
  });

  it('drops the connection on a reply out of order; every pending request gets CONNECTIONLOSS', async () => {
    const c = client();
    await c.connect();
    const a = codeOf(c.getData('/a'));
    const b = codeOf(c.getData('/b'));
    const conn = fz.conns[0];
    await conn.waitRequests(2);
    conn.reply(2, 0, 5n, statBody);
    expect(await a).toBe('CONNECTIONLOSS');
    expect(await b).toBe('CONNECTIONLOSS');
    const second = await fz.waitConns(2);
    expect(second.connectReq?.sessionId).toBe(c.sessionId);
    expect(second.connectReq?.passwd).toEqual(Buffer.alloc(16, 7));
  });

  it('drops the connection on a frame over the 1 MiB limit', async () => {
    const c = client();
    await c.connect();
    const p = codeOf(c.getData('/a'));
    const conn = fz.conns[0];
    await conn.waitRequests(1);
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(2 * 1024 * 1024, 0);
    conn.socket.write(huge);
    expect(await p).toBe('CONNECTIONLOSS');
    await fz.waitConns(2);
  });

  it('pings when idle and drops a server that stops answering', async () => {
    fz.negotiatedMs = 600;
    const c = client();
    await c.connect();
    await until(() => fz.pings >= 2, 3000);
    expect(c.state).toBe('connected');
    const disconnected = new Promise((res) => c.once('state', res));
    fz.answerPings = false;
    const t0 = Date.now();
    expect(await disconnected).toBe('disconnected');
    // Read timeout: 2/3 of 600 ms after the last answered ping (sent every 200 ms).
    expect(Date.now() - t0).toBeLessThan(1000);
    await until(() => c.state === 'connected', 3000);
    await fz.waitConns(2);
  });

  it('timeout <= 0 in the handshake means expired: terminal', async () => {
    fz.onConnect = (cn) => cn.replyConnect({ timeOut: 0, sessionId: 0n });
    const c = client({ session: { id: 42n, passwd: Buffer.alloc(16, 1) } });
    const events: WatchEvent[] = [];
    c.on('event', (e) => events.push(e));
    expect(await codeOf(c.connect())).toBe('SESSIONEXPIRED');
    expect(c.state).toBe('expired');
    expect(events.map((e) => e.state)).toEqual([KeeperState.Expired]);
    expect(await codeOf(c.exists('/'))).toBe('SESSIONEXPIRED');
    expect(fz.conns[0].connectReq?.sessionId).toBe(42n);
  });

  it('re-attach replays auth, then setWatches2 with relativeZxid, then the requests that waited', async () => {
    const c = client({ connectString: fz.connectString + '/chroot' });
    fz.onRequest = (cn, r) => {
      if (r.type === OpCode.getData) cn.reply(r.xid, 0, 0x500n, (w) => { w.writeBuffer(Buffer.from('v')); writeStat(w, EMPTY_STAT); });
      else cn.reply(r.xid, 0, 0x400n);
    };
    await c.connect();
    const first = fz.conns[0];
    const auth = c.addAuth('digest', 'u:p');
    await first.waitRequests(1);
    first.reply(Xid.auth);
    await auth;
    const dataEvents: WatchEvent[] = [];
    await c.getData('/d', (e) => dataEvents.push(e));
    await c.addWatch('/p', AddWatchMode.PERSISTENT, () => {});
    expect(c.lastZxidSeen).toBe(0x500n);
    fz.onConnect = () => {}; // hold the next handshake
    const disconnected = new Promise((res) => c.once('state', res));
    first.close();
    expect(await disconnected).toBe('disconnected');
    fz.onRequest = (cn, r) => { if (r.type !== OpCode.auth) cn.reply(r.xid, 0, 0x600n, r.type === OpCode.exists ? statBody : undefined); };
    const waited = c.exists('/w');
    const second = await fz.waitConns(2);
    second.replyConnect();
    expect(second.connectReq?.lastZxidSeen).toBe(0x500n);
    const reqs = await second.waitRequests(3);
    expect(reqs.map((r) => r.xid)).toEqual([Xid.auth, Xid.setWatches, 3]);
    expect(reqs[0].req).toMatchObject({ type: OpCode.auth, scheme: 'digest', auth: Buffer.from('u:p') });
    expect(reqs[1].req).toEqual({
      type: OpCode.setWatches2, relativeZxid: 0x500n, dataWatches: ['/chroot/d'], existWatches: [], childWatches: [],
      persistentWatches: ['/chroot/p'], persistentRecursiveWatches: [],
    });
    expect(reqs[2].req).toEqual({ type: OpCode.exists, path: '/chroot/w', watch: false });
    await waited;
    // A missed event delivered after setWatches reaches the re-armed watcher, chroot stripped.
    second.notify({ type: EventType.NodeDataChanged, state: KeeperState.SyncConnected, path: '/chroot/d' });
    second.notify({ type: EventType.NodeDataChanged, state: KeeperState.SyncConnected, path: '/elsewhere' });
    await until(() => dataEvents.length === 1);
    expect(dataEvents[0].path).toBe('/d');
  });

  it('an auth reply may overtake replies to earlier requests', async () => {
    const c = client();
    await c.connect();
    const conn = fz.conns[0];
    const get = c.getData('/a');
    const auth = c.addAuth('digest', 'x:y');
    await conn.waitRequests(2);
    conn.reply(Xid.auth);
    await auth;
    conn.reply(1, 0, 1n, (w) => { w.writeBuffer(null); writeStat(w, EMPTY_STAT); });
    expect((await get).data).toBeNull();
    expect(c.state).toBe('connected');
  });

  it('a refused auth fails addAuth with the server code and is not replayed', async () => {
    const c = client();
    await c.connect();
    const conn = fz.conns[0];
    const auth = codeOf(c.addAuth('digest', 'bad'));
    await conn.waitRequests(1);
    conn.reply(Xid.auth, Err.AUTHFAILED);
    expect(await auth).toBe('AUTHFAILED');
  });

  it('a request unanswered past requestTimeoutMs fails with REQUESTTIMEOUT and the connection is replaced', async () => {
    const c = client({ requestTimeoutMs: 300 });
    await c.connect();
    const t0 = Date.now();
    expect(await codeOf(c.getData('/slow'))).toBe('REQUESTTIMEOUT');
    expect(Date.now() - t0).toBeLessThan(2000);
    await fz.waitConns(2);
  });

  it('a malformed reply body fails that request only', async () => {
    const c = client();
    await c.connect();
    fz.onRequest = (cn, r) => cn.reply(r.xid, 0, 1n, r.xid === 1 ? (w) => w.writeInt(3) : statBody);
    expect(await codeOf(c.getData('/a'))).toBe('MARSHALLINGERROR');
    expect(await c.exists('/b')).toEqual(EMPTY_STAT);
    expect(fz.conns.length).toBe(1);
  });

  it('an error in a multi reply header is thrown without results', async () => {
    const c = client();
    await c.connect();
    fz.onRequest = (cn, r) => cn.reply(r.xid, Err.NOAUTH, 1n);
    const e = await c.multi([]).catch((x: ZkError) => x);
    expect(e).toBeInstanceOf(ZkError);
    expect((e as ZkError).code).toBe(Err.NOAUTH);
    expect((e as ZkError).results).toBeUndefined();
  });

  it('close sends closeSession and is bounded when no reply comes', async () => {
    const c = client();
    await c.connect();
    const t0 = Date.now();
    await c.close({ timeoutMs: 300 });
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(fz.conns[0].requests.map((r) => r.type)).toEqual([OpCode.closeSession]);
    expect(c.state).toBe('closed');
    const c2 = client();
    fz.onRequest = (cn, r) => cn.reply(r.xid);
    await c2.connect();
    await c2.close();
    expect(c2.state).toBe('closed');
  });

  it('connect() to a server that is not there fails with CONNECTIONLOSS, bounded', async () => {
    const dead = await new Promise<number>((res) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
    });
    const c = new ZkClient({ connectString: `127.0.0.1:${dead}`, sessionTimeoutMs: 2000 });
    const t0 = Date.now();
    expect(await codeOf(c.connect({ timeoutMs: 500 }))).toBe('CONNECTIONLOSS');
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(c.state).toBe('closed');
  });

  it('tries the next server of the connect string', async () => {
    const dead = await new Promise<number>((res) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
    });
    const c = client({ connectString: `127.0.0.1:${dead},${fz.connectString}` });
    await c.connect({ timeoutMs: 3000 });
    expect(c.server).toBe(fz.connectString);
  });
});
