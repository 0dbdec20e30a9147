// The failover controller of one service instance, as a pure state machine:
// it is told the health of its service, the state of its quorum session, the
// time, and the outcome of every operation it asked for; it answers with the
// operations to run (lock znode, breadcrumb, fencing, journal epoch, service
// hooks, lease renewals) and when to wake it. The driver (src/controller)
// runs them. Rules it keeps:
//   C1 the service is made active only while we hold the lock, after the
//      instance in the breadcrumb is fenced, with a fresh journal epoch;
//   C2 a lease, renewed by requests that pass through the quorum's leader and
//      measured from their send time, is checked before every side effect;
//      at 2/3 of the session timeout without renewal the service is demoted;
//   C3 an unhealthy service is never made active.
// Failsafe (a service with a journal, `failsafe: true`): when the quorum stops
// answering, the active is not demoted while the journal shows that no
// writer newer than its service's has been promised an epoch on a majority
// (checked every sixth of the session; each check holds for a third of it).
// Any other instance can become a writer only by taking a newer epoch, which
// fences this one's service at its next write, and it needs the lock (the
// quorum) first. Promotion always needs the quorum: failsafe only keeps.
// Ownership of the lock is its ephemeralOwner, never its data.
// A restart that moves nothing (settings.resume): a controller restarted within
// its session timeout re-attaches to the session its previous run left open
// and resumes the active role without any hook when, and only when, it proves
// the role is still its own: the session re-attached (not a new one, not
// expired); a lease renewed through the leader before the lock is read (C2);
// the lock's ephemeralOwner is that session; the breadcrumb names this
// instance with that lock's token (its promotion under this very lock got as
// far as the breadcrumb); the service reports active, with a journal as a
// writer in the breadcrumb's epoch or a later one (a service takes its own
// writer epoch when promoted: one older than the breadcrumb's was made active
// before this lock's promotion); the service is healthy (C3). No new journal
// epoch is taken: the service keeps writing in the epoch it took under this
// lock, and no other writer can be given a newer one without the lock, which
// this session held throughout (C4). Anything short of that
// proof starts as after a crash: a service found active is demoted and a lock
// of the old session is released, never trusted (C1).

import { invariantFailed } from '../invariant.js';

export type HealthState = 'initializing' | 'healthy' | 'unhealthy' | 'not-responding';
export type ServiceRole = 'standby' | 'active' | 'unknown';

/** What the breadcrumb znode holds: the last instance made active. */
export interface Breadcrumb { instance: string; address: string; epoch: number | null; token: string }

export type ControllerOp =
  | { type: 'createLock' }
  /** getData of the lock (with a watch when `watch`): null when there is none. */
  | { type: 'readLock'; watch: boolean }
  /** Delete a lock no session holds (a persistent node where the ephemeral lock should be), if its czxid is still `czxid`. */
  | { type: 'deleteStaleLock'; czxid: bigint }
  /** Delete the lock if (and only if) its ephemeralOwner is our session. */
  | { type: 'releaseLock' }
  | { type: 'readBreadcrumb' }
  | { type: 'fence'; target: Breadcrumb; token: string }
  | { type: 'newEpoch' }
  /** version -1: create it. */
  | { type: 'writeBreadcrumb'; data: Breadcrumb; version: number }
  /** Remove our own breadcrumb (a clean quit): the next active need not fence us. */
  | { type: 'deleteOwnBreadcrumb' }
  | { type: 'hook'; hook: 'preActive' | 'toActive' | 'toStandby'; epoch: number | null; token: string | null; previous: string | null }
  /** A request ordered by the quorum's leader (a sync): its send time starts a lease. */
  | { type: 'renewLease' }
  /** Ask the service which role it has (at start). */
  | { type: 'queryRole' }
  /** Failsafe: the service's role and writer epoch, and the newest epoch a majority of journal nodes promised. */
  | { type: 'failsafeCheck' }
  /** A restart resumes the active role: make sure what the active runs beside its service (resources) runs; no hook. */
  | { type: 'adoptActive'; epoch: number | null; token: string };

export type OpResult =
  | { ok: true; lock?: { owner: bigint; czxid: bigint } | null; breadcrumb?: { data: Breadcrumb | null; version: number }; epoch?: number; role?: ServiceRole; detail?: string; serviceEpoch?: number | null; journalEpoch?: number }
  | { ok: false; reason: string; code?: 'NODEEXISTS' | 'BADVERSION' | 'NONODE' };

export type ControllerInput =
  | { kind: 'health'; state: HealthState; reason: string }
  /** How far the service's replica is behind, as it reports it (null: not reported). */
  | { kind: 'lag'; value: number | null }
  | { kind: 'session'; state: 'connected'; sessionId: bigint; timeoutMs: number }
  | { kind: 'session'; state: 'disconnected' | 'expired' }
  | { kind: 'done'; op: number; result: OpResult }
  /** The lock's watch fired (deleted or changed); `deleted`: the event says it was deleted. */
  | { kind: 'lockChanged'; deleted?: boolean }
  | { kind: 'cede'; forMs: number }
  /** This instance is a manual failover's target: race now, past cede, backoff and flap damping. */
  | { kind: 'failoverTarget'; forMs: number; force?: boolean }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'tick' };

export type ControllerEffect =
  | { kind: 'run'; op: number; what: ControllerOp }
  | { kind: 'wakeAt'; at: number }
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  /** Something an operator asks about later ("what happened at 03:12, and why"): kept in the quorum's history. */
  | { kind: 'history'; event: HistoryEvent };

/**
 * One entry of a service's failover history, as this controller saw it. `durationMs` of a
 * promotion: from this controller starting to race (it saw the lock free) to its service active.
 */
export type HistoryEvent =
  | { type: 'promoted'; epoch: number | null; token: string | null; previous: string | null; reason: string; durationMs: number }
  | { type: 'demoted'; epoch: number | null; token: string | null; reason: string; standbyConfirmed: boolean | null }
  | { type: 'promotion-failed'; epoch: number | null; token: string | null; reason: string }
  | { type: 'fenced'; target: string; detail: string; token: string | null }
  | { type: 'fence-failed'; target: string; reason: string; token: string | null }
  | { type: 'ceded'; forMs: number; reason: string }
  | { type: 'failover-target'; forced: boolean }
  | { type: 'paused' }
  | { type: 'resumed' }
  /** A restarted controller found its session, lock and active service still its own and went on: no role change. */
  | { type: 'resumed-after-restart'; epoch: number | null; token: string | null; reason: string }
  /** A switchover scheduled with `failover --at` (recorded by the driver that handled it): when it was due, to whom. */
  | { type: 'scheduled-failover'; action: 'scheduled' | 'cancelled' | 'started' | 'missed'; due: string; to: string | null; by: string };

export type Phase =
  | 'starting' | 'standby' | 'contending' | 'watching'
  | 'promoting' | 'active' | 'demoting' | 'releasing';

type Step = 'resumeLock' | 'resumeBreadcrumb' | 'adoptActive' | 'releaseStale' | 'createLock' | 'readLock' | 'deleteStaleLock' | 'readBreadcrumb' | 'fence' | 'newEpoch' | 'writeBreadcrumb' | 'preActive' | 'toActive' | 'toStandby' | 'releaseLock' | 'deleteOwnBreadcrumb' | 'queryRole';
/** The steps of a promotion (or a resume after a restart) that act on the world (fence, journal epoch, breadcrumb, hooks, resources). */
const PROMOTION_STEPS: ReadonlySet<Step> = new Set<Step>(['fence', 'newEpoch', 'writeBreadcrumb', 'preActive', 'toActive', 'adoptActive']);

export interface ControllerSettings {
  instance: string;
  address: string;
  hasJournal: boolean;
  hasPreActiveHook: boolean;
  /** A lower-priority standby waits this long after the lock goes before it races (ms). */
  raceDelayMs: number;
  noFailover: boolean;
  /** Backoff after a failed promotion (ms), doubled up to max. */
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  /** Automatic promotions allowed per window (flap damping). */
  promotionsPerWindow: number;
  promotionWindowMs: number;
  /** A standby further behind than this (as its service reports) does not race; null: no limit. */
  maxLagOnFailover?: number | null;
  /** Keep the active while the quorum is unreachable, for as long as the journal backs it (needs hasJournal). */
  failsafe?: boolean;
  /**
   * The quorum session this controller's previous run left open (its id, from the run directory),
   * which the driver re-attaches to: the core may resume the active role if it can prove it is still
   * its own (see the header). Waits at most waitMs (the session timeout) for the proof, then starts
   * as after a crash.
   */
  resume?: { sessionId: bigint; waitMs: number } | null;
}

/** What status shows and /active answers from. */
export interface ControllerStatus {
  phase: Phase;
  health: HealthState;
  healthReason: string;
  session: 'connected' | 'disconnected' | 'expired' | 'none';
  sessionId: string | null;
  /** The negotiated session timeout (ms); 0 before the first session. */
  sessionTimeoutMs: number;
  paused: boolean;
  lockCzxid: string | null;
  epoch: number | null;
  lastTransition: { at: number; to: string; reason: string } | null;
  lastFailure: string | null;
  leaseValidUntil: number | null;
  /** After the last demotion: did the service confirm standby (its to-standby hook succeeded)? */
  standbyConfirmed: boolean | null;
  /** The service's reported replication lag, and why a healthy standby is not racing (null when it may). */
  lag: number | null;
  notRacing: string | null;
  /** Active without the quorum, backed by the journal: since when, and until when the last check holds. */
  failsafe: { since: number; validUntil: number | null } | null;
}

export class ControllerCore {
  private phase: Phase = 'starting';
  private health: HealthState = 'initializing';
  private healthReason = 'no check has finished yet';
  private session: ControllerStatus['session'] = 'none';
  private sessionId: bigint | null = null;
  private timeoutMs = 0;
  private paused = false;
  /** When this race began (the lock seen free), for a promotion's duration. */
  private contendSince: number | null = null;
  /** The epoch this instance was active in since the last standby (null: not active since; a failed promotion is not a demotion). */
  private activeEpoch: number | null | undefined = undefined;
  /** The fencing token this instance was made active under: its to-standby hook and history carry it even after the lock is gone (expired session, lock taken). */
  private activeToken: string | null = null;
  private cededUntil = 0;
  private notBefore = 0;
  private backoffMs: number;
  private readonly promotions: number[] = [];
  private lockCzxid: bigint | null = null;
  private breadcrumbVersion = -1;
  private previous: Breadcrumb | null = null;
  private epoch: number | null = null;
  private lastTransition: ControllerStatus['lastTransition'] = null;
  private lastFailure: string | null = null;
  /** Send time of the latest lease renewal that came back, and of the one in flight. */
  private leaseSentAt: number | null = null;
  /** Renewals in flight, by op: a lost one must not block the next. */
  private readonly renewals = new Map<number, number>();
  private nextRenewAt = 0;
  /** The operation whose answer the current phase waits for. */
  private pending: { op: number; step: Step } | null = null;
  /** The lock changed while a read of it was pending: its answer may predate the change. */
  private lockChangedDuringRead = false;
  /** Our create of the lock failed other than NODEEXISTS (a refusal, or its answer lost): why, and the read that follows it (only that read's answer may act on it). */
  private createFailed: { readOp: number; reason: string } | null = null;
  private nextOp = 1;
  private out: ControllerEffect[] = [];
  /** Why we are demoting/releasing, for the log and status. */
  private exitReason = '';
  private cleanQuit = false;
  /** A cede that arrived while a promotion step was in flight: done when that step answers. */
  private cedePending = false;
  private hookAfterRelease = false;
  private releasedBeforeHook = false;
  private demotionToken: string | null = null;
  /** Until then this instance is a manual failover's target. */
  private targetUntil = 0;
  private forced = false;
  private lag: number | null = null;
  /** A lock read that failed while active: read it again once connected. */
  /**
   * The active re-reads its lock: 'watch' re-arms the watch on it (after promotion, after it fired,
   * after a failed read); 'quiet' is the check after each lease renewal (a watch lost with a
   * connection must not leave a lock taken by someone else unnoticed: C1).
   */
  private recheckLock: false | 'watch' | 'quiet' = false;
  private standbyConfirmed: boolean | null = null;
  /** Failsafe: send time of the last check that backed us, checks in flight, when the current spell began. */
  private failsafeSentAt: number | null = null;
  private readonly failsafeChecks = new Map<number, number>();
  private nextFailsafeAt = 0;
  private failsafeSince: number | null = null;
  private failsafeRefutedAt: number | null = null;
  /** The service's answer to the role query at start (null until it came). */
  private startRole: OpResult | null = null;
  /**
   * A restart that may resume the active role, until it is decided: the old session's id, until when
   * to wait for the proof, whether that session re-attached, and why to give up once the step in
   * flight answers (never a to-standby beside an in-flight step).
   */
  private resume: { sessionId: bigint; until: number; reattached: boolean; abort: string | null } | null = null;
  /** The old session, given up on before it re-attached: if it still does, a lock it holds is released (never trusted). */
  private staleSession: bigint | null = null;

  constructor(private readonly s: ControllerSettings, private now: number) {
    this.backoffMs = s.retryBackoffMs;
    if (s.resume != null) {
      if (s.resume.sessionId === 0n) throw new Error('resume: session id 0 is no session');
      this.resume = { sessionId: s.resume.sessionId, until: now + s.resume.waitMs, reattached: false, abort: null };
    }
  }

  // ---- reading -------------------------------------------------------------

  /** The lease holds: a leader-ordered request sent less than 2/3 of the session timeout ago came back. */
  leaseValid(now: number): boolean {
    // A brief disconnect (a quorum server restarting) does not end it: time does, or the session's expiry.
    return (this.session === 'connected' || this.session === 'disconnected') && this.leaseSentAt !== null && now < this.leaseSentAt + (this.timeoutMs * 2) / 3;
  }

  get currentPhase(): Phase { return this.phase; }

  /**
   * Whether a controller that exits now (SIGTERM) should leave its quorum session open for its
   * restart to re-attach: it holds (or may hold) the lock or the active role. A standby's has
   * nothing to keep and is closed.
   */
  keepsSessionOnExit(): boolean {
    return this.lockCzxid !== null || this.resume !== null || this.staleSession !== null
      || this.phase === 'active' || this.phase === 'promoting' || this.phase === 'demoting' || this.phase === 'releasing';
  }
  get currentEpoch(): number | null { return this.epoch; }

  /** Active as an outside observer should believe it at `now`: the role and a lease (or the journal, in failsafe) that holds now. */
  isActive(now: number): boolean {
    return this.phase === 'active' && (this.leaseValid(now) || this.failsafeValid(now));
  }

  /** The last failsafe check backed us less than a third of the session ago (and the session did not expire). */
  failsafeValid(now: number): boolean {
    return this.s.failsafe === true && this.session !== 'expired' && this.lockCzxid !== null && this.failsafeSentAt !== null && now < this.failsafeSentAt + this.timeoutMs / 3;
  }

  status(now: number): ControllerStatus {
    return {
      phase: this.phase, health: this.health, healthReason: this.healthReason, session: this.session,
      sessionId: this.sessionId === null ? null : `0x${this.sessionId.toString(16)}`, sessionTimeoutMs: this.timeoutMs, paused: this.paused,
      lockCzxid: this.lockCzxid === null ? null : String(this.lockCzxid), epoch: this.epoch,
      lastTransition: this.lastTransition, lastFailure: this.lastFailure,
      leaseValidUntil: this.leaseValid(now) ? this.leaseSentAt! + (this.timeoutMs * 2) / 3 : null,
      standbyConfirmed: this.standbyConfirmed,
      lag: this.lag,
      notRacing: this.lagProblem(now),
      failsafe: this.failsafeSince === null ? null : { since: this.failsafeSince, validUntil: this.failsafeValid(now) ? this.failsafeSentAt! + this.timeoutMs / 3 : null },
    };
  }

  /** Why this standby may not race because of its replication lag (a forced manual failover may). */
  lagProblem(now: number): string | null {
    const max = this.s.maxLagOnFailover ?? null;
    if (max === null || (this.forced && now < this.targetUntil)) return null;
    if (this.lag === null) return `its service has not reported its replication lag yet (maxLagOnFailover ${max})`;
    return this.lag > max ? `its service is ${this.lag} behind, more than maxLagOnFailover ${max}` : null;
  }

  // ---- driving -------------------------------------------------------------

  /** Feeds one input at time `now` (a monotonic clock); returns what to do. */
  step(input: ControllerInput, now: number): ControllerEffect[] {
    this.now = Math.max(this.now, now);
    switch (input.kind) {
      case 'health': this.onHealth(input.state, input.reason); break;
      case 'session': this.onSession(input); break;
      case 'done': this.onDone(input.op, input.result); break;
      case 'lockChanged':
        // A standby told the lock was deleted races at once: reading it first would only say so again
        // (a lock re-created meanwhile makes the create fail, and that is read then). The active reads
        // it: whether it is still its own is decided by its ephemeralOwner.
        if (this.phase === 'watching' && input.deleted === true && this.pending === null) this.lockFree();
        else if (this.phase === 'watching' || this.phase === 'active') this.readLock();
        // The watch this read sets can fire before its answer is taken (the reply and the event came
        // in together): the answer is then already old, and the watch is spent.
        else if (this.pending?.step === 'readLock') this.lockChangedDuringRead = true;
        break;
      case 'cede': this.onCede(input.forMs); break;
      case 'failoverTarget':
        this.targetUntil = this.now + input.forMs; this.forced = input.force === true; this.cededUntil = 0; this.notBefore = 0;
        this.history({ type: 'failover-target', forced: this.forced });
        break;
      case 'lag': this.lag = input.value; break;
      case 'pause':
        if (this.paused) break;
        this.paused = true; this.log('warn', 'automatic failover paused: no automatic role changes, self-demotion included; split-brain protection rests on fencing and the journal');
        this.history({ type: 'paused' });
        break;
      case 'resume':
        if (!this.paused) break;
        this.paused = false; this.log('info', 'automatic failover resumed');
        this.history({ type: 'resumed' });
        break;
      case 'tick': break;
    }
    this.evaluate();
    const o = this.out;
    this.out = [];
    return o;
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.out.push({ kind: 'log', level, msg, fields: { role: this.phase, ...fields } });
  }

  private run(step: Step, what: ControllerOp): number {
    // C2/C3 where they are decided: a promotion's side effect goes out only under a lease that holds now, for a healthy service.
    if (PROMOTION_STEPS.has(step) && (!this.leaseValid(this.now) || this.health !== 'healthy')) invariantFailed(this.health !== 'healthy' ? 'controller.active-only-healthy' : 'controller.lease-before-side-effect', { step, phase: this.phase, health: this.health, session: this.session, now: this.now, leaseSentAt: this.leaseSentAt, timeoutMs: this.timeoutMs });
    const op = this.nextOp++;
    this.pending = { op, step };
    this.out.push({ kind: 'run', op, what });
    return op;
  }

  private wake(at: number): void {
    this.out.push({ kind: 'wakeAt', at });
  }

  private transition(to: Phase, reason: string, resumed = false): void {
    if (this.phase === to) return;
    const from = this.phase;
    this.phase = to;
    if (to === 'active' || to === 'standby' || from === 'active') this.lastTransition = { at: this.now, to, reason };
    this.log('info', `${from} -> ${to}: ${reason}`);
    if (to === 'contending') this.contendSince = this.now;
    if (to === 'active') this.activeToken = this.tokenString();
    if (to === 'active' && resumed) {
      this.activeEpoch = this.epoch;
      this.history({ type: 'resumed-after-restart', epoch: this.epoch, token: this.tokenString(), reason });
    } else if (to === 'active') {
      this.activeEpoch = this.epoch;
      this.history({ type: 'promoted', epoch: this.epoch, token: this.tokenString(), previous: this.previousOther(), reason, durationMs: Math.round(this.now - (this.contendSince ?? this.now)) });
    }
    if (to === 'standby' && this.activeEpoch !== undefined) {
      this.history({ type: 'demoted', epoch: this.activeEpoch, token: this.demotionToken, reason, standbyConfirmed: this.standbyConfirmed });
      this.activeEpoch = undefined;
      this.activeToken = null;
    }
  }

  private history(event: HistoryEvent): void {
    this.out.push({ kind: 'history', event });
  }

  private onHealth(state: HealthState, reason: string): void {
    if (state !== this.health) this.log(state === 'healthy' ? 'info' : 'warn', `service ${state}: ${reason}`);
    this.health = state;
    this.healthReason = reason;
  }

  private onSession(input: Extract<ControllerInput, { kind: 'session' }>): void {
    if (input.state === 'connected') {
      if (this.sessionId !== input.sessionId) {
        // A new session: nothing of the old one's lock or watch is ours any more.
        this.lockCzxid = null;
        this.leaseSentAt = null;
        if (this.phase === 'watching' || this.phase === 'contending') { this.pending = null; this.transition('standby', 'new quorum session'); }
      }
      if (this.staleSession !== null && this.staleSession !== input.sessionId) this.staleSession = null;
      this.session = 'connected';
      this.sessionId = input.sessionId;
      this.timeoutMs = input.timeoutMs;
      this.nextRenewAt = this.now;
      if (this.resume !== null) {
        if (input.sessionId === this.resume.sessionId) {
          if (!this.resume.reattached) this.log('info', `re-attached to the quorum session of the previous run (0x${input.sessionId.toString(16)})`);
          this.resume.reattached = true;
        } else {
          this.giveUpResume(`the previous run's quorum session (0x${this.resume.sessionId.toString(16)}) is gone: a new session was made`);
        }
      }
      return;
    }
    this.session = input.state;
    if (input.state === 'expired') {
      // The lock, if we had it, is gone with the session.
      this.lockCzxid = null;
      this.sessionId = null;
      this.leaseSentAt = null;
      this.staleSession = null;
      if (this.resume !== null) this.giveUpResume(`the previous run's quorum session (0x${this.resume.sessionId.toString(16)}) expired`);
    }
    this.renewals.clear();
  }

  /**
   * The restart cannot prove the active role is still ours: start as after a crash. A service
   * found active is demoted (to-standby, then our lock released if we hold it); a lock of the old
   * session is released; otherwise standby. With a step in flight, this waits for its answer.
   */
  private giveUpResume(reason: string): void {
    const rs = this.resume;
    if (rs === null) return;
    if (this.pending !== null && this.pending.step !== 'queryRole') { rs.abort ??= reason; return; }
    this.resume = null;
    // Unless the old session is known dead (it expired, or a new one was made), it may hold the lock
    // (or come back late holding it): a standby releases it before anything else.
    const oldDead = this.session === 'expired' || (this.sessionId !== null && this.sessionId !== rs.sessionId);
    if (!oldDead && this.lockCzxid === null) this.staleSession = rs.sessionId;
    this.log('warn', `not resuming after the restart: ${reason}`);
    if (this.startRole === null) return; // the role query's answer starts us as it does without a resume
    const r = this.startRole;
    if (r.ok && r.role === 'active') {
      this.log('warn', 'the service reports active but this controller cannot prove it holds the lock: demoting it');
      this.startDemotion(`reconciling after a restart: ${reason}`);
    } else if (this.lockCzxid !== null) {
      this.release(`the lock of the previous run's session is released, not trusted: ${reason}`);
    } else {
      this.transition('standby', r.ok ? `service reports ${r.role}` : `role query failed: ${r.reason}`);
    }
  }

  /**
   * Starting: the role query, then (resuming) the proof, one step at a time: the old session
   * re-attached, a lease, the lock ours, a healthy service, the breadcrumb, adopt.
   */
  private evaluateStart(): void {
    if (this.pending !== null) return;
    if (this.startRole === null) { this.run('queryRole', { type: 'queryRole' }); return; }
    const rs = this.resume;
    if (rs === null) return;
    if (rs.abort !== null) { this.giveUpResume(rs.abort); return; }
    if (this.now >= rs.until) {
      this.giveUpResume(`no proof within ${this.s.resume!.waitMs} ms (${!rs.reattached ? 'the old session did not re-attach' : !this.leaseValid(this.now) ? 'no lease' : `the service is ${this.health}`})`);
      return;
    }
    this.wake(rs.until);
    const r = this.startRole;
    if (!r.ok || r.role !== 'active') {
      // Nothing to resume; a lock the old session still holds must go: learn that from the session.
      if (!rs.reattached) return;
      this.giveUpResume(r.ok ? `the service reports ${r.role}` : `the role query failed: ${r.reason}`);
      return;
    }
    if (!rs.reattached || this.session !== 'connected' || !this.leaseValid(this.now)) return;
    if (this.lockCzxid === null) { this.run('resumeLock', { type: 'readLock', watch: true }); return; }
    if (this.health === 'initializing') return;
    if (this.health !== 'healthy') { this.giveUpResume(`the service is ${this.health}: ${this.healthReason}`); return; }
    this.guarded('resumeBreadcrumb', { type: 'readBreadcrumb' }, (why) => this.giveUpResume(why));
  }

  /** Runs a step only while the lock is ours, the lease holds and the service is healthy (C1-C3); else `fail`. */
  private guarded(step: Step, what: ControllerOp, fail: (why: string) => void): void {
    if (this.lockCzxid === null) { fail('the lock went with the quorum session that held it'); return; }
    if (!this.leaseValid(this.now)) { fail('the lease expired (no answer through the quorum leader within 2/3 of the session timeout)'); return; }
    if (this.health !== 'healthy') { fail(`the service became ${this.health}`); return; }
    this.run(step, what);
  }

  /** An answer to a step of the resume proof. */
  private onResumeStep(step: Step, r: OpResult): void {
    const rs = this.resume!;
    if (rs.abort !== null) { this.giveUpResume(rs.abort); return; }
    switch (step) {
      case 'resumeLock': {
        if (!r.ok) { this.giveUpResume(`reading the lock failed: ${r.reason}`); return; }
        const lock = r.lock ?? null;
        if (lock === null) { this.giveUpResume('there is no lock'); return; }
        if (lock.owner !== rs.sessionId || this.sessionId !== rs.sessionId) { this.giveUpResume('another session holds the lock'); return; }
        this.lockCzxid = lock.czxid;
        this.log('info', `the lock (token ${lock.czxid}) is still held by this controller's session`);
        return;
      }
      case 'resumeBreadcrumb': {
        if (!r.ok) { this.giveUpResume(`reading the breadcrumb failed: ${r.reason}`); return; }
        const crumb = r.breadcrumb!.data;
        const serviceEpoch = this.startRole !== null && this.startRole.ok ? this.startRole.serviceEpoch ?? null : null;
        const why = crumb === null ? 'there is no breadcrumb'
          : crumb.instance !== this.s.instance ? `the breadcrumb names ${crumb.instance}`
          : crumb.token !== this.tokenString() ? `the breadcrumb's token ${crumb.token} is not this lock's (${this.tokenString()}): the promotion under this lock did not get that far`
          : this.s.hasJournal && serviceEpoch === null ? 'the service\'s role answer names no journal epoch, so it cannot be matched with the breadcrumb\'s'
          : this.s.hasJournal && (crumb.epoch === null || serviceEpoch! < crumb.epoch) ? `the service writes in epoch ${serviceEpoch}, older than the breadcrumb's ${crumb.epoch ?? '(none)'}: it was not made active under this lock`
          : null;
        if (why !== null) { this.giveUpResume(why); return; }
        this.previous = crumb;
        this.breadcrumbVersion = r.breadcrumb!.version;
        this.epoch = crumb!.epoch;
        this.guarded('adoptActive', { type: 'adoptActive', epoch: this.epoch, token: this.tokenString()! }, (w) => this.giveUpResume(w));
        return;
      }
      case 'adoptActive': {
        if (!r.ok) { this.giveUpResume(`adopting the active role: ${r.reason}`); return; }
        // The lease and the lock may have gone while it ran (C1, C2): the same checks as to-active.
        if (this.lockCzxid === null || !this.leaseValid(this.now) || this.health !== 'healthy') {
          this.giveUpResume(this.lockCzxid === null ? 'the lock went with the session' : !this.leaseValid(this.now) ? 'the lease expired while adopting' : `the service became ${this.health}`);
          return;
        }
        this.resume = null;
        this.backoffMs = this.s.retryBackoffMs;
        this.transition('active', `resumed after a restart: the session, the lock (token ${this.tokenString()}) and the active service (epoch ${this.epoch ?? '-'}) are still this controller's`, true);
        this.recheckLock = 'watch';
        return;
      }
      default: return;
    }
  }

  private onCede(forMs: number): void {
    this.cededUntil = this.now + forMs;
    this.history({ type: 'ceded', forMs, reason: this.phase === 'active' || this.phase === 'promoting' ? 'asked to cede (manual failover or the next active fencing gracefully)' : 'asked to cede while not active' });
    if (this.phase === 'promoting' && this.pending !== null) {
      // Never run to-standby beside an in-flight promotion step: demote when it answers.
      this.cedePending = true;
      return;
    }
    if (this.phase === 'active' || this.phase === 'promoting') {
      this.cleanQuit = true;
      this.startDemotion('asked to cede (manual failover)');
    } else if (this.phase === 'watching' || this.phase === 'contending') {
      this.transition('standby', 'asked to cede');
      this.pending = null;
    }
  }

  /**
   * `releaseFirst`: the service is dead or hung, so its hook may hang too: the lock goes first (the
   * next active fences us: the breadcrumb still names us), then the hook is tried.
   */
  private startDemotion(reason: string, releaseFirst = false): void {
    this.exitReason = reason;
    if (!this.cleanQuit) this.lastFailure = reason;
    this.standbyConfirmed = false;
    this.demotionToken = this.tokenString() ?? this.activeToken;
    if (releaseFirst) {
      this.hookAfterRelease = true;
      this.release(reason);
      return;
    }
    this.transition('demoting', reason);
    this.run('toStandby', { type: 'hook', hook: 'toStandby', epoch: this.epoch, token: this.demotionToken, previous: null });
  }

  private release(reason: string): void {
    this.exitReason = reason;
    this.transition('releasing', reason);
    this.run('releaseLock', { type: 'releaseLock' });
  }

  private tokenString(): string | null {
    return this.lockCzxid === null ? null : String(this.lockCzxid);
  }

  private failPromotion(reason: string): void {
    this.history({ type: 'promotion-failed', epoch: this.epoch, token: this.tokenString(), reason });
    this.log('warn', `promotion failed: ${reason}`);
    this.backOffRace(reason);
    this.startDemotion(`promotion failed: ${reason}`);
  }

  /** The quorum refused the race (not a lost connection): says so, and backs off as after a failed promotion. */
  private backOffRefused(what: string, reason: string): void {
    this.log('warn', `${what}: racing again in ${this.backoffMs} ms`);
    this.backOffRace(reason);
  }

  /** No race before the backoff has passed; the next backoff is twice as long (up to the maximum). */
  private backOffRace(reason: string): void {
    this.lastFailure = reason;
    this.notBefore = this.now + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.s.retryBackoffMaxMs);
  }

  private onDone(op: number, r: OpResult): void {
    const sentAt = this.renewals.get(op);
    if (sentAt !== undefined) {
      this.renewals.delete(op);
      if (r.ok && (this.leaseSentAt === null || sentAt > this.leaseSentAt)) this.leaseSentAt = sentAt;
      if (r.ok && this.phase === 'active' && this.recheckLock === false) this.recheckLock = 'quiet';
      return;
    }
    const checkSentAt = this.failsafeChecks.get(op);
    if (checkSentAt !== undefined) { this.failsafeChecks.delete(op); this.onFailsafeCheck(checkSentAt, r); return; }
    if (this.pending?.op !== op) return;
    const step = this.pending.step;
    this.pending = null;
    if (this.cedePending && this.phase === 'promoting') {
      this.cedePending = false;
      this.cleanQuit = true;
      this.startDemotion('asked to cede (manual failover)');
      return;
    }
    if (step === 'resumeLock' || step === 'resumeBreadcrumb' || step === 'adoptActive') {
      if (this.resume !== null && this.phase === 'starting') this.onResumeStep(step, r);
      return;
    }
    switch (step) {
      case 'releaseStale':
        // Deleted if (and only if) the old session held it; else, tried again while that session lives.
        if (!r.ok && this.session !== 'expired') { this.log('warn', `could not release the lock of the previous run's session yet: ${r.reason}`); this.staleSession = this.sessionId; }
        return;
      case 'queryRole':
        this.startRole = r;
        if (this.resume !== null) {
          this.log('info', `the service reports ${r.ok ? r.role : `nothing (${r.reason})`}; proving the active role is still ours before resuming (at most until the previous session's timeout)`);
          return;
        }
        if (r.ok && r.role === 'active') {
          // A restarted controller finds its service active without the lock: demote it first.
          this.log('warn', 'the service reports active but this controller does not hold the lock: demoting it');
          this.startDemotion('reconciling: active without the lock');
        } else {
          this.transition('standby', r.ok ? `service reports ${r.role}` : `role query failed: ${r.reason}`);
        }
        return;
      case 'createLock':
        if (r.ok) { this.lockCzxid = r.lock!.czxid; this.startPromotion(); return; }
        if (r.code === 'NODEEXISTS') { this.readLock(); return; }
        // The answer was lost (connection loss): who holds it is decided by its ephemeralOwner.
        this.createFailed = { readOp: this.readLock(), reason: r.reason };
        return;
      case 'readLock': {
        const changedDuringRead = this.lockChangedDuringRead;
        this.lockChangedDuringRead = false;
        // A read dropped on the way (a new session, a cede) leaves the flag behind: it counts only for its own read.
        const createFailed = this.createFailed?.readOp === op ? this.createFailed.reason : null;
        this.createFailed = null;
        if (!r.ok) {
          // While active, a failed read proves nothing: the lease decides; read again once connected.
          if (this.phase === 'active') { this.recheckLock = 'watch'; return; }
          // Refused while the session is connected (a lost connection says so first): racing again at
          // once would be refused again, in a tight loop against the quorum. Back off.
          if (this.session === 'connected') this.backOffRefused(`reading the lock failed (${r.reason}${createFailed !== null ? `; the create before it: ${createFailed}` : ''})`, `reading the lock: ${r.reason}`);
          this.transition('standby', `reading the lock failed: ${r.reason}`);
          return;
        }
        const lock = r.lock ?? null;
        if (lock !== null && this.sessionId !== null && lock.owner === this.sessionId) {
          this.lockCzxid = lock.czxid;
          if (this.phase !== 'active') this.startPromotion();
          return;
        }
        if (this.phase === 'active') { this.lockCzxid = null; this.startDemotion('the lock is no longer ours'); return; }
        if (lock !== null && lock.owner === 0n) {
          // A lock no session holds never goes away by itself: every instance would wait behind it for ever.
          this.log('warn', `the lock is a persistent node (czxid ${lock.czxid}), not held by any session: removing it`);
          this.run('deleteStaleLock', { type: 'deleteStaleLock', czxid: lock.czxid });
          return;
        }
        if (lock === null) {
          // Free, yet our create failed: the quorum refuses it (no right to create there, the base path
          // gone): racing again at once would hammer the quorum. Back off as after a failed promotion.
          if (createFailed !== null) this.backOffRefused(`creating the lock failed (${createFailed}) and nobody holds it`, `racing for the lock: ${createFailed}`);
          this.lockFree();
          return;
        }
        // Watching now would wait on a watch that already fired (a lost wake-up): read again, watching anew.
        if (changedDuringRead) { this.readLock(); return; }
        this.transition('watching', 'another instance holds the lock');
        return;
      }
      case 'deleteStaleLock':
        if (!r.ok) this.log('warn', `removing the persistent lock failed: ${r.reason}`);
        this.readLock();
        return;
      case 'readBreadcrumb':
        if (!r.ok) { this.failPromotion(`reading the breadcrumb: ${r.reason}`); return; }
        this.previous = r.breadcrumb!.data;
        this.breadcrumbVersion = r.breadcrumb!.version;
        if (this.previous !== null && this.previous.instance !== this.s.instance) {
          this.sideEffect('fence', { type: 'fence', target: this.previous, token: this.tokenString()! });
        } else this.afterFence();
        return;
      case 'fence':
        if (!r.ok) {
          this.history({ type: 'fence-failed', target: this.previous?.instance ?? '?', reason: r.reason ?? 'failed', token: this.tokenString() });
          this.failPromotion(`fencing ${this.previous?.instance}: ${r.reason}`);
          return;
        }
        this.log('info', `fenced ${this.previous?.instance}: ${r.detail ?? 'ok'}`, { fenced: this.previous?.instance });
        this.history({ type: 'fenced', target: this.previous?.instance ?? '?', detail: r.detail ?? 'ok', token: this.tokenString() });
        this.afterFence();
        return;
      case 'newEpoch':
        if (!r.ok) { this.failPromotion(`journal epoch: ${r.reason}`); return; }
        this.epoch = r.epoch!;
        this.writeBreadcrumb();
        return;
      case 'writeBreadcrumb':
        if (!r.ok) { this.failPromotion(`writing the breadcrumb: ${r.reason}`); return; }
        this.breadcrumbVersion++;
        if (this.s.hasPreActiveHook) this.sideEffect('preActive', { type: 'hook', hook: 'preActive', epoch: this.epoch, token: this.tokenString(), previous: this.previousOther() });
        else this.toActive();
        return;
      case 'preActive':
        if (!r.ok) { this.failPromotion(`pre-promote hook: ${r.reason}`); return; }
        this.toActive();
        return;
      case 'toActive':
        if (!r.ok) { this.failPromotion(`to-active: ${r.reason}`); return; }
        this.backoffMs = this.s.retryBackoffMs;
        this.promotions.push(this.now);
        this.transition('active', `promoted (epoch ${this.epoch ?? '-'}, token ${this.tokenString()})`);
        // From now on a watch on the lock says at once if it is deleted or replaced.
        this.recheckLock = 'watch';
        return;
      case 'toStandby':
        // Releasing the lock never waits on a dead service's hook: failure is logged, and we go on.
        if (!r.ok) this.log('warn', `to-standby failed: ${r.reason}`);
        this.standbyConfirmed = r.ok;
        if (this.releasedBeforeHook) { this.releasedBeforeHook = false; this.epoch = null; this.transition('standby', this.exitReason); return; }
        if (this.cleanQuit && r.ok) { this.run('deleteOwnBreadcrumb', { type: 'deleteOwnBreadcrumb' }); return; }
        this.cleanQuit = false;
        this.release(this.exitReason);
        return;
      case 'deleteOwnBreadcrumb':
        this.cleanQuit = false;
        this.release(this.exitReason);
        return;
      case 'releaseLock':
        if (!r.ok && this.session !== 'expired') {
          // Not released (no connection): the lock lives as long as our session does. Stay
          // releasing; evaluate() tries again once connected, or the session's expiry frees it.
          this.log('warn', `could not release the lock yet: ${r.reason}`);
          return;
        }
        this.afterRelease();
        return;
    }
  }

  /** The lock is gone (released, or with the session): the hook if it was held back, then standby. */
  private afterRelease(): void {
    this.lockCzxid = null;
    if (this.hookAfterRelease) {
      this.hookAfterRelease = false;
      this.releasedBeforeHook = true;
      this.transition('demoting', this.exitReason);
      this.run('toStandby', { type: 'hook', hook: 'toStandby', epoch: this.epoch, token: this.demotionToken, previous: null });
      return;
    }
    this.epoch = null;
    this.transition('standby', this.exitReason);
  }

  /** Nobody holds the lock: standby, where evaluate() races; a lower-priority candidate lets the others race first. */
  private lockFree(): void {
    if (this.phase === 'watching' && this.s.raceDelayMs > 0) this.notBefore = Math.max(this.notBefore, this.now + this.s.raceDelayMs);
    this.transition('standby', 'the lock is free');
  }

  private startPromotion(): void {
    if (this.health !== 'healthy') { this.release(`won the lock but the service is ${this.health}`); return; }
    this.transition('promoting', 'won the lock');
    this.sideEffect('readBreadcrumb', { type: 'readBreadcrumb' });
  }

  private afterFence(): void {
    if (this.s.hasJournal) this.sideEffect('newEpoch', { type: 'newEpoch' });
    else this.writeBreadcrumb();
  }

  private writeBreadcrumb(): void {
    this.sideEffect('writeBreadcrumb', { type: 'writeBreadcrumb', data: { instance: this.s.instance, address: this.s.address, epoch: this.epoch, token: this.tokenString()! }, version: this.breadcrumbVersion });
  }

  /** The previous active, for the hooks: not ourselves (a retry after our own failed promotion). */
  private previousOther(): string | null {
    const p = this.previous?.instance ?? null;
    return p === this.s.instance ? null : p;
  }

  private toActive(): void {
    this.sideEffect('toActive', { type: 'hook', hook: 'toActive', epoch: this.epoch, token: this.tokenString(), previous: this.previousOther() });
  }

  /** Every side effect of a promotion first checks the lease (after a pause, a timer may not have run yet). */
  private sideEffect(step: Step, what: ControllerOp): void {
    if (this.lockCzxid === null) { this.failPromotion('the lock went with the quorum session that held it'); return; }
    if (!this.leaseValid(this.now)) {
      this.failPromotion('the lease expired (no answer through the quorum leader within 2/3 of the session timeout)');
      return;
    }
    if (this.health !== 'healthy') { this.failPromotion(`the service became ${this.health}`); return; }
    this.run(step, what);
  }

  private readLock(watch = true): number {
    this.lockChangedDuringRead = false;
    return this.run('readLock', { type: 'readLock', watch });
  }

  /** Decides what to start now that nothing is pending; schedules the next wake-up. */
  private evaluate(): void {
    this.renewLease();
    this.runFailsafe();
    const now = this.now;
    if (this.phase === 'starting') { this.evaluateStart(); return; }
    if (this.phase === 'active' && !this.paused) {
      // Checked even while a lock read is in flight: a hung read must not hold off a demotion.
      const why = this.session === 'expired' ? 'the quorum session expired'
        : this.lockCzxid === null ? 'the quorum session that held the lock is gone'
        : !this.leaseValid(now) && !this.failsafeValid(now) ? `lease expired: no answer through the quorum leader within 2/3 of the session timeout${this.s.failsafe ? ', and no journal check backs the service (failsafe)' : ''}`
        : this.health === 'unhealthy' || this.health === 'not-responding' ? `service ${this.health}: ${this.healthReason}` : null;
      const serviceDown = this.health === 'unhealthy' || this.health === 'not-responding';
      if (why !== null) { this.pending = null; this.startDemotion(why, serviceDown && this.lockCzxid !== null); return; }
    }
    if (this.pending !== null) return;
    if (this.staleSession !== null && this.session === 'connected' && this.sessionId === this.staleSession && (this.phase === 'standby' || this.phase === 'watching')) {
      // The old session came back after we gave up on it: its lock (if it has one) must not stay.
      this.staleSession = null;
      this.log('warn', 'the previous run\'s quorum session re-attached late: releasing the lock if it holds it');
      this.run('releaseStale', { type: 'releaseLock' });
      return;
    }
    if (this.phase === 'releasing') {
      // A release that could not be done: the session's end frees the lock; a connection lets us delete it.
      if (this.session === 'expired' || this.lockCzxid === null) { this.afterRelease(); return; }
      if (this.session === 'connected') this.run('releaseLock', { type: 'releaseLock' });
      return;
    }
    if (this.phase === 'active') {
      if (this.recheckLock !== false && this.session === 'connected') { const watch = this.recheckLock === 'watch'; this.recheckLock = false; this.readLock(watch); }
      return;
    }
    if (this.phase === 'standby') {
      if (this.paused || this.s.noFailover) return;
      if (this.health !== 'healthy' || this.session !== 'connected' || !this.leaseValid(now)) return;
      const manual = now < this.targetUntil;
      if (now < this.cededUntil) { this.wake(this.cededUntil); return; }
      if (this.lagProblem(now) !== null) return;
      if (now < this.notBefore && !manual) { this.wake(this.notBefore); return; }
      while (this.promotions.length > 0 && this.promotions[0] <= now - this.s.promotionWindowMs) this.promotions.shift();
      if (this.promotions.length >= this.s.promotionsPerWindow && !manual) {
        const at = this.promotions[0] + this.s.promotionWindowMs;
        this.lastFailure = `flap damping: ${this.promotions.length} promotions in the last ${this.s.promotionWindowMs} ms`;
        this.wake(at);
        return;
      }
      this.transition('contending', 'healthy, racing for the lock');
      this.run('createLock', { type: 'createLock' });
    }
  }

  /**
   * Failsafe: once the quorum's answers are late (a third of the session without a renewal), checks
   * the journal every sixth of the session, one at a time; logs when a spell without the quorum
   * begins and ends.
   */
  private runFailsafe(): void {
    if (this.s.failsafe !== true || this.phase !== 'active' || this.timeoutMs === 0) {
      this.failsafeSince = null;
      this.failsafeSentAt = null;
      return;
    }
    const now = this.now;
    if (this.leaseValid(now) && this.failsafeSince !== null) {
      this.log('info', `the quorum answers again: failsafe ends after ${now - this.failsafeSince} ms`);
      this.failsafeSince = null;
    } else if (!this.leaseValid(now) && this.failsafeValid(now) && this.failsafeSince === null) {
      this.failsafeSince = now;
      this.log('warn', 'the quorum does not answer: staying active (failsafe) while the journal shows no newer writer than this service');
    }
    if (this.session === 'expired') return;
    const lateAt = this.leaseSentAt === null ? now : this.leaseSentAt + Math.ceil(this.timeoutMs / 3);
    if (this.session === 'connected' && now < lateAt) { this.wake(lateAt); return; }
    const every = Math.max(1, Math.floor(this.timeoutMs / 6));
    const oldest = Math.min(Infinity, ...this.failsafeChecks.values());
    if ((this.failsafeChecks.size === 0 || now - oldest > this.timeoutMs / 3) && now >= this.nextFailsafeAt) {
      const op = this.nextOp++;
      this.failsafeChecks.set(op, now);
      this.nextFailsafeAt = now + every;
      this.out.push({ kind: 'run', op, what: { type: 'failsafeCheck' } });
    }
    this.wake(this.nextFailsafeAt);
    if (this.failsafeSentAt !== null) this.wake(Math.ceil(this.failsafeSentAt + this.timeoutMs / 3));
  }

  /** A check backs the service when it reports active in epoch E and no journal majority promised an epoch past E. */
  private onFailsafeCheck(sentAt: number, r: OpResult): void {
    if (this.phase !== 'active') return;
    let problem: string | null;
    if (!r.ok) problem = r.reason;
    else if (r.role !== 'active') problem = `the service reports ${r.role ?? 'no role'}`;
    else if (r.serviceEpoch == null) problem = 'the service\'s role answer names no journal epoch';
    else if (r.journalEpoch === undefined) problem = 'no journal epoch was read';
    else if (r.journalEpoch > r.serviceEpoch) problem = `the journal promised epoch ${r.journalEpoch}, newer than the service's ${r.serviceEpoch}: another writer took over`;
    else problem = null;
    if (problem === null) {
      if (sentAt > (this.failsafeRefutedAt ?? -Infinity) && (this.failsafeSentAt === null || sentAt > this.failsafeSentAt)) this.failsafeSentAt = sentAt;
      return;
    }
    // A check that could not be made proves nothing: the last good one holds until it runs out.
    // An answer that shows the service is not the newest writer ends the backing at once.
    if (r.ok) {
      this.failsafeRefutedAt = Math.max(sentAt, this.failsafeRefutedAt ?? -Infinity);
      if (this.failsafeSentAt !== null && this.failsafeSentAt <= sentAt) this.failsafeSentAt = null;
    }
    this.log('warn', `failsafe check: ${problem}`);
  }

  /** Keeps one leader-ordered request in flight about every sixth of the session timeout. */
  private renewLease(): void {
    if (this.timeoutMs === 0) return;
    // The lease's end wakes us, connected or not: a partition is exactly when it matters.
    if (this.phase === 'active' && this.leaseSentAt !== null) this.wake(this.leaseSentAt + Math.ceil((this.timeoutMs * 2) / 3));
    if (this.session !== 'connected') return;
    const every = Math.max(1, Math.floor(this.timeoutMs / 6));
    const stuckAfter = this.timeoutMs / 3;
    const newest = () => Math.max(-Infinity, ...this.renewals.values());
    if ((this.renewals.size === 0 || this.now - newest() > stuckAfter) && this.now >= this.nextRenewAt) {
      const op = this.nextOp++;
      this.renewals.set(op, this.now);
      this.nextRenewAt = this.now + every;
      this.out.push({ kind: 'run', op, what: { type: 'renewLease' } });
    }
    // With one in flight, the next is due when it is answered, or once it counts as lost.
    this.wake(this.renewals.size === 0 ? this.nextRenewAt : Math.max(this.nextRenewAt, Math.floor(newest() + stuckAfter) + 1));
  }
}
