// The nemesis's figures: time without an acknowledged write after each kind
// of fault (p50/p99/max), throughput, and the JSON report.
import type { WriteOp } from './checker.js';
import type { FaultRecord } from './faults.js';

export const REPORT_LIMITS = {
  /** A stretch with no acknowledged write counts as unavailable once it is longer than this. */
  gap_threshold_ms: 500,
} as const;

export const UNAVAILABILITY_MEASURE =
  `time without an acknowledged write: the stretches between consecutive acknowledged writes (any client, any instance) ` +
  `longer than ${REPORT_LIMITS.gap_threshold_ms} ms, counted whole, within each fault's window (from its injection to the next fault's, ` +
  `the last one's to convergence). It includes the clients' own delay in finding the new active (request timeout 2 s).`;

export interface Stat { count: number; p50: number; p99: number; max: number }

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function stat(values: readonly number[]): Stat {
  const s = [...values].sort((a, b) => a - b);
  return { count: s.length, p50: Math.round(percentile(s, 50)), p99: Math.round(percentile(s, 99)), max: Math.round(s[s.length - 1] ?? 0) };
}

/**
 * Unavailable time within [from, to): the parts of gaps between consecutive acknowledgements
 * (sorted ackTimes; `from` itself is no acknowledgement) longer than the threshold.
 */
export function unavailableWithin(sortedAcks: readonly number[], from: number, to: number, thresholdMs: number = REPORT_LIMITS.gap_threshold_ms): number {
  if (!(to > from)) return 0;
  // The last ack at or before `from`, then every ack up to `to`.
  let lo = 0;
  let hi = sortedAcks.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (sortedAcks[mid] <= from) lo = mid + 1; else hi = mid; }
  let prev = lo > 0 ? sortedAcks[lo - 1] : -Infinity;
  let total = 0;
  for (let i = lo; i <= sortedAcks.length; i++) {
    const next = i < sortedAcks.length ? sortedAcks[i] : Infinity;
    if (next - prev > thresholdMs) total += Math.max(0, Math.min(next, to) - Math.max(prev, from));
    if (next >= to) break;
    prev = next;
  }
  return total;
}

/** Per fault, its unavailable time; windows run from one injection to the next (the last to `endMs`). */
export function unavailabilityByFault(records: readonly FaultRecord[], writes: readonly WriteOp[], endMs: number): { index: number; kind: string; ms: number }[] {
  const acks = writes.filter((w) => w.outcome === 'ok').map((w) => w.ackMs!).sort((a, b) => a - b);
  const injected = records.filter((r) => Number.isFinite(r.injectedMs));
  return injected.map((r, k) => ({ index: r.index, kind: r.kind, ms: Math.round(unavailableWithin(acks, r.injectedMs, k + 1 < injected.length ? injected[k + 1].injectedMs : endMs)) }));
}

export function unavailabilityByKind(per: readonly { kind: string; ms: number }[]): Record<string, Stat> {
  const by = new Map<string, number[]>();
  for (const x of per) by.set(x.kind, [...(by.get(x.kind) ?? []), x.ms]);
  return Object.fromEntries([...by].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, stat(v)]));
}

export function countByKind(records: readonly FaultRecord[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const r of records) if (Number.isFinite(r.injectedMs)) m[r.kind] = (m[r.kind] ?? 0) + 1;
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)));
}
