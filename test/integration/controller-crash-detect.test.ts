// A crashed service is seen through the connection its check holds, not at
// the next check: each instance's only check is TCP to its service port every
// 5 minutes (holdConnection by default). kill -9 of the active service: the
// other instance is promoted, and the old one's controller says why — its
// held connection closed, the check ran at once, the port refused — after one
// failed check (its metrics count exactly one), while no scheduled check
// could have run yet. C4 holds as in every failover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectC4, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { scrape } from '../helpers/prom-text.js';

const CHECK_INTERVAL_MS = 300_000;

describe('controller: a crash heard through the held check connection', () => {
  let c: HaCluster;
  let t0 = 0;
  beforeAll(async () => {
    t0 = performance.now();
    c = await startHaCluster(2, { health: (port) => `[ { tcp: "127.0.0.1:${port}", intervalMs: ${CHECK_INTERVAL_MS} } ]` });
  }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('kill -9 of the active service: the other is promoted after one refused early check, with the next scheduled check minutes away', async () => {
    const a = await c.settledActive();
    const dead = c.instances.find((i) => i.id === a)!;
    const checks = async () => (await scrape(dead.adminPort)).all('quorate_controller_health_checks_total', { check: '1', kind: 'tcp' });
    const before = await checks();
    expect(before.filter((s) => s.labels.result !== 'ok').reduce((n, s) => n + s.value, 0)).toBe(0);
    await dead.service.kill9();
    const b = await c.settledActive(20_000, a);
    // The whole run (cluster start included) is inside the first check interval: no scheduled
    // check after the first one could have seen the crash.
    expect(performance.now() - t0).toBeLessThan(CHECK_INTERVAL_MS);
    expect(b).not.toBe(a);
    const s = await c.status(a);
    const why = /^service unhealthy: check 1: connect to 127\.0\.0\.1:\d+: ECONNREFUSED \(checked at once: the held connection closed\)$/;
    expect(s.health).toBe('unhealthy');
    expect(String(s.lastFailure)).toMatch(why);
    expect((s.lastTransition as { reason: string }).reason).toMatch(why);
    const after = await checks();
    const count = (r: string) => after.find((x) => x.labels.result === r)?.value ?? 0;
    expect(count('failed')).toBe(1);
    expect(count('timeout')).toBe(0);
    await expectC4(c);
  }, 60_000);
});
