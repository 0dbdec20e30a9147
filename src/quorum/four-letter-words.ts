// What a quorum server tells about itself, computed once per question
// (ServerSnapshotForWords) and laid out three ways: the four-letter words'
// text in the layout ZooKeeper prints, so that scripts and monitoring written
// for ZooKeeper (nc, Nagios checks, kazoo's command(), zkServer.sh status)
// read it unchanged; the AdminServer's JSON (admin-server.ts); Prometheus
// (quorum-metrics.ts). mntr, the AdminServer's monitor and the Prometheus
// gauges are one list of facts (serverFacts), under ZooKeeper's names where
// ZooKeeper has the fact and quorate_ names where it is ours.
import type { LatencyStats } from '../io/zk-client-port.js';
import { QUORATE_VERSION } from '../version.js';

export interface ConnectionSnapshot {
  remote: string;
  sessionId: bigint | null;
  queued: number;
  received: number;
  sent: number;
  /** On the TLS client port. */
  secure: boolean;
  interestOps: number;
  establishedMs: number;
  sessionTimeoutMs: number | null;
  lastOpType: number | null;
  lastCxid: number;
  lastZxid: bigint;
  /** Wall-anchored monotonic ms of the last timed reply (0: none yet). */
  lastResponseMs: number;
  lastLatencyMs: number;
  latency: LatencyStats;
}

export interface QuorumSnapshot {
  serverId: number;
  epoch: number;
  leader: number | null;
  lastLoggedZxid: bigint;
  learners: { id: number; type: string; phase: string }[];
  /** ZooKeeper's peer_state: "leading - broadcast", "following - synchronization", "looking - election". */
  peerState: string;
  /** Voting members in the current membership. */
  voterIds: number[];
  /** Since this server last became an established leader; null when it is not one. */
  leaderUptimeMs: number | null;
  /** Sizes of the transactions this server proposed as leader (-1 before the first), as ZooKeeper's proposal_stats. */
  proposalBytes: { last: number; min: number; max: number };
  lookingCount: number;
  commitCount: number;
  proposalCount: number;
  /** The current membership, for voting_view. */
  members: { id: number; host: string; peerPort: number; electionPort: number; role: string; clientHost?: string | undefined; clientPort?: number | undefined }[];
  /** The leader's address as its server line names it (null: no leader). */
  leaderHost: string | null;
}

export interface ServerSnapshotForWords {
  mode: 'standalone' | 'leader' | 'follower' | 'observer' | 'looking';
  zxid: bigint;
  nodeCount: number;
  ephemeralsCount: number;
  dataBytes: number;
  watches: { paths: number; watches: number; watchers: number };
  latency: LatencyStats;
  packetsReceived: number;
  packetsSent: number;
  outstanding: number;
  connections: ConnectionSnapshot[];
  sessionCount: number;
  conf: Record<string, string | number | boolean>;
  env: Record<string, string>;
  dataDirBytes: number;
  logDirBytes: number;
  openFds: number | null;
  maxFds: number | null;
  /** In a replicated quorum: the epoch, who leads, and (on the leader) where each learner stands. */
  quorum: QuorumSnapshot | null;
  /** Days until the first of this server's certificates (peer, TLS client port) ends; null without TLS. */
  tlsCertDaysLeft: number | null;
  /** Since this server last started serving clients (in its current role). */
  uptimeMs: number;
  authFailed: number;
  responseBytes: { last: number; min: number; max: number };
  connectionsRejected: number;
  nonMtlsLocal: number;
  nonMtlsRemote: number;
  sessionsExpired: number;
  badFrameCloses: number;
  fsyncsOverWarning: number;
  /** The newest snapshot on disk: its zxid and when it was written (seconds since the epoch). */
  lastSnapshot: { zxid: bigint; timestampSec: number } | null;
}

/** What ZooKeeper answers on a server that is not in a quorum with a leader. */
export const NOT_SERVING = 'This ZooKeeper instance is not currently serving requests\n';

export const ZK_VERSION_TEXT = `3.8.0-quorate-${QUORATE_VERSION}`;

export const hex = (n: bigint) => '0x' + BigInt.asUintN(64, n).toString(16);

/** ZooKeeper's avg_latency: the mean with 4 decimals. */
export function avgLatency(L: LatencyStats): number {
  return L.count === 0 ? 0 : +(L.total / L.count).toFixed(4);
}

/** Where a fact exists: on every server unless it is a quorum member's, a leader's, or a TLS server's. */
export type FactScope = 'quorum' | 'leader' | 'tls';

/**
 * Every fact mntr and monitor list, and how Prometheus exposes it: a gauge or a counter under the
 * same name, or nothing for text. ZooKeeper registers these under these names in 3.8 (see its
 * ZooKeeperServer, LeaderZooKeeperServer, QuorumZooKeeperServer and ServerMetrics); quorate_ ones
 * are ours.
 */
export const FACTS = {
  version: { kind: 'text', help: 'server version' },
  server_state: { kind: 'text', help: 'standalone, leader, follower, observer' },
  peer_state: { scope: 'quorum', kind: 'text', help: 'role and phase of this quorum member' },
  avg_latency: { kind: 'gauge', help: 'mean request latency since start, ms' },
  max_latency: { kind: 'gauge', help: 'longest request latency since start, ms' },
  min_latency: { kind: 'gauge', help: 'shortest request latency since start, ms' },
  packets_received: { kind: 'gauge', help: 'client packets received' },
  packets_sent: { kind: 'gauge', help: 'client packets sent' },
  num_alive_connections: { kind: 'gauge', help: 'open client connections' },
  outstanding_requests: { kind: 'gauge', help: 'client writes waiting to be committed' },
  znode_count: { kind: 'gauge', help: 'znodes in the tree' },
  watch_count: { kind: 'gauge', help: 'watches set (path x watcher)' },
  ephemerals_count: { kind: 'gauge', help: 'ephemeral znodes' },
  approximate_data_size: { kind: 'gauge', help: 'bytes of znode data' },
  global_sessions: { kind: 'gauge', help: 'sessions' },
  local_sessions: { kind: 'gauge', help: 'local sessions (Quorate has none)' },
  uptime: { kind: 'gauge', help: 'ms since this server started serving in its current role' },
  auth_failed_count: { kind: 'gauge', help: 'failed addAuth requests' },
  last_client_response_size: { kind: 'gauge', help: 'bytes of the last reply frame' },
  min_client_response_size: { kind: 'gauge', help: 'bytes of the smallest reply frame' },
  max_client_response_size: { kind: 'gauge', help: 'bytes of the largest reply frame' },
  non_mtls_remote_conn_count: { kind: 'gauge', help: 'connections accepted from other hosts without a verified client certificate' },
  non_mtls_local_conn_count: { kind: 'gauge', help: 'connections accepted from loopback without a verified client certificate' },
  connection_rejected: { kind: 'counter', help: 'connections refused over maxClientCnxns or the connection cap' },
  stale_sessions_expired: { kind: 'counter', help: 'sessions expired by this server (as leader or standalone)' },
  quorum_size: { scope: 'quorum', kind: 'gauge', help: 'voting members in the current membership' },
  looking_count: { scope: 'quorum', kind: 'counter', help: 'times this server started a leader election' },
  commit_count: { scope: 'quorum', kind: 'counter', help: 'transactions committed by this server as leader' },
  proposal_count: { scope: 'quorum', kind: 'counter', help: 'transactions proposed by this server as leader' },
  learners: { scope: 'leader', kind: 'gauge', help: 'learners connected to this leader' },
  synced_followers: { scope: 'leader', kind: 'gauge', help: 'followers synced with this leader' },
  synced_non_voting_followers: { scope: 'leader', kind: 'gauge', help: 'synced followers outside the voting membership (a server being added)' },
  synced_observers: { scope: 'leader', kind: 'gauge', help: 'observers synced with this leader' },
  pending_syncs: { scope: 'leader', kind: 'gauge', help: 'learners connected but not yet synced' },
  leader_uptime: { scope: 'leader', kind: 'gauge', help: 'ms since this server became an established leader' },
  last_proposal_size: { scope: 'leader', kind: 'gauge', help: 'bytes of the last transaction proposed' },
  min_proposal_size: { scope: 'leader', kind: 'gauge', help: 'bytes of the smallest transaction proposed' },
  max_proposal_size: { scope: 'leader', kind: 'gauge', help: 'bytes of the largest transaction proposed' },
  open_file_descriptor_count: { kind: 'gauge', help: 'open file descriptors' },
  max_file_descriptor_count: { kind: 'gauge', help: 'file descriptor limit' },
  quorate_last_zxid: { kind: 'gauge', help: 'zxid of the last transaction applied (Prometheus: as a number; mntr: hex)' },
  quorate_server_id: { scope: 'quorum', kind: 'gauge', help: 'this server\'s id' },
  quorate_epoch: { scope: 'quorum', kind: 'gauge', help: 'the epoch this server is in' },
  quorate_leader_id: { scope: 'quorum', kind: 'gauge', help: 'the leader\'s server id (-1: none)' },
  quorate_last_logged_zxid: { scope: 'quorum', kind: 'gauge', help: 'zxid of the last transaction in this server\'s log (Prometheus: as a number; mntr: hex)' },
  quorate_txn_log_bytes: { kind: 'gauge', help: 'bytes of transaction log files (preallocated, so in steps)' },
  quorate_snapshot_bytes: { kind: 'gauge', help: 'bytes of snapshot files' },
  quorate_connections_closed_bad_frame_total: { kind: 'counter', help: 'client connections closed for a frame that could not be read (length out of bounds, malformed)' },
  quorate_tls_cert_days_left: { scope: 'tls', kind: 'gauge', help: 'days until the first of this server\'s certificates ends' },
} as const satisfies Record<string, { kind: 'text' | 'gauge' | 'counter'; help: string; scope?: FactScope }>;

export type FactName = keyof typeof FACTS;

/** One fact: its value as mntr and monitor show it, and (zxids) the number Prometheus gets instead of the hex text. */
export interface Fact { name: FactName; value: number | string; metric?: number }

/** The facts in ZooKeeper's mntr order; which appear depends on the server's role. */
export function serverFacts(s: ServerSnapshotForWords): Fact[] {
  const L = s.latency;
  const R = s.responseBytes;
  const f = (name: FactName, value: number | string, metric?: number): Fact => (metric === undefined ? { name, value } : { name, value, metric });
  const rows: Fact[] = [f('version', ZK_VERSION_TEXT), f('server_state', s.mode)];
  if (s.quorum !== null) rows.push(f('peer_state', s.quorum.peerState));
  rows.push(
    f('avg_latency', avgLatency(L)), f('max_latency', Math.round(L.max)), f('min_latency', Math.round(L.min)),
    f('packets_received', s.packetsReceived), f('packets_sent', s.packetsSent),
    f('num_alive_connections', s.connections.length), f('outstanding_requests', s.outstanding),
    f('znode_count', s.nodeCount), f('watch_count', s.watches.watches), f('ephemerals_count', s.ephemeralsCount),
    f('approximate_data_size', s.dataBytes), f('global_sessions', s.sessionCount), f('local_sessions', 0),
    f('uptime', Math.round(s.uptimeMs)), f('auth_failed_count', s.authFailed),
    f('last_client_response_size', R.last), f('min_client_response_size', R.min), f('max_client_response_size', R.max),
    f('non_mtls_remote_conn_count', s.nonMtlsRemote), f('non_mtls_local_conn_count', s.nonMtlsLocal),
    f('connection_rejected', s.connectionsRejected), f('stale_sessions_expired', s.sessionsExpired),
    f('quorate_last_zxid', hex(s.zxid), Number(s.zxid)),
    f('quorate_txn_log_bytes', s.logDirBytes), f('quorate_snapshot_bytes', s.dataDirBytes),
    f('quorate_connections_closed_bad_frame_total', s.badFrameCloses),
  );
  if (s.tlsCertDaysLeft !== null) rows.push(f('quorate_tls_cert_days_left', s.tlsCertDaysLeft));
  if (s.quorum !== null) {
    const q = s.quorum;
    rows.push(
      f('quorum_size', q.voterIds.length), f('looking_count', q.lookingCount), f('commit_count', q.commitCount), f('proposal_count', q.proposalCount),
      f('quorate_server_id', q.serverId), f('quorate_epoch', q.epoch), f('quorate_leader_id', q.leader ?? -1),
      f('quorate_last_logged_zxid', hex(q.lastLoggedZxid), Number(q.lastLoggedZxid)),
    );
    if (s.mode === 'leader') {
      const synced = q.learners.filter((l) => l.phase === 'synced');
      rows.push(f('learners', q.learners.length),
        f('synced_followers', synced.filter((l) => l.type === 'participant').length),
        f('synced_non_voting_followers', synced.filter((l) => l.type === 'participant' && !q.voterIds.includes(l.id)).length),
        f('synced_observers', synced.filter((l) => l.type === 'observer').length),
        f('pending_syncs', q.learners.length - synced.length),
        f('leader_uptime', Math.round(q.leaderUptimeMs ?? 0)),
        f('last_proposal_size', q.proposalBytes.last), f('min_proposal_size', q.proposalBytes.min), f('max_proposal_size', q.proposalBytes.max));
    }
  }
  if (s.openFds !== null) rows.push(f('open_file_descriptor_count', s.openFds));
  if (s.maxFds !== null) rows.push(f('max_file_descriptor_count', s.maxFds));
  return rows;
}

function latencyLine(s: ServerSnapshotForWords): string {
  const L = s.latency;
  const avg = L.count === 0 ? 0 : L.total / L.count;
  return `Latency min/avg/max: ${Math.round(L.min)}/${avg.toFixed(4)}/${Math.round(L.max)}`;
}

function versionLine(): string {
  return `Zookeeper version: ${ZK_VERSION_TEXT}, built on quorate`;
}

function clients(s: ServerSnapshotForWords): string {
  return s.connections.map((c) => ` /${c.remote}[1](queued=${c.queued},recved=${c.received},sent=${c.sent}${c.sessionId !== null ? `,sid=${hex(c.sessionId)}` : ''})`).join('\n');
}

export function fourLetterWordText(word: string, s: ServerSnapshotForWords): string {
  if (s.mode === 'looking' && ['srvr', 'stat', 'cons', 'wchs'].includes(word)) return NOT_SERVING;
  switch (word) {
    case 'ruok': return 'imok';
    case 'isro': return 'rw';
    case 'srvr':
    case 'stat': {
      const lines = [versionLine()];
      if (word === 'stat') lines.push('Clients:', clients(s), '');
      lines.push(latencyLine(s), `Received: ${s.packetsReceived}`, `Sent: ${s.packetsSent}`,
        `Connections: ${s.connections.length}`, `Outstanding: ${s.outstanding}`, `Zxid: ${hex(s.zxid)}`,
        `Mode: ${s.mode}`, `Node count: ${s.nodeCount}`);
      return lines.join('\n') + '\n';
    }
    case 'cons': return clients(s) + '\n\n';
    case 'conf': return Object.entries(s.conf).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    case 'envi': return 'Environment:\n' + Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
    case 'wchs': return `${s.watches.watchers} connections watching ${s.watches.paths} paths\nTotal watches:${s.watches.watches}\n`;
    case 'dirs': return `datadir_size: ${s.dataDirBytes}\nlogdir_size: ${s.logDirBytes}\n`;
    case 'mntr': return serverFacts(s).map((r) => `${r.name.startsWith('quorate_') ? r.name : `zk_${r.name}`}\t${r.value}`).join('\n') + '\n';
    default: return `${word} is not a command this server knows.\n`;
  }
}
