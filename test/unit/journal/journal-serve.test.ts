// The journal node's rules for what needs a peer's copy (journal-serve.ts), driven by hand: every
// effect the serving asks for is recorded, and each fetch is answered (or failed) by the test.
import { describe, expect, it } from 'vitest';
import { JournalError, JournalState, type JournalDisk, type JournalStorageOp } from '../../../src/core/journal/journal-state.js';
import { adoptCaughtUp, fillGap, nextCatchUp, serveAcceptRecovery, serveBatch, type Fetched, type ServeEffect, type Serving } from '../../../src/core/journal/journal-serve.js';

const empty = (): JournalDisk => ({ promisedEpoch: 0, lastWriterEpoch: 0, committedTxid: 0n, segments: [], accepted: null });
const recs = (from: number, to: number, tag = 'w1') => Array.from({ length: to - from + 1 }, (_, i) => new TextEncoder().encode(`${tag}:${from + i}`));
const text = (ops: JournalStorageOp[]) => ops.flatMap((o) => (o.kind === 'append' ? o.records.map((r) => new TextDecoder().decode(r)) : []));

/** Writer epoch 1 wrote txids 1..5 to segment 1 (in progress), 3 of them committed. */
function written(): JournalState {
  const j = new JournalState('svc', empty());
  j.newEpoch(1);
  j.startSegment(1, 1n);
  j.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(1, 5), checksum: 'a', committedTxid: 3n });
  return j;
}

type Fetch = Extract<ServeEffect, { kind: 'fetch' }>;

/** Runs a serving to its end; `answer` answers each fetch (an Error is thrown back in). */
function run<T>(serving: Serving<T>, answer: (f: Fetch) => Fetched | Error): { result: T; effects: ServeEffect[] } {
  const effects: ServeEffect[] = [];
  let input: { fetched?: Fetched; failed?: Error } = {};
  for (let i = 0; i < 1000; i++) {
    const r = input.failed !== undefined ? serving.throw(input.failed) : serving.next(input.fetched);
    if (r.done) return { result: r.value, effects };
    effects.push(r.value);
    if (r.value.kind === 'apply') { input = {}; continue; }
    const a = answer(r.value);
    input = a instanceof Error ? { failed: a } : { fetched: a };
  }
  throw new Error('the serving did not end in 1000 steps');
}

const applied = (effects: ServeEffect[]) => effects.flatMap((e) => (e.kind === 'apply' ? e.ops : []));

describe('fillGap: a batch after batches this node missed', () => {
  it('takes the gap only from a peer holding the same writer\'s copy, chunk by chunk, and then the batch', () => {
    const j = written();
    const asked: string[] = [];
    const { result, effects } = run(serveBatch(j, { epoch: 1, segmentTxid: 1n, firstTxid: 9n, records: recs(9, 9), checksum: 'b', committedTxid: 5n }, [2, 3]), (f) => {
      asked.push(`${f.node}:${f.fromTxid}-${f.toTxid}`);
      // Node 2 holds another writer's edits under the same segment start: not this writer's batches.
      if (f.node === 2) return { firstTxid: f.fromTxid, writerEpoch: 2, edits: recs(6, 8, 'w2') };
      // Node 3 has them, and answers a short chunk first (its byte bound).
      return { firstTxid: f.fromTxid, writerEpoch: 1, edits: recs(Number(f.fromTxid), Math.min(Number(f.toTxid), Number(f.fromTxid) + 1)) };
    });
    expect(asked).toEqual(['2:6-8', '3:6-8', '3:8-8']);
    expect(result.gap).toMatchObject({ from: 3, edits: 3, failures: [{ peer: 2, message: expect.stringMatching(/written in epoch 2, not 1/) }] });
    expect(text(applied(effects))).toEqual(['w1:6', 'w1:7', 'w1:8']);
    expect(text(result.ops)).toEqual(['w1:9']);
    expect(j.lastSegment).toMatchObject({ startTxid: 1n, endTxid: 9n, writerEpoch: 1 });
  });

  it('a peer that fails midway leaves what it gave; the next is asked for the rest; with none, the batch is refused as a gap', () => {
    const j = written();
    const asked: string[] = [];
    const r = run(fillGap(j, j.missingBefore({ epoch: 1, segmentTxid: 1n, firstTxid: 9n })!, [2, 3]), (f) => {
      asked.push(`${f.node}:${f.fromTxid}`);
      if (f.node === 2 && f.fromTxid === 6n) return { firstTxid: 6n, writerEpoch: 1, edits: recs(6, 6) };
      if (f.node === 2) return new Error('node 2: connection reset');
      return { firstTxid: f.fromTxid, writerEpoch: 1, edits: [] };
    });
    expect(asked).toEqual(['2:6', '2:7', '3:7']);
    expect(r.result).toMatchObject({ from: null, edits: 1, failures: [{ peer: 2 }, { peer: 3, message: expect.stringMatching(/no txid 7/) }] });
    expect(j.lastSegment?.endTxid).toBe(6n);
    expect(() => run(serveBatch(j, { epoch: 1, segmentTxid: 1n, firstTxid: 9n, records: recs(9, 9), checksum: 'b', committedTxid: 5n }, []), () => new Error('unused'))).toThrow(JournalError);
  });
});

describe('serveAcceptRecovery: adopting the chosen copy', () => {
  const chosen = { startTxid: 1n, endTxid: 8n, inProgress: true, writerEpoch: 1 };

  it('fetches all that is missing before anything of ours changes; a failed fetch leaves our copy as it was', () => {
    const j = written();
    const serving = serveAcceptRecovery(j, 2, chosen, 2);
    let calls = 0;
    expect(() => run(serving, (f) => (++calls === 1 ? { firstTxid: f.fromTxid, writerEpoch: 1, edits: recs(6, 6) } : new JournalError(409, 'node 2 went away')))).toThrow(/went away/);
    expect(j.lastSegment).toMatchObject({ startTxid: 1n, endTxid: 5n, writerEpoch: 1 });
    expect(j.promisedEpoch).toBe(2);
  });

  it('refuses a copy of another writer than the chosen one', () => {
    const j = written();
    expect(() => run(serveAcceptRecovery(j, 2, chosen, 2), (f) => ({ firstTxid: f.fromTxid, writerEpoch: 3, edits: recs(6, 8, 'w3') }))).toThrow(/written in epoch 3, not 1/);
    expect(j.lastSegment?.endTxid).toBe(5n);
  });

  it('adopts the fetched edits, then accepts', () => {
    const j = written();
    const { effects } = run(serveAcceptRecovery(j, 2, chosen, 2), (f) => ({ firstTxid: f.fromTxid, writerEpoch: 1, edits: recs(Number(f.fromTxid), Number(f.toTxid)) }));
    const ops = applied(effects);
    expect(text(ops)).toEqual(['w1:6', 'w1:7', 'w1:8']);
    expect(ops.at(-1)).toMatchObject({ kind: 'accepted', epoch: 2, segment: { endTxid: 8n } });
    expect(j.lastSegment).toMatchObject({ endTxid: 8n });
  });
});

describe('catch-up: a chunk is adopted only if it is what was asked, and the state has not moved', () => {
  const peerWith = (writerEpoch: number) => ({ promisedEpoch: writerEpoch, lastWriterEpoch: writerEpoch, committedTxid: 5n, segments: [{ startTxid: 1n, endTxid: 8n, inProgress: true, writerEpoch }] });

  it('takes the current writer\'s edits', () => {
    const j = written();
    const m = peerWith(1);
    const next = nextCatchUp(j, m)!;
    expect(next).toMatchObject({ step: { fromTxid: 6n, toTxid: 8n, writerEpoch: 1 }, toTxid: 8n });
    const ops = adoptCaughtUp(j, m, next.step, { firstTxid: 6n, writerEpoch: 1, edits: recs(6, 8) });
    expect(text(ops!)).toEqual(['w1:6', 'w1:7', 'w1:8']);
  });

  it('refuses a chunk from another writer\'s copy, one that starts elsewhere, or an empty one', () => {
    for (const got of [{ firstTxid: 6n, writerEpoch: 2, edits: recs(6, 8, 'w2') }, { firstTxid: 7n, writerEpoch: 1, edits: recs(7, 8) }, { firstTxid: 6n, writerEpoch: 1, edits: [] }]) {
      const j = written();
      const m = peerWith(1);
      expect(adoptCaughtUp(j, m, nextCatchUp(j, m)!.step, got)).toBeNull();
      expect(j.lastSegment?.endTxid).toBe(5n);
    }
  });

  it('refuses a chunk fetched before a newer promise was made here (it would be the old writer\'s batch below the promise)', () => {
    const j = written();
    const m = peerWith(1);
    const { step } = nextCatchUp(j, m)!;
    j.newEpoch(2);
    expect(adoptCaughtUp(j, m, step, { firstTxid: 6n, writerEpoch: 1, edits: recs(6, 8) })).toBeNull();
    expect(j.lastSegment?.endTxid).toBe(5n);
  });
});
