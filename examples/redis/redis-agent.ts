// The Redis recipe's agent: one beside each redis-server and its Quorate
// controller, on the same host. It reads the service's instances from the
// cluster file (each instance's host and servicePort are its redis-server, its
// adminPort its controller) and does what the controller cannot:
//
//   - it makes this Redis follow the active: a controller runs its to-standby
//     hook only when it demotes its own instance, so a standby that was never
//     active (or a redis-server restarted under a running controller) would
//     keep replicating from a dead primary, or from nobody. Every interval the
//     agent asks the controllers who is active and, if that is another
//     instance, points this Redis at it (REPLICAOF). It never promotes.
//   - it reports health with the replication lag for maxLagOnFailover: bytes
//     of replication stream this Redis lacks compared with the most advanced
//     Redis it can reach among the instances that may be promoted. A replica
//     cannot know the offset of a primary that just died; its peers' frozen
//     offsets are what tells which replica holds the most.
//
//   node dist/examples/redis/redis-agent.js --config cluster.yaml --service redis --id a
//     --listen 127.0.0.1:7101 [--interval-ms 200] [--redis-timeout-ms 2000] [--peer-timeout-ms 300]
//
//   GET /health      200 {"ok","role","offset","lag","master","behind"}; 503 {"ok":false,"error"}
//                    while its Redis does not answer, loads its data set or runs a full
//                    resynchronization, or is a replica while its controller says active
//                    (restarted under it: the controller must demote it, not keep it active)
//   GET /role        {"role": "active"|"standby"} from INFO replication (the role hook; an
//                    http role hook also lets another controller verify a fence)
//   GET /v1/primary  "host port" of the Redis whose controller answers /active with 200
//                    (404 when there is none, 409 when more than one says so)
//   GET /v1/behind   "bytes peer": how far this Redis is behind the most advanced peer
//                    (to-active.sh refuses a promotion that would drop acknowledged writes)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { loadControllerConfig, type ControllerConfig, type InstanceConfig } from '../../src/config/controller-config.js';
import { ConfigError } from '../../src/config/errors.js';
import { adminRequest } from '../../src/controller/admin-client.js';
import { bytesBehind, readReplication, redisCall, type ReplicationView } from './resp.js';

const USAGE = 'usage: redis-agent --config FILE --service NAME --id ID --listen HOST:PORT [--interval-ms N] [--redis-timeout-ms N] [--peer-timeout-ms N]';

function usage(problem: string): never {
  process.stderr.write(`redis-agent: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

function positiveInt(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v ?? '')}`);
  return n;
}

let values;
try {
  values = parseArgs({
    options: {
      config: { type: 'string' }, service: { type: 'string' }, id: { type: 'string' }, listen: { type: 'string' },
      'interval-ms': { type: 'string', default: '200' }, 'redis-timeout-ms': { type: 'string', default: '2000' }, 'peer-timeout-ms': { type: 'string', default: '300' },
    },
  }).values;
} catch (e) { usage((e as Error).message); }
if (!values.config) usage('--config is required');
if (!values.service) usage('--service is required');
if (!values.id) usage('--id is required');
const listen = /^(.+):(\d+)$/.exec(values.listen ?? '');
if (listen === null) usage(`--listen must be HOST:PORT, got ${JSON.stringify(values.listen ?? '')}`);
const listenHost = listen[1].replace(/^\[|\]$/g, '');
const listenPort = positiveInt('listen port', listen[2], 1, 65535);
const intervalMs = positiveInt('interval-ms', values['interval-ms'], 20, 60_000);
// Longer than the controller's check timeout: a Redis that is slow to answer is then seen as a
// timeout (needing several in a row), not as a failure that demotes it at once.
const redisTimeoutMs = positiveInt('redis-timeout-ms', values['redis-timeout-ms'], 50, 60_000);
const peerTimeoutMs = positiveInt('peer-timeout-ms', values['peer-timeout-ms'], 20, 10_000);

let cfg: ControllerConfig;
try {
  cfg = loadControllerConfig(values.config, values.service, null);
} catch (e) {
  if (e instanceof ConfigError) usage(e.message);
  throw e;
}
const me = cfg.instances.find((i) => i.id === values.id) ?? usage(`service ${values.service} has no instance ${values.id} (listed: ${cfg.instances.map((i) => i.id).join(', ')})`);
for (const i of cfg.instances) {
  if (i.servicePort === null) usage(`instance ${i.id} of service ${values.service} has no servicePort: the recipe takes it as the port of its redis-server`);
}
const portOf = (i: InstanceConfig) => i.servicePort!;
const peers = cfg.instances.filter((i) => i !== me);

const log = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), agent: me.id, msg, ...fields })}\n`);

/** Which instances' controllers answer /active with 200 now (unreachable ones count as not). */
async function activeInstances(among: InstanceConfig[]): Promise<InstanceConfig[]> {
  const r = await Promise.all(among.map(async (i) => {
    try { return (await adminRequest(cfg, i, 'GET', '/active', undefined, peerTimeoutMs)).status === 200 ? i : null; } catch { return null; }
  }));
  return r.filter((x): x is InstanceConfig => x !== null);
}

async function ownView(): Promise<ReplicationView> {
  return readReplication(me.host, portOf(me), redisTimeoutMs);
}

/**
 * Bytes this Redis lacks against the most advanced Redis it can reach among the instances that
 * may be promoted (noFailover ones never will: a lead they hold must not stop every failover).
 */
async function behind(mine: ReplicationView): Promise<{ bytes: number; peer: string | null; perPeer: Record<string, number | string> }> {
  const perPeer: Record<string, number | string> = {};
  let bytes = 0;
  let peer: string | null = null;
  await Promise.all(peers.filter((p) => !p.noFailover).map(async (p) => {
    try {
      const b = bytesBehind(mine, await readReplication(p.host, portOf(p), peerTimeoutMs));
      perPeer[p.id] = b;
      if (b > bytes) { bytes = b; peer = p.id; }
    } catch (e) {
      perPeer[p.id] = `unreachable: ${(e as Error).message}`;
    }
  }));
  return { bytes, peer, perPeer };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function health(res: ServerResponse): Promise<void> {
  let mine: ReplicationView;
  try { mine = await ownView(); } catch (e) { return send(res, 503, { ok: false, error: (e as Error).message }); }
  if (mine.loading) return send(res, 503, { ok: false, role: mine.role, error: 'loading its data set' });
  if (mine.syncing) return send(res, 503, { ok: false, role: mine.role, error: 'a full resynchronization is running: its data set is the old one until it ends' });
  if (mine.role === 'slave') {
    const [self] = await activeInstances([me]);
    if (self !== undefined) return send(res, 503, { ok: false, role: mine.role, error: 'its controller says active but Redis is a replica (restarted?): it must be demoted, not kept active' });
  }
  const b = await behind(mine);
  return send(res, 200, {
    ok: true, role: mine.role, offset: mine.offset, lag: b.bytes, aheadPeer: b.peer, behind: b.perPeer,
    master: mine.master === null ? null : `${mine.master.host}:${mine.master.port}`, link: mine.master === null ? null : mine.master.linkUp ? 'up' : 'down',
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `method ${req.method} is not allowed (GET only)` });
  try {
    switch (url.pathname) {
      case '/health': return await health(res);
      case '/role': {
        const mine = await ownView();
        return send(res, 200, { role: mine.role === 'master' ? 'active' : 'standby' });
      }
      case '/v1/primary': {
        const a = await activeInstances(cfg.instances);
        if (a.length === 0) return send(res, 404, 'none\n');
        if (a.length > 1) return send(res, 409, `more than one controller says active: ${a.map((i) => i.id).join(' ')}\n`);
        return send(res, 200, `${a[0].host} ${portOf(a[0])} ${a[0].id}\n`);
      }
      case '/v1/behind': {
        const b = await behind(await ownView());
        return send(res, 200, `${b.bytes} ${b.peer ?? '-'}\n`);
      }
    }
    return send(res, 404, { error: `no such endpoint: GET ${url.pathname}` });
  } catch (e) {
    return send(res, 503, { error: (e as Error).message });
  }
}

/** One pass of following the active: REPLICAOF it when another instance is active and this Redis does not follow it. */
async function follow(): Promise<void> {
  const [self] = await activeInstances([me]);
  // Our own controller drives our role through the hooks; while it says active we touch nothing.
  if (self !== undefined) return;
  const others = await activeInstances(peers);
  if (others.length !== 1) return;
  const target = others[0];
  const mine = await ownView();
  if (mine.role === 'slave' && mine.master !== null && mine.master.host === target.host && mine.master.port === portOf(target)) return;
  const was = mine.role === 'master' ? 'a primary' : `a replica of ${mine.master?.host}:${mine.master?.port}`;
  const r = await redisCall(me.host, portOf(me), ['REPLICAOF', target.host, portOf(target)], redisTimeoutMs);
  log(`following the active instance ${target.id} (${target.host}:${portOf(target)}); this Redis was ${was}`, { answer: r });
}

let lastProblem = '';
async function loop(): Promise<void> {
  for (;;) {
    const t0 = performance.now();
    try {
      await follow();
      lastProblem = '';
    } catch (e) {
      // Said once, not every interval: a dead Redis is the controller's business, not a log flood.
      const p = (e as Error).message;
      if (p !== lastProblem) log(`cannot follow the active: ${p}`);
      lastProblem = p;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (performance.now() - t0))));
  }
}

const server = createServer((req, res) => { void handle(req, res); });
server.on('error', (e) => { process.stderr.write(`redis-agent: cannot listen on ${listenHost}:${listenPort}: ${e.message}\n`); process.exit(1); });
server.listen(listenPort, listenHost, () => {
  log(`listening on ${listenHost}:${listenPort}; Redis ${me.host}:${portOf(me)}; peers ${peers.map((p) => `${p.id}=${p.host}:${portOf(p)}`).join(' ')}`);
  // The first pass, like every other, one interval on: an agent restarted with a long interval
  // (an operator keeping it from re-pointing its Redis for a while) does not act at once.
  setTimeout(() => void loop(), intervalMs);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => { server.close(); process.exit(0); });
