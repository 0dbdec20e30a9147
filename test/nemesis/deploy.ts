// The nemesis's cluster on the lab: a quorum of three servers, three journal
// nodes, and instances of the example key-value service `kv` each with its
// controller, spread over 3-5 hosts, from the tarball installQuorate() made.
// Every process is started directly with lab.spawn, in the foreground, so the
// nemesis can kill -9, SIGSTOP/SIGCONT and restart each one by its pid
// (`ip netns exec` execs the command: the child's pid is the process's).
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Lab, LabHost } from '../helpers/lab.js';

export type ProcKind = 'quorum' | 'journal' | 'controller' | 'service';

export const PORTS = { quorumClient: 2181, quorumPeer: 2888, quorumElection: 3888, quorumAdmin: 8080, journal: 8485, controller: 8019, service: 7001 } as const;
/** The ports a "partitioned from the quorum" host loses (client, peer, election), and from the journal. */
export const QUORUM_PORTS = [PORTS.quorumClient, PORTS.quorumPeer, PORTS.quorumElection];
export const JOURNAL_PORTS = [PORTS.journal];

export const DEPLOY_LIMITS = {
  /** A process must listen on its port within this after a (re)start. */
  start_timeout_ms: 30_000,
  /** A killed process must be gone (reaped) within this. */
  exit_timeout_ms: 10_000,
  poll_ms: 100,
  connect_probe_ms: 500,
} as const;

export interface DeployOptions {
  hosts: number;
  /** Service instances (2 or 3). */
  instances: number;
  sessionTimeoutMs: number;
  /** Where the processes' logs go (kept after the lab is torn down). */
  logDir: string;
  /** The controllers' `failsafe` (the service's key in the cluster file). */
  failsafe: boolean;
  /** More keys of the service in the cluster file (YAML lines, indented 4 spaces): resources, say. */
  serviceLines?: string[];
  /** The services listen on every address of their host (a floating IP's too), not only on the host's own. */
  serviceListenAll?: boolean;
  /** The service's fencing methods (YAML flow list); default [graceful, journal]. */
  fencing?: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function listening(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { clearTimeout(t); s.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** One process of the cluster: how to run it, and its current incarnation. */
export class Proc {
  child: ChildProcess | null = null;
  /** SIGSTOPped by the nemesis and not yet continued. */
  paused = false;
  starts = 0;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    private readonly lab: Lab,
    readonly kind: ProcKind,
    readonly id: string,
    readonly host: LabHost,
    readonly port: number,
    private readonly argv: string[],
    readonly logFile: string,
  ) {}

  get label(): string { return `${this.kind} ${this.id} on ${this.host.name}`; }
  get pid(): number | null { return this.running ? this.child!.pid ?? null : null; }
  get running(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  /** Starts it (it must not be running) and, with wait, resolves once it listens on its port. */
  async start(wait = true): Promise<void> {
    if (this.running) throw new Error(`${this.label}: already running (pid ${this.child!.pid})`);
    fs.appendFileSync(this.logFile, `\n=== nemesis: start #${this.starts + 1} at ${new Date().toISOString()} ===\n`);
    const child = this.lab.spawn(this.host, this.argv, { logFile: this.logFile });
    this.child = child;
    this.paused = false;
    this.starts++;
    this.exited = new Promise<void>((r) => { child.once('exit', () => r()); child.once('error', () => r()); });
    if (wait) await this.waitListening();
  }

  async waitListening(timeoutMs: number = DEPLOY_LIMITS.start_timeout_ms): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < end && i < timeoutMs / DEPLOY_LIMITS.poll_ms; i++) {
      if (!this.running) throw new Error(`${this.label} exited (${this.child?.exitCode ?? this.child?.signalCode}) before listening on ${this.host.address}:${this.port}; log ${this.logFile}:\n${tail(this.logFile)}`);
      if (await listening(this.host.address, this.port, DEPLOY_LIMITS.connect_probe_ms)) return;
      await sleep(DEPLOY_LIMITS.poll_ms);
    }
    throw new Error(`${this.label} does not listen on ${this.host.address}:${this.port} within ${timeoutMs} ms; log ${this.logFile}:\n${tail(this.logFile)}`);
  }

  /** kill -9, and waits until it is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.lab.signal(this.child!.pid!, 'SIGKILL');
    await Promise.race([this.exited, sleep(DEPLOY_LIMITS.exit_timeout_ms)]);
    if (this.running) throw new Error(`${this.label} (pid ${this.child!.pid}) survived SIGKILL for ${DEPLOY_LIMITS.exit_timeout_ms} ms`);
    this.paused = false;
  }

  pause(): void {
    if (!this.running) throw new Error(`${this.label} is not running: cannot pause it`);
    this.lab.signal(this.child!.pid!, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (this.running) this.lab.signal(this.child!.pid!, 'SIGCONT');
    this.paused = false;
  }
}

function tail(file: string, chars = 3000): string {
  try { const t = fs.readFileSync(file, 'utf8'); return t.slice(-chars); } catch { return '(no log)'; }
}

export interface Instance {
  id: string;
  host: LabHost;
  /** The service API's base URL (what the service advertises in its 503s). */
  url: string;
  adminUrl: string;
  service: Proc;
  controller: Proc;
}

export interface Deployment {
  cfgPath: string;
  hosts: LabHost[];
  quorum: Proc[];
  journal: Proc[];
  instances: Instance[];
  all: Proc[];
  journalNodes: { id: number; host: string; port: number }[];
  /** Starts everything, in order (quorum, journal, services, controllers). */
  start(): Promise<void>;
}

/**
 * Placement: quorum servers on the first three hosts, journal nodes on the last three, instances
 * spread from the first host to the last (3 hosts: one of each per host).
 */
export function placement(hosts: number, instances: number): { quorum: number[]; journal: number[]; instances: number[] } {
  const spread = Array.from({ length: instances }, (_, k) => (instances === 1 ? 0 : Math.round((k * (hosts - 1)) / (instances - 1))));
  return { quorum: [0, 1, 2], journal: [hosts - 3, hosts - 2, hosts - 1], instances: spread };
}

export async function deploy(lab: Lab, quorateBin: string, o: DeployOptions): Promise<Deployment> {
  if (o.hosts < 3 || o.hosts > lab.hosts.length) throw new Error(`deploy: hosts must be 3..${lab.hosts.length}, got ${o.hosts}`);
  if (o.instances < 2 || o.instances > 3) throw new Error(`deploy: instances must be 2 or 3, got ${o.instances}`);
  const h = lab.hosts.slice(0, o.hosts);
  const main = fs.realpathSync(quorateBin);
  // <prefix>/lib/node_modules/quorate/dist/src/cli/main.js -> dist/examples/example-service.js
  const example = path.resolve(path.dirname(main), '../../examples/example-service.js');
  if (!fs.existsSync(example)) throw new Error(`deploy: ${example} is missing from the installed package`);
  const dir = lab.dir;
  fs.mkdirSync(o.logDir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'admin-token'), 'nemesis-admin-token-0123456789abcdef\n', { mode: 0o600 });
  const place = placement(o.hosts, o.instances);
  const journalNodes = place.journal.map((hi, k) => ({ id: k + 1, host: h[hi].address, port: PORTS.journal }));
  const ids = ['a', 'b', 'c'].slice(0, o.instances);
  const cfgPath = path.join(dir, 'cluster.yaml');
  const hook = (x: LabHost) => `{ http: "http://${x.address}:${PORTS.service}/role" }`;
  fs.writeFileSync(cfgPath, [
    'cluster: nemesis',
    `runDir: ${dir}/run`,
    'quorum:',
    `  dataDir: ${dir}/data/quorum-{id}`,
    // The lab's own network: plain TCP and HTTP accepted knowingly.
    '  insecure: true',
    '  servers:',
    ...place.quorum.map((hi, k) => `    - { id: ${k + 1}, host: ${h[hi].address}, clientPort: ${PORTS.quorumClient}, peerPort: ${PORTS.quorumPeer}, electionPort: ${PORTS.quorumElection} }`),
    'journal:',
    `  dataDir: ${dir}/data/journal-{id}`,
    '  requestTimeoutMs: 1000',
    '  catchUpIntervalMs: 300',
    '  insecure: true',
    '  nodes:',
    ...journalNodes.map((n) => `    - { id: ${n.id}, host: ${n.host}, port: ${n.port} }`),
    'controller:',
    `  sessionTimeoutMs: ${o.sessionTimeoutMs}`,
    `  adminTokenFile: ${dir}/admin-token`,
    'services:',
    '  - name: kv',
    '    journal: true',
    `    fencing: ${o.fencing ?? '[graceful, journal]'}`,
    ...(o.failsafe ? ['    failsafe: true'] : []),
    '    cedeMs: 3000',
    // The nemesis fails the service over hundreds of times: flap damping has its own tests.
    '    promotionsPerWindow: 1000',
    ...(o.serviceLines ?? []),
    '    instances:',
    ...ids.flatMap((id, k) => {
      const x = h[place.instances[k]];
      return [
        `      - id: ${id}`,
        `        host: ${x.address}`,
        `        adminPort: ${PORTS.controller}`,
        `        servicePort: ${PORTS.service}`,
        `        health: [ { http: "http://${x.address}:${PORTS.service}/health", timeoutMs: 1000 } ]`,
        `        hooks: { toActive: ${hook(x)}, toStandby: ${hook(x)}, role: ${hook(x)} }`,
      ];
    }),
  ].join('\n') + '\n');

  const node = process.execPath;
  const log = (name: string) => path.join(o.logDir, `${name}.log`);
  const quorum = place.quorum.map((hi, k) => new Proc(lab, 'quorum', String(k + 1), h[hi], PORTS.quorumClient,
    [node, main, 'quorum', 'start', '--config', cfgPath, '--id', String(k + 1)], log(`quorum-${k + 1}`)));
  const journal = journalNodes.map((n, k) => new Proc(lab, 'journal', String(n.id), h[place.journal[k]], PORTS.journal,
    [node, main, 'journal', 'start', '--config', cfgPath, '--id', String(n.id)], log(`journal-${n.id}`)));
  const nodesArg = journalNodes.map((n) => `${n.id}@${n.host}:${n.port}`).join(',');
  const instances: Instance[] = ids.map((id, k) => {
    const x = h[place.instances[k]];
    const url = `http://${x.address}:${PORTS.service}`;
    const dataDir = path.join(dir, 'data', `service-${id}`);
    fs.mkdirSync(dataDir, { recursive: true });
    return {
      id, host: x, url, adminUrl: `http://${x.address}:${PORTS.controller}`,
      service: new Proc(lab, 'service', id, x, PORTS.service,
        [node, example, '--instance', id, '--host', o.serviceListenAll ? '0.0.0.0' : x.address, '--port', String(PORTS.service), '--advertise', url,
          '--journal-nodes', nodesArg, '--journal', 'kv', '--data-dir', dataDir], log(`service-${id}`)),
      controller: new Proc(lab, 'controller', id, x, PORTS.controller,
        [node, main, 'controller', 'start', '--config', cfgPath, '--service', 'kv', '--id', id], log(`controller-${id}`)),
    };
  });
  const all = [...quorum, ...journal, ...instances.flatMap((i) => [i.service, i.controller])];
  return {
    cfgPath, hosts: h, quorum, journal, instances, all, journalNodes,
    async start() {
      await Promise.all(quorum.map((p) => p.start()));
      await Promise.all(journal.map((p) => p.start()));
      await Promise.all(instances.map((i) => i.service.start()));
      await Promise.all(instances.map((i) => i.controller.start()));
    },
  };
}
