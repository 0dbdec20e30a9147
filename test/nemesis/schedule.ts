// The nemesis's fault schedule: a pure function of the seed (and of the run's
// length and the session timeout), generated up front, so a failing run
// replays with `npm run nemesis -- --seed S --minutes N --hosts H`.
//
// Faults come one at a time, their kinds in rounds (each round a shuffle of
// every kind): each is injected, lasts its duration, is healed
// (the process restarted or resumed, the host reconnected, the block lifted),
// and the cluster gets a quiet gap (sometimes short, so the next fault can
// land while it is still recovering) before the next. Targets that depend on
// the cluster's state at the moment of injection ("the active", "the quorum
// leader", "a standby") are resolved then; the schedule names the rule, and
// the run's report names what it hit.
import { Rng } from '../../src/sim/rng.js';

export const FAULT_KINDS = [
  'kill-instance', // kill -9 of a service instance, restarted after the duration
  'kill-controller', // kill -9 of a controller, restarted after the duration
  'kill-quorum', // kill -9 of a quorum server (the leader or a follower), restarted after the duration
  'kill-journal', // kill -9 of a journal node, restarted after the duration
  'pause-instance', // SIGSTOP of a service instance for longer than the session timeout, then SIGCONT
  'pause-controller', // SIGSTOP of a controller for longer than the session timeout, then SIGCONT
  'host-off', // a host off the network (lab disconnect), then back
  'quorum-majority-down', // 2 of the 3 quorum servers killed, restarted after the duration (failsafe)
  'partition-active-quorum', // the active's host cut from the quorum's ports, not from the journal's
  'partition-active-journal', // the active's host cut from the journal's port, not from the quorum's
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Whom a fault hits, resolved when it is injected. */
export type Target =
  /** The instance (its service, controller or host) whose controller answers /active; `pick` chooses among all when there is none. */
  | { who: 'active'; pick: number }
  /** A non-active instance: the pick-th (mod count) of them in id order. */
  | { who: 'standby'; pick: number }
  /** The quorum's current leader (`pick` chooses a server when none answers as leader). */
  | { who: 'leader'; pick: number }
  /** The index-th (mod count) process of its kind, or host. */
  | { who: 'index'; index: number }
  /** quorum-majority-down: which servers (indices into the three). */
  | { who: 'servers'; indices: number[] };

export interface Fault {
  /** 0-based, in time order. */
  index: number;
  kind: FaultKind;
  /** When it is injected, from the start of the fault phase. */
  atMs: number;
  /** How long it lasts before it is healed. */
  durationMs: number;
  target: Target;
}

export interface ScheduleOptions {
  seed: number;
  minutes: number;
  /** The controllers' session timeout: pauses last longer than it. */
  sessionTimeoutMs: number;
}

export const SCHEDULE_LIMITS = {
  /** A schedule never holds more faults than this, however long the run. */
  max_faults: 5000,
  /** Quiet gap after a heal: short ones land on a recovering cluster. */
  gap_short_ms: [500, 2_000],
  gap_long_ms: [3_000, 8_000],
  gap_short_chance: 0.3,
  /** The first fault waits for the clients to have written for a while. */
  first_fault_ms: 3_000,
} as const;

function between(rng: Rng, [lo, hi]: readonly [number, number]): number {
  return Math.round(rng.range(lo, hi));
}

function faultOf(rng: Rng, kind: FaultKind, sessionTimeoutMs: number): { durationMs: number; target: Target } {
  const activeOrStandby = (): Target => (rng.chance(0.6) ? { who: 'active', pick: rng.int(1000) } : { who: 'standby', pick: rng.int(1000) });
  switch (kind) {
    case 'kill-instance':
    case 'kill-controller':
      return { durationMs: between(rng, [300, 8_000]), target: activeOrStandby() };
    case 'kill-quorum':
      return { durationMs: between(rng, [500, 10_000]), target: rng.chance(0.5) ? { who: 'leader', pick: rng.int(1000) } : { who: 'index', index: rng.int(3) } };
    case 'kill-journal':
      return { durationMs: between(rng, [500, 10_000]), target: { who: 'index', index: rng.int(3) } };
    case 'pause-instance':
    case 'pause-controller':
      // Longer than the session timeout: the quorum expires the session of a paused controller.
      return { durationMs: Math.round(sessionTimeoutMs * rng.range(1.2, 2.2)), target: activeOrStandby() };
    case 'host-off':
      return { durationMs: between(rng, [3_000, 15_000]), target: rng.chance(0.5) ? { who: 'active', pick: rng.int(1000) } : { who: 'index', index: rng.int(1000) } };
    case 'quorum-majority-down': {
      const keep = rng.int(3);
      return { durationMs: between(rng, [6_000, 20_000]), target: { who: 'servers', indices: [0, 1, 2].filter((i) => i !== keep) } };
    }
    case 'partition-active-quorum':
    case 'partition-active-journal':
      return { durationMs: between(rng, [Math.round(sessionTimeoutMs * 1.2), Math.round(sessionTimeoutMs * 1.2) + 12_000]), target: { who: 'active', pick: rng.int(1000) } };
  }
}

/**
 * The faults of a run of `minutes` (the fault phase): each starts after the previous one healed
 * and its gap passed, and ends (is healed) within the phase.
 */
export function makeSchedule(o: ScheduleOptions): Fault[] {
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffff_ffff) throw new Error(`schedule: seed must be an integer in 0..4294967295, got ${o.seed}`);
  if (!(o.minutes > 0)) throw new Error(`schedule: minutes must be > 0, got ${o.minutes}`);
  const rng = new Rng(o.seed);
  const phaseMs = Math.round(o.minutes * 60_000);
  const faults: Fault[] = [];
  let t = SCHEDULE_LIMITS.first_fault_ms;
  // Kinds come in rounds, each a shuffle of every kind: any ten faults in a row cover them all.
  let bag: FaultKind[] = [];
  for (let i = 0; i < SCHEDULE_LIMITS.max_faults; i++) {
    if (bag.length === 0) bag = rng.shuffle([...FAULT_KINDS]);
    const kind = bag.pop()!;
    const { durationMs, target } = faultOf(rng, kind, o.sessionTimeoutMs);
    const gap = rng.chance(SCHEDULE_LIMITS.gap_short_chance) ? between(rng, SCHEDULE_LIMITS.gap_short_ms) : between(rng, SCHEDULE_LIMITS.gap_long_ms);
    if (t + durationMs > phaseMs) break;
    faults.push({ index: faults.length, kind, atMs: t, durationMs, target });
    t += durationMs + gap;
  }
  return faults;
}

export function describeTarget(t: Target): string {
  switch (t.who) {
    case 'active': return 'the active';
    case 'standby': return `standby #${t.pick}`;
    case 'leader': return 'the quorum leader';
    case 'index': return `#${t.index}`;
    case 'servers': return `servers #${t.indices.join(', #')}`;
  }
}
