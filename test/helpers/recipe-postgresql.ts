// The PostgreSQL recipe (examples/postgresql) as real processes on 127.0.0.1,
// for its test and its benchmark: three PostgreSQL 15 servers run by the
// `postgres` user (Debian's packages), each with its configuration outside
// its data directory as Debian keeps it (pg_rewind copies the data directory
// whole), started only through pgq.sh; one sidecar and one controller per
// server; one standalone quorum server. The client path is libpq's own: psql
// with every server in a multi-host connection string and
// target_session_attrs=read-write, so a write goes to whichever server is out
// of recovery. No vitest here: the benchmark runs it from dist/ too.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, waitForPort } from '../../src/io/ports.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const HERE = path.dirname(fileURLToPath(import.meta.url));
// test/helpers in the checkout, or dist/test/helpers when the benchmark runs the compiled copy.
const ROOT = path.basename(path.resolve(HERE, '../..')) === 'dist' ? path.resolve(HERE, '../../..') : path.resolve(HERE, '../..');
export const PGQ = path.join(ROOT, 'examples/postgresql/pgq.sh');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const SIDECAR = path.join(ROOT, 'dist/examples/postgresql/sidecar.js');

/** Bounds of the harness's own waits. */
const CMD_TIMEOUT_MS = 60_000;
const PROCESS_START_MS = 20_000;
const LOG_KEEP_CHARS = 400_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why the recipe cannot run here, or null. */
export function postgresMissing(): string | null {
  if (!fs.existsSync(`${PG_BIN}/pg_ctl`) || !fs.existsSync(`${PG_BIN}/pg_rewind`)) return `PostgreSQL 15 is not installed (${PG_BIN}): apt-get install postgresql-15`;
  if (process.getuid?.() !== 0) return 'the recipe\'s harness runs PostgreSQL as the postgres user: run as root';
  try { fs.accessSync('/usr/bin/curl'); } catch { return 'curl is missing (pgq.sh asks the controllers with it)'; }
  if (!fs.existsSync(CLI) || !fs.existsSync(SIDECAR)) return `${CLI} or ${SIDECAR} is missing: run "npm run build"`;
  return null;
}

function pgUser(): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('there is no postgres user (apt-get install postgresql creates it)');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Runs a command to its end, bounded; throws with its output when it fails. */
export function run(cmd: string, args: string[], opts: { asPostgres?: boolean; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const u = opts.asPostgres ? pgUser() : null;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: opts.timeoutMs ?? CMD_TIMEOUT_MS, env: { ...process.env, ...opts.env }, ...(u ? { uid: u.uid, gid: u.gid, cwd: '/tmp' } : {}), maxBuffer: 16 << 20 },
      (err, stdout, stderr) => err ? reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`.slice(0, 4000))) : resolve(stdout));
  });
}

interface Proc { child: ChildProcess; log(): string; alive(): boolean; stop(): Promise<void>; kill9(): Promise<void> }

/** A long-running process in its own process group, its stderr kept (and written to `logFile`). */
async function startProc(cmd: string, args: string[], port: number, logFile: string): Promise<Proc> {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const out = fs.createWriteStream(logFile, { flags: 'a' });
  const keep = (d: Buffer) => { text = (text + d.toString()).slice(-LOG_KEEP_CHARS); out.write(d); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitForPort(port, PROCESS_START_MS, '127.0.0.1', gone);
  } catch (e) {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    throw new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1, 4).join(' ')} did not open port ${port}: ${(e as Error).message}\n${text.slice(-3000)}`);
  }
  return {
    child, log: () => text, alive: () => !gone(),
    async stop() {
      if (!gone()) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(8000)]);
        if (!gone()) { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } await Promise.race([exited, sleep(3000)]); }
      }
      out.end();
    },
    async kill9() {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await Promise.race([exited, sleep(3000)]);
      out.end();
    },
  };
}

export interface PgNode {
  id: string; pgPort: number; adminPort: number; sidecarPort: number;
  home: string; dataDir: string; confFile: string; pgConf: string; stateDir: string;
  sidecar: Proc | null; controller: Proc | null;
}

export interface NodeState { inRecovery: boolean; receiverStatus: string | null; senderPort: number | null; timeline: string }

export interface PgCluster {
  dir: string;
  cfgPath: string;
  nodes: PgNode[];
  systemId: string;
  node(id: string): PgNode;
  /** The multi-host connection string of the client path (read-write sessions only). */
  clientConn: string;
  /** One query on one server (TCP, as postgres), or null when it does not answer. */
  query(id: string, sql: string, timeoutMs?: number): Promise<string | null>;
  state(id: string): Promise<NodeState | null>;
  /** The servers out of recovery right now. */
  primaries(): Promise<string[]>;
  /** The instances whose controller answers GET /active with 200. */
  actives(): Promise<string[]>;
  /** Waits for one active controller whose server is the only primary, every other server streaming from it. */
  settled(timeoutMs: number): Promise<string>;
  /** synchronous_standby_names on every server (its configuration file, then a reload). */
  setSynchronous(on: boolean): Promise<void>;
  /** kill -9 of the server's postmaster (its pid from postmaster.pid); returns that pid. */
  killPostmaster(id: string): number;
  /** kill -9 of an instance's sidecar or controller, and starting it again (with its log kept). */
  kill9(id: string, what: 'sidecar' | 'controller'): Promise<void>;
  start(id: string, what: 'sidecar' | 'controller'): Promise<void>;
  pgqLog(id: string): string;
  /**
   * Timeline history files that differ between servers under one name: two servers that made
   * the same timeline id with different histories, which streaming and pg_rewind both trust.
   */
  historyConflicts(): string[];
  /** What every controller, sidecar and pgq.sh said, for a failure's report. */
  dump(): string;
  /**
   * A few lines on why one instance is where it is, for a thrown error's message (what a CI
   * report keeps when the dump on stderr is cut): pgq.sh's last lines and the controller's
   * last failures.
   */
  evidence(id: string): string;
  stopAll(): Promise<void>;
}

export interface PgClusterOptions { synchronous?: boolean; sessionTimeoutMs?: number; maxLagBytes?: number }

const IDS = ['a', 'b', 'c'];

function pgConfText(n: PgNode, synchronous: boolean): string {
  return [
    `data_directory = '${n.dataDir}'`,
    `hba_file = '${n.home}/etc/pg_hba.conf'`,
    `ident_file = '${n.home}/etc/pg_ident.conf'`,
    "listen_addresses = '127.0.0.1'",
    `port = ${n.pgPort}`,
    `unix_socket_directories = '${n.home}/sock'`,
    'max_connections = 40',
    'shared_buffers = 16MB',
    'dynamic_shared_memory_type = posix',
    'wal_level = replica',
    'max_wal_senders = 10',
    // Enough for a rewound server to find the WAL it needs on the new primary (1 MB segments here).
    'wal_keep_size = 64MB',
    'max_wal_size = 64MB',
    'min_wal_size = 8MB',
    'wal_log_hints = on',
    'hot_standby = on',
    'wal_receiver_status_interval = 1s',
    // How soon a standby tries its (new) upstream again; PostgreSQL's default is 5 s.
    'wal_retrieve_retry_interval = 200ms',
    'fsync = on',
    'synchronous_commit = on',
    `synchronous_standby_names = '${synchronous ? `ANY 1 (${IDS.join(', ')})` : ''}'`,
    "log_line_prefix = '%m [%p] '",
    '',
  ].join('\n');
}

export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const missing = postgresMissing();
  if (missing !== null) throw new Error(missing);
  const u = pgUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-pg-'));
  fs.chownSync(dir, u.uid, u.gid);
  fs.chmodSync(dir, 0o755);
  const nodes: PgNode[] = [];
  for (const id of IDS) {
    const home = path.join(dir, id);
    nodes.push({
      id, pgPort: await freePort(), adminPort: await freePort(), sidecarPort: await freePort(), home,
      dataDir: path.join(home, 'data'), confFile: path.join(dir, `${id}.conf`), pgConf: path.join(home, 'etc/postgresql.conf'), stateDir: path.join(home, 'state'),
      sidecar: null, controller: null,
    });
  }
  const clientPort = await freePort();
  let quorum: Proc | null = null;
  const cluster: PgCluster = {
    dir, cfgPath: path.join(dir, 'cluster.yaml'), nodes, systemId: '',
    node: (id) => { const n = nodes.find((x) => x.id === id); if (n === undefined) throw new Error(`no node ${id}`); return n; },
    clientConn: `host=${nodes.map(() => '127.0.0.1').join(',')} port=${nodes.map((n) => n.pgPort).join(',')} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2`,
    async query(id, sql, timeoutMs = 3000) {
      try {
        const out = await run(`${PG_BIN}/psql`, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '|', '-c', sql, `host=127.0.0.1 port=${cluster.node(id).pgPort} user=postgres dbname=postgres connect_timeout=2`], { timeoutMs });
        return out.trim();
      } catch { return null; }
    },
    async state(id) {
      const r = await cluster.query(id, "SELECT pg_is_in_recovery(), r.status, r.sender_port, (SELECT coalesce(max(substr(name, 1, 8)), '00000001') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history$') FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true");
      if (r === null) return null;
      const [rec, status, port, tli] = r.split('|');
      return { inRecovery: rec === 't', receiverStatus: status === '' ? null : status, senderPort: port === '' ? null : Number(port), timeline: tli };
    },
    async primaries() {
      const r = await Promise.all(nodes.map(async (n) => (await cluster.query(n.id, 'SELECT pg_is_in_recovery()', 1500)) === 'f' ? n.id : null));
      return r.filter((x): x is string => x !== null);
    },
    async actives() {
      const r = await Promise.all(nodes.map(async (n) => {
        try {
          const res = await request(`http://127.0.0.1:${n.adminPort}/active`, { signal: AbortSignal.timeout(1000) });
          await res.body.dump();
          return res.statusCode === 200 ? n.id : null;
        } catch { return null; }
      }));
      return r.filter((x): x is string => x !== null);
    },
    async settled(timeoutMs) {
      const end = Date.now() + timeoutMs;
      let seen = '';
      let behind: PgNode[] = [];
      for (let i = 0; i < 10_000 && Date.now() < end; i++) {
        const [actives, primaries] = await Promise.all([cluster.actives(), cluster.primaries()]);
        if (actives.length === 1 && primaries.length === 1 && actives[0] === primaries[0]) {
          const p = cluster.node(actives[0]);
          const standbys = nodes.filter((n) => n !== p);
          const others = await Promise.all(standbys.map((n) => cluster.state(n.id)));
          const streaming = (s: NodeState | null) => s !== null && s.inRecovery && s.receiverStatus === 'streaming' && s.senderPort === p.pgPort;
          if (others.every(streaming)) return p.id;
          behind = standbys.filter((_, i) => !streaming(others[i]));
          seen = `active ${p.id}; standbys ${JSON.stringify(others)}`;
        } else { behind = []; seen = `actives [${actives.join(', ')}], primaries [${primaries.join(', ')}]`; }
        await sleep(100);
      }
      throw new Error(`the cluster did not settle within ${timeoutMs} ms (one active primary, the others streaming from it): last seen ${seen}${behind.map((n) => `\n${cluster.evidence(n.id)}`).join('')}`);
    },
    async setSynchronous(on) {
      for (const n of nodes) {
        fs.writeFileSync(n.pgConf, pgConfText(n, on));
        try { await run(`${PG_BIN}/pg_ctl`, ['reload', '-D', n.dataDir, '-s'], { asPostgres: true }); } catch { /* not running: it reads the file when it starts */ }
      }
    },
    killPostmaster(id) {
      const pid = Number(fs.readFileSync(path.join(cluster.node(id).dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no postmaster pid for ${id}`);
      process.kill(pid, 'SIGKILL');
      return pid;
    },
    async kill9(id, what) {
      const n = cluster.node(id);
      await n[what]?.kill9();
      n[what] = null;
    },
    async start(id, what) {
      const n = cluster.node(id);
      if (n[what]?.alive()) throw new Error(`${id}'s ${what} is running`);
      n[what] = what === 'sidecar'
        ? await startProc(process.execPath, [SIDECAR, '--conf', n.confFile, '--port', String(n.sidecarPort), '--script', PGQ], n.sidecarPort, path.join(n.stateDir, 'sidecar.log'))
        : await startProc(process.execPath, [CLI, 'controller', '--config', cluster.cfgPath, '--service', 'pg', '--id', n.id], n.adminPort, path.join(n.stateDir, 'controller.log'));
    },
    historyConflicts() {
      const seen = new Map<string, { id: string; text: string }>();
      const out: string[] = [];
      for (const n of nodes) {
        const wal = path.join(n.dataDir, 'pg_wal');
        let names: string[] = [];
        try { names = fs.readdirSync(wal).filter((f) => /^[0-9A-F]{8}\.history$/.test(f)); } catch { continue; }
        for (const f of names) {
          let text: string;
          try { text = fs.readFileSync(path.join(wal, f), 'utf8'); } catch { continue; }
          const first = seen.get(f);
          if (first === undefined) seen.set(f, { id: n.id, text });
          else if (first.text !== text) out.push(`${f} differs between ${first.id} (${JSON.stringify(first.text)}) and ${n.id} (${JSON.stringify(text)})`);
        }
      }
      return out;
    },
    pgqLog(id) {
      try { return fs.readFileSync(path.join(cluster.node(id).stateDir, 'pgq.log'), 'utf8'); } catch { return ''; }
    },
    evidence(id) {
      const said = cluster.pgqLog(id).split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l)).slice(-8);
      const failed = (cluster.node(id).controller?.log() ?? '').split('\n').filter((l) => /failed|refus/.test(l)).slice(-3);
      return [`pgq.sh on ${id}:`, ...said, `${id}'s controller, last failures:`, ...failed].map((l) => `  ${l.slice(0, 300)}`).join('\n');
    },
    dump() {
      const tail = (s: string, k: number) => s.split('\n').slice(-k).map((l) => l.slice(0, 400)).join('\n');
      return nodes.map((n) => [
        `--- controller ${n.id}:`, tail(n.controller?.log() ?? '', 25),
        `--- sidecar ${n.id}:`, tail(n.sidecar?.log() ?? '', 15),
        `--- pgq.log ${n.id}:`, tail(cluster.pgqLog(n.id), 30),
        `--- postgresql ${n.id}:`, tail((() => { try { return fs.readFileSync(path.join(n.stateDir, 'postgresql.log'), 'utf8'); } catch { return ''; } })(), 15),
      ].join('\n')).join('\n');
    },
    async stopAll() {
      for (const n of nodes) await n.controller?.stop();
      for (const n of nodes) await n.sidecar?.stop();
      await quorum?.stop();
      for (const n of nodes) {
        // By its pid: pg_ctl stop -m immediate needs a postmaster.pid that a crash may have left stale.
        try { await run(`${PG_BIN}/pg_ctl`, ['stop', '-D', n.dataDir, '-m', 'immediate', '-s'], { asPostgres: true, timeoutMs: 20_000 }); } catch { /* not running */ }
      }
      // PGQ_TEST_KEEP=1 keeps the servers' directories (logs, data) for a look after the run.
      if (process.env.PGQ_TEST_KEEP === undefined) fs.rmSync(dir, { recursive: true, force: true }); else process.stderr.write(`kept ${dir}\n`);
    },
  };

  try {
    // The first server: a cluster made once, with the table the clients write to.
    const a = nodes[0];
    for (const n of nodes) {
      for (const sub of ['', 'etc', 'sock', 'state']) fs.mkdirSync(path.join(n.home, sub), { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(n.home, 'etc/pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n');
      fs.writeFileSync(path.join(n.home, 'etc/pg_ident.conf'), '');
      // Asynchronous while the first server is a primary alone: a synchronous commit would wait for ever.
      fs.writeFileSync(n.pgConf, pgConfText(n, false));
      for (const p of ['', 'etc', 'sock', 'state', 'etc/pg_hba.conf', 'etc/pg_ident.conf', 'etc/postgresql.conf']) fs.chownSync(path.join(n.home, p), u.uid, u.gid);
    }
    await run(`${PG_BIN}/initdb`, ['-D', a.dataDir, '-U', 'postgres', '--auth=trust', '--wal-segsize=1', '--locale=C', '-E', 'UTF8', '--no-sync'], { asPostgres: true });
    const pgctl = (n: PgNode, ...args: string[]) => run(`${PG_BIN}/pg_ctl`, [...args, '-D', n.dataDir, '-s'], { asPostgres: true });
    await pgctl(a, 'start', '-w', '-o', `-c config_file=${a.pgConf}`, '-l', path.join(a.stateDir, 'postgresql.log'));
    if ((await cluster.query('a', 'CREATE TABLE writes (id bigint PRIMARY KEY, round int NOT NULL)')) === null) throw new Error('could not create the table on the first server');
    await Promise.all(nodes.slice(1).map((n) =>
      run(`${PG_BIN}/pg_basebackup`, ['-h', '127.0.0.1', '-p', String(a.pgPort), '-U', 'postgres', '-D', n.dataDir, '-X', 'stream', '-c', 'fast', '--no-sync'], { asPostgres: true })));
    // Stopped cleanly after the copies: all three hold the same WAL, and all start as standbys.
    await pgctl(a, 'stop', '-m', 'fast');
    const control = await run(`${PG_BIN}/pg_controldata`, ['-D', a.dataDir], { asPostgres: true });
    cluster.systemId = /Database system identifier:\s+(\d+)/.exec(control)?.[1] ?? '';
    if (cluster.systemId === '') throw new Error(`no system identifier in pg_controldata's output:\n${control}`);
    if (opts.synchronous === true) for (const n of nodes) fs.writeFileSync(n.pgConf, pgConfText(n, true));

    const nodesLine = nodes.map((n) => `${n.id},127.0.0.1,${n.pgPort},http://127.0.0.1:${n.adminPort}`).join(' ');
    for (const n of nodes) {
      fs.writeFileSync(n.confFile, [
        '# pgq.sh and the sidecar for instance ' + n.id,
        `PGQ_INSTANCE=${n.id}`,
        `PGQ_NODES="${nodesLine}"`,
        `PGQ_SYSTEM_ID=${cluster.systemId}`,
        `PGQ_BINDIR=${PG_BIN}`,
        `PGQ_PGDATA=${n.dataDir}`,
        `PGQ_PGCONF=${n.pgConf}`,
        `PGQ_SOCKET_DIR=${n.home}/sock`,
        `PGQ_STATE_DIR=${n.stateDir}`,
        'PGQ_REPL_USER=postgres',
        // Long enough that a loaded run's promotion (up to ~12 s seen in CI) is found: the start-as-standby
        // path (no active found) has a known fault, the other standbys streaming the dead primary's
        // unreplicated tail from it (examples/postgresql/README.md); PGQ_TEST_FIND_ACTIVE_MS=300 takes it.
        `PGQ_FIND_ACTIVE_MS=${/^\d{1,6}$/.test(process.env.PGQ_TEST_FIND_ACTIVE_MS ?? '') ? process.env.PGQ_TEST_FIND_ACTIVE_MS : 30000}`,
        'PGQ_CATCHUP_MS=5000',
        'PGQ_FOLLOW_INTERVAL_MS=300',
        'PGQ_REWIND_AFTER_MS=4000',
        '',
      ].join('\n'));
      await run(PGQ, ['start', n.confFile]);
    }

    fs.writeFileSync(cluster.cfgPath, [
      'cluster: pg-recipe-test',
      'quorum:',
      '  tickMs: 100',
      '  session: { maxTimeoutMs: 60000 }',
      `  dataDir: ${dir}/quorum`,
      `  clientPort: ${clientPort}`,
      '  clientHost: 127.0.0.1',
      'controller:',
      `  sessionTimeoutMs: ${opts.sessionTimeoutMs ?? 3000}`,
      '  allowLoopbackWithoutToken: true',
      'services:',
      '  - name: pg',
      // A dead server's controller answers 409 and graceful fencing verifies its port is closed; with
      // its controller dead too (the host went down), the shell method's "true" counts once the
      // port is verified closed (a port that does not answer counts as open: no failover then).
      '    fencing: [graceful, { shell: "true" }]',
      '    raceDelayMs: 200',
      '    cedeMs: 3000',
      '    promotionsPerWindow: 1000',
      `    maxLagOnFailover: ${opts.maxLagBytes ?? 16 * 1024 * 1024}`,
      '    instances:',
      ...nodes.flatMap((n) => [
        `      - id: ${n.id}`,
        '        host: 127.0.0.1',
        `        adminPort: ${n.adminPort}`,
        `        servicePort: ${n.pgPort}`,
        `        health: [ { http: "http://127.0.0.1:${n.sidecarPort}/health", lagField: lag, timeoutMs: 2500 } ]`,
        '        hooks:',
        `          toActive: { command: "${PGQ} to-active ${n.confFile}", timeoutMs: 60000 }`,
        `          toStandby: { command: "${PGQ} to-standby ${n.confFile}", timeoutMs: 180000 }`,
        `          role: { command: "${PGQ} role ${n.confFile}", timeoutMs: 5000 }`,
      ]),
    ].join('\n') + '\n');
    quorum = await startProc(process.execPath, [CLI, 'quorum', '--config', cluster.cfgPath, '--id', '1'], clientPort, path.join(dir, 'quorum.log'));
    // All settled before a failure is thrown: stopAll must find every process that did start.
    for (const what of ['sidecar', 'controller'] as const) {
      const failed = (await Promise.allSettled(nodes.map((n) => cluster.start(n.id, what)))).find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    }
  } catch (e) {
    const report = cluster.dump();
    await cluster.stopAll();
    throw new Error(`${(e as Error).message}\n${report}`);
  }
  return cluster;
}

// ---- the client path ---------------------------------------------------------

export interface Ack { id: number; port: number; at: number }

/**
 * One writer: a long-lived psql fed one INSERT at a time through its stdin, a write counting as
 * acknowledged when psql prints its RETURNING row (after the commit, synchronous replication
 * included). A connection that breaks ends that psql; the write in flight is then unknown (never
 * counted as acknowledged), and a new psql connects to whichever server is read-write.
 */
export class PgWriter {
  readonly acks: Ack[] = [];
  private running = false;
  private child: ChildProcess | null = null;
  private done: Promise<void> = Promise.resolve();
  private next: number;
  connects = 0;

  constructor(private readonly conn: string, private readonly round: number, firstId: number, private readonly maxMs = 300_000) { this.next = firstId; }

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.child !== null) { try { this.child.kill('SIGKILL'); } catch { /* gone */ } }
    await this.done;
  }

  /** The first acknowledgement after `since` (performance.now()) that satisfies `pred`, waited for up to `timeoutMs`. */
  async waitAck(since: number, pred: (a: Ack) => boolean, timeoutMs: number): Promise<Ack> {
    const end = performance.now() + timeoutMs;
    for (let i = 0; i < 1_000_000; i++) {
      const a = this.acks.find((x) => x.at > since && pred(x));
      if (a !== undefined) return a;
      if (performance.now() > end) break;
      await sleep(5);
    }
    throw new Error(`no acknowledged write within ${timeoutMs} ms (acknowledged so far: ${this.acks.length}, connections ${this.connects})`);
  }

  private async loop(): Promise<void> {
    const end = performance.now() + this.maxMs;
    while (this.running && performance.now() < end) {
      this.connects++;
      await this.session();
      if (this.running) await sleep(10);
    }
  }

  /** One psql: writes until it exits. */
  private session(): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(`${PG_BIN}/psql`, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '|', this.conn], { stdio: ['pipe', 'pipe', 'pipe'] });
      this.child = child;
      let inFlight = -1;
      const send = () => {
        if (!this.running) { child.stdin!.end(); return; }
        inFlight = this.next++;
        child.stdin!.write(`INSERT INTO writes (id, round) VALUES (${inFlight}, ${this.round}) RETURNING id, inet_server_port();\n`);
      };
      child.stdin!.on('error', () => undefined);
      child.stderr!.on('data', () => undefined);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const [id, port] = line.split('|').map(Number);
        if (id !== inFlight) return;
        this.acks.push({ id, port, at: performance.now() });
        send();
      });
      child.on('error', () => resolve());
      child.on('close', () => { this.child = null; resolve(); });
      send();
    });
  }
}

// ---- one failover round, for the test and the benchmark ------------------------

export interface RoundResult {
  round: number;
  synchronous: boolean;
  oldPrimary: string;
  newPrimary: string;
  /** From the kill -9 to the first write the new primary acknowledged through the client path. */
  failoverMs: number;
  /** From the kill -9 until another server was seen out of recovery (sampled every few tens of ms). */
  promotedMs: number;
  /** From the kill -9 until the old primary streams from the new one. */
  rejoinMs: number;
  /** The new primary's to-active first took WAL from another standby that was further ahead. */
  caughtUpFromStandby: boolean;
  /** historyConflicts() once the round settled (must be none). */
  historyConflicts: string[];
  ackedBeforeKill: number;
  /** Acknowledged by the old primary's backends after the kill (the postmaster was dead, they were not yet). */
  ackedByOldAfterKill: number;
  ackedByNew: number;
  /** Acknowledged writes the new primary does not have. */
  lost: number[];
  /** Of those, the ones acknowledged after the kill (by the dead postmaster's backends). */
  lostAckedAfterKill: number[];
  /** Lost writes among those the new primary itself acknowledged (must be none). */
  lostAckedByNew: number[];
  /** The most servers seen out of recovery at one time, sampled during the round. */
  maxPrimariesSeen: number;
  samples: number;
  /**
   * How the old primary came back, from its pgq.log after the kill: 'rewind' (pg_rewind from the
   * new primary ran: its to-standby found the new primary, or its sidecar found it could not stream),
   * 'standby' (its to-standby found no active in time and started it as a standby; the sidecar then
   * pointed it at the new primary and it streamed without a rewind, which PostgreSQL allows only when
   * its WAL did not pass the new timeline's fork point), or null (neither line).
   */
  rejoinPath: 'rewind' | 'standby' | null;
  /** The old primary's pgq.log lines after the kill, for the record and for failure messages. */
  rejoinLines: string[];
  /** The old primary and the third server hold every write of the round the new primary has. */
  standbysCaughtUp: boolean;
}

export async function failoverRound(c: PgCluster, round: number, opts: { synchronous: boolean; writeMsBeforeKill?: number; timeoutMs?: number; rejoinTimeoutMs?: number; log?: (m: string) => void }): Promise<RoundResult> {
  const log = opts.log ?? (() => undefined);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // The old primary's way back (its controller's demotion, pgq.sh's rewind, a restart as a standby)
  // takes 15-23 s on a quiet machine: the bound says it happens, not how fast (the bench says that).
  const rejoinTimeoutMs = opts.rejoinTimeoutMs ?? 60_000;
  const oldPrimary = await c.settled(timeoutMs);
  const old = c.node(oldPrimary);
  if (opts.synchronous) {
    // The setting must be in force on the primary: a standby acknowledging in quorum mode.
    const end = Date.now() + timeoutMs;
    let rows: string | null = null;
    for (let i = 0; i < 1000 && Date.now() < end; i++) {
      rows = await c.query(oldPrimary, "SELECT string_agg(application_name || ':' || sync_state, ',') FROM pg_stat_replication WHERE sync_state = 'quorum'");
      if (rows !== null && rows !== '') break;
      await sleep(100);
    }
    if (rows === null || rows === '') throw new Error(`synchronous replication is not in force on ${oldPrimary} (no standby in sync_state quorum)`);
  }
  const pgqLogBefore = c.pgqLog(oldPrimary).length;
  const writer = new PgWriter(c.clientConn, round, round * 1_000_000);
  writer.start();
  let sampling = true;
  let maxPrimariesSeen = 0;
  let samples = 0;
  let tKill = Infinity;
  let promotedAt = NaN;
  const pgqLogsBefore = new Map(c.nodes.map((n) => [n.id, c.pgqLog(n.id).length]));
  const sampler = (async () => {
    for (let i = 0; i < 100_000 && sampling; i++) {
      const p = await c.primaries();
      samples++;
      maxPrimariesSeen = Math.max(maxPrimariesSeen, p.length);
      if (Number.isNaN(promotedAt) && performance.now() > tKill && p.some((x) => x !== oldPrimary)) promotedAt = performance.now();
      await sleep(20);
    }
  })();
  try {
    const t0 = performance.now();
    await writer.waitAck(t0, (a) => a.port === old.pgPort, timeoutMs);
    await sleep(opts.writeMsBeforeKill ?? 500);
    c.killPostmaster(oldPrimary);
    tKill = performance.now();
    log(`round ${round}: killed ${oldPrimary}'s postmaster (${writer.acks.length} writes acknowledged)`);
    const first = await writer.waitAck(tKill, (a) => a.port !== old.pgPort, timeoutMs);
    const failoverMs = first.at - tKill;
    const newPrimary = c.nodes.find((n) => n.pgPort === first.port)!.id;
    log(`round ${round}: first write acknowledged by ${newPrimary} ${failoverMs.toFixed(0)} ms after the kill`);
    // The old primary back as a standby streaming from the new one.
    let rejoinMs = NaN;
    const end = tKill + rejoinTimeoutMs;
    for (let i = 0; i < 10_000 && performance.now() < end; i++) {
      const s = await c.state(oldPrimary);
      if (s !== null && s.inRecovery && s.receiverStatus === 'streaming' && s.senderPort === c.node(newPrimary).pgPort) { rejoinMs = performance.now() - tKill; break; }
      await sleep(50);
    }
    if (Number.isNaN(rejoinMs)) throw new Error(`${oldPrimary} did not stream from ${newPrimary} within ${rejoinTimeoutMs} ms of the kill\n${c.evidence(oldPrimary)}`);
    log(`round ${round}: ${oldPrimary} streams from ${newPrimary} ${rejoinMs.toFixed(0)} ms after the kill`);
    await writer.waitAck(performance.now(), () => true, timeoutMs);
    sampling = false;
    await writer.stop();
    await sampler;

    const have = new Set((await c.query(newPrimary, `SELECT id FROM writes WHERE round = ${round}`, 10_000) ?? '').split('\n').filter((x) => x !== '').map(Number));
    const lost = writer.acks.filter((a) => !have.has(a.id)).map((a) => a.id);
    const lostAckedAfterKill = writer.acks.filter((a) => !have.has(a.id) && a.at > tKill).map((a) => a.id);
    const lostAckedByNew = writer.acks.filter((a) => a.port === c.node(newPrimary).pgPort && !have.has(a.id)).map((a) => a.id);
    // Every standby replays what the new primary has (bounded wait).
    let standbysCaughtUp = false;
    const want = String(have.size);
    for (let i = 0; i < 200 && !standbysCaughtUp; i++) {
      const counts = await Promise.all(c.nodes.filter((n) => n.id !== newPrimary).map((n) => c.query(n.id, `SELECT count(*) FROM writes WHERE round = ${round}`)));
      standbysCaughtUp = counts.every((x) => x === want);
      if (!standbysCaughtUp) await sleep(50);
    }
    const rejoinLines = c.pgqLog(oldPrimary).slice(pgqLogBefore).split('\n').filter((l) => l !== '');
    const rejoinPath = rejoinLines.some((l) => /pg_rewind from \S+ done/.test(l)) ? 'rewind'
      : rejoinLines.some((l) => /starting as a standby without a new upstream/.test(l)) ? 'standby' : null;
    const caughtUpFromStandby = /to-active: caught up with/.test(c.pgqLog(newPrimary).slice(pgqLogsBefore.get(newPrimary)));
    return {
      round, synchronous: opts.synchronous, oldPrimary, newPrimary, failoverMs, promotedMs: promotedAt - tKill, rejoinMs, caughtUpFromStandby,
      ackedBeforeKill: writer.acks.filter((a) => a.at <= tKill).length,
      ackedByOldAfterKill: writer.acks.filter((a) => a.at > tKill && a.port === old.pgPort).length,
      ackedByNew: writer.acks.filter((a) => a.port === c.node(newPrimary).pgPort).length,
      historyConflicts: c.historyConflicts(),
      lost, lostAckedAfterKill, lostAckedByNew, maxPrimariesSeen, samples, rejoinPath, rejoinLines, standbysCaughtUp,
    };
  } finally {
    sampling = false;
    await writer.stop();
    await sampler;
  }
}
