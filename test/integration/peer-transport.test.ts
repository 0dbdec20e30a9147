// The TCP transports between quorum servers, on 127.0.0.1 with raw sockets on
// the other end: a peer that does not read is dropped past the unsent-bytes
// bound; a malformed frame drops its connection; the election port refuses a
// caller from another cluster or outside the membership, and keeps one
// connection per pair (the higher id's).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ElectionPort, FrameSplitter, QuorumPort } from '../../src/io/peer-transport.js';
import { JuteWriter } from '../../src/proto/jute.js';
import { encodeElectionHello } from '../../src/proto/peer-codec.js';
import { PEER_PROTOCOL_VERSION, type Notification } from '../../src/core/zab/messages.js';
import { freePort } from '../helpers/ports.js';
import { captureLogger } from '../unit/storage/helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0)) await c(); });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond() && Date.now() < end;) await sleep(20);
}

function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('FrameSplitter', () => {
  it('splits frames however the bytes arrive, and refuses one over the bound', () => {
    const f = new FrameSplitter(16);
    const frame = (body: string) => { const b = Buffer.alloc(4 + body.length); b.writeInt32BE(body.length); b.write(body, 4); return b; };
    const all = Buffer.concat([frame('one'), frame('three'), frame('')]);
    const out: string[] = [];
    for (let i = 0; i < all.length; i++) for (const x of f.push(all.subarray(i, i + 1))) out.push(x.toString());
    expect(out).toEqual(['one', 'three', '']);
    expect(() => new FrameSplitter(16).push(frame('x'.repeat(17)))).toThrow(/frame of 17 bytes \(limit 16\)/);
  });
});

describe('QuorumPort', () => {
  it('drops a peer that does not read once its backlog passes the bound', async () => {
    const cap = captureLogger();
    const closed: number[] = [];
    const port = new QuorumPort({ listen: { host: '127.0.0.1', port: await freePort() }, logger: cap.logger, frameBytesMax: 1 << 20, unsentBytesMax: 256 * 1024 }, {
      accepted: () => 1, connected: () => undefined, message: () => undefined, flush: () => undefined, closed: (c) => closed.push(c),
    });
    await port.listen();
    cleanups.push(() => port.stop());
    const raw = await connectRaw((port as unknown as { opts: { listen: { port: number } } }).opts.listen.port);
    raw.pause(); // never reads
    await sleep(50);
    const payload = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 200 && closed.length === 0; i++) {
      port.send(1, { type: 'proposal', zxid: BigInt(i + 1), payload });
      await sleep(1);
    }
    await until(() => closed.length > 0);
    raw.destroy();
    expect(closed).toEqual([1]);
    expect(cap.warns().map((l) => l.msg)).toContain('quorum peer is not reading; connection dropped');
  });

  it('drops a connection that sends a malformed frame, and reports it closed', async () => {
    const cap = captureLogger();
    const closed: number[] = [];
    const listen = { host: '127.0.0.1', port: await freePort() };
    const port = new QuorumPort({ listen, logger: cap.logger, frameBytesMax: 1 << 20, unsentBytesMax: 1 << 22 }, {
      accepted: () => 7, connected: () => undefined, message: () => undefined, flush: () => undefined, closed: (c) => closed.push(c),
    });
    await port.listen();
    cleanups.push(() => port.stop());
    const raw = await connectRaw(listen.port);
    raw.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 99])); // a frame with an unknown message type
    await until(() => closed.length > 0);
    expect(closed).toEqual([7]);
    expect(cap.warns().some((l) => l.msg === 'malformed quorum frame; connection dropped')).toBe(true);
    raw.destroy();
  });
});

describe('ElectionPort', () => {
  async function election(id: number, peers: Map<number, { host: string; port: number }>, listenPort: number, cluster = 'prod') {
    const cap = captureLogger();
    const got: { from: number; n: Notification }[] = [];
    const p = new ElectionPort({ id, clusterId: cluster, listen: { host: '127.0.0.1', port: listenPort }, peers, logger: cap.logger, onNotification: (from, n) => got.push({ from, n }) });
    await p.listen();
    cleanups.push(() => p.close());
    return { p, got, cap };
  }
  const n: Notification = { leader: 2, zxid: 0x1_0000_0005n, peerEpoch: 1, round: 3, state: 'looking' };

  it('carries notifications both ways over the one connection the higher id opens', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const peers = new Map([[1, { host: '127.0.0.1', port: p1 }], [2, { host: '127.0.0.1', port: p2 }]]);
    const a = await election(1, peers, p1);
    const b = await election(2, peers, p2);
    a.p.send(2, n); // the lower id calls, is called back, and its notification goes out then
    b.p.send(1, { ...n, leader: 1 });
    await until(() => a.got.length > 0 && b.got.length > 0);
    expect(b.got[0]).toEqual({ from: 1, n });
    expect(a.got[0]).toEqual({ from: 2, n: { ...n, leader: 1 } });
  });

  it('refuses a caller from another cluster or outside the membership, saying why', async () => {
    const p1 = await freePort();
    const a = await election(1, new Map([[1, { host: '127.0.0.1', port: p1 }], [2, { host: '127.0.0.1', port: 1 }]]), p1);
    for (const [cluster, serverId] of [['staging', 2], ['prod', 9]] as const) {
      const raw = await connectRaw(p1);
      const w = new JuteWriter(64);
      encodeElectionHello(w, { protocolVersion: PEER_PROTOCOL_VERSION, clusterId: cluster, serverId });
      raw.write(Buffer.from(w.toBuffer()));
      await new Promise((r) => raw.once('close', r));
    }
    const warns = a.cap.warns().map((l) => l.msg);
    expect(warns).toContain('election connection refused: the caller is from cluster "staging", not "prod"');
    expect(warns).toContain('election connection refused: the caller claims id 9, which is not a member');
  });
});
