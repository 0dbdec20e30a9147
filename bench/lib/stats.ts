// Small statistics helpers for the benchmarks, and the fsync floor: how long
// fdatasync of a small append takes on the disk the servers write to.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export interface LatencySummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(samplesMs: number[] | Float64Array): LatencySummary {
  const s = Float64Array.from(samplesMs).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    p50Ms: round3(percentile(s, 50)),
    p99Ms: round3(percentile(s, 99)),
    meanMs: round3(s.length ? sum / s.length : NaN),
    maxMs: round3(s.length ? s[s.length - 1] : NaN),
  };
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function round3(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x;
}

export function round1(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 10) / 10 : x;
}

/** a / b rounded, or null when it means nothing. */
export function ratio(a: number, b: number): number | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return round3(a / b);
}

/**
 * fdatasync after a 512-byte append, `iterations` times, in a file under
 * os.tmpdir() (the file system the servers' data dirs are on).
 */
export function measureFsyncFloor(iterations: number): LatencySummary & { iterations: number; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fsync-'));
  const file = path.join(dir, 'floor.bin');
  const fd = fs.openSync(file, 'a');
  const buf = Buffer.alloc(512, 0x61);
  const samples = new Float64Array(iterations);
  try {
    for (let i = 0; i < 50; i++) { fs.writeSync(fd, buf); fs.fdatasyncSync(fd); } // first extents, page cache
    for (let i = 0; i < iterations; i++) {
      fs.writeSync(fd, buf);
      const t0 = performance.now();
      fs.fdatasyncSync(fd);
      samples[i] = performance.now() - t0;
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { iterations, file: path.join(os.tmpdir(), 'bench-fsync-*', 'floor.bin'), ...summarize(samples) };
}

/**
 * The floor for a majority of `n` journal nodes on this one disk: `n` threads each with its own file
 * append 512 bytes, then on one signal all fdatasync at once; per round, the time from the signal
 * until the majority-th (2nd of 3) fdatasync returned, and the first and the last. Threads stand in
 * for the node processes (fdatasync blocks only its caller); the wake-up on the signal is counted, as
 * a node's wake-up on a request is.
 */
export async function measureMajorityFsyncFloor(iterations: number, n = 3): Promise<{ iterations: number; nodes: number; majority: LatencySummary; first: LatencySummary; last: LatencySummary }> {
  const { Worker } = await import('node:worker_threads');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fsync-majority-'));
  const warm = 50;
  const sab = new SharedArrayBuffer(16 + 8 * n);
  const ctl = new Int32Array(sab, 0, 4);
  const ends = new BigInt64Array(sab, 16, n);
  const code = `
    const { workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const { sab, idx, file, rounds, n } = workerData;
    const ctl = new Int32Array(sab, 0, 4);
    const ends = new BigInt64Array(sab, 16, n);
    const fd = fs.openSync(file, 'a');
    const buf = Buffer.alloc(512, 0x61);
    for (let r = 1; r <= rounds; r++) {
      fs.writeSync(fd, buf);
      Atomics.add(ctl, 2, 1); Atomics.notify(ctl, 2);
      while (Atomics.load(ctl, 0) < r) Atomics.wait(ctl, 0, r - 1);
      fs.fdatasyncSync(fd);
      ends[idx] = process.hrtime.bigint();
      Atomics.add(ctl, 1, 1); Atomics.notify(ctl, 1);
    }
    fs.closeSync(fd);`;
  const workers = Array.from({ length: n }, (_, idx) => new Worker(code, { eval: true, workerData: { sab, idx, file: path.join(dir, `node-${idx}.bin`), rounds: warm + iterations, n } }));
  let failure: Error | null = null;
  for (const w of workers) w.on('error', (e) => { failure = e; });
  // Bounded: a thread that died (its error arrives only once this loop yields) fails the round after 10 s.
  const waitFor = (slot: number, target: number) => {
    const giveUpAt = performance.now() + 10_000;
    for (let c = Atomics.load(ctl, slot); c < target; c = Atomics.load(ctl, slot)) {
      if (failure !== null || performance.now() > giveUpAt) throw new Error(`majority fsync floor: a thread stopped (${failure?.message ?? 'no answer within 10 s'})`);
      Atomics.wait(ctl, slot, c, 1000);
    }
  };
  const majority: number[] = [];
  const first: number[] = [];
  const last: number[] = [];
  try {
    for (let r = 1; r <= warm + iterations; r++) {
      waitFor(2, r * n); // every thread wrote its 512 bytes and waits for the signal
      Atomics.store(ctl, 1, 0);
      const t0 = process.hrtime.bigint();
      Atomics.store(ctl, 0, r);
      Atomics.notify(ctl, 0);
      waitFor(1, n);
      if (r <= warm) continue;
      const sorted = Array.from(ends, (e) => Number(e - t0) / 1e6).sort((a, b) => a - b);
      first.push(sorted[0]);
      majority.push(sorted[Math.floor(n / 2)]);
      last.push(sorted[n - 1]);
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { iterations, nodes: n, majority: summarize(majority), first: summarize(first), last: summarize(last) };
}
