import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestDeadlines } from '../../../src/io/deadline.js';

describe('RequestDeadlines', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });
  const make = () => new RequestDeadlines(() => Date.now());

  it('aborts a signal with a TimeoutError at its deadline, not before', () => {
    const d = make().start(100);
    vi.advanceTimersByTime(99);
    expect(d.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as Error).name).toBe('TimeoutError');
  });

  it('never aborts a request that is done, and forgets it', () => {
    const ds = make();
    const d = ds.start(100);
    d.done();
    expect(ds.size).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(d.signal.aborted).toBe(false);
  });

  it('a shorter deadline started after a longer one fires at its own time, and the longer one still fires', () => {
    const ds = make();
    const long = ds.start(1000);
    const short = ds.start(50);
    vi.advanceTimersByTime(50);
    expect(short.signal.aborted).toBe(true);
    expect(long.signal.aborted).toBe(false);
    vi.advanceTimersByTime(949);
    expect(long.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(long.signal.aborted).toBe(true);
    expect(ds.size).toBe(0);
  });

  it('many equal deadlines share one timer and each fires in turn', () => {
    const ds = make();
    const all = [];
    for (let i = 0; i < 100; i++) { all.push(ds.start(200)); vi.advanceTimersByTime(1); }
    expect(vi.getTimerCount()).toBe(1);
    for (let i = 0; i < 100; i++) all[i].done();
    all.push(ds.start(200));
    vi.advanceTimersByTime(200);
    expect(all.slice(0, 100).every((d) => !d.signal.aborted)).toBe(true);
    expect(all[100].signal.aborted).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
