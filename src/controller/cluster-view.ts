// What `quorate status` shows of one service, gathered from wherever it is:
// every instance's controller (GET /v1/status), the lock and the breadcrumb
// (read from the quorum with a short session of our own), each quorum
// server's mode (srvr), and each journal node's epochs and committed txid.
// One piece of code for the operator's CLI and the controller's
// GET /v1/cluster (the status page's data: a browser cannot reach the other
// controllers' admin ports). Every call is bounded and they run side by side,
// so a view takes at most about the quorum's connect bound.
import { ZkClient } from '../client/index.js';
import { serverStatus, type ServerStatus } from '../client/four-letter-word.js';
import { JournalNodeClient } from '../client/journal/node-client.js';
import { parseConnectString } from '../client/path.js';
import type { ControllerConfig, InstanceConfig, ServiceConfigResult } from '../config/controller-config.js';
import { within } from '../io/deadline.js';
import { silentLogger } from '../io/log.js';
import { adminRequest } from './admin-client.js';

/** Bounds of one view (ms): a controller's status, the quorum session's connect, a journal node's state, a four-letter word. */
const ADMIN_MS_MAX = 2000;
const QUORUM_CONNECT_MS_MAX = 4000;
const JOURNAL_MS_MAX = 1500;
const SRVR_MS_MAX = 1000;
/** The whole view, closing included: past it GET /v1/cluster answers 503. */
export const CLUSTER_VIEW_MS_MAX = 8000;

export interface InstanceStatus { instance: InstanceConfig; reachable: boolean; error?: string; status?: Record<string, unknown> }

export interface JournalNodeView {
  id: number; address: string; reachable: boolean;
  promisedEpoch: number | null; writerEpoch: number | null; committedTxid: string | null; error: string | null;
}

export interface ClusterView {
  instances: InstanceStatus[];
  lock: unknown;
  breadcrumb: unknown;
  /** status's quorum line: `reachable (connect string)` or `UNREACHABLE (...): why`. */
  quorum: string;
  /** Each server of the connect string, as its srvr says. */
  quorumServers: ServerStatus[];
  /** status's journal line, or null for a service without a journal. */
  journal: string | null;
  journalNodes: JournalNodeView[] | null;
}

async function instanceStatus(cfg: ControllerConfig, instance: InstanceConfig): Promise<InstanceStatus> {
  try {
    const r = await adminRequest(cfg, instance, 'GET', '/v1/status', undefined, ADMIN_MS_MAX);
    // An answer that is not a status (a 401 from an admin API that wants what we do not have, a proxy's 502) is no status.
    if (r.status !== 200) return { instance, reachable: false, error: `HTTP ${r.status}${typeof r.json.error === 'string' ? `: ${r.json.error.slice(0, 200)}` : ''}` };
    return { instance, reachable: true, status: r.json };
  } catch (e) {
    return { instance, reachable: false, error: (e as Error & { code?: string }).code ?? (e as Error).message };
  }
}

/** A service's lock and breadcrumb, each with its czxid (the lock's is the fencing token), or null. */
interface ServiceRecords { lock: unknown; breadcrumb: unknown }

/**
 * The lock and the breadcrumb of each service under `basePaths`, read in one short session of our
 * own (through `cfg`'s connect string, TLS and digest), and the quorum line.
 */
async function quorumRecords(cfg: ControllerConfig, basePaths: string[]): Promise<{ records: ServiceRecords[]; quorum: string }> {
  const records: ServiceRecords[] = basePaths.map(() => ({ lock: null, breadcrumb: null }));
  let quorum = `reachable (${cfg.connectString})`;
  const zk = new ZkClient({ connectString: cfg.connectString, sessionTimeoutMs: QUORUM_CONNECT_MS_MAX, logger: silentLogger(), tls: cfg.quorumTls });
  try {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([zk.connect(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`no answer within ${QUORUM_CONNECT_MS_MAX / 1000} s`)), QUORUM_CONNECT_MS_MAX); })]).finally(() => clearTimeout(timer));
    if (cfg.digest) await zk.addAuth('digest', cfg.digest);
    const read = async (p: string) => {
      try {
        const r = await zk.getData(p);
        return { ...(JSON.parse(r.data?.toString() ?? 'null') as object), czxid: String(r.stat.czxid), ephemeralOwner: `0x${r.stat.ephemeralOwner.toString(16)}` };
      } catch { return null; }
    };
    // Pipelined on the one session: every service's two reads in one round trip or so.
    await Promise.all(basePaths.map(async (b, k) => {
      const [lock, breadcrumb] = await Promise.all([read(`${b}/lock`), read(`${b}/breadcrumb`)]);
      records[k] = { lock, breadcrumb };
    }));
  } catch (e) {
    quorum = `UNREACHABLE (${cfg.connectString}): ${(e as Error).message}`;
  } finally {
    await zk.close().catch(() => undefined);
  }
  return { records, quorum };
}

/** srvr on every server of the connect string (the controller's own way to the quorum), over TLS with controller.quorumTls. */
async function quorumServers(cfg: ControllerConfig): Promise<ServerStatus[]> {
  let hosts: { host: string; port: number }[];
  try { hosts = parseConnectString(cfg.connectString).hosts; } catch { return []; }
  // mntr is not asked: srvr alone is in the default whitelist, and a page polls.
  return Promise.all(hosts.map((h) => serverStatus(h.host, h.port, SRVR_MS_MAX, { tls: cfg.quorumTls, mntr: false })));
}

/** Each journal node's state of journal `service` (one client per node, shared by the services of one gathering). */
async function journalNodes(cfg: ControllerConfig, clients: Map<number, JournalNodeClient>): Promise<JournalNodeView[] | null> {
  if (cfg.journalNodes === null) return null;
  return Promise.all(cfg.journalNodes.map(async (n): Promise<JournalNodeView> => {
    const address = `${n.host}:${n.port}`;
    let c = clients.get(n.id);
    if (c === undefined) { c = new JournalNodeClient(n, JOURNAL_MS_MAX, { tls: cfg.journalTls }); clients.set(n.id, c); }
    try {
      const s = await c.state(cfg.service);
      return { id: n.id, address, reachable: true, promisedEpoch: s.promisedEpoch, writerEpoch: s.lastWriterEpoch, committedTxid: String(s.committedTxid), error: null };
    } catch (e) {
      const error = (e as Error).message.replace(/^journal node \d+ \([^)]*\) /, '');
      return { id: n.id, address, reachable: false, promisedEpoch: null, writerEpoch: null, committedTxid: null, error };
    }
  }));
}

function journalLine(service: string, nodes: JournalNodeView[] | null): string | null {
  if (nodes === null) return null;
  const parts = nodes.map((n) => `${n.id}@${n.address} ${n.reachable ? `epoch ${n.promisedEpoch} committed ${n.committedTxid}` : `UNREACHABLE (${n.error})`}`);
  return `journal ${service}: ${parts.join('; ')}`;
}

/** One service's part of a view: its instances, lock, breadcrumb and journal. */
export type ServiceView = Omit<ClusterView, 'quorum' | 'quorumServers'>;

/**
 * Several services of one cluster at once, every part side by side: each service's instances and
 * journal nodes, every service's lock and breadcrumb in one quorum session, and the quorum servers'
 * srvr once (the quorum, the journal nodes and the credentials are the cluster's, so the first
 * configuration's connect string, TLS and digest reach them all).
 */
export async function gatherServices(cfgs: readonly ControllerConfig[]): Promise<{ services: ServiceView[]; quorum: string; quorumServers: ServerStatus[] }> {
  if (cfgs.length === 0) throw new Error('no service to gather');
  const clients = new Map<number, JournalNodeClient>();
  try {
    const [instances, q, servers, nodes] = await Promise.all([
      Promise.all(cfgs.map((cfg) => Promise.all(cfg.instances.map((i) => instanceStatus(cfg, i))))),
      quorumRecords(cfgs[0], cfgs.map((c) => c.basePath)),
      quorumServers(cfgs[0]),
      Promise.all(cfgs.map((cfg) => journalNodes(cfg, clients))),
    ]);
    const services = cfgs.map((cfg, k): ServiceView => ({
      instances: instances[k], ...q.records[k], journal: journalLine(cfg.service, nodes[k]), journalNodes: nodes[k],
    }));
    return { services, quorum: q.quorum, quorumServers: servers };
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

/** Everything `quorate status` shows of one service, each part gathered side by side. */
export async function gatherCluster(cfg: ControllerConfig): Promise<ClusterView> {
  const g = await gatherServices([cfg]);
  return { ...g.services[0], quorum: g.quorum, quorumServers: g.quorumServers };
}

/** Each instance's status as `status --json` and GET /v1/cluster show it: id, reachable, error, then what its controller said. */
function instancesJson(v: ServiceView): Record<string, unknown>[] {
  return v.instances.map((x) => ({ id: x.instance.id, reachable: x.reachable, error: x.error, ...x.status }));
}

/** `quorate status --json`: the service, each instance's status (id, reachable, error, then what its controller said), the lock, breadcrumb and the quorum and journal lines. */
export function statusJson(cfg: ControllerConfig, v: ClusterView): Record<string, unknown> {
  return {
    service: cfg.service,
    instances: instancesJson(v),
    lock: v.lock, breadcrumb: v.breadcrumb, quorum: v.quorum, journal: v.journal,
  };
}

/** GET /v1/cluster: statusJson, and the quorum and the journal as structures (the leader, each server's mode; each node's epochs and committed txid). */
export function clusterJson(cfg: ControllerConfig, v: ClusterView, gatheredAt: Date): Record<string, unknown> {
  const leaders = v.quorumServers.filter((s) => s.mode === 'leader' || s.mode === 'standalone');
  return {
    ...statusJson(cfg, v), cluster: cfg.clusterId, gatheredAt: gatheredAt.toISOString(), servedBy: cfg.instance.id,
    quorumServers: v.quorumServers, quorumLeader: leaders.length === 1 ? leaders[0].server : null, journalNodes: v.journalNodes,
  };
}

/** One entry of GET /v1/cluster's `services`: a service as gathered, or why its configuration could not be read. */
export function serviceJson(service: string, v: ServiceView | { error: string }): Record<string, unknown> {
  if ('error' in v) return { service, error: v.error, instances: [], lock: null, breadcrumb: null, journal: null, journalNodes: null };
  return { service, instances: instancesJson(v), lock: v.lock, breadcrumb: v.breadcrumb, journal: v.journal, journalNodes: v.journalNodes };
}

/**
 * GET /v1/cluster with every service: `own`'s view as clusterJson gives it (the fields other code
 * reads), and `services`, own first then the others in the cluster file's order, each gathered in
 * the same gathering (one quorum session, one srvr per quorum server); a service whose
 * configuration did not load shows its error.
 */
export async function gatherClusterJson(own: ControllerConfig, others: readonly ServiceConfigResult[], nowMs: () => number = Date.now): Promise<Record<string, unknown>> {
  const loaded = others.filter((o): o is { service: string; cfg: ControllerConfig } => 'cfg' in o && o.service !== own.service);
  const g = await within(gatherServices([own, ...loaded.map((o) => o.cfg)]), CLUSTER_VIEW_MS_MAX);
  const view: ClusterView = { ...g.services[0], quorum: g.quorum, quorumServers: g.quorumServers };
  const json = clusterJson(own, view, new Date(nowMs()));
  const services = [serviceJson(own.service, g.services[0])];
  for (const o of others) {
    if (o.service === own.service) continue;
    const k = loaded.indexOf(o as (typeof loaded)[number]);
    services.push(serviceJson(o.service, k < 0 ? { error: (o as { error: string }).error } : g.services[k + 1]));
  }
  return { ...json, services };
}

/**
 * Answers for the status page's polls (GET /v1/cluster, GET /v1/history): one gathering per key at a
 * time, and an answer younger than `maxAgeMs` is served again, so any number of open pages costs the
 * cluster at most one gathering per key per `maxAgeMs`. At most `keysMax` answers are kept and at
 * most `keysMax` gatherings run at once (past that, get rejects: a caller cannot multiply the
 * quorum reads by varying its query).
 */
export class FreshCache<T> {
  private readonly answers = new Map<string, { atMs: number; value: T }>();
  private readonly inflight = new Map<string, Promise<T>>();

  constructor(private readonly maxAgeMs: number, private readonly keysMax: number, private readonly nowMs: () => number = Date.now) {}

  get(key: string, gather: () => Promise<T>): Promise<T> {
    const last = this.answers.get(key);
    if (last !== undefined && this.nowMs() - last.atMs < this.maxAgeMs) return Promise.resolve(last.value);
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    if (this.inflight.size >= this.keysMax) return Promise.reject(new Error(`${this.inflight.size} gatherings already running; try again`));
    const p = gather()
      .then((value) => {
        this.answers.delete(key);
        this.answers.set(key, { atMs: this.nowMs(), value });
        // Map keeps insertion order: the first key is the oldest answer.
        while (this.answers.size > this.keysMax) this.answers.delete(this.answers.keys().next().value as string);
        return value;
      })
      .finally(() => { this.inflight.delete(key); });
    this.inflight.set(key, p);
    return p;
  }
}

/**
 * Views for GET /v1/cluster: one gathering at a time, and an answer younger than `maxAgeMs` is
 * served again, so any number of open pages costs the cluster at most one view (a quorum session,
 * a status call per controller of every service, a state call per journal node and journal) per `maxAgeMs`.
 */
export class ClusterViewCache {
  private readonly cache: FreshCache<Record<string, unknown>>;

  constructor(
    private readonly cfg: () => ControllerConfig, maxAgeMs: number,
    private readonly others: () => readonly ServiceConfigResult[] = () => [], private readonly nowMs: () => number = Date.now,
  ) {
    this.cache = new FreshCache(maxAgeMs, 1, nowMs);
  }

  get(): Promise<Record<string, unknown>> {
    return this.cache.get('cluster', () => gatherClusterJson(this.cfg(), this.others(), this.nowMs));
  }
}
