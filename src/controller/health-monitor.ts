// Runs a service's health checks (HTTP GET, TCP connect, or a command
// in its own process group), each on its own interval and with its own
// timeout, so a hung check never blocks anything else; reports the combined
// state (HealthFolder: the aggregator's state, reported when it or its reason
// changes).
//
// A crash is heard at once, not at the next check: a tcp check keeps the
// connection of a passing check open until the next one replaces it (no
// extra connections), and an http check
// keeps its keep-alive connection (holdConnection, on by default). When that
// connection closes, the check runs again at once: a refused connection then
// is unhealthy at once (the aggregator's rule), while a service that merely
// closes idle connections answers that early check and stays healthy. An
// early check holds its connection too: a process being killed closes its
// connections one by one, and a connect that lands before its listening
// socket is closed is reset a moment later, which runs the next early check.
// Only a close after a passing check does this, at most EARLY_CHECKS_MAX
// times between two scheduled checks (a service that closes every
// connection costs that many extra connects per interval, not a loop); a
// check that timed out or failed keeps its schedule, so timeouts are counted
// as before.
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { HealthCheckConfig } from '../config/controller-config.js';
import { HealthFolder, type CheckOutcome } from '../core/controller/health.js';
import type { HealthState } from '../core/controller/controller-core.js';
import { httpCall, httpFailure, HttpCallError } from '../io/http-call.js';
import { describeCommandResult, runCommand } from '../io/run-command.js';

/** A check that is not in the configuration's list: a resource's monitor, run on its own interval. */
export interface HealthProbe { intervalMs: number; run: () => Promise<CheckOutcome> }

/** A check's kind as metrics name it: a configured check's, or `resource` for a resource's monitor. */
export type CheckKind = HealthCheckConfig['kind'] | 'resource';

/** Early checks (a held connection closed) allowed between two scheduled ones: a crash needs two (see above). */
export const EARLY_CHECKS_MAX = 2;

/** What a check's runner is given to hold its connection (tcp): the socket of a passing check. */
type Hold = ((sock: net.Socket) => void) | null;

/** An http check's keep-alive connection: its last answer announced its close; the service ended or reset it. */
interface HeldHttpSocket { closeAnnounced: boolean; endedByPeer: boolean }

interface CheckRun {
  timer: NodeJS.Timeout | null;
  running: boolean;
  /** The held connection closed while a check was under way: check again at once if that one passes. */
  closedWhileRunning: boolean;
  /** Early checks run since the last scheduled one: past EARLY_CHECKS_MAX, a close waits for the schedule. */
  earlyRuns: number;
  /** The last outcome was ok: a close means something only then. */
  lastOk: boolean;
  /** tcp: the connection of the last passing check, while it is open. */
  held: net.Socket | null;
  /** http with holdConnection: its own keep-alive agent (one connection), whose connection's close we hear. */
  agent: http.Agent | null;
  heldHttp: WeakMap<net.Socket, HeldHttpSocket>;
}

export class HealthMonitor extends EventEmitter<{ change: [HealthState, string]; lag: [number | null]; check: [index: number, kind: CheckKind, result: CheckOutcome['kind'], seconds: number] }> {
  private readonly folder: HealthFolder;
  private readonly runs: CheckRun[];
  private stopped = false;

  constructor(private readonly checks: readonly HealthCheckConfig[], private readonly probes: readonly HealthProbe[] = []) {
    super();
    // A probe counts its own consecutive failures: it reports one only when it means it.
    this.folder = new HealthFolder([...checks.map((c) => c.failures), ...probes.map(() => 1)]);
    this.runs = [...checks, ...probes].map(() => ({ timer: null, running: false, closedWhileRunning: false, earlyRuns: 0, lastOk: false, held: null, agent: null, heldHttp: new WeakMap() }));
  }

  get current(): { state: HealthState; reason: string } { return this.folder.current; }

  start(): void {
    this.checks.forEach((c, i) => {
      if (c.kind === 'http' && c.holdConnection) this.runs[i].agent = new (c.url.startsWith('https:') ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
      this.loop(c, i, null);
    });
    this.probes.forEach((p, k) => this.loop(p, this.checks.length + k, null));
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.runs) {
      if (r.timer !== null) clearTimeout(r.timer);
      r.held?.destroy();
      r.held = null;
      r.agent?.destroy();
    }
  }

  /**
   * An http check's answer came on `sock`: its close, from then on, is news when the service ended
   * or reset it without having announced it (Connection: close). The agent's own closes are not:
   * it closes an idle connection a second before the service's announced Keep-Alive timeout.
   */
  private watchHttp(c: HealthCheckConfig, i: number, sock: net.Socket, res: http.IncomingMessage): void {
    const r = this.runs[i];
    const closeAnnounced = /(^|,)\s*close\s*($|,)/i.test(String(res.headers.connection ?? ''));
    const known = r.heldHttp.get(sock);
    if (known !== undefined) { known.closeAnnounced = closeAnnounced; return; }
    const state: HeldHttpSocket = { closeAnnounced, endedByPeer: false };
    r.heldHttp.set(sock, state);
    sock.once('end', () => { state.endedByPeer = true; });
    sock.once('error', () => { state.endedByPeer = true; });
    sock.once('close', () => {
      if (this.stopped || state.closeAnnounced || !state.endedByPeer) return;
      this.closed(c, i);
    });
  }

  /** Check i's held connection closed (tcp's, or the http check's keep-alive connection). */
  private closed(c: HealthCheckConfig, i: number): void {
    const r = this.runs[i];
    if (this.stopped || r.earlyRuns >= EARLY_CHECKS_MAX || !r.lastOk) return;
    if (r.running) { r.closedWhileRunning = true; return; }
    this.loop(c, i, 'the held connection closed');
  }

  /**
   * Keeps a passing check's connection until the next check's replaces it: one connection per check,
   * as without holding, and never one left from before a spell the host was away (its close may
   * never come).
   */
  private hold(c: HealthCheckConfig, i: number, sock: net.Socket): void {
    const r = this.runs[i];
    if (this.stopped) { sock.destroy(); return; }
    const old = r.held;
    r.held = sock;
    old?.destroy();
    // Whatever the service says is read and dropped: a full buffer would hide its close.
    sock.resume();
    sock.on('error', () => undefined);
    sock.once('close', () => {
      // A replaced connection's close is ours, not the service's.
      if (r.held !== sock) return;
      r.held = null;
      this.closed(c, i);
    });
  }

  /** `early`: why this check runs before its time (null: on schedule). */
  private loop(c: HealthCheckConfig | HealthProbe, i: number, early: string | null): void {
    const r = this.runs[i];
    if (r.timer !== null) { clearTimeout(r.timer); r.timer = null; }
    r.running = true;
    r.closedWhileRunning = false;
    r.earlyRuns = early === null ? 0 : r.earlyRuns + 1;
    const t0 = performance.now();
    const hold: Hold = 'kind' in c && c.kind === 'tcp' && c.holdConnection ? (s) => this.hold(c, i, s) : null;
    const onSocket = r.agent === null || !('kind' in c) ? undefined : (sock: net.Socket, res: http.IncomingMessage) => this.watchHttp(c, i, sock, res);
    void ('run' in c ? c.run() : runCheck(c, { hold, agent: r.agent, onSocket })).then((got) => {
      r.running = false;
      if (this.stopped) return;
      const o: CheckOutcome = early !== null && got.kind !== 'ok' ? { ...got, reason: `${got.reason} (checked at once: ${early})` } : got;
      r.lastOk = o.kind === 'ok';
      this.emit('check', i, 'kind' in c ? c.kind : 'resource', o.kind, (performance.now() - t0) / 1000);
      if ('kind' in c && c.kind === 'http' && c.lagField !== null) this.emit('lag', o.kind === 'ok' ? o.lag ?? null : null);
      const changed = this.folder.fold(i, o);
      if (changed !== null) this.emit('change', changed.state, changed.reason);
      if (r.closedWhileRunning && r.lastOk && r.earlyRuns < EARLY_CHECKS_MAX && 'kind' in c) { this.loop(c, i, 'the held connection closed'); return; }
      const wait = Math.max(0, c.intervalMs - (performance.now() - t0));
      r.timer = setTimeout(() => this.loop(c, i, null), wait);
    });
  }
}

/** `hold`: keep a passing tcp check's connection (given to it); `agent`, `onSocket`: the http check's own keep-alive agent, and who watches its connection. */
export async function runCheck(c: HealthCheckConfig, via: { hold?: Hold; agent?: http.Agent | null; onSocket?: (sock: net.Socket, res: http.IncomingMessage) => void } = {}): Promise<CheckOutcome> {
  switch (c.kind) {
    case 'tcp': return tcpCheck(c.host, c.port, c.timeoutMs, via.hold ?? null);
    case 'command': {
      const r = await runCommand(c.command, { timeoutMs: c.timeoutMs });
      if (r.timedOut) return { kind: 'timeout', reason: `command ${describeCommandResult(r)}` };
      return r.code === 0 ? { kind: 'ok' } : { kind: 'failed', reason: `command ${describeCommandResult(r)}` };
    }
    case 'http': {
      try {
        const res = await httpCall(c.url, { method: 'GET', timeoutMs: c.timeoutMs, agent: via.agent ?? undefined, onSocket: via.onSocket });
        const text = res.body.toString('utf8');
        if (res.status !== c.expectStatus) return { kind: 'failed', reason: `GET ${c.url} answered ${res.status}, expected ${c.expectStatus}` };
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
        return { kind: e instanceof HttpCallError && e.timedOut ? 'timeout' : 'failed', reason: `GET ${c.url}: ${httpFailure(e, c.timeoutMs)}` };
      }
    }
  }
}

function tcpCheck(host: string, port: number, timeoutMs: number, hold: Hold): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => { sock.destroy(); resolve({ kind: 'timeout', reason: `connect to ${host}:${port}: no answer within ${timeoutMs} ms` }); }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      if (hold === null) sock.destroy(); else hold(sock);
      resolve({ kind: 'ok' });
    });
    sock.once('error', (e: Error & { code?: string }) => { clearTimeout(timer); resolve({ kind: 'failed', reason: `connect to ${host}:${port}: ${e.code ?? e.message}` }); });
  });
}
