// The controller's admin API (node:http): GET /v1/status (JSON), /health
// (the controller runs), /active (200 only on the active instance, answered
// from the lease at the moment of the request — for load balancers, as
// Patroni's /primary), /standby, /metrics (Prometheus text); POST /v1/cede, /v1/fence (graceful fencing
// by the next active: go standby and say whether the service confirmed it),
// /v1/failover (make this instance active: the others cede), /v1/pause,
// /v1/resume. Write endpoints need the bearer token (or loopback, when the
// configuration allows it). GET / is the status page (status-page.ts), fed by
// GET /v1/cluster: what `quorate status` shows, gathered here (cluster-view.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { TLSSocket } from 'node:tls';
import { certificateExpiry, certificateNames, type CertificateExpiry, rotateServerCertificate } from '../io/tls-identity.js';
import { maintenanceInForce, type Maintenance, type ScheduledFailover } from './maintenance.js';
import { METRICS_PATH, sendMetrics } from '../io/metrics-http.js';
import { adminRequest } from './admin-client.js';
import { ClusterViewCache, FreshCache } from './cluster-view.js';
import { serviceBasePath, type ServiceConfigResult } from '../config/controller-config.js';
import type { Controller } from './controller.js';
import { STATUS_PAGE_HEADERS, statusPageAsset } from './status-page.js';
import { controllerMetrics, type ControllerMetrics } from './controller-metrics.js';

const BODY_MAX = 16 * 1024;
const FENCE_WAIT_MS = 10_000;
/** GET /v1/cluster answers from a view at most this old (any number of open status pages cost one view per period). */
const CLUSTER_VIEW_AGE_MS_MAX = 1000;
/** Distinct GET /v1/history queries answered from the cache, and read from the quorum at once. */
const HISTORY_QUERIES_MAX = 32;

export class AdminApi {
  private server!: Server;
  /** performance.now() -> wall clock, for status times. */
  private readonly wallOffset = Date.now() - performance.now();
  private readonly clusterViews: ClusterViewCache;
  /** GET /v1/history answers by query, as briefly as the cluster view (each is a quorum read per entry). */
  private readonly histories = new FreshCache<Record<string, unknown>>(CLUSTER_VIEW_AGE_MS_MAX, HISTORY_QUERIES_MAX);

  /** GET /metrics: Prometheus text, readable without a token as every GET here is. */
  readonly metrics: ControllerMetrics;

  /** `others`: the cluster file's other services, as last loaded (at start and at each SIGHUP), for the status page. */
  constructor(private readonly c: Controller, private readonly others: () => readonly ServiceConfigResult[] = () => []) {
    this.metrics = controllerMetrics(c);
    this.clusterViews = new ClusterViewCache(() => this.c.cfg, CLUSTER_VIEW_AGE_MS_MAX, others);
  }

  listen(port: number, host: string): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse) => { void this.handle(req, res); };
    const tls = this.c.cfg.tls;
    // clientAuth need: no certificate from the CA, no handshake; want: asked for, and checked per request.
    this.server = tls === null ? createServer(handler) : createHttpsServer({
      cert: tls.cert, key: tls.key, ...(tls.ca === null ? {} : { ca: tls.ca }),
      requestCert: tls.clientAuth !== 'none', rejectUnauthorized: tls.clientAuth === 'need',
    }, handler);
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  /** A certificate rotation (SIGHUP): new connections get the new certificate; calls to other controllers present it. */
  reloadTls(t: NonNullable<Controller['cfg']['tls']>, journalTls: Controller['cfg']['journalTls']): void {
    const cfg = this.c.cfg;
    if (cfg.tls === null) throw new Error('controller.tls was turned on: that needs a restart');
    if ((journalTls === null) !== (cfg.journalTls === null)) throw new Error('journal.tls was turned on or off: that needs a restart');
    rotateServerCertificate(this.server, t);
    // The admin client keys its agents by this object: a new one is a new agent with the new certificate.
    cfg.tls = t;
    cfg.journalTls = journalTls;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  status(): Record<string, unknown> {
    const t = performance.now();
    const s = this.c.core.status(t);
    const i = this.c.cfg.instance;
    const wall = (x: number | null | undefined) => (x == null ? null : new Date(this.wallOffset + x).toISOString());
    return {
      service: this.c.cfg.service, instance: i.id, address: `${i.host}:${i.adminPort}`, priority: i.priority, noFailover: i.noFailover,
      active: this.c.core.isActive(t), phase: s.phase, health: s.health, healthReason: s.healthReason,
      session: s.session, sessionId: s.sessionId, sessionTimeoutMs: s.sessionTimeoutMs, paused: s.paused, epoch: s.epoch, fencingToken: s.lockCzxid,
      lastTransition: s.lastTransition && { ...s.lastTransition, at: wall(s.lastTransition.at) },
      lastFailure: s.lastFailure, lastFence: this.c.lastFence, lag: s.lag, maxLagOnFailover: this.c.cfg.maxLagOnFailover, notRacing: s.notRacing, leaseValidUntil: wall(s.leaseValidUntil), standbyConfirmed: s.standbyConfirmed,
      failsafe: s.failsafe && { since: wall(s.failsafe.since), validUntil: wall(s.failsafe.validUntil) },
      resources: this.c.resources.status(),
      maintenance: this.c.maintenance && { ...this.c.maintenance, inForce: maintenanceInForce(this.c.maintenance, Date.now()) },
      historyPending: this.c.history.pending,
      scheduledFailover: this.c.scheduled,
      certificates: this.certificates(),
    };
  }

  /** When this controller's certificates end (an operator sees a rotation coming in status). */
  private certificates(): Record<string, CertificateExpiry | null> {
    const out: Record<string, CertificateExpiry | null> = {};
    if (this.c.cfg.tls !== null) out['controller.tls'] = certificateExpiry(this.c.cfg.tls.cert, Date.now());
    if (this.c.cfg.journalTls !== null) out['journal.tls'] = certificateExpiry(this.c.cfg.journalTls.cert, Date.now());
    return out;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(text);
  }

  /** The verified client certificate's common name and the host names it carries, or null. */
  private clientIdentity(req: IncomingMessage): { cn: string | null; names: Set<string> } | null {
    const s = req.socket as TLSSocket;
    if (this.c.cfg.tls === null || !(s instanceof TLSSocket) || !s.authorized) return null;
    const names = certificateNames(s);
    const cn = s.getPeerCertificate().subject?.CN;
    return { cn: Array.isArray(cn) ? cn.join(',') : cn ?? null, names };
  }

  private authorized(req: IncomingMessage): string | null {
    const id = this.clientIdentity(req);
    // An operator's certificate, or another controller's (one issued for an instance's host), may change roles.
    if (id !== null && id.cn !== null && this.c.cfg.adminOperators.includes(id.cn)) return null;
    if (id !== null && this.c.cfg.instances.some((i) => id.names.has(i.host.toLowerCase()))) return null;
    const readOnly = id !== null && id.cn !== null && this.c.cfg.adminReaders.includes(id.cn) ? `the certificate CN=${id.cn} may read status, not change roles` : null;
    const token = this.c.cfg.adminToken;
    const header = req.headers.authorization ?? '';
    // The scheme is case-insensitive (RFC 7235).
    if (token !== null && /^bearer /i.test(header)) {
      const a = Buffer.from(header.slice(7).trim());
      const b = Buffer.from(token);
      if (a.length === b.length && timingSafeEqual(a, b)) return null;
      return 'wrong bearer token';
    }
    if (readOnly !== null) return readOnly;
    const addr = req.socket.remoteAddress ?? '';
    if (this.c.cfg.allowLoopbackWithoutToken && (addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1')) return null;
    return token === null ? 'write endpoints need controller.adminTokenFile (or allowLoopbackWithoutToken for loopback)' : 'missing bearer token (Authorization: Bearer ...)';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://controller');
      const t = performance.now();
      // Load balancers' health checks use HEAD or OPTIONS too (HAProxy's httpchk defaults to OPTIONS).
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') {
        // The status page (status-page.ts): static, readable as /v1/status is.
        const page = statusPageAsset(url.pathname);
        if (page !== null) { res.writeHead(200, { ...STATUS_PAGE_HEADERS, 'content-type': page.type, 'content-length': Buffer.byteLength(page.body) }); res.end(page.body); return; }
        switch (url.pathname) {
          case '/v1/status': return this.send(res, 200, this.status());
          case '/v1/cluster': return this.send(res, 200, await this.clusterViews.get().catch((e: Error) => { throw Object.assign(new Error(`cannot gather the cluster's status: ${e.message}`), { status: 503 }); }));
          case METRICS_PATH: return await sendMetrics(this.metrics.registry, req, res);
          case '/v1/history': {
            const q = historyQuery(url.searchParams);
            if (typeof q === 'string') return this.send(res, 400, { error: q });
            const service = this.historyService(url.searchParams.get('service'));
            if (typeof service !== 'object') return this.send(res, 400, { error: service });
            const key = `${service.name} ${q.since?.toISOString() ?? ''} ${q.limit ?? ''}`;
            try {
              return this.send(res, 200, await this.histories.get(key, async () => ({ service: service.name, entries: await this.c.readHistory(q, service.basePath) })));
            } catch (e) {
              return this.send(res, 503, { error: `cannot read the history from the quorum: ${(e as Error).message}` });
            }
          }
          case '/health': return this.send(res, 200, { controller: 'running', health: this.c.core.status(t).health });
          case '/active': { const a = this.c.core.isActive(t); return this.send(res, a ? 200 : 503, { active: a }); }
          case '/standby': {
            const s = this.c.core.status(t);
            const ok = !this.c.core.isActive(t) && s.health === 'healthy' && ['standby', 'watching', 'contending'].includes(s.phase);
            return this.send(res, ok ? 200 : 503, { standby: ok, phase: s.phase, health: s.health });
          }
        }
        return this.send(res, 404, { error: `no such endpoint: GET ${url.pathname}` });
      }
      if (req.method !== 'POST') return this.send(res, 405, { error: `method ${req.method} is not allowed` });
      const denied = this.authorized(req);
      if (denied !== null) return this.send(res, /may read status/.test(denied) ? 403 : 401, { error: denied });
      const notOurs = notAnApiClient(req);
      if (notOurs !== null) return this.send(res, notOurs.status, { error: notOurs.error });
      const body = await readJson(req);
      switch (url.pathname) {
        case '/v1/pause': {
          const m = maintenanceRequest(body, Date.now());
          if (typeof m === 'string') return this.send(res, 400, { error: m });
          try { await this.c.setMaintenance(m); } catch (e) {
            return this.send(res, 503, { error: `maintenance not recorded in the quorum (so not paused): ${(e as Error).message}` });
          }
          return this.send(res, 200, this.status());
        }
        case '/v1/resume': {
          try { await this.c.clearMaintenance(); } catch (e) {
            return this.send(res, 503, { error: `maintenance not cleared in the quorum (so still paused): ${(e as Error).message}` });
          }
          return this.send(res, 200, this.status());
        }
        case '/v1/cede': {
          const forMs = typeof body.forMs === 'number' && body.forMs >= 0 && body.forMs <= 600_000 ? body.forMs : this.c.cfg.cedeMs;
          this.c.feed({ kind: 'cede', forMs });
          return this.send(res, 200, this.status());
        }
        case '/v1/fence': {
          const st = this.c.core.status(performance.now());
          // A dead or hung service cannot confirm anything: say so at once, so the next method runs.
          if (st.health === 'unhealthy' || st.health === 'not-responding') return this.send(res, 409, { error: `the service is ${st.health} (${st.healthReason}): standby cannot be confirmed` });
          this.c.note('warn', 'asked to go standby by the next active (graceful fencing)');
          this.c.feed({ kind: 'cede', forMs: this.c.cfg.cedeMs });
          const confirmed = await this.waitStandby();
          return this.send(res, confirmed ? 200 : 409, confirmed ? { standby: true } : { error: `not confirmed standby: ${this.c.core.status(performance.now()).lastFailure ?? 'demotion did not finish'}` });
        }
        case '/v1/failover': return this.send(res, 202, await this.failoverToMe(body.force === true));
        case '/v1/schedule-failover': {
          const f = scheduleRequest(body, Date.now(), this.c.cfg.instances.map((x) => x.id));
          if (typeof f === 'string') return this.send(res, 400, { error: f });
          await this.c.scheduleFailover(f);
          return this.send(res, 200, { scheduled: f });
        }
        case '/v1/cancel-failover': {
          const by = typeof body.by === 'string' && body.by.length > 0 && body.by.length <= BY_MAX ? body.by : 'unknown';
          return this.send(res, 200, { cancelled: await this.c.cancelScheduledFailover(by) });
        }
      }
      return this.send(res, 404, { error: `no such endpoint: POST ${url.pathname}` });
    } catch (e) {
      return this.send(res, (e as { status?: number }).status ?? 500, { error: (e as Error).message });
    }
  }

  /** GET /v1/history's service: this one (by default) or another of the cluster file's, or what is wrong. */
  private historyService(name: string | null): { name: string; basePath: string } | string {
    const own = this.c.cfg;
    if (name === null || name === own.service) return { name: own.service, basePath: own.basePath };
    const known = [own.service, ...this.others().map((o) => o.service).filter((s) => s !== own.service)];
    if (!this.others().some((o) => o.service === name)) {
      return `service: ${JSON.stringify(name.slice(0, 100))} is not a service of cluster ${own.clusterId} (services: ${known.join(', ')})`;
    }
    return { name, basePath: serviceBasePath(own.clusterId, name) };
  }

  private async waitStandby(): Promise<boolean> {
    const end = performance.now() + FENCE_WAIT_MS;
    while (performance.now() < end) {
      const s = this.c.core.status(performance.now());
      if (s.phase === 'standby' || s.phase === 'watching') return s.standbyConfirmed !== false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /** The target of a manual failover: refuses when unhealthy or noFailover; asks every other instance to cede. */
  private async failoverToMe(force: boolean): Promise<Record<string, unknown>> {
    const s = this.c.core.status(performance.now());
    const i = this.c.cfg.instance;
    if (i.noFailover) throw Object.assign(new Error(`instance ${i.id} is noFailover: it is never made active`), { status: 409 });
    if (s.health !== 'healthy') throw Object.assign(new Error(`instance ${i.id} is ${s.health}: ${s.healthReason}`), { status: 409 });
    if (this.c.core.isActive(performance.now())) return { already: true, ...this.status() };
    const lag = this.c.core.lagProblem(performance.now());
    if (lag !== null && !force) throw Object.assign(new Error(`instance ${i.id}: ${lag}; failover --force overrides`), { status: 409 });
    this.c.feed({ kind: 'failoverTarget', forMs: this.c.cfg.cedeMs, force });
    const ceded: Record<string, string> = {};
    await Promise.all(this.c.cfg.instances.filter((x) => x.id !== i.id).map(async (x) => {
      try {
        const r = await adminRequest(this.c.cfg, x, 'POST', '/v1/cede', { forMs: this.c.cfg.cedeMs }, 5000);
        ceded[x.id] = r.status === 200 ? 'ceded' : `answered ${r.status}`;
      } catch (e) {
        ceded[x.id] = `unreachable: ${(e as Error & { code?: string }).code ?? (e as Error).message}`;
      }
    }));
    return { ceded, ...this.status() };
  }
}

/**
 * Write endpoints take JSON from API clients, never a request a web page made: any page in a
 * browser on the host can POST text/plain to 127.0.0.1 without a preflight, which the loopback
 * bypass would otherwise take as the operator. A browser always names the page's Origin on such a
 * request, and cannot send application/json cross-origin without a preflight we never allow.
 */
function notAnApiClient(req: IncomingMessage): { status: number; error: string } | null {
  const origin = req.headers.origin;
  if (origin !== undefined) return { status: 403, error: `requests from web pages are refused (Origin: ${String(origin).slice(0, 100)}); use the quorate CLI or an API client` };
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') return { status: 415, error: `write endpoints take application/json (got ${type === '' ? 'no content type' : type})` };
  return null;
}

const REASON_MAX = 500;
const BY_MAX = 100;

/** POST /v1/pause's body: {reason?, until? (ISO time, future), by?}. A string says what is wrong. */
export function maintenanceRequest(body: Record<string, unknown>, nowMs: number): Maintenance | string {
  const { reason, until, by } = body;
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > REASON_MAX)) return `reason: expected a string of at most ${REASON_MAX} characters`;
  if (by !== undefined && (typeof by !== 'string' || by.length === 0 || by.length > BY_MAX)) return `by: expected a string of 1 to ${BY_MAX} characters`;
  let untilIso: string | null = null;
  if (until !== undefined && until !== null) {
    const t = typeof until === 'string' ? Date.parse(until) : NaN;
    if (Number.isNaN(t)) return 'until: expected a time such as 2026-12-04T02:00:00Z';
    if (t <= nowMs) return `until: ${String(until)} is not in the future`;
    untilIso = new Date(t).toISOString();
  }
  return { by: (by as string | undefined) ?? 'unknown', at: new Date(nowMs).toISOString(), reason: (reason as string | undefined) ?? null, until: untilIso };
}

/** How far ahead a switchover may be scheduled. */
const SCHEDULE_AHEAD_MAX_MS = 30 * 86_400_000;

/** POST /v1/schedule-failover's body: {at (ISO, future, within 30 days), to? (an instance), by?}. */
export function scheduleRequest(body: Record<string, unknown>, nowMs: number, instances: string[]): ScheduledFailover | string {
  const { at, to, by } = body;
  const t = typeof at === 'string' ? Date.parse(at) : NaN;
  if (Number.isNaN(t)) return 'at: expected a time such as 2026-12-04T02:00:00Z';
  if (t <= nowMs) return `at: ${String(at)} is not in the future`;
  if (t - nowMs > SCHEDULE_AHEAD_MAX_MS) return `at: ${String(at)} is more than 30 days ahead`;
  if (to !== undefined && to !== null && (typeof to !== 'string' || !instances.includes(to))) return `to: ${JSON.stringify(to)} is not an instance of this service (${instances.join(', ')})`;
  if (by !== undefined && (typeof by !== 'string' || by.length === 0 || by.length > BY_MAX)) return `by: expected a string of 1 to ${BY_MAX} characters`;
  return { at: new Date(t).toISOString(), to: (to as string | undefined) ?? null, by: (by as string | undefined) ?? 'unknown', createdAt: new Date(nowMs).toISOString() };
}

/** GET /v1/history's query: since (ISO time), limit (1..10000). */
function historyQuery(p: URLSearchParams): { since?: Date; limit?: number } | string {
  const out: { since?: Date; limit?: number } = {};
  const since = p.get('since');
  if (since !== null) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) return 'since: expected a time such as 2026-12-03T03:00:00Z';
    out.since = new Date(t);
  }
  const limit = p.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 10_000) return 'limit: expected an integer from 1 to 10000';
    out.limit = n;
  }
  return out;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > BODY_MAX) throw Object.assign(new Error(`a body of more than ${BODY_MAX} bytes`), { status: 413 });
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw Object.assign(new Error(`the body is not a JSON object: ${(e as Error).message}`), { status: 400 });
  }
}
