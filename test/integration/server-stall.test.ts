// A server process that is held up (here: SIGSTOP, as a stalled disk write
// or a long GC pause would) heard nobody meanwhile: the pings that arrived
// are still unread in its sockets. When it runs again, its session timer
// fires before it reads them, so it must not expire those sessions for the
// time it was away. ZooKeeper touches sessions on another thread and has no
// such window; our server has one event loop, so it gives the time back.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateMode, ZkClient } from '../../src/client/index.js';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { logLines } from '../helpers/raw-zk.js';

const started: QuorateServer[] = [];
afterAll(async () => {
  for (const s of started) {
    try { process.kill(s.pid, 'SIGCONT'); } catch { /* gone */ }
    await s.stop();
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a held-up server', () => {
  it('does not expire a session for the time it was stopped', async () => {
    const s = await startQuorateServer({ cfg: { tickTime: '500' } });
    started.push(s);
    const timeoutMs = 2000;
    const zk = new ZkClient({ connectString: s.connectString, sessionTimeoutMs: timeoutMs, requestTimeoutMs: 10_000, connectTimeoutMs: 1000 });
    await zk.connect({ timeoutMs: 10_000 });
    try {
      const sessionId = zk.sessionId;
      await zk.create('/held', Buffer.from('x'), { mode: CreateMode.EPHEMERAL });
      process.kill(s.pid, 'SIGSTOP');
      await sleep(2 * timeoutMs);
      process.kill(s.pid, 'SIGCONT');
      // The client re-attaches on a new connection (its old one timed out while the server was stopped).
      const deadline = Date.now() + 15_000;
      while (zk.state !== 'connected' && zk.state !== 'expired' && Date.now() < deadline) await sleep(50);
      expect(zk.state).toBe('connected');
      expect(zk.sessionId).toBe(sessionId);
      const st = await zk.exists('/held');
      expect(st?.ephemeralOwner).toBe(sessionId);
      const warn = logLines(s.logs(), 40).find((l) => l.msg === 'server was held up; session deadlines extended by that time');
      expect(warn?.stalledMs).toBeGreaterThan(timeoutMs);
      // A session whose client is really gone still expires, a timeout later.
      const other = new ZkClient({ connectString: s.connectString, sessionTimeoutMs: timeoutMs, connectTimeoutMs: 1000 });
      await other.connect({ timeoutMs: 10_000 });
      await other.create('/gone', null, { mode: CreateMode.EPHEMERAL });
      other.testHooks.pausePings(true);
      const gone = Date.now() + 15_000;
      while ((await zk.exists('/gone')) !== null && Date.now() < gone) await sleep(100);
      expect(await zk.exists('/gone')).toBeNull();
      await other.close().catch(() => undefined);
    } finally {
      await zk.close();
    }
  }, 40_000);
});
