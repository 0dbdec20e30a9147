// The simulated network between quorum servers. Election notifications are
// datagrams: delayed, dropped, duplicated, reordered. Peer connections behave
// as TCP does: in order, nothing lost while they live; a crash of one end
// closes them at the other (after a delay), a partition silently kills them
// (each end finds out by its own timeouts), a close arrives after the data
// sent before it.
import type { EventQueue } from './event-queue.js';
import type { Rng } from './rng.js';
import type { Notification, PeerMessage } from '../core/zab/messages.js';

export interface NetworkFaults {
  delayMinMs: number;
  delayMaxMs: number;
  /** Chance that a message is slow (slowMs more). */
  slowChance: number;
  slowMs: number;
  voteDrop: number;
  voteDuplicate: number;
}

export interface NetworkHooks {
  isUp(node: number): boolean;
  vote(to: number, from: number, n: Notification): void;
  /** An inbound connection arrived at `node`: returns its connection id there. */
  accepted(node: number): number;
  connected(node: number, conn: number): void;
  message(node: number, conn: number, msg: PeerMessage): void;
  disconnected(node: number, conn: number): void;
}

interface End { node: number; conn: number }
interface Link {
  a: End;
  b: End | null;
  /** Dead: nothing more is delivered either way. */
  dead: boolean;
  /** Time of the last delivery scheduled per direction, for FIFO. */
  lastAb: number;
  lastBa: number;
}

export interface NetworkStats { votes: number; votesDropped: number; messages: number; linksKilled: number }

export class SimNetwork {
  private links = new Map<string, Link>();
  private group = new Map<number, number>();
  readonly stats: NetworkStats = { votes: 0, votesDropped: 0, messages: 0, linksKilled: 0 };

  constructor(private readonly q: EventQueue, private readonly rng: Rng, private readonly faults: NetworkFaults, private readonly hooks: NetworkHooks) {}

  /** Extra delay on everything to or from a server (a slow link or an overloaded host): it lags. */
  private readonly lag = new Map<number, number>();

  setLag(node: number, ms: number): void {
    if (ms > 0) this.lag.set(node, ms); else this.lag.delete(node);
  }

  private delay(a?: number, b?: number): number {
    const f = this.faults;
    const lag = (a === undefined ? 0 : this.lag.get(a) ?? 0) + (b === undefined ? 0 : this.lag.get(b) ?? 0);
    return this.rng.range(f.delayMinMs, f.delayMaxMs) + (this.rng.chance(f.slowChance) ? f.slowMs : 0) + lag;
  }

  canTalk(a: number, b: number): boolean {
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  /** Splits the servers: each inner list is one side; servers not named stay in group 0. */
  partition(sides: number[][]): void {
    this.group.clear();
    sides.forEach((side, i) => { for (const n of side) this.group.set(n, i + 1); });
  }

  heal(): void { this.group.clear(); }

  sendVote(from: number, to: number, n: Notification): void {
    this.stats.votes++;
    if (this.rng.chance(this.faults.voteDrop)) { this.stats.votesDropped++; return; }
    const copies = this.rng.chance(this.faults.voteDuplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.q.after(this.delay(), () => {
        if (this.hooks.isUp(to) && this.hooks.isUp(from) && this.canTalk(from, to)) this.hooks.vote(to, from, n);
      });
    }
  }

  private key(e: End): string { return `${e.node}:${e.conn}`; }

  connect(from: number, conn: number, to: number): void {
    const link: Link = { a: { node: from, conn }, b: null, dead: false, lastAb: 0, lastBa: 0 };
    this.links.set(this.key(link.a), link);
    const reach = this.q.now + this.delay();
    this.q.at(reach, () => {
      if (link.dead) return;
      if (!this.hooks.isUp(to) || !this.canTalk(from, to)) {
        // Refused (down) or timed out (partitioned): either way the connect fails.
        this.kill(link);
        this.q.after(this.delay(), () => { if (this.hooks.isUp(from)) this.hooks.disconnected(from, conn); });
        return;
      }
      link.b = { node: to, conn: this.hooks.accepted(to) };
      this.links.set(this.key(link.b), link);
      link.lastBa = this.q.now;
      this.q.after(this.delay(), () => { if (!link.dead && this.hooks.isUp(from)) this.hooks.connected(from, conn); });
    });
  }

  send(from: number, conn: number, msg: PeerMessage): void {
    const link = this.links.get(this.key({ node: from, conn }));
    if (link === undefined || link.dead || link.b === null) return;
    this.stats.messages++;
    const fromA = link.a.node === from && link.a.conn === conn;
    const dst = fromA ? link.b : link.a;
    const at = Math.max(fromA ? link.lastAb : link.lastBa, this.q.now + this.delay(from, dst.node));
    if (fromA) link.lastAb = at; else link.lastBa = at;
    this.q.at(at, () => {
      if (link.dead) return;
      if (!this.canTalk(link.a.node, link.b!.node)) { this.kill(link); return; } // partitioned: the connection dies silently
      if (this.hooks.isUp(dst.node)) this.hooks.message(dst.node, dst.conn, msg);
    });
  }

  /** `from` closes its end: the other end hears of it after what was sent before. */
  close(from: number, conn: number): void {
    const link = this.links.get(this.key({ node: from, conn }));
    if (link === undefined || link.dead) return;
    const fromA = link.a.node === from && link.a.conn === conn;
    const other = fromA ? link.b : link.a;
    this.kill(link);
    if (other === null) return;
    const at = Math.max(fromA ? link.lastAb : link.lastBa, this.q.now + this.delay());
    this.q.at(at, () => {
      if (this.hooks.isUp(other.node) && this.canTalk(from, other.node)) this.hooks.disconnected(other.node, other.conn);
    });
  }

  /** A crashed server's connections reset at the other ends. */
  nodeDown(node: number): void {
    for (const link of new Set(this.links.values())) {
      if (link.dead) continue;
      const mine = link.a.node === node ? link.a : link.b?.node === node ? link.b : null;
      if (mine === null) continue;
      const other = mine === link.a ? link.b : link.a;
      this.kill(link);
      if (other !== null && this.canTalk(node, other.node)) {
        this.q.after(this.delay(), () => { if (this.hooks.isUp(other.node)) this.hooks.disconnected(other.node, other.conn); });
      }
    }
  }

  private kill(link: Link): void {
    if (link.dead) return;
    link.dead = true;
    this.stats.linksKilled++;
    this.links.delete(this.key(link.a));
    if (link.b !== null) this.links.delete(this.key(link.b));
  }
}
