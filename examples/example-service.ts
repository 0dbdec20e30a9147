// The example managed service (the demo's, the tests' and the nemesis's): a
// replicated key-value store whose active instance writes every change to
// the service's journal quorum and whose standbys tail it (kv/kv-replica.ts),
// with the endpoints a Quorate controller drives.
//
//   node dist/examples/example-service.js --instance a --port 7001 \
//     --journal-nodes 1@127.0.0.1:8485,2@... [--journal kv] [--data-dir DIR] [--advertise URL]
//     [--write-every-ms N] [--snapshot-every N] [--tls-cert F --tls-key F --tls-ca F]
//
//   PUT    /kv/<key>   body = value: 200 {"txid","epoch"} once durable on a journal majority
//   DELETE /kv/<key>   the same
//   GET    /kv/<key>   200 with the value, or 404; headers x-quorate-role, x-quorate-lag,
//                      x-quorate-applied-txid. On the active a read is linearizable.
//   GET    /kv         {"role","appliedTxid","lag","data":{...}}
//   A write (or an active's read) this instance cannot answer: 503 {"error","active": URL|null}.
//   GET  /health        200 {"ok","role","lag","appliedTxid","epoch"} while alive; 503 while the
//                       controller's last word was active but the instance stepped down by itself
//                       (its journal writer fenced or cut off), so the controller demotes it, and
//                       while no majority of journal nodes answered for 3 s (it could not serve)
//                       (POST /sick fails it; POST /lag {"lag": N} makes it report N, for tests)
//   GET  /role          {"role", "epoch", "token", "written"}
//   POST /role          {"role", "epoch", "token"}: the controller's hooks; a token older than
//                       one already seen is refused (409)
// Without --journal-nodes it is a bare role-switching service (no store).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { JournalNodeAddress, JournalTls } from '../src/client/journal/node-client.js';
import { KvReplica, NotActiveError } from './kv/kv-replica.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './kv/kv-state.js';
import { KvSnapshotError } from './kv/kv-snapshot.js';

function usage(problem: string): never {
  process.stderr.write(`example-service: ${problem}\nusage: example-service --instance ID --port N [--host H] [--advertise URL] [--journal-nodes id@host:port,...] [--journal NAME] [--data-dir DIR] [--write-every-ms N] [--snapshot-every N] [--tls-cert F --tls-key F --tls-ca F]\n`);
  process.exit(2);
}

let values;
try {
  values = parseArgs({
    options: {
      instance: { type: 'string' }, port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, advertise: { type: 'string' },
      'journal-nodes': { type: 'string' }, journal: { type: 'string', default: 'example' }, 'data-dir': { type: 'string' },
      'write-every-ms': { type: 'string', default: '0' }, 'snapshot-every': { type: 'string', default: '1000' },
      'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-ca': { type: 'string' },
    },
  }).values;
} catch (e) { usage((e as Error).message); }
if (!values.instance) usage('--instance is required');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) usage(`--port must be a port number, got ${JSON.stringify(values.port ?? '')}`);
const writeEveryMs = Number(values['write-every-ms']);
if (!Number.isInteger(writeEveryMs) || writeEveryMs < 0) usage(`--write-every-ms must be a whole number of ms, got ${values['write-every-ms']}`);
const snapshotEvery = Number(values['snapshot-every']);
if (!Number.isInteger(snapshotEvery) || snapshotEvery < 1) usage(`--snapshot-every must be a positive number of edits, got ${values['snapshot-every']}`);
const instance = values.instance;
const journalNodes: JournalNodeAddress[] | null = values['journal-nodes'] === undefined ? null : values['journal-nodes'].split(',').map((s) => {
  const m = /^(\d+)@(.+):(\d+)$/.exec(s);
  if (!m) usage(`--journal-nodes: "${s}" is not id@host:port`);
  return { id: Number(m[1]), host: m[2], port: Number(m[3]) };
});
const tlsFiles = [values['tls-cert'], values['tls-key'], values['tls-ca']];
if (tlsFiles.some((f) => f !== undefined) && tlsFiles.some((f) => f === undefined)) usage('--tls-cert, --tls-key and --tls-ca go together');
const journalTls: JournalTls | null = values['tls-cert'] === undefined ? null
  : { cert: readFileSync(values['tls-cert'], 'utf8'), key: readFileSync(values['tls-key']!, 'utf8'), ca: readFileSync(values['tls-ca']!, 'utf8') };
const advertise = values.advertise ?? `http://${values.host.includes(':') ? `[${values.host}]` : values.host}:${port}`;

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} example-service ${instance}: ${msg}\n`);

let replica: KvReplica | null = null;
if (journalNodes !== null) {
  try {
    replica = new KvReplica({
      instance, url: advertise, journal: values.journal, nodes: journalNodes, tls: journalTls,
      dataDir: values['data-dir'] ?? null, snapshotEvery, catchUpTimeoutMs: 8000, log,
    });
  } catch (e) {
    if (e instanceof KvSnapshotError) { process.stderr.write(`example-service: ${e.message}\n`); process.exit(1); }
    throw e;
  }
  replica.start();
}

// Without a journal the role is just a word the controller sets.
let bareRole: 'active' | 'standby' = 'standby';
let bareEpoch: number | null = null;
let highestToken = -1n;
/** The controller's epoch of the last promotion: a newer one means the journal has fenced our writer. */
let controllerEpoch: number | null = null;
/** What the controller last asked for: active while the service stepped down by itself (its writer fenced or cut off) is a failure to report. */
let askedFor: 'active' | 'standby' | null = null;
let sick = false;
let lagOverride: number | null = null;
let ticker: NodeJS.Timeout | null = null;

// The role hook's contract is active or standby: an instance still promoting is not active yet.
const role = (): 'active' | 'standby' => (replica === null ? bareRole : replica.role === 'active' ? 'active' : 'standby');
const epoch = () => (replica === null ? bareEpoch : replica.epoch);
const lag = () => lagOverride ?? replica?.lag ?? 0;

function startTicker(): void {
  if (writeEveryMs === 0 || replica === null || ticker !== null) return;
  let busy = false;
  ticker = setInterval(() => {
    if (busy || replica?.role !== 'active') return;
    busy = true;
    replica.write({ op: 'tick' }).catch(() => undefined).finally(() => { busy = false; });
  }, writeEveryMs);
}

async function toActive(e: number | null): Promise<void> {
  if (replica === null) { bareRole = 'active'; bareEpoch = e; log(`active (epoch ${e})`); return; }
  if (replica.role === 'active' && e !== null && controllerEpoch !== null && e > controllerEpoch) await replica.demote(`the controller promotes again in epoch ${e}`);
  controllerEpoch = e;
  await replica.promote();
  startTicker();
}

async function toStandby(why: string): Promise<void> {
  if (replica === null) { bareRole = 'standby'; log(`standby: ${why}`); return; }
  await replica.demote(why);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function notActive(res: ServerResponse, e: unknown): void {
  if (e instanceof NotActiveError) return send(res, 503, { error: e.message, active: e.activeUrl ?? replica?.activeUrl ?? null });
  send(res, 500, { error: (e as Error).message });
}

function readHeaders(): Record<string, string> {
  return { 'x-quorate-role': role(), 'x-quorate-lag': String(lag()), 'x-quorate-applied-txid': String(replica?.state.appliedTxid ?? 0n) };
}

async function kv(req: IncomingMessage, res: ServerResponse, key: string | null, body: Buffer): Promise<void> {
  const r = replica!;
  if (key === null) {
    if (req.method !== 'GET') return send(res, 405, { error: 'GET /kv lists; PUT, GET and DELETE take /kv/<key>' });
    return send(res, 200, { role: r.role, appliedTxid: String(r.state.appliedTxid), lag: lag(), data: Object.fromEntries(r.state.data) });
  }
  if (key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) return send(res, 400, { error: `a key is 1 to ${MAX_KEY_BYTES} bytes` });
  try {
    if (req.method === 'GET') {
      if (r.role === 'active') await r.readBarrier();
      const v = r.state.data.get(key);
      res.writeHead(v === undefined ? 404 : 200, { 'content-type': 'application/octet-stream', ...readHeaders() });
      res.end(v ?? '');
      return;
    }
    if (req.method === 'PUT') {
      const w = await r.write({ op: 'put', key, value: body.toString('utf8') });
      return send(res, 200, { txid: String(w.txid), epoch: w.epoch });
    }
    if (req.method === 'DELETE') {
      const w = await r.write({ op: 'del', key });
      return send(res, 200, { txid: String(w.txid), epoch: w.epoch });
    }
    send(res, 405, { error: `${req.method} is not one of GET, PUT, DELETE` });
  } catch (e) { notActive(res, e); }
}

function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  if (p === '/kv' || p.startsWith('/kv/')) {
    if (replica === null) return send(res, 404, { error: 'this instance has no journal (--journal-nodes), so no store' });
    let key: string | null = null;
    if (p !== '/kv') { try { key = decodeURIComponent(p.slice(4)); } catch { return send(res, 400, { error: 'the key is not valid percent-encoding' }); } }
    void kv(req, res, key, body);
    return;
  }
  if (req.method === 'GET' && p === '/health') {
    if (sick) return send(res, 500, { ok: false });
    // The controller holds the lock for an instance that can no longer write: it must demote it, so
    // the instances race again (this one too, once its controller has said standby).
    if (askedFor === 'active' && replica !== null && replica.role === 'standby') {
      return send(res, 503, { ok: false, role: 'standby', reason: `asked to be active, but stepped down: ${replica.lastStepDown ?? 'unknown'}` });
    }
    const cutOff = replica?.journalProblem() ?? null;
    if (cutOff !== null) return send(res, 503, { ok: false, role: role(), reason: cutOff });
    return send(res, 200, { ok: true, role: role(), lag: lag(), appliedTxid: String(replica?.state.appliedTxid ?? 0n), epoch: epoch() });
  }
  if (req.method === 'POST' && p === '/lag') {
    try { lagOverride = Number((JSON.parse(body.toString()) as { lag: number }).lag); } catch { return send(res, 400, { error: 'expected {"lag": N}' }); }
    return send(res, 200, { lag: lagOverride });
  }
  if (req.method === 'POST' && p === '/sick') { sick = true; return send(res, 200, { sick }); }
  if (req.method === 'GET' && p === '/role') return send(res, 200, { role: role(), epoch: epoch(), token: highestToken < 0n ? null : String(highestToken), written: replica?.written ?? 0 });
  if (req.method === 'POST' && p === '/role') {
    let b: { role?: string; epoch?: number | null; token?: string | null };
    try { b = JSON.parse(body.toString()); } catch { return send(res, 400, { error: 'not JSON' }); }
    if (b.role !== 'active' && b.role !== 'standby') return send(res, 400, { error: 'role must be active or standby' });
    if (b.token != null) {
      let t: bigint;
      try { t = BigInt(b.token); } catch { return send(res, 400, { error: 'token must be a decimal number' }); }
      // A service without a journal refuses an older lock holder by its token.
      if (b.role === 'active' && t < highestToken) return send(res, 409, { error: `token ${t} is older than ${highestToken}` });
      if (t > highestToken) highestToken = t;
    }
    askedFor = b.role;
    const done = b.role === 'active' ? toActive(b.epoch ?? null) : toStandby('asked by the controller');
    done.then(() => send(res, 200, { role: role(), epoch: epoch() }), (e: Error) => {
      log(`could not become ${b.role}: ${e.message}`);
      send(res, 500, { error: e.message });
    });
    return;
  }
  send(res, 404, { error: 'no such endpoint' });
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_VALUE_BYTES) { send(res, 413, { error: `a body is at most ${MAX_VALUE_BYTES} bytes` }); req.destroy(); return; }
    chunks.push(c);
  });
  req.on('end', () => { if (!res.headersSent) handle(req, res, Buffer.concat(chunks)); });
});
server.on('error', (e) => { process.stderr.write(`example-service: cannot listen on ${values.host}:${port}: ${e.message}\n`); process.exit(1); });
server.listen(port, values.host, () => log(`listening on ${values.host}:${port} (${advertise})`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (ticker !== null) clearInterval(ticker);
    server.close();
    const stopping = replica === null ? Promise.resolve() : replica.stop();
    void stopping.catch(() => undefined).finally(() => process.exit(0));
  });
}
