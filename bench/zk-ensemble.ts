// zk-ensemble: our 3-server quorum against Apache ZooKeeper 3.8 in a 3-server
// ensemble, both on 127.0.0.1 with fsync on and the same tickTime, initLimit
// and syncLimit, driven by one load generator (our client), in one run:
//   warm-up of both -> alternating rounds of latency (1 connection to a
//   follower x 1 outstanding: writes go through the leader; then 1
//   connection to the leader x 1 outstanding) and throughput
//   (C connections spread over the three servers x K outstanding) ->
//   recovery: kill -9 of the leader, time until a write succeeds again
//   (median of --kills; the client tries the next server at once).
// One JSON document on stdout; progress on stderr; bounded by --budget-seconds.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ZkClient } from '../src/client/index.js';
import { startBenchEnsemble, type BenchEnsemble } from './lib/ensemble.js';
import { closeClients, connectClient, latencyPhase, PAYLOAD_64, prepareTree, throughputRound, type LatencyRound, type ThroughputRound } from './lib/load.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { apacheZkAvailable, killAllServers, type ServerKind } from './lib/servers.js';
import { measureFsyncFloor, median, ratio, round1 } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 3, quick: 1, integer: true, help: 'alternating rounds (ours, ZooKeeper) of latency and throughput' },
  { name: 'latency-ops', full: 1000, quick: 200, integer: true, help: 'requests per latency phase (1 connection x 1 outstanding)' },
  { name: 'seconds', full: 5, quick: 1, help: 'duration of each throughput phase' },
  { name: 'connections', full: 8, quick: 8, integer: true, help: 'throughput connections, spread over the servers' },
  { name: 'outstanding', full: 64, quick: 64, integer: true, help: 'requests in flight per throughput connection' },
  { name: 'warmup-ours', full: 5, quick: 2, help: 'seconds of load on ours before measuring' },
  { name: 'warmup-zk', full: 20, quick: 8, help: 'seconds of load on ZooKeeper before measuring (JVM warm-up)' },
  { name: 'kills', full: 10, quick: 3, integer: true, help: 'kill -9 of the leader, per kind, for the recovery time' },
  { name: 'tick-ms', full: 2000, quick: 2000, integer: true, help: 'tickTime of both ensembles (initLimit 10, syncLimit 5)' },
  { name: 'zk-heap-mb', full: 512, quick: 512, integer: true, help: 'ZooKeeper -Xmx in MB, per server' },
  { name: 'budget-seconds', full: 1200, quick: 400, help: 'kill everything and fail past this wall time' },
];
const SWITCHES = { quick: 'short run (also BENCH_QUICK=1)', 'ours-only': 'do not start ZooKeeper (no ratios, no bar)', help: 'this text' };

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

interface Target { e: BenchEnsemble; lat: ZkClient; latLeader: ZkClient; tp: ZkClient[] }
/** latency: through a follower; latencyLeader: through the leader (both 1 connection x 1 outstanding). */
interface KindRound { latency: LatencyRound; latencyLeader: LatencyRound; throughput: ThroughputRound }

async function openTarget(e: BenchEnsemble, connections: number, outstanding: number): Promise<Target> {
  const leader = await e.settled(60_000);
  const follower = e.servers.findIndex((_, i) => i !== leader);
  const lat = await connectClient(e.servers[follower].connectString);
  const latLeader = await connectClient(e.servers[leader].connectString);
  const tp = await Promise.all(Array.from({ length: connections }, (_, c) => connectClient(e.servers[c % e.servers.length].connectString)));
  await prepareTree(lat, connections, outstanding);
  await lat.sync('/');
  await latLeader.sync('/');
  for (const c of tp) await c.sync('/');
  return { e, lat, latLeader, tp };
}

async function warmUp(t: Target, seconds: number, outstanding: number): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < deadline; i++) {
    await throughputRound(t.tp, outstanding, Math.max(200, Math.min(2000, (deadline - performance.now()) / 3)), t.e.servers[0].pid, `warm${i}`);
    await latencyPhase(t.lat, 100, `warm${i}`);
    await latencyPhase(t.latLeader, 100, `warmL${i}`);
  }
}

/** kill -9 of the leader; ms until a write issued after the kill succeeds. Then the server is restarted. */
async function recoveryOnce(e: BenchEnsemble, k: number): Promise<{ ms: number; failedWrites: number; leader: number }> {
  const leader = await e.settled(60_000);
  const zk = await connectClient(e.connectString);
  try {
    await zk.create(`/bench/rec-${k}-warm`, PAYLOAD_64);
    const killAt = performance.now();
    await e.servers[leader].kill9();
    let failedWrites = 0;
    for (let n = 0; performance.now() - killAt < 60_000; n++) {
      try {
        await zk.create(`/bench/rec-${k}-${n}`, PAYLOAD_64);
        return { ms: round1(performance.now() - killAt), failedWrites, leader };
      } catch {
        failedWrites++;
      }
    }
    throw new Error(`${e.kind}: no write succeeded within 60 s of killing the leader`);
  } finally {
    await closeClients([zk], 5000);
    await e.restart(leader);
  }
}

function latencySummary(rounds: KindRound[], which: 'latency' | 'latencyLeader') {
  const pick = (op: keyof LatencyRound, f: 'p50Ms' | 'p99Ms') => median(rounds.map((r) => r[which][op][f]));
  return { createP50Ms: pick('create', 'p50Ms'), createP99Ms: pick('create', 'p99Ms'), setDataP50Ms: pick('setData', 'p50Ms'), setDataP99Ms: pick('setData', 'p99Ms'), getDataP50Ms: pick('getData', 'p50Ms'), getDataP99Ms: pick('getData', 'p99Ms') };
}

function throughputSummary(rounds: KindRound[]) {
  const pick = (op: 'create' | 'setData' | 'getData' | 'delete') => median(rounds.map((r) => r.throughput[op].opsPerSec));
  return { createOpsPerSec: pick('create'), setDataOpsPerSec: pick('setData'), getDataOpsPerSec: pick('getData'), deleteOpsPerSec: pick('delete') };
}

export async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs('zk-ensemble', argv, SPECS, SWITCHES);
  if (typeof args === 'number') return args;
  const { values: v, flags } = args;
  const kinds: ServerKind[] = flags.has('ours-only') ? ['ours'] : ['ours', 'zookeeper'];
  if (kinds.includes('zookeeper') && !apacheZkAvailable()) { process.stderr.write('zk-ensemble: Apache ZooKeeper is not installed (bash scripts/install-test-deps.sh)\n'); return 1; }
  const budget = setTimeout(() => { log(`time budget of ${v['budget-seconds']} s exceeded: killing servers`); killAllServers(); process.exit(1); }, v['budget-seconds'] * 1000);
  budget.unref();
  const targets = new Map<ServerKind, Target>();
  try {
    const floor = measureFsyncFloor(2000);
    log(`fsync floor: p50 ${floor.p50Ms} ms, p99 ${floor.p99Ms} ms`);
    for (const kind of kinds) {
      log(`starting a 3-server ${kind} ensemble`);
      const e = await startBenchEnsemble(kind, 3, { heapMb: v['zk-heap-mb'], tickTime: v['tick-ms'] });
      targets.set(kind, await openTarget(e, v.connections, v.outstanding));
      log(`${kind}: settled, ${1 + v.connections} clients connected`);
    }
    for (const kind of kinds) {
      const s = kind === 'ours' ? v['warmup-ours'] : v['warmup-zk'];
      log(`warm-up ${kind}: ${s} s`);
      await warmUp(targets.get(kind)!, s, v.outstanding);
    }
    const rounds: Record<ServerKind, KindRound[]> = { ours: [], zookeeper: [] };
    for (let r = 1; r <= v.rounds; r++) {
      for (const kind of kinds) {
        const t = targets.get(kind)!;
        const leader = await t.e.settled(30_000);
        const latency = await latencyPhase(t.lat, v['latency-ops'], `r${r}`);
        const latencyLeader = await latencyPhase(t.latLeader, v['latency-ops'], `r${r}L`);
        const throughput = await throughputRound(t.tp, v.outstanding, v.seconds * 1000, t.e.servers[leader].pid, `r${r}`);
        rounds[kind].push({ latency, latencyLeader, throughput });
        log(`round ${r} ${kind.padEnd(9)} ops/s create ${throughput.create.opsPerSec} set ${throughput.setData.opsPerSec} get ${throughput.getData.opsPerSec} | ` +
          `p50/p99 ms via follower create ${latency.create.p50Ms}/${latency.create.p99Ms} set ${latency.setData.p50Ms}/${latency.setData.p99Ms} get ${latency.getData.p50Ms}/${latency.getData.p99Ms} | ` +
          `via leader create ${latencyLeader.create.p50Ms}/${latencyLeader.create.p99Ms} set ${latencyLeader.setData.p50Ms}/${latencyLeader.setData.p99Ms}`);
      }
    }
    for (const t of targets.values()) await closeClients([t.lat, t.latLeader, ...t.tp], 5000);
    const recovery: Partial<Record<ServerKind, { ms: number; failedWrites: number; leader: number }[]>> = {};
    for (const kind of kinds) {
      const e = targets.get(kind)!.e;
      recovery[kind] = [];
      for (let k = 0; k < v.kills; k++) {
        const r = await recoveryOnce(e, k);
        recovery[kind]!.push(r);
        log(`recovery ${kind} #${k + 1}: killed server ${r.leader + 1}, a write succeeded ${r.ms} ms later (${r.failedWrites} failed meanwhile)`);
      }
    }
    for (const [kind, t] of targets) { await t.e.stop(); targets.delete(kind); }

    const summary: Record<string, Record<string, number>> = {};
    for (const kind of kinds) {
      const viaLeader = Object.fromEntries(Object.entries(latencySummary(rounds[kind], 'latencyLeader')).map(([k, x]) => [`leader${k[0].toUpperCase()}${k.slice(1)}`, x]));
      summary[kind] = { ...throughputSummary(rounds[kind]), ...latencySummary(rounds[kind], 'latency'), ...viaLeader, recoveryMedianMs: median(recovery[kind]!.map((r) => r.ms)), recoveryMaxMs: Math.max(...recovery[kind]!.map((r) => r.ms)) };
    }
    const ours = summary.ours;
    const zk = summary.zookeeper;
    const ratios = zk === undefined ? null : Object.fromEntries(Object.keys(ours).map((k) => [k, ratio(ours[k], zk[k])]));
    const doc = {
      benchmark: 'zk-ensemble',
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, node: process.version, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) },
      config: { ...v, quick: flags.has('quick'), servers: 3, note: 'latency: 1 connection to a follower x 1 outstanding (leader*: 1 connection to the leader); throughput: connections spread over the 3 servers; recovery: kill -9 of the leader until a write issued after it succeeds (client connected to all servers)' },
      fsyncFloor: { p50Ms: floor.p50Ms, p99Ms: floor.p99Ms },
      rounds, recovery, summary,
      ratios: ratios === null ? null : { ...ratios, note: 'ours / zookeeper: ops/s above 1 is better; latencies and recovery below 1 are better' },
      bar: zk === undefined ? null : {
        writesAtLeastZk: ours.createOpsPerSec >= zk.createOpsPerSec && ours.setDataOpsPerSec >= zk.setDataOpsPerSec,
        readsAtLeastZk: ours.getDataOpsPerSec >= zk.getDataOpsPerSec,
        recoveryNoSlowerThanZk: ours.recoveryMedianMs <= zk.recoveryMedianMs,
      },
      elapsedSeconds: Math.round((performance.now() - t0) / 1000),
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    log(`done: ${JSON.stringify(doc.bar)}`);
    return 0;
  } finally {
    for (const t of targets.values()) await t.e.stop().catch(() => undefined);
    killAllServers();
  }
}
