// The status page's data for every service: the other services of the
// cluster file as a controller loads them (a broken one gives its error), one
// gathering of them all (one srvr per quorum server, an admin API that refuses
// us shown as unreachable with why), and the cache that keeps any number of
// pages to one gathering per key and period.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadControllerConfig, loadOtherServices } from '../../../src/config/controller-config.js';
import { FreshCache, gatherClusterJson } from '../../../src/controller/cluster-view.js';
import { freePort } from '../../helpers/ports.js';

const hooks = '{ toActive: { command: "true" }, toStandby: { command: "true" } }';

function serve(status: number, body: unknown): Promise<Server> {
  const s = createServer((_req, res) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}
const portOf = (s: Server) => (s.address() as AddressInfo).port;

describe('every service of the cluster file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorate-cv-'));
  let file = '';
  let ordersApi: Server;
  let billingApi: Server;
  beforeAll(async () => {
    ordersApi = await serve(200, { service: 'orders', instance: 'a', active: true, phase: 'active', health: 'healthy' });
    // An admin API that wants what this controller does not have.
    billingApi = await serve(401, { error: 'missing bearer token (Authorization: Bearer ...)' });
    const quorum = await freePort(); // nothing listens: the quorum is unreachable
    file = path.join(dir, 'cluster.yaml');
    writeFileSync(file, `cluster: prod
controller:
  connectString: "127.0.0.1:${quorum}"
services:
  - name: orders
    instances:
      - { id: a, host: 127.0.0.1, adminPort: ${portOf(ordersApi)}, servicePort: 7001, hooks: ${hooks} }
  - name: broken
    instances:
      - { id: x, host: 127.0.0.1, adminPort: 1 }
  - name: billing
    instances:
      - { id: b1, host: 127.0.0.1, adminPort: ${portOf(billingApi)}, servicePort: 7002 }
`);
  });
  afterAll(() => { ordersApi.close(); billingApi.close(); rmSync(dir, { recursive: true, force: true }); });

  it('loads the others in the file\'s order; a service that does not load gives its error', () => {
    const others = loadOtherServices(file, 'orders');
    expect(others.map((o) => o.service)).toEqual(['broken', 'billing']);
    expect('error' in others[0] && others[0].error).toMatch(/instance x has no health checks and no servicePort/);
    expect('cfg' in others[1] && others[1].cfg.instances.map((i) => i.id)).toEqual(['b1']);
  });

  it('gathers them in one view: own first, srvr once, a refusing admin API unreachable with why, a broken service its error', async () => {
    const own = loadControllerConfig(file, 'orders', 'a');
    const others = loadOtherServices(file, 'orders');
    const v = await gatherClusterJson(own, others);
    // The own service's fields as before.
    expect(v.service).toBe('orders');
    expect((v.instances as { id: string; active: boolean }[]).map((x) => `${x.id}:${x.active}`)).toEqual(['a:true']);
    expect(v.quorum).toMatch(/^UNREACHABLE/);
    expect(v.quorumServers).toHaveLength(1);
    const services = v.services as { service: string; error?: string; instances: { id: string; reachable: boolean; error?: string }[] }[];
    expect(services.map((s) => s.service)).toEqual(['orders', 'broken', 'billing']);
    expect(services[1].error).toMatch(/no health checks/);
    expect(services[1].instances).toEqual([]);
    expect(services[2].error).toBeUndefined();
    expect(services[2].instances).toEqual([{ id: 'b1', reachable: false, error: 'HTTP 401: missing bearer token (Authorization: Bearer ...)' }]);
  }, 15_000);
});

describe('FreshCache', () => {
  it('gathers once per key and period, shares a running gathering, keeps no failure, and bounds keys and gatherings', async () => {
    let now = 0;
    const cache = new FreshCache<number>(1000, 2, () => now);
    let gathered = 0;
    const gather = () => Promise.resolve(++gathered);
    expect(await Promise.all([cache.get('k', gather), cache.get('k', gather)])).toEqual([1, 1]);
    now = 999;
    expect(await cache.get('k', gather)).toBe(1);
    now = 1000;
    expect(await cache.get('k', gather)).toBe(2);
    // A failure is not kept: the next get gathers again.
    await expect(cache.get('f', () => Promise.reject(new Error('quorum away')))).rejects.toThrow('quorum away');
    expect(await cache.get('f', gather)).toBe(3);
    // Two answers kept: a third key drops the oldest.
    expect(await cache.get('g', gather)).toBe(4);
    expect(await cache.get('k', gather)).toBe(5);
    // At most two gatherings at once: a third key is refused while they run.
    let release = () => undefined as void;
    const slow = () => new Promise<number>((r) => { release = () => r(0); });
    const p1 = cache.get('s1', slow);
    const r1 = release;
    const p2 = cache.get('s2', slow);
    await expect(cache.get('s3', gather)).rejects.toThrow(/2 gatherings already running/);
    r1(); release();
    expect(await Promise.all([p1, p2])).toEqual([0, 0]);
    expect(await cache.get('s3', gather)).toBe(6);
  });
});
