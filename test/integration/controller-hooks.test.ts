// The controller's command hooks, pre-promote hook, admin API auth and the
// load-balancer endpoints, with real processes on 127.0.0.1: one standalone
// quorum server (tick 100 ms) and, per service, two controllers whose
// "service" is a bare TCP listener started here (the default health check is
// a TCP connect to servicePort). No journal: QUORATE_EPOCH is empty and the
// fencing token is the lock's czxid. One cluster file (JSON, which YAML
// reads) with a controller section that requires a bearer token.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { freePort, waitForPort } from '../helpers/ports.js';
import { holdsFor } from '../helpers/wait.js';

const TOKEN = 's3cret-admin-token-0123456789';
const SERVICES = ['orders', 'gated', 'admin', 'lb'] as const;
type ServiceName = (typeof SERVICES)[number];
const IDS = ['a', 'b'] as const;

interface Inst { service: ServiceName; id: string; adminPort: number; servicePort: number; listener: ChildProcess | null; controller: CliProcess | null }

let dir: string;
let cfgPath: string;
let quorum: CliProcess | null = null;
const insts: Inst[] = [];
const listeners: ChildProcess[] = [];

const inst = (service: ServiceName, id: string) => insts.find((i) => i.service === service && i.id === id)!;
const hookFile = (service: ServiceName) => path.join(dir, `${service}-hooks.log`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A hook command: one line `hook|role|epoch|token|previous|instance|service` appended to the service's file. */
function hookCmd(service: ServiceName, hook: string, tail = ''): string {
  return `echo "${hook}|$QUORATE_ROLE|$QUORATE_EPOCH|$QUORATE_FENCING_TOKEN|$QUORATE_PREVIOUS|$QUORATE_INSTANCE|$QUORATE_SERVICE" >> ${hookFile(service)}${tail}`;
}

interface HookLine { hook: string; role: string; epoch: string; token: string; previous: string; instance: string; service: string }
function hookLines(service: ServiceName): HookLine[] {
  let text = '';
  try { text = fs.readFileSync(hookFile(service), 'utf8'); } catch { return []; }
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const [hook, role, epoch, token, previous, instance, svc] = l.split('|');
    return { hook, role, epoch, token, previous, instance, service: svc };
  });
}

async function startListener(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `require('net').createServer((s) => s.destroy()).listen(${port}, '127.0.0.1')`], { detached: true, stdio: 'ignore' });
  listeners.push(child);
  await waitForPort(port, 10_000);
  return child;
}

async function killListener(i: Inst): Promise<void> {
  const child = i.listener!;
  const gone = new Promise<void>((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once('exit', () => r()); });
  process.kill(child.pid!, 'SIGKILL');
  await gone;
  i.listener = null;
}

async function get(i: Inst, p: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${i.adminPort}${p}`, { signal: AbortSignal.timeout(2000) });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
}

async function post(i: Inst, p: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${i.adminPort}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, signal: AbortSignal.timeout(2000) });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
}

async function actives(service: ServiceName): Promise<string[]> {
  const r = await Promise.all(insts.filter((i) => i.service === service).map(async (i) => {
    try { return (await get(i, '/active')).status === 200 ? i.id : null; } catch { return null; }
  }));
  return r.filter((x): x is string => x !== null);
}

/** Polls `f` until it returns a non-undefined value; throws with `what` (and the last value seen) after `ms`. */
async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function settledActive(service: ServiceName, not?: string): Promise<string> {
  return waitFor(`a single active instance of ${service}${not ? ` other than ${not}` : ''}`, async () => {
    const a = await actives(service);
    return a.length === 1 && a[0] !== not ? a[0] : undefined;
  }, 30_000);
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

async function startController(i: Inst): Promise<void> {
  i.controller = await startCliProcess(['controller', '--config', cfgPath, '--service', i.service, '--id', i.id], i.adminPort);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-hooks-'));
  cfgPath = path.join(dir, 'cluster.yaml');
  fs.writeFileSync(path.join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  const clientPort = await freePort();
  for (const service of SERVICES) for (const id of IDS) insts.push({ service, id, adminPort: await freePort(), servicePort: await freePort(), listener: null, controller: null });

  const hooksOf = (i: Inst) => {
    const h: Record<string, { command: string }> = {
      toActive: { command: hookCmd(i.service, 'toActive') },
      toStandby: { command: hookCmd(i.service, 'toStandby') },
    };
    // gated: a's pre-promote hook refuses (exit 4), b's agrees.
    if (i.service === 'gated') h.preActive = { command: hookCmd(i.service, 'preActive', i.id === 'a' ? '; echo "not ready to promote" >&2; exit 4' : '; true') };
    return h;
  };
  const cluster = {
    cluster: 'hooks-test',
    quorum: { tickMs: 100, session: { maxTimeoutMs: 60000 }, dataDir: path.join(dir, 'quorum'), clientPort, clientHost: '127.0.0.1' },
    controller: { sessionTimeoutMs: 3000, adminTokenFile: 'admin.token', allowLoopbackWithoutToken: false },
    services: SERVICES.map((name) => ({
      name,
      // A dead service's controller answers graceful fencing with 409; the shell method counts once its port is closed.
      fencing: ['graceful', { shell: 'true' }],
      raceDelayMs: 200,
      cedeMs: 3000,
      promotionsPerWindow: 1000,
      instances: insts.filter((i) => i.service === name).map((i) => ({
        id: i.id, host: '127.0.0.1', adminPort: i.adminPort, servicePort: i.servicePort, hooks: hooksOf(i),
      })),
    })),
  };
  fs.writeFileSync(cfgPath, JSON.stringify(cluster, null, 2) + '\n');

  quorum = await startCliProcess(['quorum', '--config', cfgPath, '--id', '1'], clientPort);
  for (const i of insts) i.listener = await startListener(i.servicePort);
  // gated: a alone first, so that it is the one that tries (and fails) to promote; b is started by its test.
  await Promise.all(insts.filter((i) => !(i.service === 'gated' && i.id === 'b')).map((i) => startController(i)));
}, 120_000);

afterAll(async () => {
  for (const i of insts) await i.controller?.stop();
  await quorum?.stop();
  // Only those still running: a reaped PID may belong to someone else by now.
  for (const l of listeners) if (l.exitCode === null && l.signalCode === null) { try { process.kill(l.pid!, 'SIGKILL'); } catch { /* gone */ } }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const i of insts) {
    if (i.controller === null) continue;
    process.stderr.write(`--- controller ${i.service}/${i.id}:\n${i.controller.logs().split('\n').slice(-20).map((l) => l.slice(0, 400)).join('\n')}\n`);
  }
  for (const s of SERVICES) process.stderr.write(`--- hooks of ${s}:\n${(() => { try { return fs.readFileSync(hookFile(s), 'utf8'); } catch { return '(none)'; } })()}\n`);
});

describe('controller hooks, admin API auth and the load-balancer endpoints (real processes)', () => {
  it('command hooks: one instance runs toActive with a numeric token; after its service dies, the other does, with a larger token and the first as previous', async () => {
    const first = await settledActive('orders');
    // A second promotion must not follow: the other instance stays standby for several health-check rounds.
    // What this waits out (the config above; default TCP checks): the other, healthy after its first
    // check (200 ms interval), would race at once (raceDelayMs 200 × rank 0: equal priorities), and
    // the first, were its service failing, would be demoted after 3 failed checks × 200 ms, each with
    // a 1000 ms timeout: 2000 ms covers both.
    await holdsFor(`${first} stays the only active of orders`, 2000, async () => JSON.stringify(await actives('orders')) === JSON.stringify([first]));
    const up1 = hookLines('orders').filter((l) => l.hook === 'toActive');
    expect(up1).toHaveLength(1);
    expect(up1[0]).toMatchObject({ role: 'active', epoch: '', previous: '', instance: first, service: 'orders' });
    expect(up1[0].token).toMatch(/^\d+$/);
    const firstToken = BigInt(up1[0].token);
    expect(firstToken).toBeGreaterThan(0n);
    // The status reports the same token as the hook saw.
    expect((await get(inst('orders', first), '/v1/status')).json.fencingToken).toBe(up1[0].token);

    const second = IDS.find((x) => x !== first)!;
    await killListener(inst('orders', first));
    expect(await settledActive('orders', first)).toBe(second);
    const up2 = await waitFor('the second toActive line', () => {
      const l = hookLines('orders').filter((x) => x.hook === 'toActive');
      return l.length >= 2 ? l : undefined;
    });
    expect(up2).toHaveLength(2);
    expect(up2[1]).toMatchObject({ role: 'active', epoch: '', previous: first, instance: second, service: 'orders' });
    expect(up2[1].token).toMatch(/^\d+$/);
    expect(BigInt(up2[1].token)).toBeGreaterThan(firstToken);
    // The first instance was told to go standby (its hook ran even though its service is dead).
    await waitFor('the first instance\'s toStandby line', () => hookLines('orders').find((l) => l.hook === 'toStandby' && l.instance === first));
    const down = hookLines('orders').filter((l) => l.hook === 'toStandby' && l.instance === first);
    expect(down[0]).toMatchObject({ role: 'standby', epoch: '', token: up1[0].token });
    // /active: the new active answers 200, the old one 503.
    expect((await get(inst('orders', second), '/active')).status).toBe(200);
    const old = await get(inst('orders', first), '/active');
    expect(old.status).toBe(503);
    expect(old.json.active).toBe(false);
  }, 90_000);

  it('a pre-promote hook that fails keeps that instance from ever being made active; the other is promoted', async () => {
    const a = inst('gated', 'a');
    // a alone: it wins the lock, its pre-promote hook exits 4, the promotion fails.
    const failure = await waitFor('a\'s pre-promote failure in its status', async () => {
      const s = (await get(a, '/v1/status')).json;
      return typeof s.lastFailure === 'string' && /pre-promote/.test(s.lastFailure) ? s.lastFailure : undefined;
    });
    expect(failure).toMatch(/pre-promote hook/);
    expect(failure).toMatch(/exit 4/);
    expect(hookLines('gated').some((l) => l.hook === 'preActive' && l.instance === 'a' && l.role === 'active')).toBe(true);

    const b = inst('gated', 'b');
    await startController(b);
    expect(await settledActive('gated')).toBe('b');
    // a, backing off after its failed promotions (retryBackoffMs 1000, doubling), finds the lock
    // held by b and watches it: b stays the only active meanwhile. What this waits out: a's first
    // backoff (1000 ms) then a race at once (raceDelayMs 200 × rank 0), and b's demotion were its
    // service failing (3 failed default TCP checks × 200 ms, 1000 ms timeout each): 2000 ms.
    await holdsFor('b stays the only active of gated', 2000, async () => JSON.stringify(await actives('gated')) === JSON.stringify(['b']));
    const lines = hookLines('gated');
    expect(lines.filter((l) => l.hook === 'toActive' && l.instance === 'a')).toEqual([]);
    const bUp = lines.filter((l) => l.hook === 'toActive' && l.instance === 'b');
    expect(bUp).toHaveLength(1);
    expect(bUp[0].role).toBe('active');
    expect(bUp[0].token).toMatch(/^\d+$/);
    // b's own pre-promote hook ran before its toActive.
    const bPre = lines.findIndex((l) => l.hook === 'preActive' && l.instance === 'b');
    expect(bPre).toBeGreaterThanOrEqual(0);
    expect(bPre).toBeLessThan(lines.findIndex((l) => l.hook === 'toActive' && l.instance === 'b'));
    const sa = (await get(a, '/v1/status')).json;
    expect(sa.active).toBe(false);
    expect(String(sa.lastFailure)).toMatch(/pre-promote hook.*exit 4/);
  }, 90_000);

  it('admin API auth: write endpoints need the bearer token; status does not; the CLI uses the token file', async () => {
    const a = inst('admin', 'a');
    const b = inst('admin', 'b');
    await settledActive('admin');

    const none = await post(a, '/v1/pause');
    expect(none.status).toBe(401);
    expect(String(none.json.error)).toMatch(/missing bearer token/);
    const wrong = await post(a, '/v1/pause', { authorization: 'Bearer wrong' });
    expect(wrong.status).toBe(401);
    expect(String(wrong.json.error)).toMatch(/wrong bearer token/);
    const notBearer = await post(a, '/v1/pause', { authorization: `Basic ${TOKEN}` });
    expect(notBearer.status).toBe(401);
    // None of these paused it.
    const st0 = await get(a, '/v1/status');
    expect(st0.status).toBe(200);
    expect(st0.json.paused).toBe(false);

    // Maintenance is kept in the quorum: asked of one controller, every controller follows it.
    const ok = await post(a, '/v1/pause', { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.json.paused).toBe(true);
    expect((await get(a, '/v1/status')).json.paused).toBe(true);
    await waitFor('b to follow the maintenance', async () => ((await get(b, '/v1/status')).json.paused === true ? true : undefined), 5000);
    const resumed = await post(a, '/v1/resume', { authorization: `Bearer ${TOKEN}` });
    expect(resumed.status).toBe(200);
    expect((await get(a, '/v1/status')).json.paused).toBe(false);
    await waitFor('b to follow the resume', async () => ((await get(b, '/v1/status')).json.paused === false ? true : undefined), 5000);

    const p = await cli(['pause', '--config', cfgPath, '--service', 'admin', '--reason', 'kernel upgrade', '--for', '1h']);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^maintenance recorded in the quorum through a$/m);
    expect(p.stdout).toMatch(/^a: paused by \S+@\S+ since \S+, until \S+: kernel upgrade$/m);
    expect(p.stdout).toMatch(/^b: paused by \S+@\S+ since \S+, until \S+: kernel upgrade$/m);
    const st = (await get(b, '/v1/status')).json;
    expect(st.paused).toBe(true);
    expect(st.maintenance).toMatchObject({ reason: 'kernel upgrade', inForce: true });
    expect(Date.parse(String((st.maintenance as { until: string }).until)) - Date.now()).toBeGreaterThan(3_500_000);
    const r = await cli(['resume', '--config', cfgPath, '--service', 'admin']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^a: not paused$/m);
    expect(r.stdout).toMatch(/^b: not paused$/m);
    expect((await get(a, '/v1/status')).json.paused).toBe(false);
    expect((await get(b, '/v1/status')).json.paused).toBe(false);
    // A bad request is refused with the reason, and pauses nothing.
    const bad = await cli(['pause', '--config', cfgPath, '--service', 'admin', '--until', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--until: "yesterday" is not a time/);

    // The history kept in the quorum shows the maintenance, from either controller.
    const h = await cli(['history', '--config', cfgPath, '--service', 'admin', '--json']);
    expect(h.code, h.stderr).toBe(0);
    const types = (JSON.parse(h.stdout) as { entries: { type: string; instance: string }[] }).entries.map((e) => `${e.instance}:${e.type}`);
    expect(types).toEqual(expect.arrayContaining(['a:paused', 'b:paused', 'a:resumed', 'b:resumed']));

    // Without the token file the CLI is refused (401) and says so: exit 1.
    const noTok = path.join(dir, 'no-token.yaml');
    const c = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as { controller: Record<string, unknown> };
    delete c.controller.adminTokenFile;
    fs.writeFileSync(noTok, JSON.stringify(c));
    const refused = await cli(['pause', '--config', noTok, '--service', 'admin']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/a: 401 missing bearer token/);
    expect((await get(a, '/v1/status')).json.paused).toBe(false);
  }, 90_000);

  it('/standby is 200 on a healthy standby and 503 on the active; /active the reverse; /health 200 on both', async () => {
    const act = await settledActive('lb');
    const sb = IDS.find((x) => x !== act)!;
    const A = inst('lb', act);
    const S = inst('lb', sb);
    // The standby is watching the lock once it has read it.
    await waitFor('the standby to answer /standby 200', async () => ((await get(S, '/standby')).status === 200 ? true : undefined), 10_000);
    const sStandby = await get(S, '/standby');
    expect(sStandby.status).toBe(200);
    expect(sStandby.json).toMatchObject({ standby: true, health: 'healthy' });
    const aStandby = await get(A, '/standby');
    expect(aStandby.status).toBe(503);
    expect(aStandby.json.standby).toBe(false);
    expect((await get(A, '/active')).status).toBe(200);
    expect((await get(S, '/active')).status).toBe(503);
    for (const i of [A, S]) {
      const h = await get(i, '/health');
      expect(h.status).toBe(200);
      expect(h.json).toMatchObject({ controller: 'running', health: 'healthy' });
    }
    expect((await get(A, '/nope')).status).toBe(404);

    // An unhealthy standby is no standby for a load balancer; /health still says the controller runs.
    await killListener(S);
    await waitFor('the dead standby to answer /standby 503', async () => ((await get(S, '/standby')).status === 503 ? true : undefined), 10_000);
    const dead = await get(S, '/standby');
    expect(dead.json.standby).toBe(false);
    expect(dead.json.health).toMatch(/unhealthy|not-responding/);
    const h = await get(S, '/health');
    expect(h.status).toBe(200);
    expect(h.json.controller).toBe('running');
    expect(h.json.health).toMatch(/unhealthy|not-responding/);
    expect(await actives('lb')).toEqual([act]);
  }, 60_000);
});
