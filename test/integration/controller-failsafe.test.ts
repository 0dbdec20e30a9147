// Failsafe with real processes: the coordination quorum's majority down for
// several session timeouts does not take a healthy service down (the active
// stays active and keeps writing; no standby is promoted), and the active's
// controller cut off from the quorum while the journal still answers is
// deposed by the other instance's newer epoch: its service stops at its next
// write and its controller demotes at its next check; C4 holds throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { checkC4, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';

async function written(c: HaCluster, id: string): Promise<number> {
  const i = c.instances.find((x) => x.id === id)!;
  const r = await request(`http://127.0.0.1:${i.servicePort}/role`, { signal: AbortSignal.timeout(2000) });
  return ((await r.body.json()) as { written: number }).written;
}

describe('failsafe: the quorum\'s majority down', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { quorumServers: 3, failsafe: true }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('the active stays active and keeps writing; no one else is promoted; the quorum back, nothing moves', async () => {
    const a = await c.settledActive(30_000);
    await Promise.all([c.quorumServers[1].stop(), c.quorumServers[2].stop()]);
    const sessionMs = 3000;
    const before = await written(c, a);
    // Three session timeouts without a quorum, sampled: never anyone else, and the active stays.
    const seen = new Set<string>();
    let sawFailsafe = false;
    const end = Date.now() + 3 * sessionMs;
    while (Date.now() < end) {
      for (const x of await c.actives()) seen.add(x);
      // Either its failsafe check saw the newer epoch, or its service, fenced at its next write, stepped
      // down and failed its health check first: both demote it.
      const st = await c.status(a);
      if (st.failsafe) sawFailsafe = true;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...seen]).toEqual([a]);
    expect(await c.actives()).toEqual([a]);
    expect(sawFailsafe).toBe(true);
    expect(await written(c, a)).toBeGreaterThan(before);
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.stdout).toMatch(/FAILSAFE since/);
    await Promise.all([c.quorumServers[1].restart(), c.quorumServers[2].restart()]);
    const back = Date.now() + 30_000;
    while (Date.now() < back && (await c.status(a)).failsafe) await new Promise((r) => setTimeout(r, 200));
    expect((await c.status(a)).failsafe).toBeNull();
    expect(await c.actives()).toEqual([a]);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});

describe('failsafe: the active\'s controller cut off from the quorum, not from the journal', () => {
  let c: HaCluster;
  // Journal fencing alone: a graceful fence (the old active's admin API still answers) would cede it cleanly.
  beforeAll(async () => { c = await startHaCluster(2, { proxied: true, failsafe: true, fencing: '[journal]' }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('the other is promoted once the session expires; the old active is fenced by the epoch and demotes; C4', async () => {
    const a = await c.settledActive();
    const victim = c.instances.find((i) => i.id === a)!;
    victim.proxy!.block();
    try {
      const end = Date.now() + 30_000;
      let b: string | null = null;
      while (Date.now() < end && b === null) {
        const act = await c.actives();
        b = act.find((x) => x !== a) ?? null;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(b, 'another instance promoted').not.toBeNull();
      // The deposed active learns it from the journal within a few checks, though still cut off.
      const gone = Date.now() + 10_000;
      while (Date.now() < gone && (await c.actives()).includes(a)) await new Promise((r) => setTimeout(r, 100));
      expect(await c.actives()).toEqual([b]);
      // Either its failsafe check saw the newer epoch, or its service, fenced at its next write, stepped
      // down and failed its health check first: both demote it.
      const st = await c.status(a);
      expect(String(st.lastFailure), JSON.stringify(st)).toMatch(/no journal check backs|service unhealthy/);
    } finally {
      victim.proxy!.unblock();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});
