// Journal nodes' Prometheus metrics, scraped from three real `quorate journal`
// processes (each with a metricsPort) while a writer writes: the committed
// txid and the epochs follow the writes; fsyncs and batches are counted; a
// node that promised a newer epoch to a writer that never got a majority
// refuses the current writer (fenced), cannot copy its edits, and shows how
// far behind it is; a node killed -9 and restarted catches up, and its
// catch-up steps and copied edits are counted; a metrics port already taken
// stops the node with the reason.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalNodeClient } from '../../src/client/journal/node-client.js';
import { QuorumJournalWriter } from '../../src/client/journal/quorum-writer.js';
import { JOURNAL_REFUSAL_REASONS } from '../../src/journal/journal-metrics.js';
import { CLI } from '../helpers/cli-process.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';
import { freePort } from '../helpers/ports.js';
import { scrape, type Scrape } from '../helpers/prom-text.js';

const recs = (n: number, tag: string) => Array.from({ length: n }, (_, k) => Buffer.from(`${tag}-${k}`));

async function until<T>(what: string, fn: () => Promise<T | null | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== null && v !== false) return v;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last === null ? '' : ` (last error: ${(last as Error).message})`}`);
}

describe('journal node metrics', () => {
  let c: JournalCluster;
  const writers: QuorumJournalWriter[] = [];
  const metricsOf = (id: number): Promise<Scrape> => scrape(c.metricsPorts[id - 1]);

  beforeAll(async () => {
    c = await startJournalNodes(3, { metrics: true });
    for (const j of ['m1', 'm2']) {
      const f = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', j]);
      expect(f.code, f.stdout + f.stderr).toBe(0);
    }
  }, 60_000);
  afterAll(async () => {
    for (const w of writers) await w.close().catch(() => undefined);
    await c?.stopAll();
  });

  it('starts at zero, with every refusal reason present and the node id as a label', async () => {
    const m = await metricsOf(1);
    expect(m.types.get('quorate_journal_committed_txid')).toBe('gauge');
    expect(m.types.get('quorate_journal_fsync_seconds')).toBe('histogram');
    expect(m.value('quorate_journal_committed_txid', { journal: 'm1', node: '1' })).toBe(0);
    expect(m.value('quorate_journal_promised_epoch', { journal: 'm1' })).toBe(0);
    expect(m.value('quorate_journal_lag_txids', { journal: 'm1' })).toBe(0);
    expect(m.all('quorate_journal_refusals_total').map((s) => s.labels.reason).sort()).toEqual([...JOURNAL_REFUSAL_REASONS].sort());
    expect(m.all('quorate_journal_refusals_total').every((s) => s.value === 0)).toBe(true);
    // The process's own metrics come along (an event loop that stalls shows here).
    expect(m.all('process_cpu_user_seconds_total')).toHaveLength(1);
  });

  it('follows a writer: epochs, a committed txid that grows, fsyncs and batch sizes', async () => {
    const w = await QuorumJournalWriter.open('m1', { nodes: c.nodes, commitDelayMs: 50 });
    writers.push(w);
    await w.append(recs(3, 'a'));
    const first = await until('node 1 to see txid 3 committed', async () => {
      const m = await metricsOf(1);
      return m.value('quorate_journal_committed_txid', { journal: 'm1' }) >= 3 ? m : null;
    });
    expect(first.value('quorate_journal_promised_epoch', { journal: 'm1' })).toBe(w.epoch);
    expect(first.value('quorate_journal_writer_epoch', { journal: 'm1' })).toBe(w.epoch);
    for (let b = 0; b < 4; b++) await w.append(recs(5, `b${b}`));
    const end = w.committedTxid;
    expect(end).toBe(23n);
    for (const id of [1, 2, 3]) {
      const m = await until(`node ${id} to see txid ${end} committed`, async () => {
        const s = await metricsOf(id);
        const batches = s.all('quorate_journal_batch_records_count', { journal: 'm1' })[0]?.value;
        return s.value('quorate_journal_committed_txid', { journal: 'm1' }) === Number(end) && batches === 5 ? s : null;
      });
      expect(m.value('quorate_journal_committed_txid', { journal: 'm1' })).toBeGreaterThan(first.value('quorate_journal_committed_txid', { journal: 'm1' }));
      expect(m.value('quorate_journal_last_txid', { journal: 'm1' })).toBe(23);
      expect(m.value('quorate_journal_lag_txids', { journal: 'm1' })).toBe(0);
      // Five batches: 3 edits, then 4 x 5.
      expect(m.value('quorate_journal_batch_records_count', { journal: 'm1' })).toBe(5);
      expect(m.value('quorate_journal_batch_records_sum', { journal: 'm1' })).toBe(23);
      expect(m.value('quorate_journal_batch_records_bucket', { journal: 'm1', le: '2' })).toBe(0);
      expect(m.value('quorate_journal_batch_records_bucket', { journal: 'm1', le: '5' })).toBe(5);
      expect(m.value('quorate_journal_batch_bytes_count', { journal: 'm1' })).toBe(5);
      // At least one fsync per write of edits; a few batches may share one.
      const syncs = m.value('quorate_journal_fsync_seconds_count', { journal: 'm1' });
      expect(syncs).toBeGreaterThanOrEqual(1);
      expect(syncs).toBeLessThanOrEqual(5);
      expect(m.value('quorate_journal_fsync_seconds_sum', { journal: 'm1' })).toBeGreaterThan(0);
    }
  });

  it('a node that promised a newer epoch alone refuses the writer (fenced) and shows its lag behind the committed txid', async () => {
    const w = writers[0];
    const n3 = new JournalNodeClient(c.nodes[2], 2000);
    // A writer that reached only node 3: its epoch is promised there and nowhere else.
    await n3.post('m1', 'new-epoch', { epoch: w.epoch + 1 });
    await n3.close();
    for (let b = 0; b < 3; b++) await w.append(recs(4, `c${b}`));
    expect(w.committedTxid).toBe(35n);
    const m3 = await until('node 3 to show its lag', async () => {
      const s = await metricsOf(3);
      return s.value('quorate_journal_lag_txids', { journal: 'm1' }) === 12 ? s : null;
    });
    expect(m3.value('quorate_journal_last_txid', { journal: 'm1' })).toBe(23);
    expect(m3.value('quorate_journal_promised_epoch', { journal: 'm1' })).toBe(w.epoch + 1);
    expect(m3.value('quorate_journal_refusals_total', { reason: 'fenced' })).toBeGreaterThanOrEqual(3);
    // Its catch-up may not copy a writer older than its promise: nothing copied.
    expect(m3.all('quorate_journal_catch_up_steps_total', { journal: 'm1' }).reduce((a, s) => a + s.value, 0)).toBe(0);
    const m1 = await metricsOf(1);
    expect(m1.value('quorate_journal_lag_txids', { journal: 'm1' })).toBe(0);
    expect(m1.value('quorate_journal_refusals_total', { reason: 'fenced' })).toBe(0);
  });

  it('counts a request for a journal that is not formatted', async () => {
    const before = (await metricsOf(2)).value('quorate_journal_refusals_total', { reason: 'not_formatted' });
    const n2 = new JournalNodeClient(c.nodes[1], 2000);
    await expect(n2.state('never-formatted')).rejects.toThrow(/not formatted/);
    await n2.close();
    expect((await metricsOf(2)).value('quorate_journal_refusals_total', { reason: 'not_formatted' })).toBe(before + 1);
  });

  it('a metricsPort already taken stops the node, naming the port and why', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-jm-'));
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const metricsPort = (taken.address() as net.AddressInfo).port;
    try {
      fs.writeFileSync(path.join(dir, 'c.yaml'), `cluster: t\njournal:\n  dataDir: ${dir}/j-{id}\n  nodes:\n    - { id: 1, host: 127.0.0.1, port: ${await freePort()}, metricsPort: ${metricsPort} }\n`);
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [CLI, 'journal', '--config', path.join(dir, 'c.yaml'), '--id', '1'], { timeout: 20_000 }, (err, _out, stderr) => resolve({ code: err === null ? 0 : (err.code as number | null), stderr }));
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`journal node 1's metricsPort: cannot serve metrics on 127.0.0.1:${metricsPort}: the port is in use`);
    } finally {
      taken.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a node killed -9 and restarted catches up from its peers: steps and edits counted, lag back to 0', async () => {
    const w = await QuorumJournalWriter.open('m2', { nodes: c.nodes, commitDelayMs: 50 });
    writers.push(w);
    await w.append(recs(10, 'd'));
    await until('node 2 to hold txid 10', async () => (await metricsOf(2)).value('quorate_journal_last_txid', { journal: 'm2' }) === 10);
    await c.procs[1].kill9();
    for (let b = 0; b < 5; b++) await w.append(recs(8, `e${b}`));
    expect(w.committedTxid).toBe(50n);
    await c.procs[1].restart();
    // The gauges read the state, which moves before its fsync ends; the counters count once it did.
    const m2 = await until('node 2 to catch up to txid 50', async () => {
      const s = await metricsOf(2);
      const copied = s.all('quorate_journal_catch_up_edits_total', { journal: 'm2' }).reduce((a, x) => a + x.value, 0);
      return copied >= 40 && s.value('quorate_journal_last_txid', { journal: 'm2' }) === 50 ? s : null;
    });
    expect(m2.value('quorate_journal_catch_up_steps_total', { journal: 'm2' })).toBeGreaterThanOrEqual(1);
    // Exactly the 40 edits it missed were copied (a restarted process counts from zero).
    expect(m2.value('quorate_journal_catch_up_edits_total', { journal: 'm2' })).toBe(40);
    expect(m2.value('quorate_journal_fsync_seconds_count', { journal: 'm2' })).toBeGreaterThanOrEqual(1);
    await until('node 2 to report no lag', async () => (await metricsOf(2)).value('quorate_journal_lag_txids', { journal: 'm2' }) === 0);
  }, 60_000);
});
