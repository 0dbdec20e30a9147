// The cluster file: one YAML file per cluster, the same on every host; each
// process picks its own part with --id. Parsed strictly (zod): an unknown key,
// a wrong type or a bad value stops the process with the key's path, its line
// and the reason. Top-level sections: quorum, journal, controller, services;
// any other top-level key is an error.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, isMap, isSeq, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { ZK_DEFAULTS } from '../limits.js';
import { isLoopback } from '../io/ports.js';
import type { JournalTls } from '../client/journal/node-client.js';
import { placementProblems } from './cluster-placement.js';
import { readSecret } from './secret-file.js';
import { ConfigError, formatKeyPath, showValue, type ConfigIssue } from './errors.js';

export { formatKeyPath };
import {
  buildQuorumConfig,
  plainPeersProblem,
  CLUSTER_ID_PATTERN,
  FOUR_LETTER_WORDS,
  QUORUM_CONFIG_BOUNDS as B,
  SUPER_DIGEST_PATTERN,
  type ConfigSource,
  type InputField,
  type QuorumServer,
  type QuorumServerConfig,
} from './quorum-config.js';

/** Peer and election ports when a server entry leaves them out (ZooKeeper's usual 2888 and 3888). */
export const DEFAULT_PEER_PORT = 2888;
/**
 * The cluster file's own defaults (a zoo.cfg keeps ZooKeeper's): a shorter tick, so that
 * syncLimit x tick (1 s) stays well under a third of a controller's session (6 s by default),
 * the bound self-demotion rests on; session limits kept where ZooKeeper's defaults put them.
 */
export const CLUSTER_FILE_DEFAULTS = { tick_ms: 200, min_session_timeout_ms: 4000, max_session_timeout_ms: 40_000 } as const;
export const DEFAULT_ELECTION_PORT = 3888;

// ---- schema -----------------------------------------------------------------

const intIn = (min: number, max: number, what: string) => {
  const error = `expected ${what} ${min}-${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};
const port = () => intIn(B.port_min, B.port_max, 'a port number');
const bool = () => z.boolean({ error: 'expected true or false' });
const host = () => z.string({ error: 'expected a host name or IP address' }).regex(/^[A-Za-z0-9._%:-]+$/, { error: 'expected a host name or IP address' });
const dir = () => z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' });

/** Both ends present a certificate from the cluster CA: this host's certificate and key (PEM), and the CA. */
const mutualTls = () => z.strictObject({ certFile: dir(), keyFile: dir(), caFile: dir() }, { error: 'expected { certFile, keyFile, caFile }' });
/** A TLS server port: its certificate and key, and, to ask clients for certificates (clientAuth want or need, as ZooKeeper's ssl.clientAuth), the CA that signs them. */
const serverTls = () => z.strictObject({
  certFile: dir(), keyFile: dir(), caFile: dir().optional(),
  clientAuth: z.enum(['none', 'want', 'need'], { error: 'expected none, want or need' }).optional(),
}, { error: 'expected { certFile, keyFile, caFile, clientAuth }' });

const serverShape = {
  id: intIn(B.server_id_min, B.server_id_max, 'a server id'),
  host: host(),
  peerPort: port().optional(),
  electionPort: port().optional(),
  role: z.enum(['participant', 'observer'], { error: 'expected participant or observer' }).optional(),
  clientHost: host().optional(),
  clientPort: port().optional(),
  /** The client protocol over TLS (quorum.clientTls), as ZooKeeper's secureClientPort. */
  secureClientPort: port().optional(),
  /** ZooKeeper's AdminServer (JSON commands over HTTP) and Prometheus text, each on a port of its own, bound to the client address unless adminHost/metricsHost say otherwise. */
  adminPort: port().optional(),
  adminHost: host().optional(),
  metricsPort: port().optional(),
  metricsHost: host().optional(),
};
const sessionShape = {
  minTimeoutMs: intIn(B.session_timeout_ms_min, B.session_timeout_ms_max, 'milliseconds').optional(),
  maxTimeoutMs: intIn(B.session_timeout_ms_min, B.session_timeout_ms_max, 'milliseconds').optional(),
};
const autopurgeShape = {
  snapRetainCount: intIn(B.snap_retain_count_min, B.snap_retain_count_max, 'a snapshot count').optional(),
  purgeIntervalHours: intIn(0, B.purge_interval_hours_max, 'hours (0 = off)').optional(),
};
const wordsError = `expected a list of four-letter words among ${FOUR_LETTER_WORDS.join(', ')}, or ["*"] for all`;
const quorumShape = {
  tickMs: intIn(B.tick_ms_min, B.tick_ms_max, 'milliseconds').optional(),
  initLimitTicks: intIn(B.limit_ticks_min, B.limit_ticks_max, 'ticks').optional(),
  syncLimitTicks: intIn(B.limit_ticks_min, B.limit_ticks_max, 'ticks').optional(),
  session: z.strictObject(sessionShape, { error: 'expected a mapping' }).optional(),
  fourLetterWords: z.array(z.enum([...FOUR_LETTER_WORDS, '*'], { error: wordsError }), { error: wordsError }).optional(),
  forceSync: bool().optional(),
  skipAcl: bool().optional(),
  superDigest: z
    .string({ error: 'expected null or "super:<base64 of the SHA-1 of super:password>"' })
    .regex(SUPER_DIGEST_PATTERN, { error: 'expected "super:<base64 of the SHA-1 of super:password>" (28 characters after the colon)' })
    .nullable()
    .optional(),
  packetBytesMax: intIn(B.packet_bytes_min, B.packet_bytes_max, 'bytes').optional(),
  maxClientCnxns: intIn(0, B.max_client_cnxns_max, 'a connection count (0 = unlimited)').optional(),
  snapCount: intIn(B.snap_count_min, B.snap_count_max, 'a transaction count').optional(),
  autopurge: z.strictObject(autopurgeShape, { error: 'expected a mapping' }).optional(),
  dataDir: dir(),
  dataLogDir: dir().optional(),
  clientHost: host().optional(),
  clientPort: port().optional(),
  adminPort: port().optional(),
  adminHost: host().optional(),
  metricsPort: port().optional(),
  metricsHost: host().optional(),
  standaloneEnabled: bool().optional(),
  reconfigEnabled: bool().optional(),
  /** Mutual TLS on the peer and election ports (ZooKeeper's sslQuorum): each server's certificate names its host. */
  tls: mutualTls().optional(),
  /** Plain TCP between servers on addresses other than loopback. */
  insecure: bool().optional(),
  secureClientPort: port().optional(),
  /** The TLS client port's certificate, key, the CA that signs clients' certificates, and whether one is asked for (ZooKeeper's ssl.clientAuth). */
  clientTls: serverTls().optional(),
  servers: z
    .array(z.strictObject(serverShape, { error: 'expected a mapping with id, host and ports' }), { error: 'expected a list of servers' })
    .max(B.server_id_max, { error: `expected at most ${B.server_id_max} servers` })
    .optional(),
};
const journalNodeShape = {
  id: intIn(B.server_id_min, B.server_id_max, 'a journal node id'),
  host: host(),
  port: port(),
  /** Prometheus text (GET /metrics, plain HTTP, read-only) on this port of the node's host. */
  metricsPort: port().optional(),
};
const journalShape = {
  dataDir: dir(),
  nodes: z
    .array(z.strictObject(journalNodeShape, { error: 'expected a mapping with id, host and port' }), { error: 'expected a list of journal nodes' })
    .min(1, { error: 'expected at least one journal node' })
    .max(B.server_id_max, { error: `expected at most ${B.server_id_max} journal nodes` }),
  requestTimeoutMs: intIn(50, 600_000, 'milliseconds').optional(),
  catchUpIntervalMs: intIn(50, 600_000, 'milliseconds').optional(),
  /**
   * HTTPS with client certificates required: this host's certificate and key (PEM; the certificate
   * names the host the others dial), and the cluster CA every caller's certificate must chain to.
   */
  tls: mutualTls().optional(),
  /** Certificate common names allowed the destructive calls (format --force, purge). */
  operators: z.array(z.string({ error: 'expected a certificate common name' }).min(1).max(64), { error: 'expected a list of certificate common names' }).optional(),
  /** Plain HTTP on an address other than loopback: anyone who reaches the port can fence the writer. */
  insecure: bool().optional(),
};
const ms = (what = 'milliseconds') => intIn(1, 3_600_000, what);
const commandOrHttp = z.union([
  z.strictObject({ command: z.string({ error: 'expected a shell command' }).min(1), timeoutMs: ms().optional() }),
  z.strictObject({ http: z.url({ error: 'expected an http(s) URL' }), timeoutMs: ms().optional() }),
], { error: 'expected { command: "..." } or { http: "http://..." }' });
const healthCheckShape = z.union([
  z.strictObject({ http: z.url({ error: 'expected an http(s) URL' }), expectStatus: intIn(100, 599, 'an HTTP status').optional(), jsonField: z.string().optional(), jsonValue: z.union([z.string(), z.number(), z.boolean()]).optional(), lagField: z.string().optional(), holdConnection: bool().optional(), intervalMs: ms().optional(), timeoutMs: ms().optional(), failures: intIn(1, 100, 'a count').optional() }),
  z.strictObject({ tcp: z.string({ error: 'expected host:port' }).regex(/^[A-Za-z0-9._:\[\]-]+:\d{1,5}$/, { error: 'expected host:port' }), holdConnection: bool().optional(), intervalMs: ms().optional(), timeoutMs: ms().optional(), failures: intIn(1, 100, 'a count').optional() }),
  z.strictObject({ command: z.string({ error: 'expected a shell command' }).min(1), intervalMs: ms().optional(), timeoutMs: ms().optional(), failures: intIn(1, 100, 'a count').optional() }),
], { error: 'expected a check: { http: URL }, { tcp: "host:port" } or { command: "..." }' });
const SSH_FENCE_KEYS = ['user', 'port', 'keyFile', 'knownHosts', 'fingerprint', 'command', 'timeoutMs'];
const fenceMethod = z.union([
  z.literal('graceful'),
  z.literal('journal'),
  z.strictObject({ shell: z.string({ error: 'expected a shell command' }).min(1), timeoutMs: ms().optional() }),
  z.strictObject({ http: z.url({ error: 'expected an http(s) URL' }), timeoutMs: ms().optional() }),
  // ssh: the host key must be pinned (exactly one of knownHosts or fingerprint); an unknown key is never accepted.
  z.strictObject({
    ssh: z.strictObject({
      user: z.string({ error: 'expected a user name' }).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$/, { error: 'expected a user name' }),
      port: port().optional(),
      keyFile: z.string({ error: 'expected the path of a private key file' }).min(1, { error: 'expected the path of a private key file' }),
      knownHosts: z.string({ error: 'expected the path of a known_hosts file' }).min(1, { error: 'expected the path of a known_hosts file' }).optional(),
      fingerprint: z.string({ error: 'expected a host key fingerprint "SHA256:..." as ssh-keygen -lf prints it' })
        .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, { error: 'expected a host key fingerprint "SHA256:..." as ssh-keygen -lf prints it' }).optional(),
      command: z.string({ error: 'expected a shell command' }).min(1, { error: 'expected a shell command' }).optional(),
      timeoutMs: ms().optional(),
    }, { error: 'expected { user, keyFile, knownHosts or fingerprint, ... }' }).refine((o) => (o.knownHosts === undefined) !== (o.fingerprint === undefined), {
      error: 'give exactly one of knownHosts (a known_hosts file) or fingerprint ("SHA256:..."): the host key must be pinned, an unknown host key is never accepted',
    }),
  }),
], { error: 'expected graceful, journal, { shell: "..." }, { http: URL } or { ssh: { user, keyFile, knownHosts | fingerprint } }' });
const RESOURCE_KEYS = ['name', 'ocf', 'params', 'start', 'stop', 'monitor', 'timeoutMs', 'monitorIntervalMs', 'failures'];
const resourceCommon = {
  name: z.string({ error: 'expected a resource name' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { error: 'expected a resource name (letters, digits, _ . -)' }),
  timeoutMs: ms().optional(),
  monitorIntervalMs: intIn(100, 3_600_000, 'milliseconds').optional(),
  /** Consecutive failed monitors that make the instance unhealthy (default 1, as Pacemaker). */
  failures: intIn(1, 100, 'a count').optional(),
};
const commandText = () => z.string({ error: 'expected a shell command' }).min(1, { error: 'expected a shell command' });
const resourceShape = z.union([
  z.strictObject({
    ...resourceCommon,
    /** provider:type, as Pacemaker's ocf:provider:type (heartbeat:IPaddr2). */
    ocf: z.string({ error: 'expected provider:type, such as heartbeat:IPaddr2' }).regex(/^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$/, { error: 'expected provider:type, such as heartbeat:IPaddr2' }),
    params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a parameter name (letters, digits, _)' }), z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' }), { error: 'expected a mapping of parameter names to values' }).optional(),
  }),
  z.strictObject({ ...resourceCommon, start: commandText(), stop: commandText(), monitor: commandText().optional() }),
], { error: 'expected { name, ocf: provider:type, params } or { name, start, stop, monitor }' });
const connectStringShape = () => z.string().regex(/^[A-Za-z0-9._:,\[\]-]+(\/[^\s]*)?$/, { error: 'expected host:port,host:port[/chroot]' });
const instanceShape = {
  /** This instance's controller elects through these servers (say, its local quorum server first). */
  connectString: connectStringShape().optional(),
  id: z.string({ error: 'expected an instance id' }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, { error: 'expected an instance id (letters, digits, _ . -)' }),
  host: host(),
  adminPort: port(),
  servicePort: port().optional(),
  priority: intIn(0, 1_000_000, 'a priority').optional(),
  noFailover: bool().optional(),
  health: z.array(healthCheckShape, { error: 'expected a list of checks' }).min(1, { error: 'expected at least one check' }).optional(),
  hooks: z.strictObject({ toActive: commandOrHttp, toStandby: commandOrHttp, role: commandOrHttp.optional(), preActive: commandOrHttp.optional() }, { error: 'expected toActive and toStandby hooks' }).optional(),
  /** What follows the active (a floating IP...): started in order after toActive, stopped in reverse before toStandby. */
  resources: z.array(resourceShape, { error: 'expected a list of resources' }).refine((l) => new Set(l.map((r) => r.name)).size === l.length, { error: 'resource names must differ' }).optional(),
  fencing: z.array(fenceMethod, { error: 'expected a list of fencing methods' }).optional(),
};
const serviceShape = {
  name: z.string({ error: 'expected a service name' }).regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, { error: 'expected a service name (lowercase letters, digits, _ . -)' }),
  journal: bool().optional(),
  health: z.array(healthCheckShape, { error: 'expected a list of checks' }).min(1, { error: 'expected at least one check' }).optional(),
  hooks: instanceShape.hooks,
  resources: instanceShape.resources,
  fencing: instanceShape.fencing,
  /** A lower-priority standby waits this long per step of priority rank before racing. */
  raceDelayMs: intIn(0, 60_000, 'milliseconds').optional(),
  cedeMs: intIn(0, 600_000, 'milliseconds').optional(),
  /** A standby whose health check's lagField says it is further behind does not race (failover --force overrides). */
  maxLagOnFailover: z.number({ error: 'expected a number' }).min(0, { error: 'expected a number >= 0' }).optional(),
  /** While the quorum is unreachable, keep the active as long as the journal shows no newer writer (needs journal: true and role hooks). */
  failsafe: bool().optional(),
  promotionsPerWindow: intIn(1, 1000, 'a count').optional(),
  promotionWindowMs: ms().optional(),
  instances: z.array(z.strictObject(instanceShape, { error: 'expected a mapping with id, host and adminPort' }), { error: 'expected a list of instances' }).min(1, { error: 'expected at least one instance' }),
};
const controllerShape = {
  /** The quorum to elect through: ours (default: the quorum section's client ports) or an Apache ZooKeeper ensemble (host:port,...[/chroot]). */
  connectString: connectStringShape().optional(),
  sessionTimeoutMs: intIn(1000, 600_000, 'milliseconds').optional(),
  /** A file holding user:password for ZooKeeper digest auth (never logged). */
  digestFile: dir().optional(),
  /** A file holding the bearer token for the admin API's write endpoints. */
  adminTokenFile: dir().optional(),
  /** Accept write requests from 127.0.0.1 without a token. */
  allowLoopbackWithoutToken: bool().optional(),
  /** The admin API over TLS: this host's certificate and key (PEM), and the CA that signed the controllers' certificates. */
  tls: serverTls().optional(),
  /** TLS to the quorum's client ports (its secureClientPort): the CA, and this host's certificate when the quorum asks for one (its subject is an x509 identity). */
  quorumTls: z.strictObject({ caFile: dir(), certFile: dir().optional(), keyFile: dir().optional() }, { error: 'expected { caFile, certFile, keyFile }' }).optional(),
  /** Client certificate common names that may change roles on the admin API (as the token does). */
  operators: z.array(z.string({ error: 'expected a certificate common name' }).min(1).max(64), { error: 'expected a list of certificate common names' }).optional(),
  /** Where Pacemaker's OCF resource agents are (OCF_ROOT; default /usr/lib/ocf, Debian's resource-agents). */
  ocfRoot: dir().optional(),
  /** The failover history in the quorum: at most this many entries (default 1000), none older than this many days (default 90). */
  historyMaxEntries: intIn(10, 1_000_000, 'a count').optional(),
  historyMaxAgeDays: intIn(1, 3650, 'days').optional(),
  /** Client certificate common names that may read status but not change roles. */
  readers: z.array(z.string({ error: 'expected a certificate common name' }).min(1).max(64), { error: 'expected a list of certificate common names' }).optional(),
};
const userName = () => z.string({ error: 'expected a user name' }).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$/, { error: 'expected a user name' });
const filePath = (what: string) => z.string({ error: `expected the path of ${what}` }).min(1, { error: `expected the path of ${what}` });
const fingerprint = () => z.string({ error: 'expected a host key fingerprint "SHA256:..." as ssh-keygen -lf prints it' })
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, { error: 'expected a host key fingerprint "SHA256:..." as ssh-keygen -lf prints it' });
/** How `quorate cluster` reaches a host: what every host shares, and where one differs. */
const sshCommonShape = {
  user: userName().optional(),
  port: port().optional(),
  keyFile: filePath('a private key file').optional(),
  knownHosts: filePath('a known_hosts file').optional(),
  /** The installed quorate on the hosts (default: quorate, found on the remote PATH). */
  command: z.string({ error: 'expected a command' }).min(1, { error: 'expected a command' }).optional(),
  /** This cluster file's path on the hosts (default /etc/quorate/cluster.yaml). */
  configPath: filePath('the cluster file on the hosts').optional(),
  /** Start and stop with the installed quorate (pid files under runDir), or with systemctl on the units. */
  via: z.enum(['quorate', 'systemd'], { error: 'expected quorate or systemd' }).optional(),
};
const sshHostShape = {
  /** A host as the processes above name it. */
  host: host(),
  /** Where to connect, when not the host itself (a name in DNS, a management address). */
  address: host().optional(),
  fingerprint: fingerprint().optional(),
  ...sshCommonShape,
};
const sshShape = {
  ...sshCommonShape,
  /** Bounds connecting and authenticating to one host. */
  connectTimeoutMs: intIn(100, 600_000, 'milliseconds').optional(),
  hosts: z.array(z.strictObject(sshHostShape, { error: 'expected a mapping with host and the settings that differ there' }), { error: 'expected a list of hosts' }).optional(),
};
const clusterShape = {
  cluster: z.string({ error: 'expected a cluster id' }).regex(CLUSTER_ID_PATTERN, {
    error: "expected a cluster id of lowercase letters, digits and '-' (at most 63, not starting or ending with '-')",
  }),
  quorum: z.strictObject(quorumShape, { error: 'expected a mapping' }).optional(),
  journal: z.strictObject(journalShape, { error: 'expected a mapping' }).optional(),
  controller: z.strictObject(controllerShape, { error: 'expected a mapping' }).optional(),
  services: z.array(z.strictObject(serviceShape, { error: 'expected a mapping with name and instances' }), { error: 'expected a list of services' }).optional(),
  /** Pid files and the background processes' logs (default /run/quorate); relative to this file's directory. */
  runDir: dir().optional(),
  /** How `quorate cluster` reaches the hosts. */
  ssh: z.strictObject(sshShape, { error: 'expected a mapping with user, keyFile and knownHosts' }).optional(),
};
export const clusterFileSchema = z.strictObject(clusterShape, { error: 'expected a mapping with the keys cluster and quorum' });
export type ClusterFile = z.infer<typeof clusterFileSchema>;

/** Keys allowed at each place, for "did you mean" (list indices written as []). */
const KEYS_AT: Record<string, readonly string[]> = {
  '': Object.keys(clusterShape),
  quorum: Object.keys(quorumShape),
  'quorum.session': Object.keys(sessionShape),
  'quorum.autopurge': Object.keys(autopurgeShape),
  'quorum.servers[]': Object.keys(serverShape),
  'quorum.tls': ['certFile', 'keyFile', 'caFile'],
  'quorum.clientTls': ['certFile', 'keyFile', 'caFile', 'clientAuth'],
  journal: Object.keys(journalShape),
  'journal.nodes[]': Object.keys(journalNodeShape),
  'journal.tls': ['certFile', 'keyFile', 'caFile'],
  controller: Object.keys(controllerShape),
  'controller.tls': ['certFile', 'keyFile', 'caFile', 'clientAuth'],
  'controller.quorumTls': ['caFile', 'certFile', 'keyFile'],
  'services[]': Object.keys(serviceShape),
  'services[].instances[]': Object.keys(instanceShape),
  'services[].fencing[].ssh': SSH_FENCE_KEYS,
  'services[].resources[]': RESOURCE_KEYS,
  'services[].instances[].resources[]': RESOURCE_KEYS,
  ssh: Object.keys(sshShape),
  'ssh.hosts[]': Object.keys(sshHostShape),
  'services[].instances[].fencing[].ssh': SSH_FENCE_KEYS,
};
/** zoo.cfg names an operator may carry over, and what they are called here. */
const ZOO_CFG_NAMES: Record<string, string> = {
  tickTime: 'tickMs', initLimit: 'initLimitTicks', syncLimit: 'syncLimitTicks', minSessionTimeout: 'session.minTimeoutMs',
  maxSessionTimeout: 'session.maxTimeoutMs', clientPortAddress: 'clientHost', skipACL: 'skipAcl', '4lw.commands.whitelist': 'fourLetterWords',
  'jute.maxbuffer': 'packetBytesMax', 'autopurge.snapRetainCount': 'autopurge.snapRetainCount', 'autopurge.purgeInterval': 'autopurge.purgeIntervalHours',
  port: 'peerPort', quorumPort: 'peerPort', type: 'role', peerType: 'role', myid: 'id', clusterId: 'cluster',
};

// ---- parsing ----------------------------------------------------------------

export interface Parsed {
  cluster: ClusterFile;
  /** 1-based line of a key path, or of its nearest ancestor present in the file. */
  lineOf(keyPath: readonly (string | number)[]): number | undefined;
}

/** Parses and validates a cluster file's text; `file` names it in errors. */
export function parseClusterFile(text: string, file: string): ClusterFile {
  return parse(text, file).cluster;
}

/** Parses and validates, keeping where each key is (for errors found after the schema). */
export function parseClusterFileWithLines(text: string, file: string): Parsed {
  return parse(text, file);
}

/**
 * The last file parsed, by its text. One process often loads several parts of one file — a daemon
 * its own part and the run directory, `quorate cluster local-status` (every poll, on every host) each
 * process of the host — and a parse is YAML and the whole schema (~9 ms warm). Each caller gets its
 * own copy of the data: nothing loaded is shared between callers.
 */
let lastParsed: { file: string; text: string; parsed: Parsed } | null = null;

function parse(text: string, file: string): Parsed {
  if (lastParsed !== null && lastParsed.file === file && lastParsed.text === text) {
    return { cluster: structuredClone(lastParsed.parsed.cluster), lineOf: lastParsed.parsed.lineOf };
  }
  const parsed = parseText(text, file);
  lastParsed = { file, text, parsed: { cluster: structuredClone(parsed.cluster), lineOf: parsed.lineOf } };
  return parsed;
}

function parseText(text: string, file: string): Parsed {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw ConfigError.fromIssues(doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      return { file, keyPath: '', line: pos?.line, reason: `invalid YAML${pos ? ` (column ${pos.col})` : ''}: ${e.message.split('\n')[0]}` };
    }));
  }
  const lineOf = (keyPath: readonly (string | number)[]) => {
    const offset = offsetOf(doc, keyPath);
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, '', `invalid YAML: ${(err as Error).message}`, { cause: err });
  }
  const result = clusterFileSchema.safeParse(data, { reportInput: true });
  if (!result.success) throw ConfigError.fromIssues(zodIssues(result.error.issues, file, data, lineOf));
  const conflicts = placementProblems(result.data, lineOf, file);
  if (conflicts.length > 0) throw ConfigError.fromIssues(conflicts);
  return { cluster: result.data, lineOf };
}

function offsetOf(doc: Document, keyPath: readonly (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let best: number | undefined = (node as { range?: [number] } | null)?.range?.[0];
  for (const seg of keyPath) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (pair === undefined) break;
      best = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      best = (node as { range?: [number] } | undefined)?.range?.[0] ?? best;
    } else break;
  }
  return best;
}

function zodIssues(
  zissues: readonly z.core.$ZodIssue[],
  file: string,
  data: unknown,
  lineOf: (p: readonly (string | number)[]) => number | undefined,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  const push = (p: readonly (string | number)[], reason: string) => {
    const keyPath = formatKeyPath(p);
    if (seen.has(keyPath + '\0' + reason)) return;
    seen.add(keyPath + '\0' + reason);
    out.push({ file, keyPath, reason, line: lineOf(p) });
  };
  for (const iss of zissues) {
    const p = iss.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) push([...p, key], `unknown key${suggest(p, key)}`);
      continue;
    }
    const present = hasPath(data, p);
    const value = present ? valueAt(data, p) : undefined;
    const shown = p[p.length - 1] === 'superDigest' && typeof value === 'string' ? '(a digest, not shown)' : showValue(value);
    push(p, present ? `${iss.message}, got ${shown}` : `missing; ${iss.message}`);
  }
  // In file order (sort is stable; issues without a line go last).
  return out.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

function suggest(parent: readonly (string | number)[], key: string): string {
  const where = formatKeyPath(parent.map((s) => (typeof s === 'number' ? -1 : s))).replace(/\[-1\]/g, '[]');
  const allowed = KEYS_AT[where] ?? [];
  if (ZOO_CFG_NAMES[key] !== undefined && where !== '') return ` (zoo.cfg's ${key} is ${ZOO_CFG_NAMES[key]} here)`;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of allowed) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best === undefined ? `; expected one of: ${allowed.join(', ')}` : `; did you mean ${best}?`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function hasPath(data: unknown, p: readonly (string | number)[]): boolean {
  let cur: unknown = data;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) return false;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return true;
}

function valueAt(data: unknown, p: readonly (string | number)[]): unknown {
  return p.reduce<unknown>((cur, seg) => (cur as Record<string | number, unknown>)[seg], data);
}

// ---- loading ----------------------------------------------------------------

export interface LoadedClusterFile {
  cluster: ClusterFile;
  quorum: QuorumServerConfig;
  /** Formatted like errors (`file:line: key: ...`); the caller logs them. */
  warnings: string[];
}

/**
 * Reads the cluster file and derives the quorum server configuration of server `serverId`
 * (the process's --id). Relative directories are taken from the file's directory; `{id}` in
 * dataDir and dataLogDir is replaced by the server id. Throws ConfigError.
 */
export function loadClusterFile(file: string, serverId: number): LoadedClusterFile {
  const { cluster, lineOf } = parse(readConfigText(file), file);
  const q = cluster.quorum;
  if (q === undefined) throw new ConfigError(file, 'quorum', 'missing; `quorate quorum` needs a quorum section (see conf/cluster.yaml)', { line: lineOf([]) });

  const baseDir = path.dirname(path.resolve(file));
  const dirOf = (d: string) => path.resolve(baseDir, d.replaceAll('{id}', String(serverId)));
  const servers: QuorumServer[] = (q.servers ?? []).map((s) => {
    const out: QuorumServer = {
      id: s.id,
      host: s.host,
      peerPort: s.peerPort ?? DEFAULT_PEER_PORT,
      electionPort: s.electionPort ?? DEFAULT_ELECTION_PORT,
      role: s.role ?? 'participant',
      clientPort: s.clientPort ?? q.clientPort ?? ZK_DEFAULTS.client_port,
    };
    const clientHost = s.clientHost ?? q.clientHost;
    if (clientHost !== undefined) out.clientHost = clientHost;
    const adminPort = s.adminPort ?? q.adminPort;
    if (adminPort !== undefined) out.adminPort = adminPort;
    const adminHost = s.adminHost ?? q.adminHost;
    if (adminHost !== undefined) out.adminHost = adminHost;
    const metricsPort = s.metricsPort ?? q.metricsPort;
    if (metricsPort !== undefined) out.metricsPort = metricsPort;
    const metricsHost = s.metricsHost ?? q.metricsHost;
    if (metricsHost !== undefined) out.metricsHost = metricsHost;
    return out;
  });

  const yamlPath: Record<InputField, readonly (string | number)[]> = {
    clusterId: ['cluster'], serverId: [], dataDir: ['quorum', 'dataDir'], dataLogDir: ['quorum', 'dataLogDir'],
    tickMs: ['quorum', 'tickMs'], initLimitTicks: ['quorum', 'initLimitTicks'], syncLimitTicks: ['quorum', 'syncLimitTicks'],
    clientHost: ['quorum', 'clientHost'], clientPort: ['quorum', 'clientPort'], maxClientCnxns: ['quorum', 'maxClientCnxns'],
    minSessionTimeoutMs: ['quorum', 'session', 'minTimeoutMs'], maxSessionTimeoutMs: ['quorum', 'session', 'maxTimeoutMs'],
    snapCount: ['quorum', 'snapCount'], autopurgeSnapRetainCount: ['quorum', 'autopurge', 'snapRetainCount'],
    autopurgePurgeIntervalHours: ['quorum', 'autopurge', 'purgeIntervalHours'], fourLetterWords: ['quorum', 'fourLetterWords'],
    skipAcl: ['quorum', 'skipAcl'], superDigest: ['quorum', 'superDigest'], forceSync: ['quorum', 'forceSync'],
    packetBytesMax: ['quorum', 'packetBytesMax'], standaloneEnabled: ['quorum', 'standaloneEnabled'],
    reconfigEnabled: ['quorum', 'reconfigEnabled'], adminPort: ['quorum', 'adminPort'], metricsPort: ['quorum', 'metricsPort'],
    adminHost: ['quorum', 'adminHost'], metricsHost: ['quorum', 'metricsHost'],
    // zoo.cfg's alone (admin.commandURL, admin.idleTimeout, metricsProvider.exportJvmInfo): never set from a cluster file.
    adminCommandUrl: ['quorum', 'adminPort'], adminIdleTimeoutMs: ['quorum', 'adminPort'], metricsProcess: ['quorum', 'metricsPort'],
  };
  const source: ConfigSource = {
    file,
    locate: (field) => (field === 'serverId' ? { keyPath: '--id' } : { keyPath: formatKeyPath(yamlPath[field]), line: lineOf(yamlPath[field]) }),
    locateServer: (i, field) => {
      const p = field === null ? ['quorum', 'servers', i] : ['quorum', 'servers', i, field];
      return { keyPath: formatKeyPath(p), line: lineOf(p) };
    },
    locateServers: () => ({ keyPath: 'quorum.servers', line: lineOf(['quorum', 'servers']) }),
  };
  const { quorum, warnings } = buildQuorumConfig(
    {
      clusterId: cluster.cluster,
      serverId,
      dataDir: dirOf(q.dataDir),
      dataLogDir: q.dataLogDir === undefined ? undefined : dirOf(q.dataLogDir),
      tickMs: q.tickMs ?? CLUSTER_FILE_DEFAULTS.tick_ms,
      initLimitTicks: q.initLimitTicks,
      syncLimitTicks: q.syncLimitTicks,
      clientHost: q.clientHost,
      clientPort: q.clientPort,
      maxClientCnxns: q.maxClientCnxns,
      minSessionTimeoutMs: q.session?.minTimeoutMs ?? (q.tickMs === undefined ? CLUSTER_FILE_DEFAULTS.min_session_timeout_ms : undefined),
      maxSessionTimeoutMs: q.session?.maxTimeoutMs ?? (q.tickMs === undefined ? CLUSTER_FILE_DEFAULTS.max_session_timeout_ms : undefined),
      snapCount: q.snapCount,
      autopurgeSnapRetainCount: q.autopurge?.snapRetainCount,
      autopurgePurgeIntervalHours: q.autopurge?.purgeIntervalHours,
      fourLetterWords: q.fourLetterWords,
      skipAcl: q.skipAcl,
      superDigest: q.superDigest,
      forceSync: q.forceSync,
      packetBytesMax: q.packetBytesMax,
      standaloneEnabled: q.standaloneEnabled,
      reconfigEnabled: q.reconfigEnabled,
      servers,
      adminPort: q.adminPort,
      adminHost: q.adminHost,
      metricsPort: q.metricsPort,
      metricsHost: q.metricsHost,
    },
    source,
  );
  if (q.tls !== undefined) quorum.peerTls = readTls(q.tls, baseDir, ['quorum', 'tls'], lineOf, file);
  const self = q.servers?.find((s) => s.id === serverId);
  const securePort = self?.secureClientPort ?? q.secureClientPort ?? null;
  if ((securePort === null) !== (q.clientTls === undefined)) {
    const at = securePort === null ? ['quorum', 'clientTls'] : ['quorum', 'secureClientPort'];
    throw new ConfigError(file, securePort === null ? 'quorum.secureClientPort' : 'quorum.clientTls', securePort === null
      ? 'missing: quorum.clientTls is given, but no secureClientPort to serve it on'
      : 'missing: a secureClientPort needs quorum.clientTls (certFile, keyFile, and caFile for client certificates)', { line: lineOf(at) });
  }
  if (q.clientTls !== undefined && securePort !== null) {
    const t = q.clientTls;
    const auth = t.clientAuth ?? 'none';
    if (auth !== 'none' && t.caFile === undefined) throw new ConfigError(file, 'quorum.clientTls.caFile', `missing: clientAuth ${auth} needs the CA that signs the clients' certificates`, { line: lineOf(['quorum', 'clientTls']) });
    const one = (k: 'certFile' | 'keyFile' | 'caFile', what: string, secret: boolean) => readSecret(t[k]!, baseDir, what, `quorum.clientTls.${k}`, lineOf(['quorum', 'clientTls', k]), file, { secret });
    quorum.secureClientPort = securePort;
    quorum.clientTls = { cert: one('certFile', 'TLS certificate', false), key: one('keyFile', 'TLS key', true), ca: t.caFile === undefined ? null : one('caFile', 'TLS CA certificate', false), clientAuth: auth };
  }
  const plain = plainPeersProblem(quorum, q.insecure ?? false);
  if (plain !== null) throw new ConfigError(file, 'quorum.tls', `missing: ${plain}; give quorum.tls (certFile, keyFile, caFile), or insecure: true to accept that`, { line: lineOf(['quorum']) });
  return { cluster, quorum, warnings };
}

export interface JournalNodeAddress { id: number; host: string; port: number }
export interface JournalNodeConfig {
  clusterId: string;
  nodeId: number;
  /** Absolute; `{id}` replaced by the node id. Each journal is a directory in it. */
  dataDir: string;
  host: string;
  port: number;
  /** Where this node serves its Prometheus metrics (on `host`), or null: not served. */
  metricsPort: number | null;
  nodes: JournalNodeAddress[];
  requestTimeoutMs: number;
  catchUpIntervalMs: number;
  /** Mutual TLS (PEM texts), or null: plain HTTP. */
  tls: JournalTls | null;
  /** Common names of the certificates allowed format --force and purge. */
  operators: string[];
  insecure: boolean;
}

/** Journal defaults: far below Hadoop's 20 s write timeout. */
export const JOURNAL_DEFAULTS = { request_timeout_ms: 2000, catch_up_interval_ms: 1000 } as const;

/** The journal node `nodeId` of the cluster file's journal section (or, with nodeId null, the section for clients). */
export function loadJournalConfig(file: string, nodeId: number | null): JournalNodeConfig {
  const { cluster, lineOf } = parse(readConfigText(file), file);
  const j = cluster.journal;
  if (j === undefined) throw new ConfigError(file, 'journal', 'missing; journal nodes and their clients need a journal section (see conf/cluster.yaml)', { line: lineOf([]) });
  const seen = new Set<number>();
  j.nodes.forEach((n, i) => {
    if (seen.has(n.id)) throw new ConfigError(file, formatKeyPath(['journal', 'nodes', i, 'id']), `journal node id ${n.id} is listed twice`, { line: lineOf(['journal', 'nodes', i, 'id']) });
    seen.add(n.id);
  });
  const me = nodeId === null ? j.nodes[0] : j.nodes.find((n) => n.id === nodeId);
  if (me === undefined) throw new ConfigError(file, 'journal.nodes', `no journal node with id ${nodeId} (listed: ${j.nodes.map((n) => n.id).join(', ')})`, { line: lineOf(['journal', 'nodes']) });
  const id = nodeId ?? me.id;
  if (nodeId !== null && j.tls === undefined && !j.insecure && !isLoopback(me.host)) {
    throw new ConfigError(file, 'journal.tls', `missing: journal node ${id} would serve plain HTTP on ${me.host}, where anyone who reaches it can fence the writer or erase a journal; give journal.tls (certFile, keyFile, caFile), or insecure: true to accept that`, { line: lineOf(['journal']) });
  }
  return {
    clusterId: cluster.cluster,
    nodeId: id,
    dataDir: path.resolve(path.dirname(path.resolve(file)), j.dataDir.replaceAll('{id}', String(id))),
    host: me.host,
    port: me.port,
    metricsPort: me.metricsPort ?? null,
    nodes: j.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port })),
    requestTimeoutMs: j.requestTimeoutMs ?? JOURNAL_DEFAULTS.request_timeout_ms,
    catchUpIntervalMs: j.catchUpIntervalMs ?? JOURNAL_DEFAULTS.catch_up_interval_ms,
    tls: j.tls === undefined ? null : readTls(j.tls, path.dirname(path.resolve(file)), ['journal', 'tls'], lineOf, file),
    operators: j.operators ?? [],
    insecure: j.insecure ?? false,
  };
}

/** A tls section's files: the certificate and CA as they are, the key refused if other users can read it. */
export function readTls(t: { certFile: string; keyFile: string; caFile: string }, base: string, at: string[], lineOf: (p: (string | number)[]) => number | undefined, file: string): { cert: string; key: string; ca: string } {
  const one = (k: 'certFile' | 'keyFile' | 'caFile', what: string, secret: boolean) =>
    readSecret(t[k], base, what, formatKeyPath([...at, k]), lineOf([...at, k]), file, { secret });
  return { cert: one('certFile', 'TLS certificate', false), key: one('keyFile', 'TLS key', true), ca: one('caFile', 'TLS CA certificate', false) };
}

/** The cluster file's runDir (absolute), or null when it leaves it to the default. */
export function loadRunDir(file: string): string | null {
  const { cluster } = parse(readConfigText(file), file);
  return cluster.runDir === undefined ? null : path.resolve(path.dirname(path.resolve(file)), cluster.runDir);
}

/** Reads a configuration file, turning I/O failures into a ConfigError naming the file. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'file not found' :
      code === 'EACCES' ? 'cannot read the file: permission denied' :
      code === 'EISDIR' ? 'is a directory, expected a file' :
      `cannot read the file: ${(err as Error).message}`;
    throw new ConfigError(file, '', reason, { cause: err });
  }
}
