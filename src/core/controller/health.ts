// How check outcomes become the service's health: a refused connection, an
// exited process or a wrong answer is unhealthy at once; only timeouts need
// `failures` in a row (not-responding); every check must pass for healthy;
// until each check has answered once, the service is initializing. Pure.
import type { HealthState } from './controller-core.js';

/** `lag`: the replication lag the service reported in this answer, when the check reads one. */
export type CheckOutcome = { kind: 'ok'; lag?: number | null } | { kind: 'failed'; reason: string } | { kind: 'timeout'; reason: string };

interface CheckState { answered: boolean; failing: string | null; timeouts: number; lastTimeout: string }

export class HealthAggregator {
  private readonly checks: CheckState[];

  constructor(private readonly failuresNeeded: readonly number[]) {
    this.checks = failuresNeeded.map(() => ({ answered: false, failing: null, timeouts: 0, lastTimeout: '' }));
  }

  record(i: number, o: CheckOutcome): void {
    const c = this.checks[i];
    c.answered = true;
    if (o.kind === 'ok') { c.failing = null; c.timeouts = 0; return; }
    if (o.kind === 'failed') { c.failing = o.reason; c.timeouts = 0; return; }
    c.failing = null;
    c.timeouts++;
    c.lastTimeout = o.reason;
  }

  state(): { state: HealthState; reason: string } {
    const failing = this.checks.findIndex((c) => c.failing !== null);
    if (failing >= 0) return { state: 'unhealthy', reason: `check ${failing + 1}: ${this.checks[failing].failing}` };
    const hung = this.checks.findIndex((c, i) => c.timeouts >= this.failuresNeeded[i]);
    if (hung >= 0) return { state: 'not-responding', reason: `check ${hung + 1}: ${this.checks[hung].timeouts} timeouts in a row (${this.checks[hung].lastTimeout})` };
    if (this.checks.some((c) => !c.answered)) return { state: 'initializing', reason: 'not every check has answered yet' };
    return { state: 'healthy', reason: 'every check passes' };
  }
}

/**
 * A service's checks folded into the state its controller is told: each outcome recorded in the
 * aggregator, and a change reported when the state or its reason differs from the last reported
 * (the health monitor's rule, and the simulator's). Pure.
 */
export class HealthFolder {
  private readonly agg: HealthAggregator;
  private last: { state: HealthState; reason: string } = { state: 'initializing', reason: 'not started' };

  constructor(failuresNeeded: readonly number[]) {
    this.agg = new HealthAggregator(failuresNeeded);
  }

  /** The state last reported. */
  get current(): { state: HealthState; reason: string } { return this.last; }

  /** Check i's outcome folded in: the new state and reason when either changed, else null. */
  fold(i: number, o: CheckOutcome): { state: HealthState; reason: string } | null {
    this.agg.record(i, o);
    const s = this.agg.state();
    if (s.state === this.last.state && s.reason === this.last.reason) return null;
    this.last = s;
    return s;
  }
}
