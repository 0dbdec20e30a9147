// The leader's side of ZAB, after the election named this server:
//  discovery  gather FOLLOWERINFO from a quorum, take epoch = max(acceptedEpoch) + 1,
//             persist it as our acceptedEpoch, send LEADERINFO; gather ACKEPOCH from a
//             quorum (a learner ahead of us means we must not lead: back to looking);
//  sync       persist currentEpoch; bring each learner to our log (DIFF, TRUNC or SNAP,
//             then our entries), then NEWLEADER; once a quorum (us included) has acked
//             NEWLEADER, our whole log is committed (no counting of acks for entries of
//             older epochs) and UPTODATE goes out;
//  broadcast  propose, commit once a quorum has the proposal durable, in zxid order.
// A leader that has not heard from a quorum for syncLimit ticks steps down.
import { isQuorum, type PeerContext } from './peer-context.js';
import { PEER_PROTOCOL_VERSION, type LearnerType, type PeerMessage } from './messages.js';
import { COUNTER_MAX, counterOf, followsInLog, hexZxid, makeZxid } from './zxid.js';
import { invariantFailed } from '../invariant.js';

type LinkPhase = 'new' | 'info' | 'epochAcked' | 'syncing' | 'synced';

interface LearnerLink {
  conn: number;
  id: number;
  type: LearnerType;
  phase: LinkPhase;
  acceptedEpoch: number;
  lastZxid: bigint;
  lastHeardMs: number;
  openedMs: number;
  /** The last zxid the sync sent it before NEWLEADER: its ACK of NEWLEADER says it has all of them durable. */
  syncedThrough: bigint;
}

export type LeaderPhase = 'discovery' | 'sync' | 'broadcast';

export class LeaderRole {
  phase: LeaderPhase = 'discovery';
  epoch: number | null = null;
  /** Our acceptedEpoch = epoch is durable: LEADERINFO may go out. */
  private epochDurable = false;
  private links = new Map<number, LearnerLink>();
  private infoFrom = new Map<number, number>();
  private ackEpochFrom = new Set<number>();
  private newLeaderAcks = new Set<number>();
  /** Proposals not yet committed, in zxid order, with the voters that have them durable. */
  private outstanding = new Map<bigint, Set<number>>();
  private lastProposed = 0n;
  /** Server-layer messages held until a zxid commits, then sent right after its COMMIT. */
  private heldApp: { id: number; zxid: bigint; body: Uint8Array }[] = [];
  private readonly deadline: number;
  private nextPingMs = 0;

  constructor(private readonly ctx: PeerContext, now: number) {
    const { cfg } = ctx;
    this.deadline = now + cfg.initLimit * cfg.tickMs;
    this.infoFrom.set(cfg.id, ctx.acceptedEpoch);
  }

  get newLeaderZxid(): bigint { return makeZxid(this.epoch ?? 0, 0); }
  get established(): boolean { return this.phase === 'broadcast'; }

  /** Voters (us included) we heard from within syncLimit, among those synced with us. */
  syncedFollowers(now: number): number[] {
    const limit = this.ctx.cfg.syncLimit * this.ctx.cfg.tickMs;
    const out: number[] = [];
    for (const l of this.links.values()) if (l.phase === 'synced' && now - l.lastHeardMs <= limit) out.push(l.id);
    return out;
  }

  accepted(conn: number, now: number): void {
    this.links.set(conn, { conn, id: -1, type: 'participant', phase: 'new', acceptedEpoch: 0, lastZxid: 0n, lastHeardMs: now, openedMs: now, syncedThrough: 0n });
  }

  disconnected(conn: number): void {
    this.links.delete(conn);
  }

  message(conn: number, msg: PeerMessage, now: number): void {
    const link = this.links.get(conn);
    if (link === undefined) return;
    link.lastHeardMs = now;
    switch (msg.type) {
      case 'followerInfo': return this.onFollowerInfo(link, msg, now);
      case 'ackEpoch': return this.onAckEpoch(link, msg.currentEpoch, msg.lastZxid, now);
      case 'ack': return this.onAck(link, msg.zxid, now);
      case 'ping': return;
      case 'app':
        if (link.phase !== 'synced') return this.refuse(link, 'a request before the learner is synced');
        this.ctx.appMessage(link.id, msg.body);
        return;
      default: return this.refuse(link, `unexpected ${msg.type} from a learner`);
    }
  }

  private refuse(link: LearnerLink, reason: string): void {
    this.ctx.send(link.conn, { type: 'refused', reason });
    this.ctx.close(link.conn);
    this.links.delete(link.conn);
  }

  private onFollowerInfo(link: LearnerLink, msg: Extract<PeerMessage, { type: 'followerInfo' }>, now: number): void {
    const { ctx } = this;
    if (link.phase !== 'new') return this.refuse(link, 'FOLLOWERINFO sent twice');
    if (msg.protocolVersion !== PEER_PROTOCOL_VERSION) return this.refuse(link, `peer protocol version ${msg.protocolVersion}, this leader speaks ${PEER_PROTOCOL_VERSION}`);
    if (msg.clusterId !== ctx.cfg.clusterId) return this.refuse(link, `cluster "${msg.clusterId}" is not this leader's cluster "${ctx.cfg.clusterId}"`);
    const known = ctx.isKnownServer(msg.serverId);
    // Outside the membership: refused, unless the membership can change (then it syncs, without a
    // vote, so that it can be added).
    if ((known === null && ctx.cfg.configOf === undefined) || msg.serverId === ctx.cfg.id) return this.refuse(link, `server ${msg.serverId} is not a member of this quorum`);
    if (known !== null && known !== msg.learnerType) return this.refuse(link, `server ${msg.serverId} is configured as a ${known}, not a ${msg.learnerType}`);
    for (const other of this.links.values()) {
      // A learner that reconnects replaces its old connection (which may not have timed out yet).
      if (other !== link && other.id === msg.serverId) { ctx.close(other.conn); this.links.delete(other.conn); }
    }
    Object.assign(link, { id: msg.serverId, type: msg.learnerType, phase: 'info', acceptedEpoch: msg.acceptedEpoch, lastZxid: msg.lastZxid, openedMs: now });
    if (this.epoch !== null) {
      // Late: the epoch is decided (and goes out to it once durable, if it is not yet).
      if (this.epochDurable) ctx.send(link.conn, { type: 'leaderInfo', epoch: this.epoch, protocolVersion: PEER_PROTOCOL_VERSION });
      return;
    }
    this.infoFrom.set(msg.serverId, msg.acceptedEpoch);
    if (!this.hasQuorum(this.infoFrom.keys())) return;
    // A quorum has told us its accepted epoch: ours is above all of them.
    let max = 0;
    for (const e of this.infoFrom.values()) max = Math.max(max, e);
    const epoch = max + 1;
    this.epoch = epoch;
    ctx.setAcceptedEpoch(epoch);
    ctx.afterDurable(() => {
      this.epochDurable = true;
      for (const l of this.links.values()) {
        if (l.phase === 'info') ctx.send(l.conn, { type: 'leaderInfo', epoch, protocolVersion: PEER_PROTOCOL_VERSION });
      }
      this.onAckEpochOf(ctx.cfg.id, now);
    });
  }

  private onAckEpoch(link: LearnerLink, currentEpoch: number, lastZxid: bigint, now: number): void {
    const { ctx } = this;
    if (link.phase !== 'info' || this.epoch === null) return this.refuse(link, 'ACKEPOCH out of turn');
    if (currentEpoch > ctx.currentEpoch || (currentEpoch === ctx.currentEpoch && lastZxid > ctx.log.last)) {
      // ZooKeeper throws here too: the election picked the wrong server, look again.
      ctx.leave(`server ${link.id} is ahead of this leader (epoch ${currentEpoch}, zxid ${hexZxid(lastZxid)} vs epoch ${ctx.currentEpoch}, zxid ${hexZxid(ctx.log.last)})`, now);
      return;
    }
    link.phase = 'epochAcked';
    link.lastZxid = lastZxid;
    if (this.phase === 'discovery') {
      this.onAckEpochOf(link.id, now);
    } else {
      this.syncLearner(link);
    }
  }

  private onAckEpochOf(id: number, now: number): void {
    const { ctx } = this;
    this.ackEpochFrom.add(id);
    if (this.phase !== 'discovery' || !this.ackEpochFrom.has(ctx.cfg.id) || !this.hasQuorum(this.ackEpochFrom)) return;
    this.phase = 'sync';
    const epoch = this.epoch!;
    ctx.setCurrentEpoch(epoch);
    ctx.afterDurable(() => this.onNewLeaderAck(ctx.cfg.id, now));
    for (const l of this.links.values()) if (l.phase === 'epochAcked') this.syncLearner(l);
  }

  /** Queues what brings `link` to our log, then NEWLEADER; from here it gets every proposal and commit. */
  private syncLearner(link: LearnerLink): void {
    const { ctx } = this;
    const log = ctx.log;
    const plan = log.syncPlan(link.lastZxid);
    let from: bigint;
    if (plan.kind === 'snap') {
      const c = ctx.activeConfig;
      ctx.send(link.conn, { type: 'snap', zxid: ctx.lastCommitted, config: { version: c.version, voters: [...c.voters], observers: [...c.observers] } });
      from = ctx.lastCommitted;
    } else if (plan.kind === 'trunc') {
      ctx.send(link.conn, { type: 'trunc', zxid: plan.to });
      from = plan.to;
    } else {
      ctx.send(link.conn, { type: 'diff', zxid: log.last });
      from = plan.from;
    }
    for (const e of log.range(from)) ctx.send(link.conn, { type: 'proposal', zxid: e.zxid, payload: e.payload });
    ctx.send(link.conn, { type: 'newLeader', zxid: this.newLeaderZxid });
    link.phase = 'syncing';
    link.syncedThrough = log.last;
  }

  private onAck(link: LearnerLink, zxid: bigint, now: number): void {
    if (link.phase === 'syncing') {
      if (zxid !== this.newLeaderZxid) return this.refuse(link, `ACK of ${hexZxid(zxid)} before NEWLEADER's`);
      link.phase = 'synced';
      if (this.phase === 'broadcast') {
        this.ctx.send(link.conn, { type: 'upToDate', committed: this.ctx.lastCommitted });
        // The sync carried the proposals still outstanding, and a learner acks those only through
        // NEWLEADER: count it for each, or one that was waiting for this learner waits forever
        // (and every later proposal with it), as seen when a follower rejoined while the other
        // was cut off.
        if (link.type === 'participant') {
          for (const [zxid, acks] of this.outstanding) if (zxid <= link.syncedThrough) acks.add(link.id);
          this.tryCommit();
        }
      } else this.onNewLeaderAck(link.id, now);
      return;
    }
    if (link.phase !== 'synced') return this.refuse(link, `ACK of ${hexZxid(zxid)} out of turn`);
    if (link.type !== 'participant') return;
    const acks = this.outstanding.get(zxid);
    if (acks === undefined) return; // already committed
    acks.add(link.id);
    this.tryCommit();
  }

  private onNewLeaderAck(id: number, now: number): void {
    const { ctx } = this;
    this.newLeaderAcks.add(id);
    if (this.phase !== 'sync' || !this.newLeaderAcks.has(ctx.cfg.id) || !this.hasQuorum(this.newLeaderAcks)) return;
    // A quorum has our log durable and our epoch as current: all of it is committed.
    this.phase = 'broadcast';
    this.lastProposed = makeZxid(this.epoch!, (ctx.cfg.firstCounter ?? 1n) - 1n);
    ctx.commitUpTo(ctx.log.last);
    for (const l of this.links.values()) if (l.phase === 'synced') ctx.send(l.conn, { type: 'upToDate', committed: ctx.lastCommitted });
    this.nextPingMs = now;
    ctx.established('leading', this.epoch!, ctx.cfg.id);
  }

  /**
   * Proposes a transaction; returns its zxid, or null when this leader is not serving (not
   * established yet) or must step down (the counter is exhausted: ZOOKEEPER-1277).
   */
  propose(payload: Uint8Array, now: number): bigint | null {
    const { ctx } = this;
    if (this.phase !== 'broadcast') return null;
    const config = ctx.cfg.configOf?.(payload) ?? null;
    if (config !== null && !this.canPropose(config)) return null;
    if (counterOf(this.lastProposed) >= COUNTER_MAX) {
      ctx.leave(`zxid counter of epoch ${this.epoch} exhausted: a new election starts a new epoch`, now);
      return null;
    }
    const zxid = this.lastProposed + 1n;
    // A zxid is never handed out twice: the next one is above everything in our log.
    if (zxid <= ctx.log.last) invariantFailed('zab.zxid-never-reused', { leader: ctx.cfg.id, epoch: this.epoch, zxid, logLast: ctx.log.last });
    this.lastProposed = zxid;
    ctx.appendLog(zxid, payload);
    const acks = new Set<number>();
    this.outstanding.set(zxid, acks);
    ctx.afterDurable(() => { acks.add(ctx.cfg.id); this.tryCommit(); });
    for (const l of this.links.values()) {
      if ((l.phase === 'syncing' || l.phase === 'synced') && l.type === 'participant') ctx.send(l.conn, { type: 'proposal', zxid, payload });
    }
    return zxid;
  }

  /**
   * Whether `ids` hold a quorum of the active voters and, while a new membership sits in our log
   * uncommitted, of its voters too: establishing this epoch commits our whole log, that membership
   * included, so both must have promised the epoch and taken the log.
   */
  private hasQuorum(ids: Iterable<number>): boolean {
    const { ctx } = this;
    const have = new Set(ids);
    const count = (voters: ReadonlySet<number>) => [...voters].filter((v) => have.has(v)).length;
    if (!isQuorum(count(ctx.voters), ctx.voters.size)) return false;
    const pending = ctx.pendingVotersAt(ctx.log.last);
    return pending === null || isQuorum(count(pending), pending.size);
  }

  /**
   * A new membership may be proposed only when none is pending and a quorum of its voters is here
   * and in sync (ZooKeeper answers NEWCONFIGNOQUORUM otherwise): it could not commit without them.
   */
  canPropose(config: { voters: readonly number[] }): boolean {
    const { ctx } = this;
    if (ctx.pendingVotersAt(this.lastProposed) !== null) return false;
    const synced = new Set(this.learners().filter((l) => l.phase === 'synced').map((l) => l.id));
    synced.add(ctx.cfg.id);
    return isQuorum(config.voters.filter((id) => synced.has(id)).length, config.voters.length);
  }

  /** Commits, in zxid order, every proposal a quorum of voters has durable (a quorum of both memberships while one is pending). */
  private tryCommit(): void {
    const { ctx } = this;
    const quorumOf = (voters: ReadonlySet<number>, acks: Set<number>) => {
      let n = 0;
      for (const id of acks) if (voters.has(id)) n++;
      return isQuorum(n, voters.size);
    };
    for (const [zxid, acks] of this.outstanding) {
      if (!quorumOf(ctx.voters, acks)) return;
      const pending = ctx.pendingVotersAt(zxid);
      if (pending !== null && !quorumOf(pending, acks)) return;
      // Commits go in zxid order, each right after the one before it in the log.
      if (!followsInLog(ctx.lastCommitted, zxid, ctx.cfg.firstCounter)) invariantFailed('zab.commit-in-order', { leader: ctx.cfg.id, zxid, lastCommitted: ctx.lastCommitted, outstanding: this.outstanding.size });
      this.outstanding.delete(zxid);
      const payload = ctx.log.get(zxid)!.payload;
      ctx.commitUpTo(zxid);
      for (const l of this.links.values()) {
        if (l.phase !== 'syncing' && l.phase !== 'synced') continue;
        ctx.send(l.conn, l.type === 'participant' ? { type: 'commit', zxid } : { type: 'inform', zxid, payload });
      }
      if (this.heldApp.length > 0 && this.heldApp[0].zxid <= zxid) {
        const due = this.heldApp.filter((h) => h.zxid <= zxid);
        this.heldApp = this.heldApp.filter((h) => h.zxid > zxid);
        for (const h of due) this.sendApp(h.id, h.body);
      }
    }
  }

  tick(now: number): void {
    const { ctx } = this;
    const { cfg } = ctx;
    if (this.phase !== 'broadcast') {
      if (now > this.deadline) ctx.leave(`no quorum of learners synced within initLimit (${cfg.initLimit} ticks) for epoch ${this.epoch ?? '?'}`, now);
      return;
    }
    const synced = this.syncedFollowers(now).filter((id) => ctx.voters.has(id));
    if (!ctx.voters.has(ctx.cfg.id)) {
      ctx.leave(`this server is no longer a voter (membership version 0x${ctx.activeConfig.version.toString(16)}): stepping down`, now);
      return;
    }
    if (!isQuorum(synced.length + 1, ctx.voters.size)) {
      ctx.leave(`lost the quorum: heard from ${synced.length} of ${ctx.voters.size - 1} followers within syncLimit (${cfg.syncLimit} ticks)`, now);
      return;
    }
    for (const l of [...this.links.values()]) {
      // A learner that does not finish syncing within initLimit, or goes silent, is dropped.
      const stuck = l.phase !== 'synced' && now - l.openedMs > cfg.initLimit * cfg.tickMs;
      const silent = now - l.lastHeardMs > cfg.syncLimit * cfg.tickMs;
      if (stuck || silent) { ctx.close(l.conn); this.links.delete(l.conn); }
    }
    if (now >= this.nextPingMs) {
      this.nextPingMs = now + cfg.tickMs / 2;
      for (const l of this.links.values()) if (l.phase === 'synced' || l.phase === 'syncing') ctx.send(l.conn, { type: 'ping' });
    }
  }

  /**
   * Sends a server-layer message to learner `id` right after the COMMIT of `zxid` (at once if that
   * is committed): the learner handles it with exactly what was committed up to there applied (an
   * answer to a sync, so that a read queued behind it sees no later write).
   */
  sendAppAfter(id: number, zxid: bigint, body: Uint8Array): void {
    if (zxid <= this.ctx.lastCommitted) this.sendApp(id, body);
    else this.heldApp.push({ id, zxid, body });
  }

  /** Sends a server-layer message to learner `id` if it is synced with us; false otherwise. */
  sendApp(id: number, body: Uint8Array): boolean {
    for (const l of this.links.values()) {
      if (l.id === id && l.phase === 'synced') { this.ctx.send(l.conn, { type: 'app', body }); return true; }
    }
    return false;
  }

  /** For status: the learners and where each stands. */
  learners(): { id: number; type: LearnerType; phase: LinkPhase }[] {
    return [...this.links.values()].filter((l) => l.id >= 0).map((l) => ({ id: l.id, type: l.type, phase: l.phase }));
  }
}
