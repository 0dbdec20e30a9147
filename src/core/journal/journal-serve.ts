// How a journal node serves what needs more than its own state: a recovery
// that adopts another node's copy, a batch that arrives after batches this
// node missed, a catch-up from a peer. Each is a generator that decides and
// yields what it needs done — make these operations durable, fetch these
// edits from that node — and the driver (the journal node's HTTP server, or
// the simulator) carries each out and resumes it, throwing a failed fetch
// back in. So the rules — fetch all of a recovery's copy before cutting
// anything of ours, take copied edits only from the writer epoch expected,
// fill a gap only from a copy of the same writer's segment — exist once.
import { JournalError, type CatchUpStep, type JournalState, type JournalStorageOp, type PeerJournal } from './journal-state.js';
import type { SegmentState } from './recovery.js';
import type { WriterAnswer, WriterRequest } from './journal-writer.js';

/** How many edits one fetch asks for (a peer may answer fewer: it stops at its byte bound). */
export const COPY_CHUNK_EDITS = 10_000;
/** A recovery's copy is held in memory whole before anything of ours is cut for it. */
export const RECOVERY_FETCH_BYTES_MAX = 256 * 1024 * 1024;

/** A peer's answer to a fetch: edits of segment `start` from `firstTxid`, and the writer epoch its copy of the segment has. */
export interface Fetched { firstTxid: bigint; writerEpoch: number | null; edits: Uint8Array[] }

export type ServeEffect =
  /** Make these durable, in order, before resuming (if that fails, the serving ends there: the driver does not resume it). */
  | { kind: 'apply'; ops: JournalStorageOp[] }
  /** Ask node `node` for edits from..to of its segment starting at `startTxid`; resume with its answer, or throw the failure in. */
  | { kind: 'fetch'; node: number; startTxid: bigint; fromTxid: bigint; toTxid: bigint; max: number };

export type Serving<T> = Generator<ServeEffect, T, Fetched | undefined>;

/** One chunk from a peer, refused unless it starts where asked and (when one is expected) is that writer epoch's copy. */
function* fetchChunk(st: JournalState, node: number, startTxid: bigint, fromTxid: bigint, toTxid: bigint, writerEpoch: number | null): Serving<Fetched> {
  const got = (yield { kind: 'fetch', node, startTxid, fromTxid, toTxid, max: COPY_CHUNK_EDITS })!;
  if (got.edits.length === 0 || got.firstTxid !== fromTxid) throw new JournalError(409, `journal ${st.name}: node ${node} has no txid ${fromTxid} in segment ${startTxid}`);
  if (writerEpoch !== null && got.writerEpoch !== writerEpoch) throw new JournalError(409, `journal ${st.name}: node ${node}'s segment ${startTxid} was written in epoch ${got.writerEpoch}, not ${writerEpoch}`);
  return got;
}

/**
 * accept-recovery: take the chosen copy of the segment. If ours lacks part of it, all of the
 * missing part is fetched from `fromNode` first (nothing of ours is cut unless what replaces it
 * is here), adopted, and the acceptance made again.
 */
export function* serveAcceptRecovery(st: JournalState, epoch: number, chosen: SegmentState, fromNode: number): Serving<void> {
  let r = st.acceptRecovery(epoch, chosen);
  yield { kind: 'apply', ops: r.ops };
  if (r.fetchFrom === null) return;
  const records: Uint8Array[] = [];
  let bytes = 0;
  let writerEpoch = chosen.writerEpoch ?? null;
  for (let next = r.fetchFrom; next <= chosen.endTxid;) {
    const got = yield* fetchChunk(st, fromNode, chosen.startTxid, next, chosen.endTxid, writerEpoch);
    writerEpoch ??= got.writerEpoch;
    for (const e of got.edits) bytes += e.length;
    if (bytes > RECOVERY_FETCH_BYTES_MAX) throw new JournalError(409, `journal ${st.name}: recovering segment ${chosen.startTxid} needs more than ${RECOVERY_FETCH_BYTES_MAX} bytes from node ${fromNode}; roll segments more often`);
    records.push(...got.edits);
    next += BigInt(got.edits.length);
  }
  yield { kind: 'apply', ops: st.adoptRecovered(chosen.startTxid, r.keepTo, records, writerEpoch ?? 0) };
  r = st.acceptRecovery(epoch, chosen);
  yield { kind: 'apply', ops: r.ops };
}

/** How a gap before a batch was filled: from which peer (null: none could; the batch is then refused as a gap), and why the others could not. */
export interface GapFill { from: number | null; edits: number; failures: { peer: number; message: string }[] }

/**
 * Before a writer's batch that follows batches this node missed: copies them from the first of
 * `peers` that has the same writer's copy of the segment, chunk by chunk, each chunk durable before
 * the next. A peer that fails (down, another writer's copy, a failed write) leaves the next one to try.
 */
export function* fillGap(st: JournalState, gap: CatchUpStep, peers: readonly number[]): Serving<GapFill> {
  const failures: GapFill['failures'] = [];
  // What one peer gave before it failed stays: the next peer is asked for the rest.
  let next = gap.fromTxid;
  for (const peer of peers) {
    try {
      while (next <= gap.toTxid) {
        const got = yield* fetchChunk(st, peer, gap.startTxid, next, gap.toTxid, gap.writerEpoch);
        yield { kind: 'apply', ops: st.adoptCopy({ ...gap, fromTxid: next }, got.edits, st.committedTxid) };
        next += BigInt(got.edits.length);
      }
      return { from: peer, edits: Number(next - gap.fromTxid), failures };
    } catch (e) {
      failures.push({ peer, message: (e as Error).message });
    }
  }
  return { from: null, edits: Number(next - gap.fromTxid), failures };
}

/** A writer's batch: the gap before it filled if a peer can, then the batch's own operations (the driver makes them durable, grouped as it likes). */
export function* serveBatch(st: JournalState, req: Parameters<JournalState['journal']>[0], peers: readonly number[]): Serving<{ ops: JournalStorageOp[]; gap: GapFill | null }> {
  const gap = st.missingBefore(req);
  const fill = gap === null ? null : yield* fillGap(st, gap, peers);
  return { ops: st.journal(req), gap: fill };
}

/** What a catch-up from a peer whose manifest is `peer` should fetch next (null: nothing; this node holds what the peer can give). */
export function nextCatchUp(st: JournalState, peer: PeerJournal): { step: CatchUpStep; toTxid: bigint } | null {
  const step = st.catchUpStep(peer);
  if (step === null) return null;
  const last = step.fromTxid + BigInt(COPY_CHUNK_EDITS) - 1n;
  return { step, toTxid: step.toTxid < last ? step.toTxid : last };
}

const sameStep = (a: CatchUpStep | null, b: CatchUpStep) =>
  a !== null && a.startTxid === b.startTxid && a.fromTxid === b.fromTxid && a.writerEpoch === b.writerEpoch && a.replace === b.replace && a.finalizeAt === b.finalizeAt;

/**
 * The operations that adopt a catch-up chunk `got` fetched for `step` (a step with nothing to copy
 * only finalizes: pass null), or null when the chunk is not what was asked (empty, elsewhere, another
 * writer's copy) or the state moved while it was fetched: the catch-up stops there and starts over.
 * Call it in the journal's turn, with the state as it is then.
 */
export function adoptCaughtUp(st: JournalState, peer: PeerJournal, step: CatchUpStep, got: Fetched | null): JournalStorageOp[] | null {
  const edits = got?.edits ?? [];
  if (step.fromTxid <= step.toTxid && (got === null || edits.length === 0)) return null;
  if (got !== null && (got.firstTxid !== step.fromTxid || got.writerEpoch !== step.writerEpoch)) return null;
  if (!sameStep(st.catchUpStep(peer), step)) return null;
  return st.adoptCopy(step, edits, peer.committedTxid);
}

/**
 * A writer's request as a journal node serves it, with every storage operation durable before the
 * answer (the answer a refusal gets is the JournalError thrown). A batch's own operations are
 * yielded like the rest; a driver that groups batches calls serveBatch itself.
 */
export function* serveWriterRequest(st: JournalState, req: WriterRequest, peers: readonly number[]): Serving<Extract<WriterAnswer, { ok: true }>> {
  switch (req.kind) {
    case 'getState': return { ok: true, promisedEpoch: st.promisedEpoch };
    case 'newEpoch': {
      const r = st.newEpoch(req.epoch);
      yield { kind: 'apply', ops: r.ops };
      return { ok: true, lastSegmentTxid: r.lastSegmentTxid };
    }
    case 'prepareRecovery': {
      const r = st.prepareRecovery(req.epoch, req.segmentTxid);
      yield { kind: 'apply', ops: r.ops };
      return { ok: true, recovery: r.answer };
    }
    case 'acceptRecovery': yield* serveAcceptRecovery(st, req.epoch, req.segment, req.fromNode); return { ok: true };
    case 'finalize': yield { kind: 'apply', ops: st.finalizeSegment(req.epoch, req.startTxid, req.endTxid) }; return { ok: true };
    case 'startSegment': yield { kind: 'apply', ops: st.startSegment(req.epoch, req.txid) }; return { ok: true };
    case 'journal': {
      const { ops } = yield* serveBatch(st, req, peers);
      yield { kind: 'apply', ops };
      return { ok: true };
    }
  }
}
