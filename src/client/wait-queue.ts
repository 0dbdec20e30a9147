// Requests waiting for a connection: FIFO, bounded in length, each bounded in
// time. One interval timer runs only while something waits.
import { CLIENT_LIMITS } from '../limits.js';
import type { ClientRuntime } from './runtime.js';
import { everyMs } from './runtime.js';

/** Requests allowed to wait for a connection at once. */
export const WAITING_REQUESTS_MAX = CLIENT_LIMITS.waiting_requests_max;

export interface Waiting {
  enqueuedAtMs: number;
  timeoutMs: number;
  settled: boolean;
}

export class WaitQueue<T extends Waiting> {
  private items: T[] = [];
  private timer: { stop(): void } | null = null;

  constructor(private readonly rt: ClientRuntime, private readonly checkEveryMs: number, private readonly onTimeout: (item: T) => void) {}

  get length(): number {
    return this.items.length;
  }

  /** False when the queue is full. */
  push(item: T): boolean {
    if (this.items.length >= WAITING_REQUESTS_MAX) return false;
    this.items.push(item);
    if (this.timer === null) this.timer = everyMs(this.rt, this.checkEveryMs, () => this.expire());
    return true;
  }

  /** Take everything still waiting, in order. */
  drain(): T[] {
    const out = this.items.filter((c) => !c.settled);
    this.items = [];
    this.stop();
    return out;
  }

  private expire(): void {
    const now = this.rt.now();
    const keep: T[] = [];
    for (const c of this.items) {
      if (c.settled) continue;
      if (now - c.enqueuedAtMs > c.timeoutMs) this.onTimeout(c);
      else keep.push(c);
    }
    this.items = keep;
    if (keep.length === 0) this.stop();
  }

  private stop(): void {
    this.timer?.stop();
    this.timer = null;
  }
}
