// The client port of a real server process, over raw TCP: four-letter words,
// the per-IP connection cap, slow readers, oversized frames, session
// re-attach with a wrong password, and reply order for pipelined requests.
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import { Err, OpCode } from '../../src/proto/zk-constants.js';
import { readStat } from '../../src/proto/zk-records.js';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { fourLetterWord, frame, logLines, parseReply, RawConn, requestFrame, rssBytes } from '../helpers/raw-zk.js';

const started: QuorateServer[] = [];
async function server(cfg: Record<string, string> = {}): Promise<QuorateServer> {
  const s = await startQuorateServer({ cfg });
  started.push(s);
  return s;
}

async function client(s: QuorateServer): Promise<ZkClient> {
  const zk = new ZkClient({ connectString: s.connectString, sessionTimeoutMs: 20_000, requestTimeoutMs: 10_000 });
  await zk.connect({ timeoutMs: 10_000 });
  return zk;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let main: QuorateServer;

beforeAll(async () => {
  main = await server();
}, 30_000);

afterAll(async () => {
  for (const s of started) {
    await s.stop();
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}, 30_000);

describe('four-letter words', () => {
  it('ruok answers imok and closes', async () => {
    const r = await fourLetterWord(main.port, 'ruok');
    expect(r.text).toBe('imok');
    expect(r.closed).toBe(true);
  });

  it('srvr and stat say standalone and the zxid', async () => {
    for (const w of ['srvr', 'stat']) {
      const { text } = await fourLetterWord(main.port, w);
      expect(text, w).toContain('Mode: standalone');
      expect(text, w).toMatch(/Zxid: 0x[0-9a-f]+/);
      expect(text, w).toMatch(/Zookeeper version: /);
      expect(text, w).toMatch(/Node count: \d+/);
    }
    const { text } = await fourLetterWord(main.port, 'stat');
    expect(text).toContain('Clients:');
  });

  it('mntr has the server state and znode count', async () => {
    const { text } = await fourLetterWord(main.port, 'mntr');
    expect(text).toContain('zk_server_state\tstandalone\n');
    expect(text).toMatch(/zk_znode_count\t\d+\n/);
    expect(text).toMatch(/zk_version\t/);
    for (const line of text.trim().split('\n')) expect(line, `mntr line ${JSON.stringify(line)}`).toMatch(/^(zk|quorate)_[a-z_]+\t\S+$/);
  });

  it('conf, cons, envi, wchs, dirs, isro', async () => {
    const zk = await client(main);
    try {
      await zk.exists('/watched-by-4lw-test', () => undefined);
      const conf = (await fourLetterWord(main.port, 'conf')).text;
      expect(conf).toContain(`clientPort=${main.port}`);
      expect(conf).toContain(`dataDir=${main.dataDir}`);
      const cons = (await fourLetterWord(main.port, 'cons')).text;
      expect(cons).toMatch(/\/127\.0\.0\.1:\d+\[1\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+\)/);
      expect(cons).toContain(`sid=0x${BigInt.asUintN(64, zk.sessionId).toString(16)}`);
      const envi = (await fourLetterWord(main.port, 'envi')).text;
      expect(envi.startsWith('Environment:\n')).toBe(true);
      expect(envi).toContain('zookeeper.version=');
      const wchs = (await fourLetterWord(main.port, 'wchs')).text;
      expect(wchs).toMatch(/^\d+ connections watching \d+ paths\nTotal watches:\d+\n$/);
      const [, conns, paths] = /^(\d+) connections watching (\d+) paths/.exec(wchs)!.map(Number);
      expect(conns).toBeGreaterThanOrEqual(1);
      expect(paths).toBeGreaterThanOrEqual(1);
      const dirs = (await fourLetterWord(main.port, 'dirs')).text;
      expect(dirs).toMatch(/^datadir_size: \d+\nlogdir_size: \d+\n$/);
      expect(Number(/logdir_size: (\d+)/.exec(dirs)![1])).toBeGreaterThan(0);
      expect((await fourLetterWord(main.port, 'isro')).text).toBe('rw');
    } finally {
      await zk.close();
    }
  });

  it('a word split across writes (2+2, 1+1+1+1) still works', async () => {
    expect((await fourLetterWord(main.port, 'ruok', { pieces: [2, 2] })).text).toBe('imok');
    expect((await fourLetterWord(main.port, 'ruok', { pieces: [1, 1, 1, 1] })).text).toBe('imok');
    expect((await fourLetterWord(main.port, 'srvr', { pieces: [3, 1] })).text).toContain('Mode: standalone');
  });

  it('garbage after a word does not change the answer', async () => {
    const r = await fourLetterWord(main.port, 'ruok', { after: Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]) });
    expect(r.text).toBe('imok');
    expect((await fourLetterWord(main.port, 'ruok')).text).toBe('imok');
  });

  it('is recognised only as the first 4 bytes of a connection', async () => {
    const c = await RawConn.open(main.port);
    try {
      const resp = await c.handshake({ timeOut: 10_000 });
      expect(resp.timeOut).toBeGreaterThan(0);
      await c.write('ruok');
      // "ruok" read as a frame length is 0x72756f6b: far over the limit, so the connection is closed.
      expect(await c.waitClosed(5000)).toBe(true);
      expect(c.frames.slice(1).map((f) => f.toString('latin1'))).not.toContain('imok');
    } finally {
      c.destroy();
    }
  });

  it('a client that leaves its socket half-open after the answer is closed by the server, and does not hold up SIGTERM', async () => {
    // A four-letter word is a connection like any other: once answered, the server must let go of it
    // (ZooKeeper closes it). nc without -q, or a monitoring script that never closes, leaves it half-open.
    const s = await server({ maxClientCnxns: '3' });
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const sock = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
        socks.push(sock);
        let text = '';
        sock.on('data', (d) => { text += d.toString(); });
        sock.on('error', () => undefined);
        await new Promise((r) => sock.once('connect', r));
        sock.write('ruok');
        await new Promise((r) => sock.once('end', r));
        expect(text).toBe('imok');
      }
      // The server's end is gone: writing to it draws a reset.
      await sleep(1500);
      const closed = await Promise.all(socks.map((sock) => new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 3000);
        sock.once('close', () => { clearTimeout(t); resolve(true); });
        sock.write('x');
        setTimeout(() => sock.write('y'), 200);
      })));
      const t0 = Date.now();
      const code = await s.stop();
      const stopMs = Date.now() - t0;
      expect({ closedByServer: closed, stopExitCode: code }, `SIGTERM stop took ${stopMs} ms (exit code null: it had to be killed)`)
        .toEqual({ closedByServer: socks.map(() => true), stopExitCode: 0 });
    } finally {
      for (const sock of socks) sock.destroy();
      await s.stop();
    }
  }, 30_000);

  it('a word not in the whitelist is refused; a whitelisted one works', async () => {
    const s = await server({ '4lw.commands.whitelist': 'srvr' });
    expect((await fourLetterWord(s.port, 'ruok')).text).toBe('ruok is not executed because it is not in the whitelist.\n');
    expect((await fourLetterWord(s.port, 'mntr')).text).toBe('mntr is not executed because it is not in the whitelist.\n');
    expect((await fourLetterWord(s.port, 'srvr')).text).toContain('Mode: standalone');
    await s.stop();
  });
});

describe('connection caps', () => {
  it('maxClientCnxns=5 refuses the 6th connection from one IP while 5 are open', async () => {
    const s = await server({ maxClientCnxns: '5' });
    const conns: RawConn[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const c = await RawConn.open(s.port);
        conns.push(c);
        expect((await c.handshake({ timeOut: 10_000 })).timeOut).toBeGreaterThan(0);
      }
      const sixth = await RawConn.open(s.port);
      conns.push(sixth);
      await sixth.write(frame(Buffer.alloc(44)));
      expect(await sixth.waitClosed(5000)).toBe(true);
      expect(sixth.frames).toHaveLength(0);
      // A four-letter word is a connection too.
      expect((await fourLetterWord(s.port, 'ruok')).text).toBe('');
      expect(logLines(s.logs(), 40).some((l) => /too many connections/.test(String(l.msg)))).toBe(true);
      // The five still work.
      for (const [i, c] of conns.slice(0, 5).entries()) {
        await c.write(requestFrame(100 + i, { type: OpCode.exists, path: '/', watch: false }));
        await c.waitFrames(2);
        expect(parseReply(c.frames[1])).toMatchObject({ xid: 100 + i, err: 0 });
      }
      // Once one closes, a new connection is accepted.
      conns[0].destroy();
      await conns[0].waitClosed();
      let ok = false;
      for (let attempt = 0; attempt < 50 && !ok; attempt++) {
        const c = await RawConn.open(s.port);
        conns.push(c);
        try {
          ok = (await c.handshake({ timeOut: 10_000 }, 1000)).timeOut > 0;
        } catch {
          await sleep(50);
        }
      }
      expect(ok).toBe(true);
    } finally {
      for (const c of conns) c.destroy();
      await s.stop();
    }
  });

  it('a client that never reads its replies is disconnected; others keep working; RSS stays bounded', async () => {
    const s = await server();
    const zk = await client(s);
    const slow = await RawConn.open(s.port);
    let stopOthers = false;
    try {
      const big = Buffer.alloc(1_000_000, 0x61);
      await zk.create('/big', big);
      await zk.create('/other', 'x');
      expect((await slow.handshake({ timeOut: 20_000 })).timeOut).toBeGreaterThan(0);
      slow.socket.pause(); // from here on, nothing is read: the kernel buffers fill, then the server's queue grows

      let otherOps = 0;
      const errors: unknown[] = [];
      const others = (async () => {
        for (let i = 0; !stopOthers && i < 100_000; i++) {
          try {
            await zk.setData('/other', `v${i}`);
            const { data } = await zk.getData('/other');
            if (data?.toString() !== `v${i}`) throw new Error(`read ${data?.toString()} after writing v${i}`);
            otherOps++;
          } catch (e) {
            errors.push(e);
            return;
          }
        }
      })();

      const getBig = (xid: number) => requestFrame(xid, { type: OpCode.getData, path: '/big', watch: false });
      let xid = 1;
      let maxRss = 0;
      const deadline = Date.now() + 20_000;
      // 200 requests answer 200 MB: far more than the 32 MiB the server may hold for one client.
      await slow.write(Buffer.concat(Array.from({ length: 200 }, () => getBig(xid++))));
      while (!slow.closed && Date.now() < deadline) {
        await sleep(100);
        maxRss = Math.max(maxRss, (await rssBytes(s.pid)) ?? 0);
        // Keep talking: once the server has closed its end, a write draws a reset.
        await slow.write(getBig(xid++));
      }
      expect(slow.closed, 'the server should close a connection whose replies pile up').toBe(true);
      expect(logLines(s.logs(), 40).some((l) => /does not read its replies/.test(String(l.msg)))).toBe(true);
      stopOthers = true;
      await others;
      expect(errors).toEqual([]);
      expect(otherOps).toBeGreaterThan(0);
      expect(s.alive()).toBe(true);
      expect(maxRss, `server RSS peaked at ${(maxRss / 1e6).toFixed(0)} MB`).toBeLessThan(400e6);
      // The server is still healthy.
      expect((await zk.getData('/big')).data?.length).toBe(1_000_000);
    } finally {
      stopOthers = true;
      slow.destroy();
      await zk.close();
      await s.stop();
    }
  }, 60_000);

  it('a frame over the 1 MiB limit closes that connection only', async () => {
    const zk = await client(main);
    const bad = await RawConn.open(main.port);
    const good = await RawConn.open(main.port);
    try {
      expect((await bad.handshake({ timeOut: 10_000 })).timeOut).toBeGreaterThan(0);
      expect((await good.handshake({ timeOut: 10_000 })).timeOut).toBeGreaterThan(0);
      const hdr = Buffer.alloc(4 + 64);
      hdr.writeInt32BE(1024 * 1024 + 1024 + 1, 0);
      hdr.writeInt32BE(7, 4);
      hdr.writeInt32BE(OpCode.setData, 8);
      await bad.write(hdr);
      expect(await bad.waitClosed(5000)).toBe(true);
      expect(bad.frames).toHaveLength(1); // only the connect response
      // Negative lengths too, on a fresh connection and before the handshake.
      const neg = await RawConn.open(main.port);
      await neg.write(Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4]));
      expect(await neg.waitClosed(5000)).toBe(true);
      // The others are untouched.
      await good.write(requestFrame(5, { type: OpCode.exists, path: '/', watch: false }));
      await good.waitFrames(2);
      expect(parseReply(good.frames[1])).toMatchObject({ xid: 5, err: 0 });
      await zk.create('/after-oversize', 'ok');
      expect((await zk.getData('/after-oversize')).data?.toString()).toBe('ok');
      expect(logLines(main.logs(), 40).some((l) => /frame length out of bounds/.test(String(l.msg)))).toBe(true);
    } finally {
      bad.destroy();
      good.destroy();
      await zk.close();
    }
  });
});

describe('idle and partial connections', () => {
  it('a connection that sends part of a word, part of a connect frame, or nothing is closed after the handshake bound', async () => {
    const s = await server();
    const conns: RawConn[] = [];
    try {
      const silent = await RawConn.open(s.port);
      const halfWord = await RawConn.open(s.port);
      const halfConnect = await RawConn.open(s.port);
      conns.push(silent, halfWord, halfConnect);
      await halfWord.write('ru');
      await halfConnect.write(frame(Buffer.alloc(44)).subarray(0, 20));
      const t0 = Date.now();
      // connect_handshake_ms_max is 10 s.
      const results = await Promise.all(conns.map((c) => c.waitClosed(15_000)));
      expect(results, `closed after ${Date.now() - t0} ms`).toEqual([true, true, true]);
      expect(Date.now() - t0).toBeGreaterThan(5000);
      expect(s.alive()).toBe(true);
      expect((await fourLetterWord(s.port, 'ruok')).text).toBe('imok');
    } finally {
      for (const c of conns) c.destroy();
      await s.stop();
    }
  }, 30_000);
});

describe('sessions on the wire', () => {
  it('re-attaching with a wrong password is refused (timeOut 0); the right one works', async () => {
    const first = await RawConn.open(main.port);
    const conns = [first];
    try {
      const resp = await first.handshake({ timeOut: 15_000 });
      expect(resp.timeOut).toBeGreaterThan(0);
      expect(resp.sessionId).not.toBe(0n);
      expect(resp.passwd.length).toBe(16);

      const wrong = Buffer.from(resp.passwd);
      wrong[0] ^= 0xff;
      const thief = await RawConn.open(main.port);
      conns.push(thief);
      const refused = await thief.handshake({ sessionId: resp.sessionId, passwd: wrong, timeOut: 15_000 });
      expect(refused.timeOut).toBe(0);
      expect(await thief.waitClosed(5000)).toBe(true);

      // An all-zero password and an empty one are wrong too.
      for (const passwd of [Buffer.alloc(16), Buffer.alloc(0)]) {
        const c = await RawConn.open(main.port);
        conns.push(c);
        expect((await c.handshake({ sessionId: resp.sessionId, passwd, timeOut: 15_000 })).timeOut).toBe(0);
      }

      // The refused attempts did not take the session from its connection.
      await first.write(requestFrame(1, { type: OpCode.exists, path: '/', watch: false }));
      await first.waitFrames(2);
      expect(parseReply(first.frames[1])).toMatchObject({ xid: 1, err: 0 });

      // The right password re-attaches (and moves the session to the new connection).
      const owner = await RawConn.open(main.port);
      conns.push(owner);
      const ok = await owner.handshake({ sessionId: resp.sessionId, passwd: resp.passwd, timeOut: 15_000 });
      expect(ok.timeOut).toBeGreaterThan(0);
      expect(ok.sessionId).toBe(resp.sessionId);
      await owner.write(requestFrame(1, { type: OpCode.exists, path: '/', watch: false }));
      await owner.waitFrames(2);
      expect(parseReply(owner.frames[1])).toMatchObject({ xid: 1, err: 0 });

      // An unknown session id is refused the same way.
      const stranger = await RawConn.open(main.port);
      conns.push(stranger);
      expect((await stranger.handshake({ sessionId: 0x0123456789abcdefn, passwd: resp.passwd, timeOut: 15_000 })).timeOut).toBe(0);
    } finally {
      for (const c of conns) c.destroy();
    }
  });

  it('replies come strictly in request order when reads are pipelined behind writes', async () => {
    const c = await RawConn.open(main.port);
    try {
      expect((await c.handshake({ timeOut: 15_000 })).timeOut).toBeGreaterThan(0);
      const base = `/order-${process.pid}`;
      const frames: Buffer[] = [];
      const expectations: { xid: number; op: string; check?: (rep: ReturnType<typeof parseReply>) => void }[] = [];
      let xid = 1;
      const push = (req: Parameters<typeof requestFrame>[1], op: string, check?: (rep: ReturnType<typeof parseReply>) => void) => {
        frames.push(requestFrame(xid, req));
        expectations.push({ xid, op, check });
        xid++;
      };
      push({ type: OpCode.create, path: base, data: Buffer.from('v0'), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 }, 'create',
        (r) => expect(r.err).toBe(0));
      for (let i = 1; i <= 150; i++) {
        push({ type: OpCode.getData, path: base, watch: false }, 'getData', (r) => {
          // Read-your-writes: this read was sent after setData v{i-1}, so it must see it.
          expect(r.err).toBe(0);
          const data = r.r.readBuffer();
          expect(data?.toString()).toBe(`v${i - 1}`);
          expect(readStat(r.r).version).toBe(i - 1);
        });
        push({ type: OpCode.setData, path: base, data: Buffer.from(`v${i}`), version: i - 1 }, 'setData', (r) => expect(r.err).toBe(0));
        push({ type: OpCode.exists, path: base, watch: false }, 'exists', (r) => {
          expect(r.err).toBe(0);
          expect(readStat(r.r).version).toBe(i);
        });
        if (i % 10 === 0) push({ type: OpCode.sync, path: base }, 'sync', (r) => expect(r.err).toBe(0));
        if (i % 7 === 0) push({ type: OpCode.create, path: `${base}/c${i}`, data: null, acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 }, 'create');
        if (i % 7 === 0) push({ type: OpCode.getChildren, path: base, watch: false }, 'getChildren', (r) => {
          expect(r.err).toBe(0);
          expect(r.r.readStringVector()).toContain(`c${i}`);
        });
        if (i % 13 === 0) push({ type: OpCode.delete, path: `${base}/missing`, version: -1 }, 'delete', (r) => expect(r.err).toBe(Err.NONODE));
      }
      // A ping in the middle is answered with xid -2 whenever: it is not part of the order.
      const all = Buffer.concat([...frames.slice(0, 50), requestFrame(-2, { type: OpCode.ping }), ...frames.slice(50)]);
      expect(await c.write(all)).toBe(true);
      await c.waitFrames(1 + expectations.length + 1, 20_000);
      const replies = c.frames.slice(1).map(parseReply).filter((r) => r.xid !== -2);
      expect(replies.map((r) => r.xid)).toEqual(expectations.map((e) => e.xid));
      for (const [i, r] of replies.entries()) {
        try { expectations[i].check?.(r); } catch (e) { throw new Error(`reply ${i} (xid ${r.xid}, ${expectations[i].op}): ${(e as Error).message}`); }
      }
      // zxids never go backwards along the connection.
      for (let i = 1; i < replies.length; i++) expect(replies[i].zxid >= replies[i - 1].zxid).toBe(true);
    } finally {
      c.destroy();
    }
  }, 30_000);
});
