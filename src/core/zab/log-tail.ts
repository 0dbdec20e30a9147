// The in-memory tail of a server's replicated log: every transaction above
// `base` (the zxid its snapshot/state reaches, committed by definition), in
// zxid order, committed or not. The leader syncs followers from it (DIFF) or,
// when a follower is behind `base`, with a snapshot. Pure: no I/O.
import { epochOf, followsInLog, hexZxid, makeZxid } from './zxid.js';

export interface LogEntry { zxid: bigint; payload: Uint8Array }

/** What the leader sends a learner to make the learner's log equal to its own. */
export type SyncPlan =
  | { kind: 'diff'; from: bigint }
  | { kind: 'trunc'; to: bigint }
  | { kind: 'snap' };

export class LogTail {
  private entries: LogEntry[] = [];
  private bytes = 0;

  constructor(private baseZxid: bigint, entries: LogEntry[] = [], private readonly firstCounter = 1n) {
    for (const e of entries) this.append(e.zxid, e.payload);
  }

  get base(): bigint { return this.baseZxid; }
  get last(): bigint { return this.entries.length > 0 ? this.entries[this.entries.length - 1].zxid : this.baseZxid; }
  get length(): number { return this.entries.length; }
  get payloadBytes(): number { return this.bytes; }

  /** Adds the next transaction; throws unless it follows the last one (same epoch +1, or a later epoch's first). */
  append(zxid: bigint, payload: Uint8Array): void {
    if (!followsInLog(this.last, zxid, this.firstCounter)) throw new RangeError(`zxid ${hexZxid(zxid)} does not follow ${hexZxid(this.last)}`);
    this.entries.push({ zxid, payload });
    this.bytes += payload.length;
  }

  /** Index of `zxid` among the entries, -1 for the base, undefined if not in the log. */
  private indexOf(zxid: bigint): number | undefined {
    if (zxid === this.baseZxid) return -1;
    let lo = 0;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const z = this.entries[mid].zxid;
      if (z === zxid) return mid;
      if (z < zxid) lo = mid + 1; else hi = mid - 1;
    }
    return undefined;
  }

  has(zxid: bigint): boolean { return this.indexOf(zxid) !== undefined; }

  get(zxid: bigint): LogEntry | undefined {
    const i = this.indexOf(zxid);
    return i === undefined || i < 0 ? undefined : this.entries[i];
  }

  /** Index of the first entry with a zxid above `zxid` (entries.length if none). */
  private firstAbove(zxid: bigint): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].zxid <= zxid) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Entries with from < zxid <= to, in order. */
  range(from: bigint, to: bigint = this.last): LogEntry[] {
    const out: LogEntry[] = [];
    for (let i = this.firstAbove(from); i < this.entries.length && this.entries[i].zxid <= to; i++) out.push(this.entries[i]);
    return out;
  }

  /** Drops every entry above `zxid`, which must be in the log (or be its base). */
  truncateAfter(zxid: bigint): void {
    const i = this.indexOf(zxid);
    if (i === undefined) throw new RangeError(`cannot truncate to ${hexZxid(zxid)}: not in the log (base ${hexZxid(this.baseZxid)}, last ${hexZxid(this.last)})`);
    for (const e of this.entries.splice(i + 1)) this.bytes -= e.payload.length;
  }

  /** Forgets entries at or below `zxid` (already in a snapshot), keeping the log's end. */
  forgetThrough(zxid: bigint): void {
    if (zxid <= this.baseZxid) return;
    let n = 0;
    while (n < this.entries.length && this.entries[n].zxid <= zxid) this.bytes -= this.entries[n++].payload.length;
    if (n === 0 && zxid !== this.baseZxid) throw new RangeError(`cannot forget through ${hexZxid(zxid)}: not in the log`);
    this.baseZxid = this.entries[n - 1].zxid;
    this.entries.splice(0, n);
  }

  /**
   * Forgets committed entries beyond the newest `keep` of them (they are in the state, and a
   * learner that far behind gets a snapshot). Trims in steps of keep/2 so the cost is amortized.
   */
  trimCommitted(committed: bigint, keep: number): void {
    const i = this.indexOf(committed);
    if (i === undefined) return;
    const excess = i + 1 - keep;
    if (excess <= 0 || excess < Math.max(1, keep >> 1)) return;
    for (let k = 0; k < excess; k++) this.bytes -= this.entries[k].payload.length;
    this.baseZxid = this.entries[excess - 1].zxid;
    this.entries.splice(0, excess);
  }

  /** Replaces everything with an empty log whose base is `zxid` (after a snapshot from the leader). */
  reset(zxid: bigint): void {
    this.entries = [];
    this.bytes = 0;
    this.baseZxid = zxid;
  }

  /** The largest zxid of epoch `epoch` in the log (the base counts), or null. */
  private lastInEpoch(epoch: number): bigint | null {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = epochOf(this.entries[i].zxid);
      if (e === epoch) return this.entries[i].zxid;
      if (e < epoch) return null;
    }
    return epochOf(this.baseZxid) === epoch ? this.baseZxid : null;
  }

  /** The largest zxid in the log below `zxid` (the base counts), or null if the base is not below it. */
  private lastBelow(zxid: bigint): bigint | null {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].zxid < zxid) return this.entries[i].zxid;
    return this.baseZxid < zxid ? this.baseZxid : null;
  }

  /**
   * How to bring a learner whose last logged zxid is `learnerLast` to this log, which is the
   * leader's (it holds every committed transaction). Only the learner's last epoch can hold
   * transactions that were never committed: its earlier epochs were made equal to their next
   * leader's log when it synced with that leader, and such a log is committed whole. So the logs
   * agree below that epoch, and within it both are prefixes of the one sequence its leader
   * proposed: the common point is the lesser end there, or, if this log has nothing of that
   * epoch, this log's last zxid below it. Past the common point the learner truncates; from it,
   * it takes our entries; and if the common point is below our base, a snapshot.
   */
  syncPlan(learnerLast: bigint): SyncPlan {
    if (learnerLast === this.last) return { kind: 'diff', from: learnerLast };
    if (learnerLast < this.baseZxid) return { kind: 'snap' };
    const epoch = epochOf(learnerLast);
    const end = this.lastInEpoch(epoch);
    const common = end !== null ? (learnerLast < end ? learnerLast : end) : this.lastBelow(makeZxid(epoch, 0));
    if (common === null || common < this.baseZxid) return { kind: 'snap' };
    return common < learnerLast ? { kind: 'trunc', to: common } : { kind: 'diff', from: common };
  }
}
