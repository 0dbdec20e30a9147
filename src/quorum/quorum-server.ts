// A replicated quorum server: the ZooKeeper layer (ServerCore) on top of the
// replication state machine (QuorumPeer: election and ZAB), both pure, driven
// here by the client port, the election and quorum ports, the transaction log
// and the epoch files. The peer's storage operations are carried out in order
// and reported durable in order; its commits are applied to the ServerCore,
// which answers clients. A server that is not in a quorum with a leader
// (looking) serves nobody.
import { takeStorageStep, type QueuedStorageOp } from '../core/zab/storage-steps.js';
import type { QuorumServerConfig } from '../config/quorum-config.js';
import type { PeerState, StorageOp } from '../core/zab/messages.js';
import { QuorumPeer, type QuorumPeerConfig } from '../core/zab/quorum-peer.js';
import { epochOf, hexZxid } from '../core/zab/zxid.js';
import type { LogEntry } from '../core/zab/log-tail.js';
import { ZK_LIMITS } from '../limits.js';
import { membershipText } from '../config/quorum-config.js';
import { observersOf, parseMembership, votersOf } from '../core/zk/membership.js';
import type { ServerCoreOptions } from '../core/zk/server-core.js';
import type { ClusterConfig } from '../core/zab/quorum-peer.js';
import { decodeLoggedTxn } from '../proto/txn-codec.js';
import { pumpPeer, type PeerIo } from './peer-pump.js';
import { ZkLayer } from './zk-layer.js';
import { readEpoch, readMembership, writeEpoch, writeMembership } from '../io/epoch-files.js';
import { ElectionPort, QuorumPort, type PeerAddress } from '../io/peer-transport.js';
import { StorageError } from '../io/txn-log.js';
import { ServerBase, nowMs, type ServerOptions } from './server-base.js';
import type { ServerSnapshotForWords } from './four-letter-words.js';

export type QuorumServerOptions = ServerOptions;

export class QuorumServer extends ServerBase {
  private peer!: QuorumPeer;
  private election!: ElectionPort;
  private quorumPort!: QuorumPort;
  private state: PeerState = 'looking';
  private serving = false;
  private storageQueue: QueuedStorageOp[] = [];
  private storageRunning = false;
  private pumping = false;
  private readonly addresses = new Map<number, { quorum: PeerAddress; election: PeerAddress }>();
  /** /zookeeper/config's text: the configuration's servers, or the last membership activated here. */
  private membershipText = '';
  /** performance.now() when the running election began (null: none running), for election_time. */
  private electionStartedAt: number | null = null;
  /** performance.now() when this server became an established leader (null: it is not one). */
  private leadingSince: number | null = null;
  /** ZooKeeper's looking_count, commit_count and proposal_count, and the sizes of what was proposed. */
  private readonly counts = { looking: 0, commits: 0, proposals: 0, proposalBytes: { last: -1, min: -1, max: -1 } };

  private constructor(opts: QuorumServerOptions) {
    super(opts);
    for (const s of opts.config.servers) {
      this.addresses.set(s.id, { quorum: { host: s.host, port: s.peerPort }, election: { host: s.host, port: s.electionPort } });
    }
  }

  static async start(opts: QuorumServerOptions): Promise<QuorumServer> {
    const s = new QuorumServer(opts);
    await s.recover();
    await s.listenPeers();
    await s.listenClients(opts.tickIntervalMs ?? Math.max(10, Math.min(50, Math.floor(opts.config.tickMs / 10))));
    opts.logger.info({ role: 'looking', port: s.port, zxid: s.core.lastZxid, servers: opts.config.servers.length }, 'quorum server started; looking for a leader');
    s.peer.start(nowMs());
    s.pump();
    return s;
  }

  /** What this server is now, for status and tests. */
  get peerState(): PeerState { return this.state; }
  get isServing(): boolean { return this.serving; }
  get leaderId(): number | null { return this.peer.leaderId; }
  get epoch(): number { return this.peer.currentEpoch; }
  get lastLoggedZxid(): bigint { return this.peer.log.last; }
  get learners(): { id: number; type: string; phase: string }[] { return this.peer.learners; }

  protected mode(): ServerSnapshotForWords['mode'] {
    switch (this.state) {
      case 'leading': return this.serving ? 'leader' : 'looking';
      case 'following': return this.serving ? 'follower' : 'looking';
      case 'observing': return this.serving ? 'observer' : 'looking';
      default: return 'looking';
    }
  }

  protected override quorumInfo(): ServerSnapshotForWords['quorum'] {
    const leader = this.serving ? this.peer.leaderId : null;
    const members = [...(parseMembershipOrNull(this.membershipText)?.members.values() ?? [])].sort((a, b) => a.id - b.id);
    const phase = this.serving ? 'broadcast' : this.state === 'looking' ? 'election' : 'synchronization';
    return {
      serverId: this.cfg.serverId, epoch: this.peer.currentEpoch, leader, lastLoggedZxid: this.peer.log.last, learners: this.peer.learners,
      peerState: `${this.state} - ${phase}`,
      voterIds: [...this.peer.voters],
      leaderUptimeMs: this.leadingSince === null ? null : performance.now() - this.leadingSince,
      proposalBytes: { ...this.counts.proposalBytes },
      lookingCount: this.counts.looking, commitCount: this.counts.commits, proposalCount: this.counts.proposals,
      members: members.map((m) => ({ id: m.id, host: m.host, peerPort: m.peerPort, electionPort: m.electionPort, role: m.role, clientHost: m.clientHost, clientPort: m.clientPort })),
      leaderHost: leader === null ? null : this.addresses.get(leader)?.quorum.host ?? null,
    };
  }

  protected override extraCoreOptions(): Partial<ServerCoreOptions> {
    return {
      reconfigEnabled: this.cfg.reconfigEnabled,
      syncedServers: () => new Set([this.cfg.serverId, ...this.peer.learners.filter((l) => l.phase === 'synced').map((l) => l.id)]),
    };
  }

  private peerConfig(): QuorumPeerConfig {
    const cfg = this.cfg;
    return {
      id: cfg.serverId,
      voters: cfg.servers.filter((s) => s.role === 'participant').map((s) => s.id),
      observers: cfg.servers.filter((s) => s.role === 'observer').map((s) => s.id),
      clusterId: cfg.clusterId,
      tickMs: cfg.tickMs,
      initLimit: cfg.initLimitTicks,
      syncLimit: cfg.syncLimitTicks,
      electionFinalizeWaitMs: ZK_LIMITS.election_finalize_wait_ms,
      electionResendMinMs: ZK_LIMITS.election_resend_min_ms,
      electionResendMaxMs: ZK_LIMITS.election_resend_max_ms,
      diffWindowTxns: ZK_LIMITS.diff_window_txns,
      configOf: this.cfg.reconfigEnabled ? membershipOfTxn : undefined,
    };
  }

  private async recover(): Promise<void> {
    const logger = this.opts.logger;
    const t0 = performance.now();
    const { tree, snapshotZxid } = await this.openStorage();
    // The tree holds only what was committed; what the log holds after it is accepted, and is
    // applied when a leader says it is committed.
    const log: LogEntry[] = [];
    for await (const rec of this.log.read(tree.lastZxid)) log.push({ zxid: rec.zxid, payload: rec.payload });
    const last = log.at(-1)?.zxid ?? tree.lastZxid;
    const dir = this.dataDir.dir;
    // As ZooKeeper: a missing currentEpoch is the epoch of the last logged transaction.
    const currentEpoch = (await readEpoch(dir, 'currentEpoch')) ?? epochOf(last);
    const acceptedEpoch = Math.max(currentEpoch, (await readEpoch(dir, 'acceptedEpoch')) ?? currentEpoch);
    this.core.setRole('down', nowMs());
    const stored = await readMembership(dir);
    const config = stored ?? undefined;
    this.membershipText = stored?.text ?? membershipText(this.cfg.servers, 0n);
    this.learnAddresses(this.membershipText);
    this.showMembership();
    this.peer = new QuorumPeer(this.peerConfig(), { acceptedEpoch, currentEpoch, snapshotZxid: tree.lastZxid, log, config });
    this.recoveredIn(performance.now() - t0);
    logger.info({
      zxid: hexZxid(last), snapshotZxid, committedZxid: hexZxid(tree.lastZxid), logged: log.length, acceptedEpoch, currentEpoch,
      nodes: tree.nodes.size, sessions: tree.sessions.size, cut: this.log.recovery.cut,
    }, 'recovered from disk');
  }

  /** /zookeeper/config shows the membership, as ZooKeeper's (version 0: the static configuration). */
  private showMembership(): void {
    const node = this.core.tree.get('/zookeeper/config');
    const inTree = node?.data?.toString('utf8') ?? '';
    // A committed reconfig in the tree (from a snapshot) is newer than what we started from.
    if ((parseMembershipOrNull(inTree)?.version ?? -1n) < (parseMembershipOrNull(this.membershipText)?.version ?? 0n)) {
      this.core.tree.setConfigData(Buffer.from(this.membershipText));
    }
  }

  /** Where each member is, from a membership text; the election port calls the new ones. */
  private learnAddresses(text: string): void {
    const m = parseMembershipOrNull(text);
    if (m === null) return;
    for (const s of m.members.values()) {
      this.addresses.set(s.id, { quorum: { host: s.host, port: s.peerPort }, election: { host: s.host, port: s.electionPort } });
    }
    if (this.election !== undefined) {
      const peers = new Map<number, PeerAddress>();
      for (const [id, a] of this.addresses) if (id !== this.cfg.serverId) peers.set(id, a.election);
      this.election.setPeers(peers);
    }
  }

  /** A certificate rotation (SIGHUP): the peer ports take the new one for new connections. TLS cannot be turned on or off this way. */
  reloadPeerTls(t: QuorumServerConfig['peerTls']): void {
    if ((t === null) !== (this.cfg.peerTls === null)) throw new Error('quorum.tls was turned on or off: that needs a restart');
    if (t === null) return;
    this.cfg.peerTls = t;
    this.election.setTls(t);
    this.quorumPort.setTls(t);
  }

  private async listenPeers(): Promise<void> {
    const me = this.addresses.get(this.cfg.serverId);
    if (me === undefined) throw new Error(`server ${this.cfg.serverId} is not in the configuration's server list`);
    const electionPeers = new Map<number, PeerAddress>();
    for (const [id, a] of this.addresses) if (id !== this.cfg.serverId) electionPeers.set(id, a.election);
    this.election = new ElectionPort({
      id: this.cfg.serverId, clusterId: this.cfg.clusterId, listen: me.election, peers: electionPeers, logger: this.opts.logger,
      acceptNonMembers: this.cfg.reconfigEnabled,
      tls: this.cfg.peerTls,
      onNotification: (from, n) => { this.peer.vote(from, n, nowMs()); this.pump(); },
    });
    this.quorumPort = new QuorumPort({
      listen: me.quorum, logger: this.opts.logger, frameBytesMax: ZK_LIMITS.peer_frame_bytes_max, unsentBytesMax: ZK_LIMITS.peer_unsent_bytes_max,
      tls: this.cfg.peerTls, acceptNonMembers: this.cfg.reconfigEnabled,
      memberHosts: () => [...this.addresses.entries()].filter(([id]) => id !== this.cfg.serverId).map(([, a]) => a.quorum.host),
    }, {
      accepted: () => { const conn = this.peer.accepted(nowMs()); this.pumpSoon(); return conn; },
      connected: (conn) => { this.peer.connected(conn, nowMs()); this.pump(); },
      message: (conn, msg) => {
        if (this.trace !== null && (msg.type === 'proposal' || msg.type === 'commit' || msg.type === 'ack')) this.trace.mark(msg.type, msg.zxid, conn);
        this.peer.message(conn, msg, nowMs());
      },
      flush: () => this.pump(),
      closed: (conn) => { this.peer.disconnected(conn, nowMs()); this.pump(); },
    });
    await this.election.listen();
    await this.quorumPort.listen();
  }

  private pumpSoon(): void {
    queueMicrotask(() => this.pump());
  }

  protected onTick(now: number): void {
    this.peer.tick(now);
  }

  /** Moves outputs between the two cores and out to the world until both are quiet. */
  protected pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      pumpPeer(this.peer, this.layer, this.peerIo, nowMs);
      // Storage starts once every effect of this turn is out: a small durable write may run right
      // here on the event loop (InlineWritePolicy), and the proposals, acks and commits queued
      // above must not wait behind it (a leader's proposal then travels while it writes its own copy).
      if (this.storageQueue.length > 0 && !this.storageRunning) {
        this.quorumPort.sendHeld();
        void this.runStorage();
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The ZooKeeper layer on the peer, as the simulator runs it too; this server's part is its ports, logs and counts. */
  private readonly layer = new ZkLayer({
    core: () => this.core,
    replaceCore: (tree, zxid) => {
      this.core = this.makeCore(tree);
      this.showMembership();
      this.opts.logger.info({ zxid: hexZxid(zxid), nodes: tree.nodes.size }, 'installed the leader\'s snapshot');
      return this.core;
    },
    deliver: (out) => this.clientPort.deliver(out),
    closeClient: (connId, reason) => this.clientPort.closeConnection(connId, reason),
    malformed: (from, err) => this.opts.logger.warn({ peer: from, err: err.message }, 'malformed message from a quorum peer ignored'),
    proposed: (zxid, proposed, bytes) => {
      this.proposed(bytes);
      if (proposed !== zxid) this.opts.logger.warn({ zxid: hexZxid(zxid), proposed: proposed === null ? null : hexZxid(proposed) }, 'a transaction was not proposed: this server is no longer an established leader');
    },
    committed: () => {
      if (this.state === 'leading') this.counts.commits++;
      this.txnsSinceSnapshot++;
      this.maybeSnapshot();
    },
    mark: this.trace === null ? undefined : (what, zxid) => this.trace!.mark(what, zxid),
  });

  private readonly peerIo: PeerIo = {
    vote: (to, n) => this.election.send(to, n),
    connect: (conn, peer) => {
      const a = this.addresses.get(peer);
      if (a === undefined) { this.peer.disconnected(conn, nowMs()); return; }
      this.quorumPort.connect(conn, a.quorum);
    },
    send: (conn, msg) => this.quorumPort.send(conn, msg),
    close: (conn) => this.quorumPort.close(conn),
    persist: (seq, op) => this.persist(seq, op),
    stateChanged: (e) => {
      this.timeRoles(e.state, e.serving);
      this.state = e.state;
      this.serving = e.serving;
      const level = e.serving ? 'info' : 'warn';
      this.opts.logger[level]({ role: e.state, epoch: e.epoch, leader: e.leader, serving: e.serving, zxid: hexZxid(this.peer.log.last) }, e.reason);
    },
    configChanged: (config) => {
      // The committed reconfig is in the tree by now (its commit came first): addresses from there.
      const text = this.core.tree.get('/zookeeper/config')?.data?.toString('utf8') ?? '';
      if ((parseMembershipOrNull(text)?.version ?? -1n) === config.version) this.membershipText = text;
      this.learnAddresses(this.membershipText);
      this.opts.logger.info({ version: hexZxid(config.version), voters: config.voters, observers: config.observers }, 'membership changed');
    },
    violation: (reason) => this.opts.logger.error({ role: this.state, epoch: this.peer.currentEpoch }, `peer protocol violation: ${reason}`),
  };

  private proposed(bytes: number): void {
    const c = this.counts;
    c.proposals++;
    c.proposalBytes.last = bytes;
    if (c.proposalBytes.min < 0 || bytes < c.proposalBytes.min) c.proposalBytes.min = bytes;
    if (bytes > c.proposalBytes.max) c.proposalBytes.max = bytes;
  }

  /** election_time, looking_count, uptime and leader_uptime, from the peer's state changes. */
  private timeRoles(state: PeerState, serving: boolean): void {
    const t = performance.now();
    if (state === 'looking') {
      if (this.electionStartedAt === null) this.counts.looking++;
      this.electionStartedAt ??= t;
    } else if (this.electionStartedAt !== null) {
      this.metrics?.electionTime.observe(t - this.electionStartedAt);
      this.electionStartedAt = null;
    }
    if (serving && !this.serving) this.servingSince = t;
    this.leadingSince = state === 'leading' && serving ? (this.leadingSince ?? t) : null;
  }

  /** Storage operations, carried out one after another and reported durable in order (started at the end of pump()). */
  private persist(seq: number, op: StorageOp): void {
    this.storageQueue.push({ seq, op });
  }

  private async runStorage(): Promise<void> {
    this.storageRunning = true;
    try {
      for (let step = takeStorageStep(this.storageQueue); step !== null && !this.failed && !this.stopped; step = takeStorageStep(this.storageQueue)) {
        if (step.appends) {
          let lastZxid = 0n;
          for (const { op } of step.ops) if (op.kind === 'append') { this.log.append(op.zxid, Buffer.from(op.payload)); lastZxid = op.zxid; }
          await this.log.sync();
          this.trace?.mark('dur', lastZxid);
          this.durable(step.durableThrough);
          continue;
        }
        const op = step.ops[0].op;
        await this.log.sync(); // belt and braces: the steps before this one are synced already
        switch (op.kind) {
          case 'acceptedEpoch': case 'currentEpoch': await writeEpoch(this.dataDir.dir, op.kind, op.epoch); break;
          case 'truncate': await this.log.truncateAfter(op.after); break;
          case 'snapshot':
            await this.snaps.write(op.zxid, Buffer.from(op.snapshot));
            this.lastSnapshot = { zxid: op.zxid, timestampSec: Math.floor(Date.now() / 1000) };
            await this.log.discardAll(op.zxid);
            break;
          case 'config': await writeMembership(this.dataDir.dir, { ...op.config, text: this.membershipText }); break;
          case 'append': break;
        }
        this.durable(step.durableThrough);
      }
    } catch (err) {
      this.storageFailed(err instanceof StorageError ? err : new StorageError(`quorum storage: ${(err as Error).message}`, 'QUORATE_QUORUM_STORAGE'));
    } finally {
      this.storageRunning = false;
    }
  }

  private durable(seq: number): void {
    if (this.stopped) return;
    this.peer.persisted(seq);
    this.pump();
  }

  protected override async stopExtra(): Promise<void> {
    await this.election?.close();
    await this.quorumPort?.stop();
  }
}

function parseMembershipOrNull(text: string): ReturnType<typeof parseMembership> {
  try { return parseMembership(text); } catch { return null; }
}

/** The membership a transaction carries: a reconfig's setData of /zookeeper/config. */
function membershipOfTxn(payload: Uint8Array): ClusterConfig | null {
  const t = decodeLoggedTxn(Buffer.from(payload));
  if (t.txn.type !== 'setData' || t.txn.path !== '/zookeeper/config' || t.txn.data === null) return null;
  const m = parseMembershipOrNull(t.txn.data.toString('utf8'));
  return m === null ? null : { version: m.version, voters: votersOf(m), observers: observersOf(m) };
}
