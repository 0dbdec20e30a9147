// The journal quorum with real processes: three `quorate journal` nodes on
// 127.0.0.1, the undici writer and reader. A writer superseded mid-stream is
// fenced and its acknowledged edits survive; a node killed -9 under load
// does not stop appends, and catches up on its own after a restart; bad
// input is refused with a clear 4xx and writes nothing.
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalNodeClient } from '../../src/client/journal/node-client.js';
import { JournalFencedError, QuorumJournalWriter } from '../../src/client/journal/quorum-writer.js';
import { tailJournal } from '../../src/client/journal/tail.js';
import { encodeBatch, batchChecksum } from '../../src/proto/journal-wire.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';
import { waitUntil } from '../helpers/wait.js';

const enc = (s: string) => Buffer.from(s);

/** Every committed edit from `from` up to `to`, read with the reader. */
async function readAll(c: JournalCluster, journal: string, from: bigint, to: bigint): Promise<Map<bigint, string>> {
  const out = new Map<bigint, string>();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    for await (const e of tailJournal(journal, from, { nodes: c.nodes, waitMs: 200, signal: ac.signal })) {
      out.set(e.txid, e.payload.toString());
      if (e.txid >= to) break;
    }
  } finally { clearTimeout(timer); }
  return out;
}

describe('journal nodes (3 real processes)', () => {
  let c: JournalCluster;
  beforeAll(async () => {
    c = await startJournalNodes(3);
    const f = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', 'svc']);
    expect(f.code, f.stdout + f.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => { await c?.stopAll(); });

  it('fences writer A when writer B takes a new epoch mid-stream; B sees every edit A had acknowledged', async () => {
    const a = await QuorumJournalWriter.open('svc', { nodes: c.nodes });
    const acked = new Map<bigint, string>();
    let fenced: unknown = null;
    const stream = (async () => {
      for (let i = 0; i < 100_000 && fenced === null; i++) {
        const batch = [enc(`A-${i}-0`), enc(`A-${i}-1`)];
        // Pipelined: several batches in flight at the takeover.
        const p = a.append(batch).then((r) => { acked.set(r.firstTxid, batch[0].toString()); acked.set(r.lastTxid, batch[1].toString()); }, (e) => { fenced = e; });
        if (i % 4 === 3) await p;
      }
    })();
    await waitUntil('A acknowledged 50 batches', 15_000, async () => acked.size >= 100);
    const b = await QuorumJournalWriter.open('svc', { nodes: c.nodes });
    await stream;
    expect(fenced).toBeInstanceOf(JournalFencedError);
    expect(String((fenced as Error).message)).toMatch(/fenced/);
    await expect(a.append([enc('late')])).rejects.toBeInstanceOf(JournalFencedError);
    expect(b.epoch).toBeGreaterThan(a.epoch);
    const first = await b.append([enc('B-0')]);
    // Everything A was told is written comes before B's first txid, as A wrote it.
    const maxAcked = [...acked.keys()].reduce((m, t) => (t > m ? t : m), 0n);
    expect(first.firstTxid).toBeGreaterThan(maxAcked);
    await b.close();
    const history = await readAll(c, 'svc', 1n, first.firstTxid);
    for (const [t, v] of acked) expect(history.get(t), `txid ${t}`).toBe(v);
    expect(history.get(first.firstTxid)).toBe('B-0');
    await a.close().catch(() => undefined);
  }, 60_000);

  it('goes on appending with a node killed -9 under load; the node catches up on its own after a restart', async () => {
    // Generous timeouts: this is about going on without a node, not about timing (the suite runs loaded).
    const w = await QuorumJournalWriter.open('svc', { nodes: c.nodes, timeoutMs: 10_000 });
    let i = 0;
    const appendSome = async (n: number) => { for (let k = 0; k < n; k++, i++) await w.append([enc(`K-${i}`)]); };
    await appendSome(50);
    await c.procs[2].kill9();
    try {
      await appendSome(100);
      // A roll while the node is down: it misses a finalize and a new segment.
      await w.roll();
      await appendSome(100);
    } finally {
      await c.procs[2].restart();
    }
    // It catches up while appends go on, without waiting for a roll.
    const load = appendSome(200);
    const node3 = new JournalNodeClient(c.nodes[2], 2000);
    try {
      await load;
      const target = w.committedTxid;
      await waitUntil('node 3 caught up', 15_000, async () => (await node3.state('svc')).committedTxid >= target - 1n);
      const m1 = await new JournalNodeClient(c.nodes[0], 2000).manifest('svc');
      const m3 = await node3.manifest('svc');
      // The finalized segments node 3 missed are there, the same as on node 1.
      const finalized = (m: typeof m1) => m.segments.filter((s) => !s.inProgress).map((s) => `${s.startTxid}-${s.endTxid}@${s.writerEpoch}`);
      expect(finalized(m3)).toEqual(finalized(m1));
      // And what it serves to readers is what the others serve.
      const s3 = await node3.state('svc');
      const from = s3.committedTxid - 300n;
      // Its committed txid may still move after the state was read: ask for those 301 edits exactly.
      const got = await node3.edits('svc', from, 301);
      const other = await new JournalNodeClient(c.nodes[0], 2000).edits('svc', from, got.edits.length);
      expect(got.edits.map(String)).toEqual(other.edits.map(String));
      expect(got.edits.length).toBe(301);
      expect(c.procs[2].logs()).toMatch(/caught up from a peer|filled a gap/);
    } finally {
      await node3.close();
      await w.close();
    }
  }, 90_000);

  it('serializes a journal\'s operations: of two concurrent newEpoch calls for one epoch, one passes', async () => {
    const c1 = new JournalNodeClient(c.nodes[0], 2000);
    const c2 = new JournalNodeClient(c.nodes[0], 2000);
    try {
      const epoch = (await c1.state('svc')).promisedEpoch + 1;
      const r = await Promise.allSettled([c1.newEpoch('svc', epoch), c2.newEpoch('svc', epoch), c1.newEpoch('svc', epoch), c2.newEpoch('svc', epoch)]);
      expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      for (const x of r) if (x.status === 'rejected') expect(String(x.reason.message)).toMatch(/not above the promised epoch/);
    } finally { await c1.close(); await c2.close(); }
  });

  it('readers never see past the committed txid; a retried batch is taken once, a different one refused', async () => {
    const w = await QuorumJournalWriter.open('svc', { nodes: c.nodes, commitDelayMs: 600_000 });
    const node = new JournalNodeClient(c.nodes[1], 2000);
    try {
      const a = await w.append([enc('c1')]);
      const b = await w.append([enc('c2')]);
      // Node 2 has b on disk (or will, if the other two acknowledged first), but only a is known committed:
      // b was acknowledged after it was sent.
      await waitUntil('node 2 has b', 15_000, async () => ((await node.state('svc')).lastSegment?.endTxid ?? 0n) >= b.lastTxid);
      const got = await node.edits('svc', a.firstTxid, 10);
      expect(got.committedTxid).toBe(a.lastTxid);
      expect(got.edits.map(String)).toEqual(['c1']);
      const c3 = await w.append([enc('c3')]);
      await waitUntil('b visible', 15_000, async () => (await node.edits('svc', b.firstTxid, 10)).edits.length === 1);
      expect((await node.edits('svc', b.firstTxid, 10)).edits.map(String)).toEqual(['c2']);
      // The same batch again (a pipelined retry): accepted, written once; other contents at that txid: refused.
      const st = await node.state('svc');
      const body = encodeBatch([enc('c3')]);
      const q = { epoch: w.epoch, segment: st.lastSegment!.startTxid, first: c3.firstTxid, committed: b.lastTxid, checksum: batchChecksum([enc('c3')]) };
      await node.journal('svc', q, body);
      await expect(node.journal('svc', { ...q, checksum: batchChecksum([enc('other')]) }, encodeBatch([enc('other')]))).rejects.toThrow(/already written in epoch .* with other contents/);
      expect((await node.state('svc')).lastSegment!.endTxid).toBe(c3.lastTxid);
    } finally {
      await node.close();
      await w.close();
    }
  });

  it('a stopped minority does not hold up acknowledgments; a stopped majority fences the writer; the reader goes on while a node is gone', async () => {
    // Long enough that a loaded machine does not fence it by itself; a stopped majority still does.
    const w = await QuorumJournalWriter.open('svc', { nodes: c.nodes, timeoutMs: 3000 });
    const ac = new AbortController();
    const seen: bigint[] = [];
    const start = w.committedTxid + 1n;
    const reader = (async () => {
      for await (const e of tailJournal('svc', start, { nodes: c.nodes, waitMs: 200, timeoutMs: 500, signal: ac.signal })) seen.push(e.txid);
    })();
    try {
      process.kill(c.procs[0].pid, 'SIGSTOP');
      let last = 0n;
      for (let i = 0; i < 50; i++) last = (await w.append([enc(`s${i}`)])).lastTxid;
      process.kill(c.procs[1].pid, 'SIGSTOP');
      await expect(w.append([enc('alone')])).rejects.toBeInstanceOf(JournalFencedError);
      process.kill(c.procs[0].pid, 'SIGCONT');
      process.kill(c.procs[1].pid, 'SIGCONT');
      await waitUntil('the reader saw every acknowledged edit', 20_000, async () => seen.length > 0 && seen[seen.length - 1] >= last);
      expect(seen).toEqual(Array.from({ length: seen.length }, (_, k) => start + BigInt(k)));
    } finally {
      for (const p of c.procs) { try { process.kill(p.pid, 'SIGCONT'); } catch { /* gone */ } }
      ac.abort();
      await reader;
      await w.close().catch(() => undefined);
    }
  }, 60_000);

  it('a node stopped while the committed txid was sent on its own learns it once it has the batch (it is not left behind until the next write)', async () => {
    const w = await QuorumJournalWriter.open('late', { nodes: c.nodes, formatIfNew: true, timeoutMs: 5000, commitDelayMs: 20 });
    const [n1, n2, n3] = c.nodes.map((n) => new JournalNodeClient(n, 2000));
    try {
      await w.append([enc('first')]);
      process.kill(c.procs[2].pid, 'SIGSTOP');
      const { lastTxid } = await w.append([enc('second'), enc('third')]);
      // The notice goes to every node while node 3 is stopped: nodes 1 and 2 take it.
      await waitUntil('nodes 1 and 2 to hold the committed txid', 10_000, async () => {
        const st = await Promise.all([n1, n2].map((n) => n.state('late')));
        return st.every((x) => x.committedTxid === lastTxid);
      });
      process.kill(c.procs[2].pid, 'SIGCONT');
      await waitUntil('node 3 to hold the committed txid', 10_000, async () => (await n3.state('late')).committedTxid === lastTxid);
    } finally {
      try { process.kill(c.procs[2].pid, 'SIGCONT'); } catch { /* gone */ }
      await Promise.all([n1, n2, n3].map((n) => n.close()));
      await w.close().catch(() => undefined);
    }
  }, 40_000);

  describe('bad input: a clear 4xx, nothing written', () => {
    const base = () => `http://127.0.0.1:${c.nodes[0].port}`;
    const call = async (method: 'GET' | 'POST', p: string, body?: string | Buffer, type = 'application/json') => {
      const r = await request(`${base()}${p}`, { method, body, headers: body === undefined ? {} : { 'content-type': type } });
      const text = await r.body.text();
      return { status: r.statusCode, error: (JSON.parse(text) as { error?: string }).error ?? '' };
    };
    // A journal of its own, written and closed: the other tests' background work (catch-up) stays out of it.
    const snapshot = () => {
      const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(d, e.name)) : [`${path.join(d, e.name)}:${fs.statSync(path.join(d, e.name)).size}`]);
      return [...walk(c.dir).filter((f) => f.includes('/bad/')), ...fs.readdirSync(c.dir)].sort();
    };

    it('refuses each kind of bad request, naming what was wrong', async () => {
      const w = await QuorumJournalWriter.open('bad', { nodes: c.nodes, formatIfNew: true });
      await w.append([enc('one')]);
      await w.append([enc('two')]);
      await w.close();
      // The advisory committed-txid files are written a little later, off the request's path: wait for them on every node.
      await waitUntil('every node\'s committed-txid file says 2', 15_000, async () =>
        c.nodes.every((_n, i) => { try { return fs.readFileSync(path.join(c.dir, `node-${i + 1}`, 'bad', 'committed-txid'), 'utf8').trim() === '2'; } catch { return false; } }));
      const before = snapshot();
      const st = await new JournalNodeClient(c.nodes[0], 2000).state('bad');
      const epoch = st.promisedEpoch;
      const seg = String(st.lastSegment?.startTxid ?? 1n);
      const batch = encodeBatch([enc('x')]);
      const q = (o: Record<string, string>) => new URLSearchParams({ epoch: String(epoch), segment: seg, first: '1', committed: '0', checksum: batchChecksum([enc('x')]), ...o });
      const cases: [string, Promise<{ status: number; error: string }>, number, RegExp][] = [
        ['not JSON', call('POST', '/v1/journals/bad/new-epoch', '{"epoch":'), 400, /not JSON/],
        ['unknown key', call('POST', '/v1/journals/bad/new-epoch', '{"epoch":99,"x":1}'), 400, /unknown key/],
        ['negative epoch', call('POST', '/v1/journals/bad/new-epoch', '{"epoch":-1}'), 400, /epoch/],
        ['txid as a number', call('POST', '/v1/journals/bad/start-segment', `{"epoch":${epoch},"txid":5}`), 400, /txid/],
        ['unformatted journal', call('GET', '/v1/journals/nosuch'), 404, /not formatted/],
        ['bad journal name', call('GET', '/v1/journals/a%20b'), 400, /journal name/],
        ['path traversal', call('POST', '/v1/journals/..%2F..%2Fetc/format', '{}'), 400, /journal name/],
        ['dot-dot name', call('POST', '/v1/journals/a..b/format', '{}'), 400, /\.\./],
        ['stale epoch', call('POST', '/v1/journals/bad/journal?' + q({ epoch: '0' }), batch, 'application/octet-stream'), 403, /fenced.*epoch 0.*promised epoch/],
        ['txid gap', call('POST', '/v1/journals/bad/journal?' + q({ first: '999999' }), batch, 'application/octet-stream'), 409, /gap|not open/],
        ['checksum mismatch', call('POST', '/v1/journals/bad/journal?' + q({ checksum: '00000000' }), batch, 'application/octet-stream'), 400, /checksum/],
        ['malformed batch', call('POST', '/v1/journals/bad/journal?' + q({}), Buffer.from([0, 0, 0, 2, 0, 0, 0, 9, 1]), 'application/octet-stream'), 400, /ends inside edit/],
        ['oversize batch', call('POST', '/v1/journals/bad/journal?' + q({}), Buffer.alloc(17 * 1024 * 1024), 'application/octet-stream'), 413, /bytes/],
        ['missing query', call('POST', '/v1/journals/bad/journal', batch, 'application/octet-stream'), 400, /query/],
        ['unknown endpoint', call('POST', '/v1/journals/bad/explode', '{}'), 404, /no such endpoint/],
        ['wrong method', call('DELETE' as 'GET', '/v1/journals/svc'), 405, /not allowed/],
        ['format over data', call('POST', '/v1/journals/bad/format', '{}'), 409, /holds data/],
      ];
      for (const [what, p, status, re] of cases) {
        const r = await p;
        expect(r.status, `${what}: ${r.error}`).toBe(status);
        expect(r.error, what).toMatch(re);
      }
      expect(snapshot()).toEqual(before);
      expect(fs.existsSync(path.join(c.dir, '..', 'etc'))).toBe(false);
    }, 30_000);

    it('format --force of a journal the node has loaded answers, and the node serves the empty journal (it deadlocked, then answered 404)', async () => {
      const w = await QuorumJournalWriter.open('scratch', { nodes: c.nodes, formatIfNew: true });
      await w.append([Buffer.from('x'), Buffer.from('y')]);
      await w.close();
      const r = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', 'scratch', '--force', '--node', '3']);
      expect(r.stdout).toBe('node 3: formatted scratch\n');
      expect(r.code).toBe(0);
      const client = new JournalNodeClient(c.nodes[2], 2000);
      try {
        // It answers for the journal again (it said 404 until restart); the empty copy then catches up from its peers.
        await waitUntil('node 3\'s empty copy caught up to txid 2', 15_000, async () => (await client.state('scratch')).committedTxid === 2n);
      } finally { await client.close(); }
    }, 30_000);

    it('the CLI refuses to format over data and says so', async () => {
      const r = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', 'svc']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/node 1: .*holds data.*--force/);
      const s = await c.cli(['journal', 'status', '--config', c.cfgPath, '--journal', 'svc']);
      expect(s.code).toBe(0);
      expect(s.stdout).toMatch(/^NODE\s+ADDRESS\s+PROMISED/);
    });
  });
});
