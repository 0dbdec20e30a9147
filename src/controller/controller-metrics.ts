// A controller's Prometheus metrics, in a registry of its own, labelled with
// its service and instance: its role, phase, health, session, lease and pause
// read from the core when scraped; health check results and latency, phase
// transitions by a fixed class of reason, fencing attempts by method and
// result, and how long failovers took, counted from the driver's inputs and
// the core's effects (the core stays pure: nothing here feeds it). Label
// values come from fixed sets or from the configuration, never free text.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControllerEffect, ControllerInput, ControllerStatus, HealthState, Phase } from '../core/controller/controller-core.js';
import type { CheckOutcome } from '../core/controller/health.js';
import type { Controller } from './controller.js';
import type { CheckKind } from './health-monitor.js';
import { FENCE_METHODS, type FenceMethod } from './fencing.js';

export const PHASES: readonly Phase[] = ['starting', 'standby', 'contending', 'watching', 'promoting', 'active', 'demoting', 'releasing'];
const HEALTH_STATES: readonly HealthState[] = ['initializing', 'healthy', 'unhealthy', 'not-responding'];

/**
 * Why a phase changed, in classes an alert can match: the core's reasons are sentences (with
 * epochs, tokens and the service's own words), so each is matched to one of these by how it begins.
 */
export const TRANSITION_REASONS = [
  'startup', 'racing', 'lock_held', 'lock_free', 'won_lock', 'promoted', 'promotion_failed', 'service_unhealthy',
  'lease_expired', 'session_lost', 'lock_lost', 'ceded', 'resumed', 'other',
] as const;
export type TransitionReason = (typeof TRANSITION_REASONS)[number];

const REASON_PATTERNS: [RegExp, TransitionReason][] = [
  [/^promoted\b/, 'promoted'],
  [/^promotion failed\b/, 'promotion_failed'],
  [/^won the lock but the service is /, 'service_unhealthy'],
  [/^won the lock$/, 'won_lock'],
  [/^healthy, racing for the lock/, 'racing'],
  [/^another instance holds the lock/, 'lock_held'],
  [/^the lock is free/, 'lock_free'],
  [/^service (unhealthy|not-responding)\b/, 'service_unhealthy'],
  [/^lease expired\b/, 'lease_expired'],
  [/^the quorum session (expired|that held the lock is gone)|^new quorum session/, 'session_lost'],
  [/^the lock is no longer ours|^reading the lock failed/, 'lock_lost'],
  [/^asked to cede\b/, 'ceded'],
  [/^service reports |^role query failed|^reconciling\b|^the lock of the previous run's session is released/, 'startup'],
  [/^resumed after a restart\b/, 'resumed'],
];

export function transitionReasonClass(reason: string): TransitionReason {
  for (const [re, cls] of REASON_PATTERNS) if (re.test(reason)) return cls;
  return 'other';
}

/** The core logs each phase change as "<from> -> <to>: <reason>". */
const TRANSITION_LOG = /^([a-z]+) -> ([a-z]+): (.*)$/s;

export function parseTransition(e: ControllerEffect): { from: Phase; to: Phase; reason: string } | null {
  if (e.kind !== 'log') return null;
  const m = TRANSITION_LOG.exec(e.msg);
  if (m === null || !PHASES.includes(m[1] as Phase) || !PHASES.includes(m[2] as Phase)) return null;
  return { from: m[1] as Phase, to: m[2] as Phase, reason: m[3] };
}

/** What the gauges read at scrape time. */
export interface ControllerGaugeSource {
  isActive(now: number): boolean;
  status(now: number): ControllerStatus;
}

const FAILOVER_BUCKETS_S = [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120];
const CHECK_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly transitions: Counter<'to' | 'reason'>;
  private readonly checks: Counter<'check' | 'kind' | 'result'>;
  private readonly checkSeconds: Histogram<'check' | 'kind'>;
  private readonly fences: Counter<'method' | 'result'>;
  private readonly failover: Histogram<'trigger'>;
  /** When this controller saw the lock go from under another holder; null while none is vacant as far as it knows. */
  private vacantSince: number | null = null;
  /** Until then a promotion answers a manual failover (this instance was named its target). */
  private manualUntil = -Infinity;

  /**
   * `now`: the clock the core runs on (performance.now() in the driver), for the lease. `fenceMethods`:
   * the methods the configuration names, shown at 0 before any attempt.
   */
  constructor(labels: { service: string; instance: string }, source: ControllerGaugeSource, now: () => number, fenceMethods: readonly FenceMethod[] = FENCE_METHODS) {
    const r = [this.registry];
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'quorate_controller_active', help: 'Whether this instance is active now (its role and a lease that holds: what /active answers): 1 or 0.', registers: r,
      collect() { this.set(source.isActive(now()) ? 1 : 0); },
    });
    new Gauge({
      name: 'quorate_controller_phase', help: 'The controller\'s phase: 1 for the current one, 0 for the others.', labelNames: ['phase'], registers: r,
      collect() { const p = source.status(now()).phase; for (const phase of PHASES) this.set({ phase }, phase === p ? 1 : 0); },
    });
    new Gauge({
      name: 'quorate_controller_health', help: 'The service\'s health as the checks say: 1 for the current state, 0 for the others.', labelNames: ['state'], registers: r,
      collect() { const h = source.status(now()).health; for (const state of HEALTH_STATES) this.set({ state }, state === h ? 1 : 0); },
    });
    new Gauge({
      name: 'quorate_controller_session_connected', help: 'Whether the controller\'s quorum session is connected: 1 or 0.', registers: r,
      collect() { this.set(source.status(now()).session === 'connected' ? 1 : 0); },
    });
    new Gauge({
      name: 'quorate_controller_lease_remaining_seconds', help: 'Time left on the lease renewed through the quorum\'s leader (0: none holds); an active demotes itself at 0.', registers: r,
      collect() { const t = now(); const until = source.status(t).leaseValidUntil; this.set(until === null ? 0 : Math.max(0, (until - t) / 1000)); },
    });
    new Gauge({
      name: 'quorate_controller_paused', help: 'Whether automatic failover is paused: 1 or 0.', registers: r,
      collect() { this.set(source.status(now()).paused ? 1 : 0); },
    });
    new Gauge({
      name: 'quorate_controller_failsafe', help: 'Whether the instance is kept active without the quorum, backed by the journal (failsafe): 1 or 0.', registers: r,
      collect() { this.set(source.status(now()).failsafe === null ? 0 : 1); },
    });
    this.transitions = new Counter({ name: 'quorate_controller_transitions_total', help: 'Phase changes, by the phase entered and the class of reason.', labelNames: ['to', 'reason'], registers: r });
    this.checks = new Counter({ name: 'quorate_controller_health_checks_total', help: 'Health check results, by check (its place in the list, from 1; resources\' monitors after the checks), kind and result (ok, failed, timeout).', labelNames: ['check', 'kind', 'result'], registers: r });
    this.checkSeconds = new Histogram({ name: 'quorate_controller_health_check_seconds', help: 'How long each health check took to answer.', labelNames: ['check', 'kind'], buckets: CHECK_BUCKETS_S, registers: r });
    this.fences = new Counter({ name: 'quorate_controller_fence_attempts_total', help: 'Fencing methods tried on the previous active, by method and result (success, failure).', labelNames: ['method', 'result'], registers: r });
    for (const method of new Set(fenceMethods)) for (const result of ['success', 'failure']) this.fences.inc({ method, result }, 0);
    this.failover = new Histogram({
      name: 'quorate_controller_failover_seconds',
      help: 'Failovers this instance completed: from the moment it saw the lock go from another holder to its to-active hook (and resources) finishing, failed attempts in between included; trigger manual when it was a failover\'s target.',
      labelNames: ['trigger'], buckets: FAILOVER_BUCKETS_S, registers: r,
    });
    this.failover.zero({ trigger: 'automatic' });
    this.failover.zero({ trigger: 'manual' });
  }

  /** One input the driver fed the core at `t` (its clock), and the effects it answered. */
  step(input: ControllerInput, effects: readonly ControllerEffect[], t: number): void {
    if (input.kind === 'failoverTarget') this.manualUntil = t + input.forMs;
    for (const e of effects) {
      const tr = parseTransition(e);
      if (tr === null) continue;
      this.transitions.inc({ to: tr.to, reason: transitionReasonClass(tr.reason) });
      if (tr.to === 'watching') this.vacantSince = null;
      else if (tr.from === 'watching') this.vacantSince ??= t;
      if (tr.to === 'active') {
        if (this.vacantSince !== null) this.failover.observe({ trigger: t < this.manualUntil ? 'manual' : 'automatic' }, (t - this.vacantSince) / 1000);
        this.vacantSince = null;
      }
    }
  }

  healthCheck(index: number, kind: CheckKind, result: CheckOutcome['kind'], seconds: number): void {
    const check = String(index + 1);
    this.checks.inc({ check, kind, result });
    this.checkSeconds.observe({ check, kind }, seconds);
  }

  fenceAttempt(method: FenceMethod, ok: boolean): void {
    this.fences.inc({ method, result: ok ? 'success' : 'failure' });
  }
}

/** The metrics of a running controller: fed by its steps, its fencing and its health checks. */
export function controllerMetrics(c: Controller): ControllerMetrics {
  const cfg = c.cfg;
  const methods = cfg.instances.filter((i) => i.id !== cfg.instance.id).flatMap((i) => i.fencing.map((f) => f.kind));
  const m = new ControllerMetrics({ service: cfg.service, instance: cfg.instance.id }, c.core, () => performance.now(), cfg.journalNodes === null ? methods : [...methods, 'journal']);
  c.on('step', (input: ControllerInput, effects: readonly ControllerEffect[], t: number) => m.step(input, effects, t));
  c.on('fenceAttempt', (method: FenceMethod, ok: boolean) => m.fenceAttempt(method, ok));
  c.health.on('check', (i, kind, result, seconds) => m.healthCheck(i, kind, result, seconds));
  return m;
}
