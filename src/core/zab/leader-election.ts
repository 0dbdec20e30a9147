// Fast leader election, as ZooKeeper's FastLeaderElection decides: every
// LOOKING server votes for the best server it has heard of, by (epoch, last
// zxid, id) compared strictly in that order; a server decides when a quorum
// of this round's votes agree with its own and no better vote arrives within
// finalizeWaitMs, or when a quorum of servers already out of the election
// name one leader that says it leads. Notifications may be lost, duplicated
// or reordered: they are resent with backoff and are idempotent. Pure.
import type { Notification, PeerState } from './messages.js';

export interface Vote { leader: number; zxid: bigint; peerEpoch: number }

/** Whether `a` beats `b`: higher epoch, then higher zxid, then higher id (ZOOKEEPER-1419 got this order wrong). */
export function voteBeats(a: Vote, b: Vote): boolean {
  if (a.peerEpoch !== b.peerEpoch) return a.peerEpoch > b.peerEpoch;
  if (a.zxid !== b.zxid) return a.zxid > b.zxid;
  return a.leader > b.leader;
}

const sameVote = (a: Vote, b: Vote): boolean => a.leader === b.leader && a.zxid === b.zxid && a.peerEpoch === b.peerEpoch;

export interface ElectionConfig {
  id: number;
  /** Voting members (participants), this server included when it votes. */
  voters: ReadonlySet<number>;
  /** Every other server that takes part in elections (voters and observers), notified when we look. */
  peers: readonly number[];
  /** After a quorum agrees, how long to wait for a better vote before deciding. */
  finalizeWaitMs: number;
  /** Notifications are resent after this long without a decision, doubling up to resendMaxMs. */
  resendMinMs: number;
  resendMaxMs: number;
}

export interface ElectionDecision { vote: Vote; round: number; leading: boolean }

interface Heard { vote: Vote; round: number; state: PeerState }

/** A server that is not a participant proposes nobody. */
const NOBODY = -1;

export class LeaderElection {
  /** ZooKeeper's logicalclock: bumped each time this server starts looking, adopted from higher rounds. */
  round = 0;
  private looking = false;
  private proposal: Vote = { leader: NOBODY, zxid: 0n, peerEpoch: 0 };
  private own: Vote = this.proposal;
  private recv = new Map<number, Heard>();
  private outOfElection = new Map<number, Heard>();
  private decideAt: number | null = null;
  private resendAt = 0;
  private resendMs: number;

  constructor(private cfg: ElectionConfig, private readonly send: (to: number, n: Notification) => void) {
    this.resendMs = cfg.resendMinMs;
  }

  get isLooking(): boolean { return this.looking; }

  /** The membership changed: who votes, and whom to notify. */
  setMembers(voters: ReadonlySet<number>, peers: readonly number[]): void {
    this.cfg = { ...this.cfg, voters, peers };
  }
  get currentProposal(): Vote { return this.proposal; }
  private get votes(): boolean { return this.cfg.voters.has(this.cfg.id); }

  /** Starts a new round, voting for ourselves (`own`: our epoch and last logged zxid). */
  start(own: Vote, now: number): void {
    this.looking = true;
    this.round++;
    this.own = this.votes ? own : { ...own, leader: NOBODY };
    this.proposal = this.own;
    this.recv.clear();
    this.outOfElection.clear();
    this.decideAt = null;
    this.resendMs = this.cfg.resendMinMs;
    this.notifyAll(now);
  }

  stop(): void {
    this.looking = false;
    this.decideAt = null;
  }

  private notification(): Notification {
    return { leader: this.proposal.leader, zxid: this.proposal.zxid, peerEpoch: this.proposal.peerEpoch, round: this.round, state: 'looking' };
  }

  private notifyAll(now: number): void {
    const n = this.notification();
    for (const p of this.cfg.peers) this.send(p, n);
    this.resendAt = now + this.resendMs;
  }

  /** A notification from `from` while we look. Returns the decision when there is one. */
  onNotification(from: number, n: Notification, now: number): ElectionDecision | null {
    if (!this.looking || from === this.cfg.id) return null;
    const vote: Vote = { leader: n.leader, zxid: n.zxid, peerEpoch: n.peerEpoch };
    if (n.state === 'looking') {
      if (!this.cfg.voters.has(from) || !this.cfg.voters.has(vote.leader)) {
        // A server that does not vote (an observer) is looking: tell it what we think; it cannot change our mind.
        this.send(from, this.notification());
        return null;
      }
      if (n.round > this.round) {
        this.round = n.round;
        this.recv.clear();
        this.proposal = this.votes && voteBeats(this.own, vote) ? this.own : vote;
        this.decideAt = null;
        this.notifyAll(now);
      } else if (n.round < this.round) {
        this.send(from, this.notification()); // it is behind: bring it to our round
        return null;
      } else if (this.proposal.leader === NOBODY || voteBeats(vote, this.proposal)) {
        this.proposal = vote;
        this.decideAt = null;
        this.notifyAll(now);
      }
      this.recv.set(from, { vote, round: n.round, state: n.state });
      return this.checkTermination(now);
    }
    // The sender is out of the election: following or leading someone.
    if (n.round === this.round) {
      this.recv.set(from, { vote, round: n.round, state: n.state });
      if (this.agreed(this.recv, vote.leader, true) && this.leaderConfirmed(this.recv, vote.leader, n.round)) return this.decide(vote, n.round);
    }
    this.outOfElection.set(from, { vote, round: n.round, state: n.state });
    if (this.agreed(this.outOfElection, vote.leader, false) && this.leaderConfirmed(this.outOfElection, vote.leader, n.round)) {
      this.round = n.round;
      return this.decide(vote, n.round);
    }
    return null;
  }

  /** Time passes: resend when nothing was decided, decide once the finalize wait is over. */
  tick(now: number): ElectionDecision | null {
    if (!this.looking) return null;
    if (this.decideAt !== null && now >= this.decideAt) {
      if (this.proposalHasQuorum()) return this.decide(this.proposal, this.round);
      this.decideAt = null;
    }
    if (now >= this.resendAt) {
      this.resendMs = Math.min(this.resendMs * 2, this.cfg.resendMaxMs);
      this.notifyAll(now);
    }
    return null;
  }

  private proposalHasQuorum(): boolean {
    if (this.proposal.leader === NOBODY) return false;
    let n = this.votes ? 1 : 0; // our own vote is the proposal
    for (const [id, h] of this.recv) if (this.cfg.voters.has(id) && h.round === this.round && sameVote(h.vote, this.proposal)) n++;
    return n * 2 > this.cfg.voters.size;
  }

  private checkTermination(now: number): ElectionDecision | null {
    if (this.proposalHasQuorum()) {
      // Wait a little for a better vote still in flight; decide at once if every voter agrees.
      if (this.recv.size + 1 >= this.cfg.voters.size && this.allVotersAgree()) return this.decide(this.proposal, this.round);
      if (this.decideAt === null) this.decideAt = now + this.cfg.finalizeWaitMs;
    } else {
      this.decideAt = null;
    }
    return null;
  }

  private allVotersAgree(): boolean {
    for (const v of this.cfg.voters) {
      if (v === this.cfg.id) continue;
      const h = this.recv.get(v);
      if (h === undefined || h.round !== this.round || !sameVote(h.vote, this.proposal)) return false;
    }
    return true;
  }

  /**
   * A quorum of voters in `heard` (and we, if `withOurs` and we vote the same) name `leader`. Servers
   * out of the election are compared by the leader they name only: the rest of their vote is what
   * each of them knew when it voted.
   */
  private agreed(heard: Map<number, Heard>, leader: number, withOurs: boolean): boolean {
    let n = 0;
    for (const [id, h] of heard) if (id !== this.cfg.id && this.cfg.voters.has(id) && h.vote.leader === leader) n++;
    if (withOurs && this.votes && leader === this.proposal.leader) n++;
    return n * 2 > this.cfg.voters.size;
  }

  /** ZooKeeper's checkLeader: the named leader says it leads, or it is us and the round is ours. */
  private leaderConfirmed(heard: Map<number, Heard>, leader: number, round: number): boolean {
    if (leader !== this.cfg.id) return heard.get(leader)?.state === 'leading';
    return round === this.round;
  }

  private decide(vote: Vote, round: number): ElectionDecision {
    this.looking = false;
    this.decideAt = null;
    this.proposal = vote;
    return { vote, round, leading: vote.leader === this.cfg.id };
  }
}
