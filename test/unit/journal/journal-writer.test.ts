// The writer's side of the journal protocol, driven by hand over 3 nodes: every `send` effect is
// answered (or not) by the test through onAnswer(), and the effects that follow are checked.
import { describe, expect, it } from 'vitest';
import { JournalWriter, type WriterAnswer, type WriterEffect, type WriterRequest } from '../../../src/core/journal/journal-writer.js';
import type { PrepareRecoveryAnswer } from '../../../src/core/journal/recovery.js';

const NODES = [1, 2, 3] as const;
const recs = (n: number, tag = 'e') => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`${tag}${i}`));
const checksum = (records: Uint8Array[]) => `sum:${records.length}`;

type Send = Extract<WriterEffect, { kind: 'send' }>;
const OK: WriterAnswer = { ok: true };
const refused = (message = 'fenced: the request\'s epoch 1 is below the promised epoch 2'): WriterAnswer => ({ ok: false, status: 403, message });

/** A writer and what it has asked for and not yet been answered. */
class Harness {
  readonly w = new JournalWriter(NODES, checksum);
  /** The sends of the last drain, in order. */
  sends: Send[] = [];
  /** The other effects of the last drain, in order. */
  events: Exclude<WriterEffect, Send>[] = [];

  drain(): this {
    const all = this.w.drain();
    this.sends = all.filter((e): e is Send => e.kind === 'send');
    this.events = all.filter((e): e is Exclude<WriterEffect, Send> => e.kind !== 'send');
    return this;
  }

  /** The request sent to each node in the last drain: one per node, the same request. */
  request(): WriterRequest {
    expect(this.sends.map((s) => s.node)).toEqual([...NODES]);
    for (const s of this.sends) expect(s.req).toEqual(this.sends[0].req);
    return this.sends[0].req;
  }

  /** Answers the sends `to` nodes (from the given list of sends), then drains. */
  answer(sends: Send[], to: number[], a: WriterAnswer | ((node: number) => WriterAnswer)): this {
    for (const node of to) {
      const s = sends.find((x) => x.node === node)!;
      this.w.onAnswer(s.id, typeof a === 'function' ? a(node) : a);
    }
    return this.drain();
  }

  /** getState, newEpoch and startSegment answered by nodes 1 and 2 on fresh nodes: the writer is open at txid 1. */
  openFresh(): Send[] {
    this.w.open();
    this.drain();
    this.answer(this.sends, [1, 2], { ok: true, promisedEpoch: 0 });
    this.answer(this.sends, [1, 2], { ok: true, lastSegmentTxid: null });
    const start = this.sends;
    this.answer(start, [1, 2], OK);
    expect(this.events).toEqual([{ kind: 'opened', epoch: 1, nextTxid: 1n }]);
    return start;
  }
}

describe('JournalWriter', () => {
  it('opens on fresh nodes: getState, a new epoch above the highest promise a majority has, then a segment at txid 1', () => {
    const h = new Harness();
    expect(h.w.phase).toBe('idle');
    h.w.open();
    h.drain();
    expect(h.w.phase).toBe('opening');
    expect(h.request()).toEqual({ kind: 'getState' });
    expect(new Set(h.sends.map((s) => s.id)).size).toBe(3);
    const state = h.sends;

    h.answer(state, [1], { ok: true, promisedEpoch: 2 });
    expect(h.sends).toEqual([]); // one answer is not a majority
    h.answer(state, [3], { ok: true, promisedEpoch: 4 });
    expect(h.w.epoch).toBe(5);
    expect(h.request()).toEqual({ kind: 'newEpoch', epoch: 5 });
    const newEpoch = h.sends;
    // The third getState answer comes late: it changes nothing, even with a higher promise.
    h.answer(state, [2], { ok: true, promisedEpoch: 9 });
    expect(h.sends).toEqual([]);
    expect(h.w.epoch).toBe(5);

    h.answer(newEpoch, [2, 3], { ok: true, lastSegmentTxid: null });
    expect(h.request()).toEqual({ kind: 'startSegment', epoch: 5, txid: 1n });
    const start = h.sends;
    h.answer(start, [1], OK);
    expect(h.events).toEqual([]);
    expect(h.w.phase).toBe('opening');
    h.answer(start, [3], OK);
    expect(h.events).toEqual([{ kind: 'opened', epoch: 5, nextTxid: 1n }]);
    expect(h.w.phase).toBe('open');
    expect(h.w.segmentStartTxid).toBe(1n);
    expect(h.w.committedTxid).toBe(0n);
    expect(h.w.inFlight).toBe(0);
    expect(() => h.w.open()).toThrow(/open\(\) while open/);
  });

  it('refuses append() before it is open, and an empty batch', () => {
    const h = new Harness();
    expect(() => h.w.append(recs(1))).toThrow(/append\(\) while idle/);
    h.openFresh();
    expect(() => h.w.append([])).toThrow(/an empty batch/);
  });

  it('acknowledges a batch once 2 of 3 nodes made it durable, and carries the committed txid in the next batch', () => {
    const h = new Harness();
    h.openFresh();
    const b1 = h.w.append(recs(2));
    expect(b1).toBe(1);
    h.drain();
    expect(h.request()).toEqual({ kind: 'journal', epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(2), checksum: 'sum:2', committedTxid: 0n });
    const sent = h.sends;
    expect(h.w.inFlight).toBe(1);
    h.answer(sent, [2], OK);
    expect(h.events).toEqual([]);
    expect(h.w.committedTxid).toBe(0n);
    expect(h.w.inFlight).toBe(1);
    h.answer(sent, [3], OK);
    expect(h.events).toEqual([{ kind: 'acked', batch: 1, firstTxid: 1n, lastTxid: 2n }]);
    expect(h.w.committedTxid).toBe(2n);
    expect(h.w.inFlight).toBe(0);
    h.answer(sent, [1], OK); // late: nothing more
    expect(h.events).toEqual([]);

    expect(h.w.append(recs(3))).toBe(2);
    h.drain();
    expect(h.request()).toMatchObject({ kind: 'journal', segmentTxid: 1n, firstTxid: 3n, committedTxid: 2n, checksum: 'sum:3' });
  });

  it('pipelines batches: each is acknowledged on its own majority, and one refusal does not fence', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(1));
    const first = h.drain().sends;
    h.w.append(recs(2));
    const second = h.drain().sends;
    expect(second[0].req).toMatchObject({ firstTxid: 2n, committedTxid: 0n });
    expect(h.w.inFlight).toBe(2);
    h.answer(first, [1], refused());
    expect(h.events).toEqual([]);
    expect(h.w.phase).toBe('open');
    h.answer(first, [2, 3], OK);
    expect(h.events).toEqual([{ kind: 'acked', batch: 1, firstTxid: 1n, lastTxid: 1n }]);
    expect(h.w.committedTxid).toBe(1n);
    expect(h.w.inFlight).toBe(1);
    h.answer(second, [2, 3], OK);
    expect(h.events).toEqual([{ kind: 'acked', batch: 2, firstTxid: 2n, lastTxid: 3n }]);
    expect(h.w.committedTxid).toBe(3n);
    expect(h.w.inFlight).toBe(0);
  });

  it('is fenced by a majority of refusals; later answers change nothing', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(2));
    const sent = h.drain().sends;
    h.answer(sent, [1], refused('first refusal'));
    expect(h.events).toEqual([]);
    h.answer(sent, [3], refused('second refusal'));
    expect(h.events).toEqual([{ kind: 'fenced', reason: 'a majority refused or did not answer (node 1: first refusal; node 3: second refusal)' }]);
    expect(h.w.phase).toBe('fenced');
    h.answer(sent, [2], OK);
    expect(h.events).toEqual([]);
    expect(h.sends).toEqual([]);
    expect(h.w.committedTxid).toBe(0n);
    expect(() => h.w.append(recs(1))).toThrow(/append\(\) while fenced/);
    expect(() => h.w.roll()).toThrow(/roll\(\) while fenced/);
    expect(() => h.w.close()).toThrow(/close\(\) while fenced/);
  });

  it('is fenced while opening when a majority refuses the new epoch', () => {
    const h = new Harness();
    h.w.open();
    h.drain();
    h.answer(h.sends, [1, 2, 3], { ok: true, promisedEpoch: 3 });
    const newEpoch = h.sends;
    expect(newEpoch).toHaveLength(3);
    h.answer(newEpoch, [1, 2], { ok: false, status: 409, message: 'epoch 4 is not above the promised epoch 4' });
    expect(h.events).toEqual([{ kind: 'fenced', reason: 'a majority refused or did not answer (node 1: epoch 4 is not above the promised epoch 4; node 2: epoch 4 is not above the promised epoch 4)' }]);
    h.answer(newEpoch, [3], { ok: true, lastSegmentTxid: null });
    expect(h.sends).toEqual([]);
    expect(h.events).toEqual([]);
  });

  it('ignores answers to ids it never sent, and a second answer to one id', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(1));
    const sent = h.drain().sends;
    h.w.onAnswer(9999, OK);
    h.answer(sent, [1], OK);
    h.answer(sent, [1], OK); // the same node's answer again does not make a majority
    expect(h.events).toEqual([]);
    expect(h.w.inFlight).toBe(1);
  });

  it('refuses roll() and close() with batches in flight', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(1));
    h.drain();
    expect(() => h.w.roll()).toThrow(/1 batches still in flight/);
    expect(() => h.w.close()).toThrow(/1 batches still in flight/);
    expect(h.w.phase).toBe('open');
    expect(h.drain().sends).toEqual([]);
  });

  it('roll() finalizes the segment at the last txid, starts the next one, then says opened with the next txid', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(3));
    h.answer(h.drain().sends, [1, 2], OK);
    h.w.roll();
    h.drain();
    expect(h.w.phase).toBe('rolling');
    expect(h.request()).toEqual({ kind: 'finalize', epoch: 1, startTxid: 1n, endTxid: 3n });
    expect(() => h.w.append(recs(1))).toThrow(/append\(\) while rolling/);
    const fin = h.sends;
    h.answer(fin, [3], OK);
    expect(h.sends).toEqual([]);
    h.answer(fin, [1], OK);
    expect(h.request()).toEqual({ kind: 'startSegment', epoch: 1, txid: 4n });
    expect(h.events).toEqual([]);
    h.answer(h.sends, [1, 3], OK);
    expect(h.events).toEqual([{ kind: 'opened', epoch: 1, nextTxid: 4n }]);
    expect(h.w.phase).toBe('open');
    expect(h.w.segmentStartTxid).toBe(4n);
    expect(h.w.committedTxid).toBe(3n);
    h.w.append(recs(1));
    h.drain();
    expect(h.request()).toMatchObject({ kind: 'journal', segmentTxid: 4n, firstTxid: 4n, committedTxid: 3n });
  });

  it('roll() of an empty segment sends nothing and says opened at once', () => {
    const h = new Harness();
    h.openFresh();
    h.w.roll();
    h.drain();
    expect(h.sends).toEqual([]);
    expect(h.events).toEqual([{ kind: 'opened', epoch: 1, nextTxid: 1n }]);
    expect(h.w.phase).toBe('open');
    expect(h.w.segmentStartTxid).toBe(1n);
  });

  it('close() finalizes the segment on a majority, then says closed', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(2));
    h.answer(h.drain().sends, [2, 3], OK);
    h.w.close();
    h.drain();
    expect(h.w.phase).toBe('closing');
    expect(h.request()).toEqual({ kind: 'finalize', epoch: 1, startTxid: 1n, endTxid: 2n });
    const fin = h.sends;
    h.answer(fin, [2], OK);
    expect(h.events).toEqual([]);
    h.answer(fin, [1], OK);
    expect(h.events).toEqual([{ kind: 'closed' }]);
    expect(h.sends).toEqual([]); // no next segment
    expect(h.w.phase).toBe('closed');
    expect(() => h.w.append(recs(1))).toThrow(/append\(\) while closed/);
  });

  it('close() of an empty segment says closed at once', () => {
    const h = new Harness();
    h.openFresh();
    h.w.close();
    h.drain();
    expect(h.sends).toEqual([]);
    expect(h.events).toEqual([{ kind: 'closed' }]);
    expect(h.w.phase).toBe('closed');
  });

  it('is fenced when a majority refuses to finalize on a roll', () => {
    const h = new Harness();
    h.openFresh();
    h.w.append(recs(1));
    h.answer(h.drain().sends, [1, 2], OK);
    h.w.roll();
    const fin = h.drain().sends;
    h.answer(fin, [1, 2], refused('fenced'));
    expect(h.events).toEqual([{ kind: 'fenced', reason: 'a majority refused or did not answer (node 1: fenced; node 2: fenced)' }]);
    h.answer(fin, [3], OK);
    expect(h.sends).toEqual([]);
  });

  describe('recovery of the segment the last writer left open', () => {
    const prep = (segment: PrepareRecoveryAnswer['segment'], lastWriterEpoch: number, acceptedInEpoch: number | null, committedTxid: bigint): WriterAnswer =>
      ({ ok: true, recovery: { segment, acceptedInEpoch, lastWriterEpoch, committedTxid } });

    /** Open up to the newEpoch answers: nodes promised up to epoch 2. */
    function toNewEpoch(h: Harness): Send[] {
      h.w.open();
      h.drain();
      h.answer(h.sends, [1, 2, 3], (n) => ({ ok: true, promisedEpoch: n === 1 ? 2 : 1 }));
      expect(h.w.epoch).toBe(3);
      return h.sends;
    }

    it('prepares the newest last segment a majority names, accepts the best copy by the comparator, finalizes it and starts after it', () => {
      const h = new Harness();
      const newEpoch = toNewEpoch(h);
      h.answer(newEpoch, [1], { ok: true, lastSegmentTxid: 1n });
      expect(h.sends).toEqual([]);
      h.answer(newEpoch, [3], { ok: true, lastSegmentTxid: 6n });
      expect(h.request()).toEqual({ kind: 'prepareRecovery', epoch: 3, segmentTxid: 6n });
      const prepare = h.sends;

      // Node 2 has writer 1's copy up to 10; node 3 has a shorter copy that an earlier recovery (epoch 2) made it accept.
      h.answer(prepare, [2], prep({ startTxid: 6n, endTxid: 10n, inProgress: true, writerEpoch: 1 }, 1, null, 6n));
      expect(h.sends).toEqual([]);
      h.answer(prepare, [3], prep({ startTxid: 6n, endTxid: 8n, inProgress: true, writerEpoch: 1 }, 1, 2, 6n));
      // Seen in epoch 2 (accepted) beats the longer copy seen in epoch 1.
      expect(h.request()).toEqual({ kind: 'acceptRecovery', epoch: 3, segment: { startTxid: 6n, endTxid: 8n, inProgress: true, writerEpoch: 1 }, fromNode: 3 });
      const accept = h.sends;
      // The third prepare answer (longer, in progress) comes after the choice: ignored.
      h.answer(prepare, [1], prep({ startTxid: 6n, endTxid: 12n, inProgress: true, writerEpoch: 2 }, 2, null, 6n));
      expect(h.sends).toEqual([]);

      h.answer(accept, [1, 2], OK);
      expect(h.request()).toEqual({ kind: 'finalize', epoch: 3, startTxid: 6n, endTxid: 8n });
      h.answer(h.sends, [2, 3], OK);
      expect(h.request()).toEqual({ kind: 'startSegment', epoch: 3, txid: 9n });
      expect(h.w.committedTxid).toBe(8n);
      h.answer(h.sends, [1, 3], OK);
      expect(h.events).toEqual([{ kind: 'opened', epoch: 3, nextTxid: 9n }]);
      expect(h.w.segmentStartTxid).toBe(9n);
      h.w.append(recs(1));
      h.drain();
      expect(h.request()).toMatchObject({ kind: 'journal', epoch: 3, segmentTxid: 9n, firstTxid: 9n, committedTxid: 8n });
    });

    it('prefers a finalized copy, and among in-progress copies of one epoch the longer', () => {
      const fin = new Harness();
      fin.answer(toNewEpoch(fin), [1, 2], { ok: true, lastSegmentTxid: 1n });
      fin.answer(fin.sends, [1, 2], (n) => n === 1
        ? prep({ startTxid: 1n, endTxid: 9n, inProgress: true, writerEpoch: 2 }, 2, null, 3n)
        : prep({ startTxid: 1n, endTxid: 4n, inProgress: false, writerEpoch: 1 }, 1, null, 4n));
      expect(fin.request()).toMatchObject({ kind: 'acceptRecovery', segment: { startTxid: 1n, endTxid: 4n, inProgress: false }, fromNode: 2 });

      const longer = new Harness();
      longer.answer(toNewEpoch(longer), [1, 2], { ok: true, lastSegmentTxid: 1n });
      longer.answer(longer.sends, [1, 2], (n) => prep({ startTxid: 1n, endTxid: n === 1 ? 5n : 7n, inProgress: true, writerEpoch: 2 }, 2, null, 3n));
      expect(longer.request()).toMatchObject({ kind: 'acceptRecovery', segment: { endTxid: 7n }, fromNode: 2 });
      longer.answer(longer.sends, [1, 2], OK);
      expect(longer.request()).toEqual({ kind: 'finalize', epoch: 3, startTxid: 1n, endTxid: 7n });
    });

    it('starts the segment over at its first txid when no node of the majority has edits in it', () => {
      const h = new Harness();
      h.answer(toNewEpoch(h), [2, 3], { ok: true, lastSegmentTxid: 6n });
      expect(h.request()).toEqual({ kind: 'prepareRecovery', epoch: 3, segmentTxid: 6n });
      h.answer(h.sends, [1, 3], prep(null, 2, null, 5n));
      expect(h.request()).toEqual({ kind: 'startSegment', epoch: 3, txid: 6n });
      expect(h.w.committedTxid).toBe(5n);
      h.answer(h.sends, [1, 2], OK);
      expect(h.events).toEqual([{ kind: 'opened', epoch: 3, nextTxid: 6n }]);
    });

    it('is fenced when a majority refuses the recovery', () => {
      const h = new Harness();
      h.answer(toNewEpoch(h), [1, 2], { ok: true, lastSegmentTxid: 1n });
      const prepare = h.sends;
      h.answer(prepare, [2, 3], { ok: false, status: 403, message: 'fenced: epoch 3 is below the promised epoch 4' });
      expect(h.events).toEqual([{ kind: 'fenced', reason: 'a majority refused or did not answer (node 2: fenced: epoch 3 is below the promised epoch 4; node 3: fenced: epoch 3 is below the promised epoch 4)' }]);
      expect(h.w.phase).toBe('fenced');
      h.answer(prepare, [1], prep({ startTxid: 1n, endTxid: 3n, inProgress: true, writerEpoch: 2 }, 2, null, 0n));
      expect(h.sends).toEqual([]);
    });
  });
});
