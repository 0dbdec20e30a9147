// A follower's or observer's side of ZAB: connect to the elected leader, send
// FOLLOWERINFO; accept its epoch (persisting acceptedEpoch first) and answer
// ACKEPOCH; take the sync (TRUNC never below what we committed), and on
// NEWLEADER make everything durable, then persist currentEpoch, and only
// then ACK (ZOOKEEPER-3911, -4394, -4646, -4785); UPTODATE commits what the
// sync brought. Then log and ACK proposals, apply commits. A leader silent
// for syncLimit ticks, or a sync not done within initLimit, sends us back to
// looking.
import type { PeerContext } from './peer-context.js';
import { PEER_PROTOCOL_VERSION, type LearnerType, type PeerMessage } from './messages.js';
import { epochOf, followsInLog, hexZxid } from './zxid.js';

export type LearnerPhase = 'connecting' | 'info' | 'sync' | 'broadcast';

export class LearnerRole {
  phase: LearnerPhase = 'connecting';
  epoch: number | null = null;
  conn: number;
  private newLeaderSeen = false;
  /** Highest COMMIT seen before UPTODATE. */
  private commitMark = 0n;
  private lastHeardMs: number;
  private readonly deadline: number;
  private retryAt: number | null = null;

  constructor(private readonly ctx: PeerContext, readonly leader: number, readonly type: LearnerType, now: number) {
    this.deadline = now + ctx.cfg.initLimit * ctx.cfg.tickMs;
    this.lastHeardMs = now;
    this.conn = ctx.connect(leader);
  }

  connected(conn: number, now: number): void {
    if (conn !== this.conn || this.phase !== 'connecting') return;
    const { ctx } = this;
    this.phase = 'info';
    this.lastHeardMs = now;
    ctx.send(conn, {
      type: 'followerInfo', serverId: ctx.cfg.id, learnerType: this.type, acceptedEpoch: ctx.acceptedEpoch,
      lastZxid: ctx.log.last, protocolVersion: PEER_PROTOCOL_VERSION, clusterId: ctx.cfg.clusterId,
    });
  }

  /**
   * Our connection to the leader is gone. Before the leader answered FOLLOWERINFO, try again shortly
   * until initLimit runs out: the leader may still be deciding (it closes what it cannot take yet).
   */
  disconnected(conn: number, now: number): void {
    if (conn !== this.conn) return;
    if (this.phase === 'connecting' || this.phase === 'info') {
      this.phase = 'connecting';
      this.retryAt = now + Math.max(1, Math.min(50, this.ctx.cfg.tickMs / 10));
      return;
    }
    this.ctx.leave(`connection to leader ${this.leader} lost`, now);
  }

  message(conn: number, msg: PeerMessage, now: number): void {
    if (conn !== this.conn) return;
    const { ctx } = this;
    this.lastHeardMs = now;
    switch (msg.type) {
      case 'leaderInfo': return this.onLeaderInfo(msg.epoch, msg.protocolVersion, now);
      case 'diff': this.inSync(msg.type, now); return;
      case 'trunc': {
        if (!this.inSync(msg.type, now)) return;
        if (msg.zxid < ctx.lastCommitted) return ctx.violation(`leader ${this.leader} asked to truncate to ${hexZxid(msg.zxid)}, below our committed ${hexZxid(ctx.lastCommitted)}`, now);
        if (!ctx.log.has(msg.zxid)) return ctx.violation(`leader ${this.leader} asked to truncate to ${hexZxid(msg.zxid)}, which is not in our log`, now);
        ctx.truncateLog(msg.zxid);
        return;
      }
      case 'snap': {
        if (!this.inSync(msg.type, now)) return;
        if (msg.snapshot === undefined) return ctx.violation(`leader ${this.leader} sent SNAP without a snapshot`, now);
        ctx.installSnapshot(msg.zxid, msg.snapshot);
        ctx.adoptConfig(msg.config);
        return;
      }
      case 'proposal': {
        if (this.phase !== 'sync' && this.phase !== 'broadcast') return ctx.violation(`PROPOSAL before the sync from leader ${this.leader}`, now);
        if (!this.append(msg.zxid, msg.payload, now)) return;
        if (this.newLeaderSeen && this.type === 'participant') {
          const zxid = msg.zxid;
          ctx.afterDurable(() => ctx.send(this.conn, { type: 'ack', zxid }));
        }
        return;
      }
      case 'inform': {
        if (this.phase !== 'sync' && this.phase !== 'broadcast') return ctx.violation(`INFORM before the sync from leader ${this.leader}`, now);
        if (msg.zxid > ctx.log.last && !this.append(msg.zxid, msg.payload, now)) return;
        return this.onCommit(msg.zxid, now);
      }
      case 'commit': return this.onCommit(msg.zxid, now);
      case 'newLeader': {
        if (this.phase !== 'sync' || this.newLeaderSeen) return ctx.violation(`NEWLEADER out of turn from leader ${this.leader}`, now);
        if (epochOf(msg.zxid) !== this.epoch) return ctx.violation(`NEWLEADER for epoch ${epochOf(msg.zxid)}, we accepted ${this.epoch}`, now);
        this.newLeaderSeen = true;
        // Everything the sync brought is durable before currentEpoch is, and both before the ACK.
        ctx.setCurrentEpoch(this.epoch);
        const zxid = msg.zxid;
        ctx.afterDurable(() => ctx.send(this.conn, { type: 'ack', zxid }));
        return;
      }
      case 'upToDate': {
        if (this.phase !== 'sync' || !this.newLeaderSeen) return ctx.violation(`UPTODATE out of turn from leader ${this.leader}`, now);
        this.phase = 'broadcast';
        const upTo = msg.committed > this.commitMark ? msg.committed : this.commitMark;
        ctx.commitUpTo(upTo < ctx.log.last ? upTo : ctx.log.last);
        ctx.established(this.type === 'participant' ? 'following' : 'observing', this.epoch!, this.leader);
        return;
      }
      case 'ping':
        ctx.send(this.conn, { type: 'ping' });
        return;
      case 'app':
        if (this.phase !== 'broadcast') return ctx.violation(`a server message before UPTODATE from leader ${this.leader}`, now);
        ctx.appMessage(this.leader, msg.body);
        return;
      case 'refused':
        return ctx.leave(`leader ${this.leader} refused us: ${msg.reason}`, now);
      default:
        return ctx.violation(`unexpected ${msg.type} from leader ${this.leader}`, now);
    }
  }

  private onLeaderInfo(epoch: number, version: number, now: number): void {
    const { ctx } = this;
    if (this.phase !== 'info') return ctx.violation(`LEADERINFO out of turn from leader ${this.leader}`, now);
    if (version !== PEER_PROTOCOL_VERSION) return ctx.leave(`leader ${this.leader} speaks peer protocol ${version}, we speak ${PEER_PROTOCOL_VERSION}`, now);
    if (epoch < ctx.acceptedEpoch) return ctx.leave(`leader ${this.leader} proposed epoch ${epoch}, below the ${ctx.acceptedEpoch} we accepted`, now);
    this.epoch = epoch;
    this.phase = 'sync';
    if (epoch > ctx.acceptedEpoch) ctx.setAcceptedEpoch(epoch);
    const lastZxid = ctx.log.last;
    ctx.afterDurable(() => ctx.send(this.conn, { type: 'ackEpoch', currentEpoch: ctx.currentEpoch, lastZxid }));
  }

  /** DIFF, TRUNC and SNAP come first in a sync, and only then. */
  private inSync(what: string, now: number): boolean {
    if (this.phase !== 'sync' || this.newLeaderSeen) {
      this.ctx.violation(`${what.toUpperCase()} out of turn from leader ${this.leader}`, now);
      return false;
    }
    return true;
  }

  private append(zxid: bigint, payload: Uint8Array, now: number): boolean {
    const { ctx } = this;
    if (!followsInLog(ctx.log.last, zxid, ctx.cfg.firstCounter)) {
      ctx.violation(`leader ${this.leader} sent ${hexZxid(zxid)}, which does not follow our last ${hexZxid(ctx.log.last)}`, now);
      return false;
    }
    ctx.appendLog(zxid, payload);
    return true;
  }

  private onCommit(zxid: bigint, now: number): void {
    const { ctx } = this;
    if (zxid > ctx.log.last) return ctx.violation(`leader ${this.leader} committed ${hexZxid(zxid)}, beyond our last ${hexZxid(ctx.log.last)}`, now);
    if (this.phase === 'broadcast') ctx.commitUpTo(zxid);
    else if (zxid > this.commitMark) this.commitMark = zxid;
  }

  /** Sends a server-layer message to the leader once synced; false before. */
  sendApp(body: Uint8Array): boolean {
    if (this.phase !== 'broadcast') return false;
    this.ctx.send(this.conn, { type: 'app', body });
    return true;
  }

  tick(now: number): void {
    const { ctx } = this;
    const { cfg } = ctx;
    if (this.retryAt !== null && now >= this.retryAt) {
      this.retryAt = null;
      this.conn = ctx.connect(this.leader);
    }
    if (this.phase !== 'broadcast' && now > this.deadline) {
      ctx.leave(`could not sync with leader ${this.leader} within initLimit (${cfg.initLimit} ticks)`, now);
    } else if (this.phase !== 'connecting' && now - this.lastHeardMs > cfg.syncLimit * cfg.tickMs) {
      ctx.leave(`leader ${this.leader} silent for syncLimit (${cfg.syncLimit} ticks)`, now);
    }
  }
}
