// One journal on one journal node, as a pure state machine: the promise (the
// highest epoch a writer was granted), the epoch of the writer allowed to
// write, the committed txid, and the segments of edits. Every request carries
// the writer's epoch; one below the promise is refused with both epochs named
// (that is the fence). Requests return their answer and the storage
// operations the driver must make durable, in order, before answering (J1).
// newEpoch finalizes nothing: only recovery decides a segment's end.
import type { PrepareRecoveryAnswer, SegmentState } from './recovery.js';

export interface JournalSegment { startTxid: bigint; endTxid: bigint; inProgress: boolean; writerEpoch: number }

/** What the journal has on disk, handed in at start. */
export interface JournalDisk {
  promisedEpoch: number;
  lastWriterEpoch: number;
  committedTxid: bigint;
  /** Oldest first; at most the last one in progress. */
  segments: JournalSegment[];
  /** The last recovery this node accepted: the segment and the epoch it was accepted in. */
  accepted: { segment: SegmentState; epoch: number } | null;
}

export type JournalStorageOp =
  | { kind: 'promise'; epoch: number }
  | { kind: 'writerEpoch'; epoch: number }
  | { kind: 'committed'; txid: bigint }
  | { kind: 'startSegment'; startTxid: bigint; writerEpoch: number }
  | { kind: 'append'; segmentTxid: bigint; firstTxid: bigint; records: Uint8Array[] }
  | { kind: 'finalize'; startTxid: bigint; endTxid: bigint }
  /** Drop the edits of segment `startTxid` after `endTxid` (a recovery chose a shorter copy). */
  | { kind: 'truncate'; startTxid: bigint; endTxid: bigint }
  | { kind: 'accepted'; segment: SegmentState; epoch: number };

/** A refused request: `status` as the HTTP layer answers it. */
export class JournalError extends Error {
  constructor(readonly status: 400 | 403 | 409, message: string) { super(message); }
}

/** Batches remembered per segment for idempotent retries (a pipelined append sent twice). */
const RECENT_BATCHES_MAX = 1024;

export class JournalState {
  private promised: number;
  private writerEpoch: number;
  private committed: bigint;
  private readonly segments: JournalSegment[];
  private acceptedRecovery: JournalDisk['accepted'];
  /** The segment open for writing, by its start txid; null after newEpoch/prepareRecovery aborts it. */
  private open: bigint | null = null;
  /** (epoch, first txid) -> checksum of batches written to the open segment. */
  private recent = new Map<string, string>();

  constructor(readonly name: string, disk: JournalDisk) {
    this.promised = disk.promisedEpoch;
    this.writerEpoch = disk.lastWriterEpoch;
    this.committed = disk.committedTxid;
    this.segments = disk.segments.map((s) => ({ ...s }));
    this.acceptedRecovery = disk.accepted;
  }

  get promisedEpoch(): number { return this.promised; }
  get lastWriterEpoch(): number { return this.writerEpoch; }
  get committedTxid(): bigint { return this.committed; }
  get lastSegment(): JournalSegment | null { return this.segments.at(-1) ?? null; }
  manifest(): JournalSegment[] { return this.segments.map((s) => ({ ...s })); }

  private segment(startTxid: bigint): JournalSegment | undefined {
    return this.segments.find((s) => s.startTxid === startTxid);
  }

  /**
   * Every request: an epoch below the promise is fenced. Checks only: a request changes nothing
   * until all its checks pass (then raise() makes a higher epoch the promise).
   */
  private checkEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) throw new JournalError(400, `epoch ${epoch} is not a non-negative integer`);
    if (epoch < this.promised) {
      throw new JournalError(403, `journal ${this.name}: fenced: the request's epoch ${epoch} is below the promised epoch ${this.promised}`);
    }
  }

  private raise(epoch: number, ops: JournalStorageOp[]): void {
    if (epoch > this.promised) {
      this.promised = epoch;
      ops.push({ kind: 'promise', epoch });
    }
  }

  /** Writes need the writer's own epoch, not only one at the promise. */
  private checkWriter(epoch: number): void {
    this.checkEpoch(epoch);
    if (epoch !== this.writerEpoch) {
      throw new JournalError(403, `journal ${this.name}: fenced: the request's epoch ${epoch} is not the current writer's epoch ${this.writerEpoch}`);
    }
  }

  private noteCommitted(txid: bigint | undefined, ops: JournalStorageOp[]): void {
    if (txid === undefined || txid <= this.committed) return;
    this.committed = txid;
    ops.push({ kind: 'committed', txid });
  }

  /** A new writer asks for `epoch`: granted only above the promise. Finalizes nothing. */
  newEpoch(epoch: number): { ops: JournalStorageOp[]; lastSegmentTxid: bigint | null } {
    if (!Number.isInteger(epoch) || epoch <= this.promised) {
      throw new JournalError(409, `journal ${this.name}: epoch ${epoch} is not above the promised epoch ${this.promised}`);
    }
    this.promised = epoch;
    this.open = null;
    return { ops: [{ kind: 'promise', epoch }], lastSegmentTxid: this.lastSegment?.startTxid ?? null };
  }

  startSegment(epoch: number, txid: bigint): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    const last = this.lastSegment;
    if (last !== null && last.inProgress && last.startTxid !== txid) {
      throw new JournalError(409, `journal ${this.name}: segment ${last.startTxid} is still in progress: recover or finalize it before starting ${txid}`);
    }
    if (last !== null && txid <= last.endTxid && !(last.startTxid === txid && last.inProgress)) {
      throw new JournalError(409, `journal ${this.name}: cannot start a segment at ${txid}: the log already reaches ${last.endTxid}`);
    }
    const existing = this.segment(txid);
    if (existing !== undefined) {
      // Restarting the same segment is fine while it holds nothing (a writer that retried).
      if (existing.endTxid >= existing.startTxid) throw new JournalError(409, `journal ${this.name}: segment ${txid} already holds edits up to ${existing.endTxid}`);
    }
    this.raise(epoch, ops);
    if (existing !== undefined) {
      existing.writerEpoch = epoch;
    } else {
      this.segments.push({ startTxid: txid, endTxid: txid - 1n, inProgress: true, writerEpoch: epoch });
    }
    if (this.writerEpoch !== epoch) {
      this.writerEpoch = epoch;
      ops.push({ kind: 'writerEpoch', epoch });
    }
    ops.push({ kind: 'startSegment', startTxid: txid, writerEpoch: epoch });
    this.open = txid;
    this.recent.clear();
    return ops;
  }

  /**
   * A batch of edits: the writer's epoch, the open segment, the next txid. A batch already written
   * (same epoch, first txid and checksum: a pipelined retry) succeeds without writing again.
   */
  journal(req: { epoch: number; segmentTxid: bigint; firstTxid: bigint; records: Uint8Array[]; checksum: string; committedTxid?: bigint }): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    this.checkWriter(req.epoch);
    if (req.records.length === 0) throw new JournalError(400, `journal ${this.name}: an empty batch`);
    if (this.open === null || this.open !== req.segmentTxid) {
      throw new JournalError(409, `journal ${this.name}: segment ${req.segmentTxid} is not open for writing${this.open === null ? '' : ` (segment ${this.open} is)`}`);
    }
    const seg = this.segment(req.segmentTxid)!;
    const key = `${req.epoch}:${req.firstTxid}`;
    const seen = this.recent.get(key);
    if (seen !== undefined) {
      if (seen !== req.checksum) throw new JournalError(409, `journal ${this.name}: txid ${req.firstTxid} was already written in epoch ${req.epoch} with other contents`);
      this.noteCommitted(req.committedTxid, ops);
      return ops;
    }
    const next = seg.endTxid + 1n;
    if (req.firstTxid !== next) {
      throw new JournalError(409, `journal ${this.name}: txid gap: the batch starts at ${req.firstTxid}, the segment expects ${next}`);
    }
    const end = next + BigInt(req.records.length) - 1n;
    if (req.committedTxid !== undefined && req.committedTxid > end) {
      throw new JournalError(400, `journal ${this.name}: committed txid ${req.committedTxid} is beyond what was written (${end})`);
    }
    seg.endTxid = end;
    ops.push({ kind: 'append', segmentTxid: seg.startTxid, firstTxid: req.firstTxid, records: req.records });
    this.recent.set(key, req.checksum);
    if (this.recent.size > RECENT_BATCHES_MAX) this.recent.delete(this.recent.keys().next().value!);
    this.noteCommitted(req.committedTxid, ops);
    return ops;
  }

  finalizeSegment(epoch: number, startTxid: bigint, endTxid: bigint): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    const seg = this.segment(startTxid);
    if (seg === undefined) throw new JournalError(409, `journal ${this.name}: no segment starts at ${startTxid}`);
    if (!seg.inProgress) {
      if (seg.endTxid !== endTxid) throw new JournalError(409, `journal ${this.name}: segment ${startTxid} is finalized at ${seg.endTxid}, not ${endTxid}`);
      this.raise(epoch, ops);
      return ops; // idempotent
    }
    if (seg.endTxid !== endTxid) {
      throw new JournalError(409, `journal ${this.name}: cannot finalize segment ${startTxid} at ${endTxid}: it holds edits up to ${seg.endTxid}`);
    }
    this.raise(epoch, ops);
    seg.inProgress = false;
    if (this.open === startTxid) this.open = null;
    ops.push({ kind: 'finalize', startTxid, endTxid });
    return ops;
  }

  /** Recovery, phase one: what this node has of segment `startTxid` (and the writer stops writing here). */
  prepareRecovery(epoch: number, startTxid: bigint): { ops: JournalStorageOp[]; answer: PrepareRecoveryAnswer & { committedTxid: bigint } } {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    this.raise(epoch, ops);
    this.open = null;
    const seg = this.segment(startTxid);
    const segment = seg === undefined || seg.endTxid < seg.startTxid ? null : { startTxid, endTxid: seg.endTxid, inProgress: seg.inProgress, writerEpoch: seg.writerEpoch };
    const acceptedInEpoch = this.acceptedRecovery?.segment.startTxid === startTxid ? this.acceptedRecovery.epoch : null;
    return { ops, answer: { segment, acceptedInEpoch, lastWriterEpoch: this.writerEpoch, committedTxid: this.committed } };
  }

  /**
   * Recovery, phase two: make this node's copy the chosen one. Returns what must be fetched from a
   * node that has the chosen copy when ours is shorter (or missing), after which the driver calls
   * acceptRecovery again; our copy longer than the chosen one is cut back. Never below committed.
   */
  acceptRecovery(epoch: number, chosen: SegmentState): { ops: JournalStorageOp[]; fetchFrom: bigint | null } {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    if (chosen.endTxid < this.committed) {
      throw new JournalError(409, `journal ${this.name}: recovery would end segment ${chosen.startTxid} at ${chosen.endTxid}, below the committed txid ${this.committed}`);
    }
    this.raise(epoch, ops);
    this.open = null;
    const seg = this.segment(chosen.startTxid);
    if (seg !== undefined && chosen.writerEpoch !== undefined && seg.writerEpoch !== chosen.writerEpoch && seg.endTxid >= seg.startTxid) {
      // Another writer's edits under the same txids: not the chosen copy at any length. Drop ours.
      if (!seg.inProgress) throw new JournalError(409, `journal ${this.name}: segment ${seg.startTxid} is finalized with writer epoch ${seg.writerEpoch}, recovery chose epoch ${chosen.writerEpoch}`);
      seg.endTxid = seg.startTxid - 1n;
      ops.push({ kind: 'truncate', startTxid: seg.startTxid, endTxid: seg.startTxid - 1n });
    }
    const have = seg === undefined ? chosen.startTxid - 1n : seg.endTxid;
    if (have < chosen.endTxid) return { ops, fetchFrom: have + 1n };
    if (seg !== undefined && have > chosen.endTxid) {
      seg.endTxid = chosen.endTxid;
      ops.push({ kind: 'truncate', startTxid: chosen.startTxid, endTxid: chosen.endTxid });
    }
    this.acceptedRecovery = { segment: { ...chosen }, epoch };
    ops.push({ kind: 'accepted', segment: { ...chosen }, epoch });
    return { ops, fetchFrom: null };
  }

  /** Edits fetched from another node for a recovery (or a catch-up), appended to segment `startTxid`. */
  adoptFetched(startTxid: bigint, firstTxid: bigint, records: Uint8Array[], writerEpoch: number): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    let seg = this.segment(startTxid);
    if (seg === undefined) {
      const last = this.lastSegment;
      if (last !== null && last.inProgress) throw new JournalError(409, `journal ${this.name}: segment ${last.startTxid} is in progress`);
      seg = { startTxid, endTxid: startTxid - 1n, inProgress: true, writerEpoch };
      this.segments.push(seg);
      ops.push({ kind: 'startSegment', startTxid, writerEpoch });
    }
    if (firstTxid !== seg.endTxid + 1n) throw new JournalError(409, `journal ${this.name}: fetched edits start at ${firstTxid}, the segment expects ${seg.endTxid + 1n}`);
    if (seg.writerEpoch !== writerEpoch) {
      seg.writerEpoch = writerEpoch;
      ops.push({ kind: 'startSegment', startTxid, writerEpoch });
    }
    seg.endTxid += BigInt(records.length);
    ops.push({ kind: 'append', segmentTxid: startTxid, firstTxid, records });
    return ops;
  }
}
