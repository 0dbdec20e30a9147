// The controller's part of the cluster file: defaults, the lease's timing
// assumption checked against our quorum (warned about for an external
// ZooKeeper), per-instance connect strings, priorities as race delays, and
// errors that name the key.
import { mkdtempSync, writeFileSync } from 'node:fs';
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
  it('derives the connect string from the quorum section and fills defaults', () => {
    const c = loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q\n  clientPort: 2181')), 'orders', 'a');
    expect(c).toMatchObject({ connectString: '127.0.0.1:2181', sessionTimeoutMs: 6000, basePath: '/quorate/prod/orders', raceDelayMs: 0, quorumSyncBoundMs: 1000, warnings: [] });
    expect(c.instance.health).toEqual([{ kind: 'tcp', host: '127.0.0.1', port: 7001, intervalMs: 200, timeoutMs: 1000, failures: 3 }]);
    expect(c.instance.fencing).toEqual([{ kind: 'graceful', timeoutMs: 5000 }]);
  });

  it('a lower priority waits a race delay per rank; an instance may have its own connect string', () => {
    const c = loadControllerConfig(write(BASE('quorum:\n  dataDir: /tmp/q')), 'orders', 'b');
    expect(c.raceDelayMs).toBe(500);
    expect(c.connectString).toBe('127.0.0.1:2182');
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
