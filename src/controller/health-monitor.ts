// Runs a service's health checks (HTTP with undici, TCP connect, or a command
// in its own process group), each on its own interval and with its own
// timeout, so a hung check never blocks anything else; reports the combined
// state (HealthAggregator) whenever it changes.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { request } from 'undici';
import type { HealthCheckConfig } from '../config/controller-config.js';
import { HealthAggregator, type CheckOutcome } from '../core/controller/health.js';
import type { HealthState } from '../core/controller/controller-core.js';
import { describeCommandResult, runCommand } from '../io/run-command.js';

/** A check that is not in the configuration's list: a resource's monitor, run on its own interval. */
export interface HealthProbe { intervalMs: number; run: () => Promise<CheckOutcome> }

/** A check's kind as metrics name it: a configured check's, or `resource` for a resource's monitor. */
export type CheckKind = HealthCheckConfig['kind'] | 'resource';

export class HealthMonitor extends EventEmitter<{ change: [HealthState, string]; lag: [number | null]; check: [index: number, kind: CheckKind, result: CheckOutcome['kind'], seconds: number] }> {
  private readonly agg: HealthAggregator;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private last: { state: HealthState; reason: string } = { state: 'initializing', reason: 'not started' };

  constructor(private readonly checks: readonly HealthCheckConfig[], private readonly probes: readonly HealthProbe[] = []) {
    super();
    // A probe counts its own consecutive failures: it reports one only when it means it.
    this.agg = new HealthAggregator([...checks.map((c) => c.failures), ...probes.map(() => 1)]);
  }

  get current(): { state: HealthState; reason: string } { return this.last; }

  start(): void {
    this.checks.forEach((c, i) => this.loop(c, i));
    this.probes.forEach((p, k) => this.loop(p, this.checks.length + k));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private loop(c: HealthCheckConfig | HealthProbe, i: number): void {
    const t0 = performance.now();
    void ('run' in c ? c.run() : runCheck(c)).then((o) => {
      if (this.stopped) return;
      this.emit('check', i, 'kind' in c ? c.kind : 'resource', o.kind, (performance.now() - t0) / 1000);
      if ('kind' in c && c.kind === 'http' && c.lagField !== null) this.emit('lag', o.kind === 'ok' ? o.lag ?? null : null);
      this.agg.record(i, o);
      const s = this.agg.state();
      if (s.state !== this.last.state || s.reason !== this.last.reason) {
        this.last = s;
        this.emit('change', s.state, s.reason);
      }
      const wait = Math.max(0, c.intervalMs - (performance.now() - t0));
      this.timers[i] = setTimeout(() => this.loop(c, i), wait);
    });
  }
}

export async function runCheck(c: HealthCheckConfig): Promise<CheckOutcome> {
  switch (c.kind) {
    case 'tcp': return tcpCheck(c.host, c.port, c.timeoutMs);
    case 'command': {
      const r = await runCommand(c.command, { timeoutMs: c.timeoutMs });
      if (r.timedOut) return { kind: 'timeout', reason: `command ${describeCommandResult(r)}` };
      return r.code === 0 ? { kind: 'ok' } : { kind: 'failed', reason: `command ${describeCommandResult(r)}` };
    }
    case 'http': {
      try {
        const res = await request(c.url, { method: 'GET', signal: AbortSignal.timeout(c.timeoutMs), headersTimeout: c.timeoutMs, bodyTimeout: c.timeoutMs });
        const text = await res.body.text();
        if (res.statusCode !== c.expectStatus) return { kind: 'failed', reason: `GET ${c.url} answered ${res.statusCode}, expected ${c.expectStatus}` };
        let body: unknown;
        if (c.jsonField !== null || c.lagField !== null) {
          try { body = JSON.parse(text); } catch { return { kind: 'failed', reason: `GET ${c.url}: the body is not JSON` }; }
        }
        const field = (path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], body);
        if (c.jsonField !== null) {
          const v = field(c.jsonField);
          if (c.jsonValue !== null ? v !== c.jsonValue : !v) return { kind: 'failed', reason: `GET ${c.url}: ${c.jsonField} is ${JSON.stringify(v)}${c.jsonValue !== null ? `, expected ${JSON.stringify(c.jsonValue)}` : ''}` };
        }
        if (c.lagField !== null) {
          const lag = field(c.lagField);
          return { kind: 'ok', lag: typeof lag === 'number' && Number.isFinite(lag) ? lag : null };
        }
        return { kind: 'ok' };
      } catch (e) {
        const err = e as Error & { code?: string };
        if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', reason: `GET ${c.url}: no answer within ${c.timeoutMs} ms` };
        return { kind: 'failed', reason: `GET ${c.url}: ${err.code ?? err.message}` };
      }
    }
  }
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => { sock.destroy(); resolve({ kind: 'timeout', reason: `connect to ${host}:${port}: no answer within ${timeoutMs} ms` }); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve({ kind: 'ok' }); });
    sock.once('error', (e: Error & { code?: string }) => { clearTimeout(timer); resolve({ kind: 'failed', reason: `connect to ${host}:${port}: ${e.code ?? e.message}` }); });
  });
}
