// The metrics port: GET and HEAD /metrics answer the registry's text; every
// other path and method is refused with the reason; a port that cannot be
// taken is an error naming the address.
import { Counter, Registry } from 'prom-client';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { serveMetrics, type MetricsServer } from '../../../src/io/metrics-http.js';
import { silentLogger } from '../../../src/io/log.js';

describe('serveMetrics', () => {
  const registry = new Registry();
  const c = new Counter({ name: 'quorate_test_things_total', help: 'things', registers: [registry] });
  const servers: MetricsServer[] = [];
  afterAll(async () => { for (const s of servers) await s.close(); });

  it('answers GET /metrics with the registry text, HEAD without a body, and refuses the rest', async () => {
    const s = await serveMetrics(registry, '127.0.0.1', 0, silentLogger());
    servers.push(s);
    c.inc(3);
    const get = await request(`http://127.0.0.1:${s.port}/metrics`);
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toBe(registry.contentType);
    expect(await get.body.text()).toMatch(/^quorate_test_things_total 3$/m);
    const head = await request(`http://127.0.0.1:${s.port}/metrics`, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(await head.body.text()).toBe('');
    const post = await request(`http://127.0.0.1:${s.port}/metrics`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect(await post.body.text()).toMatch(/method POST is not allowed: this port only answers GET \/metrics/);
    const other = await request(`http://127.0.0.1:${s.port}/v1/status`);
    expect(other.statusCode).toBe(404);
    expect(await other.body.text()).toMatch(/no such endpoint: \/v1\/status/);
  });

  it('says which address could not be taken and why', async () => {
    const s = await serveMetrics(registry, '127.0.0.1', 0, silentLogger());
    servers.push(s);
    await expect(serveMetrics(registry, '127.0.0.1', s.port, silentLogger())).rejects.toThrow(`cannot serve metrics on 127.0.0.1:${s.port}: the port is in use`);
  });

  it('answers 500 with the reason when a collector fails', async () => {
    const bad = new Registry();
    new Counter({ name: 'quorate_test_broken_total', help: 'broken', registers: [bad], collect() { throw new Error('no state yet'); } });
    const s = await serveMetrics(bad, '127.0.0.1', 0, silentLogger());
    servers.push(s);
    const r = await request(`http://127.0.0.1:${s.port}/metrics`);
    expect(r.statusCode).toBe(500);
    expect(await r.body.text()).toMatch(/collecting the metrics failed: no state yet/);
  });
});
