// Three instances: priorities (the highest healthy standby wins; a lower one
// waits before racing), noFailover (never promoted automatically, refused as
// a failover target with the reason), `failover` without --to picking the
// best healthy standby, and kill -9 of the active service twice in a row.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkC4, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { holdsFor, waitUntil } from '../helpers/wait.js';

/** Healthy and standing by: watching the lock, or (noFailover: it never races) plain standby. */
async function healthyStandby(c: HaCluster, id: string): Promise<void> {
  await waitUntil(`${id} a healthy standby`, 20_000, async () => {
    const s = await c.status(id);
    return s.health === 'healthy' && (s.phase === 'watching' || (s.noFailover === true && s.phase === 'standby'));
  });
}

describe('controller: three instances, priorities and noFailover', () => {
  let c: HaCluster;
  // a: priority 10, b: priority 5, c: noFailover.
  beforeAll(async () => { c = await startHaCluster(3, { priorities: [10, 5, 5], noFailover: ['c'] }); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('the higher priority wins; after its service dies the next healthy one does, never the noFailover one', async () => {
    const first = await c.settledActive();
    expect(first).toBe('a');
    await healthyStandby(c, 'b');
    await healthyStandby(c, 'c');
    const a = c.instances[0];
    await a.service.kill9();
    expect(await c.settledActive(20_000, 'a')).toBe('b');
    await a.service.restart();
    await healthyStandby(c, 'a');
    // No automatic failback to the higher priority: a, healthy and watching, leaves b active. What
    // this waits out: a failback would start at once (a's rank 0: raceDelayMs 200 × 0) or at a's next
    // health check (200 ms interval, 300 ms timeout), and show on /active after its promotion's steps
    // (the graceful fence of b, a journal epoch within requestTimeoutMs 1000, toActive): 2000 ms.
    await holdsFor('b stays active with a healthy higher-priority a back (no failback)', 2000, async () => JSON.stringify(await c.actives()) === JSON.stringify(['b']));
    // b dies too: a (healthy) wins; c never races.
    const b = c.instances[1];
    await b.service.kill9();
    expect(await c.settledActive(20_000, 'b')).toBe('a');
    expect((await c.status('c')).phase).not.toBe('active');
    await b.service.restart();
    await healthyStandby(c, 'b');
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);

  it('failover refuses the noFailover instance and an unhealthy one, with the reason; without --to it picks the best healthy standby', async () => {
    expect(await c.settledActive()).toBe('a');
    const refused = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', 'c']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/c refused: instance c is noFailover/);
    const sick = await request(`http://127.0.0.1:${c.instances[1].servicePort}/sick`, { method: 'POST' });
    await sick.body.dump();
    await waitUntil('b\'s controller sees it unhealthy', 10_000, async () => (await c.status('b')).health === 'unhealthy');
    const r2 = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', 'b']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/b refused: instance b is unhealthy/);
    // Heal b; failover with no target picks b (the only healthy standby that may fail over).
    await c.instances[1].service.stop();
    await c.instances[1].service.restart();
    await healthyStandby(c, 'b');
    const r3 = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders']);
    expect(r3.code, r3.stdout + r3.stderr).toBe(0);
    expect(r3.stdout).toContain('b is active');
    expect(await c.actives()).toEqual(['b']);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});
