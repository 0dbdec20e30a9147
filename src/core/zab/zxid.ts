// A zxid is 64 bits: the epoch of the leader that proposed it in the high 32,
// a counter in the low 32. Kept as a bigint everywhere: `epoch << 32 | n` on
// Numbers silently computes `epoch | n` (shift counts wrap mod 32).
export const COUNTER_MAX = 0xffff_ffffn;
export const EPOCH_MAX = 0xffff_ffff;

export function makeZxid(epoch: number, counter: bigint | number): bigint {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > EPOCH_MAX) throw new RangeError(`epoch ${epoch} out of range`);
  const c = BigInt(counter);
  if (c < 0n || c > COUNTER_MAX) throw new RangeError(`zxid counter ${c} out of range`);
  return (BigInt(epoch) << 32n) | c;
}

export function epochOf(zxid: bigint): number {
  return Number(zxid >> 32n);
}

export function counterOf(zxid: bigint): bigint {
  return zxid & COUNTER_MAX;
}

export function hexZxid(zxid: bigint): string {
  return `0x${zxid.toString(16)}`;
}

/**
 * Whether `next` may follow `prev` in one log: the next counter of the same
 * epoch, or the first of a later epoch (epochs without writes are skipped).
 * Every path that adds to a log checks it (ZOOKEEPER-4925 let a gap in).
 * `firstCounter` is 1 but in simulations that start counters near 2^32.
 */
export function followsInLog(prev: bigint, next: bigint, firstCounter = 1n): boolean {
  const pe = epochOf(prev);
  const ne = epochOf(next);
  if (ne === pe) return next === prev + 1n;
  return ne > pe && counterOf(next) === firstCounter;
}
