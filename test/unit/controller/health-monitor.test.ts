// The health monitor hears a crash through the connection it holds (TRAPS: a
// refused connection is unhealthy at once): with the next scheduled check a
// minute away, a service whose connection closes and whose port then refuses
// is unhealthy after one check, and the reason says why that check ran early.
// A service that merely closes connections stays healthy, and costs at most
// EARLY_CHECKS_MAX extra checks per interval (no reconnect loop).
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheckConfig } from '../../../src/config/controller-config.js';
import { EARLY_CHECKS_MAX, HealthMonitor } from '../../../src/controller/health-monitor.js';
import type { HealthState } from '../../../src/core/controller/controller-core.js';

const MINUTE_MS = 60_000;

/** A listening server whose accepted connections we can drop, as a kill -9 would. */
async function listen(server: net.Server): Promise<{ port: number; accepted: () => number; open: () => number; crash: () => Promise<void>; crashConnectionsFirst: (gapMs: number) => Promise<void>; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  server.on('connection', (s: net.Socket) => { accepted++; sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  let closed = false;
  const stopListening = () => new Promise<void>((r) => { if (closed) { r(); return; } closed = true; server.close(() => r()); });
  return {
    port, accepted: () => accepted, open: () => sockets.size,
    // The listener goes first, then every connection: a reconnect is refused.
    crash: async () => { const done = stopListening(); for (const s of sockets) s.destroy(); await done; },
    // A dying process may close its connections before its listening socket: a reconnect in
    // between is accepted, and reset once the listener goes.
    crashConnectionsFirst: async (gapMs: number) => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => setTimeout(r, gapMs));
      const done = stopListening();
      for (const s of sockets) s.destroy();
      await done;
    },
    close: async () => { for (const s of sockets) s.destroy(); await stopListening(); },
  };
}

/** The states the monitor reports, and a bounded wait for one. */
function watch(m: HealthMonitor) {
  const seen: { state: HealthState; reason: string }[] = [];
  const checks: string[] = [];
  m.on('change', (state, reason) => seen.push({ state, reason }));
  m.on('check', (_i, _k, result) => checks.push(result));
  const until = async (state: HealthState, ms = 5000) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const s = seen.find((x) => x.state === state);
      if (s) return s;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`not ${state} within ${ms} ms (seen: ${JSON.stringify(seen)})`);
  };
  return { seen, checks, until };
}

const tcp = (port: number, intervalMs: number): HealthCheckConfig => ({ kind: 'tcp', host: '127.0.0.1', port, holdConnection: true, intervalMs, timeoutMs: 1000, failures: 3 });
const httpCheck = (port: number, intervalMs: number): HealthCheckConfig => ({
  kind: 'http', url: `http://127.0.0.1:${port}/health`, expectStatus: 200, jsonField: null, jsonValue: null, lagField: null, holdConnection: true, intervalMs, timeoutMs: 1000, failures: 3,
});

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

describe('HealthMonitor: a held connection', () => {
  it('tcp: the service dies (its connection closes, its port refuses): unhealthy after one check, long before the next scheduled one', async () => {
    const srv = await listen(net.createServer());
    cleanup.push(srv.close);
    const m = new HealthMonitor([tcp(srv.port, MINUTE_MS)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    m.start();
    await w.until('healthy');
    expect(w.checks).toEqual(['ok']);
    await srv.crash();
    const bad = await w.until('unhealthy');
    expect(bad.reason).toMatch(/^check 1: connect to 127\.0\.0\.1:\d+: ECONNREFUSED \(checked at once: the held connection closed\)$/);
    // One failed check, the early one: not `failures` of them, and not the scheduled one.
    expect(w.checks).toEqual(['ok', 'failed']);
  });

  it('tcp: a crash that closes the connections a moment before the port: the early check that got in is reset, and the next one is refused', async () => {
    const srv = await listen(net.createServer());
    cleanup.push(srv.close);
    const m = new HealthMonitor([tcp(srv.port, MINUTE_MS)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    m.start();
    await w.until('healthy');
    await srv.crashConnectionsFirst(100);
    const bad = await w.until('unhealthy');
    expect(bad.reason).toMatch(/ECONNREFUSED \(checked at once: the held connection closed\)$/);
    expect(w.checks).toEqual(['ok', 'ok', 'failed']);
  });

  it('tcp: each passing check\'s connection replaces the held one: one connection per check, none piling up, and no early check', async () => {
    const intervalMs = 50;
    const srv = await listen(net.createServer());
    cleanup.push(srv.close);
    const m = new HealthMonitor([tcp(srv.port, intervalMs)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    const t0 = performance.now();
    m.start();
    await w.until('healthy');
    await new Promise((r) => setTimeout(r, 600));
    const elapsed = performance.now() - t0;
    expect(w.seen.map((s) => s.state)).toEqual(['healthy']);
    // Held plus the one a check just opened (plus one whose close the server has not read yet): none pile up.
    expect(srv.open()).toBeLessThanOrEqual(3);
    expect(srv.accepted()).toBeGreaterThanOrEqual(6);
    // The closes of replaced connections run no early check: no more connects than scheduled checks.
    expect(srv.accepted()).toBeLessThanOrEqual(elapsed / intervalMs + 2);
    expect(w.checks.length).toBe(srv.accepted());
  });

  it('tcp: a service that closes connections but still accepts stays healthy, with at most EARLY_CHECKS_MAX extra checks per interval', async () => {
    const intervalMs = 100;
    const srv = await listen(net.createServer((s) => s.end()));
    cleanup.push(srv.close);
    const m = new HealthMonitor([tcp(srv.port, intervalMs)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    const t0 = performance.now();
    m.start();
    await w.until('healthy');
    await new Promise((r) => setTimeout(r, 1000));
    const elapsed = performance.now() - t0;
    expect(w.seen.map((s) => s.state)).toEqual(['healthy']);
    expect(w.checks.every((c) => c === 'ok')).toBe(true);
    // Each scheduled check may be followed by EARLY_CHECKS_MAX early ones (their connections closed), no more.
    const scheduled = elapsed / intervalMs + 1;
    expect(srv.accepted()).toBeGreaterThan(scheduled);
    expect(srv.accepted()).toBeLessThanOrEqual((1 + EARLY_CHECKS_MAX) * scheduled + 2);
  });

  it('tcp with holdConnection off: no connection is kept, and the crash waits for the schedule', async () => {
    const srv = await listen(net.createServer());
    cleanup.push(srv.close);
    const m = new HealthMonitor([{ ...tcp(srv.port, MINUTE_MS), holdConnection: false }]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    m.start();
    await w.until('healthy');
    await srv.crash();
    await new Promise((r) => setTimeout(r, 300));
    expect(w.seen.map((s) => s.state)).toEqual(['healthy']);
    expect(w.checks).toEqual(['ok']);
  });

  it('http: the keep-alive connection closes and the port refuses: unhealthy after one check', async () => {
    const srv = await listen(http.createServer((_q, res) => res.end('ok')));
    cleanup.push(srv.close);
    const m = new HealthMonitor([httpCheck(srv.port, MINUTE_MS)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    m.start();
    await w.until('healthy');
    await srv.crash();
    const bad = await w.until('unhealthy');
    expect(bad.reason).toMatch(/^check 1: GET http:\/\/127\.0\.0\.1:\d+\/health: ECONNREFUSED \(checked at once: the held connection closed\)$/);
    expect(w.checks).toEqual(['ok', 'failed']);
  });

  /** An http check on `server` for `forMs` after it is first healthy: the states seen, the requests served, the time taken. */
  async function httpCheckRun(server: http.Server, intervalMs: number, forMs: number): Promise<{ states: HealthState[]; requests: number; elapsed: number }> {
    let requests = 0;
    server.on('request', () => { requests++; });
    const srv = await listen(server);
    cleanup.push(srv.close);
    const m = new HealthMonitor([httpCheck(srv.port, intervalMs)]);
    cleanup.push(() => m.stop());
    const w = watch(m);
    const t0 = performance.now();
    m.start();
    await w.until('healthy');
    await new Promise((r) => setTimeout(r, forMs));
    return { states: w.seen.map((x) => x.state), requests, elapsed: performance.now() - t0 };
  }

  it('http: a server that closes idle connections at the time its Keep-Alive header announced runs no early check for it', async () => {
    const server = http.createServer((_q, res) => res.end('ok'));
    // Announced as "Keep-Alive: timeout=1": closed between two checks (by node's agent, a second early).
    server.keepAliveTimeout = 1000;
    const r = await httpCheckRun(server, 1500, 4000);
    expect(r.states).toEqual(['healthy']);
    // Each idle close would have cost an early check: about twice as many requests.
    expect(r.requests).toBeGreaterThanOrEqual(3);
    expect(r.requests).toBeLessThanOrEqual(Math.floor(r.elapsed / 1500) + 2);
  });

  it('http: a server that closes every connection (Connection: close) stays healthy, and those closes (the client\'s own) run no early check', async () => {
    const r = await httpCheckRun(http.createServer((_q, res) => { res.setHeader('connection', 'close'); res.end('ok'); }), 100, 1000);
    expect(r.states).toEqual(['healthy']);
    expect(r.requests).toBeGreaterThanOrEqual(5);
    expect(r.requests).toBeLessThanOrEqual(r.elapsed / 100 + 2);
  });
});
