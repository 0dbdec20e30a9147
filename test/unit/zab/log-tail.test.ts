import { describe, expect, it } from 'vitest';
import { LogTail } from '../../../src/core/zab/log-tail.js';
import { followsInLog, makeZxid } from '../../../src/core/zab/zxid.js';

const z = makeZxid;
const p = (s: string) => new TextEncoder().encode(s);

/** A log with base `base` and entries given as [epoch, counter] pairs. */
function logOf(base: bigint, entries: [number, number][]): LogTail {
  return new LogTail(base, entries.map(([e, c]) => ({ zxid: z(e, c), payload: p(`${e}.${c}`) })));
}

describe('zxid', () => {
  it('keeps the epoch in the high 32 bits, past 2^31 and 2^53 alike', () => {
    expect(z(1, 0)).toBe(0x1_0000_0000n);
    expect(z(0xffff_ffff, 0xffff_ffff)).toBe(0xffff_ffff_ffff_ffffn);
    expect(() => z(1, 0x1_0000_0000)).toThrow(RangeError);
  });

  it('accepts only the next counter of an epoch, or the first of a later one', () => {
    expect(followsInLog(z(1, 4), z(1, 5))).toBe(true);
    expect(followsInLog(z(1, 4), z(1, 6))).toBe(false);
    expect(followsInLog(z(1, 4), z(3, 1))).toBe(true);
    expect(followsInLog(z(1, 4), z(3, 2))).toBe(false);
    expect(followsInLog(z(3, 1), z(2, 5))).toBe(false);
    expect(followsInLog(z(1, 0xffff_ff05), z(2, 0xffff_ff00), 0xffff_ff00n)).toBe(true);
  });
});

describe('LogTail', () => {
  it('refuses a gap or a step back', () => {
    const log = logOf(0n, [[1, 1], [1, 2]]);
    expect(() => log.append(z(1, 4), p('x'))).toThrow(/does not follow/);
    expect(() => log.append(z(1, 2), p('x'))).toThrow(/does not follow/);
    log.append(z(2, 1), p('x'));
    expect(log.last).toBe(z(2, 1));
  });

  it('truncates only to a zxid it holds', () => {
    const log = logOf(0n, [[1, 1], [1, 2], [1, 3]]);
    expect(() => log.truncateAfter(z(1, 7))).toThrow(/not in the log/);
    log.truncateAfter(z(1, 1));
    expect(log.last).toBe(z(1, 1));
    log.truncateAfter(0n);
    expect(log.length).toBe(0);
  });

  it('keeps a bounded window of committed entries, never an uncommitted one', () => {
    const log = logOf(0n, Array.from({ length: 100 }, (_, i) => [1, i + 1] as [number, number]));
    log.trimCommitted(z(1, 90), 20);
    expect(log.base).toBe(z(1, 70));
    expect(log.last).toBe(z(1, 100));
    expect(log.range(z(1, 70)).length).toBe(30);
  });

  describe('syncPlan (the leader holds every committed transaction)', () => {
    const leader = logOf(z(1, 3), [[1, 4], [1, 5], [3, 1], [3, 2], [3, 3]]);

    it('sends nothing to a learner at our end', () => {
      expect(leader.syncPlan(z(3, 3))).toEqual({ kind: 'diff', from: z(3, 3) });
    });

    it('sends the rest to a learner behind on our history', () => {
      expect(leader.syncPlan(z(3, 1))).toEqual({ kind: 'diff', from: z(3, 1) });
      expect(leader.syncPlan(z(1, 4))).toEqual({ kind: 'diff', from: z(1, 4) });
      expect(leader.syncPlan(z(1, 3))).toEqual({ kind: 'diff', from: z(1, 3) });
    });

    it('truncates a learner with more of an epoch than we have (never committed)', () => {
      expect(leader.syncPlan(z(1, 9))).toEqual({ kind: 'trunc', to: z(1, 5) });
      expect(leader.syncPlan(z(3, 8))).toEqual({ kind: 'trunc', to: z(3, 3) });
    });

    it('truncates a learner whose last epoch we never saw to our end before that epoch', () => {
      // A deposed leader of epoch 2 that logged proposals no one else has.
      expect(leader.syncPlan(z(2, 4))).toEqual({ kind: 'trunc', to: z(1, 5) });
      expect(leader.syncPlan(z(4, 1))).toEqual({ kind: 'trunc', to: z(3, 3) });
    });

    it('sends a snapshot to a learner behind our window, or whose common point is below it', () => {
      expect(leader.syncPlan(z(1, 2))).toEqual({ kind: 'snap' });
      expect(leader.syncPlan(0n)).toEqual({ kind: 'snap' });
      const trimmed = logOf(z(3, 1), [[3, 2], [3, 3]]);
      expect(trimmed.syncPlan(z(2, 4))).toEqual({ kind: 'snap' });
    });

    it('syncs an empty learner from an empty history by DIFF', () => {
      expect(logOf(0n, [[1, 1]]).syncPlan(0n)).toEqual({ kind: 'diff', from: 0n });
    });
  });
});
