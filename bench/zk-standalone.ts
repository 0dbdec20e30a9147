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
import { closeClients, connectClient, latencyPhase, prepareTree, throughputRound } from './lib/load.js';
import { measureMemory, type MemoryResult } from './lib/memory.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { allProcsCpuMs, flushDirtyPages, procRssMb, startCpuMeter, topOtherProcs } from './lib/proc.js';
import { bar, generatorCpuView, ratios, roundLine, summarizeServer, type Round, type ServerRound } from './lib/report.js';
import { killAllServers, startServer, type BenchServer, type SecureSetup, type ServerKind } from './lib/servers.js';
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
];
const SWITCHES = {
  quick: 'short run (under 2 minutes; also BENCH_QUICK=1)',
  'no-memory': 'skip the memory phase',
  'ours-only': 'do not start ZooKeeper (no ratios, no throughput bar)',
  tls: 'every client over the TLS client port (secureClientPort, client certificates required), ours and ZooKeeper\'s alike',
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

async function memoryPhase(kind: ServerKind, v: Record<string, number>): Promise<MemoryResult & { heap?: string }> {
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
  const kinds: ServerKind[] = flags.has('ours-only') ? ['ours'] : ['ours', 'zookeeper'];
  const budget = setTimeout(() => {
    log(`time budget of ${v['budget-seconds']} s exceeded: killing servers`);
    killAllServers();
    process.exit(1);
  }, v['budget-seconds'] * 1000);
  budget.unref();

  const benchTls = flags.has('tls') ? makeBenchTls() : null;
  const secure: SecureSetup = benchTls === null ? null : (port) => ({ cfg: secureZooCfg(benchTls, port), tls: benchTls.client });
  const targets = new Map<ServerKind, Target>();
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const runSource = source();
  try {
    log(`fsync floor: ${v['fsync-iterations']} x fdatasync after a 512 B append in ${os.tmpdir()}`);
    const floor = measureFsyncFloor(v['fsync-iterations']);
    log(`fsync floor: p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms`);

    for (const kind of kinds) {
      log(`starting ${kind}`);
      const server = await startServer(kind, v['zk-heap-mb'], secure);
      log(`${kind}: pid ${server.pid}, ${server.secure?.connectString ?? server.connectString}${server.secure ? ' (TLS)' : ''}`);
      targets.set(kind, await openTarget(server, v.connections, v.outstanding));
      log(`${kind}: ${1 + v.connections} clients connected, tree prepared`);
    }
    for (const kind of kinds) {
      const s = kind === 'ours' ? v['warmup-ours'] : v['warmup-zk'];
      log(`warm-up ${kind}: ${s} s of mixed load`);
      await warmUp(targets.get(kind)!, s, v);
    }

    const rounds: Round[] = [];
    for (let r = 1; r <= v.rounds; r++) {
      const round: Round = { round: r };
      for (const kind of kinds) {
        log(`round ${r}/${v.rounds}: ${kind}`);
        const res = await measure(targets.get(kind)!, v, `r${r}`);
        round[kind] = res;
        log(roundLine(kind, res));
      }
      rounds.push(round);
    }

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
    for (const t of targets.values()) {
      await closeClients([t.lat, ...t.tp], 2000).catch(() => undefined);
      await t.server.stop().catch(() => undefined);
    }
    killAllServers();
    clearTimeout(budget);
  }
}
