// A simulated server's disk: what is durable, and what was written but not
// yet synced. A crash keeps what was durable plus a random prefix of the
// unsynced writes (they reach the platter in order, the last may be torn:
// a torn record is cut at restart, so it counts as not written). Durable
// data is never lost: a simulator that loses it tests another protocol.
import type { LogEntry } from '../core/zab/log-tail.js';
import type { StorageOp } from '../core/zab/messages.js';
import type { Rng } from './rng.js';

/** A saved state: what it reaches, and its bytes (the simulated server's own encoding). */
export interface SimSnapshot { zxid: bigint; bytes: Uint8Array }

export interface DiskImage {
  acceptedEpoch: number;
  currentEpoch: number;
  snapshot: SimSnapshot;
  log: LogEntry[];
  config?: { version: bigint; voters: readonly number[]; observers: readonly number[] };
}

export class SimDisk {
  image: DiskImage;
  private pending: { seq: number; op: StorageOp }[] = [];

  constructor(initial: SimSnapshot, epoch: number) {
    this.image = { acceptedEpoch: epoch, currentEpoch: epoch, snapshot: initial, log: [] };
  }

  write(seq: number, op: StorageOp): void {
    this.pending.push({ seq, op });
  }

  /** Everything written up to `seq` is durable. */
  syncThrough(seq: number): void {
    while (this.pending.length > 0 && this.pending[0].seq <= seq) apply(this.image, this.pending.shift()!.op);
  }

  /** The server saved its state (committed only): durable at once, older records dropped. */
  saveSnapshot(snap: SimSnapshot): void {
    if (snap.zxid <= this.image.snapshot.zxid) return;
    this.image.snapshot = snap;
    this.image.log = this.image.log.filter((e) => e.zxid > snap.zxid);
  }

  /** The process dies: unsynced writes survive as a random prefix. Returns how many survived. */
  crash(rng: Rng): number {
    const keep = rng.int(this.pending.length + 1);
    for (let i = 0; i < keep; i++) apply(this.image, this.pending[i].op);
    this.pending = [];
    return keep;
  }
}

function apply(img: DiskImage, op: StorageOp): void {
  switch (op.kind) {
    case 'acceptedEpoch': img.acceptedEpoch = op.epoch; return;
    case 'currentEpoch': img.currentEpoch = op.epoch; return;
    case 'append':
      if (op.zxid > img.snapshot.zxid) img.log.push({ zxid: op.zxid, payload: op.payload });
      return;
    case 'truncate': img.log = img.log.filter((e) => e.zxid <= op.after); return;
    case 'snapshot':
      img.snapshot = { zxid: op.zxid, bytes: op.snapshot };
      img.log = [];
      return;
    case 'config': img.config = op.config; return;
  }
}
