// Seeded runs of the failover controllers (src/sim/controller-sim.ts): the real
// ControllerCore through the production driver code (controller-ops.ts,
// fencing.ts, the journal epoch, the quorum session loop) over the simulated
// ZooKeeper ensemble reached by the real ZkClient, JournalState nodes and
// simulated services, under pauses, crashes, restarts with and without the
// session re-attach, partitions, dying and hanging services, failing and
// hanging hooks and fencing. Checked: C1-C4 as they happen, and exactly one
// active once the faults have stopped for SIM_SETTLE_BOUND_MS.
import { describe, expect, it } from 'vitest';
import { runControllerSimulation } from '../../src/sim/controller-sim.js';

describe('controller simulation', () => {
  it('keeps C1-C4 and ends with one active over 40 seeded schedules of 2 and 3 instances', async () => {
    const failures: string[] = [];
    const totals: Record<string, number> = {};
    for (let seed = 1; seed <= 40; seed++) {
      const instances = seed % 3 === 0 ? 3 : 2;
      const r = await runControllerSimulation({ seed, instances, faultMs: 20_000, settleMs: 5000, trace: false });
      for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.join('; ')}\n  replay: npm run sim -- --controller --seed ${seed} --instances ${instances} --fault-ms 20000 --settle-ms 5000 --trace`);
    }
    expect(failures).toEqual([]);
    // The runs did what they are for: failovers with fencing, expired sessions, restarts that resumed.
    expect(totals.promotions).toBeGreaterThan(40 * 3);
    expect(totals.fences).toBeGreaterThan(40 * 2);
    expect(totals.fenceFailures).toBeGreaterThan(0);
    expect(totals.sessionsExpired).toBeGreaterThan(40 * 3);
    expect(totals.resumedRestarts).toBeGreaterThan(0);
    expect(totals.writersFenced).toBeGreaterThan(0);
    expect(totals.writesAcked).toBeGreaterThan(40 * 100);
    // The quorum under them failed too: servers crashed, leaders were cut off.
    expect(totals.quorumCrashes).toBeGreaterThan(40);
    expect(totals.leaderIsolations).toBeGreaterThan(20);
  }, 60_000);

  it('replays a seed exactly', async () => {
    const a = await runControllerSimulation({ seed: 42, instances: 3, faultMs: 10_000, settleMs: 2000, trace: true });
    const b = await runControllerSimulation({ seed: 42, instances: 3, faultMs: 10_000, settleMs: 2000, trace: true });
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
    expect(a.trace.some((l) => l.includes('-> active'))).toBe(true);
  });
});
