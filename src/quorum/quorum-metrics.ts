// A quorum server's Prometheus metrics, under Apache ZooKeeper 3.8's names so
// that a dashboard made for ZooKeeper's PrometheusMetricsProvider works
// unchanged. Counts are read when scraped, from the same facts mntr and the
// AdminServer's monitor show (serverFacts); the request path only feeds the
// latency summaries (about 25 ns an observation) and plain counters.
import { Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { FACTS, serverFacts, type FactName, type FactScope, type ServerSnapshotForWords } from './four-letter-words.js';
import { ADVANCED_QUANTILES, BASIC_QUANTILES, SUMMARY_WINDOW_MS, SummaryMetric } from './summary-metric.js';

const ROLES = ['standalone', 'leader', 'follower', 'observer', 'looking'] as const;

/** A gauge or counter whose value is one of serverFacts' rows; absent rows (leader-only ones on a follower) have no sample. */
class FactMetric {
  readonly aggregator = 'sum';
  constructor(readonly name: FactName, readonly help: string, readonly type: 'gauge' | 'counter', private readonly read: (name: FactName) => number | undefined) {}
  get() {
    const v = this.read(this.name);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: v === undefined ? [] : [{ labels: {}, value: v }] };
  }
}

export class QuorumMetrics {
  readonly registry = new Registry();
  /** ZooKeeper's ServerMetrics summaries, in ms; read and update latencies at its ADVANCED detail (3 quantiles), the rest BASIC (the median). */
  readonly readLatency = new SummaryMetric('readlatency', 'latency of read requests, from the request read to its reply written, ms', ADVANCED_QUANTILES).register(this.registry);
  readonly updateLatency = new SummaryMetric('updatelatency', 'latency of write requests, from the request read to its reply written, ms', ADVANCED_QUANTILES).register(this.registry);
  readonly fsyncTime = new SummaryMetric('fsynctime', 'time of each durable write or fdatasync of the transaction log, ms', BASIC_QUANTILES).register(this.registry);
  readonly electionTime = new SummaryMetric('election_time', 'time from starting a leader election to its decision, ms', BASIC_QUANTILES).register(this.registry);
  readonly snapshotTime = new SummaryMetric('snapshottime', 'time to write a snapshot, ms', BASIC_QUANTILES).register(this.registry);
  readonly dbInitTime = new SummaryMetric('dbinittime', 'time to load the data tree from disk at start, ms', BASIC_QUANTILES).register(this.registry);
  private readonly rotation: NodeJS.Timeout;
  private cached: { snapshot: ServerSnapshotForWords; facts: Map<FactName, number> } | null = null;

  /** `quorum`: a member of a replicated quorum (its facts are registered; a leader's stay without samples elsewhere); `tls`: it has certificates. */
  constructor(private readonly snapshot: () => ServerSnapshotForWords, opts: { processMetrics: boolean; quorum: boolean; tls: boolean }) {
    for (const [name, fact] of Object.entries(FACTS) as [FactName, { kind: string; help: string; scope?: FactScope }][]) {
      if (fact.kind === 'text') continue;
      if ((fact.scope === 'quorum' || fact.scope === 'leader') && !opts.quorum) continue;
      if (fact.scope === 'tls' && !opts.tls) continue;
      const kind = fact.kind as 'gauge' | 'counter';
      // The registry reads name, type and get(): a metric of our own fits beside prom-client's.
      this.registry.registerMetric(new FactMetric(name, fact.help, kind, (n) => this.current().facts.get(n)) as unknown as Metric);
    }
    const current = () => this.current().snapshot;
    new Gauge({
      name: 'quorate_role', help: 'this server\'s role: 1 for the current one, 0 for the others', labelNames: ['role'], registers: [this.registry],
      collect() {
        const mode = current().mode;
        for (const r of ROLES) this.set({ role: r }, r === mode ? 1 : 0);
      },
    });
    const summaries = [this.readLatency, this.updateLatency, this.fsyncTime, this.electionTime, this.snapshotTime, this.dbInitTime];
    this.rotation = setInterval(() => { for (const s of summaries) s.rotate(); }, SUMMARY_WINDOW_MS);
    this.rotation.unref();
    // process_* share their names with the Java client's process metrics, which ZooKeeper exports with exportJvmInfo.
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * One snapshot per scrape: the registry asks every metric in the same turn of the event loop,
   * so the facts are worked out once and forgotten before the next scrape.
   */
  private current(): { snapshot: ServerSnapshotForWords; facts: Map<FactName, number> } {
    if (this.cached === null) {
      const snapshot = this.snapshot();
      const facts = new Map<FactName, number>();
      for (const f of serverFacts(snapshot)) {
        const v = f.metric ?? f.value;
        if (typeof v === 'number') facts.set(f.name, v);
      }
      this.cached = { snapshot, facts };
      setImmediate(() => { this.cached = null; });
    }
    return this.cached;
  }

  stop(): void {
    clearInterval(this.rotation);
  }
}
