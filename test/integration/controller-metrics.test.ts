// The controllers' Prometheus metrics (GET /metrics on each admin port),
// scraped from a real cluster: our quorum, three journal nodes, two instances
// of the example service and their controllers. At start one instance is
// active and its gauge says so, the first election is no failover; after
// kill -9 of the active service the new active's gauge is 1 and the old's 0,
// the new active counted one failover (no longer than the test saw it take)
// and the fencing method that fenced the old one; the old one's failed
// health checks and its demotion's reason are counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_METHODS } from '../../src/controller/fencing.js';
import { showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { scrape, type Scrape } from '../helpers/prom-text.js';

describe('controller metrics', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);
  const metricsOf = (id: string): Promise<Scrape> => scrape(c.instances.find((i) => i.id === id)!.adminPort);
  const sum = (s: Scrape, name: string, labels: Record<string, string> = {}) => s.all(name, labels).reduce((a, x) => a + x.value, 0);

  it('at start: one active by its gauge, both connected and healthy, no failover counted', async () => {
    const a = await c.settledActive();
    const b = c.instances.find((i) => i.id !== a)!.id;
    // The standby's health checks and its look at the lock may still be under way.
    const end = Date.now() + 15_000;
    let mb = await metricsOf(b);
    while (mb.value('quorate_controller_phase', { phase: 'watching' }) !== 1 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      mb = await metricsOf(b);
    }
    const ma = await metricsOf(a);
    expect(ma.value('quorate_controller_active', { service: 'orders', instance: a })).toBe(1);
    expect(mb.value('quorate_controller_active', { service: 'orders', instance: b })).toBe(0);
    expect(ma.value('quorate_controller_phase', { phase: 'active' })).toBe(1);
    expect(mb.value('quorate_controller_phase', { phase: 'watching' })).toBe(1);
    for (const m of [ma, mb]) {
      expect(m.value('quorate_controller_session_connected')).toBe(1);
      expect(m.value('quorate_controller_health', { state: 'healthy' })).toBe(1);
      expect(m.value('quorate_controller_lease_remaining_seconds')).toBeGreaterThan(0);
      expect(m.value('quorate_controller_paused')).toBe(0);
      expect(m.value('quorate_controller_health_checks_total', { check: '1', kind: 'http', result: 'ok' })).toBeGreaterThan(0);
      expect(m.value('quorate_controller_health_check_seconds_count', { check: '1', kind: 'http' })).toBeGreaterThan(0);
      expect(m.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(0);
      // The service's fencing is [graceful, journal]: both shown before any attempt.
      expect(m.value('quorate_controller_fence_attempts_total', { method: 'graceful', result: 'success' })).toBe(0);
      expect(m.value('quorate_controller_fence_attempts_total', { method: 'journal', result: 'failure' })).toBe(0);
    }
    expect(ma.value('quorate_controller_transitions_total', { to: 'active', reason: 'promoted' })).toBe(1);
  }, 30_000);

  it('kill -9 of the active service: one failover counted on the new active, the roles swap, the fence method counted', async () => {
    const a = await c.settledActive();
    const b = c.instances.find((i) => i.id !== a)!.id;
    const dead = c.instances.find((i) => i.id === a)!;
    const killedAt = performance.now();
    await dead.service.kill9();
    try {
      expect(await c.settledActive(20_000, a)).toBe(b);
      const seenMs = performance.now() - killedAt;
      const [ma, mb] = [await metricsOf(a), await metricsOf(b)];
      expect(mb.value('quorate_controller_active', { instance: b })).toBe(1);
      expect(ma.value('quorate_controller_active', { instance: a })).toBe(0);
      expect(mb.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(1);
      expect(mb.value('quorate_controller_failover_seconds_count', { trigger: 'manual' })).toBe(0);
      const took = mb.value('quorate_controller_failover_seconds_sum', { trigger: 'automatic' });
      // Timed from the moment b saw the lock go, which is after the kill; it ended before the test saw b active.
      expect(took).toBeGreaterThan(0);
      expect(took * 1000).toBeLessThan(seenMs);
      expect(ma.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(0);
      // b fenced a once: its controller said its service is down, and the closed port confirmed it.
      expect(mb.value('quorate_controller_fence_attempts_total', { method: 'graceful', result: 'success' })).toBe(1);
      expect(sum(mb, 'quorate_controller_fence_attempts_total')).toBe(1);
      for (const m of FENCE_METHODS) expect(sum(ma, 'quorate_controller_fence_attempts_total', { method: m })).toBe(0);
      // a saw its service fail (a refused connection: failed at once), and released the lock for that reason.
      expect(ma.value('quorate_controller_health', { state: 'unhealthy' })).toBe(1);
      expect(ma.value('quorate_controller_health_checks_total', { check: '1', kind: 'http', result: 'failed' })).toBeGreaterThan(0);
      expect(ma.value('quorate_controller_transitions_total', { to: 'releasing', reason: 'service_unhealthy' })).toBe(1);
      expect(mb.value('quorate_controller_transitions_total', { to: 'active', reason: 'promoted' })).toBe(1);
      expect(sum(mb, 'quorate_controller_transitions_total', { reason: 'other' })).toBe(0);
      expect(sum(ma, 'quorate_controller_transitions_total', { reason: 'other' })).toBe(0);
    } finally {
      await dead.service.restart();
    }
  }, 60_000);

  it('pause shows in the gauge', async () => {
    const t0 = performance.now();
    const a = await c.settledActive();
    const t1 = performance.now();
    const r = await c.cli(['pause', '--config', c.cfgPath, '--service', 'orders']);
    console.log(`pause test: settled in ${Math.round(t1 - t0)} ms, pause CLI ${Math.round(performance.now() - t1)} ms`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const i of c.instances) expect((await metricsOf(i.id)).value('quorate_controller_paused')).toBe(1);
    expect((await metricsOf(a)).value('quorate_controller_active')).toBe(1);
    const t2 = performance.now();
    const u = await c.cli(['resume', '--config', c.cfgPath, '--service', 'orders']);
    console.log(`pause test: resume CLI ${Math.round(performance.now() - t2)} ms`);
    expect(u.code, u.stdout + u.stderr).toBe(0);
    for (const i of c.instances) expect((await metricsOf(i.id)).value('quorate_controller_paused')).toBe(0);
    // Two CLI runs, each waiting for every controller to follow the quorum: 1.7 s alone, 24-31 s in the
    // loaded suite (two runs measured). The bound is a safety net, not the property.
  }, 90_000);
});
