// One journal on one journal node, as a pure state machine: the promise (the
// highest epoch a writer was granted), the epoch of the writer allowed to
// write, the committed txid, and the segments of edits. Every request carries
// the writer's epoch; one below the promise is refused with both epochs named
// (that is the fence). Requests return their answer and the storage
// operations the driver must make durable, in order, before answering (J1).
// newEpoch finalizes nothing: only recovery decides a segment's end.
import type { PrepareRecoveryAnswer, SegmentState } from './recovery.js';
import { invariantFailed } from '../invariant.js';

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
  | { kind: 'accepted'; segment: SegmentState; epoch: number }
  /** Delete finalized segment `startTxid`..`endTxid` (purged: every reader is past it). */
  | { kind: 'purge'; startTxid: bigint; endTxid: bigint };

/** A peer's journal as its state and manifest answers show it (the input of a catch-up). */
export interface PeerJournal { promisedEpoch: number; lastWriterEpoch: number; committedTxid: bigint; segments: JournalSegment[] }

/**
 * One catch-up step: copy the peer's edits `fromTxid`..`toTxid` of segment `startTxid` (written by
 * `writerEpoch`), dropping our copy of that segment first when `replace`; finalize it at
 * `finalizeAt` once copied (the peer's copy is finalized).
 */
export interface CatchUpStep { startTxid: bigint; fromTxid: bigint; toTxid: bigint; writerEpoch: number; replace: boolean; finalizeAt: bigint | null }

/** A refused request: `status` as the HTTP layer answers it. */
/** How far one request may raise a node's promised epoch (epochs are safe integers: 2^53 / 2^20 steps is never reached). */
export const JOURNAL_EPOCH_STEP_MAX = 2 ** 20;

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
  /** A copy of the segment that starts at `startTxid`, if this node has one. */
  segmentAt(startTxid: bigint): JournalSegment | null {
    const s = this.segment(startTxid);
    return s === undefined ? null : { ...s };
  }

  private segment(startTxid: bigint): JournalSegment | undefined {
    return this.segments.find((s) => s.startTxid === startTxid);
  }

  /**
   * The segment the current writer may append to: the last one, in progress, written by the
   * writer whose epoch is both the writer epoch and the promise. A newEpoch or a recovery raises
   * the promise above it, which closes it; a restarted node finds it open again.
   */
  private get open(): bigint | null {
    const last = this.lastSegment;
    if (last === null || !last.inProgress || last.writerEpoch !== this.writerEpoch || this.writerEpoch !== this.promised) return null;
    return last.startTxid;
  }

  /**
   * Every request: an epoch below the promise is fenced. Checks only: a request changes nothing
   * until all its checks pass (then raise() makes a higher epoch the promise).
   */
  private checkEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new JournalError(400, `epoch ${epoch} is not a non-negative integer below 2^53`);
    if (epoch < this.promised) {
      throw new JournalError(403, `journal ${this.name}: fenced: the request's epoch ${epoch} is below the promised epoch ${this.promised}`);
    }
    this.checkStep(epoch);
  }

  /**
   * A writer asks for one above the highest promise it saw; no request moves a promise further.
   * Without this bound one request (new-epoch at the largest epoch there is) would leave no
   * epoch for any later writer: the journal wedged for good.
   */
  private checkStep(epoch: number): void {
    if (epoch > this.promised + JOURNAL_EPOCH_STEP_MAX) {
      throw new JournalError(409, `journal ${this.name}: epoch ${epoch} is more than ${JOURNAL_EPOCH_STEP_MAX} above the promised epoch ${this.promised}; a writer takes one above the highest promise it saw`);
    }
  }

  private raise(epoch: number, ops: JournalStorageOp[]): void {
    if (epoch > this.promised) {
      this.promised = epoch;
      ops.push({ kind: 'promise', epoch });
    }
  }

  /**
   * Invariant: whatever a request writes (edits, a segment's start or end, a recovery's choice), it
   * writes at the promised epoch: after its checks and raise(), its epoch is the promise. A request
   * below the promise that got this far went past the fence.
   */
  private writesAtPromise(epoch: number, what: string): void {
    if (epoch !== this.promised) invariantFailed('journal.write-at-promise', { journal: this.name, what, epoch, promisedEpoch: this.promised, writerEpoch: this.writerEpoch });
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
    if (!Number.isSafeInteger(epoch) || epoch <= this.promised) {
      throw new JournalError(409, `journal ${this.name}: epoch ${epoch} is not above the promised epoch ${this.promised}`);
    }
    this.checkStep(epoch);
    this.promised = epoch;
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
    if (last !== null && !last.inProgress && txid > last.endTxid + 1n) {
      // This node missed edits (it was down): it catches up from its peers, then takes part again.
      throw new JournalError(409, `journal ${this.name}: cannot start a segment at ${txid}: this node lacks txids ${last.endTxid + 1n}-${txid - 1n} (catching up from its peers)`);
    }
    const existing = this.segment(txid);
    if (existing !== undefined) {
      // Restarting the same segment is fine while it holds nothing (a writer that retried).
      if (existing.endTxid >= existing.startTxid) throw new JournalError(409, `journal ${this.name}: segment ${txid} already holds edits up to ${existing.endTxid}`);
    }
    this.raise(epoch, ops);
    this.writesAtPromise(epoch, `startSegment ${txid}`);
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
    const batchEnd = req.firstTxid + BigInt(req.records.length) - 1n;
    // Part or all of it is here already: copied by catch-up from a peer's copy of this same
    // writer's segment before the writer's own batch arrived. A writer writes each txid once, so
    // the edits are the same: the batch is taken, only what is new is written.
    const overlap = req.firstTxid < next && seg.writerEpoch === req.epoch && req.firstTxid >= seg.startTxid ? Number(next - req.firstTxid) : 0;
    if (req.firstTxid !== next && overlap === 0) {
      throw new JournalError(409, `journal ${this.name}: txid gap: the batch starts at ${req.firstTxid}, the segment expects ${next}`);
    }
    const end = batchEnd > seg.endTxid ? batchEnd : seg.endTxid;
    if (req.committedTxid !== undefined && req.committedTxid > end) {
      throw new JournalError(400, `journal ${this.name}: committed txid ${req.committedTxid} is beyond what was written (${end})`);
    }
    if (overlap < req.records.length) {
      this.writesAtPromise(req.epoch, `journal ${req.firstTxid}`);
      seg.endTxid = end;
      ops.push({ kind: 'append', segmentTxid: seg.startTxid, firstTxid: req.firstTxid + BigInt(overlap), records: req.records.slice(overlap) });
    }
    this.recent.set(key, req.checksum);
    if (this.recent.size > RECENT_BATCHES_MAX) this.recent.delete(this.recent.keys().next().value!);
    this.noteCommitted(req.committedTxid, ops);
    return ops;
  }

  /** The writer says how far a majority acknowledged when it has no batch to carry it (readers wait on it). */
  commit(epoch: number, txid: bigint): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    this.checkWriter(epoch);
    const end = this.lastSegment?.endTxid ?? 0n;
    if (txid > end) throw new JournalError(409, `journal ${this.name}: committed txid ${txid} is beyond what this node has (${end})`);
    this.noteCommitted(txid, ops);
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
    this.writesAtPromise(epoch, `finalizeSegment ${startTxid}-${endTxid}`);
    seg.inProgress = false;
    ops.push({ kind: 'finalize', startTxid, endTxid });
    // A finalized segment is decided (its writer saw every batch acknowledged, or recovery chose it): readers may have all of it.
    this.noteCommitted(endTxid, ops);
    return ops;
  }

  /** Recovery, phase one: what this node has of segment `startTxid` (and the writer stops writing here). */
  prepareRecovery(epoch: number, startTxid: bigint): { ops: JournalStorageOp[]; answer: PrepareRecoveryAnswer & { committedTxid: bigint } } {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    this.raise(epoch, ops);
    const seg = this.segment(startTxid);
    const segment = seg === undefined || seg.endTxid < seg.startTxid ? null : { startTxid, endTxid: seg.endTxid, inProgress: seg.inProgress, writerEpoch: seg.writerEpoch };
    const acceptedInEpoch = this.acceptedRecovery?.segment.startTxid === startTxid ? this.acceptedRecovery.epoch : null;
    return { ops, answer: { segment, acceptedInEpoch, lastWriterEpoch: this.writerEpoch, committedTxid: this.committed } };
  }

  /**
   * Recovery, phase two: make this node's copy the chosen one. When ours lacks part of the chosen
   * copy, returns what to fetch (`fetchFrom`..chosen end, from a node that has it) and how much of
   * ours stays (`keepTo`): nothing is cut yet. The driver fetches it all, hands it to
   * adoptRecovered (the cut and the replacement together), and calls acceptRecovery again. A copy
   * longer than the chosen one is cut back. Never below the committed txid: those edits are on a
   * majority, and every copy recovery may choose holds them as they are here.
   */
  acceptRecovery(epoch: number, chosen: SegmentState): { ops: JournalStorageOp[]; fetchFrom: bigint | null; keepTo: bigint } {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    if (chosen.endTxid < this.committed) {
      throw new JournalError(409, `journal ${this.name}: recovery would end segment ${chosen.startTxid} at ${chosen.endTxid}, below the committed txid ${this.committed}`);
    }
    this.raise(epoch, ops);
    const seg = this.segment(chosen.startTxid);
    const before = chosen.startTxid - 1n;
    let keepTo = seg === undefined ? before : seg.endTxid;
    const otherWriter = seg !== undefined && chosen.writerEpoch !== undefined && seg.writerEpoch !== chosen.writerEpoch && seg.endTxid >= seg.startTxid;
    if (otherWriter) {
      // Another writer's edits under the same txids: only the committed prefix is the chosen copy's too.
      if (!seg.inProgress) throw new JournalError(409, `journal ${this.name}: segment ${seg.startTxid} is finalized with writer epoch ${seg.writerEpoch}, recovery chose epoch ${chosen.writerEpoch}`);
      const committedHere = this.committed < seg.endTxid ? this.committed : seg.endTxid;
      keepTo = committedHere > before ? committedHere : before;
    }
    if (keepTo < chosen.endTxid) return { ops, fetchFrom: keepTo + 1n, keepTo };
    if (seg !== undefined && seg.endTxid > chosen.endTxid) this.cutTo(seg, chosen.endTxid, ops);
    if (otherWriter && seg.writerEpoch !== chosen.writerEpoch) {
      seg.writerEpoch = chosen.writerEpoch!;
      ops.push({ kind: 'startSegment', startTxid: seg.startTxid, writerEpoch: seg.writerEpoch });
    }
    this.writesAtPromise(epoch, `acceptRecovery ${chosen.startTxid}-${chosen.endTxid}`);
    this.acceptedRecovery = { segment: { ...chosen }, epoch };
    ops.push({ kind: 'accepted', segment: { ...chosen }, epoch });
    return { ops, fetchFrom: null, keepTo: chosen.endTxid };
  }

  /**
   * The chosen copy's edits from keepTo + 1 on, fetched whole before anything of ours is cut:
   * our copy past keepTo is replaced by them in one go, so a failed fetch leaves ours as it was.
   */
  adoptRecovered(startTxid: bigint, keepTo: bigint, records: Uint8Array[], writerEpoch: number): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    const seg = this.segment(startTxid);
    if (seg !== undefined && seg.endTxid > keepTo) this.cutTo(seg, keepTo, ops);
    ops.push(...this.adoptFetched(startTxid, keepTo + 1n, records, writerEpoch));
    return ops;
  }

  /** Cuts an in-progress segment back to `end`; the committed txid is a floor no request moves. */
  private cutTo(seg: JournalSegment, end: bigint, ops: JournalStorageOp[]): void {
    if (end < this.committed) {
      throw new JournalError(409, `journal ${this.name}: segment ${seg.startTxid} would be cut to ${end}, below the committed txid ${this.committed}`);
    }
    seg.endTxid = end;
    ops.push({ kind: 'truncate', startTxid: seg.startTxid, endTxid: end });
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

  /**
   * The next thing to copy from a peer, or null when the peer has nothing we lack: finalized
   * segments (only recovery, or the writer after its last acknowledgment, finalizes, so all
   * finalized copies agree; ours in progress is replaced), and the edits of the segment the
   * peer's current writer is writing, while that writer is current here too (no newer promise):
   * holding them is the same as having been sent them by that writer, whose acknowledgments
   * count only the nodes that answered it. Our copy of a segment written by an older writer is
   * replaced (none of its edits were acknowledged: the newer writer found the segment empty on a
   * majority, or it would have recovered it).
   */
  catchUpStep(peer: PeerJournal): CatchUpStep | null {
    for (const p of peer.segments) {
      const ours = this.segment(p.startTxid);
      const oursEmpty = ours === undefined || ours.endTxid < ours.startTxid;
      const last = this.lastSegment;
      if (!p.inProgress) {
        if (p.endTxid < p.startTxid) continue;
        if (ours !== undefined && !ours.inProgress) continue;
        // A segment we never had fits only after everything we have (we never insert before an open one).
        // ...and right after it: a hole (the peer purged what we lack) is never papered over.
        if (ours === undefined && last !== null && (last.inProgress || last.endTxid + 1n !== p.startTxid)) continue;
        const replace = !oursEmpty && (ours!.writerEpoch !== p.writerEpoch || ours!.endTxid > p.endTxid);
        const from = ours === undefined || replace ? p.startTxid : ours.endTxid + 1n;
        return { startTxid: p.startTxid, fromTxid: from, toTxid: p.endTxid, writerEpoch: p.writerEpoch, replace, finalizeAt: p.endTxid };
      }
      if (p.writerEpoch !== peer.lastWriterEpoch || p.writerEpoch !== peer.promisedEpoch || this.promised > p.writerEpoch) continue;
      const upTo = p.endTxid;
      if (upTo < p.startTxid) continue;
      if (ours === undefined) {
        if (last !== null && (last.inProgress || last.endTxid + 1n !== p.startTxid)) continue;
      } else {
        if (!ours.inProgress) continue;
        if (!oursEmpty && ours.writerEpoch > p.writerEpoch) continue;
      }
      const replace = !oursEmpty && ours!.writerEpoch !== p.writerEpoch;
      const from = ours === undefined || replace ? p.startTxid : ours.endTxid + 1n;
      if (from > upTo) continue;
      return { startTxid: p.startTxid, fromTxid: from, toTxid: upTo, writerEpoch: p.writerEpoch, replace, finalizeAt: null };
    }
    return null;
  }

  /**
   * A batch from the current writer that starts past this node's end (it missed batches while it
   * was down or slow): the edits to copy from a peer's copy of the same writer's segment before
   * the batch can be written here. null when the batch fits, or is not the current writer's.
   */
  missingBefore(req: { epoch: number; segmentTxid: bigint; firstTxid: bigint }): CatchUpStep | null {
    if (req.epoch !== this.writerEpoch || this.open !== req.segmentTxid) return null;
    const seg = this.segment(req.segmentTxid)!;
    if (req.firstTxid <= seg.endTxid + 1n) return null;
    return { startTxid: seg.startTxid, fromTxid: seg.endTxid + 1n, toTxid: req.firstTxid - 1n, writerEpoch: req.epoch, replace: false, finalizeAt: null };
  }

  /**
   * Edits copied from a peer for `step` (`records` start at step.fromTxid, possibly fewer than
   * asked). The copied writer's epoch becomes our promise and writer epoch when it is newer: we
   * now hold that writer's edits, and older writers are fenced here as they are on the peers.
   */
  adoptCopy(step: CatchUpStep, records: Uint8Array[], peerCommitted: bigint): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    const seg = this.segment(step.startTxid);
    if (step.replace && seg !== undefined && seg.endTxid >= seg.startTxid) {
      if (!seg.inProgress) throw new JournalError(409, `journal ${this.name}: segment ${seg.startTxid} is finalized here; it is not replaced`);
      seg.endTxid = seg.startTxid - 1n;
      ops.push({ kind: 'truncate', startTxid: seg.startTxid, endTxid: seg.startTxid - 1n });
    }
    if (records.length > 0) ops.push(...this.adoptFetched(step.startTxid, step.fromTxid, records, step.writerEpoch));
    else if (seg === undefined) ops.push(...this.adoptFetched(step.startTxid, step.fromTxid, [], step.writerEpoch));
    const now = this.segment(step.startTxid)!;
    if (step.finalizeAt !== null && now.endTxid === step.finalizeAt) {
      now.inProgress = false;
      ops.push({ kind: 'finalize', startTxid: now.startTxid, endTxid: now.endTxid });
      this.noteCommitted(now.endTxid, ops);
    } else if (step.finalizeAt === null) {
      this.raise(step.writerEpoch, ops);
      // A copy of an in-progress segment is that writer's batches taken here: at or above the promise, as its own would be.
      if (step.writerEpoch !== this.promised) invariantFailed('journal.write-at-promise', { journal: this.name, what: `catch-up copy of segment ${step.startTxid}`, writerEpoch: step.writerEpoch, promisedEpoch: this.promised });
      if (step.writerEpoch > this.writerEpoch) {
        this.writerEpoch = step.writerEpoch;
        ops.push({ kind: 'writerEpoch', epoch: step.writerEpoch });
      }
    }
    const committed = peerCommitted < now.endTxid ? peerCommitted : now.endTxid;
    this.noteCommitted(committed, ops);
    return ops;
  }

  /** Finalized segments that end before `beforeTxid` go (never past the committed txid). */
  purge(epoch: number, beforeTxid: bigint): JournalStorageOp[] {
    const ops: JournalStorageOp[] = [];
    this.checkEpoch(epoch);
    if (beforeTxid > this.committed + 1n) {
      throw new JournalError(409, `journal ${this.name}: cannot purge before txid ${beforeTxid}: only txids up to ${this.committed} are committed`);
    }
    this.raise(epoch, ops);
    while (this.segments.length > 0 && !this.segments[0].inProgress && this.segments[0].endTxid < beforeTxid) {
      const s = this.segments.shift()!;
      ops.push({ kind: 'purge', startTxid: s.startTxid, endTxid: s.endTxid });
    }
    return ops;
  }

  /** The first txid this node can serve to a reader: edits before it were purged (or never held). */
  get firstTxid(): bigint | null { return this.segments[0]?.startTxid ?? null; }
}
