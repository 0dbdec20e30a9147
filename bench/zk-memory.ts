// zk-memory: a standalone server holding a large tree (default 1,000,000
// znodes of 100 B), ours against Apache ZooKeeper 3.8, one server at a time
// on the machine, fsync on. For each kind:
//   1. a fresh server (snapCount 100,000,000: no snapshot while creating)
//      gets the znodes, created pipelined (a few connections, many requests
//      outstanding each) under /mem/pNNNN parents of --fanout children;
//      VmRSS after a pause;
//   2. kill -9 (every create was acknowledged, so fsynced) and start again
//      on the same data dir: the tree is replayed from the log, then one
//      snapshot is written. ZooKeeper takes that snapshot itself at start
//      (ZooKeeperServer.loadData, before serving); ours is started with
//      snapCount=2 and one create makes it take one. Its time is each
//      server's own `snapshottime` summary (ZooKeeper: mntr's
//      zk_max_snapshottime; ours: snapshottime_sum on its Prometheus port,
//      on for these starts only), beside the snapshot file's size and
//      `dbinittime` (loading);
//   3. kill -9 and start again: loaded from that snapshot. Time from the
//      spawn to the first answered request, dbinittime, VmRSS after a pause.
// One JSON document on stdout; progress on stderr; bounded by --budget-seconds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CreateMode, Err, isZkError, type ZkClient } from '../src/client/index.js';
import { fourLetterWord, parseMntr } from '../src/client/four-letter-word.js';
import { freePort } from '../src/io/ports.js';
import { closeClients, connectClient } from './lib/load.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { procRssMb } from './lib/proc.js';
import { OUR_CLI, apacheZkAvailable, baseCfg, killAllServers, launch, splitFlags, writeZooCfg, zkJvmArgs, type BenchServer, type ServerKind } from './lib/servers.js';
import { round1 } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'znodes', full: 1_000_000, quick: 100_000, integer: true, help: 'znodes created (besides their parents)' },
  { name: 'znode-bytes', full: 100, quick: 100, integer: true, help: 'data bytes per znode' },
  { name: 'fanout', full: 1000, quick: 1000, integer: true, help: 'children per parent /mem/pNNNN' },
  { name: 'connections', full: 4, quick: 4, integer: true, help: 'client connections creating' },
  { name: 'outstanding', full: 256, quick: 256, integer: true, help: 'creates in flight per connection' },
  { name: 'settle-ms', full: 3000, quick: 2000, integer: true, help: 'pause before reading VmRSS' },
  { name: 'zk-heap-mb', full: 2048, quick: 1024, integer: true, help: 'ZooKeeper -Xmx in MB' },
  { name: 'budget-seconds', full: 1200, quick: 300, help: 'kill everything and fail past this wall time' },
];
const SWITCHES = {
  quick: 'short run: 100,000 znodes (also BENCH_QUICK=1)',
  'ours-only': 'do not start ZooKeeper (no ratios)',
  'zk-only': 'do not start ours',
  help: 'this text',
};

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NO_SNAPSHOT_WHILE_CREATING = 100_000_000;

interface Started { server: BenchServer; metricsUrl: string | null; msToFirstAnswer: number }

/** Starts a server of `kind` on `dir` (kept between starts), waits until it answers a request. */
async function start(kind: ServerKind, dir: string, snapCount: number, withMetrics: boolean, zkHeapMb: number): Promise<Started> {
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const cfgPath = path.join(dir, 'zoo.cfg');
  const cfg: Record<string, string> = { ...baseCfg(dataDir, port), snapCount: String(snapCount) };
  let metricsUrl: string | null = null;
  const tStart = performance.now();
  let server: BenchServer;
  if (kind === 'ours') {
    if (withMetrics) {
      const mport = await freePort();
      Object.assign(cfg, {
        'metricsProvider.className': 'org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider',
        'metricsProvider.httpPort': String(mport), 'metricsProvider.httpHost': '127.0.0.1',
      });
      metricsUrl = `http://127.0.0.1:${mport}/metrics`;
    }
    writeZooCfg(cfgPath, cfg);
    const args = [...splitFlags(process.env.QUORATE_BENCH_NODE_FLAGS), OUR_CLI, 'quorum', '--zoo-cfg', cfgPath];
    server = await launch({ kind, dir, port, cmd: process.execPath, args, startTimeoutMs: 600_000 });
  } else {
    writeZooCfg(cfgPath, { ...cfg, 'admin.enableServer': 'false' });
    const { args, logFile } = zkJvmArgs(dir, cfgPath, zkHeapMb);
    server = await launch({ kind, dir, port, cmd: 'java', args, logFile, startTimeoutMs: 600_000 });
  }
  // ZooKeeper opens its port before it has loaded its data: the first answered request is the mark for both.
  const end = performance.now() + 600_000;
  for (;;) {
    try {
      const zk = await connectClient(server.connectString, 30_000);
      try { await zk.exists('/'); } finally { await closeClients([zk], 5000); }
      break;
    } catch (e) {
      if (!server.alive()) throw new Error(`${kind} exited while starting: ${(e as Error).message}\n${server.logTail()}`);
      if (performance.now() > end) throw new Error(`${kind} did not answer within 600 s: ${(e as Error).message}`);
      await sleep(50);
    }
  }
  return { server, metricsUrl, msToFirstAnswer: Math.round(performance.now() - tStart) };
}

/** Creates the parents, then `n` znodes pipelined over the clients; returns creates per second. */
async function createTree(clients: ZkClient[], n: number, bytes: number, fanout: number, outstanding: number): Promise<{ seconds: number; perSec: number }> {
  const data = Buffer.alloc(bytes, 0x6d);
  const parents = Math.ceil(n / fanout);
  const pName = (p: number) => `/mem/p${String(p).padStart(4, '0')}`;
  await clients[0].create('/mem', null, { mode: CreateMode.PERSISTENT });
  const tc = performance.now();
  let nextParent = 0;
  await Promise.all(Array.from({ length: Math.min(64, parents) }, async () => {
    while (nextParent < parents) await clients[0].create(pName(nextParent++), null, { mode: CreateMode.PERSISTENT });
  }));
  let next = 0;
  let done = 0;
  let lastLog = performance.now();
  const worker = async (c: ZkClient) => {
    while (next < n) {
      const i = next++;
      try {
        await c.create(`${pName(Math.floor(i / fanout))}/n${String(i).padStart(7, '0')}`, data, { mode: CreateMode.PERSISTENT });
      } catch (e) {
        if (!isZkError(e, Err.NODEEXISTS)) throw e;
      }
      done++;
      if (performance.now() - lastLog > 10_000) { lastLog = performance.now(); log(`  ${done} created`); }
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: outstanding }, () => worker(c))));
  const seconds = (performance.now() - tc) / 1000;
  return { seconds: round1(seconds), perSec: Math.round((n + parents) / seconds) };
}

async function countTree(connectString: string): Promise<number> {
  const zk = await connectClient(connectString, 30_000);
  try { return await zk.getAllChildrenNumber('/mem'); } finally { await closeClients([zk], 5000); }
}

/** The newest snapshot file under dir: its name and size. */
function newestSnapshot(dir: string): { file: string; bytes: number } | null {
  let best: { file: string; bytes: number; mtime: number } | null = null;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/^snapshot\.[0-9a-f]+$/.test(e.name)) {
        const st = fs.statSync(p);
        if (best === null || st.mtimeMs > best.mtime) best = { file: path.relative(dir, p), bytes: st.size, mtime: st.mtimeMs };
      }
    }
  };
  walk(dir);
  const b = best as { file: string; bytes: number; mtime: number } | null;
  return b === null ? null : { file: b.file, bytes: b.bytes };
}

/** A summary's sum and count from Prometheus text (ours). */
async function promSummary(url: string, name: string): Promise<{ sum: number; count: number } | null> {
  const text = await (await fetch(url)).text();
  const sum = new RegExp(`^${name}_sum(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  const count = new RegExp(`^${name}_count(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : null;
}

/** ZooKeeper's summaries from mntr: zk_{avg,min,max,cnt,sum}_NAME. */
async function mntrSummary(server: BenchServer, name: string): Promise<Record<string, number>> {
  const m = parseMntr(await fourLetterWord('127.0.0.1', server.port, 'mntr', 10_000));
  const out: Record<string, number> = {};
  for (const [k, v] of m) if (k.endsWith(`_${name}`)) out[k] = Number(v);
  return out;
}

export interface KindResult {
  rssMbFresh: number | null;
  create: { znodes: number; parents: number; seconds: number; perSec: number };
  rssMbWithZnodes: number | null;
  restartReplayingLog: { msToFirstAnswer: number; dbInitMs: number | null };
  snapshot: { ms: number | null; how: string; file: string | null; bytes: number | null; raw: unknown };
  restartFromSnapshot: { msToFirstAnswer: number; dbInitMs: number | null; rssMb: number | null; znodesCounted: number };
}

async function runKind(kind: ServerKind, v: Record<string, number>): Promise<KindResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-zkmem-${kind}-`));
  const parents = Math.ceil(v.znodes / v.fanout);
  const heap = v['zk-heap-mb'];
  log(`${kind}: fresh server, snapCount ${NO_SNAPSHOT_WHILE_CREATING}`);
  let s = await start(kind, dir, NO_SNAPSHOT_WHILE_CREATING, false, heap);
  await sleep(v['settle-ms']);
  const rssMbFresh = procRssMb(s.server.pid);
  const clients = await Promise.all(Array.from({ length: v.connections }, () => connectClient(s.server.connectString, 30_000)));
  let created: { seconds: number; perSec: number };
  try {
    log(`${kind}: creating ${v.znodes} znodes of ${v['znode-bytes']} B under ${parents} parents, ${v.connections} x ${v.outstanding} outstanding`);
    created = await createTree(clients, v.znodes, v['znode-bytes'], v.fanout, v.outstanding);
  } finally {
    await closeClients(clients, 10_000);
  }
  const counted = await countTree(s.server.connectString);
  if (counted !== v.znodes + parents) throw new Error(`${kind}: expected ${v.znodes + parents} znodes under /mem, found ${counted}`);
  await sleep(v['settle-ms']);
  const rssMbWithZnodes = procRssMb(s.server.pid);
  log(`${kind}: ${created.perSec} creates/s; RSS fresh ${rssMbFresh} MB, with the znodes ${rssMbWithZnodes} MB`);

  // Every create was acknowledged after its fsync: kill -9 loses nothing.
  await s.server.kill9();
  log(`${kind}: restart on the log${kind === 'ours' ? ' (snapCount=2: the next write takes a snapshot)' : ' (ZooKeeper snapshots at start)'}`);
  s = await start(kind, dir, kind === 'ours' ? 2 : NO_SNAPSHOT_WHILE_CREATING, kind === 'ours', heap);
  const restartReplayingLog = { msToFirstAnswer: s.msToFirstAnswer, dbInitMs: null as number | null };
  let snapshot: KindResult['snapshot'];
  if (kind === 'ours') {
    restartReplayingLog.dbInitMs = round1((await promSummary(s.metricsUrl!, 'dbinittime'))?.sum ?? NaN);
    const zk = await connectClient(s.server.connectString, 30_000);
    try { await zk.create('/mem-snapshot-trigger', null, { mode: CreateMode.PERSISTENT }); } finally { await closeClients([zk], 5000); }
    let sum: { sum: number; count: number } | null = null;
    const end = performance.now() + 300_000;
    while (performance.now() < end) {
      sum = await promSummary(s.metricsUrl!, 'snapshottime');
      if (sum !== null && sum.count >= 1) break;
      await sleep(100);
    }
    if (sum === null || sum.count < 1) throw new Error('ours: no snapshot written within 300 s of the trigger');
    const f = newestSnapshot(dir);
    snapshot = { ms: round1(sum.sum / sum.count), how: 'its snapshottime summary (Prometheus), one snapshot: from the log roll to the file fsynced and renamed, encoded a few nodes per event-loop turn while serving', file: f?.file ?? null, bytes: f?.bytes ?? null, raw: sum };
  } else {
    const snap = await mntrSummary(s.server, 'snapshottime');
    const init = await mntrSummary(s.server, 'dbinittime');
    restartReplayingLog.dbInitMs = init.zk_max_dbinittime ?? null;
    const f = newestSnapshot(dir);
    snapshot = { ms: snap.zk_max_snapshottime ?? null, how: 'mntr zk_max_snapshottime: the snapshot ZooKeeperServer.loadData takes at start, before serving (cnt should be 1)', file: f?.file ?? null, bytes: f?.bytes ?? null, raw: { ...snap, ...init } };
  }
  log(`${kind}: restart on the log answered after ${restartReplayingLog.msToFirstAnswer} ms (dbinittime ${restartReplayingLog.dbInitMs} ms); snapshot ${snapshot.ms} ms, ${snapshot.bytes} B`);

  await s.server.kill9();
  log(`${kind}: restart from the snapshot`);
  s = await start(kind, dir, NO_SNAPSHOT_WHILE_CREATING, kind === 'ours', heap);
  try {
    const dbInitMs = kind === 'ours'
      ? round1((await promSummary(s.metricsUrl!, 'dbinittime'))?.sum ?? NaN)
      : (await mntrSummary(s.server, 'dbinittime')).zk_max_dbinittime ?? null;
    const znodesCounted = await countTree(s.server.connectString);
    await sleep(v['settle-ms']);
    const rssMb = procRssMb(s.server.pid);
    log(`${kind}: from the snapshot: answered after ${s.msToFirstAnswer} ms (dbinittime ${dbInitMs} ms), RSS ${rssMb} MB, ${znodesCounted} znodes`);
    return {
      rssMbFresh, create: { znodes: v.znodes, parents, ...created }, rssMbWithZnodes, restartReplayingLog, snapshot,
      restartFromSnapshot: { msToFirstAnswer: s.msToFirstAnswer, dbInitMs, rssMb, znodesCounted },
    };
  } finally {
    await s.server.stop();
  }
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100);

export async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs('zk-memory', argv, SPECS, SWITCHES);
  if (typeof args === 'number') return args;
  const { values: v, flags } = args;
  if (!fs.existsSync(OUR_CLI)) throw new Error(`${OUR_CLI} is missing: run "npm run build"`);
  const kinds: ServerKind[] = [...(flags.has('zk-only') ? [] : ['ours'] as const), ...(flags.has('ours-only') ? [] : ['zookeeper'] as const)];
  if (kinds.includes('zookeeper') && !apacheZkAvailable()) throw new Error('Apache ZooKeeper is not installed: use --ours-only');
  const budget = setTimeout(() => { log(`time budget of ${v['budget-seconds']} s exceeded: killing servers`); killAllServers(); process.exit(1); }, v['budget-seconds'] * 1000);
  budget.unref();
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const results: Partial<Record<ServerKind, KindResult>> = {};
  try {
    for (const kind of kinds) results[kind] = await runKind(kind, v);
  } catch (e) {
    log(`FAILED: ${(e as Error).stack ?? e}`);
    return 1;
  } finally {
    killAllServers();
    clearTimeout(budget);
  }
  const o = results.ours;
  const z = results.zookeeper;
  const doc = {
    benchmark: 'zk-memory',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, memMb: Math.round(os.totalmem() / 1048576), node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    config: {
      ...v, quick: flags.has('quick'), forceSync: true,
      zookeeper: `Debian zookeeper 3.8, -Xmx${v['zk-heap-mb']}m (initial heap and GC: the JVM's defaults)`,
      ourNodeFlags: process.env.QUORATE_BENCH_NODE_FLAGS ?? '',
      note: 'one server at a time; VmRSS after --settle-ms; msToFirstAnswer: from the spawn to the first answered exists (polled every 50 ms)',
    },
    ours: o ?? null,
    zookeeper: z ?? null,
    ratios: o && z ? {
      note: 'ours / zookeeper: below 1 is smaller or faster',
      rssWithZnodes: ratio(o.rssMbWithZnodes, z.rssMbWithZnodes),
      rssLoadedFromSnapshot: ratio(o.restartFromSnapshot.rssMb, z.restartFromSnapshot.rssMb),
      snapshotMs: ratio(o.snapshot.ms, z.snapshot.ms),
      snapshotBytes: ratio(o.snapshot.bytes, z.snapshot.bytes),
      startFromSnapshotMs: ratio(o.restartFromSnapshot.msToFirstAnswer, z.restartFromSnapshot.msToFirstAnswer),
      createsPerSec: ratio(o.create.perSec, z.create.perSec),
    } : null,
    elapsedSeconds: Math.round((performance.now() - t0) / 1000),
  };
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  return 0;
}
