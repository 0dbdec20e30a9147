// The request path's summary: its quantiles against the exact ones, its
// windows, and what prom-client's registry prints of it.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ADVANCED_QUANTILES, BASIC_QUANTILES, SUMMARY_WINDOWS, SummaryMetric } from '../../../src/quorum/summary-metric.js';

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

describe('SummaryMetric', () => {
  it('puts each quantile within 4.5 % of the exact one, over latencies from microseconds to seconds', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const s = new SummaryMetric('x', 'x', ADVANCED_QUANTILES);
    const values = Array.from({ length: 50_000 }, () => 0.002 * 10 ** (rand() * 6));
    for (const v of values) s.observe(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = exactQuantile(sorted, q);
      expect(Math.abs(s.quantile(q) - exact) / exact, `q ${q}`).toBeLessThan(0.045);
    }
    expect(s.observations.count).toBe(values.length);
    expect(s.observations.sum).toBeCloseTo(values.reduce((a, b) => a + b, 0), 3);
  });

  it('never reports a quantile outside what was observed', () => {
    const s = new SummaryMetric('x', 'x', BASIC_QUANTILES);
    s.observe(1.43);
    expect(s.quantile(0.5)).toBe(1.43);
    s.observe(3);
    // The bucket's middle, then clamped to what was seen: at most 3, and within the bucket's 4.5 %.
    expect(s.quantile(0.99)).toBeLessThanOrEqual(3);
    expect(s.quantile(0.99)).toBeGreaterThan(3 * 0.955);
  });

  it('forgets what is older than its windows, but keeps _sum and _count for the process\'s life', () => {
    const s = new SummaryMetric('x', 'x', BASIC_QUANTILES);
    s.observe(100);
    for (let i = 0; i < SUMMARY_WINDOWS - 1; i++) s.rotate();
    expect(s.quantile(0.5)).toBe(100);
    s.observe(2);
    s.rotate();
    // The window holding 100 went; the one holding 2 stays for the windows' whole span.
    expect(s.quantile(0.5)).toBe(2);
    for (let i = 0; i < SUMMARY_WINDOWS - 2; i++) s.rotate();
    expect(s.quantile(0.5)).toBe(2);
    s.rotate();
    expect(s.quantile(0.5)).toBeNaN();
    expect(s.observations).toEqual({ count: 2, sum: 102 });
  });

  it('prints as a Prometheus summary, without quantile samples while its windows are empty', async () => {
    const registry = new Registry();
    const s = new SummaryMetric('updatelatency', 'write latency, ms', ADVANCED_QUANTILES).register(registry);
    expect(await registry.metrics()).toBe('# HELP updatelatency write latency, ms\n# TYPE updatelatency summary\nupdatelatency_sum 0\nupdatelatency_count 0\n');
    s.observe(0.5);
    const text = await registry.metrics();
    for (const q of ['0.5', '0.9', '0.99']) expect(text).toContain(`updatelatency{quantile="${q}"} 0.5\n`);
    expect(text).toContain('updatelatency_count 1\n');
  });
});
