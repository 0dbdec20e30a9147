// Our prom-client entry: the same process metrics as prom-client's
// collectDefaultMetrics, CPU counters that count, and none of the modules
// (OpenTelemetry, the push gateway) its index would load into every daemon.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as full from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Registry, collectProcessMetrics } from '../../../src/io/prom.js';
import { parsePromText } from '../../helpers/prom-text.js';

const ROOT = path.resolve(__dirname, '../../..');

describe('src/io/prom', () => {
  it('exports the metrics collectDefaultMetrics does, in its order, each once', async () => {
    const ours = new Registry();
    collectProcessMetrics(ours);
    const theirs = new full.Registry();
    full.collectDefaultMetrics({ register: theirs });
    const names = (r: { getMetricsAsArray(): { name: string }[] }) => r.getMetricsAsArray().map((m) => m.name);
    expect(names(ours)).toEqual(names(theirs));
    expect(new Set(names(ours)).size).toBe(names(ours).length);
    // Both print: a collector that failed on our registry would throw here.
    expect(await ours.metrics()).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('the CPU counters count this process\'s CPU time, total = user + system', async () => {
    const r = new Registry();
    collectProcessMetrics(r);
    const read = async () => {
      const t = parsePromText(await r.metrics());
      const v = (n: string) => t.all(n)[0]?.value ?? NaN;
      return { user: v('process_cpu_user_seconds_total'), system: v('process_cpu_system_seconds_total'), total: v('process_cpu_seconds_total') };
    };
    await read();
    const before = process.cpuUsage();
    const until = Date.now() + 60;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const spent = process.cpuUsage(before);
    const after = await read();
    expect(x).toBeGreaterThan(0);
    expect(after.user).toBeGreaterThanOrEqual(spent.user / 1e6);
    expect(after.total).toBeCloseTo(after.user + after.system, 6);
  });

  it('loading it loads neither OpenTelemetry nor the push gateway', () => {
    const script = `
      const { createRequire } = require('node:module');
      const req = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))});
      import(${JSON.stringify(path.join(ROOT, 'dist/src/io/prom.js'))}).then((m) => {
        m.collectProcessMetrics(new m.Registry());
        const loaded = Object.keys(req.cache);
        console.log(JSON.stringify({ otel: loaded.some((f) => f.includes('@opentelemetry')), push: loaded.some((f) => f.endsWith('pushgateway.js')), registry: loaded.some((f) => f.endsWith('lib/registry.js')) }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
    expect(out).toEqual({ otel: false, push: false, registry: true });
  });
});
