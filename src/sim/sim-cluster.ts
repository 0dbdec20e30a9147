// One seeded simulation: N quorum servers (the real QuorumPeer core) over the
// simulated network and disks, a client writing through whoever leads, and
// random faults (crashes with lost unsynced writes, partitions, a leader cut
// off while it still takes writes). Then the faults stop, every server comes
// back, and the checker looks at what happened.
import { takeStorageStep, type QueuedStorageOp } from '../core/zab/storage-steps.js';
import { QuorumPeer, type ClusterConfig, type QuorumPeerConfig } from '../core/zab/quorum-peer.js';
import { pumpPeer, type PeerIo, type ReplicatedLayer } from '../quorum/peer-pump.js';
import { makeZxid } from '../core/zab/zxid.js';
import { Checker } from './checker.js';
import { EventQueue } from './event-queue.js';
import { Rng } from './rng.js';
import { SimDisk } from './sim-disk.js';
import { NoApp, type SimApp, type SimAppContext } from './sim-app.js';
import { zkWorkload } from './zk-workload.js';
import { SimNetwork, type NetworkFaults } from './sim-network.js';
import { applyToSimState, decodeSimState, encodeSimState, initialSimState, type SimState } from './sim-state.js';

export interface SimOptions {
  seed: number;
  servers: number;
  observers: number;
  /** Simulated time with faults, then time to settle without them. */
  faultMs: number;
  settleMs: number;
  /** Start epoch counters near 2^32 so leaders exhaust them (ZOOKEEPER-1277). */
  nearCounterLimit: boolean;
  /** Record a line per notable event (for replaying a failing seed). */
  trace: boolean;
  /** ZooKeeper clients on the full server (ServerCore over QuorumPeer); 0: the bare replication run. */
  zkClients: number;
  /** Bare runs: servers started outside the membership, and membership changes proposed during the run. */
  spares: number;
  reconfig: boolean;
  /** Between two faults of the cluster (servers crashed, partitioned, lagging, power failures), in ms; default 100-1500. */
  faultGapMs?: [number, number];
  /** The second half of the settle period must see commits (the bare run's and the clients' writes); off for workloads that may write nothing then. */
  requireProgress?: boolean;
}

/** Bare runs carry a new membership as a transaction `cfg:{"voters":[..],"observers":[..]}`. */
export function simConfigOf(payload: Uint8Array): ClusterConfig | null {
  if (payload.length < 4 || payload[0] !== 0x63 || payload[1] !== 0x66 || payload[2] !== 0x67 || payload[3] !== 0x3a) return null;
  const o = JSON.parse(new TextDecoder().decode(payload.subarray(4))) as { voters: number[]; observers: number[] };
  return { version: 0n, voters: o.voters, observers: o.observers };
}

/** What runs on each server above the replication core, and the clients that use it. */
export interface SimWorkload {
  app(ctx: SimAppContext): SimApp;
  /** Starts the clients (the bare run writes through whoever leads instead). */
  start?(env: SimEnv): void;
  /** After the run: the problems found in what the clients saw. */
  check?(): string[];
  stats?(): Record<string, number>;
}

/** What a workload's clients get to see and use of the cluster. */
export interface SimEnv {
  q: EventQueue;
  rng: Rng;
  ids: readonly number[];
  app(id: number): SimApp | null;
  /** Run `f` on server `id`'s app if it is up, then carry out what it produced. */
  drive(id: number, f: (app: SimApp) => void): void;
  log(line: string): void;
  endOfLoadMs: number;
}

export interface SimResult {
  seed: number;
  options: Omit<SimOptions, 'seed' | 'trace'>;
  ok: boolean;
  violations: string[];
  stats: Checker['stats'] & { reconfigs: number; crashes: number; powerFailures: number; partitions: number; leaderIsolations: number; writesProposed: number; events: number; simMs: number };
  trace: string[];
}

const TICK_STEP_MS = 10;

interface SimNode {
  id: number;
  up: boolean;
  /** Bumped at every crash: events of an earlier life are ignored. */
  life: number;
  core: QuorumPeer | null;
  app: SimApp | null;
  /** The app with the checker's digest around it, and the simulated I/O: what pumpPeer carries effects out through. */
  layer: ReplicatedLayer | null;
  io: PeerIo | null;
  disk: SimDisk;
  state: SimState;
  /** Storage operations not yet started (lost in a crash, as a real server's queue is), and whether a step is in flight. */
  storageQueue: QueuedStorageOp[];
  storageBusy: boolean;
  commitsSinceSnapshot: number;
}

/** A snapshot's bytes: the digest state, then the app's state. */
function packSnapshot(state: SimState, app: Uint8Array): Uint8Array {
  const head = encodeSimState(state);
  const out = new Uint8Array(4 + head.length + app.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(app, 4 + head.length);
  return out;
}

function unpackSnapshot(bytes: Uint8Array): { state: SimState; app: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  return { state: decodeSimState(bytes.subarray(4, 4 + n)), app: bytes.subarray(4 + n) };
}

/** A simulated cluster running on its event queue: step the queue (to `end`, then until quiet), then finish() for the checks. */
export interface SimClusterRun {
  q: EventQueue;
  rng: Rng;
  /** The end of the settle period. */
  end: number;
  /** Every server serving and all at one zxid. */
  quiet(): boolean;
  /** Counts an event the caller stepped. */
  stepped(): void;
  finish(): SimResult;
}

export function runSimulation(o: SimOptions, workloadOverride?: SimWorkload): SimResult {
  const run = startSimCluster(o, workloadOverride);
  const { q } = run;
  while (q.step(run.end)) run.stepped();
  // Quiet means every server serving and all at one zxid; an election may still be finishing (a
  // leader that exhausted its counter near 2^32, say): give it up to 10 s more, in steps.
  for (let extra = 0; extra < 100 && !run.quiet(); extra++) { const until = q.now + 100; while (q.step(until)) run.stepped(); }
  return run.finish();
}

/** Starts a cluster (its servers, faults and workload) on a new event queue; the caller steps it. */
export function startSimCluster(o: SimOptions, workloadOverride?: SimWorkload): SimClusterRun {
  const firstCounterOf = o.nearCounterLimit ? 0xffff_ff00n : 1n;
  const workload: SimWorkload = workloadOverride ?? (o.zkClients > 0 ? zkWorkload(o.zkClients, firstCounterOf) : { app: () => new NoApp() });
  const rng = new Rng(o.seed);
  const q = new EventQueue();
  const trace: string[] = [];
  const log = (line: string) => { if (o.trace) trace.push(`${q.now.toFixed(1).padStart(9)} ${line}`); };
  const ids = Array.from({ length: o.servers + o.observers + o.spares }, (_, i) => i + 1);
  const voters = ids.slice(0, o.servers);
  const observers = ids.slice(o.servers, o.servers + o.observers);
  const firstCounter = firstCounterOf;
  const baseEpoch = o.nearCounterLimit ? 7 : 0;
  const initial = initialSimState(o.nearCounterLimit ? makeZxid(baseEpoch, 0xffff_fff0) : 0n);
  const checker = new Checker(() => q.now, initial);
  const stats = { reconfigs: 0, crashes: 0, powerFailures: 0, partitions: 0, leaderIsolations: 0, writesProposed: 0, events: 0, simMs: 0 };
  const cfgOf = (id: number): QuorumPeerConfig => ({
    id, voters, observers, clusterId: 'sim', tickMs: 100, initLimit: 10, syncLimit: 5,
    electionFinalizeWaitMs: 20, electionResendMinMs: 50, electionResendMaxMs: 800, diffWindowTxns: 200, firstCounter,
    configOf: o.reconfig ? simConfigOf : undefined,
  });
  const initialSnapshot = { zxid: initial.zxid, bytes: packSnapshot(initial, new Uint8Array(0)) };
  const nodes = new Map<number, SimNode>(ids.map((id) => [id, {
    id, up: false, life: 0, core: null, app: null, layer: null, io: null, disk: new SimDisk(initialSnapshot, baseEpoch), state: initial, storageQueue: [], storageBusy: false, commitsSinceSnapshot: 0,
  }]));
  const node = (id: number) => nodes.get(id)!;

  const faults: NetworkFaults = { delayMinMs: 0.1, delayMaxMs: 2, slowChance: 0.02, slowMs: 30, voteDrop: 0.05, voteDuplicate: 0.05 };
  const net = new SimNetwork(q, rng, faults, {
    isUp: (id) => node(id).up,
    vote: (to, from, n) => drive(to, (c) => c.vote(from, n, clock())),
    accepted: (id) => { const n = node(id); const conn = n.core!.accepted(clock()); pump(n); return conn; },
    connected: (id, conn) => drive(id, (c) => c.connected(conn, clock())),
    message: (id, conn, msg) => drive(id, (c) => c.message(conn, msg, clock())),
    disconnected: (id, conn) => drive(id, (c) => c.disconnected(conn, clock())),
  });

  /** A server's clock: whole milliseconds, as a real server's (nowMs). */
  const clock = () => Math.floor(q.now);

  function drive(id: number, f: (c: QuorumPeer) => void): void {
    const n = node(id);
    if (!n.up || n.core === null) return;
    f(n.core);
    pump(n);
  }

  /** Writes proposed at a leader and not yet known committed there. */
  const inFlight = new Map<bigint, { node: number; life: number }>();

  /** The quorum server's own pump: the app (the ZooKeeper layer, or nothing) and the peer, through the simulated I/O. */
  function pump(n: SimNode): void {
    const core = n.core!;
    pumpPeer(core, n.layer!, n.io!, clock, () => n.core === core);
  }

  /** The checker's digest of what was committed, around the workload's app: what a server's snapshot holds here. */
  function layerOf(n: SimNode, app: SimApp): ReplicatedLayer {
    return {
      committed(zxid, payload) {
        const before = n.state;
        n.state = applyToSimState(before, zxid, payload);
        checker.applied(n.id, before, zxid, payload, n.state);
        app.committed(zxid, payload);
        const w = inFlight.get(zxid);
        if (w !== undefined && w.node === n.id && w.life === n.life) { inFlight.delete(zxid); checker.ack(zxid, payload); }
        if (++n.commitsSinceSnapshot >= 150) { n.commitsSinceSnapshot = 0; n.disk.saveSnapshot({ zxid: n.state.zxid, bytes: packSnapshot(n.state, app.snapshot()) }); }
      },
      fromPeer: (from, body, now) => app.fromPeer(from, body, now),
      roleChanged(state, serving, epoch, now) {
        if (state === 'leading' && serving) checker.leading(n.id, epoch);
        app.roleChanged(state, serving, epoch, now);
      },
      snapshot: () => packSnapshot(n.state, app.snapshot()),
      install(zxid, bytes, now) {
        const snap = unpackSnapshot(bytes);
        n.state = snap.state;
        app.install(zxid, snap.app, now);
        checker.installedSnapshot(n.id, n.state);
      },
      flush: (peer, now) => app.flush(peer, now),
    };
  }

  /** The simulated network and disk, where a quorum server has its ports and files. */
  function ioOf(n: SimNode): PeerIo {
    return {
      vote: (to, msg) => net.sendVote(n.id, to, msg),
      connect: (conn, peer) => net.connect(n.id, conn, peer),
      send: (conn, msg) => net.send(n.id, conn, msg),
      close: (conn) => net.close(n.id, conn),
      persist(seq, op) {
        n.storageQueue.push({ seq, op });
        runStorage(n);
      },
      stateChanged: (e) => log(`server ${n.id}: ${e.state}${e.serving ? ' (serving)' : ''} epoch ${e.epoch} leader ${e.leader ?? '-'}: ${e.reason}`),
      configChanged: (config) => log(`server ${n.id}: membership 0x${config.version.toString(16)} voters ${config.voters.join(',')} observers ${config.observers.join(',') || '-'}`),
      violation(reason) {
        log(`server ${n.id}: VIOLATION ${reason}`);
        checker.protocolViolation(n.id, reason);
      },
    };
  }

  /** The quorum server's storage steps (storage-steps.ts) on the simulated disk: each written, then synced after a random latency. */
  function runStorage(n: SimNode): void {
    if (n.storageBusy || !n.up) return;
    const step = takeStorageStep(n.storageQueue);
    if (step === null) return;
    n.storageBusy = true;
    for (const { seq, op } of step.ops) n.disk.write(seq, op);
    const life = n.life;
    q.after(rng.chance(0.02) ? rng.range(5, 40) : rng.range(0.1, 3), () => {
      if (!n.up || n.life !== life) return;
      n.disk.syncThrough(step.durableThrough);
      n.storageBusy = false;
      drive(n.id, (c) => c.persisted(step.durableThrough));
      runStorage(n);
    });
  }

  function boot(n: SimNode): void {
    const img = n.disk.image;
    n.up = true;
    n.storageQueue = [];
    n.storageBusy = false;
    const snap = unpackSnapshot(img.snapshot.bytes);
    n.state = snap.state;
    n.core = new QuorumPeer(cfgOf(n.id), { acceptedEpoch: img.acceptedEpoch, currentEpoch: img.currentEpoch, snapshotZxid: img.snapshot.zxid, log: [...img.log], config: img.config });
    n.app = workload.app({ id: n.id, now: clock });
    n.app.restore(snap.app.length > 0 ? snap.app : null);
    n.layer = layerOf(n, n.app);
    n.io = ioOf(n);
    n.core.start(clock());
    pump(n);
    const life = n.life;
    const tick = () => {
      if (!n.up || n.life !== life) return;
      drive(n.id, (c) => { c.tick(clock()); n.app?.tick(); });
      q.after(TICK_STEP_MS, tick);
    };
    q.after(rng.range(0, TICK_STEP_MS), tick);
  }

  function crash(n: SimNode): void {
    if (!n.up) return;
    stats.crashes++;
    const kept = n.disk.crash(rng);
    log(`server ${n.id}: CRASH (kept ${kept} unsynced writes)`);
    n.up = false;
    n.life++;
    n.app?.crashed();
    n.core = null;
    n.app = null;
    n.layer = null;
    n.io = null;
    net.nodeDown(n.id);
  }

  const leader = (): SimNode | null => {
    for (const n of nodes.values()) if (n.up && n.core !== null && n.core.peerState === 'leading' && n.core.serving) return n;
    return null;
  };

  // ---- the client: a write every 1-5 ms to whoever leads -------------------------------
  let writeNo = 0;
  /** A membership change through the leader: add a server in sync that is not a member, or remove a voter (the leader too). */
  const reconfigure = (l: SimNode) => {
    const active = l.core!.activeConfig;
    const members = new Set([...active.voters, ...active.observers]);
    const joiners = l.core!.learners.filter((x) => x.phase === 'synced' && !members.has(x.id)).map((x) => x.id);
    let next: { voters: number[]; observers: number[] };
    // One server at a time, or several at once (where only a quorum of both memberships keeps it safe).
    const several = rng.chance(0.4);
    if (joiners.length > 0 && (active.voters.length < 5 || rng.chance(0.3))) {
      const add = several ? joiners : [rng.pick(joiners)];
      next = { voters: [...active.voters, ...add].sort(), observers: [...active.observers] };
    } else if (active.voters.length > 3) {
      const out = rng.shuffle([...active.voters]).slice(0, several && active.voters.length >= 5 ? 2 : 1);
      next = { voters: active.voters.filter((v) => !out.includes(v)), observers: [...active.observers] };
    } else return;
    const zxid = l.core!.propose(new TextEncoder().encode(`cfg:${JSON.stringify(next)}`), clock());
    if (zxid !== null) { stats.reconfigs++; log(`RECONFIG proposed at 0x${zxid.toString(16)} by ${l.id}: voters ${next.voters.join(',')}`); }
    pump(l);
  };
  const write = () => {
    const l = leader();
    if (l !== null && o.reconfig && q.now < o.faultMs && rng.chance(0.003)) reconfigure(l);
    if (l !== null) {
      const payload = new TextEncoder().encode(`w${++writeNo}`);
      const zxid = l.core!.propose(payload, clock());
      if (zxid !== null) { stats.writesProposed++; inFlight.set(zxid, { node: l.id, life: l.life }); }
      pump(l);
    }
    if (q.now < o.faultMs + o.settleMs - 2000) q.after(rng.range(1, 5), write);
  };

  // ---- faults --------------------------------------------------------------------------
  const healAt = { t: 0 };
  const fault = () => {
    if (q.now >= o.faultMs) return;
    const r = rng.next();
    const up = ids.filter((id) => node(id).up);
    if (r < 0.35 && up.length > 0) {
      const victim = node(rng.pick(up));
      crash(victim);
      const life = victim.life;
      q.after(rng.range(50, 3000), () => { if (!victim.up && victim.life === life) { log(`server ${victim.id}: restart`); boot(victim); } });
    } else if (r < 0.6) {
      const shuffled = rng.shuffle([...ids]);
      const cut = 1 + rng.int(ids.length - 1);
      net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      stats.partitions++;
      log(`PARTITION ${JSON.stringify([shuffled.slice(0, cut), shuffled.slice(cut)])}`);
      const until = q.now + rng.range(100, 3000);
      healAt.t = until;
      q.at(until, () => { if (healAt.t === until) { net.heal(); log('HEAL'); } });
    } else if (r < 0.8) {
      isolateLeader();
    } else if (r < 0.83) {
      // One server lags: everything to and from it is slow for a while (it serves stale reads).
      const victim = rng.pick(ids);
      const ms = rng.range(20, 200);
      net.setLag(victim, ms);
      log(`LAG server ${victim} +${ms.toFixed(0)} ms`);
      q.after(rng.range(500, 3000), () => { net.setLag(victim, 0); log(`LAG server ${victim} over`); });
    } else if (r < 0.88) {
      // A power failure of every server at once: only what each had synced survives.
      log('POWER FAILURE');
      stats.powerFailures++;
      for (const n of nodes.values()) crash(n);
      for (const n of nodes.values()) {
        // Servers come back one by one: those that return first may elect a leader without the others.
        const life = n.life;
        q.after(rng.range(50, 3000), () => { if (!n.up && n.life === life) { log(`server ${n.id}: restart`); boot(n); } });
      }
    }
    q.after(rng.range(...(o.faultGapMs ?? [100, 1500])), fault);
  };

  /** The forced schedule: a leader cut off alone keeps taking writes no one else will have. */
  const isolateLeader = () => {
    const l = leader();
    if (l === null) return;
    stats.leaderIsolations++;
    net.partition([[l.id], ids.filter((id) => id !== l.id)]);
    log(`ISOLATE leader ${l.id}`);
    const until = q.now + rng.range(700, 3000);
    healAt.t = until;
    q.at(until, () => { if (healAt.t === until) { net.heal(); log('HEAL'); } });
  };

  for (const n of nodes.values()) q.at(rng.range(0, 50), () => boot(n));
  if (workload.start === undefined) q.at(10, write);
  else {
    workload.start({
      q, rng, ids, log, endOfLoadMs: o.faultMs + o.settleMs - 2000,
      app: (id) => (node(id).up ? node(id).app : null),
      drive: (id, f) => { const n = node(id); if (!n.up || n.app === null) return; f(n.app); pump(n); },
    });
  }
  q.at(rng.range(300, 800), fault);
  q.at(rng.range(o.faultMs * 0.2, o.faultMs * 0.6), isolateLeader);
  q.at(o.faultMs, () => {
    net.heal();
    healAt.t = -1;
    log('FAULTS END: heal, restart every server');
    for (const n of nodes.values()) if (!n.up) boot(n);
  });

  const end = o.faultMs + o.settleMs;
  const quiet = () => [...nodes.values()].every((n) => n.up && n.core !== null && n.core.serving && n.state.zxid === node(ids[0]).state.zxid);
  return { q, rng, end, quiet, stepped: () => { stats.events++; }, finish };

  function finish(): SimResult {
    stats.simMs = q.now;
    const finalStates = new Map<number, { state: SimState; serving: boolean }>();
    for (const n of nodes.values()) finalStates.set(n.id, { state: n.state, serving: n.up && n.core !== null && n.core.serving });
    checker.final(finalStates);
    // Writes keep coming until 2 s before the end: the second half of the settle period must see commits.
    if (o.requireProgress !== false) checker.progressedAfter(o.faultMs + o.settleMs / 2);
    const versions = new Set([...nodes.values()].filter((n) => n.core !== null).map((n) => n.core!.activeConfig.version));
    if (versions.size > 1) checker.violations.push(`end: servers hold different memberships (${[...versions].map((v) => '0x' + v.toString(16)).join(', ')})`);
    if (quiet()) {
      // The layer's own state, not only the replicated log: servers that applied the same transactions hold the same state.
      const digests = [...nodes.values()].flatMap((n) => { const d = n.app?.stateDigest?.(); return d === undefined ? [] : [{ id: n.id, ...d }]; });
      const differ = digests.filter((d) => d.zxid === digests[0].zxid && d.digest !== digests[0].digest);
      if (differ.length > 0) checker.violations.push(`end: servers at zxid 0x${digests[0].zxid.toString(16)} hold different states (server ${digests[0].id} and ${differ.map((d) => d.id).join(', ')})`);
    }
    for (const p of workload.check?.() ?? []) checker.violations.push(`Q3: ${p}`);
    const { seed: _s, trace: _t, ...options } = o;
    return { seed: o.seed, options, ok: checker.violations.length === 0, violations: checker.violations, stats: { ...checker.stats, ...stats, ...workload.stats?.() }, trace };
  }
}
