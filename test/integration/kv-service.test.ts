// The example service as a replicated key-value store over three real journal
// nodes, its roles set by hand (POST /role, as a controller's hooks do): the
// active answers writes once durable; a standby tails and answers reads with
// its lag and refuses writes with 503 naming the active; promotion of the
// standby fences the old active (its next write is refused, never
// acknowledged) and the new active holds every acknowledged write; a
// restarted instance catches up from its snapshot plus the journal.
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tailJournal } from '../../src/client/journal/tail.js';
import { startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { checkC4 } from '../helpers/ha-cluster.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';
import { freePort } from '../helpers/ports.js';

const EXAMPLE = path.resolve(__dirname, '../../dist/examples/example-service.js');

let jc: JournalCluster;
const svc: Record<string, { port: number; proc: CliProcess }> = {};

async function startService(id: string, extra: string[] = []): Promise<void> {
  const port = svc[id]?.port ?? await freePort();
  const jn = jc.nodes.map((n) => `${n.id}@${n.host}:${n.port}`).join(',');
  const proc = await startCliProcess([], port, {}, [EXAMPLE, '--instance', id, '--port', String(port), '--journal-nodes', jn, '--journal', 'kv', '--data-dir', path.join(jc.dir, `svc-${id}`), '--snapshot-every', '5', ...extra]);
  svc[id] = { port, proc };
}

async function call(id: string, method: 'GET' | 'PUT' | 'DELETE' | 'POST', p: string, body?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${svc[id].port}${p}`, { method, body, signal: AbortSignal.timeout(10_000) });
  return { status: r.statusCode, text: await r.body.text(), headers: r.headers };
}

const setRole = (id: string, role: 'active' | 'standby', epoch: number) => call(id, 'POST', '/role', JSON.stringify({ role, epoch, token: String(epoch) }));

async function until<T>(what: string, f: () => Promise<T | null | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await f().catch(() => null);
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

beforeAll(async () => {
  jc = await startJournalNodes(3);
  await startService('a');
  await startService('b');
}, 60_000);

afterAll(async () => {
  for (const s of Object.values(svc)) await s.proc.stop();
  await jc?.stopAll();
});

describe('the example key-value service', () => {
  it('writes through the active, reads on a standby with its lag, refuses writes on a standby with the active\'s address', async () => {
    expect((await setRole('a', 'active', 1)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await call('a', 'PUT', `/kv/k${i}`, `v${i}`)).status).toBe(200);
    expect((await call('a', 'DELETE', '/kv/k0')).status).toBe(200);
    const got = await call('a', 'GET', '/kv/k7');
    expect(got).toMatchObject({ status: 200, text: 'v7' });
    expect(got.headers['x-quorate-role']).toBe('active');
    expect((await call('a', 'GET', '/kv/k0')).status).toBe(404);

    // The standby applies what the journal committed.
    const b = await until('b applied k19', async () => { const r = await call('b', 'GET', '/kv/k19'); return r.status === 200 ? r : null; });
    expect(b.text).toBe('v19');
    expect(b.headers['x-quorate-role']).toBe('standby');
    expect(Number(b.headers['x-quorate-lag'])).toBeGreaterThanOrEqual(0);
    const refused = await call('b', 'PUT', '/kv/x', 'y');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.text).active).toBe(`http://127.0.0.1:${svc.a.port}`);
    const health = JSON.parse((await call('b', 'GET', '/health')).text);
    expect(health).toMatchObject({ ok: true, role: 'standby' });
  });

  it('a promoted standby fences the old active and holds every acknowledged write', async () => {
    // Writes race the promotion: each acknowledged one must survive it.
    const acked = new Map<string, string>();
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop && i < 2000; i++) {
        const r = await call('a', 'PUT', `/kv/race${i % 30}`, `a-${i}`).catch(() => null);
        if (r?.status === 200) acked.set(`race${i % 30}`, `a-${i}`);
        else if (r?.status === 503) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    expect((await setRole('b', 'active', 2)).status).toBe(200);
    stop = true;
    await writer;
    // The old active's next write is refused (fenced), never acknowledged.
    const late = await call('a', 'PUT', '/kv/late', 'x');
    expect(late.status).toBe(503);
    expect(JSON.parse((await call('a', 'GET', '/role')).text).role).toBe('standby');
    for (const [k, v] of acked) expect((await call('b', 'GET', `/kv/${k}`)).text, k).toBe(v);
    expect((await call('b', 'GET', '/kv/k19')).text).toBe('v19');
    expect((await call('b', 'PUT', '/kv/after', 'b1')).status).toBe(200);
    // The old active, now a standby, follows the new one.
    await until('a sees the write of b', async () => (await call('a', 'GET', '/kv/after')).text === 'b1');
    const redirect = JSON.parse((await call('a', 'PUT', '/kv/y', 'z')).text);
    expect(redirect.active).toBe(`http://127.0.0.1:${svc.b.port}`);
  });

  it('a restarted instance resumes from its snapshot and the journal', async () => {
    await svc.a.proc.stop();
    expect(fs.existsSync(path.join(jc.dir, 'svc-a', 'snapshot.json'))).toBe(true);
    for (let i = 0; i < 10; i++) expect((await call('b', 'PUT', `/kv/later${i}`, `l${i}`)).status).toBe(200);
    await startService('a');
    await until('a caught up', async () => (await call('a', 'GET', '/kv/later9')).text === 'l9');
    const all = JSON.parse((await call('a', 'GET', '/kv')).text);
    const ref = JSON.parse((await call('b', 'GET', '/kv')).text);
    expect(all.data).toEqual(ref.data);
  });

  it('no two writers had edits accepted in one epoch, nor an older epoch after a newer (C4)', async () => {
    const history: { txid: bigint; instance: string; epoch: number; seq: number }[] = [];
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 2000);
    for await (const e of tailJournal('kv', 1n, { nodes: jc.nodes, waitMs: 200, signal: ac.signal })) history.push({ txid: e.txid, ...JSON.parse(e.payload.toString()) });
    clearTimeout(t);
    expect(history.length).toBeGreaterThan(30);
    expect(checkC4(history)).toEqual([]);
  });

  it('an active that loses its journal majority steps down and says so on /health until its controller demotes it; a standby cut off is unhealthy', async () => {
    await Promise.all([jc.procs[1].stop(), jc.procs[2].stop()]);
    try {
      const r = await call('b', 'PUT', '/kv/lost', 'x');
      expect(r.status).toBe(503);
      const h = await call('b', 'GET', '/health');
      expect(h.status).toBe(503);
      expect(JSON.parse(h.text).reason).toMatch(/asked to be active, but stepped down: fenced by the journal/);
      // A standby cut off from the journal is unhealthy too: its controller must not race only to fail.
      const cut = await until('a standby unhealthy without the journal', async () => { const r = await call('a', 'GET', '/health'); return r.status === 503 ? r : null; }, 8000);
      expect(JSON.parse(cut.text).reason).toMatch(/no majority of the journal nodes answered/);
    } finally {
      await Promise.all([jc.procs[1].restart(), jc.procs[2].restart()]);
    }
    expect((await setRole('b', 'standby', 2)).status).toBe(200);
    await until('b healthy again', async () => (await call('b', 'GET', '/health')).status === 200);
    await until('a healthy again', async () => (await call('a', 'GET', '/health')).status === 200);
    expect((await setRole('b', 'active', 3)).status).toBe(200);
    expect((await call('b', 'PUT', '/kv/back', 'y')).status).toBe(200);
  });

  it('refuses bad input with a clear answer', async () => {
    expect((await call('b', 'PUT', '/kv/%E0%A4%A', 'x')).status).toBe(400);
    expect((await call('b', 'POST', '/kv/x')).status).toBe(405);
    expect((await call('b', 'POST', '/role', '{"role":"boss"}')).status).toBe(400);
  });
});
