// The ControllerCore test harness: a hand-driven clock and inputs, every `run`
// effect kept open until a test answers it by its op id; and the steps that
// bring a controller to standby, contending and active.
import { expect } from 'vitest';
import {
  ControllerCore, type Breadcrumb, type ControllerEffect, type ControllerInput, type ControllerOp,
  type ControllerSettings, type OpResult, type Phase,
} from '../../../src/core/controller/controller-core.js';

export type { Breadcrumb, ControllerEffect, ControllerOp, OpResult, Phase };

/** Our session id: above 2^53, so a lossy Number comparison would show. */
export const SID = 0x1234_5678_9abc_def0n;
export const SID2 = 0x1234_5678_9abc_def1n;
export const OTHER = 0x0200_0000_0000_0042n;
/** The lock's czxid (epoch 1, counter 5): its string is the fencing token. */
export const CZ = 0x1_0000_0005n;
export const TOKEN = '4294967301';
/** Session timeout: lease = 2/3 = 4000 ms, renewal every 1000 ms. */
export const TIMEOUT = 6000;
export const LEASE = 4000;
export const T0 = 1000;

export const OTHER_CRUMB: Breadcrumb = { instance: 'b', address: 'b.example:8019', epoch: 6, token: '4294967000' };
export const OWN_CRUMB: Breadcrumb = { instance: 'a', address: 'a.example:8019', epoch: 6, token: '4294967000' };

export const SETTINGS: ControllerSettings = {
  instance: 'a', address: 'a.example:8019', hasJournal: true, hasPreActiveHook: false, raceDelayMs: 0,
  noFailover: false, retryBackoffMs: 1000, retryBackoffMaxMs: 8000, promotionsPerWindow: 3, promotionWindowMs: 60_000,
};

/** An op's name: its type, or for a hook the hook's name. */
export const nameOf = (op: ControllerOp): string => (op.type === 'hook' ? op.hook : op.type);
export const ok = (extra: Partial<Extract<OpResult, { ok: true }>> = {}): OpResult => ({ ok: true, ...extra });
export const fail = (reason: string, code?: 'NODEEXISTS' | 'BADVERSION' | 'NONODE'): OpResult =>
  (code === undefined ? { ok: false, reason } : { ok: false, reason, code });

export class Harness {
  readonly core: ControllerCore;
  now: number;
  /** Ops issued and not answered yet, by op id. */
  readonly open = new Map<number, ControllerOp>();
  /** Every effect since the last `effects()`/`ops()`. */
  private seen: ControllerEffect[] = [];

  constructor(settings: Partial<ControllerSettings> = {}, start = T0) {
    this.now = start;
    this.core = new ControllerCore({ ...SETTINGS, ...settings }, start);
  }

  at(t: number): this {
    if (t < this.now) throw new Error(`the test clock goes back: ${t} < ${this.now}`);
    this.now = t;
    return this;
  }

  step(input: ControllerInput): ControllerEffect[] {
    const out = this.core.step(input, this.now);
    for (const e of out) if (e.kind === 'run') this.open.set(e.op, e.what);
    this.seen.push(...out);
    return out;
  }

  tick(): ControllerEffect[] { return this.step({ kind: 'tick' }); }

  /** Every effect since the last call (of this or `ops`). */
  effects(): ControllerEffect[] { const s = this.seen; this.seen = []; return s; }

  /** The ops run since the last call (of this or `effects`), lease renewals left out. */
  ops(): ControllerOp[] {
    return this.effects().flatMap((e) => (e.kind === 'run' && e.what.type !== 'renewLease' ? [e.what] : []));
  }

  /** Names of the ops run since the last call, lease renewals left out. */
  names(): string[] { return this.ops().map(nameOf); }

  wakes(effects: ControllerEffect[]): number[] {
    return effects.flatMap((e) => (e.kind === 'wakeAt' ? [e.at] : []));
  }

  openIds(name: string): number[] {
    return [...this.open].filter(([, op]) => nameOf(op) === name).map(([id]) => id);
  }

  /** Answers the one open op of that name; what was seen before is dropped, so `ops()` shows what this answer caused. */
  answer(name: string, result: OpResult): ControllerEffect[] {
    const ids = this.openIds(name);
    if (ids.length !== 1) throw new Error(`expected one open ${name}, found ${ids.length} (open: ${[...this.open.values()].map(nameOf).join(', ')})`);
    return this.answerId(ids[0], result);
  }

  answerId(id: number, result: OpResult, fresh = true): ControllerEffect[] {
    if (fresh) this.seen = [];
    this.open.delete(id);
    return this.step({ kind: 'done', op: id, result });
  }

  /** Answers every open lease renewal; and the active's check of its lock after one (still ours), unless `lockChecks` is off. */
  renew(result: OpResult = ok()): void {
    for (const id of this.openIds('renewLease')) this.answerId(id, result, false);
    if (!this.lockChecks) return;
    for (const [id, op] of [...this.open]) if (op.type === 'readLock' && !op.watch) this.answerId(id, ok({ lock: { owner: SID, czxid: CZ } }), false);
  }

  /** Whether renew() answers the active's quiet lock checks itself. */
  lockChecks = true;

  /** Moves the clock to `t` in small ticks, answering lease renewals as they come (unless told not to). */
  advanceTo(t: number, renew = true): void {
    while (this.now < t) {
      this.at(Math.min(t, this.now + 250));
      this.tick();
      if (renew) this.renew();
    }
  }

  phase(): Phase { return this.core.status(this.now).phase; }
}

/** Start → standby, session connected, first lease answered; healthy unless told otherwise. */
export function standby(h: Harness, healthy = true): void {
  h.tick();
  h.answer('queryRole', ok({ role: 'standby' }));
  h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
  h.renew();
  expect(h.names()).toEqual([]);
  if (healthy) h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
}

/** Standby and racing: a createLock is open. */
export function contend(h: Harness): void {
  standby(h);
  expect(h.names()).toEqual(['createLock']);
  expect(h.phase()).toBe('contending');
}

/** From contending to active: wins the lock, fences `crumb`'s instance if it is another one, and so on. */
export function promote(h: Harness, opts: { crumb?: Breadcrumb | null; epoch?: number } = {}): void {
  const crumb = opts.crumb === undefined ? OTHER_CRUMB : opts.crumb;
  h.answer('createLock', ok({ lock: { owner: SID, czxid: CZ } }));
  h.answer('readBreadcrumb', ok({ breadcrumb: { data: crumb, version: 3 } }));
  if (h.openIds('fence').length === 1) h.answer('fence', ok({ detail: 'graceful' }));
  if (h.openIds('newEpoch').length === 1) h.answer('newEpoch', ok({ epoch: opts.epoch ?? 7 }));
  h.answer('writeBreadcrumb', ok());
  if (h.openIds('preActive').length === 1) h.answer('preActive', ok());
  h.answer('toActive', ok());
  expect(h.phase()).toBe('active');
  // The new active reads its lock with a watch on it (C1: it hears at once if the lock goes).
  expect(h.ops()).toEqual([{ type: 'readLock', watch: true }]);
  h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
  expect(h.phase()).toBe('active');
  h.effects();
}

/** Active at T0 (lease from T0, next renewal due at T0 + 1000). */
export function active(settings: Partial<ControllerSettings> = {}): Harness {
  const h = new Harness(settings);
  contend(h);
  promote(h);
  return h;
}

/** A dead or hung service: the lock goes first (its hook may hang), then the hook; standby after it. */
export function finishUnhealthyDemotion(h: Harness): void {
  expect(h.names()).toEqual(['releaseLock']);
  h.answer('releaseLock', ok());
  expect(h.names()).toEqual(['toStandby']);
  h.answer('toStandby', ok());
}

/** Demoting → releasing → standby, answering the hook and the lock release with success. */
export function finishDemotion(h: Harness): void {
  h.answer('toStandby', ok());
  expect(h.names()).toEqual(['releaseLock']);
  h.answer('releaseLock', ok());
}

