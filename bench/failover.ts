// failover: a 2-instance service with the defaults (controller session 6 s,
// a TCP check of the service port every 200 ms), on our quorum (cluster-file
// defaults) with three journal nodes, the example service writing to its
// journal while active. Measured, in one run:
//   - kill -9 of the active service, --kills times: ms from the kill until the
//     other instance is active (its controller's /active) and its service
//     answers as active, and ms until a client writing to the key-value API
//     (PUT /kv/<key>, retried every few ms) has its first write acknowledged
//     by the new active; the killed one is restarted (it comes back standby);
//   - restarts of the active's controller, --controller-restarts times
//     (SIGTERM and kill -9 in turn, each restarted at once, well within the
//     session timeout): the restarted controller re-attaches to its session
//     (kept in its run directory) and resumes; counted: failovers caused (any
//     moment another instance is active, or the service's writer epoch
//     changes), and ms from the signal until it reports active again;
//   - kill -9 of the active controller, --controller-kills times: the same,
//     through the session's expiry (restarted only once the other is active);
//     reported beside the negotiated timeout;
//   - a controller's resident memory and its CPU over --idle-seconds of quiet.
// The first kill comes as soon as both instances are up (the slowest failover
// of a run, usually); --settle-seconds waits that long before it. Before each
// kill the log says how much CPU each process used in the 300 ms before it.
// To see a failover step by step: QUORATE_LOG_LEVEL=info BENCH_LOG_DIR=D keeps
// every process's log in D, and each kill's log line gives its time (epoch ms).
// Bars: service-crash failover p99 (the longest of 20) under 1.5 s; controller
// crash failover within the negotiated session timeout + 1 s; controller
// restarts cause no failover.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { freePort } from '../src/io/ports.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { procCpuMs, procMemoryMb } from './lib/proc.js';
import { OUR_CLI, killAllServers, launch, splitFlags, type BenchServer } from './lib/servers.js';
import { CONTROLLER_NODE_FLAGS } from '../src/daemon/controller-flags.js';
import { round1, round3, summarize } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'kills', full: 20, quick: 5, integer: true, help: 'kill -9 of the active service' },
  { name: 'controller-restarts', full: 6, quick: 2, integer: true, help: 'restarts of the active\'s controller (SIGTERM and kill -9 in turn), each within the session timeout' },
  { name: 'controller-kills', full: 5, quick: 2, integer: true, help: 'kill -9 of the active controller (each waits for a session expiry)' },
  { name: 'settle-seconds', full: 0, quick: 0, help: 'quiet time after the start before the first kill (the first failover after a start is the slowest)' },
  { name: 'idle-seconds', full: 10, quick: 3, help: 'quiet time over which the controllers\' CPU is measured' },
  { name: 'budget-seconds', full: 900, quick: 300, help: 'kill everything and fail past this wall time' },
];
const SWITCHES = { quick: 'short run (also BENCH_QUICK=1)', help: 'this text' };
const EXAMPLE = new URL('../examples/example-service.js', import.meta.url).pathname;

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance { id: string; adminPort: number; servicePort: number; service: BenchServer | null; controller: BenchServer | null }

/** PUT through `port`'s key-value API until one is acknowledged; ms from `since`. */
async function firstAckedWrite(port: number, key: string, since: number, ms: number): Promise<number> {
  const end = since + ms;
  for (let n = 0; performance.now() < end; n++) {
    try {
      const r = await request(`http://127.0.0.1:${port}/kv/${key}`, { method: 'PUT', body: `v${n}`, signal: AbortSignal.timeout(1000) });
      await r.body.dump();
      if (r.statusCode === 200) return performance.now() - since;
    } catch { /* not up yet */ }
    await sleep(2);
  }
  throw new Error(`no write acknowledged through port ${port} within ${ms} ms`);
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> } | null> {
  try {
    const r = await request(url, { signal: AbortSignal.timeout(500) });
    const text = await r.body.text();
    let body: Record<string, unknown> = {};
    try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
    return { status: r.statusCode, body };
  } catch { return null; }
}

/** Where a controller's memory is, from its /metrics: V8's heap spaces and the memory outside the heap, in MB. */
async function heapBreakdown(adminPort: number): Promise<Record<string, number | string> | null> {
  try {
    const r = await request(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await r.body.text();
    const mb = (name: string) => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      return m ? round1(Number(m[1]) / 1048576) : NaN;
    };
    const out: Record<string, number | string> = {
      residentMb: mb('process_resident_memory_bytes'), heapTotalMb: mb('nodejs_heap_size_total_bytes'),
      heapUsedMb: mb('nodejs_heap_size_used_bytes'), externalMb: mb('nodejs_external_memory_bytes'),
    };
    for (const m of text.matchAll(/^nodejs_heap_space_size_(total|used)_bytes\{[^}]*space="([a-z_]+)"[^}]*\} (\S+)$/gm)) {
      out[`${m[2]}.${m[1]}Mb`] = round1(Number(m[3]) / 1048576);
    }
    return out;
  } catch (e) {
    return { error: (e as Error).message };
  }
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs('failover', argv, SPECS, SWITCHES);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.values;
  if (!fs.existsSync(OUR_CLI) || !fs.existsSync(EXAMPLE)) throw new Error('dist is missing: run "npm run build"');
  const budget = setTimeout(() => { log('budget exceeded: killing everything'); killAllServers(); process.exit(1); }, o['budget-seconds'] * 1000);
  budget.unref();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-failover-'));
  const clientPort = await freePort();
  const jn = await Promise.all([1, 2, 3].map(async (id) => ({ id, port: await freePort() })));
  const inst: Instance[] = await Promise.all(['a', 'b'].map(async (id) => ({ id, adminPort: await freePort(), servicePort: await freePort(), service: null, controller: null })));
  const cfg = path.join(dir, 'cluster.yaml');
  const hook = (p: number) => `{ http: "http://127.0.0.1:${p}/role" }`;
  fs.writeFileSync(cfg, [
    'cluster: bench', 'quorum:', `  dataDir: ${dir}/quorum`, `  clientPort: ${clientPort}`, '  clientHost: 127.0.0.1',
    'journal:', `  dataDir: ${dir}/journal-{id}`, '  nodes:', ...jn.map((j) => `    - { id: ${j.id}, host: 127.0.0.1, port: ${j.port} }`),
    'controller:', '  allowLoopbackWithoutToken: true',
    'services:', '  - name: orders', '    journal: true', '    fencing: [graceful, journal]', '    instances:',
    ...inst.flatMap((i) => [`      - id: ${i.id}`, '        host: 127.0.0.1', `        adminPort: ${i.adminPort}`, `        servicePort: ${i.servicePort}`,
      `        hooks: { toActive: ${hook(i.servicePort)}, toStandby: ${hook(i.servicePort)}, role: ${hook(i.servicePort)} }`]),
  ].join('\n') + '\n');
  const env = { ...process.env, QUORATE_LOG_LEVEL: process.env.QUORATE_LOG_LEVEL ?? 'warn' };
  // Node flags for the controllers: those --daemon and the systemd unit start them with, unless QUORATE_BENCH_CONTROLLER_FLAGS says otherwise.
  const controllerFlags = process.env.QUORATE_BENCH_CONTROLLER_FLAGS !== undefined ? splitFlags(process.env.QUORATE_BENCH_CONTROLLER_FLAGS) : [...CONTROLLER_NODE_FLAGS];
  // Every process started, for the CPU each uses before a kill.
  const all: { what: string; s: BenchServer }[] = [];
  const start = async (what: string, port: number, args: string[]) => { const s = await launch({ kind: 'ours', dir: path.join(dir, what), port, cmd: process.execPath, args, env }); all.push({ what, s }); return s; };
  const jnArg = jn.map((j) => `${j.id}@127.0.0.1:${j.port}`).join(',');
  const startService = (i: Instance) => start(`svc-${i.id}`, i.servicePort, [EXAMPLE, '--instance', i.id, '--port', String(i.servicePort), '--journal-nodes', jnArg, '--journal', 'orders', '--write-every-ms', '20']);
  // With a run directory, as systemd and --daemon run it: the controller keeps its quorum session there.
  const runDir = path.join(dir, 'run');
  const startController = (i: Instance) => start(`ctl-${i.id}`, i.adminPort, [...controllerFlags, OUR_CLI, 'controller', '--config', cfg, '--service', 'orders', '--id', i.id, '--run-dir', runDir]);
  await start('quorum', clientPort, [OUR_CLI, 'quorum', '--config', cfg, '--id', '1']);
  for (const j of jn) await start(`journal-${j.id}`, j.port, [OUR_CLI, 'journal', '--config', cfg, '--id', String(j.id)]);
  for (const i of inst) i.service = await startService(i);
  for (const i of inst) i.controller = await startController(i);

  /** The instance whose controller says active and whose service answers active. */
  const activeNow = async (candidates = inst): Promise<Instance | null> => {
    for (const i of candidates) {
      const a = await get(`http://127.0.0.1:${i.adminPort}/active`);
      if (a?.status !== 200) continue;
      const r = await get(`http://127.0.0.1:${i.servicePort}/role`);
      if (r?.body.role === 'active') return i;
    }
    return null;
  };
  const waitActive = async (candidates: Instance[], ms: number): Promise<Instance> => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const a = await activeNow(candidates);
      if (a !== null) return a;
      await sleep(5);
    }
    throw new Error(`no active instance among ${candidates.map((c) => c.id).join(', ')} within ${ms} ms`);
  };
  const waitHealthyStandby = async (i: Instance) => {
    const end = performance.now() + 30_000;
    while (performance.now() < end) {
      const s = await get(`http://127.0.0.1:${i.adminPort}/v1/status`);
      if (s?.body.health === 'healthy' && (s.body.phase === 'watching' || s.body.phase === 'standby') && s.body.session === 'connected') return;
      await sleep(50);
    }
    throw new Error(`${i.id} did not come back as a healthy standby`);
  };

  /** 300 ms before each kill, logging the CPU every process used meanwhile (a cluster started a moment ago is still warming up). */
  const pauseBefore = async (what: string) => {
    const cpu0 = all.map((x) => procCpuMs(x.s.pid));
    const self0 = process.cpuUsage();
    await sleep(300);
    const busy = all.flatMap((x, i) => { const c = procCpuMs(x.s.pid); const c0 = cpu0[i]; return c === null || c0 === null || c0 === undefined ? [] : [`${x.what}=${Math.round(c - c0)}`]; });
    const self = process.cpuUsage(self0);
    log(`CPU ms used in the 300 ms before ${what}: ${busy.join(' ')} bench=${Math.round((self.user + self.system) / 1000)}`);
  };

  let first = await waitActive(inst, 30_000);
  log(`${first.id} active; ${o.kills} kills of the active service`);
  for (const i of inst) if (i !== first) await waitHealthyStandby(i);
  await sleep(o['settle-seconds'] * 1000);
  const serviceMs: number[] = [];
  const writeMs: number[] = [];
  for (let k = 0; k < o.kills; k++) {
    const victim = first;
    const other = inst.find((i) => i !== victim)!;
    await waitHealthyStandby(other);
    await pauseBefore(`kill ${k + 1}`);
    await firstAckedWrite(victim.servicePort, `before-${k}`, performance.now(), 5000);
    const tk = performance.now();
    const killedAt = Date.now();
    await victim.service!.kill9();
    const acked = firstAckedWrite(other.servicePort, `after-${k}`, tk, 30_000);
    const now = await waitActive([other], 30_000);
    serviceMs.push(performance.now() - tk);
    writeMs.push(await acked);
    log(`kill ${k + 1} (at ${killedAt}): ${victim.id} -> ${now.id} in ${round1(serviceMs.at(-1)!)} ms, first write acknowledged after ${round1(writeMs.at(-1)!)} ms`);
    victim.service = await startService(victim);
    await waitHealthyStandby(victim);
    first = now;
  }

  const session = await get(`http://127.0.0.1:${first.adminPort}/v1/status`);
  const negotiated = Number(session?.body.sessionTimeoutMs ?? NaN);

  log(`${o['controller-restarts']} restarts of the active's controller (SIGTERM and kill -9 in turn)`);
  const restartMs: { how: 'SIGTERM' | 'kill -9'; ms: number }[] = [];
  let failoversCaused = 0;
  for (let k = 0; k < o['controller-restarts']; k++) {
    const victim = first;
    const other = inst.find((i) => i !== victim)!;
    await waitHealthyStandby(other);
    await pauseBefore(`controller restart ${k + 1}`);
    const epochBefore = (await get(`http://127.0.0.1:${victim.servicePort}/role`))?.body.epoch;
    const how = k % 2 === 0 ? 'SIGTERM' as const : 'kill -9' as const;
    // Watch the other instance the whole time: any moment it is active is a failover.
    let watching = true;
    let otherActive = false;
    const watcher = (async () => {
      while (watching) {
        if ((await get(`http://127.0.0.1:${other.adminPort}/active`))?.status === 200) otherActive = true;
        await sleep(10);
      }
    })();
    const tk = performance.now();
    if (how === 'SIGTERM') await victim.controller!.stop();
    else await victim.controller!.kill9();
    victim.controller = await startController(victim);
    let back: number | null = null;
    const end = performance.now() + negotiated + 30_000;
    while (performance.now() < end && !otherActive) {
      if ((await get(`http://127.0.0.1:${victim.adminPort}/active`))?.status === 200) { back = performance.now() - tk; break; }
      await sleep(5);
    }
    watching = false;
    await watcher;
    const epochAfter = (await get(`http://127.0.0.1:${victim.servicePort}/role`))?.body.epoch;
    const moved = otherActive || back === null || epochAfter !== epochBefore;
    if (moved) {
      failoversCaused++;
      log(`controller restart ${k + 1} (${how}): FAILOVER (other active: ${otherActive}, back: ${back === null ? 'no' : 'yes'}, service epoch ${String(epochBefore)} -> ${String(epochAfter)})`);
      first = await waitActive(inst, negotiated + 30_000);
      for (const i of inst) if (i !== first) await waitHealthyStandby(i);
      continue;
    }
    restartMs.push({ how, ms: back! });
    log(`controller restart ${k + 1} (${how}): ${victim.id} active again after ${round1(back!)} ms, service epoch ${String(epochAfter)} unchanged`);
  }
  log(`${o['controller-kills']} kills of the active controller (negotiated session timeout ${negotiated} ms)`);
  const controllerMs: number[] = [];
  for (let k = 0; k < o['controller-kills']; k++) {
    const victim = first;
    const other = inst.find((i) => i !== victim)!;
    await waitHealthyStandby(other);
    await pauseBefore(`controller kill ${k + 1}`);
    const tk = performance.now();
    await victim.controller!.kill9();
    const now = await waitActive([other], negotiated + 30_000);
    controllerMs.push(performance.now() - tk);
    log(`controller kill ${k + 1}: ${victim.id} -> ${now.id} in ${round1(controllerMs.at(-1)!)} ms`);
    victim.controller = await startController(victim);
    await waitHealthyStandby(victim);
    first = now;
  }

  log(`idle for ${o['idle-seconds']} s`);
  const cpu0 = inst.map((i) => procCpuMs(i.controller!.pid) ?? NaN);
  const w0 = performance.now();
  await sleep(o['idle-seconds'] * 1000);
  const wall = performance.now() - w0;
  const idleCpuPct = inst.map((i, k) => round3((((procCpuMs(i.controller!.pid) ?? NaN) - cpu0[k]) / wall) * 100));
  const memoryMb = inst.map((i) => procMemoryMb(i.controller!.pid));
  const rssMb = memoryMb.map((m) => m?.rss ?? null);
  const heap = await Promise.all(inst.map((i) => heapBreakdown(i.adminPort)));
  killAllServers();

  const svc = summarize(serviceMs);
  const wr = summarize(writeMs);
  const ctl = summarize(controllerMs);
  const rs = summarize(restartMs.map((r) => r.ms));
  const report = {
    benchmark: 'failover',
    machine: { cpus: os.cpus().length, node: process.version },
    options: o,
    setup: 'quorum: ours, standalone, cluster-file defaults (tick 200 ms); controller defaults (session 6 s requested, TCP check every 200 ms); 3 journal nodes; example key-value service (a tick to its journal every 20 ms while active)',
    serviceCrash: { what: 'kill -9 of the active service until the other instance is active and its service answers active', samplesMs: serviceMs.map(round1), ...svc, longestMs: svc.maxMs },
    serviceCrashFirstWrite: { what: 'kill -9 of the active service until a client retrying PUT /kv/<key> on the other instance has a write acknowledged (durable on a journal majority)', samplesMs: writeMs.map(round1), ...wr },
    controllerRestart: {
      what: 'SIGTERM or kill -9 of the active\'s controller, restarted at once: from the signal until the restarted controller answers /active again (it re-attached to its session and resumed); a failover is any moment the other instance was active, or the service\'s writer epoch changed',
      restarts: o['controller-restarts'], failoversCaused,
      samples: restartMs.map((r) => ({ how: r.how, ms: round1(r.ms) })), ...rs,
    },
    controllerCrash: { what: 'kill -9 of the active controller until the other is active (session expiry path)', negotiatedSessionTimeoutMs: negotiated, samplesMs: controllerMs.map(round1), ...ctl },
    controller: {
      nodeFlags: controllerFlags.join(' '), rssMb, idleCpuPctOneCore: idleCpuPct,
      memoryMb: {
        note: 'each controller\'s resident memory by who pays for it (/proc/PID/smaps_rollup): private is its own; shared are pages other processes map too (mostly the node binary, paid once per host); pss charges shared pages to their sharers in equal parts',
        perInstance: memoryMb,
      },
      heapMb: { note: 'from each controller\'s /metrics (prom-client\'s process metrics): V8 heap spaces (size reserved / used) and memory outside the heap', perInstance: heap },
    },
    bars: {
      serviceCrashP99: { what: 'the longest of the service-crash failovers < 1500 ms', valueMs: svc.maxMs, pass: svc.maxMs < 1500 },
      controllerRestartNoFailover: { what: 'controller restarts within the session timeout cause no failover', value: failoversCaused, pass: failoversCaused === 0 },
      controllerCrash: { what: 'the longest controller-crash failover <= negotiated session timeout + 1000 ms', valueMs: ctl.maxMs, limitMs: negotiated + 1000, pass: ctl.maxMs <= negotiated + 1000 },
    },
    seconds: round1((performance.now() - t0) / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.bars.serviceCrashP99.pass && report.bars.controllerCrash.pass && report.bars.controllerRestartNoFailover.pass ? 0 : 1;
}
