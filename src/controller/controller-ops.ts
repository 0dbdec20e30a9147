// The controller's driver without its I/O: the operations ControllerCore asks
// for, carried out against a quorum session, the journal, the service and
// fencing given as interfaces (runControllerOp), and the loop that feeds the
// core its inputs and carries out its effects with a clock and timers given
// the same way (CoreRunner). Production (controller.ts) passes the real ones:
// a ZkClient, the journal nodes over HTTP, hooks, fencing methods,
// performance.now and setTimeout; the simulator (src/sim/controller-sim.ts)
// passes simulated ones, so the driver's rules run in every simulated
// schedule: the lock's owner is its ephemeralOwner, never its data; a stale
// lock is deleted only if its czxid is still the one judged stale and no
// session owns it; the lock is released only if our session owns it; the
// breadcrumb is written with the version read.
import { CreateMode, Err, EventType } from '../proto/zk-constants.js';
import type { ACL } from '../proto/zk-records.js';
import type { Breadcrumb, ControllerCore, ControllerEffect, ControllerInput, ControllerOp, ControllerSettings, HistoryEvent, OpResult, ServiceRole } from '../core/controller/controller-core.js';
import type { ControllerConfig } from '../config/controller-config.js';

/** What the driver reads of a znode's stat. */
export interface OpsStat { czxid: bigint; ephemeralOwner: bigint; version: number }

/**
 * The quorum calls the operations need: a subset of ZkClient (errors carry ZooKeeper's `code`,
 * Err.NONODE, Err.NODEEXISTS, Err.BADVERSION...). `sessionId` is the session they run in.
 */
export interface OpsQuorum {
  readonly sessionId: bigint;
  readonly state: string;
  create(path: string, data: string, opts: { mode: number; acl: ACL[] }): Promise<unknown>;
  create2(path: string, data: string, opts: { mode: number; acl: ACL[] }): Promise<{ stat: OpsStat }>;
  getData(path: string, watcher?: (ev: { type: number }) => void): Promise<{ data: Buffer | null; stat: OpsStat }>;
  delete(path: string, version?: number): Promise<void>;
  setData(path: string, data: string, version?: number): Promise<unknown>;
  sync(path?: string): Promise<void>;
}

export type IoOutcome = { ok: true; detail: string } | { ok: false; reason: string };

/** Everything the operations touch besides the quorum. */
export interface ControllerIo {
  instance: { id: string; address: string };
  lockPath: string;
  crumbPath: string;
  acl: ACL[];
  /** The quorum session, connected or not (null before the first). */
  quorum(): OpsQuorum | null;
  /** The lock's watch fired (deleted: its event says the node is gone, so a standby races without reading it). */
  lockChanged(deleted: boolean): void;
  /** The service's role (null: no role hook configured). */
  queryRole: (() => Promise<{ ok: true; role: ServiceRole; epoch: number | null } | { ok: false; reason: string }>) | null;
  /** The journal (null: the service has none): the newest epoch a majority promised; a new epoch taken on a majority. */
  journal: { readPromisedEpoch(): Promise<number>; takeEpoch(): Promise<number> } | null;
  /** The service's transition (hook and resources). */
  transition(op: Extract<ControllerOp, { type: 'hook' }>): Promise<IoOutcome>;
  /** Fences the instance in the breadcrumb (fencing.ts decides what counts). */
  fence(target: Breadcrumb, token: string): Promise<IoOutcome>;
  /** A resumed active: make sure what runs beside its service runs. */
  adoptActive(): Promise<IoOutcome>;
  /** Before the lock is released: resources never outlive our lock. */
  beforeRelease(): Promise<void>;
}

/** What controllerSettings reads of the configuration. */
export type SettingsConfig = Pick<ControllerConfig, 'instance' | 'journalNodes' | 'raceDelayMs' | 'promotionsPerWindow' | 'promotionWindowMs' | 'maxLagOnFailover' | 'failsafe' | 'sessionTimeoutMs'>;

/** Backoff after a failed promotion, doubled up to the max (the simulator's runs are shorter). */
export const RETRY_BACKOFF = { retryBackoffMs: 1000, retryBackoffMaxMs: 30_000 } as const;

/**
 * The core's settings from the configuration: this instance, its address (host:adminPort), the
 * service's journal and hooks, the race delay, flap damping; `saved`: the session the previous run
 * left open, re-attached to for at most the session timeout (null: none, start as after a crash).
 */
export function controllerSettings(cfg: SettingsConfig, saved: { id: bigint } | null, retry: { retryBackoffMs: number; retryBackoffMaxMs: number } = RETRY_BACKOFF): ControllerSettings {
  const i = cfg.instance;
  return {
    instance: i.id, address: `${i.host}:${i.adminPort}`, hasJournal: cfg.journalNodes !== null, hasPreActiveHook: i.hooks?.preActive != null,
    raceDelayMs: cfg.raceDelayMs, noFailover: i.noFailover, retryBackoffMs: retry.retryBackoffMs, retryBackoffMaxMs: retry.retryBackoffMaxMs,
    promotionsPerWindow: cfg.promotionsPerWindow, promotionWindowMs: cfg.promotionWindowMs, maxLagOnFailover: cfg.maxLagOnFailover,
    failsafe: cfg.failsafe,
    resume: saved === null ? null : { sessionId: saved.id, waitMs: cfg.sessionTimeoutMs },
  };
}

/** Carries out one operation of the core. */
export async function runControllerOp(op: ControllerOp, io: ControllerIo): Promise<OpResult> {
  const client = (): OpsQuorum => {
    const zk = io.quorum();
    if (zk === null || zk.state !== 'connected') throw new Error('no quorum connection');
    return zk;
  };
  const code = (e: unknown) => (e as { code?: number }).code;
  switch (op.type) {
    case 'renewLease':
      await client().sync('/');
      return { ok: true };
    case 'queryRole': {
      if (io.queryRole === null) return { ok: true, role: 'unknown' };
      const r = await io.queryRole();
      return r.ok ? { ok: true, role: r.role, serviceEpoch: r.epoch } : { ok: false, reason: r.reason };
    }
    case 'adoptActive': {
      const r = await io.adoptActive();
      return r.ok ? { ok: true, detail: r.detail } : { ok: false, reason: r.reason };
    }
    case 'failsafeCheck': {
      if (io.queryRole === null || io.journal === null) return { ok: false, reason: 'failsafe needs a role hook and a journal' };
      const [role, journalEpoch] = await Promise.all([io.queryRole(), io.journal.readPromisedEpoch()]);
      return role.ok ? { ok: true, role: role.role, serviceEpoch: role.epoch, journalEpoch } : { ok: false, reason: role.reason };
    }
    case 'createLock': {
      const zk = client();
      try {
        const r = await zk.create2(io.lockPath, JSON.stringify({ instance: io.instance.id, address: io.instance.address }), { mode: CreateMode.EPHEMERAL, acl: io.acl });
        return { ok: true, lock: { owner: zk.sessionId, czxid: r.stat.czxid } };
      } catch (e) {
        if (code(e) === Err.NODEEXISTS) return { ok: false, code: 'NODEEXISTS', reason: 'the lock exists' };
        throw e;
      }
    }
    case 'readLock': {
      const zk = client();
      try {
        const r = op.watch ? await zk.getData(io.lockPath, (ev) => io.lockChanged(ev.type === EventType.NodeDeleted)) : await zk.getData(io.lockPath);
        return { ok: true, lock: { owner: r.stat.ephemeralOwner, czxid: r.stat.czxid } };
      } catch (e) {
        if (code(e) !== Err.NONODE) throw e;
        return { ok: true, lock: null };
      }
    }
    case 'deleteStaleLock': {
      const zk = client();
      try {
        const r = await zk.getData(io.lockPath);
        // Only the persistent node judged stale: not a lock some session created since.
        if (r.stat.ephemeralOwner === 0n && r.stat.czxid === op.czxid) await zk.delete(io.lockPath, r.stat.version);
      } catch (e) {
        if (code(e) !== Err.NONODE) return { ok: false, reason: (e as Error).message };
      }
      return { ok: true };
    }
    case 'releaseLock': {
      const zk = io.quorum();
      // Not connected: the lock stays as long as our session lives (it may come back): not released.
      if (zk === null || zk.state !== 'connected') return { ok: false, reason: 'not connected to the quorum' };
      // Resources never outlive our lock: when a dead service's demotion releases the lock before its
      // hook, the next active must not find our floating IP still up (stopping it is local and quick).
      await io.beforeRelease();
      try {
        const r = await zk.getData(io.lockPath);
        if (r.stat.ephemeralOwner === zk.sessionId) await zk.delete(io.lockPath, r.stat.version);
      } catch (e) {
        if (code(e) !== Err.NONODE) throw e;
      }
      return { ok: true };
    }
    case 'readBreadcrumb': {
      try {
        const r = await client().getData(io.crumbPath);
        return { ok: true, breadcrumb: { data: parseCrumb(r.data), version: r.stat.version } };
      } catch (e) {
        if (code(e) !== Err.NONODE) throw e;
        return { ok: true, breadcrumb: { data: null, version: -1 } };
      }
    }
    case 'writeBreadcrumb': {
      const zk = client();
      const data = JSON.stringify(op.data);
      if (op.version < 0) await zk.create(io.crumbPath, data, { mode: CreateMode.PERSISTENT, acl: io.acl });
      else await zk.setData(io.crumbPath, data, op.version);
      return { ok: true };
    }
    case 'deleteOwnBreadcrumb': {
      const zk = client();
      try {
        const r = await zk.getData(io.crumbPath);
        if (parseCrumb(r.data)?.instance === io.instance.id) await zk.delete(io.crumbPath, r.stat.version);
      } catch (e) {
        if (code(e) !== Err.NONODE) throw e;
      }
      return { ok: true };
    }
    case 'fence': {
      const r = await io.fence(op.target, op.token);
      return r.ok ? { ok: true, detail: r.detail } : { ok: false, reason: r.reason };
    }
    case 'newEpoch': {
      if (io.journal === null) return { ok: false, reason: 'the service has no journal' };
      return { ok: true, epoch: await io.journal.takeEpoch() };
    }
    case 'hook': {
      const r = await io.transition(op);
      return r.ok ? { ok: true, detail: r.detail } : { ok: false, reason: r.reason };
    }
  }
}

export function parseCrumb(data: Buffer | null): Breadcrumb | null {
  if (data === null || data.length === 0) return null;
  try {
    const o = JSON.parse(data.toString('utf8')) as Breadcrumb;
    return typeof o.instance === 'string' ? o : null;
  } catch {
    return null;
  }
}

/** A monotonic clock and one-shot timers (production: performance.now and setTimeout; the simulator: its event queue). */
export interface DriverClock {
  now(): number;
  setTimer(ms: number, f: () => void): unknown;
  clearTimer(t: unknown): void;
}

/** Where the runner hands what is not an operation or a timer. */
export interface RunnerSinks {
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  history(event: HistoryEvent): void;
  /** Every input with the effects it produced (metrics, the simulator's checks), before they are carried out. */
  stepped?(input: ControllerInput, effects: ControllerEffect[], at: number): void;
  /** After each input's effects were carried out (or started, for operations). */
  fed?(): void;
}

/**
 * Feeds a ControllerCore its inputs and carries out its effects: operations through
 * runControllerOp (their answers fed back as `done`), one wake-up timer (the earliest asked
 * for), logs and history to the sinks.
 */
export class CoreRunner {
  private wakeTimer: unknown = null;
  private wakeAt = Infinity;
  private stopped = false;

  constructor(readonly core: ControllerCore, private readonly io: ControllerIo, private readonly clock: DriverClock, private readonly sinks: RunnerSinks) {}

  get isStopped(): boolean { return this.stopped; }

  feed(input: ControllerInput): void {
    if (this.stopped) return;
    const t = this.clock.now();
    const effects = this.core.step(input, t);
    this.sinks.stepped?.(input, effects, t);
    for (const e of effects) this.effect(e);
    this.sinks.fed?.();
  }

  /** Carries out one effect (the driver also records history events it witnessed itself). */
  effect(e: ControllerEffect): void {
    switch (e.kind) {
      case 'log': this.sinks.log(e.level, e.msg, { ...e.fields, epoch: this.core.currentEpoch }); return;
      case 'wakeAt': this.scheduleWake(e.at); return;
      case 'history': this.sinks.history(e.event); return;
      case 'run':
        void runControllerOp(e.what, this.io).then(
          (result) => this.feed({ kind: 'done', op: e.op, result }),
          (err: Error) => this.feed({ kind: 'done', op: e.op, result: { ok: false, reason: err.message } }),
        );
        return;
    }
  }

  /** No more inputs, no more timers (operations in flight finish; their answers are dropped). */
  stop(): void {
    this.stopped = true;
    if (this.wakeTimer !== null) this.clock.clearTimer(this.wakeTimer);
    this.wakeTimer = null;
  }

  private scheduleWake(at: number): void {
    if (at >= this.wakeAt && this.wakeTimer !== null) return;
    if (this.wakeTimer !== null) this.clock.clearTimer(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => { this.wakeTimer = null; this.wakeAt = Infinity; this.feed({ kind: 'tick' }); });
  }
}
