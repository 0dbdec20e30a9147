import { describe, expect, it } from 'vitest';
import { JournalError, JournalState, type JournalDisk } from '../../../src/core/journal/journal-state.js';

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
    expect(j.finalizeSegment(1, 1n, 5n)).toEqual([{ kind: 'finalize', startTxid: 1n, endTxid: 5n }]);
    expect(j.finalizeSegment(1, 1n, 5n)).toEqual([]);
    expect(thrown(() => j.finalizeSegment(1, 1n, 6n)).message).toMatch(/finalized at 5, not 6/);
    expect(thrown(() => j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 6n, records: recs(1), checksum: 'e' })).message).toMatch(/not open for writing/);
  });

  it('replaces a copy of the same length written by another writer than the chosen one', () => {
    // This node holds epoch 1's edits 1..5; the recovery chose a copy 1..5 written in epoch 3.
    const j = written();
    const r = j.acceptRecovery(4, { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 3 });
    expect(r.ops).toEqual([{ kind: 'promise', epoch: 4 }, { kind: 'truncate', startTxid: 1n, endTxid: 0n }]);
    expect(r.fetchFrom).toBe(1n);
    const fetched = j.adoptFetched(1n, 1n, recs(5, 'w3-'), 3);
    expect(fetched.map((o) => o.kind)).toEqual(['startSegment', 'append']);
    const done = j.acceptRecovery(4, { startTxid: 1n, endTxid: 5n, inProgress: true, writerEpoch: 3 });
    expect(done.fetchFrom).toBeNull();
    expect(done.ops.map((o) => o.kind)).toEqual(['accepted']);
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
