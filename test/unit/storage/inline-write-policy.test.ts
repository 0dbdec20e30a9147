import { describe, expect, it } from 'vitest';
import { InlineWritePolicy } from '../../../src/io/inline-write-policy.js';
import { ZK_LIMITS } from '../../../src/limits.js';

/** Blocks this thread without using a CPU, as a write waiting for a slow disk does. */
function sleepBlocking(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('InlineWritePolicy', () => {
  it('inlines small batches only', () => {
    const p = new InlineWritePolicy(20);
    expect(p.canInline(1, 100)).toBe(true);
    expect(p.canInline(ZK_LIMITS.inline_write_txns_max + 1, 100)).toBe(false);
    expect(p.canInline(1, ZK_LIMITS.inline_write_bytes_max + 1)).toBe(false);
  });

  it('sends writes to the thread pool for inline_write_holdoff_writes writes after an inline write that blocked on the disk', () => {
    const p = new InlineWritePolicy(5);
    const ms = p.inline(() => sleepBlocking(30));
    expect(ms).toBeGreaterThanOrEqual(25);
    expect(p.slowWrites).toBe(1);
    expect(p.canInline(1, 100)).toBe(false);
    for (let i = 0; i < ZK_LIMITS.inline_write_holdoff_writes - 1; i++) p.note(1);
    expect(p.canInline(1, 100)).toBe(false);
    p.note(1);
    expect(p.canInline(1, 100)).toBe(true);
  });

  it('a slow write through the thread pool is counted but does not extend the holdoff (its time holds two thread wake-ups)', () => {
    const p = new InlineWritePolicy(5);
    p.note(1000);
    expect(p.slowWrites).toBe(1);
    expect(p.canInline(1, 100)).toBe(true);
    p.inline(() => sleepBlocking(30));
    for (let i = 0; i < ZK_LIMITS.inline_write_holdoff_writes; i++) p.note(1000);
    expect(p.slowWrites).toBe(2 + ZK_LIMITS.inline_write_holdoff_writes);
    expect(p.canInline(1, 100)).toBe(true);
  });

  it('a fast inline write keeps writes inline', () => {
    const p = new InlineWritePolicy(1000);
    for (let i = 0; i < 10; i++) p.inline(() => undefined);
    expect(p.slowWrites).toBe(0);
    expect(p.canInline(1, 100)).toBe(true);
  });
});
