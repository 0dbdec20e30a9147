// The recovery choice over every case Hadoop's SegmentRecoveryComparator covers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chooseRecovery, compareRecovery, type PrepareRecoveryAnswer } from '../../../src/core/journal/recovery.js';

const seg = (end: number, inProgress: boolean, start = 1) => ({ startTxid: BigInt(start), endTxid: BigInt(end), inProgress });
const ans = (segment: PrepareRecoveryAnswer['segment'], lastWriterEpoch: number, acceptedInEpoch: number | null = null): PrepareRecoveryAnswer =>
  ({ segment, lastWriterEpoch, acceptedInEpoch });

describe('compareRecovery', () => {
  it('prefers a node that has the segment to one that has not', () => {
    expect(compareRecovery(ans(seg(3, true), 1), ans(null, 9))).toBeGreaterThan(0);
    expect(compareRecovery(ans(null, 9), ans(seg(3, true), 1))).toBeLessThan(0);
    expect(compareRecovery(ans(null, 1), ans(null, 2))).toBe(0);
  });

  it('prefers a finalized copy to an in-progress one, whatever the epochs and lengths', () => {
    expect(compareRecovery(ans(seg(3, false), 1), ans(seg(10, true), 5, 6))).toBeGreaterThan(0);
    expect(compareRecovery(ans(seg(10, true), 5, 6), ans(seg(3, false), 1))).toBeLessThan(0);
  });

  it('calls finalized copies of one length equal, and refuses finalized copies of different lengths', () => {
    expect(compareRecovery(ans(seg(3, false), 1), ans(seg(3, false), 2))).toBe(0);
    expect(() => compareRecovery(ans(seg(3, false), 1), ans(seg(4, false), 1))).toThrow(/must agree/);
  });

  it('among in-progress copies prefers the higher of acceptedInEpoch and lastWriterEpoch, then the longer', () => {
    // seen in epoch 3 (accepted by a recovery) beats a longer copy last written in epoch 2
    expect(compareRecovery(ans(seg(5, true), 1, 3), ans(seg(9, true), 2))).toBeGreaterThan(0);
    // the writer's epoch counts as much as an accepted one
    expect(compareRecovery(ans(seg(5, true), 4), ans(seg(9, true), 2, 3))).toBeGreaterThan(0);
    // same epoch: the longer copy
    expect(compareRecovery(ans(seg(9, true), 2), ans(seg(5, true), 2))).toBeGreaterThan(0);
    expect(compareRecovery(ans(seg(5, true), 2, 2), ans(seg(5, true), 2))).toBe(0);
  });

  it('refuses answers about different segments', () => {
    expect(() => compareRecovery(ans(seg(5, true, 1), 1), ans(seg(5, true, 2), 1))).toThrow(/different segments/);
  });

  it('is a total preorder: antisymmetric and transitive over random answers', () => {
    const answer = fc.record({
      segment: fc.option(fc.record({ startTxid: fc.constant(1n), endTxid: fc.bigInt({ min: 1n, max: 6n }), inProgress: fc.constant(true) }), { nil: null }),
      lastWriterEpoch: fc.integer({ min: 0, max: 4 }),
      acceptedInEpoch: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
    });
    fc.assert(fc.property(answer, answer, answer, (a, b, c) => {
      expect(Math.sign(compareRecovery(a, b))).toBe(-Math.sign(compareRecovery(b, a)) || 0);
      if (compareRecovery(a, b) >= 0 && compareRecovery(b, c) >= 0) expect(compareRecovery(a, c)).toBeGreaterThanOrEqual(0);
    }), { numRuns: 2000 });
  });
});

describe('chooseRecovery', () => {
  it('picks the best answer of a majority, or nothing when no node has the segment', () => {
    const a = ans(seg(5, true), 2);
    const b = ans(seg(7, true), 2);
    const c = ans(null, 3);
    expect(chooseRecovery([a, b, c])).toBe(b);
    expect(chooseRecovery([c, ans(null, 1)])).toBeNull();
    const fin = ans(seg(4, false), 1);
    expect(chooseRecovery([a, fin, b])).toBe(fin);
  });
});
