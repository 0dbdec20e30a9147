// The controller on a replicated quorum of three: the quorum's leader killed
// with -9 while the active service is killed too. Properties: exactly one
// instance active in the end, C4 through the journal, status reachable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fourLetterWord } from '../../src/client/index.js';
import { checkC4, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';

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
    await new Promise((r) => setTimeout(r, 1000));
    expect(await c.actives()).toEqual([b]);
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.code, s.stdout).toBe(0);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);

  it('the quorum leader killed -9 alone: the active stays the only active (or one other takes over), C4', async () => {
    await c.settledActive(30_000);
    const leader = await leaderIndex(c);
    await c.quorumServers[leader].kill9();
    await new Promise((r) => setTimeout(r, 3000));
    await c.settledActive(30_000);
    await c.quorumServers[leader].restart();
    await c.settledActive(30_000);
    expect(checkC4(await c.journalHistory())).toEqual([]);
  }, 90_000);
});
