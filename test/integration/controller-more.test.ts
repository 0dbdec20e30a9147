// More controller scenarios with real processes: the active controller cut
// off from the quorum (it demotes its own service before anyone else is
// promoted: C2), the active controller stopped past its session timeout and
// resumed, every fencing method failing (no promotion, status says why), and
// the same controller against Debian's Apache ZooKeeper.
import fs from 'node:fs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Op, ZkClient } from '../../src/client/index.js';
import { Err } from '../../src/proto/zk-constants.js';
import { apacheZkAvailable } from '../helpers/apache-zk.js';
import { expectC4, serviceLoggedAt, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { missingTool } from '../helpers/ports.js';

describe.each([2, 3])('controller: partitions and pauses, %i instances (our quorum, each controller through its own proxy)', (n) => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(n, { proxied: true }); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('C2: the active controller cut off from the quorum demotes its service before the other is promoted', async () => {
    const a = await c.settledActive();
    const victim = c.instances.find((i) => i.id === a)!;
    victim.proxy!.block();
    try {
      const b = await c.settledActive(30_000, a);
      const other = c.instances.find((i) => i.id === b)!;
      const demotedAt = serviceLoggedAt(victim.service.logs(), /standby: asked by the controller/);
      const promotedAt = serviceLoggedAt(other.service.logs(), /active \(epoch/);
      expect(demotedAt, victim.service.logs()).not.toBeNull();
      expect(demotedAt!).toBeLessThan(promotedAt!);
      expect((await c.status(a)).lastFailure).toMatch(/lease expired|session/);
    } finally {
      victim.proxy!.unblock();
    }
    await expectC4(c);
    // Back on the network: it rejoins as a standby.
    const end = Date.now() + 20_000;
    while (Date.now() < end && (await c.status(a)).phase !== 'watching') await new Promise((r) => setTimeout(r, 50));
    expect((await c.status(a)).phase).toBe('watching');
  }, 60_000);

  it('the active controller stopped past its session timeout, then resumed: the other is promoted, the resumed one demotes (C4)', async () => {
    const a = await c.settledActive();
    const victim = c.instances.find((i) => i.id === a)!;
    process.kill(victim.controller.pid, 'SIGSTOP');
    let b: string;
    try {
      b = await c.settledActive(30_000, a);
    } finally {
      process.kill(victim.controller.pid, 'SIGCONT');
    }
    expect(b).not.toBe(a);
    const end = Date.now() + 20_000;
    let role = '';
    while (Date.now() < end) {
      role = ((await request(`http://127.0.0.1:${victim.servicePort}/role`).then((r) => r.body.json())) as { role: string }).role;
      if (role === 'standby' && (await c.actives()).length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(role).toBe('standby');
    expect(await c.actives()).toEqual([b]);
    await expectC4(c);
  }, 60_000);
});

describe('controller: the admin API refuses what a web page can send', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });

  it('a cross-origin text/plain POST to the loopback bypass pauses nothing (a web page in a browser on the host could send it)', async () => {
    await c.settledActive();
    const port = c.instances[0].adminPort;
    const post = async (headers: Record<string, string>, body: string) => {
      const r = await request(`http://127.0.0.1:${port}/v1/pause`, { method: 'POST', headers, body, signal: AbortSignal.timeout(2000) });
      return { status: r.statusCode, json: (await r.body.json()) as { error?: string } };
    };
    const csrf = await post({ origin: 'http://evil.example', 'content-type': 'text/plain' }, '{}');
    expect(csrf.status).toBe(403);
    expect(csrf.json.error).toMatch(/requests from web pages are refused \(Origin: http:\/\/evil\.example\)/);
    const plain = await post({ 'content-type': 'text/plain' }, '{}');
    expect(plain.status).toBe(415);
    expect(plain.json.error).toBe('write endpoints take application/json (got text/plain)');
    const form = await post({ origin: 'null', 'content-type': 'application/x-www-form-urlencoded' }, 'a=b');
    expect(form.status).toBe(403);
    expect((await c.status(c.instances[0].id)).paused).toBe(false);
    // The CLI (an API client) still can.
    const ok = await post({ 'content-type': 'application/json' }, '{}');
    expect(ok.status).toBe(200);
    expect((await c.status(c.instances[0].id)).paused).toBe(true);
    await post({ 'content-type': 'application/json' }, '{}').then(() => request(`http://127.0.0.1:${port}/v1/resume`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
  }, 60_000);
});

describe('controller: a lock taken away by another client (no digest configured)', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('C1: the active demotes within its lease when its lock is deleted and re-created as a persistent node; the persistent node is removed and one instance is active again', async () => {
    const a = await c.settledActive();
    const zk = new ZkClient({ connectString: `127.0.0.1:${c.quorumPorts[0]}`, sessionTimeoutMs: 4000 });
    await zk.connect();
    try {
      const lock = '/quorate/test/orders/lock';
      const st = await zk.exists(lock);
      expect(st).not.toBeNull();
      const t0 = Date.now();
      // In one transaction, so no standby can take the lock in between.
      await zk.multi([Op.delete(lock, -1), Op.create(lock, Buffer.from('{"instance":"intruder"}'))]);
      // It used to stay ACTIVE for more than 20 s with the lock belonging to someone else.
      const end = Date.now() + 3000;
      while (Date.now() < end && (await c.actives()).includes(a)) await new Promise((r) => setTimeout(r, 20));
      expect(await c.actives()).not.toContain(a);
      expect(Date.now() - t0).toBeLessThan(3000); // well within the 3 s session's 2 s lease
      // The intruder's persistent node does not wedge the service: it is removed and someone wins again.
      const again = await c.settledActive(30_000);
      expect(['a', 'b']).toContain(again);
      const now = await zk.exists(lock);
      expect(now?.ephemeralOwner).not.toBe(0n);
    } finally {
      await zk.close();
    }
    await expectC4(c);
  }, 90_000);
});

describe('controller: every fencing method failing', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { fencing: '[ { shell: "echo no power switch >&2; exit 3" } ]' }); }, 90_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('no promotion while the old active cannot be fenced; status says why', async () => {
    const a = await c.settledActive();
    const victim = c.instances.find((i) => i.id === a)!;
    const other = c.instances.find((i) => i.id !== a)!;
    await victim.controller.kill9();
    // Its session expires; the other wins the lock but cannot fence a: it must not promote.
    const end = Date.now() + 15_000;
    let last: Record<string, unknown> = {};
    while (Date.now() < end) {
      last = await c.status(other.id);
      if (String(last.lastFailure ?? '').includes('every fencing method failed')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(String(last.lastFailure)).toMatch(/fencing a: every fencing method failed: shell: exit 3: no power switch/);
    expect(await c.actives()).toEqual([]);
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.stdout).toMatch(/every fencing method failed/);
    expect(s.code).toBe(1);
    // The old controller comes back: its service still active, it holds on (no fence needed for itself).
    await victim.controller.restart();
    expect(await c.settledActive(30_000)).toBe(a);
    await expectC4(c);
  }, 60_000);
});

describe.skipIf(missingTool(apacheZkAvailable()))('controller against Apache ZooKeeper 3.8 (Debian), with digest auth and a chroot', () => {
  let c: HaCluster;
  beforeAll(async () => { c = await startHaCluster(2, { backend: 'apache', digest: 'quorate:s3cret' }); }, 120_000);
  afterAll(async () => { await c?.stopAll(); });
  showLogsOnFailure(() => c);

  it('elects one active; kill -9 of the active service fails over; manual failover moves it back; C4 holds', async () => {
    const a = await c.settledActive(30_000);
    const victim = c.instances.find((i) => i.id === a)!;
    await victim.service.kill9();
    const b = await c.settledActive(30_000, a);
    expect(b).not.toBe(a);
    await victim.service.restart();
    const end = Date.now() + 20_000;
    while (Date.now() < end && (await c.status(a)).health !== 'healthy') await new Promise((r) => setTimeout(r, 50));
    const f = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', a]);
    expect(f.code, f.stdout + f.stderr).toBe(0);
    expect(await c.actives()).toEqual([a]);
    expect(fs.readFileSync(c.cfgPath, 'utf8')).toContain('/quorate-test');
    // Digest auth: the controllers' znodes are theirs only (CREATOR_ALL); a client without it is refused.
    const anon = new ZkClient({ connectString: `${c.apacheZk!.connectString}/quorate-test`, sessionTimeoutMs: 5000 });
    await anon.connect();
    try {
      await expect(anon.getData('/quorate/test/orders/lock')).rejects.toMatchObject({ code: Err.NOAUTH });
      await expect(anon.getData('/quorate/test/orders/breadcrumb')).rejects.toMatchObject({ code: Err.NOAUTH });
      await anon.addAuth('digest', 'quorate:s3cret');
      const crumb = await anon.getData('/quorate/test/orders/breadcrumb');
      expect(JSON.parse(crumb.data!.toString()).instance).toBe(a);
    } finally { await anon.close(); }
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.stdout).toMatch(new RegExp(`lock: ${a} \\(token \\d+\\)`));
    await expectC4(c);
  }, 90_000);
});
