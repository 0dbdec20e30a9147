// ZooKeeper's AdminServer (3.6+): GET <commandURL> lists the commands, GET
// <commandURL>/<name> runs one and answers JSON with ZooKeeper's keys and
// shapes, "command" and "error" included, so tools written for ZooKeeper's
// AdminServer read ours unchanged. The facts come from the same snapshot the
// four-letter words print (four-letter-words.ts); this file only lays them
// out as ZooKeeper's JSON does. Only reading commands are served: the port
// takes GET and HEAD, no request body, and answers nothing that changes the
// server (ZooKeeper's stat_reset, set_trace_mask... are refused by name).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AdminServerConfig } from '../config/quorum-config.js';
import type { Logger } from '../io/log.js';
import { ADMIN_HTTP_LIMITS as L } from '../limits.js';
import { OpCode } from '../proto/zk-constants.js';
import {
  avgLatency, serverFacts, ZK_VERSION_TEXT, type ConnectionSnapshot, type ServerSnapshotForWords,
} from './four-letter-words.js';

type Json = null | boolean | number | bigint | string | Json[] | { [k: string]: Json };
type Answer = Record<string, Json>;

/** ZooKeeper's answer for a command that needs a server in a quorum with a leader. */
export const NOT_SERVING_ERROR = 'This ZooKeeper instance is not currently serving requests';

interface Command {
  /** ZooKeeper's primary name first, then its aliases. */
  names: readonly string[];
  /** false: answered while looking too (ZooKeeper: environment, monitor). */
  serverRequired: boolean;
  run(s: ServerSnapshotForWords): Answer;
}

/** ZooKeeper 3.8's commands that change the server or that Quorate has no data for: named, and refused. */
const NOT_SERVED = [
  'connection_stat_reset', 'crst', 'observer_connection_stat_reset', 'orst', 'stat_reset', 'srst', 'set_trace_mask', 'stmk',
  'get_trace_mask', 'gtmk', 'dump', 'hash', 'initial_configuration', 'icfg', 'observers', 'obsr', 'system_properties', 'sysp',
  'watches', 'wchc', 'watches_by_path', 'wchp', 'zabstate',
];

/** ZooKeeper's Request.op2String abbreviations, as cons shows the last operation. */
const LAST_OP: Record<number, string> = {
  [OpCode.create]: 'CREA', [OpCode.create2]: 'CREA', [OpCode.createContainer]: 'CREA', [OpCode.createTTL]: 'CREA',
  [OpCode.delete]: 'DELE', [OpCode.deleteContainer]: 'DELE', [OpCode.exists]: 'EXIS', [OpCode.getData]: 'GETD',
  [OpCode.setData]: 'SETD', [OpCode.getACL]: 'GETA', [OpCode.setACL]: 'SETA', [OpCode.getChildren]: 'GETC',
  [OpCode.getChildren2]: 'GETC', [OpCode.sync]: 'SYNC', [OpCode.ping]: 'PING', [OpCode.check]: 'CHEC', [OpCode.multi]: 'MULT',
  [OpCode.multiRead]: 'MLTR', [OpCode.reconfig]: 'RECO', [OpCode.setWatches]: 'SETW', [OpCode.setWatches2]: 'SETW',
  [OpCode.checkWatches]: 'CHKW', [OpCode.removeWatches]: 'REMW', [OpCode.getEphemerals]: 'GETE',
  [OpCode.getAllChildrenNumber]: 'GETACN', [OpCode.addWatch]: 'ADDW', [OpCode.whoAmI]: 'HOMI',
  [OpCode.createSession]: 'SESS', [OpCode.closeSession]: 'CLOS', [OpCode.auth]: 'AUTH',
};

function connectionJson(c: ConnectionSnapshot, brief: boolean): Answer {
  const out: Answer = {
    remote_socket_address: c.remote, interest_ops: c.interestOps, outstanding_requests: c.queued,
    packets_received: c.received, packets_sent: c.sent,
  };
  if (brief) return out;
  const L = c.latency;
  return {
    ...out,
    session_id: c.sessionId === null ? 0 : BigInt.asIntN(64, c.sessionId),
    last_operation: c.lastOpType === null ? 'NA' : LAST_OP[c.lastOpType] ?? 'NA',
    established: c.establishedMs,
    session_timeout: c.sessionTimeoutMs ?? 0,
    last_cxid: c.lastCxid,
    last_zxid: c.lastZxid,
    last_response_time: Math.round(c.lastResponseMs),
    last_latency: Math.round(c.lastLatencyMs),
    min_latency: Math.round(L.min),
    avg_latency: L.count === 0 ? 0 : Math.round(L.total / L.count),
    max_latency: Math.round(L.max),
  };
}

function connectionsJson(s: ServerSnapshotForWords, brief: boolean): Answer {
  return {
    connections: s.connections.filter((c) => !c.secure).map((c) => connectionJson(c, brief)),
    secure_connections: s.connections.filter((c) => c.secure).map((c) => connectionJson(c, brief)),
  };
}

/** ZooKeeper's srvr/stats JSON (server_stats, client_response, and proposal_stats on a leader). */
function serverStats(s: ServerSnapshotForWords, withConnections: boolean): Answer {
  const L = s.latency;
  const buffers = (b: { last: number; min: number; max: number }): Answer => ({ last_buffer_size: b.last, min_buffer_size: b.min, max_buffer_size: b.max });
  const out: Answer = {
    version: ZK_VERSION_TEXT,
    read_only: false,
    server_stats: {
      packets_sent: s.packetsSent, packets_received: s.packetsReceived,
      fsync_threshold_exceed_count: s.fsyncsOverWarning,
      client_response_stats: buffers(s.responseBytes),
      data_dir_size: s.dataDirBytes, log_dir_size: s.logDirBytes,
      provider_null: false,
      server_state: s.mode,
      last_processed_zxid: s.zxid,
      outstanding_requests: s.outstanding,
      avg_latency: avgLatency(L), max_latency: Math.round(L.max), min_latency: Math.round(L.min),
      num_alive_client_connections: s.connections.length,
      auth_failed_count: s.authFailed,
      non_mtlsremote_conn_count: s.nonMtlsRemote,
      non_mtlslocal_conn_count: s.nonMtlsLocal,
      uptime: Math.round(s.uptimeMs),
    },
    client_response: buffers(s.responseBytes),
  };
  if (s.mode === 'leader' && s.quorum !== null) out.proposal_stats = buffers(s.quorum.proposalBytes);
  out.node_count = s.nodeCount;
  return withConnections ? { ...out, ...connectionsJson(s, true) } : out;
}

const num = (v: string | number | boolean | undefined): number => (typeof v === 'number' ? v : Number(v ?? -1));

export const COMMANDS: readonly Command[] = [
  {
    names: ['configuration', 'conf', 'config'], serverRequired: true,
    run: (s) => ({
      client_port: num(s.conf.clientPort), data_dir: String(s.conf.dataDir), data_log_dir: String(s.conf.dataLogDir),
      tick_time: num(s.conf.tickTime), max_client_cnxns: num(s.conf.maxClientCnxns),
      min_session_timeout: num(s.conf.minSessionTimeout), max_session_timeout: num(s.conf.maxSessionTimeout),
      server_id: num(s.conf.serverId),
      // -1: the backlog was not set (ZooKeeper's clientPortListenBacklog); Node's default applies.
      client_port_listen_backlog: -1,
    }),
  },
  { names: ['connections', 'cons'], serverRequired: true, run: (s) => connectionsJson(s, false) },
  { names: ['dirs'], serverRequired: true, run: (s) => ({ datadir_size: s.dataDirBytes, logdir_size: s.logDirBytes }) },
  { names: ['environment', 'env', 'envi'], serverRequired: false, run: (s) => ({ ...s.env }) },
  { names: ['is_read_only', 'isro'], serverRequired: true, run: () => ({ read_only: false }) },
  {
    names: ['last_snapshot', 'lsnp'], serverRequired: true,
    // ZooKeeper: Long.toHexString of the zxid, and -1 for both when there is no snapshot.
    run: (s) => ({ zxid: BigInt.asUintN(64, s.lastSnapshot?.zxid ?? -1n).toString(16), timestamp: s.lastSnapshot?.timestampSec ?? -1 }),
  },
  {
    names: ['leader', 'lead'], serverRequired: true,
    run: (s): Answer => (s.quorum === null
      ? { error: 'server is not initialized' }
      : { is_leader: s.mode === 'leader', leader_id: s.quorum.leader ?? -1, leader_ip: s.quorum.leaderHost ?? '' }),
  },
  { names: ['monitor', 'mntr'], serverRequired: false, run: (s) => Object.fromEntries(serverFacts(s).map((f) => [f.name, f.value])) },
  { names: ['ruok'], serverRequired: true, run: () => ({}) },
  { names: ['server_stats', 'srvr'], serverRequired: true, run: (s) => serverStats(s, false) },
  { names: ['stats', 'stat'], serverRequired: true, run: (s) => serverStats(s, true) },
  {
    names: ['voting_view'], serverRequired: true,
    run: (s) => ({
      current_config: Object.fromEntries((s.quorum?.members ?? []).filter((m) => m.role === 'participant').map((m) => [String(m.id), {
        server_addresses: [`${m.host}:${m.peerPort}`],
        election_addresses: [`${m.host}:${m.electionPort}`],
        client_address: m.clientPort === undefined ? '' : `${m.clientHost ?? '0.0.0.0'}:${m.clientPort}`,
        learner_type: m.role,
      }])),
    }),
  },
  { names: ['watch_summary', 'wchs'], serverRequired: true, run: (s) => ({ num_connections: s.watches.watchers, num_paths: s.watches.paths, num_total_watches: s.watches.watches }) },
];

const BY_NAME = new Map<string, Command>(COMMANDS.flatMap((c) => c.names.map((n) => [n, c] as const)));

/** The answer to GET <commandURL>/<name>, as ZooKeeper's CommandResponse: the command's keys, then "command" and "error". */
export function runCommand(name: string, snapshot: () => ServerSnapshotForWords): Answer {
  const cmd = BY_NAME.get(name);
  if (cmd === undefined) {
    const error = NOT_SERVED.includes(name) ? `Command not served by Quorate's AdminServer: ${name} (it is ZooKeeper's; Quorate's serves only commands that read)` : `Unknown command: ${name}`;
    return { command: name, error };
  }
  const s = snapshot();
  const primary = cmd.names[0];
  if (cmd.serverRequired && s.mode === 'looking') return { command: primary, error: NOT_SERVING_ERROR };
  const data = cmd.run(s);
  // A command may answer its own error (leader on a standalone server), as ZooKeeper's put("error", ...) does.
  const { error, ...rest } = data;
  return { ...rest, command: primary, error: error ?? null };
}

/** The list ZooKeeper's AdminServer gives at its commandURL: a link per command name, primary names only. */
export function commandList(commandUrl: string): string {
  const base = commandUrl === '/' ? '' : commandUrl;
  return COMMANDS.map((c) => c.names[0]).sort().map((n) => `<a href="${base}/${n}">${n}</a>\n<br/>\n`).join('');
}

/** JSON as Jackson writes it for ZooKeeper: 64-bit integers (zxids, session ids) in full, not rounded to a double. */
export function toJson(v: Json): string {
  const marks: string[] = [];
  const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `\u0000${marks.push(x.toString()) - 1}\u0000` : x), 2);
  return text.replace(/"\\u0000(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]);
}

export class AdminServer {
  private constructor(private readonly server: Server, readonly host: string, readonly port: number) {}

  static async start(cfg: AdminServerConfig, snapshot: () => ServerSnapshotForWords, logger: Logger): Promise<AdminServer> {
    const server = createServer({
      maxHeaderSize: L.header_bytes_max,
      headersTimeout: L.headers_ms_max,
      requestTimeout: L.request_ms_max,
      keepAliveTimeout: cfg.idleTimeoutMs,
    }, (req, res) => handle(cfg, snapshot, logger, req, res));
    server.maxConnections = L.connections_max;
    server.maxRequestsPerSocket = L.requests_per_connection_max;
    server.on('clientError', (_err, socket) => {
      // Malformed, or headers past the cap: one 400 and the socket goes.
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EACCES' ? 'not allowed to bind it' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
        reject(new Error(`cannot serve the AdminServer on ${cfg.host}:${cfg.port}: ${why}`));
      });
      server.listen(cfg.port, cfg.host, () => {
        server.removeAllListeners('error');
        server.on('error', (e) => logger.warn({ err: e.message, host: cfg.host, port: cfg.port }, 'AdminServer port error'));
        resolve();
      });
    });
    const addr = server.address();
    return new AdminServer(server, cfg.host, typeof addr === 'object' && addr !== null ? addr.port : cfg.port);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function handle(cfg: AdminServerConfig, snapshot: () => ServerSnapshotForWords, logger: Logger, req: IncomingMessage, res: ServerResponse): void {
  const send = (status: number, contentType: string, body: string, extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const text = (status: number, message: string, extra: Record<string, string> = {}) => send(status, 'text/plain; charset=utf-8', message + '\n', { connection: 'close', ...extra });
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, `method ${String(req.method).slice(0, 20)} is not allowed: the AdminServer only reads (GET)`, { allow: 'GET, HEAD' });
  // No command takes a body: one that comes with a request is refused, never read.
  if ((req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
    return text(413, 'a request body is not accepted by the AdminServer');
  }
  const url = req.url ?? '/';
  if (url.length > L.url_bytes_max) return text(414, 'request URL too long');
  const path = url.split('?')[0].replace(/\/+$/, '') || '/';
  const base = cfg.commandUrl;
  if (path === base) return send(200, 'text/html; charset=utf-8', commandList(base));
  const prefix = base === '/' ? '/' : `${base}/`;
  if (!path.startsWith(prefix) || path.length === prefix.length) return text(404, `no such path: ${path.slice(0, 200)} (the commands are under ${base})`);
  const name = path.slice(prefix.length);
  try {
    send(200, 'application/json', toJson(runCommand(name, snapshot)));
  } catch (e) {
    logger.warn({ command: name.slice(0, 100), err: (e as Error).message }, 'AdminServer command failed');
    send(500, 'application/json', toJson({ command: name.slice(0, 100), error: (e as Error).message }));
  }
}
