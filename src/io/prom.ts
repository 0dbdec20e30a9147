// prom-client, the parts our daemons use. Its index loads everything it has:
// the push gateway (node:http and node:https), the cluster aggregator, t-digest
// summaries, and through the process CPU metric the OpenTelemetry API (for
// exemplars we do not use) — about 4 MB resident in every process for nothing,
// a controller's RSS budget being 60 MB. So the metric classes come from their
// own files, and the default process metrics are prom-client's own collectors
// one by one, with the CPU counters (same names and meaning) written here.
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);
const lib = (name: string): unknown => load(`prom-client/lib/${name}`);

export type { Metric } from 'prom-client';
export const Registry = lib('registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = lib('counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = lib('gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = lib('histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export const exponentialBuckets = (lib('bucketGenerators') as typeof PromClient).exponentialBuckets;

/** prom-client's default collectors but its CPU one (see above), in its order. */
const PROCESS_COLLECTORS = [
  'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'eventLoopLag',
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc',
];

type Collector = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

/** What collectDefaultMetrics({ register }) exports: process_*, nodejs_* (CPU, memory, descriptors, event loop lag, GC). */
export function collectProcessMetrics(registry: Registry): void {
  processCpuCounters(registry);
  for (const name of PROCESS_COLLECTORS) (lib(`metrics/${name}`) as Collector)(registry, { eventLoopMonitoringPrecision: 10 });
}

function processCpuCounters(registry: Registry): void {
  let last = process.cpuUsage();
  const registers = [registry];
  // The user counter's collect moves all three: the registry reads it first.
  new Counter({
    name: 'process_cpu_user_seconds_total', help: 'Total user CPU time spent in seconds.', registers,
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - last.user) / 1e6;
      const sys = (now.system - last.system) / 1e6;
      last = now;
      this.inc(user);
      system.inc(sys);
      total.inc(user + sys);
    },
  });
  const system = new Counter({ name: 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers });
  const total = new Counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers });
}
