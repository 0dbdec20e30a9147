// The controller's journal epoch (takeJournalEpoch, taken before every
// promotion) needs a majority, not every node: with one of three nodes
// stopped (SIGSTOP: it accepts and never answers), the epoch is taken without
// waiting for that node's request timeout; with two stopped it is refused.
// A new journal is still formatted only when every node says it is new.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalFencedError, takeJournalEpoch } from '../../src/client/journal/journal-epoch.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';

const SLOW_TIMEOUT_MS = 20_000;

describe('takeJournalEpoch', () => {
  let j: JournalCluster;
  const stopped = new Set<number>();
  beforeAll(async () => { j = await startJournalNodes(3); }, 60_000);
  afterAll(async () => {
    for (const pid of stopped) process.kill(pid, 'SIGCONT');
    await j?.stopAll();
  });

  it('formats a new journal and takes epoch 1, then 2', async () => {
    expect(await takeJournalEpoch('e', j.nodes, 5000)).toBe(1);
    expect(await takeJournalEpoch('e', j.nodes, 5000)).toBe(2);
  }, 30_000);

  it('one node of three stopped: the next epoch is taken without waiting for its timeout', async () => {
    const pid = j.procs[2].pid;
    process.kill(pid, 'SIGSTOP');
    stopped.add(pid);
    const t0 = performance.now();
    expect(await takeJournalEpoch('e', j.nodes, SLOW_TIMEOUT_MS)).toBe(3);
    expect(performance.now() - t0).toBeLessThan(SLOW_TIMEOUT_MS);
  }, 60_000);

  it('two of three stopped: refused (no majority)', async () => {
    const pid = j.procs[1].pid;
    process.kill(pid, 'SIGSTOP');
    stopped.add(pid);
    await expect(takeJournalEpoch('e', j.nodes, 1000)).rejects.toBeInstanceOf(JournalFencedError);
  }, 30_000);

  it('every node back: the epoch goes on from the highest promised', async () => {
    for (const pid of stopped) process.kill(pid, 'SIGCONT');
    stopped.clear();
    expect(await takeJournalEpoch('e', j.nodes, 5000)).toBeGreaterThanOrEqual(4);
  }, 30_000);
});
