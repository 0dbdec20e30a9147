// The four-letter words' text, in the layout ZooKeeper prints, so that
// scripts and monitoring written for ZooKeeper (nc, Nagios checks, kazoo's
// command(), zkServer.sh status) read it unchanged.
import { QUORATE_VERSION } from '../version.js';

export interface ServerSnapshotForWords {
  mode: 'standalone' | 'leader' | 'follower' | 'observer' | 'looking';
  zxid: bigint;
  nodeCount: number;
  ephemeralsCount: number;
  dataBytes: number;
  watches: { paths: number; watches: number; watchers: number };
  latency: { min: number; max: number; total: number; count: number };
  packetsReceived: number;
  packetsSent: number;
  outstanding: number;
  connections: { remote: string; sessionId: bigint | null; queued: number; received: number; sent: number }[];
  sessionCount: number;
  conf: Record<string, string | number | boolean>;
  env: Record<string, string>;
  dataDirBytes: number;
  logDirBytes: number;
  openFds: number | null;
  maxFds: number | null;
  /** In a replicated quorum: the epoch, who leads, and (on the leader) where each learner stands. */
  quorum: { serverId: number; epoch: number; leader: number | null; lastLoggedZxid: bigint; learners: { id: number; type: string; phase: string }[] } | null;
  /** Days until the first of this server's certificates (peer, TLS client port) ends; null without TLS. */
  tlsCertDaysLeft: number | null;
}

/** What ZooKeeper answers on a server that is not in a quorum with a leader. */
export const NOT_SERVING = 'This ZooKeeper instance is not currently serving requests\n';

const hex = (n: bigint) => '0x' + BigInt.asUintN(64, n).toString(16);

function latencyLine(s: ServerSnapshotForWords): string {
  const L = s.latency;
  const avg = L.count === 0 ? 0 : L.total / L.count;
  return `Latency min/avg/max: ${Math.round(L.min)}/${avg.toFixed(4)}/${Math.round(L.max)}`;
}

function versionLine(): string {
  return `Zookeeper version: 3.8.0-quorate-${QUORATE_VERSION}, built on quorate`;
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
    case 'mntr': {
      const L = s.latency;
      const rows: [string, string | number][] = [
        ['zk_version', `3.8.0-quorate-${QUORATE_VERSION}`],
        ['zk_server_state', s.mode],
        ['zk_avg_latency', L.count === 0 ? 0 : +(L.total / L.count).toFixed(4)],
        ['zk_max_latency', Math.round(L.max)],
        ['zk_min_latency', Math.round(L.min)],
        ['zk_packets_received', s.packetsReceived],
        ['zk_packets_sent', s.packetsSent],
        ['zk_num_alive_connections', s.connections.length],
        ['zk_outstanding_requests', s.outstanding],
        ['zk_znode_count', s.nodeCount],
        ['zk_watch_count', s.watches.watches],
        ['zk_ephemerals_count', s.ephemeralsCount],
        ['zk_approximate_data_size', s.dataBytes],
        ['zk_global_sessions', s.sessionCount],
        ['zk_last_zxid', hex(s.zxid)],
      ];
      if (s.tlsCertDaysLeft !== null) rows.push(['quorate_tls_cert_days_left', s.tlsCertDaysLeft]);
      if (s.quorum !== null) {
        const q = s.quorum;
        rows.push(['quorate_server_id', q.serverId], ['quorate_epoch', q.epoch], ['quorate_leader_id', q.leader ?? -1], ['quorate_last_logged_zxid', hex(q.lastLoggedZxid)]);
        if (s.mode === 'leader') {
          const synced = q.learners.filter((l) => l.phase === 'synced');
          rows.push(['zk_learners', q.learners.length],
            ['zk_synced_followers', synced.filter((l) => l.type === 'participant').length],
            ['zk_synced_observers', synced.filter((l) => l.type === 'observer').length],
            ['zk_pending_syncs', q.learners.length - synced.length]);
        }
      }
      if (s.openFds !== null) rows.push(['zk_open_file_descriptor_count', s.openFds]);
      if (s.maxFds !== null) rows.push(['zk_max_file_descriptor_count', s.maxFds]);
      return rows.map(([k, v]) => `${k}\t${v}`).join('\n') + '\n';
    }
    default: return `${word} is not a command this server knows.\n`;
  }
}
