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
import type { ControllerConfig, InstanceConfig } from '../config/controller-config.js';
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
    return { instance, reachable: true, status: r.json };
  } catch (e) {
    return { instance, reachable: false, error: (e as Error & { code?: string }).code ?? (e as Error).message };
  }
}

/** The lock and the breadcrumb, each with its czxid (the lock's is the fencing token), or null; and the quorum line. */
async function quorumRecords(cfg: ControllerConfig): Promise<{ lock: unknown; breadcrumb: unknown; quorum: string }> {
  let lock: unknown = null;
  let breadcrumb: unknown = null;
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
    lock = await read(`${cfg.basePath}/lock`);
    breadcrumb = await read(`${cfg.basePath}/breadcrumb`);
  } catch (e) {
    quorum = `UNREACHABLE (${cfg.connectString}): ${(e as Error).message}`;
  } finally {
    await zk.close().catch(() => undefined);
  }
  return { lock, breadcrumb, quorum };
}

/** srvr on every server of the connect string (the controller's own way to the quorum), over TLS with controller.quorumTls. */
async function quorumServers(cfg: ControllerConfig): Promise<ServerStatus[]> {
  let hosts: { host: string; port: number }[];
  try { hosts = parseConnectString(cfg.connectString).hosts; } catch { return []; }
  // mntr is not asked: srvr alone is in the default whitelist, and a page polls.
  return Promise.all(hosts.map((h) => serverStatus(h.host, h.port, SRVR_MS_MAX, { tls: cfg.quorumTls, mntr: false })));
}

async function journalNodes(cfg: ControllerConfig): Promise<JournalNodeView[] | null> {
  if (cfg.journalNodes === null) return null;
  return Promise.all(cfg.journalNodes.map(async (n): Promise<JournalNodeView> => {
    const address = `${n.host}:${n.port}`;
    const c = new JournalNodeClient(n, JOURNAL_MS_MAX, { tls: cfg.journalTls });
    try {
      const s = await c.state(cfg.service);
      return { id: n.id, address, reachable: true, promisedEpoch: s.promisedEpoch, writerEpoch: s.lastWriterEpoch, committedTxid: String(s.committedTxid), error: null };
    } catch (e) {
      const error = (e as Error).message.replace(/^journal node \d+ \([^)]*\) /, '');
      return { id: n.id, address, reachable: false, promisedEpoch: null, writerEpoch: null, committedTxid: null, error };
    } finally { await c.close(); }
  }));
}

function journalLine(service: string, nodes: JournalNodeView[] | null): string | null {
  if (nodes === null) return null;
  const parts = nodes.map((n) => `${n.id}@${n.address} ${n.reachable ? `epoch ${n.promisedEpoch} committed ${n.committedTxid}` : `UNREACHABLE (${n.error})`}`);
  return `journal ${service}: ${parts.join('; ')}`;
}

/** Everything `quorate status` shows, each part gathered side by side. */
export async function gatherCluster(cfg: ControllerConfig): Promise<ClusterView> {
  const [instances, records, servers, nodes] = await Promise.all([
    Promise.all(cfg.instances.map((i) => instanceStatus(cfg, i))), quorumRecords(cfg), quorumServers(cfg), journalNodes(cfg),
  ]);
  return { instances, ...records, quorumServers: servers, journal: journalLine(cfg.service, nodes), journalNodes: nodes };
}

/** `quorate status --json`: the service, each instance's status (id, reachable, error, then what its controller said), the lock, breadcrumb and the quorum and journal lines. */
export function statusJson(cfg: ControllerConfig, v: ClusterView): Record<string, unknown> {
  return {
    service: cfg.service,
    instances: v.instances.map((x) => ({ id: x.instance.id, reachable: x.reachable, error: x.error, ...x.status })),
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

/**
 * Views for GET /v1/cluster: one gathering at a time, and an answer younger than `maxAgeMs` is
 * served again, so any number of open pages costs the cluster at most one view (a quorum session,
 * a status call per controller, a state call per journal node) per `maxAgeMs`.
 */
export class ClusterViewCache {
  private last: { atMs: number; json: Record<string, unknown> } | null = null;
  private inflight: Promise<Record<string, unknown>> | null = null;

  constructor(private readonly cfg: () => ControllerConfig, private readonly maxAgeMs: number, private readonly nowMs: () => number = Date.now) {}

  get(): Promise<Record<string, unknown>> {
    if (this.last !== null && this.nowMs() - this.last.atMs < this.maxAgeMs) return Promise.resolve(this.last.json);
    if (this.inflight === null) {
      const cfg = this.cfg();
      this.inflight = within(gatherCluster(cfg), CLUSTER_VIEW_MS_MAX)
        .then((v) => {
          const atMs = this.nowMs();
          const json = clusterJson(cfg, v, new Date(atMs));
          this.last = { atMs, json };
          return json;
        })
        .finally(() => { this.inflight = null; });
    }
    return this.inflight;
  }
}
