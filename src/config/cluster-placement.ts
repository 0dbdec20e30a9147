// Where the cluster file puts each process, and the checks that make a
// placement runnable: no two processes on one host share a port or a data
// directory, and every ssh setting names a host that is in the file. Also
// how `quorate cluster` reaches each host (the ssh section, per-host
// overrides applied, paths resolved).
import os from 'node:os';
import path from 'node:path';
import { ZK_DEFAULTS } from '../limits.js';
import type { ClusterFile } from './cluster-file.js';
import { formatKeyPath, type ConfigIssue } from './errors.js';

export type ProcessKind = 'quorum' | 'journal' | 'controller';

export interface PlacedProcess {
  kind: ProcessKind;
  /** quorum, journal: the server id; controller: service:instance. */
  id: string;
  host: string;
  /** Controllers: the service and the instance id. */
  service?: string;
  instance?: string;
}

type KeyPath = (string | number)[];
const PEER_PORT_DEFAULT = 2888;
const ELECTION_PORT_DEFAULT = 3888;

/** Every process the file places on a host, in start order: quorum servers, journal nodes, controllers. */
export function placeProcesses(c: ClusterFile): PlacedProcess[] {
  const out: PlacedProcess[] = [];
  for (const s of c.quorum?.servers ?? []) out.push({ kind: 'quorum', id: String(s.id), host: s.host });
  for (const n of c.journal?.nodes ?? []) out.push({ kind: 'journal', id: String(n.id), host: n.host });
  for (const svc of c.services ?? []) {
    for (const i of svc.instances) out.push({ kind: 'controller', id: `${svc.name}:${i.id}`, host: i.host, service: svc.name, instance: i.id });
  }
  return out;
}

/** Port and data-dir conflicts between processes on one host, and ssh settings for hosts the file does not use. */
export function placementProblems(c: ClusterFile, lineOf: (p: KeyPath) => number | undefined, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const issue = (p: KeyPath, reason: string) => issues.push({ file, keyPath: formatKeyPath(p), reason, line: lineOf(p) });
  const taken = new Map<string, KeyPath>();
  const claim = (host: string, port: number | undefined, p: KeyPath) => {
    if (port === undefined) return;
    const key = `${host.toLowerCase()} ${port}`;
    const prev = taken.get(key);
    if (prev === undefined) { taken.set(key, p); return; }
    const line = lineOf(prev);
    issue(p, `port ${port} on host ${host} is already ${formatKeyPath(prev)}${line === undefined ? '' : ` (line ${line})`}: two processes on one host cannot share a port`);
  };
  const q = c.quorum;
  (q?.servers ?? []).forEach((s, i) => {
    const at = (k: string): KeyPath => (s[k as keyof typeof s] !== undefined ? ['quorum', 'servers', i, k] : ['quorum', 'servers', i]);
    claim(s.host, s.clientPort ?? q?.clientPort ?? ZK_DEFAULTS.client_port, at('clientPort'));
    claim(s.host, s.secureClientPort ?? q?.secureClientPort, at('secureClientPort'));
    claim(s.host, s.peerPort ?? PEER_PORT_DEFAULT, at('peerPort'));
    claim(s.host, s.electionPort ?? ELECTION_PORT_DEFAULT, at('electionPort'));
    claim(s.host, s.adminPort ?? q?.adminPort, at('adminPort'));
    claim(s.host, s.metricsPort ?? q?.metricsPort, at('metricsPort'));
  });
  (c.journal?.nodes ?? []).forEach((n, i) => {
    claim(n.host, n.port, ['journal', 'nodes', i, 'port']);
    claim(n.host, n.metricsPort, ['journal', 'nodes', i, 'metricsPort']);
  });
  (c.services ?? []).forEach((svc, si) => svc.instances.forEach((inst, ii) => {
    claim(inst.host, inst.adminPort, ['services', si, 'instances', ii, 'adminPort']);
    claim(inst.host, inst.servicePort, ['services', si, 'instances', ii, 'servicePort']);
  }));

  // A data dir without {id} is one directory for every server on a host.
  const sharedDir = (dir: string | undefined, hosts: { id: number; host: string }[], p: KeyPath, what: string) => {
    if (dir === undefined || dir.includes('{id}')) return;
    const byHost = new Map<string, number[]>();
    for (const h of hosts) byHost.set(h.host.toLowerCase(), [...(byHost.get(h.host.toLowerCase()) ?? []), h.id]);
    for (const [h, ids] of byHost) {
      if (ids.length > 1) issue(p, `${what} ${ids.join(' and ')} are both on host ${h} and would share ${dir}: put {id} in the path`);
    }
  };
  sharedDir(q?.dataDir, q?.servers ?? [], ['quorum', 'dataDir'], 'quorum servers');
  sharedDir(q?.dataLogDir, q?.servers ?? [], ['quorum', 'dataLogDir'], 'quorum servers');
  sharedDir(c.journal?.dataDir, c.journal?.nodes ?? [], ['journal', 'dataDir'], 'journal nodes');

  const hosts = new Set(placeProcesses(c).map((p) => p.host.toLowerCase()));
  const seen = new Map<string, number>();
  (c.ssh?.hosts ?? []).forEach((h, i) => {
    const name = h.host.toLowerCase();
    if (!hosts.has(name)) issue(['ssh', 'hosts', i, 'host'], `no process is placed on host ${h.host} (hosts in this file: ${[...hosts].join(', ') || 'none'})`);
    if (seen.has(name)) issue(['ssh', 'hosts', i, 'host'], `host ${h.host} is listed twice (also ssh.hosts[${seen.get(name)}])`);
    seen.set(name, i);
    if (h.fingerprint !== undefined && h.knownHosts !== undefined) issue(['ssh', 'hosts', i], 'give knownHosts or fingerprint, not both: one pin per host');
  });
  if (c.ssh !== undefined) {
    for (const h of hosts) {
      const o = c.ssh.hosts?.find((x) => x.host.toLowerCase() === h);
      const where: KeyPath = o === undefined ? ['ssh'] : ['ssh', 'hosts', c.ssh.hosts!.indexOf(o)];
      if ((o?.user ?? c.ssh.user) === undefined) issue(where, `no ssh user for host ${h}: give ssh.user (or user in its ssh.hosts entry)`);
      if ((o?.keyFile ?? c.ssh.keyFile) === undefined) issue(where, `no ssh keyFile for host ${h}: give ssh.keyFile (or keyFile in its ssh.hosts entry)`);
      if (o?.fingerprint === undefined && (o?.knownHosts ?? c.ssh.knownHosts) === undefined) {
        issue(where, `no pinned host key for host ${h}: give ssh.knownHosts, or a fingerprint in its ssh.hosts entry (an unknown host key is never accepted)`);
      }
    }
  }
  return issues;
}

export interface SshTarget {
  /** The host as the cluster file names it. */
  host: string;
  /** Where to connect. */
  address: string;
  port: number;
  user: string;
  keyFile: string;
  knownHosts: string | null;
  fingerprint: string | null;
  command: string;
  configPath: string;
  via: 'quorate' | 'systemd';
  connectTimeoutMs: number;
}

export const SSH_DEFAULTS = { port: 22, command: 'quorate', config_path: '/etc/quorate/cluster.yaml', connect_timeout_ms: 10_000 } as const;

function expandPath(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(baseDir, p);
}

/**
 * How to reach `host` (after placementProblems found nothing missing). Local paths (key, known_hosts)
 * are resolved against the cluster file's directory, `~/` against the home directory.
 */
export function sshTargetFor(c: ClusterFile, host: string, clusterFile: string): SshTarget {
  const ssh = c.ssh;
  if (ssh === undefined) throw new Error('the cluster file has no ssh section');
  const o = ssh.hosts?.find((x) => x.host.toLowerCase() === host.toLowerCase());
  const baseDir = path.dirname(path.resolve(clusterFile));
  const knownHosts = o?.fingerprint !== undefined ? null : (o?.knownHosts ?? ssh.knownHosts ?? null);
  return {
    host,
    address: o?.address ?? host,
    port: o?.port ?? ssh.port ?? SSH_DEFAULTS.port,
    user: (o?.user ?? ssh.user)!,
    keyFile: expandPath((o?.keyFile ?? ssh.keyFile)!, baseDir),
    knownHosts: knownHosts === null ? null : expandPath(knownHosts, baseDir),
    fingerprint: o?.fingerprint ?? null,
    command: o?.command ?? ssh.command ?? SSH_DEFAULTS.command,
    configPath: o?.configPath ?? ssh.configPath ?? SSH_DEFAULTS.config_path,
    via: o?.via ?? ssh.via ?? 'quorate',
    connectTimeoutMs: ssh.connectTimeoutMs ?? SSH_DEFAULTS.connect_timeout_ms,
  };
}
