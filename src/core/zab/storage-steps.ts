// How a server makes its peer's storage operations durable, the quorum
// server's files and the simulator's disk alike: one step at a time, in the
// order the peer gave them; a run of log appends is one step (written
// together, synced once: group commit), every other operation a step of its
// own; a step is reported durable — and with it everything before it — only
// once it is done. The peer counts on exactly this (persisted(seq) means
// every operation up to seq survives a crash).
import type { StorageOp } from './messages.js';

export interface QueuedStorageOp { seq: number; op: StorageOp }

export interface StorageStep {
  ops: QueuedStorageOp[];
  /** A run of appends (one sync for all), or one other operation. */
  appends: boolean;
  /** Report peer.persisted(durableThrough) once the step is done. */
  durableThrough: number;
}

/** Takes the next step off the front of `queue` (null: nothing queued). */
export function takeStorageStep(queue: QueuedStorageOp[]): StorageStep | null {
  const first = queue[0];
  if (first === undefined) return null;
  if (first.op.kind !== 'append') {
    queue.shift();
    return { ops: [first], appends: false, durableThrough: first.seq };
  }
  let n = 0;
  while (n < queue.length && queue[n].op.kind === 'append') n++;
  const ops = queue.splice(0, n);
  return { ops, appends: true, durableThrough: ops[ops.length - 1].seq };
}
