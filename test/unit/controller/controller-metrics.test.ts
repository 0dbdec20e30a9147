// The controller's metrics, fed by the real core's effects (through the core
// harness) and a real fenceInstance: every phase change of the scenarios here
// gets a reason class other than "other" (a reworded reason in the core fails
// this test rather than an alert going quiet); the first election is not a
// failover, a promotion after the lock went from another holder is, timed
// from that moment, manual when this instance was the target; gauges read
// the core at scrape time; fencing counts each method tried.
import { describe, expect, it } from 'vitest';
import type { InstanceConfig } from '../../../src/config/controller-config.js';
import { ControllerMetrics, TRANSITION_REASONS, transitionReasonClass } from '../../../src/controller/controller-metrics.js';
import { fenceInstance } from '../../../src/controller/fencing.js';
import type { ControllerInput } from '../../../src/core/controller/controller-core.js';
import { parsePromText, type Scrape } from '../../helpers/prom-text.js';
import { CZ, Harness, OTHER, SID, TIMEOUT, contend, fail, finishDemotion, finishUnhealthyDemotion, ok, promote, standby, type ControllerEffect } from './core-harness.js';

/** A harness whose every step is shown to the metrics, as the driver's 'step' event does. */
class Metered extends Harness {
  readonly m: ControllerMetrics;
  constructor() {
    // Flap damping has its own tests: these scenarios promote many times in a minute.
    super({ promotionsPerWindow: 100 });
    this.m = new ControllerMetrics({ service: 'orders', instance: 'a' }, this.core, () => this.now, ['graceful', 'journal']);
  }
  override step(input: ControllerInput): ControllerEffect[] {
    const out = super.step(input);
    this.m?.step(input, out, this.now);
    return out;
  }
  async scrape(): Promise<Scrape> { return parsePromText(await this.m.registry.metrics()); }
}

const transitions = (s: Scrape) => Object.fromEntries(s.all('quorate_controller_transitions_total').map((x) => [`${x.labels.to}/${x.labels.reason}`, x.value]));

/** Standby, then watching: another instance holds the lock. */
function watching(h: Metered): void {
  contend(h);
  h.answer('createLock', fail('the lock exists', 'NODEEXISTS'));
  h.answer('readLock', ok({ lock: { owner: OTHER, czxid: CZ - 1n } }));
  expect(h.phase()).toBe('watching');
}

describe('controller metrics', () => {
  it('labels every series with the service and the instance, and reads the core when scraped', async () => {
    const h = new Metered();
    let s = await h.scrape();
    expect(s.value('quorate_controller_active', { service: 'orders', instance: 'a' })).toBe(0);
    expect(s.value('quorate_controller_phase', { phase: 'starting' })).toBe(1);
    expect(s.all('quorate_controller_phase').filter((x) => x.value === 1)).toHaveLength(1);
    expect(s.value('quorate_controller_session_connected')).toBe(0);
    expect(s.value('quorate_controller_lease_remaining_seconds')).toBe(0);
    contend(h);
    promote(h);
    s = await h.scrape();
    expect(s.value('quorate_controller_active')).toBe(1);
    expect(s.value('quorate_controller_phase', { phase: 'active' })).toBe(1);
    expect(s.value('quorate_controller_health', { state: 'healthy' })).toBe(1);
    expect(s.value('quorate_controller_session_connected')).toBe(1);
    // The lease was renewed at the harness's start time; 2/3 of the session timeout from then.
    expect(s.value('quorate_controller_lease_remaining_seconds')).toBeCloseTo((TIMEOUT * 2) / 3 / 1000, 3);
    expect(s.value('quorate_controller_paused')).toBe(0);
    h.step({ kind: 'pause' });
    expect((await h.scrape()).value('quorate_controller_paused')).toBe(1);
    // The process's own metrics carry the labels too.
    expect(s.all('process_cpu_user_seconds_total', { service: 'orders', instance: 'a' })).toHaveLength(1);
  });

  it('the first election is not a failover; its transitions are classed', async () => {
    const h = new Metered();
    contend(h);
    promote(h);
    const s = await h.scrape();
    expect(transitions(s)).toEqual({ 'standby/startup': 1, 'contending/racing': 1, 'promoting/won_lock': 1, 'active/promoted': 1 });
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(0);
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'manual' })).toBe(0);
  });

  it('a failover: timed from the lock going from another holder to to-active finishing', async () => {
    const h = new Metered();
    watching(h);
    h.advanceTo(h.now + 5000);
    h.step({ kind: 'lockChanged' });
    h.at(h.now + 30);
    h.answer('readLock', ok({ lock: null })); // the lock is free: the clock starts here
    expect(h.phase()).toBe('contending');
    h.at(h.now + 700);
    promote(h);
    const s = await h.scrape();
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(1);
    expect(s.value('quorate_controller_failover_seconds_sum', { trigger: 'automatic' })).toBeCloseTo(0.7, 6);
    expect(s.value('quorate_controller_failover_seconds_bucket', { trigger: 'automatic', le: '0.5' })).toBe(0);
    expect(s.value('quorate_controller_failover_seconds_bucket', { trigger: 'automatic', le: '1' })).toBe(1);
    expect(transitions(s)).toMatchObject({ 'watching/lock_held': 1, 'standby/lock_free': 1 });
  });

  it('a race lost to another standby ends the wait: a later promotion is timed from the next vacancy', async () => {
    const h = new Metered();
    watching(h);
    h.step({ kind: 'lockChanged' });
    h.answer('readLock', ok({ lock: null }));
    h.answer('createLock', fail('the lock exists', 'NODEEXISTS'));
    h.answer('readLock', ok({ lock: { owner: OTHER, czxid: CZ - 1n } }));
    expect(h.phase()).toBe('watching');
    h.advanceTo(h.now + 60_000);
    h.step({ kind: 'lockChanged' });
    h.answer('readLock', ok({ lock: null }));
    h.at(h.now + 250);
    promote(h);
    const s = await h.scrape();
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(1);
    expect(s.value('quorate_controller_failover_seconds_sum', { trigger: 'automatic' })).toBeCloseTo(0.25, 6);
  });

  it('a manual failover\'s target counts its promotion as manual', async () => {
    const h = new Metered();
    watching(h);
    h.step({ kind: 'failoverTarget', forMs: 3000 });
    h.step({ kind: 'lockChanged' });
    h.answer('readLock', ok({ lock: null }));
    promote(h);
    const s = await h.scrape();
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'manual' })).toBe(1);
    expect(s.value('quorate_controller_failover_seconds_count', { trigger: 'automatic' })).toBe(0);
  });

  it('demotions are classed by why: an unhealthy service, a cede, an expired lease, a lost session, a failed promotion', async () => {
    const h = new Metered();
    contend(h);
    promote(h);
    h.step({ kind: 'health', state: 'unhealthy', reason: 'check 1: ECONNREFUSED' });
    finishUnhealthyDemotion(h);
    expect(h.phase()).toBe('standby');
    h.step({ kind: 'health', state: 'healthy', reason: 'every check passes' });
    promote(h);
    h.step({ kind: 'cede', forMs: 1000 });
    h.answer('toStandby', ok());
    h.answer('deleteOwnBreadcrumb', ok());
    h.answer('releaseLock', ok());
    h.advanceTo(h.now + 1500);
    promote(h);
    // No renewal answers: the lease runs out.
    h.advanceTo(h.now + TIMEOUT, false);
    expect(h.phase()).toBe('demoting');
    finishDemotion(h);
    h.renew();
    h.advanceTo(h.now + 10_000);
    expect(h.phase()).toBe('contending');
    promote(h);
    h.step({ kind: 'session', state: 'expired' });
    expect(h.names()).toEqual(['toStandby']);
    finishDemotion(h);
    h.step({ kind: 'session', state: 'connected', sessionId: SID + 2n, timeoutMs: TIMEOUT });
    h.renew();
    h.advanceTo(h.now + 10_000);
    expect(h.phase()).toBe('contending');
    h.answer('createLock', ok({ lock: { owner: SID + 2n, czxid: CZ + 1n } }));
    h.answer('readBreadcrumb', fail('connection loss'));
    finishDemotion(h);
    const t = transitions(await h.scrape());
    expect(t).toMatchObject({
      'releasing/service_unhealthy': 1, 'demoting/ceded': 1, 'demoting/lease_expired': 1, 'demoting/session_lost': 1, 'demoting/promotion_failed': 1,
    });
    expect(Object.keys(t).filter((k) => k.endsWith('/other'))).toEqual([]);
    expect(Object.keys(t).every((k) => (TRANSITION_REASONS as readonly string[]).includes(k.split('/')[1]))).toBe(true);
  });

  it('classes the reasons the core gives at start and for a lost lock', () => {
    expect(transitionReasonClass('service reports standby')).toBe('startup');
    expect(transitionReasonClass('role query failed: ECONNREFUSED')).toBe('startup');
    expect(transitionReasonClass('reconciling: active without the lock')).toBe('startup');
    expect(transitionReasonClass('the lock is no longer ours')).toBe('lock_lost');
    expect(transitionReasonClass('won the lock but the service is unhealthy')).toBe('service_unhealthy');
    expect(transitionReasonClass('something new')).toBe('other');
  });

  it('a reason the core gives when it reads the lock at start (a restarted controller) is classed too', async () => {
    const h = new Metered();
    standby(h, false);
    const t = transitions(await h.scrape());
    expect(t).toEqual({ 'standby/startup': 1 });
  });

  it('counts each fencing method tried, with its result', async () => {
    const m = new ControllerMetrics({ service: 'orders', instance: 'a' }, new Harness().core, () => 0, ['shell', 'journal']);
    const target: InstanceConfig = {
      id: 'b', host: '127.0.0.1', adminPort: 1, servicePort: null, priority: 0, noFailover: false, health: [], hooks: null, resources: [],
      fencing: [{ kind: 'shell', command: 'exit 3', timeoutMs: 5000 }, { kind: 'journal', timeoutMs: 1000 }],
    };
    const r = await fenceInstance({
      service: 'orders', target, crumb: { instance: 'b', address: '127.0.0.1:1', epoch: 1, token: '1' }, token: '2', admin: { adminToken: null, tls: null }, hasJournal: true,
      onAttempt: (method, okay) => m.fenceAttempt(method, okay),
    });
    expect(r.ok).toBe(true);
    const s = parsePromText(await m.registry.metrics());
    expect(s.value('quorate_controller_fence_attempts_total', { method: 'shell', result: 'failure' })).toBe(1);
    expect(s.value('quorate_controller_fence_attempts_total', { method: 'shell', result: 'success' })).toBe(0);
    expect(s.value('quorate_controller_fence_attempts_total', { method: 'journal', result: 'success' })).toBe(1);
    expect(s.all('quorate_controller_fence_attempts_total', { method: 'ssh' })).toEqual([]);
  });

  it('counts health check results and latency by check and kind', async () => {
    const m = new ControllerMetrics({ service: 'orders', instance: 'a' }, new Harness().core, () => 0);
    m.healthCheck(0, 'http', 'ok', 0.004);
    m.healthCheck(0, 'http', 'failed', 0.001);
    m.healthCheck(1, 'resource', 'timeout', 2);
    const s = parsePromText(await m.registry.metrics());
    expect(s.value('quorate_controller_health_checks_total', { check: '1', kind: 'http', result: 'ok' })).toBe(1);
    expect(s.value('quorate_controller_health_checks_total', { check: '1', kind: 'http', result: 'failed' })).toBe(1);
    expect(s.value('quorate_controller_health_checks_total', { check: '2', kind: 'resource', result: 'timeout' })).toBe(1);
    expect(s.value('quorate_controller_health_check_seconds_count', { check: '1', kind: 'http' })).toBe(2);
    expect(s.value('quorate_controller_health_check_seconds_sum', { check: '1', kind: 'http' })).toBeCloseTo(0.005, 9);
  });
});
