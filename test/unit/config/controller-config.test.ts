// The controller's part of the cluster file: defaults, the lease's timing
// assumption checked against our quorum (warned about for an external
// ZooKeeper), per-instance connect strings, priorities as race delays, and
// errors that name the key.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadControllerConfig } from '../../../src/config/controller-config.js';
import { failure } from './expect-config-error.js';

const dir = mkdtempSync(path.join(tmpdir(), 'quorate-ctlcfg-'));
let n = 0;
const write = (text: string) => { const f = path.join(dir, `c${n++}.yaml`); writeFileSync(f, text); return f; };
const hooks = '{ toActive: { http: "http://127.0.0.1:7001/role" }, toStandby: { command: "true" } }';
const BASE = (quorum: string, controller = '') => `cluster: prod
${quorum}
${controller}
services:
  - name: orders
    instances:
      - { id: a, host: 127.0.0.1, adminPort: 8019, servicePort: 7001, priority: 10, hooks: ${hooks} }
      - { id: b, host: 127.0.0.1, adminPort: 8020, servicePort: 7002, priority: 5, hooks: ${hooks}, connectString: "127.0.0.1:2182" }
`;

describe('loadControllerConfig', () => {
  it('reads resources that follow the active (OCF agents and commands), and needs no hooks with them', () => {
    const text = `cluster: prod
quorum:
  dataDir: /tmp/q
runDir: /var/run/q
services:
  - name: web
    resources:
      - { name: vip, ocf: "heartbeat:IPaddr2", params: { ip: 10.0.0.100, cidr_netmask: 24, lvs_support: false }, monitorIntervalMs: 2000 }
      - { name: nginx, start: "systemctl start nginx", stop: "systemctl stop nginx", monitor: "systemctl is-active nginx", failures: 2 }
    instances:
      - { id: a, host: 127.0.0.1, adminPort: 8019, servicePort: 7001 }
      - { id: b, host: 127.0.0.2, adminPort: 8019, servicePort: 7001 }
`;
    const c = loadControllerConfig(write(text), 'web', 'b');
    expect(c.instance.hooks).toBeNull();
    expect(c.instance.resources).toEqual([
      { kind: 'ocf', name: 'vip', provider: 'heartbeat', type: 'IPaddr2', params: { ip: '10.0.0.100', cidr_netmask: '24', lvs_support: 'false' }, timeoutMs: null, monitorIntervalMs: 2000, failures: 1 },
      { kind: 'command', name: 'nginx', start: 'systemctl start nginx', stop: 'systemctl stop nginx', monitor: 'systemctl is-active nginx', timeoutMs: 20_000, monitorIntervalMs: 10_000, failures: 2 },
    ]);
    expect(c.ocfRoot).toBe('/usr/lib/ocf');
    expect(c.resourceStateDir).toBe('/var/run/q/resource-agents/web-b');
    const bad = (r: string) => failure(() => loadControllerConfig(write(text.replace(/    resources:\n(.*\n){2}/, `    resources:\n${r}\n`)), 'web', 'a'));
    expect(bad('      - { name: vip, ocf: IPaddr2 }').reason).toMatch(/expected provider:type, such as heartbeat:IPaddr2/);
    expect(bad('      - { name: x, start: a, stop: b }\n      - { name: x, start: a, stop: b }').reason).toMatch(/resource names must differ/);
    expect(bad('      - { name: x, start: a }').reason).toMatch(/expected \{ name, ocf: provider:type, params \} or \{ name, start, stop, monitor \}/);
    const noHooks = failure(() => loadControllerConfig(write(text.replace(/    resources:\n(.*\n){2}/, '')), 'web', 'a'));
    expect(noHooks.reason).toMatch(/has no hooks and no resources/);
  });

  it('refuses client certificates without a CA, and certificate names while client certificates are off', () => {
    const f = path.join(dir, 'k.pem');
    writeFileSync(f, 'key\n', { mode: 0o600 });
    const q = 'quorum:\n  dataDir: /tmp/q';
    const noCa = failure(() => loadControllerConfig(write(BASE(q, `controller:\n  tls: { certFile: ${f}, keyFile: ${f}, clientAuth: need }`)), 'orders', 'a'));
    expect(noCa.keyPath).toBe('controller.tls.caFile');
    expect(noCa.reason).toBe("missing: clientAuth need needs the CA that signs the clients' certificates");
    const off = failure(() => loadControllerConfig(write(BASE(q, `controller:\n  tls: { certFile: ${f}, keyFile: ${f}, caFile: ${f} }\n  readers: [dash]`)), 'orders', 'a'));
    expect(off.keyPath).toBe('controller.readers');
    expect(off.reason).toMatch(/set controller.tls.clientAuth to want or need/);
  });

  it.skipIf(!existsSync('/usr/bin/ssh-keygen'))('refuses at start an ssh fencing key with a passphrase, or one other users can read', () => {
    const key = (name: string, pass: string) => {
      const f = path.join(dir, name);
      const r = spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', pass, '-f', f], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(r.stderr);
      return f;
    };
    const withKey = (k: string) => BASE('quorum:\n  dataDir: /tmp/q').replace('priority: 5, hooks', `priority: 5, fencing: [ { ssh: { user: fence, keyFile: ${k}, fingerprint: "SHA256:${'A'.repeat(43)}" } } ], hooks`);
    const locked = key('fence_locked', 'a passphrase');
    const e = failure(() => loadControllerConfig(write(withKey(locked)), 'orders', 'a'));
    expect(e.keyPath).toBe('services[0].instances[1].fencing[0].ssh.keyFile');
    expect(e.reason).toMatch(new RegExp(`^the ssh key ${locked} has a passphrase: a controller fences unattended`));
    const open = key('fence_open', '');
    chmodSync(open, 0o644);
    expect(failure(() => loadControllerConfig(write(withKey(open)), 'orders', 'a')).reason).toBe(`the ssh key ${open} can be read by other users (mode 0644): chmod 600 ${open}`);
    chmodSync(open, 0o600);
    expect(loadControllerConfig(write(withKey(open)), 'orders', 'a').instances[1].fencing[0]).toMatchObject({ kind: 'ssh', keyFile: open });
    // Only a controller fences: the operator's commands on another host need not hold the key.
    expect(loadControllerConfig(write(withKey(locked)), 'orders', null).instances).toHaveLength(2);
  });

  it('refuses secret files other users can read, and a short admin token; warns about the loopback bypass', () => {
    const secret = (name: string, text: string, mode: number) => { const f = path.join(dir, name); writeFileSync(f, text, { mode }); chmodSync(f, mode); return f; };
    const q = 'quorum:\n  dataDir: /tmp/q';
    const open = secret('token-open', 'a-long-enough-admin-token-123\n', 0o644);
    const e1 = failure(() => loadControllerConfig(write(BASE(q, `controller:\n  adminTokenFile: ${open}`)), 'orders', 'a'));
    expect(e1.keyPath).toBe('controller.adminTokenFile');
    expect(e1.reason).toBe(`the admin token in ${open} can be read by other users (mode 0644): chmod 600 ${open}`);
    const digest = secret('digest-open', 'ctl:pw\n', 0o640);
    expect(failure(() => loadControllerConfig(write(BASE(q, `controller:\n  digestFile: ${digest}`)), 'orders', 'a')).reason).toMatch(/can be read by other users \(mode 0640\)/);
    const short = secret('token-short', 'x\n', 0o600);
    const e2 = failure(() => loadControllerConfig(write(BASE(q, `controller:\n  adminTokenFile: ${short}`)), 'orders', 'a'));
    expect(e2.reason).toMatch(/has 1 characters; use at least 16/);
    const good = secret('token-good', 'a-long-enough-admin-token-123\n', 0o600);
    expect(loadControllerConfig(write(BASE(q, `controller:\n  adminTokenFile: ${good}`)), 'orders', 'a').adminToken).toBe('a-long-enough-admin-token-123');
    const bypass = loadControllerConfig(write(BASE(q, 'controller:\n  allowLoopbackWithoutToken: true')), 'orders', 'a');
    expect(bypass.warnings.join('\n')).toMatch(/allowLoopbackWithoutToken: any process on this host \(any user\) may cede, fence, fail over/);
  });

  it('derives the connect string from the quorum section and fills defaults', () => {
    const c = loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q\n  clientPort: 2181')), 'orders', 'a');
    expect(c).toMatchObject({ connectString: '127.0.0.1:2181', sessionTimeoutMs: 6000, basePath: '/quorate/prod/orders', raceDelayMs: 0, quorumSyncBoundMs: 1000 });
    // Graceful fencing alone, with no journal, cannot fence a hung service: said at start.
    expect(c.warnings).toEqual([
      expect.stringMatching(/instance a can be fenced only gracefully and the service has no journal/),
      expect.stringMatching(/instance b can be fenced only gracefully/),
      expect.stringMatching(/controller.digestFile is not set: any client of the quorum can delete or replace the lock/),
    ]);
    expect(c.instance.health).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 7001, holdConnection: true, intervalMs: 200, timeoutMs: 1000, failures: 3 }]);
    expect(c.instance.fencing).toEqual([{ kind: 'graceful', timeoutMs: 5000 }]);
  });

  it('a lower priority waits a race delay per rank; an instance may have its own connect string', () => {
    const c = loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q')), 'orders', 'b');
    expect(c.raceDelayMs).toBe(500);
    expect(c.connectString).toBe('127.0.0.1:2182');
  });

  it('measures the lease against the session the quorum will give (it clamps to its min/max)', () => {
    const c = loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q\n  tickMs: 100\n  session: { maxTimeoutMs: 2500 }', 'controller:\n  sessionTimeoutMs: 3000')), 'orders', 'a');
    expect(c.sessionTimeoutMs).toBe(2500);
    expect(c.warnings.join('\n')).toMatch(/the quorum gives sessions 200-2500 ms, so the controller's session will be 2500 ms/);
    // ZooKeeper's rule without a max: 20 ticks = 2000 ms, too short here, and the hint says where to raise it.
    const capped = failure(() => loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q\n  tickMs: 100', 'controller:\n  sessionTimeoutMs: 3000')), 'orders', 'a'));
    expect(capped.reason).toMatch(/2000 ms is too short .* quorum\.session\.maxTimeoutMs \(the quorum caps sessions at 2000 ms\)/);
    const tooShort = BASE('quorum:\n  dataDir: /tmp/q\n  tickMs: 400', 'controller:\n  sessionTimeoutMs: 6000');
    const e = failure(() => loadControllerConfig(write(tooShort), 'orders', 'a'));
    expect(e.reason).toMatch(/6000 ms is too short .* at least 6600 ms/);
    expect(e.reason).not.toMatch(/caps sessions/);
  });

  it('refuses a session too short for the quorum\'s syncLimit x tick (the lease would not be safe)', () => {
    const err = failure(() => loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q\n  tickMs: 2000')), 'orders', 'a'));
    expect(err.keyPath).toBe('controller.sessionTimeoutMs');
    expect(err.reason).toMatch(/syncLimit x tick = 10000 ms .* raise sessionTimeoutMs to at least 30600 ms/);
  });

  it('warns that the assumption cannot be checked against an external ZooKeeper', () => {
    const c = loadControllerConfig(write(BASE('', 'controller:\n  connectString: "zk1:2181,zk2:2181/quorate"')), 'orders', 'a');
    expect(c.quorumSyncBoundMs).toBeNull();
    expect(c.warnings.join('\n')).toMatch(/external ZooKeeper \(zk1:2181,zk2:2181\/quorate\).*cannot be checked/);
  });

  it('names what is missing or wrong', () => {
    expect(failure(() => loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q')), 'payments', 'a')).reason).toMatch(/no service named payments \(listed: orders\)/);
    expect(failure(() => loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q')), 'orders', 'z')).reason).toMatch(/no instance z \(listed: a, b\)/);
    expect(failure(() => loadControllerConfig(write(BASE('')), 'orders', 'a')).keyPath).toBe('controller.connectString');
    const noHooks = BASE('quorum:\n  dataDir: /tmp/q').replace(`, hooks: ${hooks} }`, ' }');
    expect(failure(() => loadControllerConfig(write(noHooks), 'orders', 'a')).reason).toMatch(/no hooks/);
    const badFence = BASE('quorum:\n  dataDir: /tmp/q').replace('    instances:', '    fencing: [ stonith ]\n    instances:');
    expect(failure(() => loadControllerConfig(write(badFence), 'orders', 'a')).keyPath).toBe('services[0].fencing[0]');
  });
});
