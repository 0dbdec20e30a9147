// The PostgreSQL recipe's sidecar, one beside each PostgreSQL instance:
//
//   node dist/examples/postgresql/sidecar.js --conf /etc/quorate/pg-a.conf --port 7811
//
// GET /health answers what the controller's health check needs: 200 with
//   {"role", "lag"} while PostgreSQL answers and agrees with the controllers,
//   503 otherwise. lag is in bytes of WAL: how far this standby's replay is
//   behind the furthest WAL position it knows of on its timeline (its
//   upstream's as last reported, and every other instance it can reach), so
//   that the service's maxLagOnFailover keeps a standby far behind out of the
//   race; a primary's is 0.
// GET /role answers {"role": "active"|"standby"} from pg_is_in_recovery().
// GET /status shows what the sidecar last saw and did.
//
// And it keeps the standbys following: a controller runs hooks only on the
// instance it promotes or demotes, so a third instance would go on waiting for
// the dead primary. Every PGQ_FOLLOW_INTERVAL_MS it asks the controllers who
// is active; a standby that does not stream from the active is pointed at it
// (pgq.sh follow), and one that still does not stream from it after
// PGQ_REWIND_AFTER_MS (its WAL went past the point where the active's timeline
// forked) is rewound (pgq.sh rejoin). A primary while another instance's
// controller is active is rewound the same way: an old primary started by
// hand must not take writes beside the real one.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const KNOWN_KEYS = ['PGQ_INSTANCE', 'PGQ_NODES', 'PGQ_SYSTEM_ID', 'PGQ_BINDIR', 'PGQ_PGDATA', 'PGQ_PGCONF', 'PGQ_PGLOG', 'PGQ_SOCKET_DIR', 'PGQ_OS_USER',
  'PGQ_SUPERUSER', 'PGQ_REPL_USER', 'PGQ_REWIND_USER', 'PGQ_MONITOR_USER', 'PGQ_DBNAME', 'PGQ_PASSFILE', 'PGQ_STATE_DIR', 'PGQ_FIND_ACTIVE_MS',
  'PGQ_CATCHUP_MS', 'PGQ_START_TIMEOUT_S', 'PGQ_CURL_OPTS', 'PGQ_FOLLOW_INTERVAL_MS', 'PGQ_REWIND_AFTER_MS'] as const;

/** Bounds: a query, a controller's answer, one pgq.sh action (a rewind of a big data directory takes a while). */
const QUERY_TIMEOUT_MS = 3000;
const ADMIN_TIMEOUT_MS = 800;
const ACTION_TIMEOUT_MS = 300_000;
/** A primary must look like a second one for this many loops in a row before it is demoted. */
const ROGUE_LOOPS_MIN = 2;

export class ConfError extends Error {}

export interface PgNode { id: string; host: string; port: number; admin: string }
export interface SidecarConf {
  instance: string; nodes: PgNode[]; bindir: string; monitorUser: string; dbname: string; passfile: string | null;
  followIntervalMs: number; rewindAfterMs: number; tls: { ca?: string; cert?: string; key?: string } | null;
}

/** The file pgq.sh reads, with the same grammar (KEY=value, no expansions) and the same errors. */
export function parseConf(file: string, text: string): SidecarConf {
  const v = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(line)) return;
    const m = /^\s*(PGQ_[A-Z_]+)=(.*)$/.exec(line);
    if (m === null) throw new ConfError(`${file} line ${i + 1}: expected PGQ_NAME=value, got: ${line.slice(0, 80)}`);
    const [, key, rawVal] = m;
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) throw new ConfError(`${file} line ${i + 1}: unknown key ${key} (known: ${KNOWN_KEYS.join(' ')})`);
    const q = /^"([^"\\$`]*)"\s*$/.exec(rawVal) ?? /^'([^']*)'\s*$/.exec(rawVal) ?? /^([^\s"'\\$`]*)\s*$/.exec(rawVal);
    if (q === null) throw new ConfError(`${file} line ${i + 1}: the value of ${key} must be one word, or quoted without $, \` or \\`);
    v.set(key, q[1]);
  });
  const need = (k: string, what: string) => {
    const x = v.get(k);
    if (x === undefined || x === '') throw new ConfError(`${file}: ${k} is missing (${what})`);
    return x;
  };
  const num = (k: string, dflt: number) => {
    const x = v.get(k);
    if (x === undefined || x === '') return dflt;
    if (!/^\d{1,7}$/.test(x)) throw new ConfError(`${file}: ${k} must be a whole number, got ${x}`);
    return Number(x);
  };
  const instance = need('PGQ_INSTANCE', "this instance's id in the cluster file");
  const nodes = need('PGQ_NODES', 'every instance: "id,pghost,pgport,adminURL id,..."').split(/\s+/).filter((e) => e !== '').map((e) => {
    const [id, host, port, admin, ...rest] = e.split(',');
    if (rest.length > 0 || !/^[A-Za-z0-9_.-]+$/.test(id ?? '') || !/^[A-Za-z0-9_.:-]+$/.test(host ?? '') || !/^\d{1,5}$/.test(port ?? '') || !/^https?:\/\/[A-Za-z0-9_.:[\]-]+\/?$/.test(admin ?? '')) {
      throw new ConfError(`${file}: PGQ_NODES entry "${e}" is not id,pghost,pgport,http(s)://adminhost:adminport`);
    }
    return { id, host, port: Number(port), admin: admin.replace(/\/$/, '') };
  });
  if (!nodes.some((n) => n.id === instance)) throw new ConfError(`${file}: PGQ_INSTANCE ${instance} is not among PGQ_NODES (${nodes.map((n) => n.id).join(' ')})`);
  need('PGQ_SYSTEM_ID', "the cluster's database system identifier");
  const bindir = v.get('PGQ_BINDIR') || '/usr/lib/postgresql/15/bin';
  if (!fs.existsSync(`${bindir}/psql`)) throw new ConfError(`${file}: PGQ_BINDIR ${bindir} has no psql`);
  return {
    instance, nodes, bindir,
    monitorUser: v.get('PGQ_MONITOR_USER') || 'postgres', dbname: v.get('PGQ_DBNAME') || 'postgres', passfile: v.get('PGQ_PASSFILE') || null,
    followIntervalMs: Math.max(100, num('PGQ_FOLLOW_INTERVAL_MS', 500)), rewindAfterMs: num('PGQ_REWIND_AFTER_MS', 5000),
    tls: curlTls(file, v.get('PGQ_CURL_OPTS') ?? ''),
  };
}

/** The admin API's TLS, from the curl flags pgq.sh passes: --cacert, --cert and --key are all the sidecar knows. */
function curlTls(file: string, opts: string): SidecarConf['tls'] {
  const words = opts.split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return null;
  const tls: { ca?: string; cert?: string; key?: string } = {};
  for (let i = 0; i < words.length; i += 2) {
    const flag = words[i];
    const p = words[i + 1];
    const key = flag === '--cacert' ? 'ca' : flag === '--cert' ? 'cert' : flag === '--key' ? 'key' : null;
    if (key === null || p === undefined) throw new ConfError(`${file}: PGQ_CURL_OPTS: the sidecar understands only --cacert FILE, --cert FILE and --key FILE, got ${flag}`);
    try { tls[key] = fs.readFileSync(p, 'utf8'); } catch (e) { throw new ConfError(`${file}: PGQ_CURL_OPTS ${flag} ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  }
  return tls;
}

/** "X/Y" as a number of bytes (exact below 2^53: 8 PiB of WAL). */
export function lsnBytes(lsn: string): number {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (m === null) throw new Error(`not an LSN: ${lsn}`);
  return parseInt(m[1], 16) * 2 ** 32 + parseInt(m[2], 16);
}

export interface LocalState {
  inRecovery: boolean; replay: number; receive: number | null; timeline: number;
  receiver: { status: string; host: string; port: number; latestEnd: number | null } | null;
}

const LOCAL_SQL = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
  pg_last_wal_receive_lsn(),
  (SELECT coalesce(max(substr(name, 1, 8)), '00000001') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history$'),
  r.status, r.sender_host, r.sender_port, r.latest_end_lsn
FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`;

export function parseLocal(line: string): LocalState {
  const f = line.trim().split('|');
  if (f.length !== 8 || (f[0] !== 't' && f[0] !== 'f')) throw new Error(`unexpected answer: ${line.slice(0, 200)}`);
  const [rec, pos, recv, tli, status, host, port, latest] = f;
  return {
    inRecovery: rec === 't', replay: pos === '' ? 0 : lsnBytes(pos), receive: recv === '' ? null : lsnBytes(recv), timeline: parseInt(tli, 16),
    receiver: status === '' ? null : { status, host, port: Number(port), latestEnd: latest === '' ? null : lsnBytes(latest) },
  };
}

const PEER_SQL = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN coalesce(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), '0/0') ELSE pg_current_wal_lsn() END,
  (SELECT coalesce(max(substr(name, 1, 8)), '00000001') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history$')`;

function runPsql(c: SidecarConf, n: PgNode, sql: string): Promise<{ ok: true; out: string } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '2' };
    if (c.passfile !== null) env.PGPASSFILE = c.passfile;
    const child = spawn(`${c.bindir}/psql`, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '|', '-c', sql,
      `host=${n.host} port=${n.port} user=${c.monitorUser} dbname=${c.dbname}`], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < 2000) err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), QUERY_TIMEOUT_MS);
    child.on('error', (e) => { clearTimeout(timer); resolve({ ok: false, reason: e.message }); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ ok: true, out });
      else resolve({ ok: false, reason: signal === 'SIGKILL' ? `no answer within ${QUERY_TIMEOUT_MS} ms` : (err.trim().split('\n').at(-1) ?? `psql exit ${code}`) });
    });
  });
}

export class Sidecar {
  private readonly me: PgNode;
  private readonly others: PgNode[];
  private readonly agent: Agent | undefined;
  private timer: NodeJS.Timeout | null = null;
  private peersTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The furthest WAL end an upstream reported, per upstream: it stays known after that upstream dies. */
  private upstreamEnd: { key: string; lsn: number } | null = null;
  private peers = new Map<string, { inRecovery: boolean; position: number; timeline: number; at: number }>();
  private actives: string[] = [];
  private activesAt = 0;
  private notFollowingSince: number | null = null;
  private rogueLoops = 0;
  private action: Promise<void> | null = null;
  private last: { local: LocalState | string | null; action: string | null; actionAt: string | null } = { local: null, action: null, actionAt: null };

  constructor(private readonly c: SidecarConf, private readonly conf: string, private readonly script: string, private readonly log: (msg: string) => void) {
    this.me = c.nodes.find((n) => n.id === c.instance)!;
    this.others = c.nodes.filter((n) => n !== this.me);
    this.agent = c.tls === null ? undefined : new Agent({ connect: c.tls });
  }

  start(): void {
    void this.loop();
    void this.peersLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.peersTimer !== null) clearTimeout(this.peersTimer);
    // An interrupted pg_rewind can leave a data directory that needs a new base backup.
    await this.action;
  }

  private async local(): Promise<LocalState | string> {
    const r = await runPsql(this.c, this.me, LOCAL_SQL);
    if (!r.ok) return `PostgreSQL does not answer on ${this.me.host}:${this.me.port}: ${r.reason}`;
    try { return parseLocal(r.out); } catch (e) { return (e as Error).message; }
  }

  async activesNow(): Promise<string[]> {
    const r = await Promise.all(this.c.nodes.map(async (n) => {
      try {
        const res = await request(`${n.admin}/active`, { signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS), dispatcher: this.agent });
        await res.body.dump();
        return res.statusCode === 200 ? n.id : null;
      } catch { return null; }
    }));
    return r.filter((x): x is string => x !== null);
  }

  /** The WAL position this standby is measured against, and so its lag. */
  lagOf(s: LocalState): number {
    if (!s.inRecovery) return 0;
    let ref = Math.max(s.replay, s.receive ?? 0);
    if (s.receiver !== null && s.receiver.latestEnd !== null) {
      const key = `${s.receiver.host}:${s.receiver.port}`;
      if (this.upstreamEnd === null || this.upstreamEnd.key !== key || s.receiver.latestEnd > this.upstreamEnd.lsn) this.upstreamEnd = { key, lsn: s.receiver.latestEnd };
    }
    if (this.upstreamEnd !== null) ref = Math.max(ref, this.upstreamEnd.lsn);
    // A peer on an older timeline is on a branch that was left behind: its WAL is not ahead of us.
    for (const p of this.peers.values()) if (p.timeline >= s.timeline) ref = Math.max(ref, p.position);
    return ref - s.replay;
  }

  private async refreshActives(): Promise<void> {
    this.actives = await this.activesNow();
    this.activesAt = Date.now();
  }

  /** Why PostgreSQL and the controllers disagree (checked again live: the cached view may be a loop old), or null. */
  private async conflict(s: LocalState): Promise<string | null> {
    // Before the loop's first answer (just started) the cache says nothing: ask now.
    if (Date.now() - this.activesAt > 2 * this.c.followIntervalMs + ADMIN_TIMEOUT_MS) await this.refreshActives();
    const suspect = s.inRecovery ? this.actives.includes(this.me.id) : this.actives.some((a) => a !== this.me.id);
    if (!suspect) return null;
    await this.refreshActives();
    if (s.inRecovery && this.actives.includes(this.me.id)) return 'its controller is active but PostgreSQL is in recovery (a standby)';
    const other = this.actives.find((a) => a !== this.me.id);
    if (!s.inRecovery && other !== undefined) return `PostgreSQL is a primary while ${other}'s controller is active: a second primary`;
    return null;
  }

  async health(): Promise<{ status: number; body: Record<string, unknown> }> {
    const s = await this.local();
    if (typeof s === 'string') return { status: 503, body: { healthy: false, problem: s } };
    const problem = await this.conflict(s);
    const body = {
      healthy: problem === null, role: s.inRecovery ? 'standby' : 'active', lag: this.lagOf(s), timeline: s.timeline,
      streaming: s.receiver === null ? null : { status: s.receiver.status, from: `${s.receiver.host}:${s.receiver.port}` },
      ...(problem === null ? {} : { problem }),
    };
    return { status: problem === null ? 200 : 503, body };
  }

  async role(): Promise<{ status: number; body: Record<string, unknown> }> {
    const s = await this.local();
    if (typeof s === 'string') return { status: 503, body: { error: s } };
    return { status: 200, body: { role: s.inRecovery ? 'standby' : 'active' } };
  }

  status(): Record<string, unknown> {
    return { instance: this.me.id, actives: this.actives, peers: Object.fromEntries(this.peers), upstreamEnd: this.upstreamEnd, notFollowingSince: this.notFollowingSince, ...this.last };
  }

  private async loop(): Promise<void> {
    const t0 = Date.now();
    try { await this.tick(); } catch (e) { this.log(`loop: ${(e as Error).message}`); }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.loop(), Math.max(0, this.c.followIntervalMs - (Date.now() - t0)));
  }

  /** The peers' positions feed only the lag: on their own loop, so that a slow peer never delays following the active. */
  private async peersLoop(): Promise<void> {
    const t0 = Date.now();
    try { await this.refreshPeers(); } catch (e) { this.log(`peers: ${(e as Error).message}`); }
    if (this.stopped) return;
    this.peersTimer = setTimeout(() => void this.peersLoop(), Math.max(0, this.c.followIntervalMs - (Date.now() - t0)));
  }

  private async tick(): Promise<void> {
    const [s] = await Promise.all([this.local(), this.refreshActives()]);
    const actives = this.actives;
    this.last.local = s;
    if (typeof s === 'string') { this.notFollowingSince = null; this.rogueLoops = 0; return; }
    // The grace period before a rewind counts from after an action ends (run() restarts it then): a
    // loaded host may take seconds to re-point, and a needless rewind costs a restart. Forgetting it
    // here instead made every tick after a follow start another follow, so a standby whose WAL went
    // past the active's fork point was re-pointed for ever and never rewound.
    if (this.action !== null) { this.rogueLoops = 0; return; }
    const other = actives.length === 1 && actives[0] !== this.me.id ? this.c.nodes.find((n) => n.id === actives[0])! : null;
    if (!s.inRecovery) {
      this.notFollowingSince = null;
      this.rogueLoops = actives.some((a) => a !== this.me.id) ? this.rogueLoops + 1 : 0;
      if (this.rogueLoops >= ROGUE_LOOPS_MIN) {
        this.rogueLoops = 0;
        this.run('rejoin', `a primary while ${actives.filter((a) => a !== this.me.id).join(', ')} is active`);
      }
      return;
    }
    this.rogueLoops = 0;
    if (other === null) { this.notFollowingSince = null; return; }
    const r = s.receiver;
    if (r !== null && r.status === 'streaming' && r.host === other.host && r.port === other.port) { this.notFollowingSince = null; return; }
    const now = Date.now();
    if (this.notFollowingSince === null) {
      this.notFollowingSince = now;
      this.run('follow', `not streaming from the active ${other.id}`);
    } else if (now - this.notFollowingSince >= this.c.rewindAfterMs) {
      this.notFollowingSince = null;
      this.run('rejoin', `still not streaming from the active ${other.id} after ${this.c.rewindAfterMs} ms (its WAL went past the active's fork point?)`);
    }
  }

  private async refreshPeers(): Promise<void> {
    await Promise.all(this.others.map(async (n) => {
      const r = await runPsql(this.c, n, PEER_SQL);
      if (!r.ok) { this.peers.delete(n.id); return; }
      const [rec, pos, tli] = r.out.trim().split('|');
      try { this.peers.set(n.id, { inRecovery: rec === 't', position: lsnBytes(pos), timeline: parseInt(tli, 16), at: Date.now() }); } catch { this.peers.delete(n.id); }
    }));
  }

  /** One pgq.sh action at a time, in its own process group, bounded. */
  private run(cmd: 'follow' | 'rejoin', why: string): void {
    this.log(`${cmd}: ${why}`);
    this.last.action = `${cmd}: ${why}`;
    this.last.actionAt = new Date().toISOString();
    this.action = new Promise<void>((resolve) => {
      const child = spawn(this.script, [cmd, this.conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
      const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, ACTION_TIMEOUT_MS);
      const done = (what: string) => {
        clearTimeout(timer);
        this.log(`${cmd}: ${what}`);
        this.action = null;
        // Not streaming yet after a follow: the grace period before a rewind starts now.
        this.notFollowingSince = cmd === 'follow' && this.notFollowingSince !== null ? Date.now() : null;
        resolve();
      };
      child.on('error', (e) => done(`could not run ${this.script}: ${e.message}`));
      child.on('close', (code, signal) => done(code === 0 ? 'done' : `failed (${code ?? signal}): ${err.trim().split('\n').at(-1) ?? ''}`));
    });
  }
}

function usage(msg: string): never {
  process.stderr.write(`sidecar: ${msg}\nusage: node sidecar.js --conf FILE --port N [--host 127.0.0.1] [--script PATH/pgq.sh]\n`);
  process.exit(2);
}

function send(res: ServerResponse, r: { status: number; body: Record<string, unknown> }): void {
  res.writeHead(r.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(r.body) + '\n');
}

async function main(argv: string[]): Promise<void> {
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!['--conf', '--port', '--host', '--script'].includes(argv[i])) usage(`unknown option ${argv[i]}`);
    if (argv[i + 1] === undefined) usage(`${argv[i]} needs a value`);
    opts.set(argv[i], argv[i + 1]);
  }
  const conf = opts.get('--conf') ?? usage('--conf is required');
  const port = Number(opts.get('--port') ?? usage('--port is required'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) usage(`--port must be 1-65535, got ${opts.get('--port')}`);
  const host = opts.get('--host') ?? '127.0.0.1';
  // From dist/examples/postgresql/ back to the checkout's examples/postgresql/pgq.sh.
  const script = opts.get('--script') ?? fileURLToPath(new URL('../../../examples/postgresql/pgq.sh', import.meta.url));
  if (!fs.existsSync(script)) usage(`no pgq.sh at ${script}: give --script`);
  let text: string;
  try { text = fs.readFileSync(conf, 'utf8'); } catch (e) { usage(`cannot read ${conf}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
  let c: SidecarConf;
  try { c = parseConf(conf, text); } catch (e) { if (e instanceof ConfError) usage(e.message); throw e; }
  const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} sidecar ${c.instance}: ${msg}\n`);
  const sidecar = new Sidecar(c, conf, script, log);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://sidecar').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, { status: 405, body: { error: `method ${req.method} is not allowed` } });
    const answer = path === '/health' ? sidecar.health() : path === '/role' ? sidecar.role() : path === '/status' ? Promise.resolve({ status: 200, body: sidecar.status() }) : null;
    if (answer === null) return send(res, { status: 404, body: { error: `no such endpoint: ${path}` } });
    answer.then((r) => send(res, r), (e: Error) => send(res, { status: 500, body: { error: e.message } }));
  });
  server.on('error', (e) => { log(`cannot listen on ${host}:${port}: ${e.message}`); process.exit(1); });
  server.listen(port, host, () => log(`listening on ${host}:${port}; following the active every ${c.followIntervalMs} ms`));
  sidecar.start();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => { log(`${sig}: stopping (after any action in progress)`); server.close(); void sidecar.stop().then(() => process.exit(0)); });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  await main(process.argv.slice(2));
}
