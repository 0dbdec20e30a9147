// The cluster file's placement checks (no two processes on a host share a port
// or a data dir; ssh settings name hosts that are in the file and pin their
// keys) and how `quorate cluster` reaches each host.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseClusterFile } from '../../../src/config/cluster-file.js';
import { placeProcesses, sshTargetFor } from '../../../src/config/cluster-placement.js';
import { failure } from './expect-config-error.js';

const BASE = `cluster: t
quorum:
  dataDir: /tmp/q-{id}
  servers:
    - { id: 1, host: h1, clientPort: 2181 }
    - { id: 2, host: h2, clientPort: 2181 }
    - { id: 3, host: h3, clientPort: 2181 }
journal:
  dataDir: /tmp/j-{id}
  nodes:
    - { id: 1, host: h1, port: 8485 }
    - { id: 2, host: h2, port: 8485 }
services:
  - name: orders
    instances:
      - { id: a, host: h1, adminPort: 8019, servicePort: 7001 }
      - { id: b, host: h2, adminPort: 8019, servicePort: 7001 }
`;
const SSH = `ssh:
  user: quorate
  keyFile: ~/.ssh/id_ed25519
  knownHosts: known_hosts
`;

describe('placement', () => {
  it('accepts the same ports on different hosts, and lists processes in start order', () => {
    const c = parseClusterFile(BASE, 'c.yaml');
    expect(placeProcesses(c).map((p) => `${p.kind} ${p.id}@${p.host}`)).toEqual([
      'quorum 1@h1', 'quorum 2@h2', 'quorum 3@h3', 'journal 1@h1', 'journal 2@h2', 'controller orders:a@h1', 'controller orders:b@h2',
    ]);
  });

  it('refuses a journal node on a quorum server\'s port of the same host, naming both keys and lines', () => {
    const err = failure(() => parseClusterFile(BASE.replace('{ id: 2, host: h2, port: 8485 }', '{ id: 2, host: h2, port: 2888 }'), 'c.yaml'));
    expect(err.keyPath).toBe('journal.nodes[1].port');
    expect(err.line).toBe(12);
    expect(err.reason).toBe('port 2888 on host h2 is already quorum.servers[1] (line 6): two processes on one host cannot share a port');
  });

  it('refuses a controller whose admin port is its service\'s port', () => {
    const err = failure(() => parseClusterFile(BASE.replace('adminPort: 8019, servicePort: 7001 }\n      - { id: b', 'adminPort: 8019, servicePort: 8019 }\n      - { id: b'), 'c.yaml'));
    expect(err.keyPath).toBe('services[0].instances[0].servicePort');
    expect(err.reason).toContain('already services[0].instances[0].adminPort');
  });

  it('refuses two servers on one host sharing a data dir', () => {
    const text = BASE.replace('dataDir: /tmp/q-{id}', 'dataDir: /tmp/q').replace('{ id: 2, host: h2, clientPort: 2181 }', '{ id: 2, host: h1, clientPort: 2182, peerPort: 2889, electionPort: 3889 }');
    const err = failure(() => parseClusterFile(text, 'c.yaml'));
    expect(err.keyPath).toBe('quorum.dataDir');
    expect(err.reason).toBe('quorum servers 1 and 2 are both on host h1 and would share /tmp/q: put {id} in the path');
  });

  it('refuses ssh settings for a host the file does not use, a host listed twice, and a host without a pinned key', () => {
    const text = BASE + `ssh:
  user: quorate
  keyFile: /k
  hosts:
    - { host: h1, fingerprint: "SHA256:${'A'.repeat(43)}" }
    - { host: h9, knownHosts: /kh }
    - { host: h1, knownHosts: /kh }
`;
    const err = failure(() => parseClusterFile(text, 'c.yaml'));
    const reasons = err.issues.map((i) => `${i.keyPath}: ${i.reason}`);
    expect(reasons).toContain('ssh.hosts[1].host: no process is placed on host h9 (hosts in this file: h1, h2, h3)');
    expect(reasons).toContain('ssh.hosts[2].host: host h1 is listed twice (also ssh.hosts[0])');
    expect(reasons).toContain('ssh: no pinned host key for host h2: give ssh.knownHosts, or a fingerprint in its ssh.hosts entry (an unknown host key is never accepted)');
  });

  it('refuses an unknown ssh key with a suggestion', () => {
    const err = failure(() => parseClusterFile(BASE + SSH + '  knownHost: x\n', 'c.yaml'));
    expect(err.keyPath).toBe('ssh.knownHost');
    expect(err.reason).toContain('did you mean knownHosts?');
  });

  it('resolves how to reach each host: defaults, per-host overrides, paths from the file\'s directory and ~', () => {
    const c = parseClusterFile(BASE + SSH + `  hosts:
    - { host: h2, address: 10.9.9.2, port: 2222, user: ops, command: /opt/quorate/bin/quorate, via: systemd }
    - { host: h3, fingerprint: "SHA256:${'B'.repeat(43)}" }
`, '/etc/q/c.yaml');
    expect(sshTargetFor(c, 'h1', '/etc/q/c.yaml')).toEqual({
      host: 'h1', address: 'h1', port: 22, user: 'quorate', keyFile: path.join(os.homedir(), '.ssh/id_ed25519'), knownHosts: '/etc/q/known_hosts',
      fingerprint: null, command: 'quorate', configPath: '/etc/quorate/cluster.yaml', via: 'quorate', connectTimeoutMs: 10_000,
    });
    expect(sshTargetFor(c, 'h2', '/etc/q/c.yaml')).toMatchObject({ address: '10.9.9.2', port: 2222, user: 'ops', command: '/opt/quorate/bin/quorate', via: 'systemd' });
    expect(sshTargetFor(c, 'h3', '/etc/q/c.yaml')).toMatchObject({ knownHosts: null, fingerprint: `SHA256:${'B'.repeat(43)}` });
  });
});
