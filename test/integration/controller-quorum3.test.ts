// The controller on a replicated quorum of three: the quorum's leader killed
// with -9 (alone, and while the active service is killed too), and the
// quorum server the active's controller talks to cut off from the others.
// Properties: exactly one instance active in the end, C4 through the
// journal, the cut-off active demoted before another is promoted (C2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fourLetterWord } from '../../src/client/index.js';
import { checkC4, serviceLoggedAt, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { holdsFor, waitUntil } from '../helpers/wait.js';

async function leaderIndex(c: HaCluster): Promise<number> {
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    for (const [k, p] of c.quorumPorts.entries()) {
      const out = await fourLetterWord('127.0.0.1', p, 'srvr', 1000).catch(() => '');
      if (/Mode: leader/.test(out)) return k;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no quorum leader');
}

describe('controller on a quorum of three', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { quorumServers: 3 }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('the quorum leader killed -9 (with the active service killed meanwhile): one active in the end, C4', async () => {
    const a = await c.settledActive(30_000);
    const leader = await leaderIndex(c);
    const victim = c.instances.find((i) => i.id === a)!;
    await c.quorumServers[leader].kill9();
    await victim.service.kill9();
    const b = await c.settledActive(30_000, a);
    expect(b).not.toBe(a);
    await c.quorumServers[leader].restart();
    await victim.service.restart();
    // a's controller back to a healthy standby watching b's lock; then b stays the only active. What
    // this waits out: a (equal priority: raceDelayMs 200 × rank 0) would race at once, and a promotion
    // shows on /active after the graceful fence of b, a journal epoch (requestTimeoutMs 1000) and
    // toActive; b's own demotion would take 3 failed checks × 200 ms (300 ms timeout): 2000 ms.
    await waitUntil(`${a} a healthy standby watching the lock`, 30_000, async () => {
      const s = await c.status(a);
      return s.health === 'healthy' && s.phase === 'watching';
    });
    await holdsFor(`${b} stays the only active with ${a} back`, 2000, async () => JSON.stringify(await c.actives()) === JSON.stringify([b]));
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.code, s.stdout).toBe(0);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);

  it('the quorum leader killed -9 alone: the active stays the only active (or one other takes over), C4', async () => {
    await c.settledActive(30_000);
    const leader = await leaderIndex(c);
    await c.quorumServers[leader].kill9();
    // The two others elect a new leader; only then is "one active" an answer about the quorum after the kill.
    await waitUntil('the two other quorum servers elect a new leader', 30_000, async () => {
      for (const [k, p] of c.quorumPorts.entries()) {
        if (k !== leader && /Mode: leader/.test(await fourLetterWord('127.0.0.1', p, 'srvr', 1000).catch(() => ''))) return true;
      }
      return false;
    }, 100);
    await c.settledActive(30_000);
    await c.quorumServers[leader].restart();
    await c.settledActive(30_000);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});

describe('controller: its quorum server cut off from the quorum\'s leader', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { partitionableQuorum: true }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('the active\'s controller talks to a server cut off from the others: it demotes its service before the other instance is promoted (C2)', async () => {
    const a = await c.settledActive(30_000);
    const k = c.instances.findIndex((i) => i.id === a);
    const victim = c.instances[k];
    const other = c.instances[1 - k];
    // Instance k's controller uses quorum server k: cut that server off from the other two.
    c.ensemble!.links!.cut([[k], [0, 1, 2].filter((x) => x !== k)]);
    try {
      expect(await c.settledActive(30_000, a)).toBe(other.id);
      const demotedAt = serviceLoggedAt(victim.service.logs(), /standby: asked by the controller/);
      const promotedAt = serviceLoggedAt(other.service.logs(), /active \(epoch/);
      expect(demotedAt, victim.service.logs()).not.toBeNull();
      expect(demotedAt!).toBeLessThan(promotedAt!);
    } finally {
      c.ensemble!.links!.heal();
    }
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});
