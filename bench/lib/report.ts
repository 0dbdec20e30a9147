// Turns the rounds of a ours-vs-ZooKeeper run into the summary (medians over
// rounds), the ratios, the bar verdicts and the load generator's CPU view.
import type { LatencyRound, ThroughputResult, ThroughputRound } from './load.js';
import type { CpuReading } from './proc.js';
import type { BenchKind } from './servers.js';
import { median, ratio, round1, round3, type LatencySummary } from './stats.js';

export interface ServerRound {
  /** sync(1) before this server's phases: dirty page cache left by anything else, and how long flushing it took. */
  settle: { dirtyKbBefore: number | null; syncMs: number };
  /** fdatasync floor measured just before this latency phase. */
  fsyncFloor: { n: number; p50Ms: number; p99Ms: number; maxMs: number };
  latency: LatencyRound;
  throughput: ThroughputRound;
  /** CPU used by other processes on the machine over this server's whole round (latency + throughput). */
  othersCpu: CpuReading | null;
  /** The busiest other processes over that time, from two /proc snapshots (processes that came and went meanwhile are missed). */
  topOtherProcesses: { pid: number; name: string; pctOneCore: number }[];
  /** The server's VmRSS at the end of its round (a figure that climbs round after round is a leak). */
  rssMbAfter: number | null;
}

export type Round = { round: number } & Partial<Record<BenchKind, ServerRound>>;

export type Summary = Record<string, number>;

const TP_OPS = ['create', 'setData', 'getData', 'delete'] as const;
const LAT_OPS = ['create', 'setData', 'getData', 'delete'] as const;

/** Medians over rounds of every throughput and latency figure of one server. */
export function summarizeServer(rounds: Round[], kind: BenchKind): Summary {
  const rs = rounds.map((r) => r[kind]).filter((r): r is ServerRound => r !== undefined);
  const out: Summary = {};
  for (const op of TP_OPS) {
    out[`${op}OpsPerSec`] = Math.round(median(rs.map((r) => r.throughput[op].opsPerSec)));
    out[`${op}UnderLoadP99Ms`] = round3(median(rs.map((r) => r.throughput[op].underLoad.p99Ms)));
  }
  for (const op of LAT_OPS) {
    const pick = (f: keyof LatencySummary) => round3(median(rs.map((r) => r.latency[op][f])));
    out[`${op}P50Ms`] = pick('p50Ms');
    out[`${op}P99Ms`] = pick('p99Ms');
    out[`${op}MeanMs`] = pick('meanMs');
  }
  for (const op of TP_OPS) {
    const s = rs.map((r) => r.throughput[op].serverCpu?.pctOneCore ?? NaN);
    out[`${op}ServerCpuPctOneCore`] = round1(median(s));
  }
  return out;
}

/** ours / zookeeper for every figure: above 1 is better for ops/s, below 1 is better for latencies. */
export function ratios(ours: Summary, zk: Summary): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const k of Object.keys(ours)) {
    if (k.endsWith('CpuPctOneCore')) continue;
    const key = k.endsWith('Ms') ? k.slice(0, -2) : k; // createP99Ms -> createP99
    out[key] = ratio(ours[k], zk[k]);
  }
  return out;
}

/**
 * The bars. Throughput: our medians over rounds >= ZooKeeper's for create, setData and getData.
 * Latency: our 1-outstanding p99 for create and setData <= fsync p99 + 1 ms, where the fsync p99 is
 * the one measured right before our latency phase in the same round (the disk's tail drifts with the
 * machine's other I/O); verdict on the medians over rounds. The start-of-run floor is in the detail.
 */
export function bar(ours: Summary, zk: Summary | null, startFloorP99Ms: number, rounds: Round[]) {
  const rs = rounds.map((r) => r.ours).filter((r): r is ServerRound => r !== undefined);
  const perRound = rs.map((r) => ({
    fsyncP99Ms: r.fsyncFloor.p99Ms, limitMs: round3(r.fsyncFloor.p99Ms + 1),
    createP99Ms: r.latency.create.p99Ms, setDataP99Ms: r.latency.setData.p99Ms,
    ok: r.latency.create.p99Ms <= r.fsyncFloor.p99Ms + 1 && r.latency.setData.p99Ms <= r.fsyncFloor.p99Ms + 1,
  }));
  const limit = round3(median(rs.map((r) => r.fsyncFloor.p99Ms)) + 1);
  const tp = zk === null ? null : {
    create: ours.createOpsPerSec >= zk.createOpsPerSec,
    setData: ours.setDataOpsPerSec >= zk.setDataOpsPerSec,
    getData: ours.getDataOpsPerSec >= zk.getDataOpsPerSec,
  };
  const p99 = { create: ours.createP99Ms <= limit, setData: ours.setDataP99Ms <= limit };
  const startLimit = round3(startFloorP99Ms + 1);
  return {
    writesAndReadsAtLeastZk: tp === null ? null : tp.create && tp.setData && tp.getData,
    p99WithinFsyncP99Plus1ms: p99.create && p99.setData,
    detail: {
      throughputAtLeastZk: tp,
      p99LimitMs: limit,
      p99LimitNote: 'median over rounds of the fsync p99 measured just before our latency phase, + 1 ms',
      oursMedianP99Ms: { create: ours.createP99Ms, setData: ours.setDataP99Ms },
      zookeeperMedianP99Ms: zk === null ? null : { create: zk.createP99Ms, setData: zk.setDataP99Ms },
      p99WithinLimit: p99,
      perRound,
      againstStartOfRunFloor: { limitMs: startLimit, ok: ours.createP99Ms <= startLimit && ours.setDataP99Ms <= startLimit },
    },
  };
}

/** The load generator's CPU over every throughput phase, and the phases where it may have been the bottleneck. */
export function generatorCpuView(rounds: Round[]) {
  const phases: { round: number; server: BenchKind; op: string; r: ThroughputResult }[] = [];
  for (const rd of rounds) {
    for (const kind of ['ours', 'ours-metrics', 'zookeeper'] as const) {
      const s = rd[kind];
      if (s) for (const op of TP_OPS) phases.push({ round: rd.round, server: kind, op, r: s.throughput[op] });
    }
  }
  const pct = phases.map((p) => p.r.generatorCpu.pctOneCore);
  const byServerOp: Record<string, { pctOneCore: number; pctAllCores: number; eventLoopUtilization: number }> = {};
  for (const kind of ['ours', 'ours-metrics', 'zookeeper'] as const) {
    for (const op of TP_OPS) {
      const ps = phases.filter((p) => p.server === kind && p.op === op);
      if (ps.length === 0) continue;
      byServerOp[`${kind}.${op}`] = {
        pctOneCore: round1(median(ps.map((p) => p.r.generatorCpu.pctOneCore))),
        pctAllCores: round1(median(ps.map((p) => p.r.generatorCpu.pctAllCores))),
        eventLoopUtilization: round3(median(ps.map((p) => p.r.generatorCpu.eventLoopUtilization))),
      };
    }
  }
  const saturated = phases
    .filter((p) => p.r.generatorCpu.pctOneCore >= 90 || p.r.generatorCpu.eventLoopUtilization >= 0.95)
    .map((p) => `round ${p.round} ${p.server} ${p.op}: ${p.r.generatorCpu.pctOneCore}% of a core, ELU ${p.r.generatorCpu.eventLoopUtilization}`);
  const others = phases.map((p) => p.r.othersCpu?.pctAllCores ?? NaN);
  const noisy = phases
    .filter((p) => (p.r.othersCpu?.pctAllCores ?? 0) >= 10)
    .map((p) => `round ${p.round} ${p.server} ${p.op}: other processes used ${p.r.othersCpu!.pctAllCores}% of all cores`);
  return {
    note: 'process.cpuUsage() of the load generator (one Node thread) over each throughput phase; 100% of one core = saturated. ' +
      'othersCpu: CPU used by every other process on the machine meanwhile (/proc/stat minus generator and server).',
    maxPctOneCore: pct.length ? Math.max(...pct) : null,
    medianByPhase: byServerOp,
    possiblySaturatedPhases: saturated,
    othersCpuPctAllCores: { median: round1(median(others)), max: others.length ? round1(Math.max(...others.filter(Number.isFinite))) : null },
    noisyPhases: noisy,
  };
}

/** One stderr line per round and server. */
export function roundLine(kind: BenchKind, s: ServerRound): string {
  const t = s.throughput;
  const l = s.latency;
  return `${kind.padEnd(12)} dirty ${s.settle.dirtyKbBefore} kB, fsync p99 ${s.fsyncFloor.p99Ms} | ops/s create ${t.create.opsPerSec} set ${t.setData.opsPerSec} get ${t.getData.opsPerSec} delete ${t.delete.opsPerSec}` +
    ` | p50/p99 ms create ${l.create.p50Ms}/${l.create.p99Ms} set ${l.setData.p50Ms}/${l.setData.p99Ms} get ${l.getData.p50Ms}/${l.getData.p99Ms}` +
    ` | gen cpu ${t.create.generatorCpu.pctOneCore}/${t.setData.generatorCpu.pctOneCore}/${t.getData.generatorCpu.pctOneCore}%` +
    ` | others ${t.create.othersCpu?.pctAllCores}/${t.setData.othersCpu?.pctAllCores}/${t.getData.othersCpu?.pctAllCores}% of all`;
}
