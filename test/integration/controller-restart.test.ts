// A restart of the active's controller moves nothing (issue 15): SIGTERM and
// restart, and kill -9 and restart, within the session timeout, leave the
// active role where it was: the restarted controller re-attaches to its
// session (kept in its run directory, mode 0600), proves the lock and the
// active service are still its own and resumes; the service never hears a
// to-standby (nor a to-active), keeps its journal epoch, and no other instance
// is ever active. A restart after the session expired fails over as before.
// C4 (never two writers both accepted) is checked on the journal each time.
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectC4, showLogsOnFailure, startHaCluster, type HaCluster, type HaInstance } from '../helpers/ha-cluster.js';

/** Long enough for a node process to stop and start again on a loaded 2-core machine. */
const SESSION_MS = 8000;

async function role(i: HaInstance): Promise<{ role: string; epoch: number | null }> {
  return (await request(`http://127.0.0.1:${i.servicePort}/role`, { signal: AbortSignal.timeout(2000) }).then((r) => r.body.json())) as { role: string; epoch: number | null };
}

/** Polls who is active until `until` holds (bounded); returns every instance seen active meanwhile. */
async function watchActives(c: HaCluster, until: () => Promise<boolean>, ms: number): Promise<Set<string>> {
  const seen = new Set<string>();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (const a of await c.actives()) seen.add(a);
    if (await until().catch(() => false)) return seen;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${ms} ms (seen active: ${[...seen].join(', ') || 'none'})`);
}

const sessionFile = (c: HaCluster, id: string) => path.join(c.runDir!, `controller-orders:${id}.session`);

describe('controller restart of the active instance', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { runDir: true, sessionTimeoutMs: SESSION_MS }); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  for (const how of ['SIGTERM', 'kill -9'] as const) {
    it(`${how} and restart within the session timeout: the role does not move, the service hears no role change`, async () => {
      const a = await c.settledActive(30_000);
      const victim = c.instances.find((i) => i.id === a)!;
      const other = c.instances.find((i) => i.id !== a)!;
      // The standby must be racing-ready: a failover, if the restart caused one, would show.
      await watchActives(c, async () => (await c.status(other.id)).phase === 'watching', 20_000);
      const before = await role(victim);
      expect(before.role).toBe('active');
      const controllerEpoch = (await c.status(a)).epoch;
      const st = fs.statSync(sessionFile(c, a));
      expect(st.mode & 0o777).toBe(0o600);
      const serviceLogFrom = victim.service.logs().length;
      const controllerLog = victim.controller.logs();
      expect(controllerLog).not.toMatch(/"passwd"/);

      const t0 = Date.now();
      if (how === 'SIGTERM') expect(await victim.controller.stop()).toBe(0);
      else await victim.controller.kill9();
      expect(fs.existsSync(sessionFile(c, a))).toBe(true);
      await victim.controller.restart();
      const seen = await watchActives(c, async () => (await c.status(a)).active === true, SESSION_MS * 2);
      const back = Date.now() - t0;
      // No other instance was ever seen active; this one is again.
      expect([...seen].filter((x) => x !== a)).toEqual([]);
      expect(await c.actives()).toEqual([a]);
      const s = await c.status(a);
      expect(s.lastTransition).toMatchObject({ to: 'active', reason: expect.stringMatching(/^resumed after a restart/) });
      // Still within its session: the old one, re-attached.
      expect(back).toBeLessThan(SESSION_MS * 2);
      const after = await role(victim);
      expect(after).toMatchObject({ role: 'active', epoch: before.epoch });
      expect(s.epoch).toBe(controllerEpoch);
      // The service was told nothing: neither a step down nor a promotion.
      const serviceLog = victim.service.logs().slice(serviceLogFrom);
      expect(serviceLog).not.toMatch(/standby: /);
      expect(serviceLog).not.toMatch(/active \(epoch/);
      expect(victim.controller.logs()).toMatch(/re-attached to the quorum session of the previous run/);
      // The other never raced: it still watches the same lock.
      expect((await c.status(other.id)).phase).toBe('watching');
      const h = await c.cli(['history', '--config', c.cfgPath, '--service', 'orders', '--since', new Date(t0 - 1000).toISOString()]);
      expect(h.code, h.stderr).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`${a} .*stayed active across a controller restart`));
      expect(h.stdout).not.toMatch(/became active|stopped being active/);
      await expectC4(c);
    }, 90_000);
  }

  it('a standby\'s SIGTERM closes its session and removes its file', async () => {
    const a = await c.settledActive(30_000);
    const sb = c.instances.find((i) => i.id !== a)!;
    await watchActives(c, async () => (await c.status(sb.id)).phase === 'watching', 20_000);
    expect(fs.existsSync(sessionFile(c, sb.id))).toBe(true);
    expect(await sb.controller.stop()).toBe(0);
    expect(fs.existsSync(sessionFile(c, sb.id))).toBe(false);
    await sb.controller.restart();
    await watchActives(c, async () => (await c.status(sb.id)).phase === 'watching', 20_000);
    expect(await c.actives()).toEqual([a]);
  }, 60_000);

  it('controller stop --release hands off first: the service is made standby, the other takes over, the controller exits and its session file goes', async () => {
    const a = await c.settledActive(30_000);
    const victim = c.instances.find((i) => i.id === a)!;
    const other = c.instances.find((i) => i.id !== a)!;
    await watchActives(c, async () => (await c.status(other.id)).phase === 'watching', 20_000);
    const r = await c.cli(['controller', 'stop', '--config', c.cfgPath, '--service', 'orders', '--id', a, '--run-dir', c.runDir!, '--release']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(victim.controller.alive()).toBe(false);
    expect(fs.existsSync(sessionFile(c, a))).toBe(false);
    expect(await c.settledActive(SESSION_MS * 2, a)).toBe(other.id);
    expect((await role(victim)).role).toBe('standby');
    await victim.controller.restart();
    await watchActives(c, async () => (await c.status(a)).phase === 'watching', 20_000);
    expect(await c.actives()).toEqual([other.id]);
    await expectC4(c);
  }, 90_000);

  it('kill -9 and a restart after the session expired: fails over as before; the restarted controller does not trust the old lock', async () => {
    const a = await c.settledActive(30_000);
    const victim = c.instances.find((i) => i.id === a)!;
    await victim.controller.kill9();
    let b: string;
    try {
      // The session expires and the other instance takes over (fencing the old active's service).
      b = await c.settledActive(SESSION_MS * 4, a);
      await expectC4(c);
    } finally {
      await victim.controller.restart();
    }
    await watchActives(c, async () => { const s = await c.status(a); return s.phase === 'watching' && s.health === 'healthy'; }, 30_000);
    expect(await c.actives()).toEqual([b]);
    expect(victim.controller.logs()).toMatch(/not resuming after the restart|the previous run's quorum session has expired/);
    expect((await role(victim)).role).toBe('standby');
    await expectC4(c);
  }, 120_000);
});
