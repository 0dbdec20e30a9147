// Load generators over our ZkClient, against any ZooKeeper-compatible server:
//   - latency: one connection, one request outstanding, N requests in turn;
//   - throughput: C connections x K requests outstanding for a fixed time.
// Tree layout (made by prepareTree): /bench/lat for latency nodes,
// /bench/tp/cN (one parent per connection) for throughput creates,
// /bench/tp/s/cN_wK for the nodes setData / getData hammer.
// Every phase that creates nodes is followed by one that deletes them, so
// the tree does not grow from round to round.
import { performance } from 'node:perf_hooks';
import { ZkClient, CreateMode, Err, isZkError, type ZkClientTls } from '../../src/client/index.js';
import { startCpuMeter, type CpuReading, type GeneratorCpu } from './proc.js';
import { round1, summarize, type LatencySummary } from './stats.js';

export const PAYLOAD_64 = Buffer.alloc(64, 0x78);

export async function connectClient(connectString: string, sessionTimeoutMs = 30_000, tls: ZkClientTls | null = null): Promise<ZkClient> {
  const zk = new ZkClient({ connectString, sessionTimeoutMs, connectTimeoutMs: 5000, requestTimeoutMs: 20_000, tls });
  await zk.connect({ timeoutMs: 10_000 });
  return zk;
}

export async function closeClients(clients: ZkClient[], timeoutMs = 10_000): Promise<void> {
  await Promise.race([
    Promise.allSettled(clients.map((c) => c.close({ timeoutMs }))),
    new Promise((r) => setTimeout(r, timeoutMs + 1000).unref()),
  ]);
}

async function ensure(zk: ZkClient, path: string, data: Buffer | null = null): Promise<void> {
  try { await zk.create(path, data, { mode: CreateMode.PERSISTENT }); } catch (e) { if (!isZkError(e, Err.NODEEXISTS)) throw e; }
}

/** Parents for both modes and the setData/getData targets (one per connection x slot). */
export async function prepareTree(zk: ZkClient, connections: number, outstanding: number): Promise<void> {
  for (const p of ['/bench', '/bench/lat', '/bench/tp', '/bench/tp/s']) await ensure(zk, p);
  const work: Promise<void>[] = [];
  for (let c = 0; c < connections; c++) {
    work.push(ensure(zk, `/bench/tp/c${c}`));
    for (let w = 0; w < outstanding; w++) work.push(ensure(zk, `/bench/tp/s/c${c}_w${w}`, PAYLOAD_64));
  }
  await Promise.all(work);
}

// ---------- latency: 1 connection x 1 outstanding ----------

export interface LatencyRound {
  create: LatencySummary;
  setData: LatencySummary;
  getData: LatencySummary;
  delete: LatencySummary;
}

async function timed(n: number, op: (i: number) => Promise<unknown>): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    out[i] = performance.now() - t0;
  }
  return out;
}

/** create N fresh 64 B nodes, setData each, getData each, delete each; one request at a time. */
export async function latencyPhase(zk: ZkClient, n: number, tag: string): Promise<LatencyRound> {
  const p = (i: number) => `/bench/lat/${tag}-${i}`;
  const create = await timed(n, (i) => zk.create(p(i), PAYLOAD_64, { mode: CreateMode.PERSISTENT }));
  const setData = await timed(n, (i) => zk.setData(p(i), PAYLOAD_64, -1));
  const getData = await timed(n, (i) => zk.getData(p(i)));
  const del = await timed(n, (i) => zk.delete(p(i)));
  return { create: summarize(create), setData: summarize(setData), getData: summarize(getData), delete: summarize(del) };
}

// ---------- throughput: C connections x K outstanding ----------

export interface ThroughputResult {
  ops: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  opsPerSec: number;
  /** Latency of each request under this load (from send to reply). */
  underLoad: LatencySummary;
  generatorCpu: GeneratorCpu;
  serverCpu: CpuReading | null;
  /** CPU of every other process on the machine over the phase (noise). */
  othersCpu: CpuReading | null;
  /** Set when the delete phase did not get through its work within its bound (nodes left behind). */
  unfinished?: number;
}

/** Returns the next request for connection c, slot w, or null when the slot has no more work. */
export type NextOp = (c: number, w: number) => (() => Promise<unknown>) | null;

const ERRORS_MAX = 1000;

export async function throughputPhase(
  clients: ZkClient[], outstanding: number, durationMs: number, next: NextOp, serverPid: number,
): Promise<ThroughputResult> {
  const samples: number[] = [];
  let ops = 0;
  let errors = 0;
  let firstError: string | null = null;
  const meter = startCpuMeter(serverPid);
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const slot = async (c: number, w: number) => {
    while (performance.now() < deadline) {
      const op = next(c, w);
      if (op === null) return;
      const s = performance.now();
      try {
        await op();
        samples.push(performance.now() - s);
        ops++;
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
        if (errors > ERRORS_MAX) throw new Error(`more than ${ERRORS_MAX} errors; first: ${firstError}`);
      }
    }
  };
  const slots: Promise<void>[] = [];
  for (let c = 0; c < clients.length; c++) for (let w = 0; w < outstanding; w++) slots.push(slot(c, w));
  await Promise.all(slots);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter();
  return {
    ops, errors, firstError, seconds: round1(seconds), opsPerSec: Math.round(ops / seconds),
    underLoad: summarize(samples), generatorCpu: cpu.generator, serverCpu: cpu.server, othersCpu: cpu.others,
  };
}

export interface ThroughputRound {
  create: ThroughputResult;
  /** Deleting what create made (bounded by deleteMaxMs). */
  delete: ThroughputResult;
  setData: ThroughputResult;
  getData: ThroughputResult;
}

/** create for durationMs, delete all that, then setData and getData for durationMs each. */
export async function throughputRound(
  clients: ZkClient[], outstanding: number, durationMs: number, serverPid: number, tag: string, deleteMaxMs = 60_000,
): Promise<ThroughputRound> {
  const C = clients.length;
  const made: number[][] = Array.from({ length: C }, () => new Array<number>(outstanding).fill(0));
  const name = (c: number, w: number, i: number) => `/bench/tp/c${c}/${tag}w${w}-${i}`;
  const create = await throughputPhase(clients, outstanding, durationMs, (c, w) => {
    const i = made[c][w]++;
    return () => clients[c].create(name(c, w, i), PAYLOAD_64, { mode: CreateMode.PERSISTENT });
  }, serverPid);
  const deleted: number[][] = Array.from({ length: C }, () => new Array<number>(outstanding).fill(0));
  const del = await throughputPhase(clients, outstanding, deleteMaxMs, (c, w) => {
    if (deleted[c][w] >= made[c][w]) return null;
    const i = deleted[c][w]++;
    return () => clients[c].delete(name(c, w, i)).catch((e) => { if (!isZkError(e, Err.NONODE)) throw e; });
  }, serverPid);
  let left = 0;
  for (let c = 0; c < C; c++) for (let w = 0; w < outstanding; w++) left += made[c][w] - deleted[c][w];
  if (left > 0) del.unfinished = left;
  const target = (c: number, w: number) => `/bench/tp/s/c${c}_w${w}`;
  const setData = await throughputPhase(clients, outstanding, durationMs,
    (c, w) => () => clients[c].setData(target(c, w), PAYLOAD_64, -1), serverPid);
  const getData = await throughputPhase(clients, outstanding, durationMs,
    (c, w) => () => clients[c].getData(target(c, w)), serverPid);
  return { create, delete: del, setData, getData };
}
