// The Redis recipe (examples/redis) as real processes on 127.0.0.1, for its
// test and its benchmark: one standalone quorum server (tick 100 ms), N
// redis-server processes started with the recipe's redis.conf (each with its
// own directory, no persistence), an agent and a controller beside each, and
// Debian's haproxy running conf/haproxy.cfg rendered with these ports. Every
// process is started in its own process group and stopped by its PID. Plus
// what both measure with: a write load through HAProxy, a watch on how many
// Redis servers are primaries at once, and a read-back of acknowledged writes.
// Works from the sources (vitest) and compiled (dist/test/helpers, the bench).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, waitForPort } from '../../src/io/ports.js';
import { RedisConnection, RedisReplyError, readReplication, redisCall, type ReplicationView } from '../../examples/redis/resp.js';

/** Two levels up from test/helpers/, or three when compiled into dist/test/helpers/: the first holding a package.json. */
const REPO_ROOT = ((here: string) => {
  const up2 = path.resolve(here, '..', '..');
  return fs.existsSync(path.join(up2, 'package.json')) ? up2 : path.resolve(up2, '..');
})(path.dirname(fileURLToPath(import.meta.url)));

export const RECIPE_DIR = path.join(REPO_ROOT, 'examples', 'redis');
export const HAPROXY_CFG = path.join(REPO_ROOT, 'conf', 'haproxy.cfg');
const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const AGENT = path.join(REPO_ROOT, 'dist', 'examples', 'redis', 'redis-agent.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bounds of the harness's own loops. */
const LIMITS = {
  start_ms: 20_000,
  stop_ms: 5000,
  log_chars_max: 400_000,
  role_samples_max: 20_000,
  /** Bytes of values asked for in one MGET when reading acknowledged writes back. */
  read_back_bytes: 4 * 1024 * 1024,
} as const;

// ---------------------------------------------------------------- processes

export interface Proc {
  readonly name: string;
  readonly pid: number;
  alive(): boolean;
  logs(): string;
  /** SIGTERM, then SIGKILL of its group; only while it runs (a reaped PID may be someone else's). */
  stop(): Promise<void>;
  /** SIGKILL of its group, and its exit awaited. */
  kill9(): Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

const running = new Set<Proc>();

/** `readyPort`: the process counts as started once this port accepts connections. */
export async function startProc(name: string, cmd: string, args: string[], readyPort: number, env: Record<string, string> = {}): Promise<Proc> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env } });
  let text = '';
  const keep = (d: Buffer) => { text += d.toString(); if (text.length > LIMITS.log_chars_max) text = text.slice(-LIMITS.log_chars_max / 2); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((r) => { if (gone()) r(); else child.once('exit', () => r()); });
  const waitExit = (ms: number) => Promise.race([exited, sleep(ms)]);
  const spawned: { error: Error | null } = { error: null };
  child.once('error', (e) => { spawned.error = e; });
  const p: Proc = {
    name,
    get pid() { return child.pid ?? -1; },
    alive: () => !gone() && spawned.error === null,
    logs: () => text,
    async stop() {
      if (!gone() && child.pid !== undefined) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        await waitExit(LIMITS.stop_ms);
        if (!gone()) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } await waitExit(LIMITS.stop_ms); }
      }
      running.delete(p);
    },
    async kill9() {
      if (!gone() && child.pid !== undefined) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } await waitExit(LIMITS.stop_ms); }
      running.delete(p);
    },
    signal(sig) { if (!gone() && child.pid !== undefined) process.kill(child.pid, sig); },
  };
  running.add(p);
  try {
    await waitForPort(readyPort, LIMITS.start_ms, '127.0.0.1', () => gone() || spawned.error !== null);
  } catch (e) {
    await sleep(100);
    await p.stop();
    throw new Error(`${name} did not start (${[cmd, ...args].join(' ')}): ${spawned.error?.message ?? (e as Error).message}\n${text.slice(-3000)}`);
  }
  return p;
}

/** Every process this harness started and that still runs (for an exit handler). */
export function killAllSync(): void {
  for (const p of running) { try { if (p.alive()) process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
  running.clear();
}

// ---------------------------------------------------------------- haproxy.cfg

export interface HaproxyServer { id: string; host: string; port: number; adminPort: number }

/**
 * conf/haproxy.cfg with the test's ports: each `bind` of the `primary` and `standbys` listeners
 * and each listener's `server` lines (the shipped ones are replaced by `servers`); every other
 * line as shipped. A server line not of the documented form fails loudly: the file's comments
 * promise that form.
 */
export function renderHaproxyCfg(text: string, o: { primaryPort: number; standbyPort: number; servers: HaproxyServer[] }): string {
  const out: string[] = [];
  let section = '';
  const seen = { primary: { bind: 0, server: 0 }, standbys: { bind: 0, server: 0 } };
  for (const line of text.split('\n')) {
    const head = /^(\S+)\s*(\S*)/.exec(line);
    if (head !== null && line[0] !== '#') section = head[1] === 'listen' ? head[2] : head[1];
    const s = section === 'primary' || section === 'standbys' ? seen[section] : null;
    if (s !== null && /^\s+bind\s/.test(line)) {
      s.bind++;
      out.push(`    bind 127.0.0.1:${section === 'primary' ? o.primaryPort : o.standbyPort}`);
      continue;
    }
    if (/^\s+server\s/.test(line)) {
      if (s === null) throw new Error(`haproxy.cfg: a server line outside the primary and standbys listeners: ${line.trim()}`);
      if (!/^\s+server\s+\S+\s+\S+:\d+\s+check\s+port\s+\d+\s*$/.test(line)) throw new Error(`haproxy.cfg: the server line "${line.trim()}" is not "server <id> <host>:<port> check port <adminPort>"`);
      if (s.server++ === 0) for (const v of o.servers) out.push(`    server ${v.id} ${v.host}:${v.port} check port ${v.adminPort}`);
      continue;
    }
    out.push(line);
  }
  for (const [name, c] of Object.entries(seen)) {
    if (c.bind !== 1 || c.server === 0) throw new Error(`haproxy.cfg: listener ${name} must have one bind line and server lines (found ${c.bind} and ${c.server})`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- the recipe

export interface RecipeInstance {
  id: string;
  redisPort: number;
  adminPort: number;
  agentPort: number;
  dir: string;
  redis: Proc | null;
  agent: Proc | null;
  controller: Proc | null;
}

export interface RecipeOptions {
  instances?: number;
  /** redis.conf's min-replicas-to-write (the recipe ships 1). */
  minReplicasToWrite?: number;
  /** Bytes (the agent's lag); the recipe's cluster.yaml has 1 MiB. */
  maxLagOnFailover?: number;
  sessionTimeoutMs?: number;
  /** The agents' follow interval (ms). */
  agentIntervalMs?: number;
}

export interface Recipe {
  dir: string;
  cfgPath: string;
  instances: RecipeInstance[];
  /** HAProxy's read-write and read-only listeners. */
  primaryPort: number;
  standbyPort: number;
  haproxy: Proc;
  /** What `haproxy -c` said of the rendered file. */
  haproxyCheck: { code: number | null; output: string };
  quorum: Proc;
  instance(id: string): RecipeInstance;
  /** Which instances' controllers answer /active with 200 now. */
  actives(): Promise<string[]>;
  /** Waits (bounded) until exactly one controller says active, other than `not`, and its Redis is a primary. */
  settledActive(timeoutMs: number, not?: string): Promise<string>;
  /** INFO replication of an instance's Redis, or null when it does not answer. */
  replication(id: string, timeoutMs?: number): Promise<ReplicationView | null>;
  /** Waits (bounded) until every other running Redis replicates from `active` with its link up and no full sync running. */
  replicasFollow(active: string, timeoutMs: number): Promise<void>;
  /** A controller's GET /v1/status. */
  status(id: string): Promise<Record<string, unknown>>;
  startRedis(id: string): Promise<void>;
  killRedis(id: string): Promise<void>;
  /** SIGSTOP / SIGCONT of an instance's redis-server: a Redis (or its network) stalled. */
  pauseRedis(id: string): void;
  resumeRedis(id: string): void;
  /** CONFIG SET on every running Redis. */
  configSetAll(param: string, value: string): Promise<void>;
  startAgent(id: string, extraArgs?: string[]): Promise<void>;
  stopAgent(id: string): Promise<void>;
  killController(id: string): Promise<void>;
  startController(id: string): Promise<void>;
  /** The last lines of every process's log, for a failed test. */
  tails(lines?: number): string;
  stopAll(): Promise<void>;
}

async function httpStatus(url: string, timeoutMs: number): Promise<number | null> {
  try {
    const r = await request(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.body.dump();
    return r.statusCode;
  } catch { return null; }
}

export async function startRedisRecipe(o: RecipeOptions = {}): Promise<Recipe> {
  for (const f of [CLI, AGENT]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
  for (const tool of ['redis-server', 'redis-cli', 'haproxy', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (scripts/install-test-deps.sh installs it)`);
  }
  const n = o.instances ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-redis-'));
  const clientPort = await freePort();
  const ids = Array.from({ length: n }, (_, k) => String.fromCharCode(97 + k));
  const instances: RecipeInstance[] = [];
  for (const id of ids) {
    const d = path.join(dir, `redis-${id}`);
    fs.mkdirSync(d, { mode: 0o700 });
    instances.push({ id, redisPort: await freePort(), adminPort: await freePort(), agentPort: await freePort(), dir: d, redis: null, agent: null, controller: null });
  }
  const primaryPort = await freePort();
  const standbyPort = await freePort();
  const sh = (script: string) => path.join(RECIPE_DIR, script);
  const agentUrl = (i: RecipeInstance) => `http://127.0.0.1:${i.agentPort}`;
  const cfgPath = path.join(dir, 'cluster.yaml');
  fs.writeFileSync(cfgPath, [
    'cluster: redis-recipe-test',
    'quorum:',
    '  tickMs: 100',
    // ZooKeeper's rule would cap sessions at 20 ticks (2 s): too short for the controller's lease check.
    '  session: { maxTimeoutMs: 60000 }',
    `  dataDir: ${dir}/quorum-{id}`,
    `  clientPort: ${clientPort}`,
    '  clientHost: 127.0.0.1',
    'controller:',
    `  sessionTimeoutMs: ${o.sessionTimeoutMs ?? 3000}`,
    '  allowLoopbackWithoutToken: true',
    'services:',
    '  - name: redis',
    `    fencing: [graceful, { shell: "sh ${sh('fence.sh')}", timeoutMs: 3000 }]`,
    `    maxLagOnFailover: ${o.maxLagOnFailover ?? 1048576}`,
    '    raceDelayMs: 200',
    '    cedeMs: 3000',
    // The benchmark fails over many times a minute: flap damping has its own tests.
    '    promotionsPerWindow: 1000',
    '    instances:',
    ...instances.flatMap((i) => [
      `      - id: ${i.id}`,
      '        host: 127.0.0.1',
      `        adminPort: ${i.adminPort}`,
      `        servicePort: ${i.redisPort}`,
      `        health: [ { http: "${agentUrl(i)}/health", timeoutMs: 1000, lagField: lag } ]`,
      '        hooks:',
      `          toActive: { command: "sh ${sh('to-active.sh')} 127.0.0.1 ${i.redisPort} ${agentUrl(i)}", timeoutMs: 5000 }`,
      `          toStandby: { command: "sh ${sh('to-standby.sh')} 127.0.0.1 ${i.redisPort} ${agentUrl(i)}", timeoutMs: 5000 }`,
      `          role: { http: "${agentUrl(i)}/role", timeoutMs: 1000 }`,
    ]),
  ].join('\n') + '\n');

  const haproxyCfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(haproxyCfg, renderHaproxyCfg(fs.readFileSync(HAPROXY_CFG, 'utf8'), {
    primaryPort, standbyPort, servers: instances.map((i) => ({ id: i.id, host: '127.0.0.1', port: i.redisPort, adminPort: i.adminPort })),
  }));
  const check = spawnSync('haproxy', ['-c', '-f', haproxyCfg], { encoding: 'utf8', timeout: 10_000 });
  const haproxyCheck = { code: check.status, output: `${check.stdout ?? ''}${check.stderr ?? ''}` };

  const inst = (id: string) => {
    const i = instances.find((x) => x.id === id);
    if (i === undefined) throw new Error(`no instance ${id}`);
    return i;
  };
  const env = { QUORATE_LOG_LEVEL: 'info' };
  const startRedis = async (id: string) => {
    const i = inst(id);
    i.redis = await startProc(`redis-${id}`, 'redis-server', [
      path.join(RECIPE_DIR, 'redis.conf'), '--port', String(i.redisPort), '--bind', '127.0.0.1', '--dir', i.dir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '', '--loglevel', 'notice',
      '--min-replicas-to-write', String(o.minReplicasToWrite ?? 1),
    ], i.redisPort);
  };
  const startAgent = async (id: string, extra: string[] = []) => {
    const i = inst(id);
    i.agent = await startProc(`agent-${id}`, process.execPath, [AGENT, '--config', cfgPath, '--service', 'redis', '--id', id,
      '--listen', `127.0.0.1:${i.agentPort}`, '--interval-ms', String(o.agentIntervalMs ?? 200), ...extra], i.agentPort);
  };

  const startController = async (id: string) => {
    const i = inst(id);
    i.controller = await startProc(`controller-${id}`, process.execPath, [CLI, 'controller', '--config', cfgPath, '--service', 'redis', '--id', id], i.adminPort, env);
  };

  let quorum: Proc | null = null;
  let haproxy: Proc | null = null;
  try {
    quorum = await startProc('quorum', process.execPath, [CLI, 'quorum', '--config', cfgPath, '--id', '1'], clientPort, env);
    for (const i of instances) await startRedis(i.id);
    for (const i of instances) await startAgent(i.id);
    for (const i of instances) await startController(i.id);
    haproxy = await startProc('haproxy', 'haproxy', ['-db', '-f', haproxyCfg], primaryPort);
  } catch (e) {
    killAllSync();
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const actives = async () => {
    const r = await Promise.all(instances.map(async (i) => (await httpStatus(`http://127.0.0.1:${i.adminPort}/active`, 1000)) === 200 ? i.id : null));
    return r.filter((x): x is string => x !== null);
  };
  const replication = async (id: string, timeoutMs = 500) => {
    const i = inst(id);
    if (i.redis === null || !i.redis.alive()) return null;
    try { return await readReplication('127.0.0.1', i.redisPort, timeoutMs); } catch { return null; }
  };
  const allProcs = () => [quorum!, haproxy!, ...instances.flatMap((i) => [i.redis, i.agent, i.controller])].filter((p): p is Proc => p !== null);

  return {
    dir, cfgPath, instances, primaryPort, standbyPort, haproxy, haproxyCheck, quorum,
    instance: inst,
    actives,
    replication,
    async settledActive(timeoutMs, not) {
      const end = performance.now() + timeoutMs;
      let last: string[] = [];
      while (performance.now() < end) {
        last = await actives();
        if (last.length === 1 && last[0] !== not && (await replication(last[0]))?.role === 'master') return last[0];
        await sleep(20);
      }
      throw new Error(`no single active instance${not ? ` other than ${not}` : ''} with a primary Redis within ${timeoutMs} ms (controllers saying active: ${last.join(', ') || 'none'})`);
    },
    async replicasFollow(active, timeoutMs) {
      const a = inst(active);
      const end = performance.now() + timeoutMs;
      let problem = '';
      while (performance.now() < end) {
        const others = instances.filter((i) => i.id !== active && i.redis !== null && i.redis.alive());
        const views = await Promise.all(others.map(async (i) => ({ i, v: await replication(i.id) })));
        const bad = views.find(({ v }) => v === null || v.role !== 'slave' || v.master?.port !== a.redisPort || !v.master.linkUp || v.syncing || v.loading);
        if (bad === undefined) return;
        problem = `${bad.i.id}: ${bad.v === null ? 'no answer' : JSON.stringify(bad.v)}`;
        await sleep(50);
      }
      throw new Error(`the replicas do not all follow ${active} within ${timeoutMs} ms (${problem})`);
    },
    async status(id) {
      const r = await request(`http://127.0.0.1:${inst(id).adminPort}/v1/status`, { signal: AbortSignal.timeout(2000) });
      return (await r.body.json()) as Record<string, unknown>;
    },
    startRedis,
    async killRedis(id) { const i = inst(id); await i.redis?.kill9(); i.redis = null; },
    pauseRedis(id) { inst(id).redis?.signal('SIGSTOP'); },
    resumeRedis(id) { inst(id).redis?.signal('SIGCONT'); },
    async configSetAll(param, value) {
      for (const i of instances) {
        if (i.redis === null || !i.redis.alive()) continue;
        const a = await redisCall('127.0.0.1', i.redisPort, ['CONFIG', 'SET', param, value], 2000);
        if (a !== 'OK') throw new Error(`CONFIG SET ${param} ${value} on ${i.id} answered ${JSON.stringify(a)}`);
      }
    },
    startAgent,
    async stopAgent(id) { const i = inst(id); await i.agent?.stop(); i.agent = null; },
    async killController(id) { const i = inst(id); await i.controller?.kill9(); i.controller = null; },
    startController,
    tails(lines = 25) {
      return allProcs().map((p) => `--- ${p.name} (pid ${p.pid}${p.alive() ? '' : ', exited'}):\n${p.logs().split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n')}`).join('\n');
    },
    async stopAll() {
      // Controllers first: nothing is promoted or demoted while the rest goes.
      for (const i of instances) await i.controller?.stop();
      await haproxy!.stop();
      for (const i of instances) { await i.agent?.stop(); await i.redis?.stop(); }
      await quorum!.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- measuring

/** Which instance a connection through HAProxy landed on: its Redis's tcp_port. */
export async function landedOn(port: number, timeoutMs = 1000): Promise<{ tcpPort: number; role: string }> {
  const c = await RedisConnection.connect('127.0.0.1', port, timeoutMs);
  try {
    const info = await c.call(['INFO', 'server', 'replication'], timeoutMs);
    if (typeof info !== 'string') throw new Error(`INFO answered ${JSON.stringify(info)}`);
    const tcpPort = Number(/^tcp_port:(\d+)/m.exec(info)?.[1]);
    const role = /^role:(\w+)/m.exec(info)?.[1] ?? '';
    return { tcpPort, role };
  } finally { c.close(); }
}

export interface WriteLoad {
  /** key -> value of every write acknowledged (OK, and WAIT's count when asked for). */
  readonly acked: Map<string, string>;
  /** Send time of each acknowledged write, and when it was acknowledged (performance.now()). */
  readonly ackTimes: { sentAt: number; ackedAt: number }[];
  /** Error replies and connection failures seen, by kind. */
  readonly errors: Map<string, number>;
  /** Writes sent (acknowledged or not). */
  sent(): number;
  /** Bytes of values acknowledged so far. */
  ackedBytes(): number;
  /** The first acknowledgement of a write sent at or after `t` (performance.now()), or null. */
  firstAckSentAfter(t: number): number | null;
  /** Acknowledged writes sent at or after `t`. */
  ackedSentAfter(t: number): number;
  stop(): Promise<void>;
}

/**
 * `connections` clients, each writing one unique key at a time through `port` (SET, then WAIT
 * `wait.replicas` `wait.timeoutMs` when given) and reconnecting after any failure, as a client
 * behind HAProxy should. A write counts as acknowledged only when SET answered OK and WAIT (when
 * asked for) counted enough replicas.
 */
export function startWriteLoad(o: { port: number; connections: number; prefix: string; wait: { replicas: number; timeoutMs: number } | null; valueBytes?: number; pauseAfterErrorMs?: number }): WriteLoad {
  const acked = new Map<string, string>();
  const ackTimes: { sentAt: number; ackedAt: number }[] = [];
  const errors = new Map<string, number>();
  let sent = 0;
  let bytes = 0;
  let stopped = false;
  const count = (k: string) => errors.set(k, (errors.get(k) ?? 0) + 1);
  const pause = o.pauseAfterErrorMs ?? 10;
  const pad = 'x'.repeat(Math.max(0, (o.valueBytes ?? 0)));
  const worker = async (w: number) => {
    let c: RedisConnection | null = null;
    for (let n = 0; !stopped; n++) {
      try {
        if (c === null || !c.open) c = await RedisConnection.connect('127.0.0.1', o.port, 1000);
        const key = `${o.prefix}:${w}:${n}`;
        const value = `v${n}${pad}`;
        const sentAt = performance.now();
        sent++;
        const set = c.send(['SET', key, value], 2000);
        const wait = o.wait === null ? null : c.send(['WAIT', o.wait.replicas, o.wait.timeoutMs], o.wait.timeoutMs + 2000);
        const [sv, wv] = await Promise.all([set, wait]);
        if (sv instanceof RedisReplyError) throw sv;
        if (wv instanceof RedisReplyError) throw wv;
        if (sv !== 'OK') { count(`SET answered ${JSON.stringify(sv)}`); continue; }
        if (o.wait !== null && !(typeof wv === 'number' && wv >= o.wait.replicas)) { count('WAIT short'); continue; }
        acked.set(key, value);
        bytes += value.length;
        ackTimes.push({ sentAt, ackedAt: performance.now() });
      } catch (e) {
        count(e instanceof RedisReplyError ? e.code : (e as { code?: string }).code ?? (e as Error).message);
        // A primary that became read-only keeps this connection through HAProxy until it is marked
        // down: a fresh connection goes where HAProxy sends new ones now.
        c?.close();
        c = null;
        await sleep(pause);
      }
    }
    c?.close();
  };
  const workers = Array.from({ length: o.connections }, (_, w) => worker(w));
  return {
    acked, ackTimes, errors,
    sent: () => sent,
    ackedBytes: () => bytes,
    firstAckSentAfter(t) {
      let best: number | null = null;
      for (const a of ackTimes) if (a.sentAt >= t && (best === null || a.ackedAt < best)) best = a.ackedAt;
      return best;
    },
    ackedSentAfter(t) { return ackTimes.filter((a) => a.sentAt >= t).length; },
    async stop() { stopped = true; await Promise.all(workers); },
  };
}

/** The acknowledged writes that `port`'s Redis does not hold with their value. */
export async function lostWrites(port: number, acked: Map<string, string>): Promise<string[]> {
  const c = await RedisConnection.connect('127.0.0.1', port, 2000);
  const lost: string[] = [];
  try {
    const keys = [...acked.keys()];
    for (let k = 0; k < keys.length;) {
      const batch: string[] = [];
      let bytes = 0;
      while (k < keys.length && (batch.length === 0 || bytes < LIMITS.read_back_bytes)) { bytes += acked.get(keys[k])!.length; batch.push(keys[k++]); }
      const got = await c.call(['MGET', ...batch], 10_000);
      if (!Array.isArray(got) || got.length !== batch.length) throw new Error(`MGET answered ${JSON.stringify(got)?.slice(0, 100)}`);
      batch.forEach((key, j) => { if (got[j] !== acked.get(key)) lost.push(key); });
    }
  } finally { c.close(); }
  return lost;
}

export interface RoleWatch {
  /** Stops sampling; the most primaries seen at once and when. */
  stop(): Promise<{ samples: number; maxPrimaries: number; overlaps: { at: number; primaries: string[] }[] }>;
}

/** Samples the role of every running Redis every `everyMs` (bounded in samples): more than one primary at once is split brain. */
export function watchPrimaries(r: Recipe, everyMs = 50): RoleWatch {
  let stopped = false;
  let samples = 0;
  let maxPrimaries = 0;
  const overlaps: { at: number; primaries: string[] }[] = [];
  const loop = (async () => {
    while (!stopped && samples < LIMITS.role_samples_max) {
      const views = await Promise.all(r.instances.map(async (i) => ({ id: i.id, v: await r.replication(i.id, 300) })));
      const primaries = views.filter((x) => x.v?.role === 'master').map((x) => x.id);
      samples++;
      maxPrimaries = Math.max(maxPrimaries, primaries.length);
      if (primaries.length > 1) overlaps.push({ at: performance.now(), primaries });
      await sleep(everyMs);
    }
  })();
  let result: Awaited<ReturnType<RoleWatch['stop']>> | null = null;
  return { async stop() { stopped = true; await loop; result ??= { samples, maxPrimaries, overlaps }; return result; } };
}

/** Polls `f` until it returns a value (not undefined); throws with `what` after `ms`. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = performance.now() + ms;
  for (let polls = 0; ; polls++) {
    const v = await f();
    if (v !== undefined) return v;
    if (performance.now() > end || polls > 100_000) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface RoundOptions {
  /** WAIT after every write (acknowledged only when this many replicas have it), or null: plain asynchronous writes. */
  wait: { replicas: number; timeoutMs: number } | null;
  /** min-replicas-to-write set on every Redis for the round. */
  minReplicasToWrite: number;
  /**
   * Stall the replicas (SIGSTOP of their redis-server, as a slow network or a busy host would) for
   * the end of the round, until `stall.bytes` of values are acknowledged or `stall.maxMs` passed;
   * the primary is killed before they resume. Without it the replicas keep up as loopback allows.
   */
  stall: { bytes: number; maxMs: number } | null;
  valueBytes: number;
  connections: number;
  /** Acknowledged writes before the kill (or before the stall). */
  ackedBefore: number;
  /** Acknowledged writes sent after the kill, before the round ends. */
  ackedAfter: number;
  prefix: string;
}

export interface RoundResult {
  old: string;
  next: string;
  /** From kill -9 to the first acknowledgement of a write sent after it, through HAProxy. */
  failoverMs: number;
  /** From kill -9 until the new active's controller said so. */
  activeMs: number;
  acked: number;
  ackedBytesInStall: number;
  lost: string[];
  sent: number;
  errors: Record<string, number>;
  /** The restarted old primary as soon as its port opened (before its agent could act), and once it caught up. */
  restarted: ReplicationView | null;
  rejoined: ReplicationView | null;
}

/**
 * One failover under writes through HAProxy: the recipe settled (one active, every replica
 * following it, HAProxy sending new connections to it, every controller healthy), a write load,
 * kill -9 of the primary's redis-server, until a write sent after the kill is acknowledged; then
 * the killed Redis started again until it follows the new primary and its controller is a
 * healthy standby; the acknowledged writes read back from the new primary. Every wait bounded.
 */
export async function failoverRound(r: Recipe, o: RoundOptions): Promise<RoundResult> {
  const old = await r.settledActive(30_000);
  await r.replicasFollow(old, 20_000);
  const oldI = r.instance(old);
  await waitFor('HAProxy to send new connections to the active only', async () => {
    const seen = await Promise.all(Array.from({ length: 4 }, () => landedOn(r.primaryPort).catch(() => null)));
    return seen.every((x) => x?.tcpPort === oldI.redisPort && x.role === 'master') ? true : undefined;
  }, 10_000);
  await waitFor('every controller healthy', async () => {
    const st = await Promise.all(r.instances.map((i) => r.status(i.id).catch(() => null)));
    return st.every((x) => x?.health === 'healthy' && x.lag === 0) ? true : undefined;
  }, 20_000);
  await r.configSetAll('min-replicas-to-write', String(o.minReplicasToWrite));
  const load = startWriteLoad({ port: r.primaryPort, connections: o.connections, prefix: o.prefix, wait: o.wait, valueBytes: o.valueBytes });
  const replicas = r.instances.filter((i) => i.id !== old).map((i) => i.id);
  let stalled = false;
  try {
    await waitFor(`${o.ackedBefore} acknowledged writes`, async () => (load.acked.size >= o.ackedBefore ? true : undefined), 20_000);
    let ackedBytesInStall = 0;
    if (o.stall !== null) {
      const b0 = load.ackedBytes();
      for (const id of replicas) r.pauseRedis(id);
      stalled = true;
      const until = performance.now() + o.stall.maxMs;
      while (performance.now() < until && load.ackedBytes() - b0 < o.stall.bytes) await sleep(10);
      ackedBytesInStall = load.ackedBytes() - b0;
    }
    const killedAt = performance.now();
    await r.killRedis(old);
    if (stalled) { for (const id of replicas) r.resumeRedis(id); stalled = false; }
    const next = await r.settledActive(20_000, old);
    const activeMs = performance.now() - killedAt;
    await waitFor('a write sent after the kill acknowledged', async () => (load.firstAckSentAfter(killedAt) !== null ? true : undefined), 20_000);
    const failoverMs = load.firstAckSentAfter(killedAt)! - killedAt;
    await waitFor(`${o.ackedAfter} writes acknowledged after the kill`, async () => (load.ackedSentAfter(killedAt) >= o.ackedAfter ? true : undefined), 20_000);
    await load.stop();
    const lost = await lostWrites(r.instance(next).redisPort, load.acked);
    await r.startRedis(old);
    const restarted = await r.replication(old);
    await r.replicasFollow(next, 20_000);
    const rejoined = await r.replication(old);
    await waitFor(`${old}'s controller to be a healthy standby`, async () => {
      const st = await r.status(old).catch(() => null);
      return st?.health === 'healthy' && (st.phase === 'watching' || st.phase === 'standby') ? true : undefined;
    }, 20_000);
    return { old, next, failoverMs, activeMs, acked: load.acked.size, ackedBytesInStall, lost, sent: load.sent(), errors: Object.fromEntries(load.errors), restarted, rejoined };
  } finally {
    if (stalled) for (const id of replicas) r.resumeRedis(id);
    await load.stop();
  }
}
