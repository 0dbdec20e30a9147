import { describe, expect, it } from 'vitest';
import { takeStorageStep, type QueuedStorageOp } from '../../../src/core/zab/storage-steps.js';

const append = (seq: number): QueuedStorageOp => ({ seq, op: { kind: 'append', zxid: BigInt(seq), payload: new Uint8Array([seq]) } });

describe('takeStorageStep: the order a server makes its storage durable in', () => {
  it('a run of appends is one step, synced once; any other operation a step of its own; in the order given', () => {
    const queue: QueuedStorageOp[] = [append(1), append(2), { seq: 3, op: { kind: 'currentEpoch', epoch: 2 } }, { seq: 4, op: { kind: 'truncate', after: 1n } }, append(5)];
    const steps = [];
    for (let s = takeStorageStep(queue); s !== null; s = takeStorageStep(queue)) steps.push({ seqs: s.ops.map((o) => o.seq), appends: s.appends, durableThrough: s.durableThrough });
    expect(steps).toEqual([
      { seqs: [1, 2], appends: true, durableThrough: 2 },
      { seqs: [3], appends: false, durableThrough: 3 },
      { seqs: [4], appends: false, durableThrough: 4 },
      { seqs: [5], appends: true, durableThrough: 5 },
    ]);
    expect(queue).toEqual([]);
  });

  it('appends queued while a step is in flight join the next step, not the one in flight', () => {
    const queue: QueuedStorageOp[] = [append(1)];
    const first = takeStorageStep(queue)!;
    queue.push(append(2), append(3));
    expect(first.durableThrough).toBe(1);
    expect(takeStorageStep(queue)).toMatchObject({ appends: true, durableThrough: 3 });
    expect(takeStorageStep(queue)).toBeNull();
  });
});
