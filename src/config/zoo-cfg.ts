// `quorate quorum --zoo-cfg FILE`: a ZooKeeper zoo.cfg as ZooKeeper users
// write it (java.util.Properties syntax), with the server id in dataDir/myid
// and, optionally, the server.N lines in a dynamicConfigFile. Keys we honour
// are mapped onto QuorumServerConfig; ZooKeeper keys we do not use are named
// in a warning; anything else is an error, so a typo never passes silently.
// forceSync=no is honoured, with a warning. Hierarchical quorums
// (group.N/weight.N) are refused: ignoring them would change what a majority is.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readConfigText } from './cluster-file.js';
import { isZooCfgTlsKey, readZooCfgTls } from './zoo-cfg-tls.js';
import { ConfigError, formatIssue, showValue, type ConfigIssue } from './errors.js';
import {
  buildQuorumConfig,
  plainPeersProblem,
  HTTP_PORT_DEFAULTS,
  QUORUM_CONFIG_BOUNDS as B,
  ZK_ONLY_FOUR_LETTER_WORDS,
  type InputField,
  type QuorumConfigInput,
  type QuorumServer,
  type QuorumServerConfig,
} from './quorum-config.js';

export interface PropertyEntry {
  key: string;
  value: string;
  /** 1-based line where the (possibly continued) entry starts. */
  line: number;
}

export interface LoadedZooCfg {
  quorum: QuorumServerConfig;
  /** Formatted `zoo.cfg:LINE: ...`; the caller logs them. */
  warnings: string[];
}

/** zoo.cfg key → the field it sets. Keys also accepted with ZooKeeper's `zookeeper.` system-property prefix are marked. */
const FIELD_OF: Record<string, InputField> = {
  tickTime: 'tickMs', initLimit: 'initLimitTicks', syncLimit: 'syncLimitTicks', dataDir: 'dataDir', dataLogDir: 'dataLogDir',
  clientPort: 'clientPort', clientPortAddress: 'clientHost', maxClientCnxns: 'maxClientCnxns',
  minSessionTimeout: 'minSessionTimeoutMs', maxSessionTimeout: 'maxSessionTimeoutMs', snapCount: 'snapCount',
  'autopurge.snapRetainCount': 'autopurgeSnapRetainCount', 'autopurge.purgeInterval': 'autopurgePurgeIntervalHours',
  '4lw.commands.whitelist': 'fourLetterWords', skipACL: 'skipAcl', forceSync: 'forceSync', 'jute.maxbuffer': 'packetBytesMax',
  standaloneEnabled: 'standaloneEnabled', reconfigEnabled: 'reconfigEnabled', 'DigestAuthenticationProvider.superDigest': 'superDigest',
  'quorate.clusterId': 'clusterId',
  'admin.serverPort': 'adminPort', 'admin.serverAddress': 'adminHost', 'admin.commandURL': 'adminCommandUrl', 'admin.idleTimeout': 'adminIdleTimeoutMs',
  'metricsProvider.httpPort': 'metricsPort', 'metricsProvider.httpHost': 'metricsHost', 'metricsProvider.exportJvmInfo': 'metricsProcess',
};
/** zoo.cfg keys of the AdminServer and of the metrics provider, which count only when it is on. */
const ADMIN_FIELDS = ['adminPort', 'adminHost', 'adminCommandUrl', 'adminIdleTimeoutMs'] as const;
const METRICS_FIELDS = ['metricsPort', 'metricsHost', 'metricsProcess'] as const;
export const PROMETHEUS_PROVIDER = 'org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider';
/** ZooKeeper's providers that serve no port: its default (mntr only) and the null one. */
const PORTLESS_PROVIDERS = new Set(['org.apache.zookeeper.metrics.impl.DefaultMetricsProvider', 'org.apache.zookeeper.metrics.impl.NullMetricsProvider']);
/** ZooKeeper reads these as system properties, so operators also write them with the prefix. */
const SYSTEM_PROPERTY_KEYS = new Set(['snapCount', 'forceSync', 'skipACL', '4lw.commands.whitelist', 'jute.maxbuffer', 'DigestAuthenticationProvider.superDigest']);

/** ZooKeeper settings Quorate has no use for: named in a warning and ignored. */
const UNUSED_KEYS = new Set(`
  secureClientPort secureClientPortAddress observerMasterPort clientPortListenBacklog localSessionsEnabled localSessionsUpgradingEnabled
  connectToLearnerMasterLimit electionAlg quorumListenOnAllIPs syncEnabled sslQuorum portUnification sslQuorumReloadCertFiles
  quorum.cnxn.threads.size globalOutstandingLimit preAllocSize snapCountLimit snapSizeLimitInKb txnLogSizeLimitInKb commitLogCount
  fsync.warningthresholdms maxResponseCacheSize maxGetChildrenResponseCacheSize extendedTypesEnabled emulate353TTLNodes
  serverCnxnFactory leaderServes cnxTimeout quorumCnxnTimeoutMs tcpKeepAlive clientTcpKeepAlive electionPortBindRetry maxCnxns
  sessionRequireClientSASLAuth enforceQuota largeRequestMaxBytes largeRequestThreshold outstandingHandshake.limit throttledOpWaitTime
  closeSessionTxn.enabled flushDelay maxWriteQueuePollTime maxBatchSize requestStaleLatencyCheck requestStaleConnectionCheck
  forward_learner_requests_to_commit_processor_disabled fips-mode superUser connectionMaxTokens connectionTokenFillTime
  connectionTokenFillCount connectionFreezeTime connectionDropIncrease connectionDropDecrease connectionDecreaseRatio
  requestThrottleLimit requestThrottleStallTime requestThrottleDropStale clientCnxnSocket`.split(/\s+/).filter(Boolean));
const UNUSED_PREFIXES = [
  'admin.', 'metricsProvider.', 'ssl.', 'authProvider.', 'quorum.auth.', 'kerberos.', 'netty.', 'multiAddress.', 'fastleader.',
  'jvm.pause.', 'learner.', 'leader.', 'observer.', 'audit.', 'snapshot.', 'digest.', 'enforce.auth.', 'jute.maxbuffer.',
  'X509AuthenticationProvider.', 'DigestAuthenticationProvider.', 'zookeeper.',
];
/** Unused settings whose absence weakens security: said plainly. */
const SECURITY = /^(ssl|sslQuorum|secureClientPort|portUnification|authProvider|quorum\.auth|sessionRequireClientSASLAuth|enforce\.auth|X509|kerberos|superUser)/;

const isOff = (v: string) => /^(false|no|off|0)$/i.test(v.trim());

/**
 * Why a ZooKeeper key that asks for a protection or a port Quorate does not provide must stop the
 * server (null when it asks for nothing: off, or inert on its own). A warning is not enough where
 * the operator believes they are protected, or points a tool at a port that is not there.
 */
function unprovided(key: string, value: string): string | null {
  const instead = 'remove it to run without it knowingly, or keep this ensemble on ZooKeeper until Quorate provides it';
  if (key === 'portUnification' && !isOff(value)) return `plain and TLS on one port (portUnification) is not provided by Quorate: give secureClientPort its own port, or ${instead}`;
  if (key === 'ssl.keyStore.password' || key === 'ssl.quorum.keyStore.password') return `encrypted private keys are not read by Quorate: store the key decrypted with mode 0600 and remove ${key}`;
  if (key.startsWith('quorum.auth.') && /(enableSasl|RequireSasl)$/.test(key) && !isOff(value)) return `SASL between quorum servers is not provided by Quorate: ${instead}`;
  if (key === 'sessionRequireClientSASLAuth' || key.startsWith('enforce.auth.')) return isOff(value) ? null : `required client authentication (${key}) is not provided by Quorate: ${instead}`;
  if (key.startsWith('authProvider.')) return `auth provider ${value} is not provided by Quorate (digest is built in): ${instead}`;
  if (key === 'superUser' || key.startsWith('X509AuthenticationProvider.') || key.startsWith('kerberos.')) return `${key} asks for an identity scheme Quorate does not provide: ${instead}`;
  if (/^admin\.(forceHttps|portUnification|needClientAuth)$/.test(key) && !isOff(value)) {
    return `HTTPS on the AdminServer (${key}) is not provided by Quorate: bind it to a management address (admin.serverAddress) or firewall it, and ${instead}`;
  }
  if (key.startsWith('metricsProvider.https') || key.startsWith('metricsProvider.ssl')) {
    return `HTTPS on the metrics port (${key}) is not provided by Quorate: bind it to a management address (metricsProvider.httpHost) or firewall it, and ${instead}`;
  }
  return null;
}

/** java.util.Properties syntax: `#`/`!` comments, `=`, `:` or blank separators, `\` continuations and escapes. */
export function parseProperties(text: string): PropertyEntry[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const out: PropertyEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i].replace(/^[ \t\f]+/, '');
    if (logical === '' || logical[0] === '#' || logical[0] === '!') continue;
    while (/(^|[^\\])(\\\\)*\\$/.test(logical) && i + 1 < lines.length) {
      logical = logical.slice(0, -1) + lines[++i].replace(/^[ \t\f]+/, '');
    }
    let k = 0;
    while (k < logical.length && !'=: \t\f'.includes(logical[k])) k += logical[k] === '\\' ? 2 : 1;
    let v = k;
    while (v < logical.length && ' \t\f'.includes(logical[v])) v++;
    if (v < logical.length && '=:'.includes(logical[v])) v++;
    while (v < logical.length && ' \t\f'.includes(logical[v])) v++;
    // ZooKeeper trims both (QuorumPeerConfig.parseProperties).
    out.push({ key: unescape(logical.slice(0, k)).trim(), value: unescape(logical.slice(v)).trim(), line: start + 1 });
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) =>
    c.length === 5 ? String.fromCharCode(parseInt(c.slice(1), 16)) : ({ t: '\t', n: '\n', r: '\r', f: '\f' } as Record<string, string>)[c] ?? c);
}

/** Reads a zoo.cfg (and its dynamicConfigFile and dataDir/myid) into the quorum configuration. Throws ConfigError. */
export function loadZooCfg(file: string): LoadedZooCfg {
  const baseDir = path.dirname(path.resolve(file));
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const fail = (f: string, e: { key: string; line?: number }, reason: string) => issues.push({ file: f, keyPath: e.key, reason, line: e.line });
  const warn = (f: string, e: { key: string; line?: number }, reason: string) => warnings.push({ file: f, keyPath: e.key, reason, line: e.line });

  const entries = dedupe(parseProperties(readConfigText(file)), file, warn);
  const input: Partial<QuorumConfigInput> & { servers: QuorumServer[] } = { servers: [] };
  let adminEnable: PropertyEntry | undefined;
  let metricsClass: PropertyEntry | undefined;
  const setBy = new Map<InputField, PropertyEntry>();
  const serverLines: { entry: PropertyEntry; file: string }[] = [];
  let dynamicFile: PropertyEntry | undefined;
  /** Quorate's own key: plain TCP between servers on addresses other than loopback, said knowingly. */
  let insecurePeers = false;
  const tlsEntries = new Map<string, PropertyEntry>();
  let peerType: { entry: PropertyEntry; role: 'participant' | 'observer' } | undefined;

  for (const e of entries) {
    const key = e.key.startsWith('zookeeper.') && SYSTEM_PROPERTY_KEYS.has(e.key.slice(10)) ? e.key.slice(10) : e.key;
    const field = FIELD_OF[key];
    if (field !== undefined) {
      setBy.set(field, e);
      const value = convert(field, e, file, fail, warn);
      if (value !== undefined) (input as Record<string, unknown>)[field] = value;
    } else if (/^server\.[^.]+$/.test(key)) serverLines.push({ entry: e, file });
    else if (/^(group|weight)\.[^.]+$/.test(key)) fail(file, e, 'hierarchical quorums (group.N, weight.N) are not supported: Quorate counts a plain majority of participants; remove them or stay on ZooKeeper');
    else if (key === 'dynamicConfigFile') dynamicFile = e;
    else if (key === 'admin.enableServer') {
      if (/^(true|false)$/i.test(e.value)) adminEnable = e;
      else fail(file, e, `expected true or false, got ${showValue(e.value)}`);
    } else if (key === 'metricsProvider.className') {
      if (e.value === PROMETHEUS_PROVIDER || PORTLESS_PROVIDERS.has(e.value)) metricsClass = e;
      else fail(file, e, `unknown metrics provider ${showValue(e.value)}: Quorate serves ${PROMETHEUS_PROVIDER} (Prometheus text on metricsProvider.httpPort), or none`);
    }
    else if (isZooCfgTlsKey(key)) tlsEntries.set(key, e);
    else if (key === 'quorate.insecurePeers') {
      if (/^(true|false)$/i.test(e.value.trim())) insecurePeers = e.value.trim().toLowerCase() === 'true';
      else fail(file, e, `expected true or false, got ${showValue(e.value)}`);
    }
    else if (key === 'peerType') {
      const v = e.value.toLowerCase();
      if (v === 'participant' || v === 'observer') peerType = { entry: e, role: v };
      else fail(file, e, `expected participant or observer, got ${showValue(e.value)}`);
    } else if (UNUSED_KEYS.has(key) || UNUSED_PREFIXES.some((p) => key.startsWith(p))) {
      const refused = unprovided(key, e.value);
      if (refused !== null) { fail(file, e, refused); continue; }
      const security = SECURITY.test(key) ? ' (a security setting: it is NOT in effect under Quorate)' : '';
      warn(file, e, `key ${key} is a ZooKeeper setting Quorate does not use; ignored${security}`);
    } else fail(file, e, 'unknown key: neither a ZooKeeper setting nor a Quorate one');
  }
  httpPortsFrom(input, setBy, adminEnable, metricsClass, (e, reason) => warn(file, e, reason));
  if (dynamicFile !== undefined) {
    const dyn = path.resolve(baseDir, dynamicFile.value);
    for (const s of serverLines) fail(file, s.entry, `must be in the dynamic config file ${dynamicFile.value} (dynamicConfigFile is set)`);
    serverLines.length = 0;
    for (const e of dedupe(parseProperties(readConfigText(dyn)), dyn, warn)) {
      if (/^server\.[^.]+$/.test(e.key)) serverLines.push({ entry: e, file: dyn });
      else if (/^(group|weight)\.[^.]+$/.test(e.key)) fail(dyn, e, 'hierarchical quorums (group.N, weight.N) are not supported');
      else if (e.key !== 'version') fail(dyn, e, 'unknown key: a dynamic config file holds server.N lines (and version) only');
    }
  }
  const serverAt: { entry: PropertyEntry; file: string }[] = [];
  for (const s of serverLines) {
    const server = parseServerLine(s.entry, s.file, fail);
    if (server === undefined) continue;
    input.servers.push(server);
    serverAt.push(s);
  }

  // Directories: relative paths are taken from the zoo.cfg's directory, not the working directory.
  for (const field of ['dataDir', 'dataLogDir'] as const) {
    const v = input[field];
    if (v === undefined || v === '') continue;
    if (!path.isAbsolute(v)) warn(file, setBy.get(field)!, `relative path ${v} is taken from the directory of ${file}, not the working directory as ZooKeeper does`);
    input[field] = path.resolve(baseDir, v);
  }
  if (input.dataDir === undefined && !issues.some((i) => i.keyPath === 'dataDir')) issues.push({ file, keyPath: 'dataDir', reason: 'missing; ZooKeeper and Quorate need dataDir (the directory holding myid and the snapshots)' });
  if (issues.length > 0) throw ConfigError.fromIssues(issues);
  const dataDir = input.dataDir!;

  // Which server this is: dataDir/myid, needed whenever there is an ensemble.
  const myidPath = path.join(dataDir, 'myid');
  const distributed = input.servers.length > 1 || (input.servers.length === 1 && input.standaloneEnabled === false);
  let serverId: number;
  if (existsSync(myidPath)) serverId = readMyid(myidPath);
  else if (distributed) {
    throw new ConfigError(myidPath, '', `file not found; with server.N lines each server needs its id in dataDir/myid (for example: echo 1 > ${myidPath})`);
  } else serverId = input.servers.length === 1 ? input.servers[0].id : 1;

  // This server's client address: the server.N `;host:port` part and clientPort/clientPortAddress must agree.
  const self = input.servers.find((s) => s.id === serverId);
  if (self !== undefined) {
    for (const [field, key, own] of [['clientPort', 'clientPort', self.clientPort], ['clientHost', 'clientPortAddress', self.clientHost]] as const) {
      const e = setBy.get(field);
      if (own !== undefined && e !== undefined && String(input[field]) !== String(own)) {
        fail(file, e, `${key} ${e.value} differs from the client address in server.${self.id} (${own}); keep one`);
      }
    }
    if (peerType !== undefined && peerType.role !== self.role) {
      warn(file, peerType.entry, `peerType ${peerType.role} does not match server.${self.id} (${self.role}); using the server line, as ZooKeeper does`);
    }
  }
  if (issues.length > 0) throw ConfigError.fromIssues(issues);

  const where = (e: PropertyEntry | undefined, key: string, f = file) => ({ keyPath: e?.key ?? key, line: e?.line, file: f });
  const keyOf = Object.fromEntries(Object.entries(FIELD_OF).map(([k, f]) => [f, k])) as Record<InputField, string>;
  const { quorum, warnings: more } = buildQuorumConfig(
    { ...input, clusterId: input.clusterId ?? 'default', serverId, dataDir },
    {
      file,
      locate: (field) => (field === 'serverId' ? { keyPath: '', file: myidPath } : where(setBy.get(field), keyOf[field])),
      locateServer: (i) => where(serverAt[i]?.entry, 'server.N', serverAt[i]?.file),
      locateServers: () => ({ keyPath: 'server.N', line: serverAt[0]?.entry.line, file: serverAt[0]?.file }),
    },
  );
  const tlsSettings = readZooCfgTls(tlsEntries, baseDir, (e, reason) => { throw new ConfigError(file, e.key, reason, { line: e.line }); });
  quorum.peerTls = tlsSettings.peerTls;
  quorum.secureClientPort = tlsSettings.secureClientPort;
  quorum.clientTls = tlsSettings.clientTls;
  if (tlsSettings.secureClientHost !== null) quorum.secureClientHost = tlsSettings.secureClientHost;
  const plain = plainPeersProblem(quorum, insecurePeers);
  if (plain !== null) {
    throw new ConfigError(file, 'server.N', `${plain}; TLS between servers (sslQuorum) is not provided for a zoo.cfg yet: use a cluster file with quorum.tls, or add quorate.insecurePeers=true to accept that`, { line: serverAt[0]?.entry.line });
  }
  // Warnings in file order: zoo.cfg first, then the dynamic file; stable within a line.
  const order = (w: ConfigIssue) => (w.file === file ? 0 : 1e9) + (w.line ?? 0);
  return { quorum, warnings: [...warnings.sort((a, b) => order(a) - order(b)).map(formatIssue), ...more] };
}

type Report = (file: string, e: { key: string; line?: number }, reason: string) => void;

/**
 * Whether the AdminServer and the Prometheus port run, from ZooKeeper's keys. The AdminServer runs
 * when admin.enableServer=true or admin.serverPort is set (ZooKeeper also runs it, on 8080, when
 * neither is: a port nobody asked for is not opened here); Prometheus when metricsProvider.className
 * names its provider (port 7000 by default, as ZooKeeper). The other keys of a port that does not
 * run are ignored with a warning, as ZooKeeper ignores them.
 */
function httpPortsFrom(
  input: Partial<QuorumConfigInput>,
  setBy: Map<InputField, PropertyEntry>,
  adminEnable: PropertyEntry | undefined,
  metricsClass: PropertyEntry | undefined,
  warn: (e: PropertyEntry, reason: string) => void,
): void {
  const adminOn = adminEnable !== undefined ? !isOff(adminEnable.value) : setBy.has('adminPort');
  if (adminOn) input.adminPort ??= HTTP_PORT_DEFAULTS.admin_port;
  const metricsOn = metricsClass?.value === PROMETHEUS_PROVIDER;
  if (metricsOn) input.metricsPort ??= HTTP_PORT_DEFAULTS.metrics_port;
  const drop = (fields: readonly InputField[], why: string) => {
    for (const field of fields) {
      const e = setBy.get(field);
      if (e === undefined) continue;
      warn(e, `ignored: ${why}`);
      delete (input as Record<string, unknown>)[field];
      setBy.delete(field);
    }
  };
  if (!adminOn) drop(ADMIN_FIELDS, 'admin.enableServer is false');
  if (!metricsOn) drop(METRICS_FIELDS, metricsClass === undefined ? `no metricsProvider.className (${PROMETHEUS_PROVIDER} serves this port)` : `metricsProvider.className is ${metricsClass.value}, which serves no port`);
}

/** Properties keep the last of duplicate keys; say so rather than guess. */
function dedupe(entries: PropertyEntry[], file: string, warn: Report): PropertyEntry[] {
  const last = new Map<string, PropertyEntry>();
  for (const e of entries) {
    const prev = last.get(e.key);
    if (prev !== undefined) warn(file, e, `set again (first on line ${prev.line}); the last value wins, as in ZooKeeper`);
    last.set(e.key, e);
  }
  return entries.filter((e) => last.get(e.key) === e);
}

function convert(field: InputField, e: PropertyEntry, file: string, fail: Report, warn: Report): unknown {
  const v = e.value;
  switch (field) {
    case 'dataDir': case 'dataLogDir':
      if (v === '') fail(file, e, 'expected a directory path, got ""');
      return v;
    case 'clientHost': case 'clusterId': case 'superDigest': case 'adminHost': case 'metricsHost': case 'adminCommandUrl':
      return v;
    case 'skipAcl': case 'forceSync': case 'standaloneEnabled': case 'reconfigEnabled': case 'metricsProcess': {
      const b = ({ yes: true, true: true, no: false, false: false } as Record<string, boolean>)[v.toLowerCase()];
      if (b === undefined) fail(file, e, `expected yes, no, true or false, got ${showValue(v)}`);
      return b;
    }
    case 'fourLetterWords': {
      const words = v.split(',').map((w) => w.trim()).filter((w) => w !== '');
      const zkOnly = words.filter((w) => (ZK_ONLY_FOUR_LETTER_WORDS as readonly string[]).includes(w));
      if (zkOnly.length > 0) warn(file, e, `four-letter word${zkOnly.length > 1 ? 's' : ''} ${zkOnly.join(', ')}: ZooKeeper's, not answered by Quorate; ignored`);
      return words.filter((w) => !zkOnly.includes(w));
    }
    default: {
      if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
        fail(file, e, `expected an integer, got ${showValue(v)}`);
        return undefined;
      }
      const n = Number(v);
      // ZooKeeper: -1 means "derive from tickTime" (2 and 20 ticks).
      if ((field === 'minSessionTimeoutMs' || field === 'maxSessionTimeoutMs') && n === -1) return undefined;
      if (field === 'autopurgeSnapRetainCount' && n < B.snap_retain_count_min) {
        warn(file, e, `${n} is below ${B.snap_retain_count_min}; using ${B.snap_retain_count_min}, as ZooKeeper does`);
        return B.snap_retain_count_min;
      }
      return n;
    }
  }
}

/** server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort] */
function parseServerLine(e: PropertyEntry, file: string, fail: Report): QuorumServer | undefined {
  const form = 'expected host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]';
  const idText = e.key.slice('server.'.length);
  if (!/^\d+$/.test(idText)) return void fail(file, e, `expected a numeric server id after "server.", got ${showValue(idText)}`);
  if (e.value.includes('|')) return void fail(file, e, 'several addresses per server (multiAddress, "|") are not supported');
  const [serverPart, clientPart, extra] = e.value.split(';').map((s) => s.trim());
  if (extra !== undefined) return void fail(file, e, `${form}, got ${showValue(e.value)}`);
  const sp = splitHostPorts(serverPart);
  if (sp === undefined || sp.length < 3 || sp.length > 4) return void fail(file, e, `${form}, got ${showValue(e.value)}`);
  const [host, peer, election, type] = sp;
  const role = type === undefined ? 'participant' : type.toLowerCase();
  if (role !== 'participant' && role !== 'observer') return void fail(file, e, `expected participant or observer as the 4th field, got ${showValue(type)}`);
  const ports = [peer, election].map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (ports.some(Number.isNaN)) return void fail(file, e, `expected numeric ports in ${showValue(serverPart)}`);
  const server: QuorumServer = { id: Number(idText), host, peerPort: ports[0], electionPort: ports[1], role };
  if (clientPart !== undefined && clientPart !== '') {
    const cp = splitHostPorts(clientPart);
    const portText = cp?.[cp.length - 1];
    if (cp === undefined || cp.length > 2 || !/^\d+$/.test(portText!)) return void fail(file, e, `expected [clientHost:]clientPort after ";", got ${showValue(clientPart)}`);
    server.clientPort = Number(portText);
    if (cp.length === 2) server.clientHost = cp[0];
  }
  return server;
}

/** `host:a:b`, `[v6]:a:b` → fields, brackets removed. */
function splitHostPorts(s: string): string[] | undefined {
  if (!s.startsWith('[')) return s.split(':').map((x) => x.trim());
  const close = s.indexOf(']');
  if (close < 0 || (close + 1 < s.length && s[close + 1] !== ':')) return undefined;
  const rest = s.slice(close + 2);
  return [s.slice(1, close), ...(rest === '' ? [] : rest.split(':').map((x) => x.trim()))];
}

function readMyid(myidPath: string): number {
  const text = readConfigText(myidPath).trim();
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(id) || id < B.server_id_min || id > B.server_id_max) {
    throw new ConfigError(myidPath, '', `expected a server id ${B.server_id_min}-${B.server_id_max}, got ${showValue(text)}`);
  }
  return id;
}
