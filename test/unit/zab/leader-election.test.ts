import { describe, expect, it } from 'vitest';
import { LeaderElection, voteBeats, type ElectionDecision, type Vote } from '../../../src/core/zab/leader-election.js';
import type { Notification } from '../../../src/core/zab/messages.js';
import { makeZxid } from '../../../src/core/zab/zxid.js';

/** Servers exchanging notifications in memory, delivered in the order sent (or shuffled by `order`). */
class Ring {
  readonly elections = new Map<number, LeaderElection>();
  readonly decided = new Map<number, ElectionDecision>();
  private queue: { from: number; to: number; n: Notification }[] = [];
  now = 0;

  constructor(voters: number[], observers: number[] = []) {
    const all = [...voters, ...observers];
    for (const id of all) {
      this.elections.set(id, new LeaderElection({
        id, voters: new Set(voters), peers: all.filter((x) => x !== id), finalizeWaitMs: 20, resendMinMs: 50, resendMaxMs: 400,
      }, (to, n) => this.queue.push({ from: id, to, n })));
    }
  }

  start(id: number, own: Vote): void { this.elections.get(id)!.start(own, this.now); }

  /** Delivers until quiet, letting time pass for the finalize wait; bounded. */
  run(pick: (n: number) => number = () => 0): void {
    for (let i = 0; i < 10_000 && (this.queue.length > 0 || this.undecided()); i++) {
      if (this.queue.length === 0) {
        this.now += 5;
        for (const [id, e] of this.elections) this.note(id, e.tick(this.now));
        continue;
      }
      const { from, to, n } = this.queue.splice(pick(this.queue.length), 1)[0];
      const e = this.elections.get(to)!;
      if (this.decided.has(to)) {
        // Out of the election: answer a looking server with our decision, as the peer does.
        const d = this.decided.get(to)!;
        if (n.state === 'looking') this.queue.push({ from: to, to: from, n: { ...d.vote, round: d.round, state: d.leading ? 'leading' : 'following' } });
        continue;
      }
      this.note(to, e.onNotification(from, n, this.now));
    }
  }

  private undecided(): boolean { return [...this.elections.values()].some((e) => e.isLooking); }
  private note(id: number, d: ElectionDecision | null): void { if (d !== null) this.decided.set(id, d); }
}

const own = (leader: number, epoch: number, counter: number): Vote => ({ leader, zxid: makeZxid(epoch, counter), peerEpoch: epoch });

describe('LeaderElection', () => {
  it('orders votes by epoch, then zxid, then id', () => {
    expect(voteBeats(own(1, 2, 1), own(3, 1, 99))).toBe(true); // epoch first
    expect(voteBeats(own(1, 2, 5), own(3, 2, 4))).toBe(true); // then zxid
    expect(voteBeats(own(3, 2, 5), own(1, 2, 5))).toBe(true); // then id
    expect(voteBeats(own(1, 2, 5), own(1, 2, 5))).toBe(false);
  });

  it('elects the server with the best (epoch, zxid, id), all agreeing, under any delivery order', () => {
    for (let seed = 0; seed < 50; seed++) {
      let x = seed + 1;
      const rand = (n: number) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
      const ring = new Ring([1, 2, 3, 4, 5]);
      ring.start(1, own(1, 3, 9));
      ring.start(2, own(2, 4, 1)); // best: highest epoch even with a lower zxid
      ring.start(3, own(3, 3, 20));
      ring.start(4, own(4, 4, 1));
      ring.start(5, own(5, 2, 50));
      ring.run(rand);
      const leaders = new Set([...ring.decided.values()].map((d) => d.vote.leader));
      expect(leaders).toEqual(new Set([4])); // epoch 4, zxid tie with 2, higher id
      expect(ring.decided.get(4)!.leading).toBe(true);
    }
  });

  it('lets a server that starts late learn the leader from servers out of the election', () => {
    const ring = new Ring([1, 2, 3]);
    ring.start(1, own(1, 1, 5));
    ring.start(2, own(2, 1, 7));
    ring.run();
    expect(ring.decided.get(1)!.vote.leader).toBe(2);
    // 3 has the best log but comes late: the others already follow 2, and it joins them.
    ring.start(3, own(3, 1, 9));
    ring.run();
    expect(ring.decided.get(3)!.vote.leader).toBe(2);
    expect(ring.decided.get(3)!.leading).toBe(false);
  });

  it('never elects an observer, and lets it learn the leader', () => {
    const ring = new Ring([1, 2, 3], [9]);
    ring.start(9, own(9, 5, 99)); // best log, but it does not vote
    ring.start(1, own(1, 1, 1));
    ring.start(2, own(2, 1, 1));
    ring.start(3, own(3, 1, 1));
    ring.run();
    for (const d of ring.decided.values()) expect(d.vote.leader).toBe(3);
    expect(ring.decided.get(9)!.leading).toBe(false);
  });

  it('decides nothing without a quorum', () => {
    const ring = new Ring([1, 2, 3, 4, 5]);
    ring.start(1, own(1, 1, 1));
    ring.start(2, own(2, 1, 1));
    ring.run();
    expect(ring.decided.size).toBe(0);
  });
});
