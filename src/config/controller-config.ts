// What a controller (`quorate controller --config FILE --service S --id I`)
// and the operator commands read from the cluster file: the service, its
// instances (health checks, hooks, fencing), the quorum to elect through, and
// the journal nodes when the service has a journal. Defaults are chosen so a
// crashed service is seen within 0.5 s. Errors name the key path and line.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { JournalNodeAddress, JournalTls } from '../client/journal/node-client.js';
import type { ZkClientTls } from '../client/connection.js';
import { ZK_DEFAULTS } from '../limits.js';
import { CLUSTER_FILE_DEFAULTS, formatKeyPath, parseClusterFileWithLines, readConfigText, readTls, type ClusterFile } from './cluster-file.js';
import { ConfigError } from './errors.js';
import { readSecret } from './secret-file.js';
import { DEFAULT_RUN_DIR } from '../daemon/daemon-control.js';

export type HealthCheckConfig =
  | { kind: 'http'; url: string; expectStatus: number; jsonField: string | null; jsonValue: string | number | boolean | null; lagField: string | null; holdConnection: boolean; intervalMs: number; timeoutMs: number; failures: number }
  | { kind: 'tcp'; host: string; port: number; holdConnection: boolean; intervalMs: number; timeoutMs: number; failures: number }
  | { kind: 'command'; command: string; intervalMs: number; timeoutMs: number; failures: number };

export type HookConfig = { kind: 'command'; command: string; timeoutMs: number } | { kind: 'http'; url: string; timeoutMs: number };

export type FenceConfig =
  | { kind: 'graceful'; timeoutMs: number }
  | { kind: 'shell'; command: string; timeoutMs: number }
  | { kind: 'http'; url: string; timeoutMs: number }
  | { kind: 'journal'; timeoutMs: number }
  /** Paths are absolute (resolved from the cluster file's directory); exactly one of knownHosts and fingerprint is set. */
  | { kind: 'ssh'; user: string; port: number; keyFile: string; knownHosts: string | null; fingerprint: string | null; command: string | null; timeoutMs: number };

/**
 * Something that follows the active role (a floating IP, a filesystem, a daemon): started in order
 * when the instance becomes active, stopped in reverse when it stops being active, monitored while
 * active. Either one of Pacemaker's OCF resource agents or three commands.
 */
export type ResourceConfig =
  | { kind: 'ocf'; name: string; provider: string; type: string; params: Record<string, string>; timeoutMs: number | null; monitorIntervalMs: number | null; failures: number }
  | { kind: 'command'; name: string; start: string; stop: string; monitor: string | null; timeoutMs: number; monitorIntervalMs: number; failures: number };

export interface InstanceConfig {
  id: string;
  host: string;
  adminPort: number;
  servicePort: number | null;
  priority: number;
  noFailover: boolean;
  health: HealthCheckConfig[];
  hooks: { toActive: HookConfig; toStandby: HookConfig; role: HookConfig | null; preActive: HookConfig | null } | null;
  /** Started after toActive, in order; stopped before toStandby, in reverse. */
  resources: ResourceConfig[];
  fencing: FenceConfig[];
}

export interface ControllerConfig {
  clusterId: string;
  service: string;
  instance: InstanceConfig;
  instances: InstanceConfig[];
  connectString: string;
  sessionTimeoutMs: number;
  /** user:password for digest auth, or null. Never logged. */
  digest: string | null;
  adminToken: string | null;
  allowLoopbackWithoutToken: boolean;
  /** PEM texts, read at start; null: plain HTTP. */
  tls: { cert: string; key: string; ca: string | null; clientAuth: 'none' | 'want' | 'need' } | null;
  /** Client certificate CNs allowed the admin API's write endpoints, and those allowed only to read. */
  adminOperators: string[];
  adminReaders: string[];
  journalNodes: JournalNodeAddress[] | null;
  /** Mutual TLS to the journal nodes (journal.tls), or null. */
  journalTls: JournalTls | null;
  /** TLS to the quorum's client ports (controller.quorumTls), or null. */
  quorumTls: ZkClientTls | null;
  journalTimeoutMs: number;
  /** ms this instance waits, after the lock goes, before racing (by its priority rank). */
  raceDelayMs: number;
  cedeMs: number;
  promotionsPerWindow: number;
  promotionWindowMs: number;
  maxLagOnFailover: number | null;
  /** Keep the active without the quorum while the journal backs it (the service has a journal and role hooks). */
  failsafe: boolean;
  /** /quorate/<cluster>/<service> */
  basePath: string;
  /** Where the OCF resource agents live (OCF_ROOT). */
  ocfRoot: string;
  /** The failover history kept in the quorum: at most this many entries, none older than this. */
  history: { maxEntries: number; maxAgeMs: number };
  /** This controller's HA_RSCTMP: the agents' lock and pid files (one per controller: lab hosts share a disk). */
  resourceStateDir: string;
  /** Our quorum's worst-case leader-to-follower lag (syncLimit x tick), when the quorum is ours; null for an external ZooKeeper. */
  quorumSyncBoundMs: number | null;
  warnings: string[];
}

export const CONTROLLER_DEFAULTS = {
  session_timeout_ms: 6000,
  check_interval_ms: 200,
  check_timeout_ms: 1000,
  check_failures: 3,
  hook_timeout_ms: 10_000,
  resource_timeout_ms: 20_000,
  resource_monitor_interval_ms: 10_000,
  resource_failures: 1,
  ocf_root: '/usr/lib/ocf',
  history_max_entries: 1000,
  history_max_age_days: 90,
  fence_timeout_ms: 5000,
  race_delay_ms: 500,
  cede_ms: 10_000,
  // Flap damping: past 20 automatic promotions of one instance in 10 minutes (sustained flapping),
  // the next waits for the window. It holds off a promotion even when nothing else is active, so
  // the default only catches a long flap; manual failover is never damped.
  promotions_per_window: 20,
  promotion_window_ms: 10 * 60_000,
} as const;

/** What the lease's timing check allows for one round trip to the quorum. */
const LEASE_ROUND_TRIP_ALLOWANCE_MS = 200;

type Service = NonNullable<ClusterFile['services']>[number];
type Instance = Service['instances'][number];

function healthOf(checks: NonNullable<Instance['health']>): HealthCheckConfig[] {
  return checks.map((c) => {
    const common = { intervalMs: c.intervalMs ?? CONTROLLER_DEFAULTS.check_interval_ms, timeoutMs: c.timeoutMs ?? CONTROLLER_DEFAULTS.check_timeout_ms, failures: c.failures ?? CONTROLLER_DEFAULTS.check_failures };
    if ('http' in c) return { kind: 'http', url: c.http, expectStatus: c.expectStatus ?? 200, jsonField: c.jsonField ?? null, jsonValue: c.jsonValue ?? null, lagField: c.lagField ?? null, holdConnection: c.holdConnection ?? true, ...common };
    if ('tcp' in c) {
      const i = c.tcp.lastIndexOf(':');
      return { kind: 'tcp', host: c.tcp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(c.tcp.slice(i + 1)), holdConnection: c.holdConnection ?? true, ...common };
    }
    return { kind: 'command', command: c.command, ...common };
  });
}

function hookOf(h: { command: string; timeoutMs?: number } | { http: string; timeoutMs?: number }): HookConfig {
  const timeoutMs = h.timeoutMs ?? CONTROLLER_DEFAULTS.hook_timeout_ms;
  return 'command' in h ? { kind: 'command', command: h.command, timeoutMs } : { kind: 'http', url: h.http, timeoutMs };
}

function resourcesOf(list: NonNullable<Instance['resources']>): ResourceConfig[] {
  return list.map((r) => {
    const failures = r.failures ?? CONTROLLER_DEFAULTS.resource_failures;
    if ('ocf' in r) {
      const [provider, type] = r.ocf.split(':');
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.params ?? {})) params[k] = typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v);
      return { kind: 'ocf', name: r.name, provider, type, params, timeoutMs: r.timeoutMs ?? null, monitorIntervalMs: r.monitorIntervalMs ?? null, failures };
    }
    return {
      kind: 'command', name: r.name, start: r.start, stop: r.stop, monitor: r.monitor ?? null, failures,
      timeoutMs: r.timeoutMs ?? CONTROLLER_DEFAULTS.resource_timeout_ms, monitorIntervalMs: r.monitorIntervalMs ?? CONTROLLER_DEFAULTS.resource_monitor_interval_ms,
    };
  });
}

/** `base`: the cluster file's directory, which relative paths (ssh's keyFile and knownHosts) are resolved from. */
function fencingOf(f: NonNullable<Instance['fencing']>, base: string): FenceConfig[] {
  return f.map((m) => {
    if (m === 'graceful') return { kind: 'graceful', timeoutMs: CONTROLLER_DEFAULTS.fence_timeout_ms };
    if (m === 'journal') return { kind: 'journal', timeoutMs: 0 };
    if ('ssh' in m) {
      const s = m.ssh;
      return {
        kind: 'ssh', user: s.user, port: s.port ?? 22, keyFile: path.resolve(base, s.keyFile),
        knownHosts: s.knownHosts === undefined ? null : path.resolve(base, s.knownHosts),
        fingerprint: s.fingerprint ?? null, command: s.command ?? null, timeoutMs: s.timeoutMs ?? CONTROLLER_DEFAULTS.fence_timeout_ms,
      };
    }
    const timeoutMs = m.timeoutMs ?? CONTROLLER_DEFAULTS.fence_timeout_ms;
    return 'shell' in m ? { kind: 'shell', command: m.shell, timeoutMs } : { kind: 'http', url: m.http, timeoutMs };
  });
}

/** Why the ssh fencing key cannot be used unattended, or null: unreadable, readable by others, passphrase-protected. */
function sshKeyProblem(p: string): string | null {
  let key: Buffer;
  try {
    key = fs.readFileSync(p);
  } catch (e) {
    return `cannot read the ssh key ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  const mode = fs.statSync(p).mode & 0o777;
  if ((mode & 0o077) !== 0) return `the ssh key ${p} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${p}`;
  // ssh2 only for a controller that fences over ssh: loaded, it costs every controller about 13 MB resident.
  const ssh2 = createRequire(import.meta.url)('ssh2') as typeof import('ssh2');
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    return /passphrase/i.test(parsed.message)
      ? `the ssh key ${p} has a passphrase: a controller fences unattended; use a key without one (ssh-keygen -p -N "" -f ${p}), limited to the fence command on the target`
      : `cannot use the ssh key ${p}: ${parsed.message}`;
  }
  return null;
}

/** The shortest admin token taken: a guessable token is an open admin API. */
export const ADMIN_TOKEN_CHARS_MIN = 16;

/**
 * The configuration of every instance of `service` (instance null: for the operator commands) or
 * of the controller of instance `instanceId`. Throws ConfigError.
 */
export function loadControllerConfig(file: string, service: string, instanceId: string | null): ControllerConfig {
  const { cluster, lineOf } = parseClusterFileWithLines(readConfigText(file), file);
  const base = path.dirname(path.resolve(file));
  const services = cluster.services ?? [];
  const si = services.findIndex((s) => s.name === service);
  if (si < 0) throw new ConfigError(file, 'services', `no service named ${service} (listed: ${services.map((s) => s.name).join(', ') || 'none'})`, { line: lineOf(['services']) });
  const svc = services[si];
  const at = (...p: (string | number)[]) => ({ keyPath: formatKeyPath(['services', si, ...p]), line: lineOf(['services', si, ...p]) });
  const seen = new Set<string>();
  const instances: InstanceConfig[] = svc.instances.map((inst, ii) => {
    if (seen.has(inst.id)) { const w = at('instances', ii, 'id'); throw new ConfigError(file, w.keyPath, `instance id ${inst.id} is listed twice`, { line: w.line }); }
    seen.add(inst.id);
    const checks = inst.health ?? svc.health;
    let health: HealthCheckConfig[];
    if (checks !== undefined) health = healthOf(checks);
    else if (inst.servicePort !== undefined) {
      health = [{ kind: 'tcp', host: inst.host, port: inst.servicePort, holdConnection: true, intervalMs: CONTROLLER_DEFAULTS.check_interval_ms, timeoutMs: CONTROLLER_DEFAULTS.check_timeout_ms, failures: CONTROLLER_DEFAULTS.check_failures }];
    } else {
      const w = at('instances', ii);
      throw new ConfigError(file, w.keyPath, `instance ${inst.id} has no health checks and no servicePort to check`, { line: w.line });
    }
    const hooks = inst.hooks ?? svc.hooks;
    return {
      id: inst.id, host: inst.host, adminPort: inst.adminPort, servicePort: inst.servicePort ?? null,
      priority: inst.priority ?? 0, noFailover: inst.noFailover ?? false, health,
      hooks: hooks === undefined ? null : { toActive: hookOf(hooks.toActive), toStandby: hookOf(hooks.toStandby), role: hooks.role ? hookOf(hooks.role) : null, preActive: hooks.preActive ? hookOf(hooks.preActive) : null },
      resources: resourcesOf(inst.resources ?? svc.resources ?? []),
      fencing: fencingOf(inst.fencing ?? svc.fencing ?? ['graceful'], base),
    };
  });
  const ii = instanceId === null ? 0 : instances.findIndex((i) => i.id === instanceId);
  if (ii < 0) { const w = at('instances'); throw new ConfigError(file, w.keyPath, `service ${service} has no instance ${instanceId} (listed: ${instances.map((i) => i.id).join(', ')})`, { line: w.line }); }
  const instance = instances[ii];
  if (instanceId !== null && instance.hooks === null && instance.resources.length === 0) {
    const w = at('instances', ii);
    throw new ConfigError(file, w.keyPath, `instance ${instance.id} has no hooks and no resources: a controller needs toActive and toStandby hooks, or resources that follow the active (on the instance or the service)`, { line: w.line });
  }

  if (instanceId !== null) {
    // This controller fences the others with their methods: an ssh key it cannot use must stop it now, not at fence time.
    svc.instances.forEach((other, oi) => {
      if (oi === ii) return;
      const own = other.fencing !== undefined;
      (other.fencing ?? svc.fencing ?? []).forEach((m, k) => {
        if (typeof m === 'string' || !('ssh' in m)) return;
        const where = own ? at('instances', oi, 'fencing', k, 'ssh', 'keyFile') : at('fencing', k, 'ssh', 'keyFile');
        const problem = sshKeyProblem(path.resolve(base, m.ssh.keyFile));
        if (problem !== null) throw new ConfigError(file, where.keyPath, problem, { line: where.line });
      });
    });
  }

  const c = cluster.controller ?? {};
  const warnings: string[] = [];
  let connectString = (instanceId === null ? undefined : svc.instances[ii].connectString) ?? c.connectString;
  // A cluster file with a quorum section elects through it (its own servers, or a connect string to them).
  const q0 = cluster.quorum;
  const quorumSyncBoundMs = q0 === undefined ? null : (q0.tickMs ?? CLUSTER_FILE_DEFAULTS.tick_ms) * (q0.syncLimitTicks ?? ZK_DEFAULTS.sync_limit_ticks);
  if (connectString === undefined) {
    const q = cluster.quorum;
    if (q === undefined) throw new ConfigError(file, 'controller.connectString', 'missing; with no quorum section, give the ZooKeeper ensemble to elect through', { line: lineOf(['controller']) });
    const servers = q.servers ?? [];
    // With controller.quorumTls the controllers use the servers' TLS client ports.
    const secure = c.quorumTls !== undefined;
    if (secure && servers.every((s) => (s.secureClientPort ?? q.secureClientPort) === undefined)) {
      throw new ConfigError(file, 'controller.quorumTls', 'the quorum servers have no secureClientPort to speak TLS to', { line: lineOf(['controller', 'quorumTls']) });
    }
    const port = (secure ? q.secureClientPort : undefined) ?? q.clientPort ?? ZK_DEFAULTS.client_port;
    const portOf = (s: (typeof servers)[number]) => (secure ? s.secureClientPort : undefined) ?? (secure ? q.secureClientPort : undefined) ?? s.clientPort ?? port;
    connectString = servers.length === 0 ? `${q.clientHost && q.clientHost !== '0.0.0.0' ? q.clientHost : '127.0.0.1'}:${port}` : servers.map((s) => `${s.clientHost ?? s.host}:${portOf(s)}`).join(',');
  }
  let sessionTimeoutMs = c.sessionTimeoutMs ?? CONTROLLER_DEFAULTS.session_timeout_ms;
  let clamped = false;
  if (q0 !== undefined) {
    // The quorum clamps what a session gets: the lease is measured against what it will get.
    const max = q0.session?.maxTimeoutMs ?? (q0.tickMs === undefined ? CLUSTER_FILE_DEFAULTS.max_session_timeout_ms : q0.tickMs * ZK_DEFAULTS.max_session_timeout_ticks);
    const min = q0.session?.minTimeoutMs ?? (q0.tickMs === undefined ? CLUSTER_FILE_DEFAULTS.min_session_timeout_ms : q0.tickMs * ZK_DEFAULTS.min_session_timeout_ticks);
    const got = Math.min(Math.max(sessionTimeoutMs, min), max);
    clamped = got !== sessionTimeoutMs;
    if (clamped) warnings.push(`controller.sessionTimeoutMs ${sessionTimeoutMs} ms: the quorum gives sessions ${min}-${max} ms, so the controller's session will be ${got} ms`);
    sessionTimeoutMs = got;
  }
  if (quorumSyncBoundMs !== null && (quorumSyncBoundMs + LEASE_ROUND_TRIP_ALLOWANCE_MS) * 3 > sessionTimeoutMs) {
    // The lease (2/3 of the session) must end before a follower can still be serving a stale leader's view.
    throw new ConfigError(file, 'controller.sessionTimeoutMs',
      `${sessionTimeoutMs} ms is too short for this quorum: syncLimit x tick = ${quorumSyncBoundMs} ms (+ ${LEASE_ROUND_TRIP_ALLOWANCE_MS} ms for a round trip) must stay under a third of it (self-demotion at 2/3 of the session relies on it); raise sessionTimeoutMs${clamped ? ' and quorum.session.maxTimeoutMs (the quorum caps sessions at ' + sessionTimeoutMs + ' ms)' : ''} to at least ${(quorumSyncBoundMs + LEASE_ROUND_TRIP_ALLOWANCE_MS) * 3} ms or lower quorum.tickMs`,
      { line: lineOf(['controller', 'sessionTimeoutMs']) ?? lineOf(['quorum', 'tickMs']) });
  }
  if (quorumSyncBoundMs === null) warnings.push(`the controller elects through an external ZooKeeper (${connectString}): self-demotion assumes its syncLimit x tickTime + a round trip is well under a third of the session timeout (${sessionTimeoutMs} ms); this cannot be checked from here`);

  let journalNodes: JournalNodeAddress[] | null = null;
  if (svc.journal) {
    if (cluster.journal === undefined) { const w = at('journal'); throw new ConfigError(file, w.keyPath, 'the service has a journal but the cluster file has no journal section', { line: w.line }); }
    journalNodes = cluster.journal.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port }));
  }
  for (const [k, inst] of instances.entries()) {
    if (svc.failsafe === true && (journalNodes === null || inst.hooks?.role == null)) {
      const w = journalNodes === null ? at('failsafe') : at('instances', k);
      throw new ConfigError(file, w.keyPath, journalNodes === null
        ? 'failsafe keeps the active by its journal epoch: the service needs journal: true'
        : `failsafe asks the service its journal epoch: instance ${inst.id} needs a role hook answering {"role", "epoch"}`, { line: w.line });
    }
    if (svc.maxLagOnFailover !== undefined && !inst.health.some((h) => h.kind === 'http' && h.lagField !== null)) {
      const w = at('instances', k);
      throw new ConfigError(file, w.keyPath, `the service has maxLagOnFailover but instance ${inst.id} has no http health check with a lagField to read its lag from`, { line: w.line });
    }
    if (journalNodes === null && inst.fencing.every((f) => f.kind === 'graceful')) {
      warnings.push(`instance ${inst.id} can be fenced only gracefully and the service has no journal: if its service hangs with its port open, no other instance can be promoted; add a shell, ssh or http method`);
    }
    if (inst.resources.length > 0 && !inst.fencing.some((f) => f.kind === 'ssh' || f.kind === 'shell')) {
      warnings.push(`instance ${inst.id} has resources (${inst.resources.map((r) => r.name).join(', ')}) but no ssh or shell fencing: if its controller dies while it is active, they stay up on its host (a floating IP answering beside the new active's) until that controller returns; add ssh fencing, which stops them there`);
    }
  }
  if (c.tls?.clientAuth !== undefined && c.tls.clientAuth !== 'none' && c.tls.caFile === undefined) {
    throw new ConfigError(file, 'controller.tls.caFile', `missing: clientAuth ${c.tls.clientAuth} needs the CA that signs the clients' certificates`, { line: lineOf(['controller', 'tls']) });
  }
  for (const k of ['operators', 'readers'] as const) {
    if (c[k] !== undefined && (c.tls?.clientAuth ?? 'none') === 'none') {
      throw new ConfigError(file, `controller.${k}`, 'names client certificates, but the admin API asks for none: set controller.tls.clientAuth to want or need', { line: lineOf(['controller', k]) });
    }
  }
  if (c.digestFile === undefined) {
    warnings.push('controller.digestFile is not set: any client of the quorum can delete or replace the lock and the breadcrumb (the controllers notice and recover, but cannot prevent it); with a digest only the controllers can write them');
  }
  if (c.allowLoopbackWithoutToken === true) {
    warnings.push('controller.allowLoopbackWithoutToken: any process on this host (any user) may cede, fence, fail over, pause and resume without a token; use adminTokenFile beyond a single-host trial');
  }
  // Priority: the highest races at once; each rank below waits raceDelayMs more.
  const ranks = [...new Set(instances.map((i) => i.priority))].sort((a, b) => b - a);
  const rank = ranks.indexOf(instance.priority);
  return {
    clusterId: cluster.cluster, service, instance, instances, connectString, sessionTimeoutMs,
    digest: c.digestFile === undefined ? null : readSecret(c.digestFile, base, 'digest (user:password)', 'controller.digestFile', lineOf(['controller', 'digestFile']), file, { secret: true }),
    adminToken: c.adminTokenFile === undefined ? null : readSecret(c.adminTokenFile, base, 'admin token', 'controller.adminTokenFile', lineOf(['controller', 'adminTokenFile']), file, { secret: true, charsMin: ADMIN_TOKEN_CHARS_MIN }),
    allowLoopbackWithoutToken: c.allowLoopbackWithoutToken ?? false,
    tls: c.tls === undefined ? null : {
      cert: readSecret(c.tls.certFile, base, 'TLS certificate', 'controller.tls.certFile', lineOf(['controller', 'tls', 'certFile']), file, { secret: false }),
      key: readSecret(c.tls.keyFile, base, 'TLS key', 'controller.tls.keyFile', lineOf(['controller', 'tls', 'keyFile']), file, { secret: true }),
      ca: c.tls.caFile === undefined ? null : readSecret(c.tls.caFile, base, 'TLS CA certificate', 'controller.tls.caFile', lineOf(['controller', 'tls', 'caFile']), file, { secret: false }),
      clientAuth: c.tls.clientAuth ?? 'none',
    },
    journalNodes,
    quorumTls: c.quorumTls === undefined ? null : {
      ca: readSecret(c.quorumTls.caFile, base, 'TLS CA certificate', 'controller.quorumTls.caFile', lineOf(['controller', 'quorumTls', 'caFile']), file, { secret: false }),
      ...(c.quorumTls.certFile === undefined || c.quorumTls.keyFile === undefined ? {} : {
        cert: readSecret(c.quorumTls.certFile, base, 'TLS certificate', 'controller.quorumTls.certFile', lineOf(['controller', 'quorumTls', 'certFile']), file, { secret: false }),
        key: readSecret(c.quorumTls.keyFile, base, 'TLS key', 'controller.quorumTls.keyFile', lineOf(['controller', 'quorumTls', 'keyFile']), file, { secret: true }),
      }),
    },
    adminOperators: c.operators ?? [],
    adminReaders: c.readers ?? [],
    journalTls: cluster.journal?.tls === undefined ? null : readTls(cluster.journal.tls, base, ['journal', 'tls'], lineOf, file),
    journalTimeoutMs: cluster.journal?.requestTimeoutMs ?? 2000,
    raceDelayMs: rank * (svc.raceDelayMs ?? CONTROLLER_DEFAULTS.race_delay_ms),
    cedeMs: svc.cedeMs ?? CONTROLLER_DEFAULTS.cede_ms,
    promotionsPerWindow: svc.promotionsPerWindow ?? CONTROLLER_DEFAULTS.promotions_per_window,
    promotionWindowMs: svc.promotionWindowMs ?? CONTROLLER_DEFAULTS.promotion_window_ms,
    maxLagOnFailover: svc.maxLagOnFailover ?? null,
    failsafe: svc.failsafe ?? false,
    basePath: serviceBasePath(cluster.cluster, service),
    ocfRoot: c.ocfRoot === undefined ? CONTROLLER_DEFAULTS.ocf_root : path.resolve(base, c.ocfRoot),
    history: { maxEntries: c.historyMaxEntries ?? CONTROLLER_DEFAULTS.history_max_entries, maxAgeMs: (c.historyMaxAgeDays ?? CONTROLLER_DEFAULTS.history_max_age_days) * 86_400_000 },
    resourceStateDir: path.join(cluster.runDir === undefined ? DEFAULT_RUN_DIR : path.resolve(base, cluster.runDir), 'resource-agents', `${service}-${instance.id}`),
    quorumSyncBoundMs,
    warnings,
  };
}

/** Where a service's lock, breadcrumb, maintenance and history live in the quorum. */
export function serviceBasePath(cluster: string, service: string): string {
  return `/quorate/${cluster}/${service}`;
}

/** A service of the cluster file as loaded for the operator's view (instance null: all its instances), or why it could not be. */
export type ServiceConfigResult = { service: string; cfg: ControllerConfig } | { service: string; error: string };

/**
 * Every service of the cluster file but `own`, in the file's order, each loaded as the operator
 * commands load it (a controller's status page shows them all). A service whose configuration is
 * wrong gives its error, not a throw; a file that does not parse throws ConfigError.
 */
export function loadOtherServices(file: string, own: string): ServiceConfigResult[] {
  const { cluster } = parseClusterFileWithLines(readConfigText(file), file);
  return (cluster.services ?? []).filter((s) => s.name !== own).map((s): ServiceConfigResult => {
    try {
      return { service: s.name, cfg: loadControllerConfig(file, s.name, null) };
    } catch (e) {
      return { service: s.name, error: (e as Error).message };
    }
  });
}
