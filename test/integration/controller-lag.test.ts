// maxLagOnFailover with real processes: a standby whose service reports a
// replication lag beyond the limit does not race (status says why); a manual
// failover to it is refused with the reason unless forced.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkC4, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { holdsFor, waitUntil } from '../helpers/wait.js';

async function setLag(port: number, lag: number): Promise<void> {
  const r = await request(`http://127.0.0.1:${port}/lag`, { method: 'POST', body: JSON.stringify({ lag }) });
  await r.body.dump();
}

describe('controller: maxLagOnFailover', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { maxLag: 10 }); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });

  it('a lagging standby does not take over by itself; status says why; failover --force does', async () => {
    const a = await c.settledActive();
    const [active, standby] = a === 'a' ? c.instances : [c.instances[1], c.instances[0]];
    await setLag(standby.servicePort, 500);
    await waitUntil('the standby\'s controller sees its service 500 behind', 10_000, async () => (await c.status(standby.id)).lag === 500);
    await active.service.kill9();
    // The lock is gone (the dead service's controller released it) and the standby says why it does not race.
    await waitUntil('the old active demoted and the standby not racing for lag', 15_000, async () => {
      const [old, s] = [await c.status(active.id), await c.status(standby.id)];
      return old.active === false && typeof s.notRacing === 'string' && s.notRacing.includes('500 behind');
    });
    // And it keeps not racing: several health-check rounds, nobody active.
    await holdsFor('no instance active while the only standby lags', 2000, async () => (await c.actives()).length === 0);
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.stdout).toContain(`${standby.id}: not racing for the lock: its service is 500 behind, more than maxLagOnFailover 10`);
    const refused = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', standby.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/500 behind, more than maxLagOnFailover 10; failover --force overrides/);
    const forced = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', standby.id, '--force']);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(await c.actives()).toEqual([standby.id]);
    await active.service.restart();
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 60_000);
});
