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
