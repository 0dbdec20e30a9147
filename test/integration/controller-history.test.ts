// The failover history and maintenance live in the quorum: the history of a
// failover (who stopped being active and why, who fenced whom, who became
// active and how long it took) survives a controller restart and the kill of
// the quorum's leader; maintenance set while a controller was cut off from the
// quorum reaches it when it is back, survives a controller restart, and holds
// the role where it is until resume.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fourLetterWord } from '../../src/client/four-letter-word.js';
import { startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, f: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (let i = 0; Date.now() < end && i < ms / 100; i++) {
    try { const v = await f(); if (v) return v; last = v; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

interface Entry { type: string; instance: string; at: string; seq: number; reason?: string; durationMs?: number; target?: string; epoch?: number | null }

async function history(c: HaCluster): Promise<Entry[]> {
  const r = await c.cli(['history', '--config', c.cfgPath, '--service', 'orders', '--json']);
  if (r.code !== 0) throw new Error(`history: exit ${r.code}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { entries: Entry[] }).entries;
}

describe('failover history in a quorum of three', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { quorumServers: 3 }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });

  it('records a failover (demoted and why, fenced, promoted with its duration) and keeps it through a controller restart and a leader kill', async () => {
    const a = await c.settledActive();
    const first = c.instances.find((i) => i.id === a)!;
    await first.service.kill9();
    const b = await c.settledActive(60_000, a); // a quorum of three on a loaded 2-core CI machine
    await first.service.restart();
    const h1 = await waitFor('the failover in the history', async () => {
      const h = await history(c);
      return h.some((e) => e.instance === b && e.type === 'promoted') && h.some((e) => e.instance === a && e.type === 'demoted') ? h : null;
    });
    const promoted = h1.filter((e) => e.instance === b && e.type === 'promoted').at(-1)!;
    expect(promoted.durationMs).toBeGreaterThanOrEqual(0);
    expect(promoted).toMatchObject({ epoch: expect.any(Number) });
    expect(h1.filter((e) => e.instance === a && e.type === 'demoted').at(-1)!.reason).toMatch(/unhealthy|not-responding|ECONNREFUSED/);
    expect(h1.some((e) => e.instance === b && e.type === 'fenced' && e.target === a)).toBe(true);
    // Oldest first, one sequence, wall times in order.
    expect(h1.map((e) => e.seq)).toEqual([...h1.map((e) => e.seq)].sort((x, y) => x - y));

    // The quorum's leader killed and restarted, and the controller of the old active restarted.
    const modes = await Promise.all(c.quorumPorts.map((p) => fourLetterWord('127.0.0.1', p, 'srvr').then((t) => /Mode: (\w+)/.exec(t)?.[1] ?? '?', () => 'down')));
    const leader = modes.indexOf('leader');
    expect(leader).toBeGreaterThanOrEqual(0);
    await c.quorumServers[leader].kill9();
    await first.controller.stop();
    await c.quorumServers[leader].restart();
    await first.controller.restart();
    const h2 = await waitFor('the history again, read through either controller', () => history(c), 30_000);
    for (const e of h1) expect(h2.find((x) => x.seq === e.seq)).toEqual(e);
    const since = await c.cli(['history', '--config', c.cfgPath, '--service', 'orders', '--since', promoted.at]);
    expect(since.code, since.stderr).toBe(0);
    expect(since.stdout).toMatch(new RegExp(`${b} .*became active after \\d+ ms`));
    expect(since.stdout).not.toMatch(/stopped being active/); // the demotion came before `since`
  }, 120_000);
});

describe('a scheduled switchover and status --watch', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });

  it('failover --at: shown in status, refused twice, cancelled; a near one carried out by the active at its time and recorded', async () => {
    const act = await c.settledActive();
    const to = c.instances.find((i) => i.id !== act)!.id;
    // One an hour ahead: status shows it, a second is refused, --cancel cancels it.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const s = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--at', later, '--to', to]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(new RegExp(`^switchover scheduled at ${later} to ${to};`, 'm'));
    const again = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--at', new Date(Date.now() + 7_200_000).toISOString()]);
    expect(again.code, again.stdout + again.stderr).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`already scheduled at ${later} to ${to} by .*: cancel it first`));
    const st = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(st.stdout).toMatch(new RegExp(`^switchover scheduled at ${later} to ${to} by `, 'm'));
    const cancel = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--cancel']);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`^cancelled the switchover scheduled at ${later} to ${to}`, 'm'));
    const none = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--cancel']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no switchover is scheduled/);
    const past = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--at', '2020-01-01T00:00:00Z']);
    expect(past.stderr).toMatch(/is not in the future/);
    expect(await c.actives()).toEqual([act]);

    // One a few seconds ahead: carried out at its time, to its target.
    const soon = new Date(Date.now() + 15_000).toISOString(); // the CLI alone takes seconds on a loaded machine
    const s2 = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--at', soon, '--to', to]);
    expect(s2.code, s2.stderr).toBe(0);
    expect(await c.settledActive(60_000, act)).toBe(to);
    const h = await waitFor('the switchover in the history', async () => {
      const e = (await history(c)).filter((x) => x.type === 'scheduled-failover') as unknown as { action: string; at: string; due: string }[];
      return e.some((x) => x.action === 'started') ? e : null;
    });
    expect(h.map((x) => x.action)).toEqual(['scheduled', 'cancelled', 'scheduled', 'started']);
    const started = h.find((x) => x.action === 'started')!;
    expect(started.due).toBe(soon);
    expect(Date.parse(started.at)).toBeGreaterThanOrEqual(Date.parse(soon) - 50); // not before its time
    expect((await c.status(to)).scheduledFailover).toBeNull();
  }, 120_000);

  it('status --watch refreshes the table', async () => {
    await c.settledActive();
    const w = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders', '--watch', '0.3', '--iterations', '3']);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout.match(/^INSTANCE +ROLE/gm)).toHaveLength(3);
    expect(w.stdout.match(/every 0.3 s, Ctrl-C to stop/g)).toHaveLength(3);
    const bad = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders', '--watch', 'often']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--watch: "often" is not a number of seconds/);
  }, 30_000);
});

describe('maintenance kept in the quorum', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { proxied: true }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });

  it('reaches a controller that was cut off when it was set, survives a controller restart, and holds the role until resume', async () => {
    const act = await c.settledActive();
    const sb = c.instances.find((i) => i.id !== act)!;
    const active = c.instances.find((i) => i.id === act)!;
    sb.proxy!.block();
    try {
      await waitFor('the standby to lose the quorum', async () => (await c.status(sb.id)).session !== 'connected', 15_000);
      const p = await c.cli(['pause', '--config', c.cfgPath, '--service', 'orders', '--reason', 'disk swap']);
      expect(p.code).toBe(1); // one controller has not followed yet: said, not hidden
      expect(p.stdout).toMatch(new RegExp(`^${act}: paused by .*: disk swap$`, 'm'));
      expect(p.stdout).toMatch(new RegExp(`^${sb.id}: not paused yet`, 'm'));
    } finally {
      sb.proxy!.unblock();
    }
    await waitFor('the cut-off controller to follow the maintenance', async () => (await c.status(sb.id)).paused === true, 20_000);
    expect((await c.status(sb.id)).maintenance).toMatchObject({ reason: 'disk swap', inForce: true });

    // A restarted controller reads it before it may race.
    await sb.controller.stop();
    await sb.controller.restart();
    await waitFor('the restarted controller paused', async () => (await c.status(sb.id).catch(() => ({ paused: false }))).paused === true, 20_000);

    // Paused: the active's service dies, and nothing moves.
    await active.service.kill9();
    await sleep(3000);
    expect(await c.actives()).toEqual([act]);
    const r = await c.cli(['resume', '--config', c.cfgPath, '--service', 'orders']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await c.settledActive(30_000, act)).toBe(sb.id);
    await active.service.restart();
  }, 120_000);
});
