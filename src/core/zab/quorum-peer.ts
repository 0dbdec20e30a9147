// One quorum server's replication state machine: fast leader election, then
// ZAB as leader or learner. Pure: inputs (votes, connections, messages,
// storage completions, the time) go in; effects come out, in the order they
// must be carried out (drain()). The real server and the simulator drive the
// same class; only their drivers differ.
//
// The state it applies is only ever committed: commits come out as `commit`
// effects in zxid order. What the log holds above the last commit is accepted
// but not known committed until a leader says so (at UPTODATE, or by COMMIT).
import { LeaderElection, type Vote } from './leader-election.js';
import { LearnerRole } from './learner-role.js';
import { LeaderRole } from './leader-role.js';
import { LogTail, type LogEntry } from './log-tail.js';
import type { Notification, PeerMessage, PeerState, StorageOp } from './messages.js';
import type { ClusterConfig, PeerContext, QuorumPeerConfig } from './peer-context.js';
import { followsInLog, hexZxid } from './zxid.js';
import { invariantFailed } from '../invariant.js';

export type { ClusterConfig, QuorumPeerConfig } from './peer-context.js';

/** What a server has on disk when it starts. */
export interface PeerDurableState {
  acceptedEpoch: number;
  currentEpoch: number;
  /** The zxid the state (snapshot) reaches: committed. */
  snapshotZxid: bigint;
  /** Logged transactions above snapshotZxid, in order (committed or not). */
  log: LogEntry[];
  /** The last membership activated here, if it ever changed from the configuration's. */
  config?: ClusterConfig;
}

export type PeerEffect =
  | { kind: 'vote'; to: number; n: Notification }
  | { kind: 'connect'; conn: number; peer: number }
  | { kind: 'send'; conn: number; msg: PeerMessage }
  | { kind: 'close'; conn: number }
  /** Carry out in order; report persisted(seq) once this and everything before it is durable. */
  | { kind: 'persist'; seq: number; op: StorageOp }
  /** Apply to the state, in order. */
  | { kind: 'commit'; zxid: bigint; payload: Uint8Array }
  | { kind: 'installSnapshot'; zxid: bigint; snapshot: Uint8Array }
  /** A server-layer message from server `from` (forwarded requests, session touches, their answers). */
  | { kind: 'app'; from: number; body: Uint8Array }
  | { kind: 'state'; state: PeerState; epoch: number; leader: number | null; serving: boolean; reason: string }
  | { kind: 'violation'; reason: string }
  /** The active membership changed: reach the new members (the storage op persists it). */
  | { kind: 'config'; config: ClusterConfig };

export class QuorumPeer implements PeerContext {
  readonly cfg: QuorumPeerConfig;
  readonly log: LogTail;
  private config: ClusterConfig;
  private voterSet: ReadonlySet<number>;
  private observerSet: ReadonlySet<number>;
  /** A membership proposed in the log and not committed yet (at most one at a time). */
  private pending: { zxid: bigint; config: ClusterConfig; voters: ReadonlySet<number> } | null = null;
  private readonly election: LeaderElection;
  private acceptedEp: number;
  private currentEp: number;
  private committed: bigint;
  private role: LeaderRole | LearnerRole | null = null;
  private state: PeerState = 'looking';
  /** The vote we answer looking servers with once out of the election, and its round. */
  private decided: { vote: Vote; round: number } | null = null;
  private out: PeerEffect[] = [];
  private nextConn = 1;
  private conns = new Set<number>();
  private persistSeq = 0;
  private durableSeq = 0;
  /** The storage operation that made the latest acceptedEpoch (or currentEpoch) durable: no promise goes out before it is. */
  private epochSeq = 0;
  private waiting: { seq: number; gen: number; fn: () => void }[] = [];
  /** Bumped on every role change: callbacks of an older role are dropped. */
  private gen = 0;

  constructor(cfg: QuorumPeerConfig, disk: PeerDurableState) {
    this.cfg = cfg;
    this.config = disk.config ?? { version: 0n, voters: cfg.voters, observers: cfg.observers };
    this.voterSet = new Set(this.config.voters);
    this.observerSet = new Set(this.config.observers);
    this.log = new LogTail(disk.snapshotZxid, disk.log, cfg.firstCounter ?? 1n);
    this.acceptedEp = disk.acceptedEpoch;
    this.currentEp = disk.currentEpoch;
    this.committed = disk.snapshotZxid;
    // A membership proposed in the log is pending until a leader says what is committed.
    for (const e of disk.log) this.notePending(e.zxid, e.payload);
    this.election = new LeaderElection({
      id: cfg.id, voters: this.voterSet, peers: this.electionPeers(), finalizeWaitMs: cfg.electionFinalizeWaitMs,
      resendMinMs: cfg.electionResendMinMs, resendMaxMs: cfg.electionResendMaxMs,
    }, (to, n) => this.out.push({ kind: 'vote', to, n: { ...n, config: this.config } }));
  }

  // ---- what the driver reads ---------------------------------------------------------

  get voters(): ReadonlySet<number> { return this.voterSet; }
  get activeConfig(): ClusterConfig { return this.config; }
  get pendingConfig(): ClusterConfig | null { return this.pending?.config ?? null; }

  get acceptedEpoch(): number { return this.acceptedEp; }
  get currentEpoch(): number { return this.currentEp; }
  get lastCommitted(): bigint { return this.committed; }
  get peerState(): PeerState { return this.state; }
  get leaderId(): number | null { return this.role instanceof LeaderRole ? this.cfg.id : this.role instanceof LearnerRole ? this.role.leader : null; }
  get electionRound(): number { return this.election.round; }
  /** True once this server's role is established (leader after NEWLEADER acks, learner after UPTODATE). */
  get serving(): boolean {
    if (this.role instanceof LeaderRole) return this.role.established;
    if (this.role instanceof LearnerRole) return this.role.phase === 'broadcast';
    return false;
  }
  get learners(): { id: number; type: string; phase: string }[] { return this.role instanceof LeaderRole ? this.role.learners() : []; }

  /** Effects produced since the last drain, in order. */
  drain(): PeerEffect[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  // ---- inputs ------------------------------------------------------------------------

  start(now: number): void {
    this.lookForLeader('started', now);
  }

  tick(now: number): void {
    if (this.state === 'looking') {
      const d = this.election.tick(now);
      if (d !== null) this.decide(d.vote, d.round, now);
      return;
    }
    this.role?.tick(now);
  }

  vote(from: number, n: Notification, now: number): void {
    // A newer membership than ours was committed while we were away: take it before counting votes.
    if (n.config !== undefined && n.config.version > this.config.version) {
      if (this.pending !== null && this.pending.zxid <= n.config.version) this.pending = null;
      this.activate({ version: n.config.version, voters: [...n.config.voters], observers: [...n.config.observers] });
    }
    if (this.state === 'looking') {
      const d = this.election.onNotification(from, n, now);
      if (d !== null) this.decide(d.vote, d.round, now);
      return;
    }
    // Out of the election: a server still looking learns whom we follow (that is how a
    // restarted server joins a running quorum).
    if (n.state === 'looking' && this.decided !== null) {
      const v = this.decided.vote;
      this.out.push({ kind: 'vote', to: from, n: { leader: v.leader, zxid: v.zxid, peerEpoch: v.peerEpoch, round: this.decided.round, state: this.state, config: this.config } });
    }
  }

  /** An id for an inbound peer connection the driver just accepted. */
  accepted(now: number): number {
    const conn = this.nextConn++;
    this.conns.add(conn);
    if (this.role instanceof LeaderRole) {
      this.role.accepted(conn, now);
    } else {
      // Not leading (yet: a learner may decide before its leader does). Closed without a word, the
      // learner tries again until its initLimit runs out.
      this.close(conn);
    }
    return conn;
  }

  connected(conn: number, now: number): void {
    if (this.role instanceof LearnerRole) this.role.connected(conn, now);
  }

  disconnected(conn: number, now: number): void {
    if (!this.conns.delete(conn)) return;
    if (this.role instanceof LeaderRole) this.role.disconnected(conn);
    else if (this.role instanceof LearnerRole) this.role.disconnected(conn, now);
  }

  message(conn: number, msg: PeerMessage, now: number): void {
    if (!this.conns.has(conn)) return;
    this.role?.message(conn, msg, now);
  }

  /** Storage operations up to `seq` are durable. */
  persisted(seq: number): void {
    if (seq <= this.durableSeq) return;
    this.durableSeq = seq;
    while (this.waiting.length > 0 && this.waiting[0].seq <= seq) {
      const w = this.waiting.shift()!;
      if (w.gen === this.gen) w.fn();
    }
  }

  /** Proposes a transaction (leader only, once established). Returns its zxid, or null. */
  propose(payload: Uint8Array, now: number): bigint | null {
    return this.role instanceof LeaderRole ? this.role.propose(payload, now) : null;
  }

  /** A server-layer message to the leader (from a synced learner); false when there is no synced leader. */
  sendToLeader(body: Uint8Array): boolean {
    return this.role instanceof LearnerRole ? this.role.sendApp(body) : false;
  }

  /** A server-layer message to learner `id` (from an established leader); false when it is not synced with us. */
  sendToLearner(id: number, body: Uint8Array): boolean {
    return this.role instanceof LeaderRole ? this.role.sendApp(id, body) : false;
  }

  /** As sendToLearner, but held until `zxid` is committed and sent right after its COMMIT (leader only). */
  sendToLearnerAfter(id: number, zxid: bigint, body: Uint8Array): void {
    if (this.role instanceof LeaderRole) this.role.sendAppAfter(id, zxid, body);
  }

  // ---- PeerContext: what the roles use ------------------------------------------------

  isKnownServer(id: number): 'participant' | 'observer' | null {
    return this.voterSet.has(id) ? 'participant' : this.observerSet.has(id) ? 'observer' : null;
  }

  pendingVotersAt(zxid: bigint): ReadonlySet<number> | null {
    return this.pending !== null && this.pending.zxid <= zxid ? this.pending.voters : null;
  }

  appendLog(zxid: bigint, payload: Uint8Array): void {
    this.log.append(zxid, payload);
    this.persist({ kind: 'append', zxid, payload });
    this.notePending(zxid, payload);
  }

  truncateLog(zxid: bigint): void {
    this.log.truncateAfter(zxid);
    this.persist({ kind: 'truncate', after: zxid });
    if (this.pending !== null && this.pending.zxid > zxid) this.pending = null;
  }

  adoptConfig(config: ClusterConfig): void {
    this.pending = null;
    if (config.version !== this.config.version) this.activate(config);
  }

  private notePending(zxid: bigint, payload: Uint8Array): void {
    const config = this.cfg.configOf?.(payload) ?? null;
    if (config !== null && zxid > this.committed) this.pending = { zxid, config: { ...config, version: zxid }, voters: new Set(config.voters) };
  }

  private electionPeers(): number[] {
    return [...this.config.voters, ...this.config.observers].filter((id) => id !== this.cfg.id);
  }

  /** A membership takes effect: persisted, handed to the driver, used by the election and the roles. */
  private activate(config: ClusterConfig): void {
    this.config = config;
    this.voterSet = new Set(config.voters);
    this.observerSet = new Set(config.observers);
    this.election.setMembers(this.voterSet, this.electionPeers());
    this.persist({ kind: 'config', config });
    this.out.push({ kind: 'config', config });
  }

  send(conn: number, msg: PeerMessage): void {
    // ACKEPOCH and LEADERINFO promise the epoch: a crash after they left must not forget it.
    if ((msg.type === 'ackEpoch' || msg.type === 'leaderInfo') && this.durableSeq < this.epochSeq) {
      invariantFailed('zab.epoch-durable-before-answer', { server: this.cfg.id, message: msg.type, acceptedEpoch: this.acceptedEp, currentEpoch: this.currentEp, durableSeq: this.durableSeq, epochSeq: this.epochSeq });
    }
    if (this.conns.has(conn)) this.out.push({ kind: 'send', conn, msg });
  }

  close(conn: number): void {
    if (this.conns.delete(conn)) this.out.push({ kind: 'close', conn });
  }

  connect(peer: number): number {
    const conn = this.nextConn++;
    this.conns.add(conn);
    this.out.push({ kind: 'connect', conn, peer });
    return conn;
  }

  persist(op: StorageOp): void {
    this.out.push({ kind: 'persist', seq: ++this.persistSeq, op });
  }

  afterDurable(fn: () => void): void {
    if (this.durableSeq >= this.persistSeq) fn();
    else this.waiting.push({ seq: this.persistSeq, gen: this.gen, fn });
  }

  setAcceptedEpoch(epoch: number): void {
    this.acceptedEp = epoch;
    this.persist({ kind: 'acceptedEpoch', epoch });
    this.epochSeq = this.persistSeq;
  }

  setCurrentEpoch(epoch: number): void {
    this.currentEp = epoch;
    this.persist({ kind: 'currentEpoch', epoch });
  }

  commitUpTo(zxid: bigint): void {
    if (zxid <= this.committed) return;
    let prev = this.committed;
    for (const e of this.log.range(this.committed, zxid)) {
      // Commits apply in log order, each right after the one before: no hole, nothing twice.
      if (!followsInLog(prev, e.zxid, this.cfg.firstCounter)) invariantFailed('zab.commit-in-order', { server: this.cfg.id, zxid: e.zxid, after: prev, committed: this.committed, upTo: zxid });
      prev = e.zxid;
      this.out.push({ kind: 'commit', zxid: e.zxid, payload: e.payload });
      if (this.pending !== null && this.pending.zxid === e.zxid) {
        const c = this.pending.config;
        this.pending = null;
        this.activate(c);
      }
    }
    this.committed = zxid;
    this.trimLog();
  }

  /** Keeps about diffWindowTxns committed entries in memory for DIFF syncs; older ones are in the state. */
  private trimLog(): void {
    this.log.trimCommitted(this.committed, this.cfg.diffWindowTxns);
  }

  installSnapshot(zxid: bigint, snapshot: Uint8Array): void {
    this.log.reset(zxid);
    this.pending = null;
    this.committed = zxid;
    this.out.push({ kind: 'installSnapshot', zxid, snapshot });
    this.persist({ kind: 'snapshot', zxid, snapshot });
  }

  leave(reason: string, now: number): void {
    this.lookForLeader(reason, now);
  }

  violation(reason: string, now: number): void {
    this.out.push({ kind: 'violation', reason });
    this.lookForLeader(`protocol violation: ${reason}`, now);
  }

  appMessage(from: number, body: Uint8Array): void {
    this.out.push({ kind: 'app', from, body });
  }

  established(role: 'leading' | 'following' | 'observing', epoch: number, leader: number): void {
    this.emitState(role, epoch, leader, true, `serving in epoch ${epoch} (last zxid ${hexZxid(this.log.last)})`);
  }

  // ---- roles -------------------------------------------------------------------------

  private lookForLeader(reason: string, now: number): void {
    this.gen++;
    this.role = null;
    for (const c of [...this.conns]) this.close(c);
    this.state = 'looking';
    this.decided = null;
    this.emitState('looking', this.currentEp, null, false, reason);
    this.election.start({ leader: this.cfg.id, zxid: this.log.last, peerEpoch: this.currentEp }, now);
  }

  private decide(vote: Vote, round: number, now: number): void {
    this.gen++;
    this.decided = { vote, round };
    if (vote.leader === this.cfg.id) {
      this.state = 'leading';
      this.role = new LeaderRole(this, now);
    } else {
      const type = this.observerSet.has(this.cfg.id) ? 'observer' : 'participant';
      this.state = type === 'participant' ? 'following' : 'observing';
      this.role = new LearnerRole(this, vote.leader, type, now);
    }
    this.emitState(this.state, this.currentEp, vote.leader, false, `elected server ${vote.leader} in round ${round}`);
  }

  private emitState(state: PeerState, epoch: number, leader: number | null, serving: boolean, reason: string): void {
    this.out.push({ kind: 'state', state, epoch, leader, serving, reason });
  }
}
