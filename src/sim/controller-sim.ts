// Seeded runs of the failover controllers: one ControllerCore per instance,
// driven by the production driver code (controller-ops.ts: runControllerOp and
// CoreRunner, with fencing.ts's fenceInstance and quorum-writer.ts's
// takeEpochOn) over simulated I/O: a model quorum (sessions that expire
// without pings, an ephemeral lock with its czxid and ephemeralOwner, one-shot
// data watches, versions, sync), journal nodes running the real JournalState,
// services whose writers are the real JournalWriter, health checks folded by
// the real HealthFolder, and fencing that kills, lies, fails or hangs (its raw
// outcome: fencing.ts's fenceVerdict and down check decide what counts). Faults:
// services that die, hang and come back; hooks and fencing that fail or hang;
// controller pauses (a GC stop: its timers and inputs held), crashes and
// restarts (with the session file's re-attach, or without); partitions of a
// controller from the quorum, the journal or its service. Checked on every
// schedule: C1-C4 as they happen, and once the faults stop, exactly one
// active within a bound.
//
// The quorum is a model, not the simulated ZooKeeper servers of sim-cluster.ts:
// its rules are the few the controller relies on (see ModelQuorum), and its
// sessions time out on the quorum's side as ZooKeeper's do.
import { ControllerCore, type Breadcrumb, type ControllerOp, type ControllerSettings, type HistoryEvent } from '../core/controller/controller-core.js';
import { HealthFolder, type CheckOutcome } from '../core/controller/health.js';
import { JournalError, JournalState } from '../core/journal/journal-state.js';
import { JournalWriter, type WriterEffect } from '../core/journal/journal-writer.js';
import { controllerSettings, CoreRunner, type ControllerIo, type IoOutcome, type OpsQuorum, type OpsStat } from '../controller/controller-ops.js';
import { FENCE_VERIFY_MS, fenceBreadcrumb, type DownIo, type DownObservation, type FenceEvidence, type KillMethod } from '../controller/fencing.js';
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { promisedOnMajority, takeEpochOn, type EpochNodeClient } from '../client/journal/journal-epoch.js';
import { ZkError } from '../client/errors.js';
import { Err, EventType } from '../proto/zk-constants.js';
import { batchChecksum } from '../proto/journal-wire.js';
import { EventQueue } from './event-queue.js';
import { Rng } from './rng.js';
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
 * After the faults stop: sessions of crashed or cut-off controllers expire (one session timeout),
 * services pass their checks again (a few health intervals), a hook or fence still hanging times
 * out (a fence that claimed a kill is checked for the target down for up to FENCE_VERIFY_MS), a
 * failed promotion's backoff runs out, and a promotion runs.
 */
export const SIM_SETTLE_BOUND_MS = SIM_SESSION_MS + 4 * HEALTH_MS + HOOK_TIMEOUT_MS + FENCE_TIMEOUT_MS + FENCE_VERIFY_MS + RETRY_BACKOFF_MAX_MS + 1000;
const LOCK = '/svc/lock';
const CRUMB = '/svc/breadcrumb';
const JOURNAL = 'svc';

type RoleAnswer = { ok: true; role: 'active' | 'standby'; epoch: number | null } | { ok: false; reason: string };

interface ZNode { data: string; czxid: bigint; version: number; owner: bigint }

export async function runControllerSimulation(o: ControllerSimOptions): Promise<ControllerSimResult> {
  const rng = new Rng(o.seed);
  const q = new EventQueue();
  const trace: string[] = [];
  const log = (l: string) => { if (o.trace) trace.push(`${q.now.toFixed(1).padStart(9)} ${l}`); };
  const violations: string[] = [];
  const fail = (v: string) => { log(`VIOLATION ${v}`); if (violations.length < 20) violations.push(`t=${q.now.toFixed(1)}ms ${v}`); };
  const stats = { promotions: 0, demotions: 0, fences: 0, fenceFailures: 0, sessionsExpired: 0, serviceDeaths: 0, serviceHangs: 0, pauses: 0, crashes: 0, resumedRestarts: 0, partitions: 0, writesAcked: 0, writersFenced: 0, zombieActivesAtEnd: 0, events: 0 };
  const faultsOn = () => q.now < o.faultMs;
  /** Promises resolved in an event: their continuations run before the next event. */
  let settled = false;
  const lat = () => rng.range(0.2, 3);

  // ---- links: controller <-> quorum ('q'), journal ('j'), its service ('s') ------------
  const cut = new Set<string>();
  const linkUp = (kind: 'q' | 'j' | 's', id: string) => !cut.has(`${kind}:${id}`);
  /** What an open connection carries while its link is cut: held (TCP retransmits), delivered at the heal. */
  const held = new Map<string, (() => void)[]>();
  const through = (kind: 'q', id: string, f: () => void) => {
    const link = `${kind}:${id}`;
    if (!cut.has(link)) { f(); return; }
    held.set(link, [...(held.get(link) ?? []), f]);
  };
  const heal = (link: string) => {
    cut.delete(link);
    const fs = held.get(link) ?? [];
    held.delete(link);
    for (const f of fs) q.after(lat(), f);
  };

  // ---- the model quorum ------------------------------------------------------------------
  // What the controller relies on: a session lives while the quorum hears from it within its
  // timeout, and its ephemeral nodes go with it; create fails with NODEEXISTS; delete and setData
  // check the version; a data watch fires once, on change or deletion, and waits for a
  // disconnected client (setWatches on reconnect); every write takes a zxid (czxid).
  let zxid = 0x100n;
  const znodes = new Map<string, ZNode>();
  const sessions = new Map<bigint, { timeoutMs: number; lastHeard: number; alive: boolean; client: SimZk | null }>();
  const watches = new Map<string, { session: bigint; fire: (ev: { type: number }) => void }[]>();
  let nextSessionId = 0x1000n;
  /** Every breadcrumb write: who wrote it and what it replaced. */
  const crumbWrites: { by: bigint; replaced: Breadcrumb | null }[] = [];

  /** A data watch's event, as ZooKeeper types it: the node changed or was deleted. */
  const fire = (path: string, type: number = EventType.NodeDataChanged) => {
    const ws = watches.get(path) ?? [];
    watches.delete(path);
    for (const w of ws) sessions.get(w.session)?.client?.event(() => w.fire({ type }));
  };
  const expire = (id: bigint) => {
    const s = sessions.get(id)!;
    s.alive = false;
    stats.sessionsExpired++;
    log(`quorum: session 0x${id.toString(16)} expired`);
    checkC2AtExpiry(id);
    for (const [p, w] of watches) watches.set(p, w.filter((x) => x.session !== id));
    for (const [path, n] of [...znodes]) if (n.owner === id) { znodes.delete(path); zxid++; fire(path, EventType.NodeDeleted); }
  };
  const quorumTick = () => {
    for (const [id, s] of sessions) if (s.alive && q.now - s.lastHeard > s.timeoutMs) expire(id);
    q.after(20, quorumTick);
  };
  q.after(20, quorumTick);
  const parseData = (d: string): Breadcrumb | null => { try { return JSON.parse(d) as Breadcrumb; } catch { return null; } };
  const stat = (n: ZNode): OpsStat => ({ czxid: n.czxid, ephemeralOwner: n.owner, version: n.version });
  const quorumOps = {
    create(session: bigint, path: string, data: string, ephemeral: boolean): OpsStat {
      if (znodes.has(path)) throw new ZkError(Err.NODEEXISTS, path);
      const n = { data, czxid: ++zxid, version: 0, owner: ephemeral ? session : 0n };
      znodes.set(path, n);
      if (path === CRUMB) crumbWrites.push({ by: session, replaced: null });
      fire(path);
      return stat(n);
    },
    getData(session: bigint, path: string, watcher?: (ev: { type: number }) => void): { data: Buffer; stat: OpsStat } {
      const n = znodes.get(path);
      if (n === undefined) throw new ZkError(Err.NONODE, path);
      if (watcher !== undefined) watches.set(path, [...(watches.get(path) ?? []), { session, fire: watcher }]);
      return { data: Buffer.from(n.data), stat: stat(n) };
    },
    delete(path: string, version: number): void {
      const n = znodes.get(path);
      if (n === undefined) throw new ZkError(Err.NONODE, path);
      if (version !== -1 && version !== n.version) throw new ZkError(Err.BADVERSION, path);
      znodes.delete(path);
      zxid++;
      fire(path, EventType.NodeDeleted);
    },
    setData(session: bigint, path: string, data: string, version: number): void {
      const n = znodes.get(path);
      if (n === undefined) throw new ZkError(Err.NONODE, path);
      if (version !== -1 && version !== n.version) throw new ZkError(Err.BADVERSION, path);
      if (path === CRUMB) crumbWrites.push({ by: session, replaced: parseData(n.data) });
      n.data = data;
      n.version++;
      zxid++;
      fire(path);
    },
  };

  /** A controller process: its events wait while it is paused and are dropped once it crashed. */
  class Proc {
    life = 0;
    pausedUntil = 0;
    up = true;
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

  /** A ZooKeeper client session, as ZkClient behaves: pings every third of the timeout, a connection given up after two thirds without a word, then reconnects; the quorum's verdict on the session at reconnect. */
  class SimZk implements OpsQuorum {
    sessionId = 0n;
    state: 'connecting' | 'connected' | 'disconnected' | 'expired' | 'closed' = 'connecting';
    private lastRecv = 0;
    private gen = 0;
    private readonly inFlight = new Set<(e: Error) => void>();
    private readonly heldEvents: (() => void)[] = [];
    private readonly life: number;
    constructor(private readonly ctl: SimController, saved: bigint | null, private readonly onState: (s: 'connected' | 'disconnected' | 'expired') => void) {
      this.life = ctl.proc.life;
      this.sessionId = saved ?? 0n;
      this.tryConnect();
      this.loop();
    }
    private get live(): boolean { return this.ctl.proc.life === this.life && this.ctl.zk === this && this.state !== 'closed' && this.state !== 'expired'; }
    private loop(): void {
      this.ctl.proc.after(SIM_SESSION_MS / 3, () => {
        if (!this.live) return;
        if (this.state === 'connected') {
          if (q.now - this.lastRecv > (SIM_SESSION_MS * 2) / 3) this.drop();
          else void this.rpc(() => undefined).catch(() => undefined); // a ping
        } else this.tryConnect();
        this.loop();
      });
    }
    private drop(): void {
      this.gen++;
      this.state = 'disconnected';
      for (const r of this.inFlight) r(new ZkError(Err.CONNECTIONLOSS));
      this.inFlight.clear();
      this.onState('disconnected');
    }
    private tryConnect(): void {
      const id = this.ctl.inst.id;
      if (!linkUp('q', id)) return;
      const gen = this.gen;
      q.after(lat(), () => {
        if (!linkUp('q', id)) return;
        let verdict: 'connected' | 'expired';
        if (this.sessionId === 0n) {
          this.sessionId = nextSessionId++;
          sessions.set(this.sessionId, { timeoutMs: SIM_SESSION_MS, lastHeard: q.now, alive: true, client: this });
          verdict = 'connected';
        } else {
          const s = sessions.get(this.sessionId);
          if (s?.alive) { s.lastHeard = q.now; s.client = this; verdict = 'connected'; } else verdict = 'expired';
        }
        q.after(lat(), () => {
          if (!linkUp('q', id)) return;
          this.ctl.proc.deliver(this.life, () => {
            if (!this.live || this.gen !== gen || this.state === 'connected') return;
            if (verdict === 'expired') { this.state = 'expired'; this.onState('expired'); return; }
            this.state = 'connected';
            this.lastRecv = q.now;
            this.onState('connected');
            for (const f of this.heldEvents.splice(0)) f();
          });
        });
      });
    }
    /** A watch event from the quorum: delivered on the connection, or held until the next one. */
    event(f: () => void): void {
      const id = this.ctl.inst.id;
      if (this.state !== 'connected') { this.heldEvents.push(f); return; }
      const gen = this.gen;
      q.after(lat(), () => through('q', id, () => this.ctl.proc.deliver(this.life, () => { if (this.live && this.gen === gen) f(); else this.heldEvents.push(f); })));
    }
    close(): void { this.state = 'closed'; }
    /** One request: lost with the link, answered through it, failed when the connection is given up. */
    private rpc<T>(work: (session: bigint) => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (this.state !== 'connected') { reject(new ZkError(Err.CONNECTIONLOSS)); return; }
        const id = this.ctl.inst.id;
        const gen = this.gen;
        this.inFlight.add(reject);
        // Held while the link is cut; gone with the connection once the client gives it up.
        const done = (f: () => void) => {
          q.after(lat(), () => through('q', id, () => {
            this.ctl.proc.deliver(this.life, () => {
              if (this.gen !== gen || !this.inFlight.has(reject)) return;
              this.inFlight.delete(reject);
              this.lastRecv = q.now;
              f();
            });
          }));
        };
        const session = this.sessionId;
        const arrive = (f: () => void) => through('q', id, () => q.after(lat(), () => through('q', id, () => { if (this.gen === gen && this.ctl.proc.life === this.life) f(); })));
        arrive(() => {
          const s = sessions.get(session);
          if (!s?.alive) {
            done(() => { reject(new ZkError(Err.SESSIONEXPIRED)); if (this.live) { this.state = 'expired'; this.onState('expired'); } });
            return;
          }
          s.lastHeard = q.now;
          let r: { ok: true; v: T } | { ok: false; e: unknown };
          try { r = { ok: true, v: work(session) }; } catch (e) { r = { ok: false, e }; }
          done(() => { if (r.ok) resolve(r.v); else reject(r.e as Error); });
        });
      });
    }
    create(path: string, data: string): Promise<unknown> { return this.rpc((s) => quorumOps.create(s, path, data, false)); }
    create2(path: string, data: string): Promise<{ stat: OpsStat }> {
      return this.rpc((s) => {
        const r = { stat: quorumOps.create(s, path, data, true) };
        if (path === LOCK) log(`quorum: ${this.ctl.inst.id} (0x${s.toString(16)}) took the lock (czxid ${r.stat.czxid})`);
        return r;
      });
    }
    getData(path: string, watcher?: (ev: { type: number }) => void): Promise<{ data: Buffer | null; stat: OpsStat }> { return this.rpc((s) => quorumOps.getData(s, path, watcher)); }
    delete(path: string, version = -1): Promise<void> { return this.rpc(() => quorumOps.delete(path, version)); }
    setData(path: string, data: string, version = -1): Promise<unknown> { return this.rpc((s) => quorumOps.setData(s, path, data, version)); }
    sync(): Promise<void> { return this.rpc(() => undefined); }
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
    zk: SimZk | null;
    /** The session file: the session to re-attach to after a restart. */
    savedSession: bigint | null;
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

  const startController = (inst: InstanceConfig, proc: Proc, saved: bigint | null): SimController => {
    const core = new ControllerCore(settings(inst, saved), q.now);
    const ctl = { inst, proc, core, zk: null, savedSession: saved, fenced: new Set<string>(), readCrumb: null, ops: new Map() } as unknown as SimController;
    const io: ControllerIo = {
      instance: { id: inst.id, address: `host-${inst.id}:0` }, lockPath: LOCK, crumbPath: CRUMB, acl: [],
      quorum: () => ctl.zk,
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
    const connect = (savedId: bigint | null) => {
      const zk: SimZk = new SimZk(ctl, savedId, (s) => {
        if (ctl.zk !== zk) return;
        if (s === 'connected') {
          ctl.savedSession = zk.sessionId;
          ctl.runner.feed({ kind: 'session', state: 'connected', sessionId: zk.sessionId, timeoutMs: SIM_SESSION_MS });
        } else if (s === 'disconnected') ctl.runner.feed({ kind: 'session', state: 'disconnected' });
        else {
          ctl.savedSession = null;
          ctl.runner.feed({ kind: 'session', state: 'expired' });
          zk.close();
          proc.after(100, () => { if (ctl.zk === zk) connect(null); });
        }
      });
      ctl.zk = zk;
    };
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
    connect(saved);
    return ctl;
  };
  const procs = new Map(ids.map((id) => [id, new Proc()]));
  for (const inst of instances) q.at(rng.range(0, 50), () => ctls.set(inst.id, startController(inst, procs.get(inst.id)!, null)));

  // ---- checks ----------------------------------------------------------------------------
  const lockOwner = () => znodes.get(LOCK)?.owner ?? null;
  /** C1-C3 before a promotion's side effect: the lock held by its session at the quorum (and that session alive), the service healthy. */
  function checkBeforeSideEffect(ctl: SimController, op: ControllerOp): void {
    if (op.type === 'hook' && op.hook === 'toStandby') return;
    const sid = ctl.zk?.sessionId ?? null;
    const what = op.type === 'hook' ? op.hook : op.type;
    const owner = lockOwner();
    if (sid === null || owner !== sid || !sessions.get(sid)?.alive) fail(`C2: ${ctl.inst.id} runs ${what} while its session (${sid === null ? 'none' : '0x' + sid.toString(16)}) does not hold the lock at the quorum (owner ${owner === null ? 'none' : '0x' + owner.toString(16)})`);
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
      const sid = c.zk?.sessionId ?? null;
      if (sid === null || lockOwner() !== sid || !sessions.get(sid)?.alive) fail(`C1: ${c.inst.id} holds itself active without holding the lock (its session ${sid === null ? 'none' : '0x' + sid.toString(16)}, owner ${lockOwner()?.toString(16) ?? 'none'})`);
    }
  }
  /** C2: when a session expires on the quorum's side, its controller no longer counts its service active (nor is still active, unless it was paused). */
  function checkC2AtExpiry(id: bigint): void {
    for (const c of ctls.values()) {
      if (!c.proc.up || c.zk?.sessionId !== id) continue;
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
      p.life++;
      ctl.runner.stop();
      ctls.delete(id);
      const keepFile = rng.chance(0.6);
      const saved = keepFile ? ctl.savedSession : null;
      log(`controller ${id}: CRASH (${saved !== null ? `session file kept: 0x${saved.toString(16)}` : 'no session file'})`);
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
  while (q.step(end)) {
    stats.events++;
    // Time must move: a controller that wakes itself at once for ever (a wake-up in the past) is a bug.
    if (q.now === lastNow) {
      if (++sameNow > 100_000) { fail(`LIVELOCK: 100000 events without simulated time moving past ${q.now.toFixed(1)} ms`); break; }
    } else { lastNow = q.now; sameNow = 0; }
    if (settled) { settled = false; await new Promise<void>((r) => setImmediate(r)); }
  }
  // Every accepted write's epoch in the journal's history never goes back along the txids.
  for (const node of journalNodes.values()) {
    let prev = 0;
    for (const seg of [...node.durable.disk.segments].sort((a, b) => (a.startTxid < b.startTxid ? -1 : 1))) {
      if (seg.endTxid < seg.startTxid) continue;
      if (seg.writerEpoch < prev) fail(`C4: journal node ${node.id} holds writer epoch ${seg.writerEpoch} after ${prev} (segment ${seg.startTxid})`);
      prev = Math.max(prev, seg.writerEpoch);
    }
  }
  return { seed: o.seed, ok: violations.length === 0, violations, stats, trace };
}
