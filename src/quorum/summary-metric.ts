// A Prometheus summary cheap enough for the request path. prom-client's own
// Summary keeps t-digests: about 9 us per observation here, a third of a
// create's whole cost at 40k/s. This one counts observations in log-linear
// buckets (8 per doubling: a quantile is off by at most 4.5 % of its value)
// and works the quantiles out at scrape time. Like ZooKeeper's summaries
// (Prometheus simpleclient's defaults), quantiles cover the last 10 minutes
// in 5 windows rotated every 2 minutes; _sum and _count cover the process's
// life.
import type { Metric, Registry } from 'prom-client';

const BUCKETS_PER_DOUBLING = 8;
/** 2^-10 ms (about 1 us) and 2^25 ms (about 9 hours) bound the values told apart. */
const EXP_MIN = -10;
const EXP_MAX = 25;
const VALUE_MIN = 2 ** EXP_MIN;
/** Bucket 0 holds values at or under VALUE_MIN; the last one everything past 2^EXP_MAX. */
const BUCKETS = (EXP_MAX - EXP_MIN) * BUCKETS_PER_DOUBLING + 2;
export const SUMMARY_WINDOWS = 5;
export const SUMMARY_WINDOW_MS = 120_000;

/** ZooKeeper's detail levels: BASIC summaries report the median, ADVANCED ones also the 90th and 99th percentiles. */
export const BASIC_QUANTILES = [0.5] as const;
export const ADVANCED_QUANTILES = [0.5, 0.9, 0.99] as const;

export class SummaryMetric {
  readonly type = 'summary';
  readonly aggregator = 'sum';
  private count = 0;
  private sum = 0;
  private readonly windows: Uint32Array[] = Array.from({ length: SUMMARY_WINDOWS }, () => new Uint32Array(BUCKETS));
  /** Each window's smallest and largest value: a quantile never lies outside what was seen. */
  private readonly mins = new Float64Array(SUMMARY_WINDOWS).fill(Infinity);
  private readonly maxs = new Float64Array(SUMMARY_WINDOWS).fill(-Infinity);
  private current = 0;
  private currentWindow = this.windows[0];

  constructor(readonly name: string, readonly help: string, private readonly quantiles: readonly number[]) {}

  /** A value in the metric's unit (milliseconds for ZooKeeper's). Negative or NaN values count as 0. */
  observe(v: number): void {
    this.count++;
    this.sum += v > 0 ? v : 0;
    let i = 0;
    if (v > VALUE_MIN) {
      i = Math.floor((Math.log2(v) - EXP_MIN) * BUCKETS_PER_DOUBLING) + 1;
      if (i >= BUCKETS) i = BUCKETS - 1;
    }
    this.currentWindow[i]++;
    if (v < this.mins[this.current]) this.mins[this.current] = v;
    if (v > this.maxs[this.current]) this.maxs[this.current] = v;
  }

  /** Drops the oldest window (called every SUMMARY_WINDOW_MS by the owner's timer). */
  rotate(): void {
    this.current = (this.current + 1) % SUMMARY_WINDOWS;
    this.currentWindow = this.windows[this.current];
    this.currentWindow.fill(0);
    this.mins[this.current] = Infinity;
    this.maxs[this.current] = -Infinity;
  }

  /** The q-quantile of the windows' observations, or NaN when they hold none. */
  quantile(q: number): number {
    let n = 0;
    for (const w of this.windows) for (let i = 0; i < BUCKETS; i++) n += w[i];
    if (n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * n));
    const lo = Math.min(...this.mins);
    const hi = Math.max(...this.maxs);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      for (const w of this.windows) seen += w[i];
      if (seen >= rank) return Math.min(hi, Math.max(lo, bucketValue(i)));
    }
    return hi;
  }

  get observations(): { count: number; sum: number } {
    return { count: this.count, sum: this.sum };
  }

  /** What prom-client's registry asks of a metric. */
  get(): { name: string; help: string; type: 'summary'; aggregator: 'sum'; values: { labels: Record<string, string | number>; value: number; metricName?: string }[] } {
    return {
      name: this.name, help: this.help, type: this.type, aggregator: this.aggregator,
      values: [
        // No sample while the windows are empty (simpleclient prints NaN, which prom-client would spell "Nan").
        ...this.quantiles.map((q) => ({ labels: { quantile: q }, value: this.quantile(q) })).filter((v) => !Number.isNaN(v.value)),
        { metricName: `${this.name}_sum`, labels: {}, value: this.sum },
        { metricName: `${this.name}_count`, labels: {}, value: this.count },
      ],
    };
  }

  register(registry: Registry): this {
    // The registry only calls get() and reads name/type: a summary of its own kind fits as any metric does.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** The middle of bucket i on a log scale (its edges for the two open-ended ones). */
function bucketValue(i: number): number {
  if (i === 0) return VALUE_MIN;
  if (i === BUCKETS - 1) return 2 ** EXP_MAX;
  return 2 ** ((i - 0.5) / BUCKETS_PER_DOUBLING + EXP_MIN);
}
