// The quorum server's configuration, normalized: whatever the source (the
// cluster YAML file or a ZooKeeper zoo.cfg), the server is started from one
// QuorumServerConfig. Loaders parse their syntax and check types; this module
// fills in ZooKeeper's defaults and checks ranges and the relations between
// settings, reporting each problem at the key the user wrote (the loader says
// where, through ConfigSource).
import { ZK_DEFAULTS, ZK_LIMITS } from '../limits.js';
import { isLoopback } from '../io/ports.js';
import { ConfigError, formatIssue, showValue, type ConfigIssue } from './errors.js';
import { formatMembership } from '../core/zk/membership.js';

/** The four-letter words Quorate answers. `*` in a whitelist means all of these. */
import { FOUR_LETTER_WORDS, ZK_ONLY_FOUR_LETTER_WORDS } from '../proto/zk-constants.js';

export { FOUR_LETTER_WORDS, ZK_ONLY_FOUR_LETTER_WORDS };
export type FourLetterWord = (typeof FOUR_LETTER_WORDS)[number];
/** ZooKeeper's default whitelist (3.5.3+): srvr alone. */
export const DEFAULT_FOUR_LETTER_WORDS: readonly FourLetterWord[] = ['srvr'];
/** Words ZooKeeper answers and Quorate does not (a zoo.cfg naming them gets a warning). */

export type ServerRole = 'participant' | 'observer';

export interface QuorumServer {
  /** Server id, as in zoo.cfg's server.N and myid. */
  id: number;
  /** Address the other servers reach this one at. */
  host: string;
  /** Quorum (replication) port, ZooKeeper's 2888. */
  peerPort: number;
  /** Leader election port, ZooKeeper's 3888. */
  electionPort: number;
  role: ServerRole;
  /** Client port bind address and port, when known (ZooKeeper 3.5's `;host:port`). */
  clientHost?: string;
  clientPort?: number;
  /** This server's AdminServer and Prometheus ports and their bind addresses (cluster file only). */
  adminPort?: number;
  adminHost?: string;
  metricsPort?: number;
  metricsHost?: string;
}

/** Prometheus text at /metrics on a port of its own (zoo.cfg: metricsProvider.*). */
export interface MetricsPortConfig {
  host: string;
  port: number;
  /** The process's own figures too (process_*, nodejs_*): zoo.cfg's metricsProvider.exportJvmInfo. */
  processMetrics: boolean;
}

/** ZooKeeper's AdminServer: its read-only commands as JSON over HTTP (zoo.cfg: admin.*). */
export interface AdminServerConfig {
  host: string;
  port: number;
  /** Where the commands are (admin.commandURL): GET <commandUrl> lists them, <commandUrl>/<name> runs one. */
  commandUrl: string;
  /** admin.idleTimeout: an idle keep-alive connection is closed after this. */
  idleTimeoutMs: number;
}

/** ZooKeeper's defaults for the two HTTP ports. */
export const HTTP_PORT_DEFAULTS = { admin_port: 8080, admin_command_url: '/commands', admin_idle_timeout_ms: 30_000, metrics_port: 7000 } as const;

export interface QuorumServerConfig {
  clusterId: string;
  serverId: number;
  tickMs: number;
  initLimitTicks: number;
  syncLimitTicks: number;
  /** Absolute paths. dataLogDir defaults to dataDir. */
  dataDir: string;
  dataLogDir: string;
  /** Where this server listens for clients ('0.0.0.0' unless set). */
  clientHost: string;
  clientPort: number;
  /** Connections per client IP; 0 = unlimited. */
  maxClientCnxns: number;
  minSessionTimeoutMs: number;
  maxSessionTimeoutMs: number;
  /** Transactions between snapshots. */
  snapCount: number;
  autopurgeSnapRetainCount: number;
  /** 0 = autopurge off. */
  autopurgePurgeIntervalHours: number;
  /** Enabled four-letter words ('*' already expanded). */
  fourLetterWords: Set<string>;
  skipAcl: boolean;
  /** `user:base64(sha1(user:password))`, as zookeeper.DigestAuthenticationProvider.superDigest; null = no super user. */
  superDigest: string | null;
  /** fsync the transaction log before acknowledging. false can lose acknowledged writes on power failure. */
  forceSync: boolean;
  /** jute.maxbuffer: largest packet accepted or sent. */
  packetBytesMax: number;
  standaloneEnabled: boolean;
  reconfigEnabled: boolean;
  /** The ensemble, sorted by id; empty = standalone. */
  servers: QuorumServer[];
  /** Mutual TLS on the peer and election ports (PEM texts); null: plain TCP, which only loopback or an explicit insecure allows. */
  peerTls: { cert: string; key: string; ca: string } | null;
  /** ZooKeeper's secureClientPort: the client protocol over TLS on this port too; null: none. */
  secureClientPort: number | null;
  /** Bind address of the TLS client port when not clientHost (zoo.cfg: secureClientPortAddress). */
  secureClientHost?: string;
  clientTls: { cert: string; key: string; ca: string | null; clientAuth: 'none' | 'want' | 'need'; minVersion?: 'TLSv1.2' | 'TLSv1.3' } | null;
  /** null: no metrics port. */
  metrics: MetricsPortConfig | null;
  /** null: no AdminServer. */
  admin: AdminServerConfig | null;
}

/** Bounds on every setting (units last, as in limits.ts). */
export const QUORUM_CONFIG_BOUNDS = {
  tick_ms_min: 10,
  tick_ms_max: 60_000,
  limit_ticks_min: 1,
  limit_ticks_max: 1_000,
  session_timeout_ms_min: 1,
  session_timeout_ms_max: 24 * 3600 * 1000,
  /** Session ids carry the server id in their top byte; ZooKeeper reserves 255 (extended types). */
  server_id_min: 1,
  server_id_max: 254,
  snap_count_min: 2,
  snap_count_max: 100_000_000,
  /** ZooKeeper's PurgeTxnLog keeps at least 3 snapshots. */
  snap_retain_count_min: 3,
  snap_retain_count_max: 10_000,
  purge_interval_hours_max: 24 * 365,
  packet_bytes_min: 4096,
  /** A packet must fit twice in a slow reader's queue and once in a group commit (see limits.ts). */
  packet_bytes_max:
    Math.min(ZK_LIMITS.unsent_reply_bytes_max / 2, ZK_LIMITS.group_commit_bytes_max) - ZK_LIMITS.packet_header_bytes_extra,
  max_client_cnxns_max: ZK_LIMITS.connections_max,
  port_min: 1,
  port_max: 65_535,
  admin_idle_timeout_ms_min: 100,
  admin_idle_timeout_ms_max: 3_600_000,
  admin_command_url_bytes_max: 200,
} as const;

export const CLUSTER_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** `user:` then base64 of a 20-byte SHA-1 digest. */
export const SUPER_DIGEST_PATTERN = /^[^:\s]+:[A-Za-z0-9+/]{27}=$/;

/** What a loader hands over: everything optional except identity and dataDir. */
export interface QuorumConfigInput {
  clusterId: string;
  serverId: number;
  dataDir: string;
  dataLogDir?: string | undefined;
  tickMs?: number | undefined;
  initLimitTicks?: number | undefined;
  syncLimitTicks?: number | undefined;
  clientHost?: string | undefined;
  clientPort?: number | undefined;
  maxClientCnxns?: number | undefined;
  minSessionTimeoutMs?: number | undefined;
  maxSessionTimeoutMs?: number | undefined;
  snapCount?: number | undefined;
  autopurgeSnapRetainCount?: number | undefined;
  autopurgePurgeIntervalHours?: number | undefined;
  /** Words or '*'. */
  fourLetterWords?: readonly string[] | undefined;
  skipAcl?: boolean | undefined;
  superDigest?: string | null | undefined;
  forceSync?: boolean | undefined;
  packetBytesMax?: number | undefined;
  standaloneEnabled?: boolean | undefined;
  reconfigEnabled?: boolean | undefined;
  servers?: readonly QuorumServer[] | undefined;
  /** Set: an AdminServer on this port (a server entry's own adminPort wins). */
  adminPort?: number | undefined;
  /** Defaults to the client address. */
  adminHost?: string | undefined;
  adminCommandUrl?: string | undefined;
  adminIdleTimeoutMs?: number | undefined;
  /** Set: Prometheus on this port (a server entry's own metricsPort wins). */
  metricsPort?: number | undefined;
  /** Defaults to the client address. */
  metricsHost?: string | undefined;
  /** The process's own figures too (default true, as ZooKeeper's exportJvmInfo). */
  metricsProcess?: boolean | undefined;
}

export type InputField = Exclude<keyof QuorumConfigInput, 'servers'>;
export type ServerField = keyof QuorumServer;

export interface Location {
  keyPath: string;
  line?: number | undefined;
  /** When the setting lives in another file (a zoo.cfg's dynamicConfigFile). */
  file?: string | undefined;
}

/** Tells where, in the user's terms, a setting is (or would be) written. */
export interface ConfigSource {
  file: string;
  locate(field: InputField): Location;
  /** Entry `index` of the servers as the loader received them (field null: the entry as a whole). */
  locateServer(index: number, field: ServerField | null): Location;
  /** The server list as a whole. */
  locateServers(): Location;
}

/** Fills defaults, checks every value and relation; throws one ConfigError listing all problems. */
export function buildQuorumConfig(input: QuorumConfigInput, source: ConfigSource): { quorum: QuorumServerConfig; warnings: string[] } {
  const B = QUORUM_CONFIG_BOUNDS;
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const at = (loc: Location, reason: string): ConfigIssue => ({ file: loc.file ?? source.file, keyPath: loc.keyPath, reason, line: loc.line });
  const fail = (field: InputField, reason: string) => issues.push(at(source.locate(field), reason));
  const warn = (field: InputField, reason: string) => warnings.push(formatIssue(at(source.locate(field), reason)));
  const int = (field: InputField, v: number | undefined, min: number, max: number, what = 'an integer'): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) fail(field, `expected ${what} ${min}-${max}, got ${showValue(v)}`);
  };
  const port = (field: InputField, v: number | undefined) => int(field, v, B.port_min, B.port_max, 'a port number');

  if (!CLUSTER_ID_PATTERN.test(input.clusterId)) {
    fail('clusterId', `expected a cluster id of lowercase letters, digits and '-' (at most 63, not starting or ending with '-'), got ${showValue(input.clusterId)}`);
  }
  int('serverId', input.serverId, B.server_id_min, B.server_id_max, 'a server id');
  int('tickMs', input.tickMs, B.tick_ms_min, B.tick_ms_max, 'milliseconds');
  int('initLimitTicks', input.initLimitTicks, B.limit_ticks_min, B.limit_ticks_max, 'ticks');
  int('syncLimitTicks', input.syncLimitTicks, B.limit_ticks_min, B.limit_ticks_max, 'ticks');
  int('minSessionTimeoutMs', input.minSessionTimeoutMs, B.session_timeout_ms_min, B.session_timeout_ms_max, 'milliseconds');
  int('maxSessionTimeoutMs', input.maxSessionTimeoutMs, B.session_timeout_ms_min, B.session_timeout_ms_max, 'milliseconds');
  int('maxClientCnxns', input.maxClientCnxns, 0, B.max_client_cnxns_max, 'a connection count (0 = unlimited)');
  int('snapCount', input.snapCount, B.snap_count_min, B.snap_count_max, 'a transaction count');
  int('autopurgeSnapRetainCount', input.autopurgeSnapRetainCount, B.snap_retain_count_min, B.snap_retain_count_max, 'a snapshot count');
  int('autopurgePurgeIntervalHours', input.autopurgePurgeIntervalHours, 0, B.purge_interval_hours_max, 'hours (0 = off)');
  int('packetBytesMax', input.packetBytesMax, B.packet_bytes_min, B.packet_bytes_max, 'bytes');
  port('clientPort', input.clientPort);
  port('adminPort', input.adminPort);
  port('metricsPort', input.metricsPort);
  int('adminIdleTimeoutMs', input.adminIdleTimeoutMs, B.admin_idle_timeout_ms_min, B.admin_idle_timeout_ms_max, 'milliseconds');
  for (const field of ['adminHost', 'metricsHost'] as const) {
    const h = input[field];
    if (h !== undefined && !isHost(h)) fail(field, `expected a host name or IP address to bind, got ${showValue(h)}`);
  }
  const url = input.adminCommandUrl;
  if (url !== undefined && !/^\/[A-Za-z0-9._~\/-]*$/.test(url) || (url?.length ?? 0) > B.admin_command_url_bytes_max) {
    fail('adminCommandUrl', `expected a URL path starting with "/" (letters, digits, "._~-/", at most ${B.admin_command_url_bytes_max} characters), got ${showValue(url)}`);
  }
  if (input.dataDir.trim() === '' || input.dataDir.includes('\0')) fail('dataDir', `expected a directory path, got ${showValue(input.dataDir)}`);
  if (input.dataLogDir !== undefined && (input.dataLogDir.trim() === '' || input.dataLogDir.includes('\0'))) {
    fail('dataLogDir', `expected a directory path, got ${showValue(input.dataLogDir)}`);
  }
  if (input.clientHost !== undefined && !isHost(input.clientHost)) fail('clientHost', `expected a host name or IP address, got ${showValue(input.clientHost)}`);
  if (input.superDigest !== undefined && input.superDigest !== null && !SUPER_DIGEST_PATTERN.test(input.superDigest)) {
    fail('superDigest', `expected "super:<base64 of the SHA-1 of super:password>" (28 characters after the colon), got ${showValue(redactDigest(input.superDigest))}`);
  }
  const words = new Set<string>();
  for (const w of input.fourLetterWords ?? DEFAULT_FOUR_LETTER_WORDS) {
    if (w === '*') FOUR_LETTER_WORDS.forEach((x) => words.add(x));
    else if ((FOUR_LETTER_WORDS as readonly string[]).includes(w)) words.add(w);
    else fail('fourLetterWords', `expected four-letter words among ${FOUR_LETTER_WORDS.join(', ')} or "*", got ${showValue(w)}`);
  }

  const servers = [...(input.servers ?? [])].sort((a, b) => a.id - b.id);
  checkServers(input.servers ?? [], source, issues, at);
  const self = servers.find((s) => s.id === input.serverId);
  if (servers.length > 0 && self === undefined && Number.isInteger(input.serverId) && input.serverId >= B.server_id_min && input.serverId <= B.server_id_max) {
    issues.push(at(source.locateServers(), `no server has id ${input.serverId}, this server's id; ids listed: ${servers.map((s) => s.id).join(', ')}`));
  }

  const tickMs = input.tickMs ?? ZK_DEFAULTS.tick_ms;
  const quorum: QuorumServerConfig = {
    clusterId: input.clusterId,
    serverId: input.serverId,
    tickMs,
    initLimitTicks: input.initLimitTicks ?? ZK_DEFAULTS.init_limit_ticks,
    syncLimitTicks: input.syncLimitTicks ?? ZK_DEFAULTS.sync_limit_ticks,
    dataDir: input.dataDir,
    dataLogDir: input.dataLogDir ?? input.dataDir,
    clientHost: self?.clientHost ?? input.clientHost ?? '0.0.0.0',
    clientPort: self?.clientPort ?? input.clientPort ?? ZK_DEFAULTS.client_port,
    maxClientCnxns: input.maxClientCnxns ?? ZK_LIMITS.connections_per_ip_max,
    minSessionTimeoutMs: input.minSessionTimeoutMs ?? tickMs * ZK_DEFAULTS.min_session_timeout_ticks,
    maxSessionTimeoutMs: input.maxSessionTimeoutMs ?? tickMs * ZK_DEFAULTS.max_session_timeout_ticks,
    snapCount: input.snapCount ?? ZK_DEFAULTS.snap_count_txns,
    autopurgeSnapRetainCount: input.autopurgeSnapRetainCount ?? ZK_DEFAULTS.autopurge_snap_retain_count,
    autopurgePurgeIntervalHours: input.autopurgePurgeIntervalHours ?? ZK_DEFAULTS.autopurge_purge_interval_hours,
    fourLetterWords: words,
    skipAcl: input.skipAcl ?? false,
    superDigest: input.superDigest ?? null,
    forceSync: input.forceSync ?? true,
    packetBytesMax: input.packetBytesMax ?? ZK_LIMITS.packet_bytes_max,
    standaloneEnabled: input.standaloneEnabled ?? true,
    reconfigEnabled: input.reconfigEnabled ?? false,
    servers: servers.map((s) => ({ ...s })),
    peerTls: null,
    secureClientPort: null,
    clientTls: null,
    metrics: null,
    admin: null,
  };
  const adminPort = self?.adminPort ?? input.adminPort;
  const metricsPort = self?.metricsPort ?? input.metricsPort;
  // Where clients may reach this server, so may its monitors: the client address unless told otherwise.
  if (adminPort !== undefined) {
    quorum.admin = {
      host: self?.adminHost ?? input.adminHost ?? quorum.clientHost, port: adminPort,
      commandUrl: (input.adminCommandUrl ?? HTTP_PORT_DEFAULTS.admin_command_url).replace(/\/+$/, '') || '/',
      idleTimeoutMs: input.adminIdleTimeoutMs ?? HTTP_PORT_DEFAULTS.admin_idle_timeout_ms,
    };
  }
  if (metricsPort !== undefined) {
    quorum.metrics = { host: self?.metricsHost ?? input.metricsHost ?? quorum.clientHost, port: metricsPort, processMetrics: input.metricsProcess ?? true };
  }

  // Relations.
  if (quorum.minSessionTimeoutMs > quorum.maxSessionTimeoutMs) {
    fail(input.minSessionTimeoutMs !== undefined ? 'minSessionTimeoutMs' : 'maxSessionTimeoutMs',
      `the minimum session timeout (${quorum.minSessionTimeoutMs} ms) must not exceed the maximum (${quorum.maxSessionTimeoutMs} ms)`);
  } else if (quorum.minSessionTimeoutMs < 2 * tickMs) {
    warn('minSessionTimeoutMs', `${quorum.minSessionTimeoutMs} ms is under 2 ticks (${2 * tickMs} ms): sessions are checked once a tick, so such a session can expire while its client is healthy`);
  }
  if (self === undefined && servers.length === 0) {
    const own = [['clientPort', quorum.clientPort], ['adminPort', adminPort], ['metricsPort', metricsPort]] as const;
    for (let i = 1; i < own.length; i++) {
      const clash = own.slice(0, i).find(([, p]) => p !== undefined && p === own[i][1]);
      if (clash) fail(own[i][0], `port ${own[i][1]} is also the ${clash[0]}`);
    }
  } else if (self !== undefined) {
    // Ports given for this server outside its entry (zoo.cfg's admin.serverPort, metricsProvider.httpPort): its entry's ports are checked with it.
    const taken: [string, number | undefined][] = [['peerPort', self.peerPort], ['electionPort', self.electionPort], ['clientPort', quorum.clientPort]];
    for (const [field, own, p] of [['adminPort', self.adminPort, adminPort], ['metricsPort', self.metricsPort, metricsPort]] as const) {
      if (p === undefined) continue;
      const clash = own === undefined ? taken.find(([, q]) => q === p) : undefined;
      if (clash) fail(field, `port ${p} is also server ${self.id}'s ${clash[0]}`);
      taken.push([field, p]);
    }
  }
  const voters = servers.filter((s) => s.role === 'participant').length;
  if (servers.length > 0 && voters === 0) issues.push(at(source.locateServers(), 'every server is an observer; at least one must be a participant'));
  if (voters >= 2 && voters % 2 === 0) {
    warnings.push(formatIssue(at(source.locateServers(),
      `${voters} voting servers tolerate no more failures than ${voters - 1} (a majority is ${voters / 2 + 1}); an odd number is usual`)));
  }
  if (!quorum.forceSync) warn('forceSync', 'fsync is off: acknowledged writes can be lost on power failure or an OS crash');
  if (quorum.skipAcl) warn('skipAcl', 'ACL checks are off: every client can read, change and delete every znode');

  if (issues.length > 0) throw ConfigError.fromIssues(issues);
  return { quorum, warnings };
}

function checkServers(
  servers: readonly QuorumServer[],
  source: ConfigSource,
  issues: ConfigIssue[],
  at: (loc: Location, reason: string) => ConfigIssue,
): void {
  const B = QUORUM_CONFIG_BOUNDS;
  const byId = new Map<number, number>();
  const byAddress = new Map<string, { index: number; id: number; field: ServerField }>();
  servers.forEach((s, i) => {
    const bad = (field: ServerField | null, reason: string) => issues.push(at(source.locateServer(i, field), reason));
    if (!Number.isInteger(s.id) || s.id < B.server_id_min || s.id > B.server_id_max) {
      bad('id', `expected a server id ${B.server_id_min}-${B.server_id_max}, got ${showValue(s.id)}`);
    } else if (byId.has(s.id)) {
      // A repeated entry: its ports would only repeat the clash.
      return void bad('id', `server id ${s.id} is used twice (also by entry ${byId.get(s.id)! + 1} of the list)`);
    } else byId.set(s.id, i);
    if (!isHost(s.host)) bad('host', `expected a host name or IP address, got ${showValue(s.host)}`);
    for (const field of ['clientHost', 'adminHost', 'metricsHost'] as const) {
      const h = s[field];
      if (h !== undefined && !isHost(h)) bad(field, `expected a host name or IP address, got ${showValue(h)}`);
    }
    if (s.role !== 'participant' && s.role !== 'observer') bad('role', `expected participant or observer, got ${showValue(s.role)}`);
    for (const field of ['peerPort', 'electionPort', 'clientPort', 'adminPort', 'metricsPort'] as const) {
      const p = s[field];
      if (p === undefined) continue;
      if (!Number.isInteger(p) || p < B.port_min || p > B.port_max) {
        bad(field, `expected a port number ${B.port_min}-${B.port_max}, got ${showValue(p)}`);
        continue;
      }
      // All of a server's ports are on the machine named by host.
      const key = `${s.host.toLowerCase()}:${p}`;
      const prev = byAddress.get(key);
      if (prev === undefined) byAddress.set(key, { index: i, id: s.id, field });
      else if (prev.index === i) bad(field, `port ${p} is also this server's ${prev.field}`);
      else bad(field, `port ${p} on ${s.host} is also server ${prev.id}'s ${prev.field}`);
    }
  });
}

/** Host names, IPv4 and IPv6 literals (without brackets). */
/**
 * Why the ensemble's peer ports may not run as configured: plain TCP between servers on
 * addresses other than loopback lets anyone who can name a member join its elections and
 * receive every transaction (data behind ACLs, session passwords). Null when TLS is on, every
 * server is on loopback, or the operator said insecure.
 */
export function plainPeersProblem(q: QuorumServerConfig, insecure: boolean): string | null {
  if (q.peerTls !== null || insecure || q.servers.length < 2) return null;
  const remote = q.servers.filter((s) => !isLoopback(s.host));
  if (remote.length === 0) return null;
  return `the quorum servers talk in plain TCP on ${remote.map((s) => s.host).join(', ')}: anyone who reaches those ports and names a member can join its elections and receive every transaction`;
}

export function isHost(host: unknown): host is string {
  return typeof host === 'string' && host.length > 0 && host.length <= 253 && /^[A-Za-z0-9._%:-]+$/.test(host) && !host.startsWith('-');
}

/** Never print a whole digest back: keep the user part. */
function redactDigest(d: string): string {
  const colon = d.indexOf(':');
  return colon < 0 ? '(not user:hash)' : `${d.slice(0, colon)}:…`;
}

/** The membership as ZooKeeper writes it in /zookeeper/config and in a dynamic config file. */
export function membershipText(servers: readonly QuorumServer[], version: bigint): string {
  return formatMembership({ version, members: new Map(servers.map((s) => [s.id, {
    id: s.id, host: s.host, peerPort: s.peerPort, electionPort: s.electionPort, role: s.role, clientHost: s.clientHost, clientPort: s.clientPort,
  }])) });
}
