// A whole Quorate deployment as real processes on 127.0.0.1, for the
// controller's tests: one quorum server (standalone, short tick), three
// journal nodes, N instances of the example service and their controllers,
// on free ports, from one generated cluster file. What the tests ask of it:
// who is active (each controller's /active), the journal's history (C4),
// the CLI against the same file.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, expect } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import type { JournalNodeAddress } from '../../src/client/journal/node-client.js';
import { tailJournal } from '../../src/client/journal/tail.js';
import { startApacheZk, type ApacheZk } from './apache-zk.js';
import { startEnsemble, type Ensemble, type Links } from './quorate-ensemble.js';
import { CLI, startCliProcess, type CliProcess } from './cli-process.js';
import { freePort } from './ports.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { waitUntil } from './wait.js';

const EXAMPLE = path.resolve(__dirname, '../../dist/examples/example-service.js');

export interface HaInstance {
  id: string; adminPort: number; servicePort: number; service: CliProcess; controller: CliProcess;
  /** With `proxied`: the controller's own way to the quorum, which the test can cut. */
  proxy: TcpProxy | null;
}

export interface HaCluster {
  dir: string;
  cfgPath: string;
  /** With HaOptions.runDir: the controllers' run directory (pid and session files). */
  runDir: string | null;
  /** Our quorum server (the first of them), or null with the Apache ZooKeeper backend. */
  quorum: CliProcess | null;
  /** Every quorum server (one unless quorumServers was given). */
  quorumServers: CliProcess[];
  /** The client ports of the quorum servers, in server id order. */
  quorumPorts: number[];
  apacheZk: ApacheZk | null;
  /** With partitionableQuorum: the quorum of three and its cuttable links. */
  ensemble: (Ensemble & { links: Links | null }) | null;
  journal: CliProcess[];
  journalNodes: JournalNodeAddress[];
  instances: HaInstance[];
  /** With extraServices: each further service of the cluster file and its instances (ids a, b, ...), in the file's order. */
  others: HaService[];
  /** An instance's controller's GET /v1/status. */
  status(id: string): Promise<Record<string, unknown>>;
  /** Which instances' controllers answer /active with 200 right now. */
  actives(): Promise<string[]>;
  /** Waits until exactly one instance is active (and returns it), bounded. */
  settledActive(timeoutMs?: number, not?: string): Promise<string>;
  /** Every edit written to the service's journal, in txid order: {instance, epoch, seq}. */
  journalHistory(): Promise<{ txid: bigint; instance: string; epoch: number; seq: number }[]>;
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stopAll(): Promise<void>;
}

/** A further service of the same cluster file (with extraServices): its own instances and controllers, the same quorum and journal nodes. */
export interface HaService {
  name: string;
  instances: HaInstance[];
  actives(): Promise<string[]>;
  settledActive(timeoutMs?: number, not?: string): Promise<string>;
}

export interface HaOptions {
  sessionTimeoutMs?: number;
  fencing?: string;
  noFailover?: string[];
  priorities?: number[];
  /** Each controller reaches the quorum through its own TCP proxy (HaInstance.proxy). */
  proxied?: boolean;
  /** Elect through Debian's Apache ZooKeeper 3.8 instead of our quorum. */
  backend?: 'quorate' | 'apache';
  /** The service's maxLagOnFailover; the health checks then read {"lag"} from the example service. */
  maxLag?: number;
  /** A replicated quorum of this many servers (ours) instead of one standalone server. */
  quorumServers?: number;
  /**
   * A replicated quorum of three configured the ZooKeeper way (zoo.cfg), its peer links through
   * proxies the test can cut (HaCluster.ensemble.links); instance k's controller talks to server k.
   */
  partitionableQuorum?: boolean;
  /** ZooKeeper digest auth for the controllers ("user:password"), written to a digestFile. */
  digest?: string;
  /** The admin API over TLS, and a bearer token (instead of loopback without one). */
  tls?: { certFile: string; keyFile: string; caFile: string; tokenFile: string; clientAuth?: 'none' | 'want' | 'need'; operators?: string[]; readers?: string[] };
  /** With tls: the same certificate on the journal nodes (HTTPS, client certificates required) and between quorum servers. */
  tlsEverywhere?: boolean;
  /** The service's failsafe setting (kept active by the journal while the quorum is unreachable). */
  failsafe?: boolean;
  /** Further services in the same cluster file, each with n instances of the example service (with a journal of its name) and their controllers. */
  extraServices?: string[];
  /**
   * Controllers run with --run-dir (HaCluster.runDir), as systemd and --daemon run them: they keep
   * their quorum session there, and a restart of the active's re-attaches and resumes.
   */
  runDir?: boolean;
  /** Each instance's health checks (YAML flow list), instead of an http check of /health every 200 ms. */
  health?: (servicePort: number) => string;
}

export async function startHaCluster(n: number, opts: HaOptions = {}): Promise<HaCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-ha-'));
  const apacheZk = opts.backend === 'apache' ? await startApacheZk({ tickTime: 100, extra: { minSessionTimeout: '1000', maxSessionTimeout: '60000' } }) : null;
  const ensemble = opts.partitionableQuorum ? await startEnsemble(3, { proxied: true, tickTime: 100, cfg: { maxSessionTimeout: '60000' } }) : null;
  if (ensemble !== null) await ensemble.settled();
  const external = apacheZk !== null || ensemble !== null;
  const clientPort = apacheZk?.port ?? ensemble?.servers[0].port ?? await freePort();
  const nq = opts.quorumServers ?? 1;
  const quorumPorts = [clientPort];
  const peerPorts: number[][] = [];
  for (let k = 1; k < nq; k++) quorumPorts.push(await freePort());
  if (nq > 1) for (let k = 0; k < nq; k++) peerPorts.push([await freePort(), await freePort()]);
  const tlsAll = opts.tlsEverywhere === true && opts.tls !== undefined ? opts.tls : null;
  const securePorts: number[] = [];
  if (tlsAll !== null) for (let k = 0; k < nq; k++) securePorts.push(await freePort());
  const proxies = opts.proxied ? await Promise.all(Array.from({ length: n }, () => startTcpProxy(clientPort))) : null;
  const journalNodes: JournalNodeAddress[] = [];
  for (let i = 1; i <= 3; i++) journalNodes.push({ id: i, host: '127.0.0.1', port: await freePort() });
  const ids = Array.from({ length: n }, (_, k) => String.fromCharCode(97 + k));
  const ports = await Promise.all(ids.map(async () => ({ admin: await freePort(), service: await freePort() })));
  const extra = opts.extraServices ?? [];
  const extraPorts = await Promise.all(extra.map(() => Promise.all(ids.map(async () => ({ admin: await freePort(), service: await freePort() })))));
  const hook = (p: number) => `{ http: "http://127.0.0.1:${p}/role" }`;
  const cfgPath = path.join(dir, 'cluster.yaml');
  if (opts.digest !== undefined) fs.writeFileSync(path.join(dir, 'zk-digest'), `${opts.digest}\n`, { mode: 0o600 });
  fs.writeFileSync(cfgPath, [
    'cluster: test',
    ...(external ? [] : [
      'quorum:',
      '  tickMs: 100',
      // ZooKeeper's rule would cap sessions at 20 ticks (2 s): too short for the controller's lease check.
      '  session: { maxTimeoutMs: 60000 }',
      `  dataDir: ${dir}/quorum-{id}`,
      `  clientPort: ${clientPort}`,
      '  clientHost: 127.0.0.1',
      ...(tlsAll ? [
        `  tls: { certFile: ${tlsAll.certFile}, keyFile: ${tlsAll.keyFile}, caFile: ${tlsAll.caFile} }`,
        `  clientTls: { certFile: ${tlsAll.certFile}, keyFile: ${tlsAll.keyFile}, caFile: ${tlsAll.caFile}, clientAuth: need }`,
        ...(nq > 1 ? [] : [`  secureClientPort: ${securePorts[0]}`]),
      ] : []),
      ...(nq > 1 ? ['  servers:', ...quorumPorts.map((p, k) => `    - { id: ${k + 1}, host: 127.0.0.1, clientPort: ${p}, peerPort: ${peerPorts[k][0]}, electionPort: ${peerPorts[k][1]}${tlsAll ? `, secureClientPort: ${securePorts[k]}` : ''} }`)] : []),
    ]),
    'journal:',
    `  dataDir: ${dir}/journal-{id}`,
    '  catchUpIntervalMs: 300',
    '  requestTimeoutMs: 1000',
    ...(opts.tlsEverywhere && opts.tls ? [`  tls: { certFile: ${opts.tls.certFile}, keyFile: ${opts.tls.keyFile}, caFile: ${opts.tls.caFile} }`] : []),
    '  nodes:',
    ...journalNodes.map((j) => `    - { id: ${j.id}, host: 127.0.0.1, port: ${j.port} }`),
    'controller:',
    ...(apacheZk !== null ? [`  connectString: 127.0.0.1:${clientPort}/quorate-test`] : ensemble !== null ? [`  connectString: ${ensemble.connectString}`] : []),
    `  sessionTimeoutMs: ${opts.sessionTimeoutMs ?? 3000}`,
    ...(tlsAll ? [`  quorumTls: { caFile: ${tlsAll.caFile}, certFile: ${tlsAll.certFile}, keyFile: ${tlsAll.keyFile} }`] : []),
    ...(opts.digest !== undefined ? [`  digestFile: ${path.join(dir, 'zk-digest')}`] : []),
    ...(opts.tls === undefined ? ['  allowLoopbackWithoutToken: true'] : [
      `  adminTokenFile: ${opts.tls.tokenFile}`,
      `  tls: { certFile: ${opts.tls.certFile}, keyFile: ${opts.tls.keyFile}, caFile: ${opts.tls.caFile}${opts.tls.clientAuth ? `, clientAuth: ${opts.tls.clientAuth}` : ''} }`,
      ...(opts.tls.operators ? [`  operators: [${opts.tls.operators.join(', ')}]`] : []),
      ...(opts.tls.readers ? [`  readers: [${opts.tls.readers.join(', ')}]`] : []),
    ]),
    'services:',
    '  - name: orders',
    '    journal: true',
    `    fencing: ${opts.fencing ?? '[graceful, journal]'}`,
    '    raceDelayMs: 200',
    ...(opts.maxLag !== undefined ? [`    maxLagOnFailover: ${opts.maxLag}`] : []),
    ...(opts.failsafe ? ['    failsafe: true'] : []),
    '    cedeMs: 3000',
    // The scenarios fail over many times in a minute: flap damping has its own unit tests.
    '    promotionsPerWindow: 1000',
    '    instances:',
    ...ids.flatMap((id, k) => [
      `      - id: ${id}`,
      ...(proxies !== null ? [`        connectString: 127.0.0.1:${proxies[k].port}${apacheZk !== null ? '/quorate-test' : ''}`] : []),
      ...(ensemble !== null ? [`        connectString: 127.0.0.1:${ensemble.servers[k % 3].port}`] : []),
      '        host: 127.0.0.1',
      `        adminPort: ${ports[k].admin}`,
      `        servicePort: ${ports[k].service}`,
      `        priority: ${opts.priorities?.[k] ?? 0}`,
      ...(opts.noFailover?.includes(id) ? ['        noFailover: true'] : []),
      `        health: ${opts.health?.(ports[k].service) ?? `[ { http: "http://127.0.0.1:${ports[k].service}/health", timeoutMs: 300${opts.maxLag !== undefined ? ', lagField: lag' : ''} } ]`}`,
      `        hooks: { toActive: ${hook(ports[k].service)}, toStandby: ${hook(ports[k].service)}, role: ${hook(ports[k].service)} }`,
    ]),
    ...extra.flatMap((name, e) => [
      `  - name: ${name}`,
      '    journal: true',
      `    fencing: ${opts.fencing ?? '[graceful, journal]'}`,
      '    raceDelayMs: 200',
      '    cedeMs: 3000',
      '    promotionsPerWindow: 1000',
      '    instances:',
      ...ids.flatMap((id, k) => {
        const p = extraPorts[e][k];
        return [
          `      - id: ${id}`,
          '        host: 127.0.0.1',
          `        adminPort: ${p.admin}`,
          `        servicePort: ${p.service}`,
          `        health: [ { http: "http://127.0.0.1:${p.service}/health", timeoutMs: 300 } ]`,
          `        hooks: { toActive: ${hook(p.service)}, toStandby: ${hook(p.service)}, role: ${hook(p.service)} }`,
        ];
      }),
    ]),
  ].join('\n') + '\n');
  if (apacheZk !== null) {
    // The chroot must exist before a client can use it.
    const zk = new ZkClient({ connectString: apacheZk.connectString, sessionTimeoutMs: 5000 });
    await zk.connect();
    await zk.ensurePath('/quorate-test');
    await zk.close();
  }
  const quorumServers = external ? [] : await Promise.all(quorumPorts.map((p, k) => startCliProcess(['quorum', '--config', cfgPath, '--id', String(k + 1)], p)));
  const quorum = quorumServers[0] ?? null;
  const journal = await Promise.all(journalNodes.map((j) => startCliProcess(['journal', '--config', cfgPath, '--id', String(j.id)], j.port)));
  const jn = journalNodes.map((j) => `${j.id}@127.0.0.1:${j.port}`).join(',');
  const journalTls = opts.tlsEverywhere && opts.tls
    ? { cert: fs.readFileSync(opts.tls.certFile, 'utf8'), key: fs.readFileSync(opts.tls.keyFile, 'utf8'), ca: fs.readFileSync(opts.tls.caFile, 'utf8') } : null;
  const instances: HaInstance[] = [];
  const runDir = opts.runDir ? path.join(dir, 'run') : null;
  for (const [k, id] of ids.entries()) {
    const serviceTls = opts.tlsEverywhere && opts.tls ? ['--tls-cert', opts.tls.certFile, '--tls-key', opts.tls.keyFile, '--tls-ca', opts.tls.caFile] : [];
    const service = await startCliProcess([], ports[k].service, {}, [EXAMPLE, '--instance', id, '--port', String(ports[k].service), '--journal-nodes', jn, '--journal', 'orders', '--write-every-ms', '20', ...serviceTls]);
    const controller = await startCliProcess(['controller', '--config', cfgPath, '--service', 'orders', '--id', id, ...(runDir !== null ? ['--run-dir', runDir] : [])], ports[k].admin);
    instances.push({ id, adminPort: ports[k].admin, servicePort: ports[k].service, service, controller, proxy: proxies?.[k] ?? null });
  }
  const others: HaService[] = [];
  for (const [e, name] of extra.entries()) {
    const list: HaInstance[] = [];
    for (const [k, id] of ids.entries()) {
      const p = extraPorts[e][k];
      const service = await startCliProcess([], p.service, {}, [EXAMPLE, '--instance', id, '--port', String(p.service), '--journal-nodes', jn, '--journal', name, '--write-every-ms', '20']);
      const controller = await startCliProcess(['controller', '--config', cfgPath, '--service', name, '--id', id], p.admin);
      list.push({ id, adminPort: p.admin, servicePort: p.service, service, controller, proxy: null });
    }
    others.push({ name, instances: list, actives: () => activesOf(list), settledActive: (t, not) => settle(() => activesOf(list), t, not) });
  }
  const scheme = opts.tls === undefined ? 'http' : 'https';
  // The test looks on as a controller host would: with the hosts' certificate (an admin API may require one).
  const tlsAgent = opts.tls === undefined ? undefined : new Agent({ connect: { ca: fs.readFileSync(opts.tls.caFile, 'utf8'), cert: fs.readFileSync(opts.tls.certFile, 'utf8'), key: fs.readFileSync(opts.tls.keyFile, 'utf8') } });
  const activesOf = async (list: HaInstance[]) => {
    const r = await Promise.all(list.map(async (i) => {
      try {
        const res = await request(`${scheme}://127.0.0.1:${i.adminPort}/active`, { signal: AbortSignal.timeout(1000), dispatcher: tlsAgent });
        await res.body.dump();
        return res.statusCode === 200 ? i.id : null;
      } catch { return null; }
    }));
    return r.filter((x): x is string => x !== null);
  };
  const actives = () => activesOf(instances);
  const settle = async (get: () => Promise<string[]>, timeoutMs = 20_000, not?: string) => {
    const end = Date.now() + timeoutMs;
    let last: string[] = [];
    while (Date.now() < end) {
      last = await get();
      if (last.length === 1 && last[0] !== not) return last[0];
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no single active instance within ${timeoutMs} ms (active: ${last.join(', ') || 'none'})`);
  };
  return {
    dir, cfgPath, runDir, quorum, quorumServers, quorumPorts, apacheZk, ensemble, journal, journalNodes, instances, others, actives,
    async status(id) {
      const i = instances.find((x) => x.id === id)!;
      const r = await request(`${scheme}://127.0.0.1:${i.adminPort}/v1/status`, { signal: AbortSignal.timeout(2000), dispatcher: tlsAgent });
      return (await r.body.json()) as Record<string, unknown>;
    },
    settledActive: (timeoutMs, not) => settle(actives, timeoutMs, not),
    async journalHistory() {
      const out: { txid: bigint; instance: string; epoch: number; seq: number }[] = [];
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 3000);
      try {
        for await (const e of tailJournal('orders', 1n, { nodes: journalNodes, waitMs: 300, signal: ac.signal, tls: journalTls })) {
          out.push({ txid: e.txid, ...(JSON.parse(e.payload.toString()) as { instance: string; epoch: number; seq: number }) });
        }
      } finally { clearTimeout(t); }
      return out;
    },
    cli: (args) => new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { timeout: 40_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      });
    }),
    async stopAll() {
      for (const i of [...instances, ...others.flatMap((o) => o.instances)]) { await i.controller.stop(); await i.service.stop(); }
      await Promise.all(journal.map((j) => j.stop()));
      for (const q of quorumServers) await q.stop();
      await ensemble?.stopAll();
      await apacheZk?.stop();
      for (const p of proxies ?? []) await p.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * C4 as the journal sees it: the epochs of accepted edits never go back (an older active's write
 * after a newer one's would mean two actives both accepted), and each instance's edits in one
 * epoch are in sequence: the example service numbers one writer's edits (seq) in the order its
 * writer assigns them txids, and a writer that fails one append is fenced for good, so within an
 * (instance, epoch) each edit's seq is the previous one's plus one. A gap is an edit lost from the
 * middle of the journal while a later one of the same writer was acknowledged; a repeat or a step
 * back is a duplicated or reordered edit. (The first edit read of an epoch may start past 0 when
 * older segments were purged; a lost tail is not seen here, only by a test that kept its acks.)
 * An empty history is a problem too: C4 checked on nothing would pass on a journal nobody wrote
 * to (a service that never became active, a test that read the wrong journal).
 */
export function checkC4(history: { txid: bigint; instance: string; epoch: number; seq: number }[]): string[] {
  if (history.length === 0) return ['the journal has no edits: C4 cannot be checked on nothing'];
  const problems: string[] = [];
  let maxEpoch = 0;
  const epochOwner = new Map<number, string>();
  const lastOf = new Map<string, { txid: bigint; seq: number }>();
  for (const e of history) {
    if (e.epoch < maxEpoch) problems.push(`txid ${e.txid}: ${e.instance} wrote in epoch ${e.epoch} after epoch ${maxEpoch} had writes`);
    maxEpoch = Math.max(maxEpoch, e.epoch);
    const owner = epochOwner.get(e.epoch);
    if (owner !== undefined && owner !== e.instance) problems.push(`epoch ${e.epoch} has writes from ${owner} and ${e.instance}`);
    epochOwner.set(e.epoch, e.instance);
    const key = `${e.instance}@${e.epoch}`;
    const last = lastOf.get(key);
    if (last !== undefined && e.seq !== last.seq + 1) {
      problems.push(e.seq > last.seq + 1
        ? `epoch ${e.epoch}: ${e.instance}'s edit seq ${e.seq} (txid ${e.txid}) follows seq ${last.seq} (txid ${last.txid}): seq ${last.seq + 1}${e.seq - 1 > last.seq + 1 ? `..${e.seq - 1}` : ''} lost`
        : `epoch ${e.epoch}: ${e.instance}'s edit seq ${e.seq} (txid ${e.txid}) after seq ${last.seq} (txid ${last.txid}): repeated or out of order`);
    }
    lastOf.set(key, { txid: e.txid, seq: e.seq });
  }
  return problems;
}

/**
 * C4 over the whole journal once it has settled after the last failover: read until the history
 * ends with edits of the one active instance (it writes every 20 ms). Any write a fenced former
 * active got accepted then lies before them in txid order, where C4 sees it; the history must not
 * be empty. Bounded: fails naming what the last read ended with.
 */
export async function expectC4(c: HaCluster, timeoutMs = 20_000): Promise<void> {
  const history = await waitUntil('the journal history ends with edits of the one active instance', timeoutMs, async () => {
    const active = await c.actives();
    if (active.length !== 1) throw new Error(`active: [${active.join(', ')}]`);
    const h = await c.journalHistory();
    const last = h.at(-1);
    if (last === undefined || last.instance !== active[0]) throw new Error(`${active[0]} is active; the journal's ${h.length} edits end with ${last === undefined ? 'nothing' : `${last.instance} epoch ${last.epoch} seq ${last.seq}`}`);
    return h;
  }, 100);
  expect(checkC4(history)).toEqual([]);
}

/** A failed scenario shows what the controllers and services said. */
export function showLogsOnFailure(get: () => HaCluster | undefined): void {
  afterEach((ctx) => {
    const c = get();
    if (c === undefined || ctx.task.result?.state !== 'fail') return;
    for (const i of c.instances) {
      process.stderr.write(`--- controller ${i.id}:\n${i.controller.logs().split('\n').slice(-25).map((l) => l.slice(0, 400)).join('\n')}\n--- service ${i.id}:\n${i.service.logs().slice(-1500)}\n`);
    }
  });
}

/** When the example service last logged a line matching `what` (its ISO time stamp), or null. */
export function serviceLoggedAt(log: string, what: RegExp): number | null {
  const last = log.split('\n').filter((l) => what.test(l)).at(-1);
  return last === undefined ? null : Date.parse(last.split(' ')[0]);
}
