// Seeded whole-quorum runs of the real election and ZAB cores under crashes,
// power failures, partitions and cut-off leaders (src/sim), checked against
// Q1 and Q2. CI runs a bounded number of seeds; `npm run sim -- --seeds N`
// runs more, and a failing seed prints the command that replays it.
import { describe, expect, it } from 'vitest';
import { Checker } from '../../src/sim/checker.js';
import { checkHistory, type HistoryOp } from '../../src/sim/history-checker.js';
import { optionsForSeed, replayCommand } from '../../src/sim/options.js';
import { runSimulation } from '../../src/sim/sim-cluster.js';
import { applyToSimState, initialSimState } from '../../src/sim/sim-state.js';
import { makeZxid } from '../../src/core/zab/zxid.js';

const SEEDS = Number(process.env.SIM_SEEDS ?? 40);
const ZK_SEEDS = Number(process.env.SIM_ZK_SEEDS ?? 10);
const defaults = { faultMs: 20_000, settleMs: 10_000 };
const bare = { ...defaults, bare: true };

describe('quorum simulation', () => {
  it(`keeps Q1 and Q2 over ${SEEDS} seeded schedules`, () => {
    const failures: string[] = [];
    let acked = 0;
    let isolations = 0;
    let nearLimit = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const o = optionsForSeed(seed, bare);
      const r = runSimulation(o);
      acked += r.stats.acked;
      isolations += r.stats.leaderIsolations;
      if (o.nearCounterLimit) nearLimit++;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.join('; ')}\n  replay: ${replayCommand(o)}`);
    }
    expect(failures).toEqual([]);
    // The runs did what they are for: writes acknowledged, leaders cut off, counters near 2^32.
    expect(acked).toBeGreaterThan(SEEDS * 1000);
    expect(isolations).toBeGreaterThanOrEqual(SEEDS);
    expect(nearLimit).toBeGreaterThan(0);
  }, 120_000);

  it(`keeps Q1, Q2 and ZooKeeper's client guarantees (watch order included) with the ZooKeeper layer and clients over ${ZK_SEEDS} schedules`, () => {
    const failures: string[] = [];
    let ops = 0;
    let moves = 0;
    let watches = 0;
    for (let seed = 1001; seed < 1001 + ZK_SEEDS; seed++) {
      const o = optionsForSeed(seed, defaults);
      const r = runSimulation(o);
      ops += (r.stats as Record<string, number>).historyOps ?? 0;
      moves += (r.stats as Record<string, number>).clientMoves ?? 0;
      watches += (r.stats as Record<string, number>).watchesFired ?? 0;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.join('; ')}\n  replay: ${replayCommand(o)}`);
    }
    expect(failures).toEqual([]);
    expect(ops).toBeGreaterThan(ZK_SEEDS * 2000); // the clients did work, recorded and checked
    expect(moves).toBeGreaterThan(ZK_SEEDS * 20);
    expect(watches).toBeGreaterThan(ZK_SEEDS * 100); // watches were set and fired, and their order checked
  }, 180_000);

  it('changes the membership under faults (servers added and removed, one or several at once, the leader too) and keeps Q1 and Q2', () => {
    const failures: string[] = [];
    let reconfigs = 0;
    for (let seed = 2001; seed <= 2020; seed++) {
      const o = optionsForSeed(seed, { ...bare, reconfig: true });
      const r = runSimulation(o);
      reconfigs += r.stats.reconfigs;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.join('; ')}\n  replay: ${replayCommand(o)}`);
    }
    expect(failures).toEqual([]);
    expect(reconfigs).toBeGreaterThanOrEqual(40);
  }, 120_000);

  it('replays a seed exactly', () => {
    const o = { ...optionsForSeed(7, defaults), trace: true };
    const a = runSimulation(o);
    const b = runSimulation(o);
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
  });

  it('exhausts the zxid counter near 2^32 and moves to a new epoch', () => {
    const r = runSimulation({ ...optionsForSeed(3, bare), nearCounterLimit: true, trace: true });
    expect(r.ok).toBe(true);
    expect(r.trace.some((l) => l.includes('zxid counter of epoch') && l.includes('exhausted'))).toBe(true);
  });
});

describe('the client-history checker', () => {
  const op = (o: Partial<HistoryOp>): HistoryOp => ({ session: 'a', kind: 'write', path: '/k', value: 'v', invokeAt: 0, respondAt: 1, zxid: 1n, mzxid: 1n, ...o });

  it('accepts a history that keeps the guarantees', () => {
    expect(checkHistory([
      op({ zxid: 1n, mzxid: 1n, value: 'x' }),
      op({ session: 'b', kind: 'read', value: 'x', invokeAt: 2, respondAt: 3, zxid: 1n, mzxid: 1n }),
      op({ session: 'b', zxid: 2n, mzxid: 2n, value: 'y', invokeAt: 4, respondAt: 5 }),
    ], new Map())).toEqual([]);
  });

  it('flags a write ordered before one that completed earlier (linearizable writes)', () => {
    expect(checkHistory([op({ zxid: 5n, mzxid: 5n, respondAt: 1 }), op({ session: 'b', zxid: 3n, mzxid: 3n, invokeAt: 2, respondAt: 3 })], new Map()).join())
      .toMatch(/linearizable writes: b's write 0x3 began after a's write 0x5 had completed/);
  });

  it('flags a value no write made, and a session seeing the state go back', () => {
    expect(checkHistory([op({ zxid: 2n, mzxid: 2n, value: 'x' }), op({ kind: 'read', value: 'bogus', invokeAt: 2, respondAt: 3, zxid: 2n, mzxid: 2n })], new Map()).join())
      .toMatch(/valid reads: a read "bogus" from \/k at mzxid 0x2, which wrote "x"/);
    expect(checkHistory([op({ zxid: 4n, mzxid: 4n }), op({ kind: 'read', invokeAt: 2, respondAt: 3, zxid: 3n, mzxid: 3n, value: null })], new Map()).join())
      .toMatch(/monotonic reads: a was answered at 0x3 after 0x4/);
  });
});

describe('the simulation checker', () => {
  const p = (s: string) => new TextEncoder().encode(s);
  const start = initialSimState(0n);

  it('flags two leaders of one epoch (Q1)', () => {
    const c = new Checker(() => 0, start);
    c.leading(1, 5);
    c.leading(1, 5);
    expect(c.violations).toEqual([]);
    c.leading(2, 5);
    expect(c.violations[0]).toMatch(/Q1: servers 1 and 2 both lead epoch 5/);
  });

  it('flags two histories (Q2)', () => {
    const c = new Checker(() => 0, start);
    const a1 = applyToSimState(start, makeZxid(1, 1), p('a'));
    c.applied(1, start, makeZxid(1, 1), p('a'), a1);
    const b1 = applyToSimState(start, makeZxid(2, 1), p('b'));
    c.applied(2, start, makeZxid(2, 1), p('b'), b1);
    expect(c.violations.join()).toMatch(/Q2: server 2 applied 0x200000001 after 0x0, another applied 0x100000001/);
  });

  it('flags an acknowledged write missing from the final history', () => {
    const c = new Checker(() => 0, start);
    const s1 = applyToSimState(start, makeZxid(1, 1), p('a'));
    c.applied(1, start, makeZxid(1, 1), p('a'), s1);
    const s2 = applyToSimState(s1, makeZxid(1, 2), p('b'));
    c.applied(1, s1, makeZxid(1, 2), p('b'), s2);
    c.ack(makeZxid(1, 2), p('b'));
    // Every server ended at 1.1: the write at 1.2 was lost.
    c.final(new Map([[1, { state: s1, serving: true }], [2, { state: s1, serving: true }]]));
    expect(c.violations.join()).toMatch(/acknowledged write "b" at 0x100000002 is not in the final history/);
  });
});
