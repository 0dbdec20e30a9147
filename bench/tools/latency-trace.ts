// Where a write's time goes in our 3-server quorum at one request in flight:
// starts an ensemble with QUORATE_LATENCY_TRACE set (each server marks the
// steps of each write and its GC pauses, see src/io/latency-trace.ts), sends
// creates and setData one at a time through a follower and through the leader,
// then joins the client's send and receive times with the servers' marks by
// zxid and prints, per path and operation, the hops at the median and over the
// slowest 1% of requests, and the GC pauses that overlapped those.
//   node dist/bench/tools/latency-trace.js [--ops N] [--warmup N] [--keep DIR]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { constants as perfConstants, performance } from 'node:perf_hooks';
import type { ZkClient } from '../../src/client/index.js';
import { startBenchEnsemble } from '../lib/ensemble.js';
import { closeClients, connectClient, PAYLOAD_64 } from '../lib/load.js';
import { killAllServers } from '../lib/servers.js';

interface Mark { t: number; k: string; z?: string; p?: number; ms?: number; kind?: number; max?: number; p99?: number; stats?: Record<string, number> }
interface Sample { t0: number; t1: number; zxid: string; server: number }

const wall = () => performance.timeOrigin + performance.now();

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) { process.stderr.write(`latency-trace: --${name} needs a positive integer\n`); process.exit(2); }
  return v;
}

async function run(zk: ZkClient, server: number, n: number, tag: string, op: 'create' | 'setData'): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const p = `/lt/${tag}-${i}`;
    const t0 = wall();
    if (op === 'create') await zk.create(p, PAYLOAD_64);
    else await zk.setData(p, PAYLOAD_64, -1);
    const t1 = wall();
    out.push({ t0, t1, zxid: zk.lastZxidSeen.toString(16), server });
  }
  return out;
}

function q(v: number[], p: number): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

/** The first mark of kind k on server s at or after t (binary search over the server's marks of that kind). */
class Marks {
  private byKind = new Map<string, number[]>();
  private byZxid = new Map<string, number>();
  constructor(readonly all: Mark[]) {
    for (const m of all) {
      if (m.z !== undefined) {
        const key = `${m.k}:${m.z}`;
        if (!this.byZxid.has(key)) this.byZxid.set(key, m.t);
      } else {
        let a = this.byKind.get(m.k);
        if (a === undefined) this.byKind.set(m.k, (a = []));
        a.push(m.t);
      }
    }
    for (const a of this.byKind.values()) a.sort((x, y) => x - y);
  }
  at(k: string, z: string): number { return this.byZxid.get(`${k}:${z}`) ?? NaN; }
  firstAfter(k: string, t: number): number {
    const a = this.byKind.get(k) ?? [];
    let lo = 0, hi = a.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid] < t) lo = mid + 1; else hi = mid; }
    return lo < a.length ? a[lo] : NaN;
  }
}

function hops(s: Sample, servers: Map<number, Marks>, leader: number): Record<string, number> {
  const L = servers.get(leader)!;
  const S = servers.get(s.server)!;
  const followers = [...servers.keys()].filter((id) => id !== leader);
  const z = s.zxid;
  const req = S.firstAfter('req', s.t0);
  const prop = L.at('prop', z);
  const lapply = L.at('apply', z);
  // The follower that matters: the serving one, or (through the leader) the first to ack.
  const fid = s.server !== leader ? s.server : followers.reduce((a, b) => (servers.get(a)!.at('dur', z) <= servers.get(b)!.at('dur', z) ? a : b));
  const F = servers.get(fid)!;
  const fprop = F.at('proposal', z);
  const fdur = F.at('dur', z);
  const sapply = S.at('apply', z);
  const reply = S.firstAfter('reply', sapply);
  return {
    total: s.t1 - s.t0,
    'client->req': req - s.t0,
    'req->propose': prop - req,
    'leader fsync': L.at('dur', z) - prop,
    'propose->F recv': fprop - prop,
    'F fsync': fdur - fprop,
    'F dur->L ack': L.at('ack', z) - fdur,
    'propose->commit': lapply - prop,
    'commit->S apply': s.server === leader ? 0 : sapply - lapply,
    'apply->reply': reply - sapply,
    'reply->client': s.t1 - reply,
  };
}

async function main(): Promise<number> {
  const ops = arg('ops', 2000);
  const warmup = arg('warmup', 500);
  const keepAt = process.argv.indexOf('--keep');
  const dir = keepAt > 0 ? process.argv[keepAt + 1] : fs.mkdtempSync(path.join(os.tmpdir(), 'latency-trace-'));
  fs.mkdirSync(dir, { recursive: true });
  process.env.QUORATE_LATENCY_TRACE = dir;
  const e = await startBenchEnsemble('ours', 3, { heapMb: 512, tickTime: 2000 });
  const samples: Record<string, Sample[]> = {};
  let leaderId: number;
  try {
    const leader = await e.settled(60_000);
    leaderId = leader + 1;
    const follower = leader === 0 ? 1 : 0;
    const viaF = await connectClient(e.servers[follower].connectString);
    const viaL = await connectClient(e.servers[leader].connectString);
    await viaF.create('/lt', PAYLOAD_64);
    await run(viaF, follower + 1, warmup, 'wf', 'create');
    await run(viaL, leaderId, warmup, 'wl', 'create');
    samples['follower create'] = await run(viaF, follower + 1, ops, 'f', 'create');
    samples['follower setData'] = await run(viaF, follower + 1, ops, 'f', 'setData');
    samples['leader create'] = await run(viaL, leaderId, ops, 'l', 'create');
    samples['leader setData'] = await run(viaL, leaderId, ops, 'l', 'setData');
    await closeClients([viaF, viaL], 5000);
  } finally {
    await e.stop().catch(() => undefined);
    killAllServers();
  }
  const servers = new Map<number, Marks>();
  const gcs: Mark[] = [];
  const loops: { server: number; m: Mark }[] = [];
  const logStats: Record<number, unknown> = {};
  for (const f of fs.readdirSync(dir)) {
    const m = /^server-(\d+)-\d+\.jsonl$/.exec(f);
    if (m === null) continue;
    const marks = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Mark);
    servers.set(Number(m[1]), new Marks(marks));
    for (const x of marks) {
      if (x.k === 'gc') gcs.push(x);
      else if (x.k === 'loop') loops.push({ server: Number(m[1]), m: x });
      else if (x.k === 'stats' && x.stats !== undefined) logStats[Number(m[1])] = { fsyncs: x.stats.fsyncs, inlineWrites: x.stats.inlineWrites, slowDurableWrites: x.stats.slowDurableWrites, batches: x.stats.batches };
    }
  }
  if (servers.size !== 3) { process.stderr.write(`latency-trace: expected 3 trace files in ${dir}, found ${servers.size}\n`); return 1; }
  const report: Record<string, unknown> = { leader: leaderId!, ops, dir, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) };
  for (const [name, ss] of Object.entries(samples)) {
    const rows = ss.map((s) => ({ s, h: hops(s, servers, leaderId!) }));
    const p99 = q(rows.map((r) => r.h.total), 99);
    const slow = rows.filter((r) => r.h.total >= p99);
    const keys = Object.keys(rows[0].h);
    const table: Record<string, string> = {};
    for (const k of keys) {
      const all = rows.map((r) => r.h[k]).filter(Number.isFinite);
      const sl = slow.map((r) => r.h[k]).filter(Number.isFinite);
      table[k] = `p50 ${f2(q(all, 50))}  p99 ${f2(q(all, 99))}  mean(slowest 1%) ${f2(sl.reduce((a, b) => a + b, 0) / Math.max(1, sl.length))}`;
    }
    const overlapping = slow.map((r) => gcs.filter((g) => g.t < r.s.t1 && g.t + (g.ms ?? 0) > r.s.t0));
    table['slowest 1% with a GC pause inside'] = `${overlapping.filter((o) => o.length > 0).length} of ${slow.length} (pause ms ${overlapping.flat().map((g) => f2(g.ms ?? 0)).join(' ')})`;
    report[name] = table;
  }
  const gcMs = gcs.map((g) => g.ms ?? 0);
  // The kinds of Node's 'gc' performance entries: which collector paused the servers.
  const GC_KINDS: [number, string][] = [
    [perfConstants.NODE_PERFORMANCE_GC_MINOR, 'scavenge'], [perfConstants.NODE_PERFORMANCE_GC_MAJOR, 'mark-sweep-compact'],
    [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental marking'], [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, 'weak callbacks'],
  ];
  const byKind: Record<string, string> = {};
  for (const [k, name] of GC_KINDS) {
    const ms = gcs.filter((g) => g.kind === k).map((g) => g.ms ?? 0);
    if (ms.length > 0) byKind[name] = `${ms.length} pauses, p50 ${f2(q(ms, 50))} ms, max ${f2(Math.max(...ms))} ms`;
  }
  report.gc = { pauses: gcs.length, p50Ms: f2(q(gcMs, 50)), p99Ms: f2(q(gcMs, 99)), maxMs: f2(Math.max(0, ...gcMs)), byKind };
  report.loopDelayMaxMsPerServer = Object.fromEntries([...servers.keys()].map((id) => [id, f2(Math.max(0, ...loops.filter((l) => l.server === id).map((l) => l.m.max ?? 0)))]));
  report.logStats = logStats;
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return 0;
}

main().then((c) => process.exit(c), (e) => { process.stderr.write(`${(e as Error).stack}\n`); killAllServers(); process.exit(1); });
