// The example managed service (used by the demo and the tests): an HTTP
// server with the endpoints a Quorate controller drives, and, when it is
// given journal nodes, an active instance that writes an edit every
// --write-every-ms to the service's journal and steps down the moment the
// journal fences it. Each edit is JSON {instance, epoch, seq}: a reader of
// the journal can check that no two actives ever had writes accepted (C4).
//
//   node dist/examples/example-service.js --instance a --port 7001 \
//     [--journal-nodes 1@127.0.0.1:8485,2@...] [--journal orders] [--tls-cert F --tls-key F --tls-ca F]
//
//   GET  /health        200 while alive, with {"lag"} (a test sets it: POST /lag {"lag": N};
//                       and can make the check fail: POST /sick)
//   GET  /role          {"role": "active"|"standby", "epoch", "token", "written"}
//   POST /role          {"role", "epoch", "token"}: the controller's hooks; a token
//                       older than one already seen is refused (409)
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { JournalFencedError, QuorumJournalWriter } from '../src/client/journal/quorum-writer.js';
import type { JournalNodeAddress, JournalTls } from '../src/client/journal/node-client.js';
import { readFileSync } from 'node:fs';

const { values } = parseArgs({
  options: {
    instance: { type: 'string' }, port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' },
    'journal-nodes': { type: 'string' }, journal: { type: 'string', default: 'example' }, 'write-every-ms': { type: 'string', default: '20' },
    // Mutual TLS to the journal nodes (PEM files), when they serve HTTPS.
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-ca': { type: 'string' },
  },
});
if (!values.instance || !values.port) {
  process.stderr.write('usage: example-service --instance ID --port N [--journal-nodes id@host:port,...] [--journal NAME]\n');
  process.exit(2);
}
const instance = values.instance;
const journalNodes: JournalNodeAddress[] | null = values['journal-nodes']
  ? values['journal-nodes'].split(',').map((s) => { const m = /^(\d+)@(.+):(\d+)$/.exec(s); if (!m) throw new Error(`bad journal node ${s}`); return { id: Number(m[1]), host: m[2], port: Number(m[3]) }; })
  : null;

const tlsFiles = [values['tls-cert'], values['tls-key'], values['tls-ca']];
if (tlsFiles.some((f) => f !== undefined) && tlsFiles.some((f) => f === undefined)) {
  process.stderr.write('example-service: --tls-cert, --tls-key and --tls-ca go together\n');
  process.exit(2);
}
const journalTls: JournalTls | null = values['tls-cert'] === undefined ? null
  : { cert: readFileSync(values['tls-cert'], 'utf8'), key: readFileSync(values['tls-key']!, 'utf8'), ca: readFileSync(values['tls-ca']!, 'utf8') };

let role: 'active' | 'standby' = 'standby';
let epoch: number | null = null;
let highestToken = -1n;
let writer: QuorumJournalWriter | null = null;
let writeLoop: NodeJS.Timeout | null = null;
let written = 0;
let sick = false;
let lag = 0;
const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} example-service ${instance}: ${msg}\n`);

async function stepDown(why: string): Promise<void> {
  if (writeLoop) clearInterval(writeLoop);
  writeLoop = null;
  const w = writer;
  writer = null;
  role = 'standby';
  log(`standby: ${why}`);
  await w?.close().catch(() => undefined);
}

async function becomeActive(e: number | null): Promise<void> {
  if (journalNodes !== null) {
    // The journal decides: opening takes a newer epoch than the controller's, fencing every other writer.
    writer = await QuorumJournalWriter.open(values.journal!, { nodes: journalNodes, formatIfNew: true, timeoutMs: 1000, tls: journalTls });
    epoch = writer.epoch;
    let seq = 0;
    let busy = false;
    writeLoop = setInterval(() => {
      if (busy || writer === null) return;
      busy = true;
      const w = writer;
      w.append([Buffer.from(JSON.stringify({ instance, epoch: w.epoch, seq: seq++ }))]).then(() => { written++; }, (err: Error) => {
        if (err instanceof JournalFencedError) void stepDown(`fenced by the journal: ${err.message}`);
      }).finally(() => { busy = false; });
    }, Number(values['write-every-ms']));
  } else {
    epoch = e;
  }
  role = 'active';
  log(`active (epoch ${epoch})`);
}

const server = createServer((req, res) => {
  const send = (status: number, body: unknown) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/health') return sick ? send(500, { ok: false }) : send(200, { ok: true, lag });
    if (req.method === 'POST' && url === '/lag') {
      try { lag = Number((JSON.parse(Buffer.concat(chunks).toString()) as { lag: number }).lag); } catch { return send(400, { error: 'expected {"lag": N}' }); }
      return send(200, { lag });
    }
    if (req.method === 'GET' && url === '/role') return send(200, { role, epoch, token: highestToken < 0n ? null : String(highestToken), written });
    if (req.method === 'POST' && url === '/sick') { sick = true; return send(200, { sick }); }
    if (req.method === 'POST' && url === '/role') {
      let body: { role?: string; epoch?: number | null; token?: string | null };
      try { body = JSON.parse(Buffer.concat(chunks).toString()); } catch { return send(400, { error: 'not JSON' }); }
      if (body.role !== 'active' && body.role !== 'standby') return send(400, { error: 'role must be active or standby' });
      if (body.token != null) {
        const t = BigInt(body.token);
        // A service without a journal refuses an older lock holder by its token.
        if (body.role === 'active' && t < highestToken) return send(409, { error: `token ${t} is older than ${highestToken}` });
        if (t > highestToken) highestToken = t;
      }
      const done = body.role === 'active' ? (role === 'active' ? Promise.resolve() : becomeActive(body.epoch ?? null)) : stepDown('asked by the controller');
      done.then(() => send(200, { role, epoch }), (e: Error) => { void stepDown(`could not become active: ${e.message}`); send(500, { error: e.message }); });
      return;
    }
    send(404, { error: 'no such endpoint' });
  });
});
server.listen(Number(values.port), values.host, () => log(`listening on ${values.host}:${values.port}`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => { void stepDown('stopping').finally(() => process.exit(0)); });
