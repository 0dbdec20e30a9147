// The controller process of one service instance: ControllerCore (the pure
// protocol) driven by the health monitor, a quorum session (ZkClient against
// our quorum or an Apache ZooKeeper ensemble: reconnects for ever, a new
// session after expiry), a monotonic clock and timers; the operations the core
// asks for run here: lock and breadcrumb znodes, fencing, the journal epoch,
// the service's hooks, lease renewals (sync, which passes through the leader).
// The session's id and password are kept in the run directory (session-file.ts)
// from the moment it is made: a controller that exits holding the lock or the
// active role (SIGTERM, kill -9, a crash) leaves its session open, and its
// restart re-attaches to it and lets the core prove the role is still its own
// (ControllerCore's header: a restart that moves nothing). A standby's exit
// closes its session and removes the file.
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { Acls, ZkClient } from '../client/index.js';
import { readPromisedEpoch, takeJournalEpoch } from '../client/journal/journal-epoch.js';
import type { ControllerConfig } from '../config/controller-config.js';
import { ControllerCore, type HistoryEvent, type ControllerEffect, type ControllerInput, type ControllerOp } from '../core/controller/controller-core.js';
import { controllerSettings, CoreRunner, type ControllerIo, type OpsQuorum } from './controller-ops.js';
import type { Logger } from '../io/log.js';
import { CreateMode, Err } from '../proto/zk-constants.js';
import { fenceBreadcrumb } from './fencing.js';
import { HealthMonitor, type HealthProbe } from './health-monitor.js';
import { ResourceSet } from './resources.js';
import { HistoryLog, type HistoryEntry } from './history-log.js';
import { maintenanceInForce, parseMaintenance, parseScheduledFailover, WatchedZnode, type Maintenance, type ScheduledFailover } from './maintenance.js';
import { adminRequest } from './admin-client.js';
import { queryRole, runHook, type HookResult } from './service-hooks.js';
import { QuorumSessionLoop } from './quorum-session.js';
import { readSessionFile, removeSessionFile, writeSessionFile, type SavedSession, type SessionOwner } from './session-file.js';

export interface ControllerOptions {
  /** Where the quorum session is kept for a restart to re-attach (null: nowhere; a restart then fails over as after a crash). */
  sessionFile?: string | null;
}

const now = () => performance.now();
/** A scheduled switchover found due later than this (no active at the time) is dropped, not run by surprise. */
const SCHEDULE_MISS_MS = 60_000;

export class Controller extends EventEmitter {
  readonly core: ControllerCore;
  readonly health: HealthMonitor;
  readonly resources: ResourceSet;
  private session: QuorumSessionLoop | null = null;
  private get zk(): ZkClient | null { return this.session?.zk ?? null; }
  /** Feeds the core and carries out its effects (controller-ops.ts: the same code the simulator runs). */
  private readonly runner: CoreRunner;
  private stopped = false;
  private readonly lockPath: string;
  private readonly crumbPath: string;
  /** The last fencing outcome, per method, for status. */
  lastFence: string | null = null;
  readonly history: HistoryLog;
  /** Maintenance as last read from the quorum (kept while the quorum is away). */
  maintenance: Maintenance | null = null;
  private readonly maintenanceZnode: WatchedZnode;
  private maintenanceTimer: NodeJS.Timeout | null = null;
  /** A switchover scheduled with `failover --at`, as last read from the quorum. */
  scheduled: ScheduledFailover | null = null;
  private readonly scheduledZnode: WatchedZnode;
  private scheduledTimer: NodeJS.Timeout | null = null;
  private readonly sessionFile: string | null;
  private readonly sessionOwner: SessionOwner;
  /** The previous run's session, found at start (the session loop re-attaches to it). */
  private saved: SavedSession | null = null;
  /** The session id in the session file (0n: none written). */
  private savedId = 0n;
  /** Resources found running at start are left alone until the core decides whether it resumes the active role. */
  private straysDeferred = false;

  constructor(readonly cfg: ControllerConfig, readonly logger: Logger, opts: ControllerOptions = {}) {
    super();
    const i = cfg.instance;
    this.sessionFile = opts.sessionFile ?? null;
    this.sessionOwner = { cluster: cfg.clusterId, service: cfg.service, instance: i.id };
    if (this.sessionFile !== null) {
      const r = readSessionFile(this.sessionFile, this.sessionOwner);
      if (r.kind === 'ignored') logger.warn({ sessionFile: this.sessionFile }, `the saved quorum session is not used: ${r.reason}; starting a new session (a restart of an active fails over)`);
      if (r.kind === 'session') {
        this.saved = r.session;
        this.savedId = r.session.id;
        logger.info({ sessionId: `0x${r.session.id.toString(16)}`, sessionFile: this.sessionFile }, 'found the quorum session of the previous run: re-attaching to it (the active role is resumed only if still ours)');
      }
    }
    this.lockPath = `${cfg.basePath}/lock`;
    this.crumbPath = `${cfg.basePath}/breadcrumb`;
    this.core = new ControllerCore(controllerSettings(cfg, this.saved), now());
    this.history = new HistoryLog(`${cfg.basePath}/history`, cfg.history, (e) => this.logger.warn({ err: e.message, pending: this.history.pending }, 'could not write the failover history yet; retrying at the next connection'));
    this.maintenanceZnode = new WatchedZnode(`${cfg.basePath}/maintenance`, (d) => this.applyMaintenance(d), (e) => this.logger.warn({ err: e.message }, 'could not read maintenance from the quorum; keeping the last read'));
    this.scheduledZnode = new WatchedZnode(`${cfg.basePath}/scheduled-failover`, (d) => this.applyScheduled(d), (e) => this.logger.warn({ err: e.message }, 'could not read the scheduled switchover from the quorum; keeping the last read'));
    this.resources = new ResourceSet(i.resources, { ocfRoot: cfg.ocfRoot, stateDir: cfg.resourceStateDir });
    this.health = new HealthMonitor(i.health, i.resources.map((_, k) => this.resourceProbe(k)));
    this.runner = new CoreRunner(this.core, this.io(), { now, setTimer: (ms, f) => setTimeout(f, ms), clearTimer: (t) => clearTimeout(t as NodeJS.Timeout) }, {
      log: (level, msg, fields) => this.logger[level](fields, msg),
      history: (event) => {
        this.history.record(this.cfg.instance.id, event, new Date());
        if (this.zk?.state === 'connected') void this.history.flush(this.zk, this.acl);
      },
      stepped: (input, effects, t) => this.emit('step', input, effects, t),
      fed: () => this.afterFeed(),
    });
  }

  /**
   * Before the controller runs: every OCF agent checked against its meta-data (a wrong parameter
   * refuses the start, not the first failover), and resources found running here stopped (only the
   * active's controller runs them, and this one is not active yet).
   */
  async prepareResources(): Promise<void> {
    if (this.resources.size === 0) return;
    await this.resources.validate();
    if (this.saved !== null) {
      // This controller may resume the active role: its resources stay until the core has decided.
      this.straysDeferred = true;
      return;
    }
    const stopped = await this.resources.stopStrays();
    if (stopped.length > 0) this.logger.warn({ resources: stopped }, 'resources were running on this instance before its controller started: stopped (they start again when it is promoted)');
  }

  /** A resource's monitor, as a health check: it counts only while this instance is active. */
  private resourceProbe(k: number): HealthProbe {
    let failures = 0;
    const set = () => this.resources;
    return {
      get intervalMs() { return set().monitorIntervalMs(k); },
      run: async () => {
        if (!this.core.isActive(now())) { failures = 0; return { kind: 'ok' }; }
        const o = await set().check(k).catch((e: Error) => ({ kind: 'failed' as const, reason: e.message }));
        if (o.kind === 'ok') { failures = 0; return o; }
        // Still active when it answered: a monitor racing a demotion says nothing about the next active.
        if (!this.core.isActive(now())) { failures = 0; return { kind: 'ok' }; }
        return ++failures >= set().failures(k) ? o : { kind: 'ok' };
      },
    };
  }

  start(): void {
    this.health.on('change', (state, reason) => this.feed({ kind: 'health', state, reason }));
    this.health.on('lag', (value) => this.feed({ kind: 'lag', value }));
    this.health.start();
    this.feed({ kind: 'tick' });
    this.connect();
  }

  /**
   * Stops the controller without touching its service. Holding the lock or the active role (and
   * with a session file), it leaves its quorum session open: a restart within the session timeout
   * re-attaches and resumes; otherwise the session expires and a standby takes over (fencing this
   * instance) as after a crash. A standby's session is closed and its file removed. A clean
   * hand-off first is `quorate controller stop --release` (or `quorate failover`).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.session?.stop();
    if (this.maintenanceTimer) clearTimeout(this.maintenanceTimer);
    if (this.scheduledTimer) clearTimeout(this.scheduledTimer);
    this.health.stop();
    this.runner.stop();
    const zk = this.zk;
    const keep = this.core.keepsSessionOnExit() && this.sessionFile !== null && zk !== null && this.savedId !== 0n && zk.sessionId === this.savedId;
    if (keep) {
      const ms = zk.negotiatedTimeoutMs || this.cfg.sessionTimeoutMs;
      this.logger.warn({ role: this.core.currentPhase, sessionId: `0x${zk.sessionId.toString(16)}`, timeoutMs: ms },
        `stopping without a role change: the service is left as it is and the quorum session stays open; a restart within ${ms} ms resumes, otherwise a standby takes over when the session expires`);
      zk.detach();
      return;
    }
    await zk?.close().catch(() => undefined);
    this.forgetSession();
  }

  /** The session is gone (closed or expired): its file goes too. */
  private forgetSession(): void {
    this.savedId = 0n;
    if (this.sessionFile === null) return;
    try { removeSessionFile(this.sessionFile); } catch (e) {
      this.logger.warn({ sessionFile: this.sessionFile, err: (e as Error).message }, 'could not remove the session file (the session it names is gone: a restart finds it expired)');
    }
  }

  /** Keeps the session's id and password for a restart (written before the core may take the lock in it). */
  private saveSession(zk: ZkClient): void {
    if (this.sessionFile === null || zk.sessionId === this.savedId) return;
    try {
      writeSessionFile(this.sessionFile, { id: zk.sessionId, passwd: zk.sessionPasswd }, this.sessionOwner);
      this.savedId = zk.sessionId;
    } catch (e) {
      this.savedId = 0n;
      this.logger.warn({ sessionFile: this.sessionFile, err: (e as Error).message }, 'could not keep the quorum session in the run directory: a restart of this controller will not resume its role (it fails over as after a crash)');
    }
  }

  note(level: 'info' | 'warn', msg: string): void {
    this.logger[level]({ role: this.core.currentPhase }, msg);
  }

  /** One input to the core, its effects carried out (and shown to listeners of 'step': the metrics). */
  feed(input: ControllerInput): void {
    if (this.stopped) return;
    this.runner.feed(input);
  }

  /** After every input (operation answers and wake-ups included): resources found running at start, once the core has decided. */
  private afterFeed(): void {
    if (this.straysDeferred && this.core.currentPhase !== 'starting') {
      this.straysDeferred = false;
      // Not resumed: as at any start, only the active's controller runs resources (a demotion stops them itself).
      if (this.core.currentPhase !== 'active' && this.core.currentPhase !== 'demoting') {
        void this.resources.stopStrays().then(
          (stopped) => { if (stopped.length > 0) this.logger.warn({ resources: stopped }, 'resources were running on this instance and it did not resume the active role: stopped'); },
          (e: Error) => this.logger.error({ err: e.message }, `resources found running could not be stopped: ${e.message}`),
        );
      }
    }
  }

  private effect(e: ControllerEffect): void {
    this.runner.effect(e);
  }

  // ---- the quorum session -------------------------------------------------

  private connect(): void {
    this.session = new QuorumSessionLoop(this.saved, {
      makeClient: (saved) => new ZkClient({ connectString: this.cfg.connectString, sessionTimeoutMs: this.cfg.sessionTimeoutMs, logger: this.logger, tls: this.cfg.quorumTls, ...(saved !== null ? { session: saved } : {}) }),
      setTimer: (ms, f) => { setTimeout(f, ms); },
      log: this.logger,
      established: (zk) => this.saveSession(zk),
      // No format step: our znodes' parent is made (if missing) before the core may race for the lock.
      prepare: (zk) => this.prepareSession(zk),
      connected: (zk) => this.feed({ kind: 'session', state: 'connected', sessionId: zk.sessionId, timeoutMs: zk.negotiatedTimeoutMs }),
      disconnected: () => this.feed({ kind: 'session', state: 'disconnected' }),
      expired: () => {
        this.forgetSession();
        this.feed({ kind: 'session', state: 'expired' });
      },
    });
    void this.session.run();
  }

  private authed = new WeakSet<ZkClient>();

  private async prepareSession(zk: ZkClient): Promise<void> {
    if (this.cfg.digest !== null && !this.authed.has(zk)) { await zk.addAuth('digest', this.cfg.digest); this.authed.add(zk); }
    await zk.ensurePath(this.cfg.basePath, null, { acl: this.acl });
    // Maintenance first: a controller must not race before it knows whether the service is paused.
    await this.maintenanceZnode.follow(zk);
    void this.scheduledZnode.follow(zk);
    void this.history.flush(zk, this.acl);
  }

  // ---- maintenance and history ----------------------------------------------

  private applyMaintenance(data: Buffer | null): void {
    const m = parseMaintenance(data);
    if (data !== null && m === null) this.logger.warn({}, `${this.cfg.basePath}/maintenance does not parse: ignored (no maintenance)`);
    this.maintenance = m;
    if (this.maintenanceTimer) { clearTimeout(this.maintenanceTimer); this.maintenanceTimer = null; }
    const inForce = maintenanceInForce(m, Date.now());
    this.feed({ kind: inForce ? 'pause' : 'resume' });
    if (inForce && m!.until !== null) {
      // Ends by itself: resume at `until` (a timer past 2^31 ms is clamped: re-checked then).
      const ms = Math.min(Date.parse(m!.until) - Date.now(), 2 ** 31 - 1);
      this.maintenanceTimer = setTimeout(() => this.applyMaintenance(Buffer.from(JSON.stringify(m))), Math.max(0, ms));
    }
  }

  /** Puts the service in maintenance for every controller (the quorum holds it); applies it here at once. */
  async setMaintenance(m: Maintenance): Promise<void> {
    const zk = this.client();
    const path = this.maintenanceZnode.path;
    const data = JSON.stringify(m);
    try {
      await zk.setData(path, data);
    } catch (e) {
      if ((e as { code?: number }).code !== Err.NONODE) throw e;
      await zk.create(path, data, { mode: CreateMode.PERSISTENT, acl: this.acl }).catch(async (e2: { code?: number }) => {
        if (e2.code !== Err.NODEEXISTS) throw e2;
        await zk.setData(path, data);
      });
    }
    this.applyMaintenance(Buffer.from(data));
  }

  async clearMaintenance(): Promise<void> {
    await this.client().delete(this.maintenanceZnode.path).catch((e: { code?: number }) => { if (e.code !== Err.NONODE) throw e; });
    this.applyMaintenance(null);
  }

  // ---- a scheduled switchover (`failover --at`) --------------------------------

  private applyScheduled(data: Buffer | null): void {
    const f = parseScheduledFailover(data);
    if (data !== null && f === null) this.logger.warn({}, `${this.scheduledZnode.path} does not parse: ignored`);
    this.scheduled = f;
    if (this.scheduledTimer) { clearTimeout(this.scheduledTimer); this.scheduledTimer = null; }
    if (f === null) return;
    const ms = Math.min(Math.max(0, Date.parse(f.at) - Date.now()), 2 ** 31 - 1);
    this.scheduledTimer = setTimeout(() => void this.runScheduled(f), ms);
  }

  /**
   * Due: the active's controller carries it out (the others do nothing); it takes the znode away
   * first, so that it runs once. Found more than SCHEDULE_MISS_MS late (no active at the time, its
   * controller down), it is dropped, not run by surprise.
   */
  private async runScheduled(f: ScheduledFailover): Promise<void> {
    if (this.stopped || !this.core.isActive(now())) return;
    const late = Date.now() - Date.parse(f.at);
    if (late < -50) { this.applyScheduled(Buffer.from(JSON.stringify(f))); return; } // a clamped timer
    const zk = this.zk;
    if (zk === null || zk.state !== 'connected') return;
    try { await zk.delete(this.scheduledZnode.path); } catch (e) {
      if ((e as { code?: number }).code === Err.NONODE) return; // cancelled, or another took it
      this.logger.warn({ err: (e as Error).message }, 'the scheduled switchover is due but could not be claimed; it runs at the next connection');
      return;
    }
    const missed = late > SCHEDULE_MISS_MS;
    this.feedHistory({ type: 'scheduled-failover', action: missed ? 'missed' : 'started', due: f.at, to: f.to, by: f.by });
    if (missed) { this.logger.warn({ due: f.at, lateMs: late }, 'a scheduled switchover found too late: dropped'); return; }
    this.logger.info({ due: f.at, to: f.to, by: f.by }, 'scheduled switchover: starting');
    const target = f.to === null ? null : this.cfg.instances.find((x) => x.id === f.to) ?? null;
    if (target === null) { this.feed({ kind: 'cede', forMs: this.cfg.cedeMs }); return; }
    // The target takes it the way `quorate failover --to` does: it asks us to cede and races.
    const r = await adminRequest(this.cfg, target, 'POST', '/v1/failover', { force: false }, 5000).catch((e: Error) => ({ status: 0, json: { error: e.message } }));
    if (r.status < 200 || r.status >= 300) this.logger.error({ to: f.to, status: r.status }, `scheduled switchover to ${f.to} refused: ${String(r.json.error ?? '')}`);
  }

  /** Records a history event that the driver, not the core, witnessed. */
  feedHistory(event: Extract<HistoryEvent, { type: 'scheduled-failover' }>): void {
    this.effect({ kind: 'history', event });
  }

  /** Schedules a switchover for every controller to see (the active's carries it out at `at`). */
  async scheduleFailover(f: ScheduledFailover): Promise<void> {
    await this.client().create(this.scheduledZnode.path, JSON.stringify(f), { mode: CreateMode.PERSISTENT, acl: this.acl }).catch((e: { code?: number }) => {
      if (e.code === Err.NODEEXISTS) {
        const cur = this.scheduled;
        throw Object.assign(new Error(`a switchover is already scheduled${cur ? ` at ${cur.at}${cur.to ? ` to ${cur.to}` : ''} by ${cur.by}` : ''}: cancel it first`), { status: 409 });
      }
      throw e;
    });
    this.applyScheduled(Buffer.from(JSON.stringify(f)));
    this.feedHistory({ type: 'scheduled-failover', action: 'scheduled', due: f.at, to: f.to, by: f.by });
  }

  async cancelScheduledFailover(by: string): Promise<ScheduledFailover> {
    const zk = this.client();
    let cur: ScheduledFailover | null;
    try { cur = parseScheduledFailover((await zk.getData(this.scheduledZnode.path)).data); } catch (e) {
      if ((e as { code?: number }).code === Err.NONODE) throw Object.assign(new Error('no switchover is scheduled'), { status: 404 });
      throw e;
    }
    await zk.delete(this.scheduledZnode.path).catch((e: { code?: number }) => { if (e.code !== Err.NONODE) throw e; });
    this.applyScheduled(null);
    const f = cur ?? { at: new Date().toISOString(), to: null, by, createdAt: new Date().toISOString() };
    this.feedHistory({ type: 'scheduled-failover', action: 'cancelled', due: f.at, to: f.to, by });
    return f;
  }

  /** This service's history, or (`basePath`) another service's of the same cluster, read through our session (its limits are the cluster's). */
  readHistory(opts: { since?: Date; limit?: number }, basePath: string = this.cfg.basePath): Promise<HistoryEntry[]> {
    const log = basePath === this.cfg.basePath ? this.history : new HistoryLog(`${basePath}/history`, this.cfg.history, () => undefined);
    return log.read(this.client(), opts);
  }

  /** With digest auth, our znodes are readable and writable by that identity only (ZooKeeper's CREATOR_ALL). */
  private get acl() {
    return this.cfg.digest !== null ? Acls.CREATOR_ALL_ACL : Acls.OPEN_ACL_UNSAFE;
  }

  private client(): ZkClient {
    if (this.zk === null || this.zk.state !== 'connected') throw new Error('no quorum connection');
    return this.zk;
  }

  // ---- operations ----------------------------------------------------------

  /** The operations' I/O (controller-ops.ts runs them): this process's quorum session, journal, service, fencing. */
  private io(): ControllerIo {
    const i = this.cfg.instance;
    const journal = this.cfg.journalNodes;
    return {
      instance: { id: i.id, address: `${i.host}:${i.adminPort}` },
      lockPath: this.lockPath,
      crumbPath: this.crumbPath,
      acl: this.acl,
      quorum: (): OpsQuorum | null => this.zk,
      lockChanged: (deleted) => this.feed({ kind: 'lockChanged', deleted }),
      queryRole: i.hooks?.role == null ? null : () => queryRole(i.hooks!.role!),
      journal: journal === null ? null : {
        readPromisedEpoch: () => readPromisedEpoch(this.cfg.service, journal, this.cfg.journalTimeoutMs, this.cfg.journalTls),
        takeEpoch: () => takeJournalEpoch(this.cfg.service, journal, this.cfg.journalTimeoutMs, this.cfg.journalTls),
      },
      transition: (op) => this.transition(op),
      fence: async (crumb, token) => {
        const { outcome: r } = await fenceBreadcrumb(this.cfg.instances, crumb, token, {
          service: this.cfg.service, admin: this.cfg, hasJournal: journal !== null,
          // The target's resources run under its own controller's state directory on its host.
          resourceStops: (target) => target.resources.length === 0 ? [] : new ResourceSet(target.resources, {
            ocfRoot: this.cfg.ocfRoot, stateDir: path.join(path.dirname(this.cfg.resourceStateDir), `${this.cfg.service}-${target.id}`),
          }).remoteStopCommands(),
          onAttempt: (method, ok) => this.emit('fenceAttempt', method, ok),
        });
        this.lastFence = r.ok ? r.detail : r.reason;
        return r;
      },
      adoptActive: async () => {
        // No hook: the service is active already. Its resources run again if one stopped meanwhile (starts are idempotent).
        if (this.resources.size === 0) return { ok: true, detail: 'no resources' };
        return this.resources.startAll();
      },
      beforeRelease: async () => {
        if (this.resources.size === 0) return;
        const r = await this.resources.stopAll();
        if (!r.ok) this.logger.error({ role: this.core.currentPhase }, `resources did not all stop before the lock was released: ${r.reason}`);
      },
    };
  }

  /**
   * The service's transition with its resources: to active, the hook and then the resources (a
   * floating IP comes up only on a service ready for it; one that fails to start fails the
   * promotion); to standby, the resources first (clients stop arriving) and then the hook, which
   * runs even when a resource failed to stop.
   */
  private async transition(op: Extract<ControllerOp, { type: 'hook' }>): Promise<HookResult> {
    const i = this.cfg.instance;
    const hook = i.hooks === null ? null : op.hook === 'toActive' ? i.hooks.toActive : op.hook === 'toStandby' ? i.hooks.toStandby : i.hooks.preActive;
    const call = async (): Promise<HookResult> => hook === null
      ? { ok: true, detail: 'no hook' }
      : runHook(hook, { service: this.cfg.service, instance: i.id, role: op.hook === 'toStandby' ? 'standby' : 'active', epoch: op.epoch, token: op.token, previous: op.previous });
    if (op.hook === 'preActive' || this.resources.size === 0) return call();
    if (op.hook === 'toActive') {
      const h = await call();
      if (!h.ok) return h;
      const r = await this.resources.startAll();
      return r.ok ? { ok: true, detail: `${h.detail}; ${r.detail}` } : { ok: false, reason: r.reason };
    }
    const r = await this.resources.stopAll();
    if (!r.ok) this.logger.error({ role: this.core.currentPhase }, `resources did not all stop: ${r.reason}`);
    const h = await call();
    if (!r.ok) return { ok: false, reason: h.ok ? r.reason : `${r.reason}; ${h.reason}` };
    return h.ok ? { ok: true, detail: `${r.detail}; ${h.detail}` } : h;
  }
}
