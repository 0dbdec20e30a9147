import { describe, expect, it } from 'vitest';
import { OpCode } from '../../../src/proto/zk-constants.js';
import type { ZkRequest } from '../../../src/proto/zk-records.js';
import { setWatchesRequests } from '../../../src/client/set-watches.js';

type SW = Extract<ZkRequest, { relativeZxid: bigint }>;
const empty = { data: [], exist: [], child: [], persistent: [], persistentRecursive: [] };

describe('setWatches after a reconnect', () => {
  it('nothing to re-arm, nothing sent', () => {
    expect(setWatchesRequests(empty, '', 5n)).toEqual([]);
  });

  it('uses opcode 101 without persistent watches, 105 with; relativeZxid and chroot applied', () => {
    const [a] = setWatchesRequests({ ...empty, data: ['/d'], exist: ['/e'], child: ['/c'] }, '/root', 0x1_0000_0005n) as SW[];
    expect(a.type).toBe(OpCode.setWatches);
    expect(a.relativeZxid).toBe(0x1_0000_0005n);
    expect([a.dataWatches, a.existWatches, a.childWatches]).toEqual([['/root/d'], ['/root/e'], ['/root/c']]);
    const [b] = setWatchesRequests({ ...empty, data: ['/d'], persistentRecursive: ['/'] }, '/root', 1n) as SW[];
    expect(b.type).toBe(OpCode.setWatches2);
    expect(b.persistentRecursiveWatches).toEqual(['/root']);
  });

  it('splits into batches under the byte bound, keeping every path once and in order', () => {
    const paths = (p: string, n: number): string[] => Array.from({ length: n }, (_, i) => `/${p}/${String(i).padStart(5, '0')}`);
    const snap = { data: paths('d', 300), exist: paths('e', 10), child: paths('c', 300), persistent: paths('p', 5), persistentRecursive: [] };
    const reqs = setWatchesRequests(snap, '', 9n, 1000) as SW[];
    expect(reqs.length).toBeGreaterThan(5);
    for (const r of reqs) {
      const bytes = [...r.dataWatches, ...r.existWatches, ...r.childWatches, ...r.persistentWatches, ...r.persistentRecursiveWatches]
        .reduce((n, p) => n + 4 + Buffer.byteLength(p), 0);
      expect(bytes).toBeLessThanOrEqual(1000);
      expect(r.type).toBe(OpCode.setWatches2);
    }
    expect(reqs.flatMap((r) => r.dataWatches)).toEqual(snap.data);
    expect(reqs.flatMap((r) => r.existWatches)).toEqual(snap.exist);
    expect(reqs.flatMap((r) => r.childWatches)).toEqual(snap.child);
    expect(reqs.flatMap((r) => r.persistentWatches)).toEqual(snap.persistent);
  });

  it('a path longer than the bound still goes, alone', () => {
    const long = '/' + 'x'.repeat(2000);
    const reqs = setWatchesRequests({ ...empty, data: ['/a', long, '/b'] }, '', 1n, 100) as SW[];
    expect(reqs.map((r) => r.dataWatches)).toEqual([['/a'], [long], ['/b']]);
  });
});
