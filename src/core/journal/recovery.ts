// Choosing how to recover the last segment a writer left unfinalized, as
// Hadoop's QJM does (SegmentRecoveryComparator), on the answers of a majority
// of journal nodes to prepareRecovery: a node that has the segment beats one
// that has not; a finalized copy beats an in-progress one (finalized copies
// are all the same length: only recovery finalizes); among in-progress
// copies, the one seen in the higher epoch (the epoch it was accepted in by
// an earlier recovery, or its writer's) wins, then the longer. The winner is
// what every node then accepts and finalizes (acceptRecovery). Pure.

export interface SegmentState {
  startTxid: bigint;
  endTxid: bigint;
  inProgress: boolean;
  /**
   * The epoch of the writer whose edits this copy holds. Two copies of one segment with the same
   * end are the same copy only if it is the same: a writer that found a segment empty on a
   * majority starts it again, and a node outside that majority may hold another writer's edits.
   */
  writerEpoch?: number;
}

export interface PrepareRecoveryAnswer {
  /** The node's copy of the segment that starts at the txid asked about, if it has one. */
  segment: SegmentState | null;
  /** The epoch in which an earlier recovery made this node accept its copy, if one did. */
  acceptedInEpoch: number | null;
  /** The epoch of the last writer that wrote to this node. */
  lastWriterEpoch: number;
}

/** > 0 when `a` is the better copy to recover from, < 0 when `b` is, 0 when they are as good. */
export function compareRecovery(a: PrepareRecoveryAnswer, b: PrepareRecoveryAnswer): number {
  if ((a.segment === null) !== (b.segment === null)) return a.segment !== null ? 1 : -1;
  if (a.segment === null || b.segment === null) return 0;
  if (a.segment.startTxid !== b.segment.startTxid) {
    throw new Error(`recovery answers about different segments: ${a.segment.startTxid} and ${b.segment.startTxid}`);
  }
  if (a.segment.inProgress !== b.segment.inProgress) return a.segment.inProgress ? -1 : 1;
  if (!a.segment.inProgress) {
    if (a.segment.endTxid !== b.segment.endTxid) {
      throw new Error(`finalized copies of segment ${a.segment.startTxid} end at ${a.segment.endTxid} and ${b.segment.endTxid}: only recovery finalizes, so they must agree`);
    }
    return 0;
  }
  const seen = (x: PrepareRecoveryAnswer) => Math.max(x.acceptedInEpoch ?? 0, x.lastWriterEpoch);
  const byEpoch = seen(a) - seen(b);
  if (byEpoch !== 0) return byEpoch;
  return a.segment.endTxid === b.segment.endTxid ? 0 : a.segment.endTxid > b.segment.endTxid ? 1 : -1;
}

/**
 * The answer to recover from, among a majority's, or null when no node has the segment (nothing
 * to recover: the writer died before writing to it). Ties keep the first.
 */
export function chooseRecovery<T extends PrepareRecoveryAnswer>(answers: readonly T[]): T | null {
  let best: T | null = null;
  for (const a of answers) if (a.segment !== null && (best === null || compareRecovery(a, best) > 0)) best = a;
  return best;
}
