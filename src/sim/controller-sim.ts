// Seeded runs of the failover controllers: one ControllerCore per instance,
// driven by the production driver code (controller-ops.ts: runControllerOp and
// CoreRunner; the session loop of quorum-session.ts; fencing.ts's
// fenceInstance; journal-epoch.ts's takeEpochOn) over simulated I/O. Their
// quorum is the simulated ZooKeeper ensemble of sim-cluster.ts (three servers
// running QuorumPeer and ServerCore, with their own crashes, partitions, leader
// isolations and power failures), reached by the real ZkClient over the
// simulated client network (sim-client-net.ts). Journal nodes run the real
// JournalState, services' writers are the real JournalWriter, health checks are
// folded by the real HealthFolder, and fencing kills, lies, fails or hangs (its
// raw outcome: fencing.ts's fenceVerdict and down check decide what counts).
// Faults: services that die, hang and come back; hooks and fencing that fail or
// hang; controller pauses (a GC stop: its timers and inputs held), crashes and
// restarts (with the session file's re-attach, or without); partitions of a
// controller from the quorum, the journal or its service. Checked on every
// schedule: C1-C4 as they happen, against what the quorum committed; the
// quorum's own Q1-Q3; and once the faults stop, exactly one active within a
// bound.
import { ControllerCore, type Breadcrumb, type ControllerOp, type ControllerSettings, type HistoryEvent } from '../core/controller/controller-core.js';
import { HealthFolder, type CheckOutcome } from '../core/controller/health.js';
import { JournalError, JournalState } from '../core/journal/journal-state.js';
import { JournalWriter, type WriterEffect } from '../core/journal/journal-writer.js';
import { controllerSettings, CoreRunner, type ControllerIo, type IoOutcome } from '../controller/controller-ops.js';
import { QuorumSessionLoop } from '../controller/quorum-session.js';
import type { SavedSession } from '../controller/session-file.js';
import { FENCE_VERIFY_MS, fenceBreadcrumb, type DownIo, type DownObservation, type FenceEvidence, type KillMethod } from '../controller/fencing.js';
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { promisedOnMajority, takeEpochOn, type EpochNodeClient } from '../client/journal/journal-epoch.js';
import { ZkClient } from '../client/zk-client.js';
import { Acls } from '../client/ops.js';
import { DataTree } from '../core/zk/data-tree.js';
import { decodeLoggedTxn } from '../proto/txn-codec.js';
import { batchChecksum } from '../proto/journal-wire.js';
import { jsonSafe } from '../core/invariant.js';
import { startSimCluster } from './sim-cluster.js';
import { SimClientNetwork, type SimProcess } from './sim-client-net.js';
import { ZkApp } from './sim-zk-app.js';
import { applyDurable, segmentEditsOf, serveNow, type SimJournalDurable } from './journal-sim.js';

export interface ControllerSimOptions { seed: number; instances: number; faultMs: number; settleMs: number; trace: boolean }
export interface ControllerSimResult { seed: number; ok: boolean; violations: string[]; stats: Record<string, number>; trace: string[] }

export const SIM_SESSION_MS = 2000;
const HEALTH_MS = 200;
const PROBE_TIMEOUT_MS = 150;
const HEALTH_FAILURES = 2;
const HOOK_TIMEOUT_MS = 1000;
const FENCE_TIMEOUT_MS = 800;
const JOURNAL_TIMEOUT_MS = 500;
const RETRY_BACKOFF_MAX_MS = 2000;
/**
 * After the faults stop, the quorum's servers (all restarted then) elect a leader and sync its
 * learners, and the controllers' clients, backing off up to a second and giving a silent server a
 * second to answer, connect again: QUORUM_RECOVERY_MS.
 */
const QUORUM_RECOVERY_MS = 4000;
/**
 * After the faults stop and the quorum serves: sessions of crashed or cut-off controllers expire (one session timeout),
 * services pass their checks again (a few health intervals), a hook or fence still hanging times
 * out (a fence that claimed a kill is checked for the target down for up to FENCE_VERIFY_MS), a
 * failed promotion's backoff runs out, and a promotion runs.
 */
export const SIM_SETTLE_BOUND_MS = QUORUM_RECOVERY_MS + SIM_SESSION_MS + 4 * HEALTH_MS + HOOK_TIMEOUT_MS + FENCE_TIMEOUT_MS + FENCE_VERIFY_MS + RETRY_BACKOFF_MAX_MS + 1000;
const QUORUM_SERVERS = 3;
const CONNECT_STRING = Array.from({ length: QUORUM_SERVERS }, (_, i) => `zk${i + 1}:2181`).join(',');
/** Between two faults of the quorum's own (a server crashed, servers partitioned, a leader cut off, a power failure). */
const QUORUM_FAULT_GAP_MS: [number, number] = [1500, 5000];
const BASE = '/svc';
const LOCK = '/svc/lock';
const CRUMB = '/svc/breadcrumb';
const JOURNAL = 'svc';

type RoleAnswer = { ok: true; role: 'active' | 'standby'; epoch: number | null } | { ok: false; reason: string };


export async function runControllerSimulation(o: ControllerSimOptions): Promise<ControllerSimResult> {
  const violations: string[] = [];
  const stats = { promotions: 0, demotions: 0, fences: 0, fenceFailures: 0, sessionsExpired: 0, serviceDeaths: 0, serviceHangs: 0, pauses: 0, crashes: 0, resumedRestarts: 0, partitions: 0, writesAcked: 0, writersFenced: 0, zombieActivesAtEnd: 0, events: 0 };

  // ---- the quorum: three simulated servers (QuorumPeer, ServerCore) with their own faults --
  let clientNet: SimClientNetwork | null = null;
  let clusterLog: (line: string) => void = () => undefined;
  const cluster = startSimCluster({
    seed: o.seed, servers: QUORUM_SERVERS, observers: 0, spares: 0, reconfig: false, nearCounterLimit: false, zkClients: 0, trace: o.trace,
    faultMs: o.faultMs, settleMs: SIM_SETTLE_BOUND_MS + o.settleMs, faultGapMs: QUORUM_FAULT_GAP_MS, requireProgress: false,
  }, {
    app: (ctx) => new ZkApp(ctx, clientNet!, 1n, (what) => fail(`quorum: ${what}`), (zxid, payload) => onCommitted(zxid, payload)),
    start: (env) => { clientNet = new SimClientNetwork(env.q, env.rng); clientNet.attach(env); clusterLog = env.log; },
  });
  const { q, rng } = cluster;
  const log = (l: string) => clusterLog(l);
  const fail = (v: string) => { log(`VIOLATION ${v}`); if (violations.length < 20) violations.push(`t=${q.now.toFixed(1)}ms ${v}`); };
  const faultsOn = () => q.now < o.faultMs;
  /** Promises resolved in an event: their continuations run before the next event. */
  let settled = false;
  const lat = () => rng.range(0.2, 3);

  // ---- links: controller <-> quorum ('q'), journal ('j'), its service ('s') ------------
  const cut = new Set<string>();
  const linkUp = (kind: 'q' | 'j' | 's', id: string) => !cut.has(`${kind}:${id}`);
  const heal = (link: string) => {
    cut.delete(link);
    // What the controller's quorum connections held while cut goes out now (TCP retransmits).
    if (link.startsWith('q:')) clientNet!.healed(procs.get(link.slice(2))!);
  };

  // ---- what the quorum committed, as the first server to apply each transaction applied it --
  // Every committed transaction is applied by some server before any applies a later one, so the
  // newest state any server reached is the quorum's: C1-C3 are checked against it.
  const committed = new DataTree();
  /** Every breadcrumb write: who wrote it and what it replaced. */
  const crumbWrites: { by: bigint; replaced: Breadcrumb | null }[] = [];
  const parseData = (d: Buffer | null): Breadcrumb | null => { try { return d === null ? null : JSON.parse(d.toString()) as Breadcrumb; } catch { return null; } };
  function onCommitted(zxid: bigint, payload: Uint8Array): void {
    if (zxid <= committed.lastZxid) return;
    const { hdr, txn } = decodeLoggedTxn(Buffer.from(payload));
    const crumbBefore = parseData(committed.get(CRUMB)?.data ?? null);
    committed.apply(hdr, txn, []);
    const flat = txn.type === 'multi' ? txn.txns : [txn];
    for (const t of flat) {
      if (t.type === 'closeSession') {
        stats.sessionsExpired++;
        log(`quorum: session 0x${hdr.sessionId.toString(16)} closed (expired) at 0x${zxid.toString(16)}`);
        checkC2AtExpiry(hdr.sessionId);
      } else if (t.type === 'create' && t.path === LOCK) {
        log(`quorum: 0x${hdr.sessionId.toString(16)} took the lock at 0x${zxid.toString(16)}`);
      }
      if ((t.type === 'create' || t.type === 'setData') && t.path === CRUMB) crumbWrites.push({ by: hdr.sessionId, replaced: t.type === 'create' ? null : crumbBefore });
    }
  }

  /** A controller process: its events wait while it is paused and are dropped once it crashed. */
  class Proc implements SimProcess {
    life = 0;
    pausedUntil = 0;
    up = true;
    constructor(readonly name: string) {}
    quorumLinkUp(): boolean { return linkUp('q', this.name); }
    deliver(life: number, f: () => void): void {
      if (!this.up || life !== this.life) return;
      if (q.now < this.pausedUntil) { q.at(this.pausedUntil, () => this.deliver(life, f)); return; }
      f();
      settled = true;
    }
    after(ms: number, f: () => void): { cancelled: boolean } {
      const t = { cancelled: false };
      const life = this.life;
      q.after(ms, () => { if (!t.cancelled) this.deliver(life, f); });
      return t;
    }
  }

  // ---- the journal: JournalState nodes, durable at once, answering after a delay ----------
  const journalIds = [1, 2, 3];
  const journalNodes = new Map(journalIds.map((id) => {
    const durable: SimJournalDurable = { disk: { promisedEpoch: 0, lastWriterEpoch: 0, committedTxid: 0n, segments: [], accepted: null }, edits: new Map() };
    return [id, { id, durable, state: new JournalState(JOURNAL, durable.disk) }];
  }));
  // JournalState keeps its own copy of the disk's fields: the durable copy is what ops make of it.
  for (const n of journalNodes.values()) n.durable.disk = structuredClone(n.durable.disk);
  const journalServe = (nodeId: number, f: (st: JournalState, durable: SimJournalDurable) => void) => {
    const n = journalNodes.get(nodeId)!;
    f(n.state, n.durable);
  };

  // ---- services --------------------------------------------------------------------------
  interface SimService {
    id: string;
    status: 'up' | 'dead' | 'hung';
    role: 'standby' | 'active';
    epoch: number | null;
    writer: JournalWriter | null;
    writerEpoch: number | null;
    life: number;
  }
  /** Acked journal writes, in order: which service, in which writer epoch. */
  const acks: { service: string; epoch: number; at: number }[] = [];
  const epochOwner = new Map<number, string>();
  const openedAt = new Map<number, number>();
  const sendTimes = new WeakMap<JournalWriter, Map<number, number>>();

  const services = new Map<string, SimService>();
  const startWriter = (svc: SimService) => {
    const w = new JournalWriter(journalIds, batchChecksum);
    svc.writer = w;
    svc.writerEpoch = null;
    sendTimes.set(w, new Map());
    const life = svc.life;
    const pump = () => { for (const e of w.drain()) onWriterEffect(svc, w, life, e, pump); };
    w.open();
    pump();
    const writeLoop = () => {
      if (svc.writer !== w || svc.life !== life) return;
      if (svc.status === 'up' && w.phase === 'open' && w.inFlight < 4) {
        const batch = w.append([new TextEncoder().encode(`${svc.id}@${w.epoch}`)]);
        sendTimes.get(w)!.set(batch, q.now);
        pump();
      }
      q.after(rng.range(20, 60), writeLoop);
    };
    q.after(rng.range(20, 60), writeLoop);
  };
  const onWriterEffect = (svc: SimService, w: JournalWriter, life: number, e: WriterEffect, pump: () => void) => {
    switch (e.kind) {
      case 'send':
        q.after(lat(), () => {
          journalServe(e.node, (st, durable) => {
            const peers = journalIds.filter((id) => id !== e.node);
            const r = serveNow(st, e.req, peers, (f) => segmentEditsOf(journalNodes.get(f.node)!.durable, f.node, f.startTxid, f.fromTxid, f.toTxid, f.max));
            for (const op of r.ops) applyDurable(durable, op);
            const answer = r.answer;
            q.after(lat(), () => { w.onAnswer(e.id, answer); pump(); });
          });
        });
        return;
      case 'opened':
        if (!openedAt.has(e.epoch)) openedAt.set(e.epoch, q.now);
        if (svc.writer === w && svc.life === life) svc.writerEpoch = e.epoch;
        log(`service ${svc.id}: journal writer open in epoch ${e.epoch}`);
        return;
      case 'fenced':
        stats.writersFenced++;
        log(`service ${svc.id}: journal writer fenced: ${e.reason}`);
        return;
      case 'acked': {
        stats.writesAcked++;
        const epoch = w.epoch;
        // C4: never two actives whose writes are both accepted: no write accepted in an epoch older than
        // one whose writer had opened (a majority promised it) before the write was sent; one writer per epoch.
        const sentAt = sendTimes.get(w)?.get(e.batch) ?? -Infinity;
        for (const [ep, at] of openedAt) if (ep > epoch && at < sentAt) { fail(`C4: ${svc.id}'s write in epoch ${epoch} (sent at ${sentAt.toFixed(1)}) accepted after epoch ${ep}'s writer opened at ${at.toFixed(1)}`); break; }
        const owner = epochOwner.get(epoch);
        if (owner !== undefined && owner !== svc.id) fail(`C4: writes of ${owner} and ${svc.id} both accepted in epoch ${epoch}`);
        epochOwner.set(epoch, svc.id);
        acks.push({ service: svc.id, epoch, at: q.now });
        return;
      }
      case 'closed': return;
    }
  };
  const killService = (svc: SimService, why: string) => {
    if (svc.status === 'dead') return;
    stats.serviceDeaths++;
    log(`service ${svc.id}: DIES (${why})`);
    svc.status = 'dead';
    svc.role = 'standby';
    svc.writer = null;
    svc.epoch = null;
    svc.life++;
    const life = svc.life;
    q.after(rng.range(300, 3000), () => { if (svc.life === life && svc.status === 'dead') { svc.status = 'up'; log(`service ${svc.id}: back (standby)`); } });
  };

  /** A call from a controller to its service (hook, role query, probe): answered, refused, or no answer within the timeout. */
  const callService = <T>(ctl: SimController, timeoutMs: number, work: (svc: SimService) => T, refused: () => T, noAnswer: () => T): Promise<T> => {
    const svc = services.get(ctl.inst.id)!;
    const life = ctl.proc.life;
    return new Promise<T>((resolve) => {
      const answer = (ms: number, f: () => T) => q.after(ms, () => ctl.proc.deliver(life, () => resolve(f())));
      if (!linkUp('s', ctl.inst.id) || svc.status === 'hung') { answer(timeoutMs, noAnswer); return; }
      if (svc.status === 'dead') { answer(lat(), refused); return; }
      q.after(lat(), () => {
        if (svc.status !== 'up' || !linkUp('s', ctl.inst.id)) { answer(timeoutMs, svc.status === 'dead' ? refused : noAnswer); return; }
        const v = work(svc);
        answer(lat(), () => v);
      });
    });
  };

  // ---- controllers -----------------------------------------------------------------------
  interface SimController {
    inst: InstanceConfig;
    proc: Proc;
    core: ControllerCore;
    runner: CoreRunner;
    /** The quorum session loop the controller process runs (QuorumSessionLoop, over the real ZkClient). */
    session: QuorumSessionLoop;
    /** The session file: the session to re-attach to after a restart. */
    savedSession: SavedSession | null;
    /** Instances fenced in the current promotion (since its breadcrumb read). */
    fenced: Set<string>;
    /** The breadcrumb as read in the current promotion. */
    readCrumb: Breadcrumb | null;
    ops: Map<number, ControllerOp>;
  }
  const n = o.instances;
  const ids = ['a', 'b', 'c', 'd', 'e'].slice(0, n);
  const instanceOf = (id: string): InstanceConfig => ({
    // A service port: a kill counts only once the target is seen down (fencing.ts's verifyDown).
    id, host: `host-${id}`, adminPort: 0, servicePort: 7000, priority: 0, noFailover: false, health: [], hooks: null, resources: [],
    // A kill (a command or a power switch's URL), and (for some) the journal's epoch as the fence of last resort.
    fencing: [
      rng.chance(0.5) ? { kind: 'shell', command: 'sim-kill', timeoutMs: FENCE_TIMEOUT_MS } : { kind: 'http', url: `http://pdu-${id}/off`, timeoutMs: FENCE_TIMEOUT_MS },
      ...(rng.chance(0.5) ? [{ kind: 'journal', timeoutMs: 0 } as FenceConfig] : []),
    ],
  });
  const instances = ids.map(instanceOf);
  for (const id of ids) services.set(id, { id, status: 'up', role: 'standby', epoch: null, writer: null, writerEpoch: null, life: 0 });
  const ctls = new Map<string, SimController>();
  /** Epochs handed to a to-active hook, in order. */
  let lastPromotedEpoch = 0;

  /** A command's end as run-command reports it. */
  const exited = (code: number | null, stderr: string, ms: number, timedOut = false): FenceEvidence => ({ kind: 'command', result: { code, signal: code === null ? 'SIGKILL' : null, timedOut, spawnError: null, stdout: '', stderr, ms } });
  /**
   * Fencing's simulated kill, as the method's raw outcome (fenceVerdict and the down check decide
   * what it counts for): it kills the target's service and says so; says so without killing it (an
   * agent that lies, the wrong outlet: only the down check keeps it from counting); fails; kills it
   * and still reports a failure; or hangs for its timeout.
   */
  const simKill = (ctl: SimController) => (m: KillMethod, target: InstanceConfig) => new Promise<FenceEvidence>((resolve) => {
    const life = ctl.proc.life;
    const r = faultsOn() ? rng.next() : 0;
    const svc = services.get(target.id)!;
    const shell = m.kind === 'shell';
    const answer = (ms: number, kill: boolean, ev: FenceEvidence) => q.after(ms, () => {
      if (kill) killService(svc, `fenced by ${ctl.inst.id}`);
      ctl.proc.deliver(life, () => resolve(ev));
    });
    const ms = rng.range(5, 50);
    if (r < 0.72) answer(ms, true, shell ? exited(0, '', ms) : { kind: 'http-answer', status: 200 });
    else if (r < 0.8) answer(ms, false, shell ? exited(0, 'sim-kill: done', ms) : { kind: 'http-answer', status: 202 });
    else if (r < 0.88) answer(ms, false, shell ? exited(1, 'sim-kill: permission denied', ms) : rng.chance(0.5) ? { kind: 'http-answer', status: 503 } : { kind: 'http-error', error: 'ECONNREFUSED' });
    else if (r < 0.92) answer(ms, true, shell ? exited(2, 'sim-kill: killed, then failed', ms) : { kind: 'http-answer', status: 500 });
    else answer(m.timeoutMs, false, shell ? exited(null, '', m.timeoutMs, true) : { kind: 'http-error', error: 'The operation was aborted due to timeout' });
  });
  /**
   * The down check's look at a fenced target, from its simulated service: a dead one refuses the
   * connection; a hung one accepts it and never answers the role question (its 500 ms bound); a
   * live one says its role. Its clock is the simulation's, its waits the fencing controller's timers.
   */
  const simDown = (ctl: SimController): DownIo => ({
    now: () => q.now,
    sleep: (ms) => new Promise<void>((resolve) => { ctl.proc.after(ms, resolve); }),
    probeDown: (target) => new Promise<DownObservation>((resolve) => {
      const life = ctl.proc.life;
      const svc = services.get(target.id)!;
      q.after(lat(), () => {
        const seen: DownObservation = svc.status === 'dead' ? { portOpen: false, role: null } : svc.status === 'hung' ? { portOpen: true, role: null } : { portOpen: true, role: svc.role };
        q.after(svc.status === 'hung' ? 500 : lat(), () => ctl.proc.deliver(life, () => resolve(seen)));
      });
    }),
  });

  /** A node's answer as its client sees it: what it wrote made durable first, a refusal thrown. */
  const answerOf = (r: ReturnType<typeof serveNow>, d: SimJournalDurable | null) => {
    if (d !== null) for (const op of r.ops) applyDurable(d, op);
    if (!r.answer.ok) throw new JournalError(r.answer.status as 409, r.answer.message);
    return r.answer;
  };
  const noFetch = (): never => { throw new Error('a state or new-epoch request fetches nothing'); };
  const journalClients = (ctl: SimController): EpochNodeClient[] => journalIds.map((nodeId) => {
    const call = <T>(f: (st: JournalState, d: SimJournalDurable) => T): Promise<T> => new Promise<T>((resolve, reject) => {
      const life = ctl.proc.life;
      const timeout = () => q.after(JOURNAL_TIMEOUT_MS, () => ctl.proc.deliver(life, () => reject(new Error(`journal node ${nodeId}: no answer within ${JOURNAL_TIMEOUT_MS} ms`))));
      if (!linkUp('j', ctl.inst.id)) { timeout(); return; }
      q.after(lat(), () => {
        if (!linkUp('j', ctl.inst.id)) { timeout(); return; }
        let r: { ok: true; v: T } | { ok: false; e: Error };
        try { r = { ok: true, v: f(journalNodes.get(nodeId)!.state, journalNodes.get(nodeId)!.durable) }; } catch (e) { r = { ok: false, e: e as Error }; }
        q.after(lat(), () => ctl.proc.deliver(life, () => (r.ok ? resolve(r.v) : reject(r.e))));
      });
    });
    return {
      state: () => call((st) => ({ promisedEpoch: answerOf(serveNow(st, { kind: 'getState' }, [], noFetch), null).promisedEpoch! })),
      newEpoch: (_j: string, epoch: number) => call((st, d) => answerOf(serveNow(st, { kind: 'newEpoch', epoch }, [], noFetch), d).lastSegmentTxid ?? null),
      post: () => Promise.reject(new Error('the simulated journal is formatted')),
    };
  });

  /** The core's settings as production makes them (controllerSettings), from the simulated configuration (shorter backoff). */
  const settings = (inst: InstanceConfig, resume: bigint | null): ControllerSettings => controllerSettings(
    { instance: inst, journalNodes: [], raceDelayMs: 0, promotionsPerWindow: 20, promotionWindowMs: 10_000, maxLagOnFailover: null, failsafe: false, sessionTimeoutMs: SIM_SESSION_MS },
    resume === null ? null : { id: resume }, { retryBackoffMs: 200, retryBackoffMaxMs: RETRY_BACKOFF_MAX_MS });

  const startController = (inst: InstanceConfig, proc: Proc, saved: SavedSession | null): SimController => {
    const core = new ControllerCore(settings(inst, saved?.id ?? null), q.now);
    const ctl = { inst, proc, core, savedSession: saved, fenced: new Set<string>(), readCrumb: null, ops: new Map() } as unknown as SimController;
    const io: ControllerIo = {
      instance: { id: inst.id, address: `host-${inst.id}:0` }, lockPath: LOCK, crumbPath: CRUMB, acl: Acls.OPEN_ACL_UNSAFE,
      quorum: () => ctl.session.zk,
      lockChanged: (deleted) => ctl.runner.feed({ kind: 'lockChanged', deleted }),
      queryRole: () => callService<RoleAnswer>(ctl, HOOK_TIMEOUT_MS,
        (svc) => ({ ok: true, role: svc.role, epoch: svc.writerEpoch ?? svc.epoch }),
        () => ({ ok: false, reason: 'connection refused' }), () => ({ ok: false, reason: 'no answer' })),
      journal: {
        readPromisedEpoch: () => promisedOnMajority(JOURNAL, journalClients(ctl)),
        takeEpoch: () => takeEpochOn(JOURNAL, journalClients(ctl)),
      },
      transition: (op) => {
        checkBeforeSideEffect(ctl, op);
        const flaky = faultsOn() ? rng.next() : 1;
        // A hook that hangs (and does nothing) until its timeout.
        if (flaky < 0.03) return new Promise<IoOutcome>((resolve) => { ctl.proc.after(HOOK_TIMEOUT_MS, () => resolve({ ok: false, reason: `no answer within ${HOOK_TIMEOUT_MS} ms` })); });
        return callService<IoOutcome>(ctl, HOOK_TIMEOUT_MS, (svc) => {
          if (flaky < 0.08) return { ok: false, reason: 'hook: exit 1' };
          if (op.hook === 'toActive') {
            svc.role = 'active';
            svc.epoch = op.epoch;
            startWriter(svc);
            log(`service ${svc.id}: ACTIVE (epoch ${op.epoch}, token ${op.token})`);
          } else if (op.hook === 'toStandby') {
            if (svc.role === 'active') log(`service ${svc.id}: standby`);
            svc.role = 'standby';
            svc.writer = null;
            svc.epoch = null;
          }
          return { ok: true, detail: `${op.hook}: ok` };
        }, () => ({ ok: false, reason: 'connection refused' }), () => ({ ok: false, reason: `no answer within ${HOOK_TIMEOUT_MS} ms` }));
      },
      fence: async (crumb, token) => {
        checkBeforeSideEffect(ctl, { type: 'fence', target: crumb, token });
        const { target, outcome: r } = await fenceBreadcrumb(instances, crumb, token, { service: JOURNAL, admin: { adminToken: null, tls: null }, hasJournal: true, run: simKill(ctl), down: simDown(ctl) });
        if (r.ok) { stats.fences++; ctl.fenced.add(crumb.instance); } else stats.fenceFailures++;
        // C1 as the target sees it: a fence that counts left it dead or standby, unless its configuration accepts the journal's epoch as its fence.
        const svc = services.get(crumb.instance);
        if (r.ok && target !== null && svc !== undefined && svc.status !== 'dead' && svc.role === 'active' && !target.fencing.some((m) => m.kind === 'journal')) fail(`C1: fencing ${crumb.instance} counted (${r.detail}) while its service is ${svc.status} and active, and its fencing has no journal method`);
        return r;
      },
      adoptActive: async () => ({ ok: true, detail: 'no resources' }),
      beforeRelease: async () => undefined,
    };
    ctl.runner = new CoreRunner(core, io, {
      now: () => q.now,
      setTimer: (ms, f) => proc.after(ms, f),
      clearTimer: (t) => { (t as { cancelled: boolean }).cancelled = true; },
    }, {
      log: (level, msg) => log(`${inst.id}: ${level} ${msg}`),
      history: (e: HistoryEvent) => {
        if (e.type === 'promoted') stats.promotions++;
        if (e.type === 'demoted') stats.demotions++;
        if (e.type === 'resumed-after-restart') stats.resumedRestarts++;
      },
      stepped: (_input, effects) => {
        for (const e of effects) {
          if (e.kind !== 'run') continue;
          if (e.what.type === 'readBreadcrumb') { ctl.fenced.clear(); }
          if (e.what.type === 'newEpoch' || e.what.type === 'writeBreadcrumb') checkBeforeSideEffect(ctl, e.what);
        }
        checkActives();
      },
    });
    // Health: each check's outcome folded as the health monitor folds it (HealthFolder); the core hears of changes.
    const folder = new HealthFolder([HEALTH_FAILURES]);
    const probe = () => {
      void callService<CheckOutcome>(ctl, PROBE_TIMEOUT_MS, () => ({ kind: 'ok' }), () => ({ kind: 'failed', reason: 'connection refused' }), () => ({ kind: 'timeout', reason: `no answer within ${PROBE_TIMEOUT_MS} ms` })).then((r) => {
        const changed = folder.fold(0, r);
        if (changed !== null) ctl.runner.feed({ kind: 'health', state: changed.state, reason: changed.reason });
        proc.after(HEALTH_MS, probe);
      });
    };
    probe();
    ctl.runner.feed({ kind: 'tick' });
    // The controller's own session loop, over the real ZooKeeper client on the simulated network.
    const runtime = clientNet!.runtime(proc);
    const zkLog = (level: string) => (fields: object, msg?: string) => log(`${inst.id}: zk ${level} ${msg ?? ''} ${JSON.stringify(jsonSafe(fields, 0))}`);
    const logger = { debug: () => undefined, info: zkLog('info'), warn: zkLog('warn'), error: zkLog('error') };
    ctl.session = new QuorumSessionLoop(saved, {
      makeClient: (s) => new ZkClient({ connectString: CONNECT_STRING, sessionTimeoutMs: SIM_SESSION_MS, runtime, logger, ...(s !== null ? { session: s } : {}) }),
      setTimer: (ms, f) => { proc.after(ms, f); },
      log: logger,
      established: (zk) => { ctl.savedSession = { id: zk.sessionId, passwd: zk.sessionPasswd }; },
      // As the controller prepares a session: the lock's parent made before the core may race.
      prepare: async (zk) => { await zk.ensurePath(BASE); },
      connected: (zk) => ctl.runner.feed({ kind: 'session', state: 'connected', sessionId: zk.sessionId, timeoutMs: zk.negotiatedTimeoutMs }),
      disconnected: () => ctl.runner.feed({ kind: 'session', state: 'disconnected' }),
      expired: () => {
        ctl.savedSession = null;
        ctl.runner.feed({ kind: 'session', state: 'expired' });
      },
    });
    void ctl.session.run();
    return ctl;
  };
  const procs = new Map(ids.map((id) => [id, new Proc(id)]));
  for (const inst of instances) q.at(rng.range(0, 50), () => ctls.set(inst.id, startController(inst, procs.get(inst.id)!, null)));

  // ---- checks ----------------------------------------------------------------------------
  const lockOwner = () => committed.get(LOCK)?.ephemeralOwner ?? null;
  const sessionAlive = (sid: bigint) => committed.sessions.has(sid);
  /** C1-C3 before a promotion's side effect: the lock held by its session at the quorum (and that session alive), the service healthy. */
  function checkBeforeSideEffect(ctl: SimController, op: ControllerOp): void {
    if (op.type === 'hook' && op.hook === 'toStandby') return;
    const sid = ctl.session.zk?.sessionId ?? null;
    const what = op.type === 'hook' ? op.hook : op.type;
    const owner = lockOwner();
    if (sid === null || owner !== sid || !sessionAlive(sid)) fail(`C2: ${ctl.inst.id} runs ${what} while its session (${sid === null ? 'none' : '0x' + sid.toString(16)}) does not hold the lock at the quorum (owner ${owner === null ? 'none' : '0x' + owner.toString(16)})`);
    const st = ctl.core.status(q.now);
    if (st.health !== 'healthy') fail(`C3: ${ctl.inst.id} runs ${what} while its service is ${st.health}`);
    if (op.type === 'hook' && op.hook === 'toActive') {
      // C1: the breadcrumb's previous instance fenced in this promotion, and a fresh epoch.
      const mine = [...crumbWrites].reverse().find((w) => w.by === sid);
      const prev = mine?.replaced ?? null;
      if (prev !== null && prev.instance !== ctl.inst.id && !ctl.fenced.has(prev.instance)) fail(`C1: ${ctl.inst.id} made active without fencing ${prev.instance} (the breadcrumb's previous active)`);
      if (op.epoch === null || op.epoch <= lastPromotedEpoch) fail(`C1: ${ctl.inst.id} made active in epoch ${op.epoch}, not newer than the last promotion's ${lastPromotedEpoch}`);
      lastPromotedEpoch = Math.max(lastPromotedEpoch, op.epoch ?? 0);
    }
  }
  /** C1: a controller that holds itself active holds the lock through a live session. */
  function checkActives(): void {
    for (const c of ctls.values()) {
      if (!c.proc.up || !c.core.isActive(q.now)) continue;
      const sid = c.session.zk?.sessionId ?? null;
      if (sid === null || lockOwner() !== sid || !sessionAlive(sid)) fail(`C1: ${c.inst.id} holds itself active without holding the lock (its session ${sid === null ? 'none' : '0x' + sid.toString(16)}, owner ${lockOwner()?.toString(16) ?? 'none'})`);
    }
  }
  /** C2: when a session expires on the quorum's side, its controller no longer counts its service active (nor is still active, unless it was paused). */
  function checkC2AtExpiry(id: bigint): void {
    for (const c of ctls.values()) {
      if (!c.proc.up || c.session.zk?.sessionId !== id) continue;
      if (c.core.isActive(q.now)) fail(`C2: ${c.inst.id}'s session expired on the quorum while it holds its service active`);
      // Its lease ended at least a third of the session before: unless paused since, its wake-up started the demotion.
      else if (c.core.currentPhase === 'active' && c.proc.pausedUntil < q.now - SIM_SESSION_MS / 3 - 50) fail(`C2: ${c.inst.id}'s session expired on the quorum and it has not started demoting its service (not paused)`);
    }
  }

  // ---- faults ----------------------------------------------------------------------------
  const fault = () => {
    if (!faultsOn()) return;
    const r = rng.next();
    const id = rng.pick(ids);
    const svc = services.get(id)!;
    const ctl = ctls.get(id);
    if (r < 0.15) {
      killService(svc, 'fault');
    } else if (r < 0.28 && svc.status === 'up') {
      stats.serviceHangs++;
      svc.status = 'hung';
      const life = svc.life;
      const ms = rng.range(200, 3000);
      log(`service ${id}: HANGS for ${ms.toFixed(0)} ms`);
      q.after(ms, () => { if (svc.life === life && svc.status === 'hung') { svc.status = 'up'; log(`service ${id}: answers again`); } });
    } else if (r < 0.43 && ctl !== undefined) {
      const p = ctl.proc;
      const ms = rng.chance(0.3) ? rng.range(SIM_SESSION_MS, SIM_SESSION_MS * 2) : rng.range(50, SIM_SESSION_MS);
      stats.pauses++;
      p.pausedUntil = Math.max(p.pausedUntil, q.now + ms);
      log(`controller ${id}: PAUSED for ${ms.toFixed(0)} ms`);
    } else if (r < 0.55 && ctl !== undefined && ctl.proc.up) {
      stats.crashes++;
      const p = ctl.proc;
      p.up = false;
      clientNet!.processDied(p, p.life);
      p.life++;
      ctl.runner.stop();
      ctl.session.stop();
      ctls.delete(id);
      const keepFile = rng.chance(0.6);
      const saved = keepFile ? ctl.savedSession : null;
      log(`controller ${id}: CRASH (${saved !== null ? `session file kept: 0x${saved.id.toString(16)}` : 'no session file'})`);
      q.after(rng.range(100, SIM_SESSION_MS * 1.5), () => {
        p.up = true;
        p.pausedUntil = 0;
        log(`controller ${id}: restart${saved !== null ? ' (re-attaching)' : ''}`);
        ctls.set(id, startController(ctl.inst, p, saved));
      });
    } else if (r < 0.85) {
      const kind = rng.pick(['q', 'q', 'j', 's'] as const);
      const link = `${kind}:${id}`;
      stats.partitions++;
      cut.add(link);
      const ms = rng.range(100, SIM_SESSION_MS * 1.5);
      log(`PARTITION controller ${id} from its ${kind === 'q' ? 'quorum' : kind === 'j' ? 'journal' : 'service'} for ${ms.toFixed(0)} ms`);
      q.after(ms, () => { heal(link); log(`HEAL ${link}`); });
    }
    q.after(rng.range(100, 800), fault);
  };
  q.after(rng.range(500, 1500), fault);
  q.at(o.faultMs, () => {
    log('FAULTS END');
    for (const link of [...cut]) heal(link);
    // A pause under way runs out by itself (its held events are due then): at most two session timeouts.
    // Dead services come back (standby) and hung ones answer again on their own schedule: within 3 s.
  });

  // After the bound: exactly one active, and it stays so.
  const settleAt = o.faultMs + SIM_SETTLE_BOUND_MS;
  const end = settleAt + o.settleMs;
  let liveness: string | null = null;
  const sample = () => {
    const actives = [...ctls.values()].filter((c) => c.proc.up && c.core.isActive(q.now)).map((c) => c.inst.id);
    // A service counts as active while it believes so and its writes can still be accepted: one whose
    // to-standby hook never arrived (it hung through its demotion) believes it, but the journal refuses it.
    const serving = [...services.values()].filter((s) => s.status === 'up' && s.role === 'active' && s.writer !== null && s.writer.phase !== 'fenced').map((s) => s.id);
    const zombies = [...services.values()].filter((s) => s.role === 'active' && !serving.includes(s.id)).map((s) => s.id);
    if (liveness === null && (actives.length !== 1 || serving.length !== 1 || actives[0] !== serving[0])) {
      liveness = `after the faults stopped (t=${o.faultMs}) and the bound (${SIM_SETTLE_BOUND_MS} ms): controllers active: [${actives.join(',')}], services active with a writer the journal accepts: [${serving.join(',')}]${zombies.length > 0 ? ` (active in their own eyes, refused by the journal: ${zombies.join(',')})` : ''}, expected exactly one`;
      fail(`LIVENESS: ${liveness}`);
    }
    if (zombies.length > 0) stats.zombieActivesAtEnd = Math.max(stats.zombieActivesAtEnd, zombies.length);
    if (q.now + 50 <= end) q.after(50, sample);
  };
  q.at(settleAt, sample);

  let lastNow = -1;
  let sameNow = 0;
  // An invariant broken in a promise's continuation (a core fed an operation's answer) fails this
  // schedule, named with its seed, instead of taking the process down as an unhandled rejection.
  let thrown: unknown = null;
  const onUnhandled = (e: unknown) => { thrown ??= e; };
  process.on('unhandledRejection', onUnhandled);
  /** Steps the simulation to `until`; promises resolved in an event settle before the next. */
  const stepTo = async (until: number): Promise<boolean> => {
    while (thrown === null && q.step(until)) {
      cluster.stepped();
      stats.events++;
      // Time must move: a controller that wakes itself at once for ever (a wake-up in the past) is a bug.
      if (q.now === lastNow) {
        if (++sameNow > 100_000) { fail(`LIVELOCK: 100000 events without simulated time moving past ${q.now.toFixed(1)} ms`); return false; }
      } else { lastNow = q.now; sameNow = 0; }
      if (settled) { settled = false; await new Promise<void>((r) => setImmediate(r)); }
    }
    return thrown === null;
  };
  try {
    if (await stepTo(end)) {
      // The quorum's own checks want it quiet (every server serving, at one zxid): an election may still be finishing.
      for (let extra = 0; extra < 100 && !cluster.quiet(); extra++) if (!await stepTo(q.now + 100)) break;
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  if (thrown !== null) fail(`threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`);
  const quorum = cluster.finish();
  for (const v of quorum.violations) fail(`quorum: ${v}`);
  // Every accepted write's epoch in the journal's history never goes back along the txids.
  for (const node of journalNodes.values()) {
    let prev = 0;
    for (const seg of [...node.durable.disk.segments].sort((a, b) => (a.startTxid < b.startTxid ? -1 : 1))) {
      if (seg.endTxid < seg.startTxid) continue;
      if (seg.writerEpoch < prev) fail(`C4: journal node ${node.id} holds writer epoch ${seg.writerEpoch} after ${prev} (segment ${seg.startTxid})`);
      prev = Math.max(prev, seg.writerEpoch);
    }
  }
  const { crashes: quorumCrashes, partitions: quorumPartitions, leaderIsolations, powerFailures } = quorum.stats;
  return { seed: o.seed, ok: violations.length === 0, violations, stats: { ...stats, quorumCrashes, quorumPartitions, leaderIsolations, powerFailures }, trace: quorum.trace };
}
