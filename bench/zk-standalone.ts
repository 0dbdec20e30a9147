// zk-standalone: our quorum server against Apache ZooKeeper 3.8, both
// standalone, both fsyncing every write, in one run on one machine:
//   fsync floor -> warm-up (long for the JVM) -> alternating rounds of
//   latency (1 x 1 outstanding) and throughput (C x K outstanding) ->
//   memory of fresh servers holding 10k znodes and 1k sessions.
// One JSON document on stdout; progress on stderr. Servers are killed on
// any failure and the run is bounded in time (--budget-seconds).
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { ZkClient } from '../src/client/index.js';
import { closeClients, connectClient, latencyPhase, PAYLOAD_64, prepareTree, throughputPhase, throughputRound } from './lib/load.js';
import { CreateMode, Err, isZkError } from '../src/client/index.js';
import { measureMemory, type MemoryResult } from './lib/memory.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { allProcsCpuMs, flushDirtyPages, procRssMb, startCpuMeter, topOtherProcs } from './lib/proc.js';
import { bar, generatorCpuView, ratios, roundLine, summarizeServer, type Round, type ServerRound } from './lib/report.js';
import { killAllServers, startServer, type BenchKind, type BenchServer, type SecureSetup } from './lib/servers.js';
import { makeBenchTls, secureZooCfg } from './lib/tls.js';
import { measureFsyncFloor } from './lib/stats.js';


const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 5, quick: 3, integer: true, help: 'alternating rounds (ours, ZooKeeper) x this' },
  { name: 'latency-ops', full: 2000, quick: 300, integer: true, help: 'requests per latency phase (1 connection x 1 outstanding)' },
  { name: 'seconds', full: 5, quick: 1, help: 'duration of each throughput phase' },
  { name: 'connections', full: 8, quick: 8, integer: true, help: 'throughput connections' },
  { name: 'outstanding', full: 64, quick: 64, integer: true, help: 'requests in flight per throughput connection' },
  { name: 'warmup-zk', full: 25, quick: 8, help: 'seconds of mixed load on ZooKeeper before measuring (JVM warm-up)' },
  { name: 'warmup-ours', full: 5, quick: 2, help: 'seconds of mixed load on ours before measuring' },
  { name: 'fsync-iterations', full: 2000, quick: 2000, integer: true, help: 'fdatasync samples for the fsync floor' },
  { name: 'round-fsync-iterations', full: 500, quick: 300, integer: true, help: 'fdatasync samples just before each latency phase' },
  { name: 'settle-ms', full: 2000, quick: 2000, integer: true, help: 'pause after the fsync floor before the latency phase (the disk needs it; same for both servers)' },
  { name: 'znodes', full: 10000, quick: 10000, integer: true, help: 'znodes (100 B) created for the memory figure' },
  { name: 'sessions', full: 1000, quick: 1000, integer: true, help: 'extra sessions held open for the memory figure' },
  { name: 'zk-heap-mb', full: 512, quick: 512, integer: true, help: 'ZooKeeper -Xmx in MB' },
  { name: 'budget-seconds', full: 570, quick: 115, help: 'kill everything and fail past this wall time' },
  { name: 'scrape-ms', full: 1000, quick: 1000, integer: true, help: 'with --metrics: how often /metrics is scraped while measuring (Prometheus scrapes every 15 s by default)' },
  { name: 'paired-rounds', full: 10, quick: 3, integer: true, help: 'with --metrics: rounds driving ours and ours-metrics at the same time, each with its own clients (the machine\'s other load hits both alike)' },
];
const SWITCHES = {
  quick: 'short run (under 2 minutes; also BENCH_QUICK=1)',
  'no-memory': 'skip the memory phase',
  'ours-only': 'do not start ZooKeeper (no ratios, no throughput bar)',
  tls: 'every client over the TLS client port (secureClientPort, client certificates required), ours and ZooKeeper\'s alike',
  metrics: 'also ours with its Prometheus port on and scraped (ours-metrics), measured in the same alternating rounds and in paired rounds: what metrics cost',
  'metrics-control': 'with --metrics: start ours-metrics without its metrics port (an A/A run: what the method reads where nothing differs)',
  help: 'this text',
};

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

interface Target { server: BenchServer; lat: ZkClient; tp: ZkClient[] }

async function openTarget(server: BenchServer, connections: number, outstanding: number): Promise<Target> {
  // With --tls every measured client goes through the secure port.
  const cs = server.secure?.connectString ?? server.connectString;
  const tls = server.secure?.tls ?? null;
  const lat = await connectClient(cs, 30_000, tls);
  const tp = await Promise.all(Array.from({ length: connections }, () => connectClient(cs, 30_000, tls)));
  await prepareTree(lat, connections, outstanding);
  return { server, lat, tp };
}

async function measure(t: Target, v: Record<string, number>, tag: string): Promise<ServerRound> {
  if (!t.server.alive()) throw new Error(`${t.server.kind} server died:\n${t.server.logTail()}`);
  // The other server's unsynced writes (ZooKeeper does not fsync its snapshots) would be written
  // back, 30 s later, in the middle of this server's phases: flush them first, for both servers alike.
  const settle = flushDirtyPages();
  await new Promise((r) => setTimeout(r, 300));
  // The disk is shared with the rest of the machine and its tail drifts: take the floor again right before.
  const f = measureFsyncFloor(v['round-fsync-iterations']);
  const fsyncFloor = { n: f.n, p50Ms: f.p50Ms, p99Ms: f.p99Ms, maxMs: f.maxMs };
  // Measured here: the first ~1 s of requests after a burst of fdatasyncs sees a fatter disk tail
  // (create p99 1.1-4.1 ms right after the floor vs 0.6-1.8 ms two seconds later), which otherwise
  // lands on whichever phase comes first. Let the disk settle, for both servers alike.
  await new Promise((r) => setTimeout(r, v['settle-ms']));
  const meter = startCpuMeter(t.server.pid);
  const procs0 = allProcsCpuMs();
  const w0 = performance.now();
  const latency = await latencyPhase(t.lat, v['latency-ops'], tag);
  const throughput = await throughputRound(t.tp, v.outstanding, v.seconds * 1000, t.server.pid, tag);
  const topOtherProcesses = topOtherProcs(procs0, allProcsCpuMs(), performance.now() - w0, [process.pid, t.server.pid]);
  return { settle, fsyncFloor, latency, throughput, othersCpu: meter().others, topOtherProcesses, rssMbAfter: procRssMb(t.server.pid) };
}

/** Mixed load (creates, deletes, setData, getData, one-at-a-time requests) for `seconds`. */
async function warmUp(t: Target, seconds: number, v: Record<string, number>): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < deadline; i++) {
    const left = Math.max(200, Math.min(2000, deadline - performance.now()));
    await throughputRound(t.tp, v.outstanding, left / 3, t.server.pid, `warm${i}`);
    await latencyPhase(t.lat, 200, `warm${i}`);
  }
}

/** Which source the run measured: HEAD and whether src/ differs from it (other people edit the tree meanwhile). */
function source() {
  const git = (args: string[]) => spawnSync('git', args, { encoding: 'utf8', timeout: 10_000 }).stdout?.trim() ?? '';
  return { commit: git(['rev-parse', '--short', 'HEAD']) || null, srcChangedSinceCommit: git(['status', '--porcelain', '--', 'src']) !== '' };
}

function machine() {
  // `java -version` prints on stderr.
  const java = spawnSync('java', ['-version'], { encoding: 'utf8', timeout: 10_000 });
  return {
    cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, node: process.version,
    platform: `${os.platform()} ${os.release()}`, totalMemMb: Math.round(os.totalmem() / 2 ** 20), tmpdir: os.tmpdir(),
    java: (java.stderr ?? '').split('\n')[0] || null,
  };
}

type PairedOp = 'create' | 'setData' | 'getData';

/**
 * ours and ours-metrics driven at the same moment, op by op in lockstep, each by its own
 * clients: whatever else the machine does hits both alike, so the ratio of their ops/s (per
 * round) is what metrics cost, without the drift between back-to-back phases.
 */
async function pairedRound(a: Target, b: Target, outstanding: number, durationMs: number, tag: string, bFirst: boolean): Promise<Record<PairedOp, number>> {
  // Which one's requests go out first alternates by round: the generator serves both from one event loop.
  const both = (f: (t: Target) => Promise<{ opsPerSec: number }>) => (bFirst ? Promise.all([f(b), f(a)]).then(([y, x]) => [x, y]) : Promise.all([f(a), f(b)]))
    .then(([x, y]) => (x.opsPerSec === 0 ? NaN : y.opsPerSec / x.opsPerSec));
  const made = new Map<Target, number[][]>([a, b].map((t) => [t, t.tp.map(() => new Array<number>(outstanding).fill(0))]));
  const name = (c: number, w: number, i: number) => `/bench/tp/c${c}/${tag}w${w}-${i}`;
  const create = await both((t) => throughputPhase(t.tp, outstanding, durationMs, (c, w) => {
    const i = made.get(t)![c][w]++;
    return () => t.tp[c].create(name(c, w, i), PAYLOAD_64, { mode: CreateMode.PERSISTENT });
  }, t.server.pid));
  await both((t) => {
    const gone = t.tp.map(() => new Array<number>(outstanding).fill(0));
    return throughputPhase(t.tp, outstanding, 60_000, (c, w) => {
      if (gone[c][w] >= made.get(t)![c][w]) return null;
      const i = gone[c][w]++;
      return () => t.tp[c].delete(name(c, w, i)).catch((e) => { if (!isZkError(e, Err.NONODE)) throw e; });
    }, t.server.pid);
  });
  const setData = await both((t) => throughputPhase(t.tp, outstanding, durationMs, (c, w) => () => t.tp[c].setData(`/bench/tp/s/c${c}_w${w}`, PAYLOAD_64, -1), t.server.pid));
  const getData = await both((t) => throughputPhase(t.tp, outstanding, durationMs, (c, w) => () => t.tp[c].getData(`/bench/tp/s/c${c}_w${w}`), t.server.pid));
  return { create, setData, getData };
}

/** Scrapes a server's /metrics every `everyMs` until stopped: what a Prometheus server would do, more often. */
function startScraper(url: string, everyMs: number): () => { scrapes: number; failures: number; bytesLast: number; msMax: number } {
  const r = { scrapes: 0, failures: 0, bytesLast: 0, msMax: 0 };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const t0 = performance.now();
    fetch(url).then(async (res) => {
      const text = await res.text();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      r.scrapes++;
      r.bytesLast = text.length;
      r.msMax = Math.max(r.msMax, Math.round(performance.now() - t0));
    }).catch(() => { r.failures++; }).finally(() => { busy = false; });
  }, everyMs);
  return () => { clearInterval(timer); return r; };
}

async function memoryPhase(kind: BenchKind, v: Record<string, number>): Promise<MemoryResult & { heap?: string }> {
  log(`memory: fresh ${kind} server, ${v.znodes} znodes x 100 B, ${v.sessions} sessions`);
  const server = await startServer(kind, v['zk-heap-mb']);
  try {
    const r = await measureMemory(server, { znodes: v.znodes, znodeBytes: 100, sessions: v.sessions, settleMs: 1500, timeBudgetMs: 60_000 });
    log(`memory: ${kind} RSS idle ${r.rssMbIdle} MB, with znodes ${r.rssMbWithZnodes} MB, with sessions ${r.rssMb} MB${r.note ? ' (' + r.note + ')' : ''}`);
    return kind === 'zookeeper' ? { ...r, heap: `-Xmx${v['zk-heap-mb']}m (initial heap: JVM default)` } : r;
  } finally {
    await server.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs('zk-standalone', argv, SPECS, SWITCHES);
  if (typeof args === 'number') return args;
  const { values: v, flags } = args;
  const kinds: BenchKind[] = [...(flags.has('metrics') ? ['ours', 'ours-metrics'] as const : ['ours'] as const), ...(flags.has('ours-only') ? [] : ['zookeeper'] as const)];
  const budget = setTimeout(() => {
    log(`time budget of ${v['budget-seconds']} s exceeded: killing servers`);
    killAllServers();
    process.exit(1);
  }, v['budget-seconds'] * 1000);
  budget.unref();

  const benchTls = flags.has('tls') ? makeBenchTls() : null;
  const secure: SecureSetup = benchTls === null ? null : (port) => ({ cfg: secureZooCfg(benchTls, port), tls: benchTls.client });
  const targets = new Map<BenchKind, Target>();
  let stopScraper: ReturnType<typeof startScraper> | null = null;
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const runSource = source();
  try {
    log(`fsync floor: ${v['fsync-iterations']} x fdatasync after a 512 B append in ${os.tmpdir()}`);
    const floor = measureFsyncFloor(v['fsync-iterations']);
    log(`fsync floor: p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms`);

    for (const kind of kinds) {
      log(`starting ${kind}`);
      // --metrics-control: ours-metrics is a second plain ours, so the figures show the method's own spread.
      const server = await startServer(kind === 'ours-metrics' && flags.has('metrics-control') ? 'ours' : kind, v['zk-heap-mb'], secure);
      log(`${kind}: pid ${server.pid}, ${server.secure?.connectString ?? server.connectString}${server.secure ? ' (TLS)' : ''}`);
      targets.set(kind, await openTarget(server, v.connections, v.outstanding));
      log(`${kind}: ${1 + v.connections} clients connected, tree prepared`);
      if (server.metricsUrl !== undefined) {
        stopScraper = startScraper(server.metricsUrl, v['scrape-ms']);
        log(`${kind}: ${server.metricsUrl} scraped every ${v['scrape-ms']} ms`);
      }
    }
    for (const kind of kinds) {
      const s = kind === 'zookeeper' ? v['warmup-zk'] : v['warmup-ours'];
      log(`warm-up ${kind}: ${s} s of mixed load`);
      await warmUp(targets.get(kind)!, s, v);
    }

    const rounds: Round[] = [];
    for (let r = 1; r <= v.rounds; r++) {
      const round: Round = { round: r };
      // ours and ours-metrics swap places every other round, so neither always runs on the disk the other left.
      const order = r % 2 === 0 ? kinds.map((k) => (k === 'ours' ? 'ours-metrics' : k === 'ours-metrics' ? 'ours' : k)).filter((k) => kinds.includes(k)) : kinds;
      for (const kind of order) {
        log(`round ${r}/${v.rounds}: ${kind}`);
        const res = await measure(targets.get(kind)!, v, `r${r}`);
        round[kind] = res;
        log(roundLine(kind, res));
      }
      rounds.push(round);
    }

    const paired: Record<PairedOp, number>[] = [];
    if (kinds.includes('ours-metrics')) {
      for (let r = 1; r <= v['paired-rounds']; r++) {
        const res = await pairedRound(targets.get('ours')!, targets.get('ours-metrics')!, v.outstanding, v.seconds * 1000, `p${r}`, r % 2 === 0);
        paired.push(res);
        log(`paired round ${r}/${v['paired-rounds']}: ours-metrics / ours ops/s create ${res.create.toFixed(3)} setData ${res.setData.toFixed(3)} getData ${res.getData.toFixed(3)}`);
      }
    }
    const scraping = stopScraper?.() ?? null;
    stopScraper = null;
    const rssAfterLoad: Record<string, number | null> = {};
    for (const [kind, t] of targets) {
      rssAfterLoad[kind] = procRssMb(t.server.pid);
      await closeClients([t.lat, ...t.tp], 5000);
      await t.server.stop();
      targets.delete(kind);
    }

    const memory: Record<string, unknown> = {
      note: 'VmRSS of a fresh server of each kind holding the znodes and sessions; afterBenchmarkRssMb: the benchmark servers at the end of the rounds',
      afterBenchmarkRssMb: rssAfterLoad,
    };
    if (!flags.has('no-memory')) for (const kind of kinds) memory[kind] = await memoryPhase(kind, v);

    // The disk is shared with whatever else runs on the machine: measure the floor again, for comparison.
    const floorAfter = measureFsyncFloor(v['fsync-iterations']);
    log(`fsync floor after the run: p50 ${floorAfter.p50Ms} ms, p99 ${floorAfter.p99Ms} ms`);

    const ours = summarizeServer(rounds, 'ours');
    const zk = kinds.includes('zookeeper') ? summarizeServer(rounds, 'zookeeper') : null;
    const oursMetrics = kinds.includes('ours-metrics') ? summarizeServer(rounds, 'ours-metrics') : null;
    // Per round, ours-metrics / ours ran back to back: their ratio per round, then the median, cancels drift across rounds.
    const perRound = (op: 'create' | 'setData' | 'getData' | 'delete') => rounds.flatMap((rd) => {
      const a = rd['ours-metrics']?.throughput[op].opsPerSec;
      const b = rd.ours?.throughput[op].opsPerSec;
      return a === undefined || b === undefined || b === 0 ? [] : [a / b];
    });
    const med = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s.length === 0 ? null : Math.round(1000 * (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2)) / 1000; };
    const metricsCost = oursMetrics === null ? null : {
      note: `ours-metrics / ours ops/s: the same server with its Prometheus port on and /metrics scraped every ${v['scrape-ms']} ms, measured right after ours in each round; below 1 is slower` +
        (flags.has('metrics-control') ? '. CONTROL RUN (--metrics-control): ours-metrics ran WITHOUT metrics, so any difference is the method\'s spread' : ''),
      control: flags.has('metrics-control'),
      medianOfRoundRatios: { create: med(perRound('create')), setData: med(perRound('setData')), getData: med(perRound('getData')), delete: med(perRound('delete')) },
      roundRatios: { create: perRound('create').map((x) => Math.round(x * 1000) / 1000), setData: perRound('setData').map((x) => Math.round(x * 1000) / 1000) },
      ratiosOfMedians: ratios(oursMetrics, ours),
      paired: {
        note: 'both servers driven at the same time, each by its own connections x outstanding, op by op: ours-metrics / ours ops/s per round and their median',
        median: { create: med(paired.map((p) => p.create)), setData: med(paired.map((p) => p.setData)), getData: med(paired.map((p) => p.getData)) },
        rounds: paired.map((p) => ({ create: Math.round(p.create * 1000) / 1000, setData: Math.round(p.setData * 1000) / 1000, getData: Math.round(p.getData * 1000) / 1000 })),
      },
      scraping,
    };
    const doc = {
      benchmark: 'zk-standalone',
      date: new Date().toISOString(),
      source: runSource,
      machine: { ...machine(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      config: {
        ...v, quick: flags.has('quick'), payloadBytes: 64, forceSync: true,
        tls: flags.has('tls') ? 'secureClientPort, TLS 1.2/1.3 as negotiated, client certificates required (ssl.clientAuth=need), EC P-256 certificates; both servers' : false,
        ourNodeFlags: process.env.QUORATE_BENCH_NODE_FLAGS ?? '', zookeeper: `Debian zookeeper 3.8, -Xmx${v['zk-heap-mb']}m`,
        note: 'latency: 1 connection x 1 outstanding, create (fresh nodes) / setData / getData / delete of 64 B, in turn; ' +
          `throughput: ${v.connections} connections x ${v.outstanding} outstanding for ${v.seconds} s per op (delete: until all created nodes are gone). ` +
          'Generator and servers share the machine.',
      },
      fsyncFloor: floor,
      fsyncFloorAtEnd: { p50Ms: floorAfter.p50Ms, p99Ms: floorAfter.p99Ms, meanMs: floorAfter.meanMs, maxMs: floorAfter.maxMs },
      rounds,
      summary: {
        note: 'medians over rounds; ratios are ours / zookeeper (ops/s: above 1 is better; latencies: below 1 is better)',
        ours, zookeeper: zk, ratios: zk ? ratios(ours, zk) : null,
        ...(oursMetrics === null ? {} : { oursMetrics, metricsCost }),
      },
      bar: bar(ours, zk, floor.p99Ms, rounds),
      memory,
      generatorCpu: generatorCpuView(rounds),
      elapsedSeconds: Math.round((performance.now() - t0) / 1000),
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    log(`done in ${doc.elapsedSeconds} s: writesAndReadsAtLeastZk=${doc.bar.writesAndReadsAtLeastZk} p99WithinFsyncP99Plus1ms=${doc.bar.p99WithinFsyncP99Plus1ms}`);
    return 0;
  } catch (e) {
    log(`FAILED: ${(e as Error).stack ?? e}`);
    for (const [kind, t] of targets) log(`${kind} log tail:\n${t.server.logTail()}`);
    return 1;
  } finally {
    stopScraper?.();
    for (const t of targets.values()) {
      await closeClients([t.lat, ...t.tp], 2000).catch(() => undefined);
      await t.server.stop().catch(() => undefined);
    }
    killAllServers();
    clearTimeout(budget);
  }
}
