// When a durable write may run right on the event loop. Measured on our
// 2-vCPU machines: handing a small write to libuv's thread pool and back
// costs ~0.1 ms at the median and milliseconds at the tail (two cross-thread
// wake-ups), more than an O_DSYNC write or fdatasync itself, and is most of a
// lone writer's latency. Large batches, and any disk that was slow lately,
// go through the pool, so a stalling disk holds up the loop for one write at
// most every inline_write_holdoff_writes writes.
//
// "Slow" means the disk was slow, not the machine: on a busy machine the
// thread that made the write can wait for a CPU for tens of milliseconds
// before and after it, and that wait is no reason to add two more thread
// wake-ups to every write (each costs such a wait again). So an inline
// write's time is counted without the time its thread waited to run (Linux's
// /proc/thread-self/schedstat, where there is one), and only inline writes
// decide: a write through the pool is timed with both wake-ups in it.
import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { ZK_LIMITS } from '../limits.js';

export class InlineWritePolicy {
  private holdoff = 0;
  /** Durable writes slower than slowMs (inline ones without the time spent waiting for a CPU). */
  slowWrites = 0;
  private readonly runWait = RunWaitClock.mainThread();

  constructor(private readonly slowMs: number = ZK_LIMITS.inline_write_slow_ms) {}

  canInline(records: number, bytes: number): boolean {
    return this.holdoff === 0 && records <= ZK_LIMITS.inline_write_txns_max && bytes <= ZK_LIMITS.inline_write_bytes_max;
  }

  /**
   * Runs a durable write on the event loop and notes how long the disk took; returns the wall-clock
   * ms (what the caller waited, for its metrics).
   */
  inline(write: () => void): number {
    const w0 = this.runWait?.ms() ?? -1;
    const t0 = performance.now();
    write();
    const wallMs = performance.now() - t0;
    const w1 = w0 < 0 ? -1 : this.runWait!.ms();
    const waitedMs = w1 < 0 ? 0 : Math.max(0, w1 - w0);
    if (wallMs - waitedMs > this.slowMs) {
      this.holdoff = ZK_LIMITS.inline_write_holdoff_writes;
      this.slowWrites++;
    } else if (this.holdoff > 0) {
      this.holdoff--;
    }
    return wallMs;
  }

  /** Notes how long a durable write through the thread pool took: counted when slow, and one write less of holdoff. */
  note(ms: number): void {
    if (ms > this.slowMs) this.slowWrites++;
    if (this.holdoff > 0) this.holdoff--;
  }
}

/** The time a thread has spent runnable but not running (Linux schedstat's second field), in ms. */
class RunWaitClock {
  private static main: RunWaitClock | null | undefined;
  private readonly buf = Buffer.alloc(96);
  private constructor(private readonly fd: number) {}

  /**
   * The main thread's clock (opened once, kept for the process's life), or null on another thread
   * or where the kernel does not keep one (not Linux, schedstats off).
   */
  static mainThread(): RunWaitClock | null {
    if (!isMainThread) return null;
    if (RunWaitClock.main === undefined) RunWaitClock.main = RunWaitClock.open();
    return RunWaitClock.main;
  }

  private static open(): RunWaitClock | null {
    let fd: number;
    try {
      fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      return null;
    }
    const c = new RunWaitClock(fd);
    if (c.ms() < 0) { closeSync(fd); return null; }
    return c;
  }

  /** ms waited so far, or -1 when it could not be read. */
  ms(): number {
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      const fields = this.buf.toString('latin1', 0, n).split(' ');
      const ns = Number(fields[1]);
      return Number.isFinite(ns) ? ns / 1e6 : -1;
    } catch {
      return -1;
    }
  }
}
