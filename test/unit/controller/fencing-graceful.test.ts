// Graceful fencing is bounded by its timeout as a whole: its controller's
// admin API and then the old service's to-standby hook share one deadline,
// whatever the HTTP client waits on underneath (the nemesis saw 10.5 s spent
// on a host off the network with a 5 s fence timeout).
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceConfig } from '../../../src/config/controller-config.js';
import { fenceInstance } from '../../../src/controller/fencing.js';

/** Accepts connections and never answers (a hung process). */
let hung: net.Server;
let port = 0;
const sockets: net.Socket[] = [];
beforeAll(async () => {
  hung = net.createServer((s) => { sockets.push(s); });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  port = (hung.address() as net.AddressInfo).port;
});
afterAll(async () => { for (const s of sockets) s.destroy(); await new Promise((r) => hung.close(r)); });

describe('graceful fencing', () => {
  it('its controller and the hook both hang: it gives up within its timeout, not the sum of theirs', async () => {
    const timeoutMs = 1500;
    const hook = { kind: 'http' as const, url: `http://127.0.0.1:${port}/role`, timeoutMs: 10_000 };
    const target: InstanceConfig = {
      id: 'b', host: '127.0.0.1', adminPort: port, servicePort: null, priority: 0, noFailover: false, health: [],
      hooks: { toActive: hook, toStandby: hook, role: null, preActive: null }, resources: [], fencing: [{ kind: 'graceful', timeoutMs }],
    };
    const t0 = performance.now();
    const r = await fenceInstance({ service: 's', target, crumb: { instance: 'b', address: `127.0.0.1:${port}`, epoch: 1, token: '1' }, token: '2', admin: { adminToken: null, tls: null }, hasJournal: false });
    const took = performance.now() - t0;
    expect(r.ok).toBe(false);
    // The controller's call used the whole budget, so no time was left for the hook.
    expect(took).toBeLessThan(timeoutMs * 1.8);
    expect(r.ok ? '' : r.reason).toMatch(/graceful: its controller: /);
  });
});
