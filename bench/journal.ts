// journal: three journal nodes on 127.0.0.1 (fsync on, data under
// os.tmpdir(), the disk the fsync floor is measured on) and one writer (the
// undici QuorumJournalWriter), in one run:
//   warm-up -> per round and per batch size (1, 16, 256 edits of 200 bytes):
//   the fsync floor (512-byte append + fdatasync), acknowledgement latency
//   with one batch in flight (p50/p99), and throughput with --outstanding
//   batches in flight (acknowledged appends/s, edits/s, MB/s).
// The bar: p50 acknowledgement latency at batch 1 within 2x the fsync p50
// floor + 1 ms (medians over rounds); beside it issue 15's target (p50 within
// 3x the floor's p50, p99 within 5x its p99), and the floor for a majority of
// the three nodes on this one disk. --breakdown traces where a batch-1
// acknowledgement's time goes. One JSON document on stdout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { QuorumJournalWriter } from '../src/client/journal/quorum-writer.js';
import type { JournalNodeAddress } from '../src/client/journal/node-client.js';
import { freePort } from '../src/io/ports.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { procCpuMs, procRssMb } from './lib/proc.js';
import { OUR_CLI, killAllServers, launch, type BenchServer } from './lib/servers.js';
import { measureFsyncFloor, measureMajorityFsyncFloor, median, round1, round3, summarize } from './lib/stats.js';
import { breakdown, traceClient, type AppendStamps } from './lib/journal-breakdown.js';

const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 3, quick: 1, integer: true, help: 'rounds over the batch sizes' },
  { name: 'latency-ops', full: 2000, quick: 300, integer: true, help: 'appends per latency phase (1 batch in flight)' },
  { name: 'seconds', full: 5, quick: 1, help: 'duration of each throughput phase' },
  { name: 'outstanding', full: 16, quick: 16, integer: true, help: 'batches in flight in the throughput phases' },
  { name: 'edit-bytes', full: 200, quick: 200, integer: true, help: 'bytes per edit' },
  { name: 'warmup', full: 5, quick: 2, help: 'seconds of appends before measuring' },
  { name: 'budget-seconds', full: 900, quick: 300, help: 'kill everything and fail past this wall time' },
];
const SWITCHES = {
  quick: 'short run (also BENCH_QUICK=1)',
  breakdown: 'also a batch-1 phase of --latency-ops appends traced stage by stage (writer, loopback, each node\'s parse, queue, write, fdatasync, answer); the nodes run with a trace subscriber preloaded',
  help: 'this text',
};
const TRACE_PRELOAD = new URL('./lib/journal-trace-preload.js', import.meta.url).href;
const BATCH_SIZES = [1, 16, 256];

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

async function startNodes(n: number, trace: boolean): Promise<{ nodes: JournalNodeAddress[]; procs: BenchServer[]; cfgPath: string; traceFiles: Map<number, string> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-journal-'));
  const nodes: JournalNodeAddress[] = [];
  for (let i = 1; i <= n; i++) nodes.push({ id: i, host: '127.0.0.1', port: await freePort() });
  const cfgPath = path.join(dir, 'cluster.yaml');
  fs.writeFileSync(cfgPath, ['cluster: bench', 'journal:', `  dataDir: ${dir}/node-{id}`, '  nodes:',
    ...nodes.map((a) => `    - { id: ${a.id}, host: ${a.host}, port: ${a.port} }`)].join('\n') + '\n');
  const procs: BenchServer[] = [];
  const traceFiles = new Map<number, string>();
  for (const a of nodes) {
    const traceFile = path.join(dir, `trace-${a.id}.jsonl`);
    if (trace) traceFiles.set(a.id, traceFile);
    const preload = trace ? ['--import', TRACE_PRELOAD] : [];
    procs.push(await launch({ kind: 'ours', dir: path.join(dir, `node-${a.id}`), port: a.port, cmd: process.execPath, args: [...preload, OUR_CLI, 'journal', '--config', cfgPath, '--id', String(a.id)], env: { ...process.env, QUORATE_LOG_LEVEL: 'warn', ...(trace ? { QUORATE_JOURNAL_TRACE_FILE: traceFile } : {}) } }));
  }
  return { nodes, procs, cfgPath, traceFiles };
}

const batchOf = (size: number, bytes: number, tag: number): Buffer[] => Array.from({ length: size }, (_, i) => {
  const b = Buffer.alloc(bytes, 0x61);
  b.writeUInt32BE(tag, 0);
  b.writeUInt32BE(i, 4);
  return b;
});

/** Latency with one batch in flight, and the CPU each append cost the writer and the nodes (together): figures a loaded machine disturbs less than latency. */
async function latencyPhase(w: QuorumJournalWriter, size: number, ops: number, bytes: number, nodePids: number[] = []) {
  const samples: number[] = [];
  const batch = batchOf(size, bytes, 1);
  const cpu0 = process.cpuUsage();
  const nodes0 = nodePids.map((pid) => procCpuMs(pid) ?? NaN);
  for (let i = 0; i < ops; i++) {
    const s = performance.now();
    await w.append(batch);
    samples.push(performance.now() - s);
  }
  const cpu = process.cpuUsage(cpu0);
  const nodesMs = nodePids.reduce((t, pid, i) => t + ((procCpuMs(pid) ?? NaN) - nodes0[i]), 0);
  return { ...summarize(samples), writerCpuUsPerAppend: round1((cpu.user + cpu.system) / ops), nodesCpuUsPerAppend: round1((nodesMs * 1000) / ops) };
}

/** Batch-1 appends one at a time, each with its txid and its start and acknowledgement stamps. */
async function tracedPhase(w: QuorumJournalWriter, ops: number, bytes: number): Promise<AppendStamps[]> {
  const out: AppendStamps[] = [];
  const batch = batchOf(1, bytes, 3);
  for (let i = 0; i < ops; i++) {
    const startNs = process.hrtime.bigint();
    const r = await w.append(batch);
    out.push({ first: r.firstTxid, startNs, ackNs: process.hrtime.bigint() });
  }
  return out;
}

async function throughputPhase(w: QuorumJournalWriter, size: number, seconds: number, outstanding: number, bytes: number) {
  const batch = batchOf(size, bytes, 2);
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let acked = 0;
  const samples: number[] = [];
  await Promise.all(Array.from({ length: outstanding }, async () => {
    while (performance.now() < deadline) {
      const s = performance.now();
      await w.append(batch);
      samples.push(performance.now() - s);
      acked++;
    }
  }));
  const secs = (performance.now() - start) / 1000;
  const lat = summarize(samples);
  return {
    appendsPerSec: Math.round(acked / secs),
    editsPerSec: Math.round((acked * size) / secs),
    mbPerSec: round3((acked * size * bytes) / secs / 1e6),
    underLoadP50Ms: lat.p50Ms,
    underLoadP99Ms: lat.p99Ms,
  };
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs('journal', argv, SPECS, SWITCHES);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.values;
  if (!fs.existsSync(OUR_CLI)) throw new Error(`${OUR_CLI} is missing: run "npm run build"`);
  const budget = setTimeout(() => { log('budget exceeded: killing everything'); killAllServers(); process.exit(1); }, o['budget-seconds'] * 1000);
  budget.unref();
  const traced = parsed.flags.has('breakdown');
  const { nodes, procs, traceFiles } = await startNodes(3, traced);
  log(`3 journal nodes on ${nodes.map((n) => n.port).join(', ')}`);
  const w = await QuorumJournalWriter.open('bench', { nodes, formatIfNew: true, pipelining: Math.max(16, o.outstanding) });
  log(`writer open in epoch ${w.epoch}; warming up ${o.warmup} s`);
  const warmEnd = performance.now() + o.warmup * 1000;
  while (performance.now() < warmEnd) {
    await latencyPhase(w, 1, 200, o['edit-bytes']);
    await throughputPhase(w, 16, 0.3, o.outstanding, o['edit-bytes']);
  }
  let appendStamps: AppendStamps[] = [];
  let clientTrace: ReturnType<typeof traceClient> | null = null;
  if (traced) {
    log(`breakdown: ${o['latency-ops']} traced batch-1 appends`);
    clientTrace = traceClient();
    appendStamps = await tracedPhase(w, o['latency-ops'], o['edit-bytes']);
    clientTrace.stop();
  }
  const cpu0 = procs.map((p) => procCpuMs(p.pid) ?? 0);
  const rounds: Record<string, unknown>[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const round: Record<string, unknown> = { round: r + 1 };
    for (const size of BATCH_SIZES) {
      const floor = measureFsyncFloor(1000);
      const majorityFloor = size === 1 ? await measureMajorityFsyncFloor(1000, nodes.length) : null;
      const latency = await latencyPhase(w, size, size === 256 ? Math.max(100, o['latency-ops'] >> 2) : o['latency-ops'], o['edit-bytes'], procs.map((p) => p.pid));
      const throughput = await throughputPhase(w, size, o.seconds, o.outstanding, o['edit-bytes']);
      await w.roll();
      round[`batch${size}`] = { fsyncFloor: { p50Ms: floor.p50Ms, p99Ms: floor.p99Ms }, ...(majorityFloor === null ? {} : { majorityFsyncFloor: { p50Ms: majorityFloor.majority.p50Ms, p99Ms: majorityFloor.majority.p99Ms, firstP50Ms: majorityFloor.first.p50Ms, lastP50Ms: majorityFloor.last.p50Ms } }), latency, throughput };
      log(`round ${r + 1} batch ${size}: floor p50 ${floor.p50Ms} ms; ack p50 ${latency.p50Ms} p99 ${latency.p99Ms} ms; ${throughput.appendsPerSec} appends/s, ${throughput.editsPerSec} edits/s, ${throughput.mbPerSec} MB/s`);
    }
    rounds.push(round);
  }
  const wallMs = performance.now() - t0;
  const cpuPct = procs.map((p, i) => round1((((procCpuMs(p.pid) ?? 0) - cpu0[i]) / wallMs) * 100));
  const pick = (size: number, f: (b: { fsyncFloor: { p50Ms: number; p99Ms: number }; latency: { p50Ms: number; p99Ms: number }; throughput: Record<string, number> }) => number) =>
    round3(median(rounds.map((r) => f(r[`batch${size}`] as never))));
  const summary: Record<string, Record<string, number>> = {};
  for (const size of BATCH_SIZES) {
    summary[`batch${size}`] = {
      ackP50Ms: pick(size, (b) => b.latency.p50Ms), ackP99Ms: pick(size, (b) => b.latency.p99Ms),
      writerCpuUsPerAppend: pick(size, (b) => (b.latency as unknown as { writerCpuUsPerAppend: number }).writerCpuUsPerAppend),
      nodesCpuUsPerAppend: pick(size, (b) => (b.latency as unknown as { nodesCpuUsPerAppend: number }).nodesCpuUsPerAppend),
      appendsPerSec: pick(size, (b) => b.throughput.appendsPerSec), editsPerSec: pick(size, (b) => b.throughput.editsPerSec),
      mbPerSec: pick(size, (b) => b.throughput.mbPerSec), underLoadP99Ms: pick(size, (b) => b.throughput.underLoadP99Ms),
    };
  }
  const floorP50 = pick(1, (b) => b.fsyncFloor.p50Ms);
  const floorP99 = pick(1, (b) => b.fsyncFloor.p99Ms);
  const majorityP50 = pick(1, (b) => (b as unknown as { majorityFsyncFloor: { p50Ms: number } }).majorityFsyncFloor.p50Ms);
  const majorityP99 = pick(1, (b) => (b as unknown as { majorityFsyncFloor: { p99Ms: number } }).majorityFsyncFloor.p99Ms);
  const ackP99 = summary.batch1.ackP99Ms;
  const limit = round3(2 * floorP50 + 1);
  const ackP50 = summary.batch1.ackP50Ms;
  const rss = procs.map((p) => procRssMb(p.pid));
  await w.close();
  for (const p of procs) await p.stop();
  const portToNode = new Map(nodes.map((n) => [n.port, n.id]));
  const traceBreakdown = clientTrace === null ? null : breakdown(appendStamps, clientTrace.requests, portToNode, traceFiles);
  const report = {
    benchmark: 'journal',
    machine: { cpus: os.cpus().length, node: process.version, tmpdir: os.tmpdir() },
    options: o,
    fsyncFloor: { p50Ms: floorP50, p99Ms: floorP99, what: '512-byte append + fdatasync, 1000 times, before each batch-1 latency phase (median over rounds)' },
    majorityFsyncFloor: { p50Ms: majorityP50, p99Ms: majorityP99, what: `${nodes.length} threads, a file each, fdatasync at one signal: time until a majority (${Math.floor(nodes.length / 2) + 1} of ${nodes.length}) returned, 1000 times, before each batch-1 latency phase (median over rounds)` },
    summary,
    target: {
      what: 'issue 15: batch-1 acknowledgement p50 <= 3 x fsync p50 and p99 <= 5 x fsync p99 (the floor of this run)',
      ackP50Ms: ackP50, ackP99Ms: ackP99, ratioP50: round3(ackP50 / floorP50), ratioP99: round3(ackP99 / floorP99),
      ratioP50ToMajorityFloor: round3(ackP50 / majorityP50), ratioP99ToMajorityFloor: round3(ackP99 / majorityP99),
      pass: ackP50 <= 3 * floorP50 && ackP99 <= 5 * floorP99,
    },
    bar: { what: 'p50 acknowledgement latency at batch 1 <= 2 x fsync p50 + 1 ms', ackP50Ms: ackP50, limitMs: limit, ratioToFloorP50: round3(ackP50 / floorP50), pass: ackP50 <= limit },
    nodes: { rssMbAtEnd: rss, cpuPctOneCoreOverRun: cpuPct },
    rounds,
    ...(traceBreakdown === null ? {} : { breakdown: traceBreakdown }),
    seconds: round1(wallMs / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.bar.pass ? 0 : 1;
}
