// The nemesis on the lab, bounded for CI: one fixed seed, two minutes of
// faults on three hosts (every fault kind: the seed's schedule has them all),
// then the checker: no violation, writes acknowledged, one active again.
// Properties only, no wall-clock figures (2 busy cores). And lab.block(), the
// per-port partition the nemesis uses, on a lab of its own.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli-process.js';
import { createLab, labUnavailable, type Lab } from '../helpers/lab.js';
import { FAULT_KINDS, makeSchedule } from '../nemesis/schedule.js';
import { runNemesis, RUN_DEFAULTS } from '../nemesis/run.js';

/** A seed whose two-minute schedule holds every fault kind (checked below). */
const SEED = 2;
const MINUTES = 2;

describe.skipIf(labUnavailable() !== null)('lab.block: per-port partitions without netfilter', () => {
  let lab: Lab;
  beforeAll(async () => { lab = await createLab({ hosts: 2, name: 'block' }); }, 60_000);
  afterAll(async () => { await lab?.teardown(); }, 60_000);

  /** From a's namespace: "open", "timeout" or the error code, connecting to b:port. */
  const probe = async (from: number, to: number, port: number): Promise<string> => {
    const [a, b] = [lab.hosts[from], lab.hosts[to]];
    const r = await lab.exec(a, [process.execPath, '-e', `
      const s = require('net').connect(${port}, '${b.address}');
      const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 1500);
      s.on('data', () => { console.log('open'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });`], { timeoutMs: 10_000 });
    return r.stdout.trim();
  };

  it('drops the listed ports both ways, silently, and nothing else; unblock restores them', async () => {
    const [h1, h2] = lab.hosts;
    const servers = [h1, h2].map((h) => lab.spawn(h, [process.execPath, '-e', `
      for (const p of [9101, 9102]) require('net').createServer((s) => s.end('hi')).listen(p, '${h.address}');
      setTimeout(() => {}, 600000);`]));
    try {
      for (let i = 0; i < 100 && (await probe(0, 1, 9101)) !== 'open'; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await probe(1, 0, 9101)).toBe('open');
      await lab.block(h1, h2, [9101]);
      expect(await probe(0, 1, 9101)).toBe('timeout');
      expect(await probe(1, 0, 9101)).toBe('timeout');
      expect(await probe(0, 1, 9102)).toBe('open');
      expect(await probe(1, 0, 9102)).toBe('open');
      // The root namespace (the test, the nemesis's clients) still reaches both.
      const fromRoot = await new Promise<string>((resolve) => {
        const s = net.connect(9101, h2.address);
        s.on('data', () => { s.destroy(); resolve('open'); });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      expect(fromRoot).toBe('open');
      await lab.unblock(h1, h2);
      expect(await probe(0, 1, 9101)).toBe('open');
      expect(await probe(1, 0, 9101)).toBe('open');
      await lab.block(h1, h2);
      expect(await probe(0, 1, 9102)).toBe('timeout');
      await lab.unblock(h1, h2);
      expect(await probe(0, 1, 9102)).toBe('open');
    } finally {
      for (const s of servers) if (s.pid !== undefined) lab.signal(s.pid, 'SIGKILL');
    }
  }, 60_000);
});

describe.skipIf(labUnavailable() !== null)('the nemesis on three lab hosts', () => {
  it(`seed ${SEED}, ${MINUTES} minutes of faults: no violation, writes acknowledged, one active again`, async () => {
    ensureBuilt();
    expect(new Set(makeSchedule({ seed: SEED, minutes: MINUTES, sessionTimeoutMs: RUN_DEFAULTS.session_timeout_ms }).map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    const lines: string[] = [];
    const report = await runNemesis({ seed: SEED, minutes: MINUTES, hosts: 3, log: (l) => lines.push(l) });
    const { faultLog, unavailabilityMeasure, ...summary } = report;
    console.log(`nemesis: ${JSON.stringify(summary)}`);
    if (report.violations.length > 0) console.log(`${lines.join('\n')}\n${JSON.stringify(faultLog, null, 1)}\n(${unavailabilityMeasure})`);
    expect(report.violations).toEqual([]);
    expect(report.writes.acknowledged).toBeGreaterThan(0);
    expect(report.readsChecked).toBeGreaterThan(0);
    expect(report.convergenceMs).not.toBeNull();
    expect(report.faultsInjected).toBeGreaterThanOrEqual(5);
  }, 900_000);
});
