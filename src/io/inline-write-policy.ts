// When a durable write may run right on the event loop. Measured on our
// 2-vCPU machines: handing a small write to libuv's thread pool and back
// costs ~0.1 ms at the median and milliseconds at the tail (two cross-thread
// wake-ups), more than an O_DSYNC write or fdatasync itself, and is most of a
// lone writer's latency. Large batches, and any disk that was slow lately,
// go through the pool, so a stalling disk holds up the loop for one write at
// most. Shared by the transaction log and the journal segments.
import { ZK_LIMITS } from '../limits.js';

export class InlineWritePolicy {
  private holdoff = 0;
  slowWrites = 0;

  constructor(private readonly slowMs: number = ZK_LIMITS.inline_write_slow_ms) {}

  canInline(records: number, bytes: number): boolean {
    return this.holdoff === 0 && records <= ZK_LIMITS.inline_write_txns_max && bytes <= ZK_LIMITS.inline_write_bytes_max;
  }

  /** Notes how long a durable write took; a slow one sends the next writes through the pool. */
  note(ms: number): void {
    if (ms > this.slowMs) {
      this.holdoff = ZK_LIMITS.inline_write_holdoff_writes;
      this.slowWrites++;
    } else if (this.holdoff > 0) {
      this.holdoff--;
    }
  }
}
