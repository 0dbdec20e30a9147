import { describe, expect, it } from 'vitest';
import {
  JournalError, JournalState, type CatchUpStep, type JournalDisk, type JournalSegment, type PeerJournal,
} from '../../../src/core/journal/journal-state.js';

const empty = (): JournalDisk => ({ promisedEpoch: 0, lastWriterEpoch: 0, committedTxid: 0n, segments: [], accepted: null });
const recs = (n: number, tag = 'e') => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`${tag}${i}`));

function thrown(f: () => unknown): JournalError {
  try { f(); } catch (e) { if (e instanceof JournalError) return e; throw e; }
  throw new Error('did not throw');
}

/** A journal where writer epoch 1 wrote txids 1..5 to segment 1 (in progress). */
function written(): JournalState {
  const j = new JournalState('svc', empty());
  j.newEpoch(1);
  j.startSegment(1, 1n);
  j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(5), checksum: 'a', committedTxid: 3n });
  return j;
}

describe('JournalState', () => {
  it('grants an epoch only above its promise, and newEpoch finalizes nothing', () => {
    const j = written();
    expect(thrown(() => j.newEpoch(1))).toMatchObject({ status: 409, message: expect.stringMatching(/epoch 1 is not above the promised epoch 1/) });
    const r = j.newEpoch(2);
    expect(r.ops).toEqual([{ kind: 'promise', epoch: 2 }]);
    expect(r.lastSegmentTxid).toBe(1n);
    expect(j.lastSegment).toMatchObject({ startTxid: 1n, endTxid: 5n, inProgress: true });
  });

  it('no request can use up the epochs: a promise moves at most 2^20 at a time, and epochs go past 2^31 (hole: new-epoch 2147483647 wedged the journal)', () => {
    const j = written();
    const big = thrown(() => j.newEpoch(2147483647));
    expect(big).toMatchObject({ status: 409, message: expect.stringMatching(/epoch 2147483647 is more than 1048576 above the promised epoch 1/) });
    expect(j.promisedEpoch).toBe(1);
    // Every other request that carries an epoch is held to the same step.
    expect(thrown(() => j.startSegment(2 ** 40, 6n)).status).toBe(409);
    expect(thrown(() => j.prepareRecovery(2 ** 40, 1n)).status).toBe(409);
    expect(thrown(() => j.newEpoch(Number.MAX_SAFE_INTEGER + 2)).status).toBe(409);
    // A journal that reached 2^31 legitimately goes on.
    const k = new JournalState('svc', { ...empty(), promisedEpoch: 2147483647, lastWriterEpoch: 2147483647 });
    expect(k.newEpoch(2147483648).ops).toEqual([{ kind: 'promise', epoch: 2147483648 }]);
    expect(k.startSegment(2147483648, 1n).map((o) => o.kind)).toContain('startSegment');
  });

  it('fences a writer below the promise, naming both epochs, and changes nothing', () => {
    const j = written();
    j.newEpoch(2);
    const e = thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(1), checksum: 'b' }));
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/epoch 1 is below the promised epoch 2/);
    expect(j.lastSegment?.endTxid).toBe(5n);
    // The new writer's epoch is not yet the writer's until it starts a segment.
    expect(thrown(() => j.journal({ epoch: 2, segmentTxid: 1n, firstTxid: 6n, records: recs(1), checksum: 'b' })).message)
      .toMatch(/epoch 2 is not the current writer's epoch 1/);
  });

  it('takes contiguous batches only, and a retried batch once', () => {
    const j = written();
    expect(thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 8n, records: recs(1), checksum: 'x' })).message)
      .toMatch(/txid gap: the batch starts at 8, the segment expects 6/);
    const again = j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(5), checksum: 'a', committedTxid: 4n });
    expect(again).toEqual([{ kind: 'committed', txid: 4n }]); // nothing appended twice
    expect(thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(5, 'z'), checksum: 'other' })).message)
      .toMatch(/already written in epoch 1 with other contents/);
    const next = j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(2), checksum: 'c' });
    expect(next.map((o) => o.kind)).toEqual(['append']);
    expect(j.lastSegment?.endTxid).toBe(7n);
  });

  it('refuses a committed txid beyond what was written, changing nothing', () => {
    const j = written();
    const e = thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(1), checksum: 'd', committedTxid: 9n }));
    expect(e.status).toBe(400);
    expect(j.lastSegment?.endTxid).toBe(5n);
    expect(j.committedTxid).toBe(3n);
  });

  it('finalizes at the written end only, and idempotently', () => {
    const j = written();
    expect(thrown(() => j.finalizeSegment(1, 1n, 4n)).message).toMatch(/holds edits up to 5/);
    expect(j.finalizeSegment(1, 1n, 5n)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 5n }, { kind: 'committed', txid: 5n }]);
    expect(j.committedTxid).toBe(5n); // a finalized segment is decided: readers get all of it
    expect(j.finalizeSegment(1, 1n, 5n)).toEqual([]);
    expect(thrown(() => j.finalizeSegment(1, 1n, 6n)).message).toMatch(/finalized at 5, not 6/);
    expect(thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(1), checksum: 'e' })).message).toMatch(/not open for writing/);
  });

  it('replaces a copy of the same length written by another writer than the chosen one, past its committed txid, once the replacement is fetched', () => {
    // This node holds epoch 1's edits 1..5 (3 committed); the recovery chose a copy 1..5 written in epoch 3.
    const j = written();
    const r = j.acceptRecovery(4, { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 3 });
    // Nothing is cut before the chosen copy's edits are here: a failed fetch leaves this copy whole.
    expect(r.ops).toEqual([{ kind: 'promise', epoch: 4 }]);
    expect(r).toMatchObject({ fetchFrom: 4n, keepTo: 3n });
    expect(j.lastSegment).toMatchObject({ endTxid: 5n, writerEpoch: 1 });
    const fetched = j.adoptRecovered(1n, 3n, recs(2, 'w3-'), 3);
    expect(fetched.map((o) => o.kind)).toEqual(['truncate', 'startSegment', 'append']);
    expect(fetched[0]).toEqual({ kind: 'truncate', startTxid: 1n, endTxid: 3n });
    const done = j.acceptRecovery(4, { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 3 });
    expect(done.fetchFrom).toBeNull();
    expect(done.ops.map((o) => o.kind)).toEqual(['accepted']);
  });

  it('never cuts below the committed txid, whatever writer epoch an accept-recovery names (hole: acknowledged edits emptied)', () => {
    // Writer epoch 1 wrote 1..5, all committed (a majority acknowledged them).
    const j = new JournalState('svc', empty());
    j.newEpoch(1);
    j.startSegment(1, 1n);
    j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(5), checksum: 'a', committedTxid: 5n });
    for (let e = 2; e <= 4; e++) {
      j.newEpoch(e);
      const r = j.acceptRecovery(e, { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 90 + e });
      expect(r.ops.filter((o) => o.kind === 'truncate')).toEqual([]);
      expect(r.fetchFrom).toBeNull();
      expect(j.lastSegment).toMatchObject({ startTxid: 1n, endTxid: 5n });
    }
    expect(j.committedTxid).toBe(5n);
    // A fetched "replacement" cannot cut committed edits either.
    expect(thrown(() => j.adoptRecovered(1n, 2n, recs(3, 'x'), 99)).message).toMatch(/would be cut to 2, below the committed txid 5/);
    expect(j.lastSegment).toMatchObject({ endTxid: 5n });
  });

  it('answers prepareRecovery with its copy and epochs, and accepts a recovery: fetch when shorter, cut when longer, never below committed', () => {
    const j = written();
    const p = j.prepareRecovery(2, 1n);
    expect(p.ops).toEqual([{ kind: 'promise', epoch: 2 }]);
    expect(p.answer).toEqual({ segment: { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 1 }, acceptedInEpoch: null, lastWriterEpoch: 1, committedTxid: 3n });
    expect(j.acceptRecovery(2, { startTxid: 1n, endTxid: 7n, inProgress: true }).fetchFrom).toBe(6n);
    expect(thrown(() => j.acceptRecovery(2, { startTxid: 1n, endTxid: 2n, inProgress: true })).message).toMatch(/below the committed txid 3/);
    const cut = j.acceptRecovery(2, { startTxid: 1n, endTxid: 4n, inProgress: true });
    expect(cut.ops).toEqual([
      { kind: 'truncate', startTxid: 1n, endTxid: 4n },
      { kind: 'accepted', segment: { startTxid: 1n, endTxid: 4n, inProgress: true }, epoch: 2 },
    ]);
    expect(j.prepareRecovery(3, 1n).answer.acceptedInEpoch).toBe(2);
  });
});

/** A segment: txids start..end, in progress or finalized, written by writer epoch `we`. */
const seg = (start: number, end: number, inProgress: boolean, we: number): JournalSegment =>
  ({ startTxid: BigInt(start), endTxid: BigInt(end), inProgress, writerEpoch: we });

/** A node restarted from disk with these segments and epochs. */
function node(segments: JournalSegment[], o: { promised: number; writer: number; committed: number }): JournalState {
  return new JournalState('svc', { promisedEpoch: o.promised, lastWriterEpoch: o.writer, committedTxid: BigInt(o.committed), segments, accepted: null });
}

/** A peer's manifest as the catch-up sees it. */
const peer = (segments: JournalSegment[], o: { promised: number; writer: number; committed: number }): PeerJournal =>
  ({ promisedEpoch: o.promised, lastWriterEpoch: o.writer, committedTxid: BigInt(o.committed), segments });

const step = (start: number, from: number, to: number, we: number, replace: boolean, finalizeAt: number | null): CatchUpStep =>
  ({ startTxid: BigInt(start), fromTxid: BigInt(from), toTxid: BigInt(to), writerEpoch: we, replace, finalizeAt: finalizeAt === null ? null : BigInt(finalizeAt) });

describe('catch-up, commit and purge', () => {
  describe('catchUpStep and adoptCopy', () => {
    it('copies a finalized segment of a peer whole onto a node that has no segments, finalizes it and takes its end as committed', () => {
      const j = node([], { promised: 0, writer: 0, committed: 0 });
      const p = peer([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(1, 1, 5, 1, false, 5));
      const ops = j.adoptCopy(s!, recs(5), 5n);
      expect(ops.map((o) => o.kind)).toEqual(['startSegment', 'append', 'finalize', 'committed']);
      expect(ops[0]).toEqual({ kind: 'startSegment', startTxid: 1n, writerEpoch: 1 });
      expect(ops[1]).toMatchObject({ kind: 'append', segmentTxid: 1n, firstTxid: 1n });
      expect(ops.slice(2)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 5n }, { kind: 'committed', txid: 5n }]);
      expect(j.manifest()).toEqual([seg(1, 5, false, 1)]);
      expect(j.committedTxid).toBe(5n);
      // A finalized copy does not make its writer ours: promise and writer epoch stay.
      expect(j.promisedEpoch).toBe(0);
      expect(j.lastWriterEpoch).toBe(0);
      expect(j.firstTxid).toBe(1n);
      expect(j.catchUpStep(p)).toBeNull(); // caught up
    });

    it('copies a finalized segment in chunks: fewer records than asked leave it in progress, committed at most the copied end', () => {
      const j = node([], { promised: 0, writer: 0, committed: 0 });
      const p = peer([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const ops = j.adoptCopy(j.catchUpStep(p)!, recs(3), 5n);
      expect(ops.map((o) => o.kind)).toEqual(['startSegment', 'append', 'committed']);
      expect(ops[2]).toEqual({ kind: 'committed', txid: 3n });
      expect(j.lastSegment).toEqual(seg(1, 3, true, 1));
      expect(j.committedTxid).toBe(3n);
      const rest = j.catchUpStep(p);
      expect(rest).toEqual(step(1, 4, 5, 1, false, 5));
      expect(j.adoptCopy(rest!, recs(2, 'r'), 5n)).toEqual([
        { kind: 'append', segmentTxid: 1n, firstTxid: 4n, records: recs(2, 'r') },
        { kind: 'finalize', startTxid: 1n, endTxid: 5n },
        { kind: 'committed', txid: 5n },
      ]);
      expect(j.lastSegment).toEqual(seg(1, 5, false, 1));
    });

    it('extends our in-progress copy of a segment the peer finalized when it is the same writer\'s prefix', () => {
      const j = node([seg(1, 3, true, 1)], { promised: 1, writer: 1, committed: 2 });
      const p = peer([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(1, 4, 5, 1, false, 5));
      expect(j.adoptCopy(s!, recs(2), 5n)).toEqual([
        { kind: 'append', segmentTxid: 1n, firstTxid: 4n, records: recs(2) },
        { kind: 'finalize', startTxid: 1n, endTxid: 5n },
        { kind: 'committed', txid: 5n },
      ]);
      expect(j.manifest()).toEqual([seg(1, 5, false, 1)]);
      expect(j.committedTxid).toBe(5n);
      expect(j.catchUpStep(p)).toBeNull();
    });

    it('finalizes our whole in-progress copy that a recovery finalized at the same end elsewhere: nothing to copy, only the finalize', () => {
      // This node held all of writer 1's edits but was down while writer 2 recovered (finalized 1..5) and started segment 6.
      const j = node([seg(1, 5, true, 1)], { promised: 1, writer: 1, committed: 3 });
      const p = peer([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 7 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(1, 6, 5, 1, false, 5)); // an empty range: fromTxid is past toTxid
      expect(j.adoptCopy(s!, [], 7n)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 5n }, { kind: 'committed', txid: 5n }]);
      expect(j.catchUpStep(p)).toEqual(step(6, 6, 8, 2, false, null));
    });

    it('replaces our in-progress copy written by another writer epoch than the peer\'s finalized one: truncate before append', () => {
      const j = node([seg(1, 3, true, 1)], { promised: 1, writer: 1, committed: 0 });
      const p = peer([seg(1, 5, false, 2)], { promised: 2, writer: 2, committed: 5 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(1, 1, 5, 2, true, 5));
      expect(j.adoptCopy(s!, recs(5, 'w2-'), 5n)).toEqual([
        { kind: 'truncate', startTxid: 1n, endTxid: 0n },
        { kind: 'startSegment', startTxid: 1n, writerEpoch: 2 },
        { kind: 'append', segmentTxid: 1n, firstTxid: 1n, records: recs(5, 'w2-') },
        { kind: 'finalize', startTxid: 1n, endTxid: 5n },
        { kind: 'committed', txid: 5n },
      ]);
      expect(j.manifest()).toEqual([seg(1, 5, false, 2)]);
      expect(j.catchUpStep(p)).toBeNull();
    });

    it('replaces our in-progress copy that is longer than the peer\'s finalized end, even of the same writer', () => {
      const j = node([seg(1, 7, true, 1)], { promised: 1, writer: 1, committed: 4 });
      const p = peer([seg(1, 5, false, 1)], { promised: 2, writer: 1, committed: 5 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(1, 1, 5, 1, true, 5));
      const ops = j.adoptCopy(s!, recs(5), 5n);
      expect(ops.map((o) => o.kind)).toEqual(['truncate', 'append', 'finalize', 'committed']);
      expect(ops[0]).toEqual({ kind: 'truncate', startTxid: 1n, endTxid: 0n });
      expect(ops[1]).toMatchObject({ kind: 'append', segmentTxid: 1n, firstTxid: 1n });
      expect(j.manifest()).toEqual([seg(1, 5, false, 1)]);
      expect(j.committedTxid).toBe(5n);
    });

    it('refuses to replace a segment that is finalized here', () => {
      const j = node([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const e = thrown(() => j.adoptCopy(step(1, 1, 5, 2, true, 5), recs(5), 5n));
      expect(e.status).toBe(409);
      expect(e.message).toMatch(/segment 1 is finalized here; it is not replaced/);
      expect(j.manifest()).toEqual([seg(1, 5, false, 1)]);
    });

    it('copies the peer\'s in-progress segment of its current writer up to the peer\'s end, beyond its committed txid, and takes that writer\'s epoch', () => {
      const j = node([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const p = peer([seg(1, 5, false, 1), seg(6, 9, true, 2)], { promised: 2, writer: 2, committed: 7 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(6, 6, 9, 2, false, null));
      expect(j.adoptCopy(s!, recs(4), 7n)).toEqual([
        { kind: 'startSegment', startTxid: 6n, writerEpoch: 2 },
        { kind: 'append', segmentTxid: 6n, firstTxid: 6n, records: recs(4) },
        { kind: 'promise', epoch: 2 },
        { kind: 'writerEpoch', epoch: 2 },
        { kind: 'committed', txid: 7n }, // min(peer's committed 7, our end 9)
      ]);
      expect(j.lastSegment).toEqual(seg(6, 9, true, 2));
      expect(j.promisedEpoch).toBe(2);
      expect(j.lastWriterEpoch).toBe(2);
      expect(j.committedTxid).toBe(7n);
      expect(j.catchUpStep(p)).toBeNull();
      // An older writer is now fenced here too.
      expect(thrown(() => j.commit(1, 5n)).status).toBe(403);
    });

    it('raises the committed txid to the copied end only when the peer committed past it', () => {
      const j = node([], { promised: 0, writer: 0, committed: 0 });
      const p = peer([seg(1, 9, true, 2)], { promised: 2, writer: 2, committed: 9 });
      const s = j.catchUpStep(p)!;
      expect(s).toEqual(step(1, 1, 9, 2, false, null));
      const ops = j.adoptCopy(s, recs(4), 9n); // a first chunk of 4
      expect(ops.at(-1)).toEqual({ kind: 'committed', txid: 4n });
      expect(j.committedTxid).toBe(4n);
      expect(j.catchUpStep(p)).toEqual(step(1, 5, 9, 2, false, null));
    });

    it('replaces our in-progress copy of an older writer with the peer\'s in-progress copy of its current writer', () => {
      const j = node([seg(1, 5, false, 1), seg(6, 7, true, 1)], { promised: 1, writer: 1, committed: 5 });
      const p = peer([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 5 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(6, 6, 8, 2, true, null));
      const ops = j.adoptCopy(s!, recs(3), 5n);
      expect(ops.map((o) => o.kind)).toEqual(['truncate', 'startSegment', 'append', 'promise', 'writerEpoch']);
      expect(ops[0]).toEqual({ kind: 'truncate', startTxid: 6n, endTxid: 5n });
      expect(j.lastSegment).toEqual(seg(6, 8, true, 2));
      expect(j.committedTxid).toBe(5n);
    });

    it('copies a peer\'s in-progress segment only when its writer is the peer\'s last writer and its promise, and not below our promise', () => {
      const segs = [seg(1, 5, false, 1), seg(6, 8, true, 2)];
      const fresh = (promised = 1) => node([seg(1, 5, false, 1)], { promised, writer: 1, committed: 5 });
      // The peer promised a newer writer (it has not started its segment yet): the open segment may be recovered shorter.
      expect(fresh().catchUpStep(peer(segs, { promised: 3, writer: 2, committed: 5 }))).toBeNull();
      // The peer's last writer is another than the segment's.
      expect(fresh().catchUpStep(peer(segs, { promised: 3, writer: 3, committed: 5 }))).toBeNull();
      expect(fresh().catchUpStep(peer(segs, { promised: 2, writer: 1, committed: 5 }))).toBeNull();
      // We promised a newer writer than the segment's.
      expect(fresh(3).catchUpStep(peer(segs, { promised: 2, writer: 2, committed: 5 }))).toBeNull();
      // Our promise equal to the segment's writer is fine.
      expect(fresh(2).catchUpStep(peer(segs, { promised: 2, writer: 2, committed: 5 }))).toEqual(step(6, 6, 8, 2, false, null));
      // An empty in-progress segment has nothing to copy.
      expect(fresh().catchUpStep(peer([seg(1, 5, false, 1), seg(6, 5, true, 2)], { promised: 2, writer: 2, committed: 5 }))).toBeNull();
    });

    it('keeps our in-progress copy of a newer writer than the peer\'s', () => {
      const j = node([seg(1, 2, true, 3)], { promised: 3, writer: 3, committed: 0 });
      expect(j.catchUpStep(peer([seg(1, 5, true, 3)], { promised: 3, writer: 3, committed: 0 }))).toEqual(step(1, 3, 5, 3, false, null));
      const newer = node([seg(1, 2, true, 4)], { promised: 4, writer: 4, committed: 0 });
      expect(newer.catchUpStep(peer([seg(1, 5, true, 3)], { promised: 3, writer: 3, committed: 0 }))).toBeNull();
    });

    it('finds nothing to copy when we are not behind the peer', () => {
      const mine = [seg(1, 5, false, 1), seg(6, 8, true, 2)];
      const j = node(mine.map((s) => ({ ...s })), { promised: 2, writer: 2, committed: 7 });
      expect(j.catchUpStep(peer(mine.map((s) => ({ ...s })), { promised: 2, writer: 2, committed: 7 }))).toBeNull();
      expect(j.catchUpStep(peer([], { promised: 0, writer: 0, committed: 0 }))).toBeNull();
    });

    it('finds nothing to copy when the peer is behind us', () => {
      const j = node([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 7 });
      expect(j.catchUpStep(peer([seg(1, 5, false, 1), seg(6, 7, true, 2)], { promised: 2, writer: 2, committed: 6 }))).toBeNull();
      expect(j.catchUpStep(peer([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 }))).toBeNull();
      expect(j.catchUpStep(peer([seg(1, 3, true, 1)], { promised: 1, writer: 1, committed: 2 }))).toBeNull();
    });

    it('does not insert a segment we never had before an in-progress segment of ours', () => {
      // Our segments 1..5 were purged; segment 6 is in progress here. The peer still has 1..5.
      const j = node([seg(6, 7, true, 2)], { promised: 2, writer: 2, committed: 5 });
      const p = peer([seg(1, 5, false, 1), seg(6, 9, false, 2)], { promised: 2, writer: 2, committed: 9 });
      expect(j.catchUpStep(p)).toEqual(step(6, 8, 9, 2, false, 9));
      // With nothing else behind, nothing at all.
      const only = node([seg(6, 7, true, 2)], { promised: 2, writer: 2, committed: 5 });
      expect(only.catchUpStep(peer([seg(1, 5, false, 1)], { promised: 2, writer: 2, committed: 5 }))).toBeNull();
      // Nor does adoptCopy start a segment behind our in-progress one.
      expect(thrown(() => only.adoptCopy(step(1, 1, 5, 1, false, 5), recs(5), 5n)).message).toMatch(/segment 6 is in progress/);
      expect(only.manifest()).toEqual([seg(6, 7, true, 2)]);
      // Nor after it, even when it ends before the peer's segment: it must be finalized first.
      const early = node([seg(1, 3, true, 1)], { promised: 1, writer: 1, committed: 2 });
      expect(early.catchUpStep(peer([seg(6, 9, false, 2)], { promised: 2, writer: 2, committed: 9 }))).toBeNull();
    });

    it('does not copy a peer\'s in-progress segment that does not follow our end', () => {
      const j = node([seg(1, 3, false, 1)], { promised: 1, writer: 1, committed: 3 });
      expect(j.catchUpStep(peer([seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 7 }))).toBeNull();
    });

    it('does not copy a peer\'s finalized segment that would leave a hole after our end', () => {
      // The peer purged 6..7; copying 8..10 here would leave txids 6..7 missing in the middle of our log.
      const j = node([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      expect(j.catchUpStep(peer([seg(8, 10, false, 2), seg(11, 12, true, 3)], { promised: 3, writer: 3, committed: 11 }))).toBeNull();
    });

    it('opens again a restarted node\'s in-progress segment of the current writer once it caught up: the writer\'s next batch is taken', () => {
      // Down after txid 6 of writer 2's segment 6; the writer went on to 8.
      const j = node([seg(1, 5, false, 1), seg(6, 6, true, 2)], { promised: 2, writer: 2, committed: 5 });
      const p = peer([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 7 });
      const s = j.catchUpStep(p);
      expect(s).toEqual(step(6, 7, 8, 2, false, null));
      expect(j.adoptCopy(s!, recs(2), 7n)).toEqual([
        { kind: 'append', segmentTxid: 6n, firstTxid: 7n, records: recs(2) },
        { kind: 'committed', txid: 7n },
      ]);
      expect(j.journal({ epoch: 2, segmentTxid: 6n, firstTxid: 9n, records: recs(1, 'n'), checksum: 'n', committedTxid: 8n })).toEqual([
        { kind: 'append', segmentTxid: 6n, firstTxid: 9n, records: recs(1, 'n') },
        { kind: 'committed', txid: 8n },
      ]);
      expect(j.lastSegment).toEqual(seg(6, 9, true, 2));
    });

    it('takes the current writer\'s batches on a restarted node that had no copy of its segment, once caught up', () => {
      const j = node([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      // Before catching up, the writer's batch is refused: its epoch is not the writer's here yet.
      expect(thrown(() => j.journal({ epoch: 2, segmentTxid: 6n, firstTxid: 9n, records: recs(1), checksum: 'x' })).message)
        .toMatch(/epoch 2 is not the current writer's epoch 1/);
      const p = peer([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 7 });
      j.adoptCopy(j.catchUpStep(p)!, recs(3), 7n);
      expect(j.journal({ epoch: 2, segmentTxid: 6n, firstTxid: 9n, records: recs(2), checksum: 'y' }).map((o) => o.kind)).toEqual(['append']);
      expect(j.lastSegment).toEqual(seg(6, 10, true, 2));
    });
  });

  describe('missingBefore', () => {
    it('names the gap before a batch of the current writer that starts past our end', () => {
      const j = written();
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 9n })).toEqual(step(1, 6, 8, 1, false, null));
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 7n })).toEqual(step(1, 6, 6, 1, false, null));
    });

    it('is null when the batch is contiguous, a retry, of another epoch or segment', () => {
      const j = written();
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 6n })).toBeNull();
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 2n })).toBeNull();
      expect(j.missingBefore({ epoch: 2, segmentTxid: 1n, firstTxid: 9n })).toBeNull();
      expect(j.missingBefore({ epoch: 1, segmentTxid: 6n, firstTxid: 9n })).toBeNull();
      j.newEpoch(2); // the segment is no longer open
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 9n })).toBeNull();
    });

    it('once the gap is copied, the batch fits', () => {
      const j = written();
      const gap = j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 8n })!;
      expect(j.adoptCopy(gap, recs(2, 'g'), j.committedTxid)).toEqual([{ kind: 'append', segmentTxid: 1n, firstTxid: 6n, records: recs(2, 'g') }]);
      expect(j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 8n })).toBeNull();
      expect(j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 8n, records: recs(1), checksum: 'z', committedTxid: 8n }).map((o) => o.kind)).toEqual(['append', 'committed']);
      expect(j.lastSegment?.endTxid).toBe(8n);
      expect(j.committedTxid).toBe(8n);
    });
  });

  describe('startSegment after a finalized segment', () => {
    it('refuses a segment that starts past our end + 1, changing nothing', () => {
      const j = node([seg(1, 5, false, 1)], { promised: 1, writer: 1, committed: 5 });
      const e = thrown(() => j.startSegment(2, 9n));
      expect(e.status).toBe(409);
      expect(e.message).toMatch(/cannot start a segment at 9: this node lacks txids 6-8/);
      expect(j.promisedEpoch).toBe(1);
      expect(j.lastWriterEpoch).toBe(1);
      expect(j.manifest()).toEqual([seg(1, 5, false, 1)]);
      expect(j.startSegment(2, 6n)).toEqual([{ kind: 'promise', epoch: 2 }, { kind: 'writerEpoch', epoch: 2 }, { kind: 'startSegment', startTxid: 6n, writerEpoch: 2 }]);
    });
  });

  describe('commit', () => {
    it('raises the committed txid, never lowers it', () => {
      const j = written(); // committed 3, end 5
      expect(j.commit(1, 5n)).toEqual([{ kind: 'committed', txid: 5n }]);
      expect(j.committedTxid).toBe(5n);
      expect(j.commit(1, 4n)).toEqual([]);
      expect(j.committedTxid).toBe(5n);
    });

    it('refuses a stale epoch (403) and a txid beyond our end (409)', () => {
      const j = written();
      const beyond = thrown(() => j.commit(1, 6n));
      expect(beyond.status).toBe(409);
      expect(beyond.message).toMatch(/committed txid 6 is beyond what this node has \(5\)/);
      j.newEpoch(2);
      const stale = thrown(() => j.commit(1, 4n));
      expect(stale.status).toBe(403);
      expect(stale.message).toMatch(/epoch 1 is below the promised epoch 2/);
      // Promised but not yet the writer: still refused.
      expect(thrown(() => j.commit(2, 4n)).status).toBe(403);
      expect(j.committedTxid).toBe(3n);
    });
  });

  describe('purge', () => {
    const three = () => node([seg(1, 5, false, 1), seg(6, 10, false, 1), seg(11, 12, true, 2)], { promised: 2, writer: 2, committed: 11 });

    it('drops the finalized segments that end before the txid, oldest first', () => {
      const j = three();
      expect(j.firstTxid).toBe(1n);
      expect(j.purge(2, 10n)).toEqual([{ kind: 'purge', startTxid: 1n, endTxid: 5n }]);
      expect(j.firstTxid).toBe(6n);
      expect(j.purge(2, 10n)).toEqual([]);
      expect(j.purge(2, 12n)).toEqual([{ kind: 'purge', startTxid: 6n, endTxid: 10n }]);
      expect(j.firstTxid).toBe(11n);
      expect(j.manifest()).toEqual([seg(11, 12, true, 2)]);
    });

    it('never drops the in-progress segment, even when it ends before the txid', () => {
      const j = node([seg(1, 5, false, 1), seg(6, 8, true, 2)], { promised: 2, writer: 2, committed: 8 });
      expect(j.purge(2, 9n)).toEqual([{ kind: 'purge', startTxid: 1n, endTxid: 5n }]);
      expect(j.manifest()).toEqual([seg(6, 8, true, 2)]);
      expect(j.firstTxid).toBe(6n);
    });

    it('refuses to purge past the committed txid + 1 (409) and a stale epoch (403), changing nothing', () => {
      const j = three();
      const e = thrown(() => j.purge(2, 13n));
      expect(e.status).toBe(409);
      expect(e.message).toMatch(/cannot purge before txid 13: only txids up to 11 are committed/);
      expect(thrown(() => j.purge(1, 6n)).status).toBe(403);
      expect(j.manifest()).toHaveLength(3);
      expect(j.firstTxid).toBe(1n);
    });

    it('is null-first on an empty journal and raises the promise of a newer epoch', () => {
      const e = node([], { promised: 0, writer: 0, committed: 0 });
      expect(e.firstTxid).toBeNull();
      expect(e.purge(0, 1n)).toEqual([]);
      const j = three();
      expect(j.purge(3, 6n)).toEqual([{ kind: 'promise', epoch: 3 }, { kind: 'purge', startTxid: 1n, endTxid: 5n }]);
      expect(j.promisedEpoch).toBe(3);
    });
  });

  describe('finalizeSegment and the committed txid', () => {
    it('raises the committed txid to the end of a segment a recovery finalized', () => {
      const j = written(); // committed 3, end 5
      j.prepareRecovery(2, 1n);
      j.acceptRecovery(2, { startTxid: 1n, endTxid: 4n, inProgress: true, writerEpoch: 1 });
      expect(j.finalizeSegment(2, 1n, 4n)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 4n }, { kind: 'committed', txid: 4n }]);
      expect(j.committedTxid).toBe(4n);
      expect(j.lastSegment).toEqual(seg(1, 4, false, 1));
    });

    it('does not lower the committed txid or repeat it when already there', () => {
      const j = written();
      j.commit(1, 5n);
      expect(j.finalizeSegment(1, 1n, 5n)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 5n }]);
      expect(j.committedTxid).toBe(5n);
    });
  });
});

describe('a batch that overlaps what catch-up already copied', () => {
  it('is taken: the same writer wrote those txids; only the new part is written', () => {
    const j = written(); // writer epoch 1, segment 1, txids 1-5
    // Catch-up copied 6-7 of the same writer's segment from a peer before the writer's batch 6-8 arrived.
    j.adoptCopy({ startTxid: 1n, fromTxid: 6n, toTxid: 7n, writerEpoch: 1, replace: false, finalizeAt: null }, recs(2), 5n);
    const ops = j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(3), checksum: 'b', committedTxid: 5n });
    expect(ops.filter((o) => o.kind === 'append')).toEqual([{ kind: 'append', segmentTxid: 1n, firstTxid: 8n, records: recs(3).slice(2) }]);
    expect(j.lastSegment?.endTxid).toBe(8n);
    // Wholly present: nothing written, still accepted.
    expect(j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 7n, records: recs(2), checksum: 'c' }).filter((o) => o.kind === 'append')).toEqual([]);
  });

  it('a gap is still refused', () => {
    const j = written();
    expect(thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 8n, records: recs(1), checksum: 'd' })).message).toMatch(/txid gap: the batch starts at 8, the segment expects 6/);
  });
});
