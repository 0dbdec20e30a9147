// `quorate demo` end to end, with real processes: it comes up with one active
// instance, serves the example key-value API, survives a kill -9 of the
// active service (the other takes over, the killed one is started again as
// standby), stops every process on SIGTERM with exit 0, and resumes on the
// same directory with its data. Bad flags exit 2; a part that cannot start
// makes it exit 1 with that part's log lines, leaving nothing running.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apacheZkAvailable, startApacheZk, type ApacheZk } from '../helpers/apache-zk.js';
import { CLI, ensureBuilt } from '../helpers/cli-process.js';
import { freePortBlockForTest, missingTool } from '../helpers/ports.js';
import { runBounded } from '../helpers/run-bounded.js';

const BLOCK_PORTS = 22;
const dirs: string[] = [];
const demos: ChildProcess[] = [];

const freeBase = () => freePortBlockForTest(BLOCK_PORTS);

function newDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-demo-test-'));
  dirs.push(d);
  return d;
}

interface Entry { kind: string; instance: string; pid: number | null; restarts: number; urls: Record<string, string> }
interface State { phase: string; pid: number; basePort: number; configFile: string; processes: Entry[] }

function readState(dir: string): State | null {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'demo.json'), 'utf8')) as State; } catch { return null; }
}
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Demo { child: ChildProcess; output(): string; exited: Promise<number | null> }

function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, [CLI, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  demos.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/** Polls `check` every 200 ms until it returns a value, at most `ms` long (and that many rounds). */
async function until<T>(what: string, ms: number, demo: Demo | null, check: () => Promise<T | null | undefined>): Promise<T> {
  const rounds = Math.ceil(ms / 200);
  for (let i = 0; i < rounds; i++) {
    if (demo !== null && demo.child.exitCode !== null) throw new Error(`the demo exited (${demo.child.exitCode}) while waiting for ${what}:\n${demo.output()}`);
    const v = await check().catch(() => null);
    if (v !== null && v !== undefined) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${demo === null ? '' : `:\n${demo.output()}`}`);
}

async function http(method: string, url: string, body?: string): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await fetch(url, { method, body, signal: AbortSignal.timeout(5000) });
  return { status: r.status, text: await r.text(), headers: r.headers };
}

const of = (s: State, kind: string) => s.processes.filter((p) => p.kind === kind);

/** The one instance whose controller's GET /active answers 200, or null while there is not exactly one. */
async function soleActive(s: State): Promise<string | null> {
  const codes = await Promise.all(of(s, 'controller').map(async (c) => ({ id: c.instance, code: (await http('GET', `${c.urls.admin}/active`).catch(() => ({ status: 0 }))).status })));
  const active = codes.filter((c) => c.code === 200);
  return active.length === 1 ? active[0].id : null;
}

async function stopAndCheck(demo: Demo, dir: string): Promise<void> {
  demo.child.kill('SIGTERM');
  const code = await Promise.race([demo.exited, sleep(90_000).then(() => 'still running')]);
  expect(code, demo.output()).toBe(0);
  const s = readState(dir)!;
  expect(s.phase).toBe('stopped');
  const left = s.processes.filter((p) => p.pid !== null && alive(p.pid));
  expect(left, 'processes still running after the demo stopped').toEqual([]);
}

afterAll(() => {
  for (const d of demos) { try { process.kill(-d.pid!, 'SIGKILL'); } catch { /* gone */ } }
  // Children run in their own process groups: kill each one demo.json names, if its command line is still ours.
  for (const dir of dirs) {
    for (const p of readState(dir)?.processes ?? []) {
      if (p.pid === null) continue;
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8'); } catch { continue; }
      if (cmd.includes(dir)) { try { process.kill(-p.pid, 'SIGKILL'); } catch { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } } }
    }
  }
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('quorate demo', () => {
  it('fails over on kill -9 of the active service, starts it again as standby, stops on SIGTERM, resumes with its data', async () => {
    ensureBuilt();
    const dir = newDir();
    const base = await freeBase();
    let demo = startDemo(['--dir', dir, '--base-port', String(base)]);
    let s = await until('demo.json in phase running', 150_000, demo, async () => { const x = readState(dir); return x?.phase === 'running' ? x : null; });
    expect(s.basePort).toBe(base);
    expect(of(s, 'quorum').map((p) => p.instance)).toEqual(['1', '2', '3']);
    expect(of(s, 'journal')).toHaveLength(3);
    expect(of(s, 'service').map((p) => p.instance)).toEqual(['a', 'b']);
    expect(of(s, 'controller').map((p) => p.instance)).toEqual(['a', 'b']);
    expect(s.processes.every((p) => p.pid !== null && alive(p.pid))).toBe(true);

    const first = await until('exactly one active', 30_000, demo, () => soleActive(s));
    const svc = (id: string) => of(s, 'service').find((p) => p.instance === id)!;
    const put = await http('PUT', `${svc(first).urls.service}/kv/colour`, 'blue');
    expect(put.status, put.text).toBe(200);
    expect(JSON.parse(put.text)).toHaveProperty('txid');
    expect((await http('GET', `${svc(first).urls.service}/kv/colour`)).text).toBe('blue');

    // kill -9 of the active service: the other instance takes over and still has the key.
    const killedPid = svc(first).pid!;
    process.kill(killedPid, 'SIGKILL');
    const second = await until('the other instance active', 60_000, demo, async () => { const a = await soleActive(s); return a !== null && a !== first ? a : null; });
    expect((await http('GET', `${svc(second).urls.service}/kv/colour`)).text).toBe('blue');
    const put2 = await http('PUT', `${svc(second).urls.service}/kv/shape`, 'round');
    expect(put2.status, put2.text).toBe(200);

    // The demo starts the killed instance again under a new pid; it answers and stays standby.
    s = await until('a new pid for the killed service', 60_000, demo, async () => { const x = readState(dir)!; const p = of(x, 'service').find((e) => e.instance === first)!; return p.pid !== killedPid && p.pid !== null ? x : null; });
    expect(of(s, 'service').find((e) => e.instance === first)!.restarts).toBe(1);
    const health = await until('the restarted instance healthy', 60_000, demo, async () => { const h = await http('GET', `${svc(first).urls.service}/health`); return h.status === 200 ? JSON.parse(h.text) as { role: string } : null; });
    expect(health.role).toBe('standby');
    expect(await soleActive(s)).toBe(second);
    expect(demo.output()).toMatch(new RegExp(`service ${first} \\(pid ${killedPid}\\) was killed by SIGKILL; starting it again`));
    await stopAndCheck(demo, dir);

    // A second start on the directory: the ports it recorded, the data it kept.
    demo = startDemo(['--dir', dir]);
    s = await until('the resumed demo running', 150_000, demo, async () => { const x = readState(dir); return x?.phase === 'running' && x.pid === demo.child.pid ? x : null; });
    expect(s.basePort).toBe(base);
    const again = await until('exactly one active after the resume', 30_000, demo, () => soleActive(s));
    expect((await http('GET', `${svc(again).urls.service}/kv/colour`)).text).toBe('blue');
    expect((await http('GET', `${svc(again).urls.service}/kv/shape`)).text).toBe('round');
    expect(demo.output()).toContain(`resuming the Quorate demo in ${dir}`);
    // One demo per directory.
    const rival = await runBounded(process.execPath, [CLI, 'demo', '--dir', dir], 30_000);
    expect(rival.code).toBe(1);
    expect(rival.stderr).toContain(`a demo already runs on ${dir} (pid ${demo.child.pid})`);

    // A demo killed with -9 cannot stop its children; the next start on the directory does, then runs as before.
    const orphans = readState(dir)!.processes.map((p) => p.pid!);
    process.kill(demo.child.pid!, 'SIGKILL');
    await demo.exited;
    expect(orphans.filter(alive)).toHaveLength(orphans.length);
    demo = startDemo(['--dir', dir]);
    s = await until('the demo running after its predecessor was killed', 150_000, demo, async () => { const x = readState(dir); return x?.phase === 'running' && x.pid === demo.child.pid ? x : null; });
    expect(demo.output()).toContain(`stopped what an earlier demo on ${dir} left running: quorum 1 (pid ${orphans[0]})`);
    expect(orphans.filter(alive)).toEqual([]);
    const third = await until('exactly one active after the restart', 30_000, demo, () => soleActive(s));
    expect((await http('GET', `${svc(third).urls.service}/kv/colour`)).text).toBe('blue');
    await stopAndCheck(demo, dir);
  }, 600_000);

  it.skipIf(missingTool(apacheZkAvailable()))('--zookeeper: elects through an existing Apache ZooKeeper, no quorum servers; --instances 3', async () => {
    ensureBuilt();
    const dir = newDir();
    let zk: ApacheZk | null = null;
    try {
      zk = await startApacheZk({ heapMb: 256 });
      const demo = startDemo(['--dir', dir, '--base-port', String(await freeBase()), '--zookeeper', zk.connectString, '--instances', '3']);
      const s = await until('demo.json in phase running', 150_000, demo, async () => { const x = readState(dir); return x?.phase === 'running' ? x : null; });
      expect(of(s, 'quorum')).toEqual([]);
      expect(of(s, 'service').map((p) => p.instance)).toEqual(['a', 'b', 'c']);
      expect((s as State & { connectString: string }).connectString).toBe(zk.connectString);
      const active = await until('exactly one active', 30_000, demo, () => soleActive(s));
      const url = of(s, 'service').find((p) => p.instance === active)!.urls.service;
      expect((await http('PUT', `${url}/kv/k`, 'v')).status).toBe(200);
      await stopAndCheck(demo, dir);
    } finally {
      await zk?.stop();
    }
  }, 300_000);

  it('a part that cannot start: exit 1 with its log lines, and nothing left running', async () => {
    ensureBuilt();
    const dir = newDir();
    const base = await freeBase();
    // A previous demo's record whose journal node 1 cannot have its data directory (a file is in the way).
    fs.writeFileSync(path.join(dir, 'demo.json'), JSON.stringify({ pid: 1, phase: 'stopped', basePort: base, instances: 2, zookeeper: null, processes: [] }));
    fs.writeFileSync(path.join(dir, 'journal-1'), 'not a directory\n');
    const demo = startDemo(['--dir', dir]);
    const code = await Promise.race([demo.exited, sleep(150_000).then(() => 'still running')]);
    expect(code, demo.output()).toBe(1);
    expect(demo.output()).toMatch(/quorate demo: journal node 1 \(pid \d+\) exited with code \d+ before the demo was up/);
    expect(demo.output()).toContain(`last lines of ${path.join(dir, 'logs', 'journal-1.log')}:`);
    const s = readState(dir)!;
    expect(s.phase).toBe('failed');
    expect(s.processes.filter((p) => p.pid !== null && alive(p.pid))).toEqual([]);
  }, 200_000);

  it('refuses bad flags with exit 2 and says what was wrong', async () => {
    ensureBuilt();
    const instances = await runBounded(process.execPath, [CLI, 'demo', '--instances', '9'], 20_000);
    expect(instances.code).toBe(2);
    expect(instances.stderr).toMatch(/--instances.*expected 2\.\.5 instances of the example service, got "9"/);
    const port = await runBounded(process.execPath, [CLI, 'demo', '--base-port', '80'], 20_000);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/expected a base port 1024\.\.60000/);
    const zk = await runBounded(process.execPath, [CLI, 'demo', '--zookeeper', 'zk1:2181/chroot'], 20_000);
    expect(zk.code).toBe(2);
    expect(zk.stderr).toMatch(/without a chroot/);
    const foreign = newDir();
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine\n');
    const dir = await runBounded(process.execPath, [CLI, 'demo', '--dir', foreign], 20_000);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toMatch(/not empty and holds no demo\.json/);
    expect(fs.readdirSync(foreign)).toEqual(['notes.txt']);
  });
});
