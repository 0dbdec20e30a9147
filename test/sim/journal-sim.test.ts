// Seeded runs of the journal quorum's cores (JournalState on each node,
// JournalWriter for each writer): writers supersede each other, sometimes
// racing; nodes crash losing what was not durable; requests are lost or slow.
// Checked: J1 (acknowledged only when durable on a majority), J2 (no txid
// acknowledged to two writers with different contents), J3 (every
// acknowledged edit is in the one history that remains).
import { describe, expect, it } from 'vitest';
import { runJournalSimulation } from '../../src/sim/journal-sim.js';

describe('journal simulation', () => {
  it('keeps J1, J2 and J3 over 150 seeded schedules of 3 and 5 nodes', () => {
    const failures: string[] = [];
    let acked = 0;
    let fenced = 0;
    let writers = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = runJournalSimulation({ seed, nodes: seed % 2 ? 3 : 5, faultMs: 5000, trace: false });
      acked += r.stats.acked;
      fenced += r.stats.fenced;
      writers += r.stats.writers;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.join('; ')}\n  replay: npm run sim -- --journal --seed ${seed} --servers ${seed % 2 ? 3 : 5} --trace`);
    }
    expect(failures).toEqual([]);
    // The runs did what they are for: many acknowledged batches, writers superseded (fenced) often.
    expect(acked).toBeGreaterThan(150 * 20);
    expect(fenced).toBeGreaterThan(150);
    expect(writers).toBeGreaterThan(150 * 3);
  }, 60_000);

  it('replays a seed exactly', () => {
    const a = runJournalSimulation({ seed: 42, nodes: 3, faultMs: 5000, trace: true });
    const b = runJournalSimulation({ seed: 42, nodes: 3, faultMs: 5000, trace: true });
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
  });
});
