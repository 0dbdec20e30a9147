// Resident memory of a server holding a given tree and number of sessions:
// RSS (VmRSS) on a fresh server, then after creating `znodes` znodes of
// `znodeBytes` each, then with `sessions` client sessions open at once (one
// TCP connection each, from 127.0.0.1; both servers run maxClientCnxns=0).
// Bounded in time: connecting gives up after `timeBudgetMs`.
import { performance } from 'node:perf_hooks';
import { ZkClient, CreateMode } from '../../src/client/index.js';
import { closeClients, connectClient } from './load.js';
import { procRssMb } from './proc.js';
import type { BenchServer } from './servers.js';
import { round1 } from './stats.js';

export interface MemoryResult {
  /** RSS of the fresh server, before any request. */
  rssMbIdle: number | null;
  /** After the znodes were created (one session open). */
  rssMbWithZnodes: number | null;
  /** After the znodes and with all sessions open: the figure to compare. */
  rssMb: number | null;
  znodes: number;
  znodeBytes: number;
  sessionsRequested: number;
  sessionsOpen: number;
  znodesSeconds: number;
  sessionsSeconds: number;
  note?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureMemory(
  server: BenchServer, opts: { znodes: number; znodeBytes: number; sessions: number; settleMs: number; timeBudgetMs: number },
): Promise<MemoryResult> {
  await sleep(opts.settleMs);
  const rssMbIdle = procRssMb(server.pid);
  const zk = await connectClient(server.connectString);
  const sessions: ZkClient[] = [];
  try {
    const t0 = performance.now();
    await zk.create('/mem', null, { mode: CreateMode.PERSISTENT });
    const data = Buffer.alloc(opts.znodeBytes, 0x6d);
    let next = 0;
    const worker = async () => {
      while (next < opts.znodes) {
        const i = next++;
        await zk.create(`/mem/n${String(i).padStart(6, '0')}`, data, { mode: CreateMode.PERSISTENT });
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    const count = await zk.getAllChildrenNumber('/mem');
    if (count !== opts.znodes) throw new Error(`expected ${opts.znodes} znodes under /mem, found ${count}`);
    const znodesSeconds = (performance.now() - t0) / 1000;
    await sleep(opts.settleMs);
    const rssMbWithZnodes = procRssMb(server.pid);

    const t1 = performance.now();
    const deadline = t1 + opts.timeBudgetMs;
    let failures = 0;
    let firstFailure: string | undefined;
    const BATCH = 50;
    while (sessions.length < opts.sessions && performance.now() < deadline && failures < 50) {
      const n = Math.min(BATCH, opts.sessions - sessions.length);
      const got = await Promise.allSettled(Array.from({ length: n }, () => connectClient(server.connectString, 30_000)));
      for (const g of got) {
        if (g.status === 'fulfilled') sessions.push(g.value);
        else { failures++; firstFailure ??= (g.reason as Error).message; }
      }
    }
    const sessionsSeconds = (performance.now() - t1) / 1000;
    // Every session does one request, so that the server holds it fully set up.
    await Promise.all(sessions.map((s, i) => s.exists(`/mem/n${String(i % opts.znodes).padStart(6, '0')}`)));
    await sleep(opts.settleMs);
    const rssMb = procRssMb(server.pid);
    const r: MemoryResult = {
      rssMbIdle, rssMbWithZnodes, rssMb, znodes: opts.znodes, znodeBytes: opts.znodeBytes,
      sessionsRequested: opts.sessions, sessionsOpen: sessions.length + 1,
      znodesSeconds: round1(znodesSeconds), sessionsSeconds: round1(sessionsSeconds),
    };
    if (failures > 0 || sessions.length < opts.sessions) r.note = `${opts.sessions - sessions.length} sessions not opened (${failures} failures; first: ${firstFailure ?? 'time budget'})`;
    return r;
  } finally {
    await closeClients(sessions, 10_000);
    await closeClients([zk], 5000);
  }
}
