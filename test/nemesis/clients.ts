// The nemesis's clients: each keeps writing unique values to its own keys and
// reading any client's keys, through whichever instance is active (following
// the 503's "active" URL), and records every write (acknowledged or
// indeterminate) and every read an active answered. One more loop polls each
// controller's GET /active (200 only on the active) for the report and for
// convergence.
import { Agent, request, type Dispatcher } from 'undici';
import { Rng } from '../../src/sim/rng.js';
import type { ReadOp, WriteOp } from './checker.js';

export const CLIENT_LIMITS = {
  /** One HTTP request, connect included. */
  request_timeout_ms: 2_000,
  /** One logical write: attempts (following redirects, trying other instances) until acknowledged or this. */
  write_deadline_ms: 6_000,
  write_attempts_max: 6,
  /** Keys per client: values overwrite each other, so staleness is checkable. */
  keys_per_client: 50,
  /** A client's pause between operations. */
  think_ms: 10,
  /** After a failed attempt before the next. */
  retry_pause_ms: 50,
  /** Share of operations that are writes, and of writes that are deletes. */
  write_share: 0.6,
  delete_share: 0.05,
  /** /active polling. */
  poll_interval_ms: 100,
  poll_timeout_ms: 1_000,
  /** Bounds on the history kept (a 30-minute run stays well below). */
  ops_max: 5_000_000,
  samples_max: 2_000_000,
} as const;

export interface Endpoint { id: string; url: string; adminUrl: string }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Answer = { kind: 'http'; status: number; headers: Record<string, string | string[] | undefined>; body: string } | { kind: 'error'; error: string };

async function call(dispatcher: Dispatcher, method: 'GET' | 'PUT' | 'DELETE', url: string, body?: string): Promise<Answer> {
  try {
    const r = await request(url, {
      method, body, dispatcher,
      signal: AbortSignal.timeout(CLIENT_LIMITS.request_timeout_ms),
      headersTimeout: CLIENT_LIMITS.request_timeout_ms, bodyTimeout: CLIENT_LIMITS.request_timeout_ms,
      ...(body !== undefined ? { headers: { 'content-type': 'text/plain' } } : {}),
    });
    return { kind: 'http', status: r.statusCode, headers: r.headers, body: await r.body.text() };
  } catch (e) {
    const err = e as Error & { code?: string; cause?: { code?: string } };
    return { kind: 'error', error: err.code ?? err.cause?.code ?? err.name ?? err.message };
  }
}

const header = (h: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

export interface WorkloadCounters {
  writesAttempted: number;
  writeAttempts: number;
  writesAcknowledged: number;
  writesIndeterminate: number;
  readsChecked: number;
  readsNotActive: number;
  readsFailed: number;
  redirectsFollowed: number;
}

export class Workload {
  readonly writes: WriteOp[] = [];
  readonly reads: ReadOp[] = [];
  readonly counters: WorkloadCounters = { writesAttempted: 0, writeAttempts: 0, writesAcknowledged: 0, writesIndeterminate: 0, readsChecked: 0, readsNotActive: 0, readsFailed: 0, redirectsFollowed: 0 };
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly agent = new Agent({ connections: 16, keepAliveTimeout: 4_000, connect: { timeout: CLIENT_LIMITS.request_timeout_ms } });
  private readonly byUrl = new Map<string, Endpoint>();

  constructor(private readonly endpoints: Endpoint[], private readonly clients: number, private readonly seed: number, private readonly now: () => number) {
    for (const e of endpoints) this.byUrl.set(e.url.replace(/\/+$/, ''), e);
  }

  start(): void {
    for (let c = 0; c < this.clients; c++) this.loops.push(this.client(c));
  }

  /** Stops issuing operations and waits for those in flight (bounded by the write deadline). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    this.loops = [];
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }

  private endpointOf(url: unknown): Endpoint | null {
    if (typeof url !== 'string') return null;
    return this.byUrl.get(url.replace(/\/+$/, '')) ?? null;
  }

  private async client(c: number): Promise<void> {
    const rng = new Rng((this.seed ^ Math.imul(c + 1, 0x9e3779b1)) >>> 0);
    const state = { target: this.endpoints[c % this.endpoints.length], n: 0 };
    for (let op = 0; !this.stopping && op < CLIENT_LIMITS.ops_max; op++) {
      if (this.writes.length + this.reads.length >= CLIENT_LIMITS.ops_max) break;
      if (rng.chance(CLIENT_LIMITS.write_share)) await this.write(c, rng, state);
      else await this.read(c, rng, state);
      await sleep(CLIENT_LIMITS.think_ms);
    }
  }

  private next(state: { target: Endpoint }): void {
    const i = this.endpoints.indexOf(state.target);
    state.target = this.endpoints[(i + 1) % this.endpoints.length];
  }

  /** One logical write, retried (same key and value) until acknowledged or out of attempts. */
  async write(c: number, rng: Rng, state: { target: Endpoint; n: number }, key?: string): Promise<WriteOp> {
    const n = state.n++;
    const del = key === undefined && rng.chance(CLIENT_LIMITS.delete_share);
    const w: WriteOp = {
      client: c, n, key: key ?? `k${c}-${n % CLIENT_LIMITS.keys_per_client}`, value: del ? null : `${c}-${n}`,
      startMs: this.now(), endMs: NaN, outcome: 'indeterminate', attempts: 0,
    };
    this.writes.push(w);
    this.counters.writesAttempted++;
    const deadline = w.startMs + CLIENT_LIMITS.write_deadline_ms;
    while (w.attempts < CLIENT_LIMITS.write_attempts_max && this.now() < deadline) {
      w.attempts++;
      this.counters.writeAttempts++;
      const t = state.target;
      const a = await call(this.agent, del ? 'DELETE' : 'PUT', `${t.url}/kv/${encodeURIComponent(w.key)}`, del ? undefined : w.value!);
      if (a.kind === 'http' && a.status === 200) {
        let j: { txid?: unknown; epoch?: unknown };
        try { j = JSON.parse(a.body) as typeof j; } catch { j = {}; }
        if ((typeof j.txid === 'string' || typeof j.txid === 'number') && typeof j.epoch === 'number') {
          w.outcome = 'ok';
          w.ackMs = this.now();
          w.txid = String(j.txid);
          w.epoch = j.epoch;
          w.instance = t.id;
          break;
        }
        w.error = `200 without {txid, epoch} from ${t.id}: ${a.body.slice(0, 200)}`;
        break;
      }
      if (a.kind === 'http' && a.status === 503) {
        let active: Endpoint | null = null;
        try { active = this.endpointOf((JSON.parse(a.body) as { active?: unknown }).active); } catch { /* not JSON */ }
        w.error = `503 from ${t.id}${active ? ` (active: ${active.id})` : ''}`;
        if (active !== null && active !== t) { state.target = active; this.counters.redirectsFollowed++; continue; }
        this.next(state);
      } else {
        w.error = a.kind === 'error' ? `${a.error} from ${t.id}` : `${a.status} from ${t.id}: ${a.body.slice(0, 200)}`;
        this.next(state);
      }
      await sleep(CLIENT_LIMITS.retry_pause_ms);
    }
    w.endMs = this.now();
    if (w.outcome === 'ok') this.counters.writesAcknowledged++; else this.counters.writesIndeterminate++;
    return w;
  }

  private async read(c: number, rng: Rng, state: { target: Endpoint }): Promise<void> {
    const key = `k${rng.int(this.clients)}-${rng.int(CLIENT_LIMITS.keys_per_client)}`;
    const t = state.target;
    const startMs = this.now();
    const a = await call(this.agent, 'GET', `${t.url}/kv/${encodeURIComponent(key)}`);
    const endMs = this.now();
    if (a.kind === 'http' && (a.status === 200 || a.status === 404) && header(a.headers, 'x-quorate-role') !== undefined) {
      if (header(a.headers, 'x-quorate-role') !== 'active') {
        this.counters.readsNotActive++;
        this.next(state);
        return;
      }
      const applied = header(a.headers, 'x-quorate-applied-txid');
      this.reads.push({ client: c, key, startMs, endMs, value: a.status === 200 ? a.body : null, instance: t.id, ...(applied !== undefined ? { appliedTxid: applied } : {}) });
      this.counters.readsChecked++;
      return;
    }
    this.counters.readsFailed++;
    if (a.kind === 'http' && a.status === 503) {
      let active: Endpoint | null = null;
      try { active = this.endpointOf((JSON.parse(a.body) as { active?: unknown }).active); } catch { /* not JSON */ }
      if (active !== null && active !== t) { state.target = active; return; }
    }
    this.next(state);
    await sleep(CLIENT_LIMITS.retry_pause_ms);
  }

  /** One write outside the clients (the barrier after convergence): client id `clients`, key "barrier". */
  async barrier(state: { target: Endpoint; n: number }): Promise<WriteOp> {
    return this.write(this.clients, new Rng(0), state, 'barrier');
  }

  /** What an instance's service and controller say of its role, for a report. */
  async describe(e: Endpoint): Promise<string> {
    const svc = await call(this.agent, 'GET', `${e.url}/role`);
    const ctl = await call(this.agent, 'GET', `${e.adminUrl}/v1/status`);
    const said = (a: Answer, fields: string[]) => {
      if (a.kind === 'error') return a.error;
      try {
        const j = JSON.parse(a.body) as Record<string, unknown>;
        return fields.map((f) => `${f} ${JSON.stringify(j[f] ?? null)}`).join(', ');
      } catch { return `${a.status} ${a.body.slice(0, 100)}`; }
    };
    return `${e.id}: service: ${said(svc, ['role', 'epoch'])}; controller: ${said(ctl, ['phase', 'active', 'health', 'epoch'])}`;
  }

  /** GET /kv on an instance: its role, applied txid and data. */
  async dump(e: Endpoint): Promise<{ role: string; appliedTxid: bigint; data: Record<string, string> } | string> {
    const a = await call(this.agent, 'GET', `${e.url}/kv`);
    if (a.kind === 'error') return `${e.id}: ${a.error}`;
    if (a.status !== 200) return `${e.id}: GET /kv answered ${a.status}: ${a.body.slice(0, 300)}`;
    try {
      const j = JSON.parse(a.body) as { role?: unknown; appliedTxid?: unknown; data?: unknown };
      if (typeof j.role !== 'string' || (typeof j.appliedTxid !== 'string' && typeof j.appliedTxid !== 'number') || typeof j.data !== 'object' || j.data === null) {
        return `${e.id}: GET /kv answered without {role, appliedTxid, data}: ${a.body.slice(0, 300)}`;
      }
      return { role: j.role, appliedTxid: BigInt(j.appliedTxid), data: j.data as Record<string, string> };
    } catch (err) {
      return `${e.id}: GET /kv: ${(err as Error).message}`;
    }
  }
}

/** Who the controllers say is active, every poll_interval_ms. */
export class ActivePoller {
  /** [time, the instances whose controller answered 200 on /active] */
  readonly samples: { atMs: number; actives: string[] }[] = [];
  private stopping = false;
  private loop: Promise<void> | null = null;
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 2_000, connect: { timeout: CLIENT_LIMITS.poll_timeout_ms } });

  constructor(private readonly endpoints: Endpoint[], private readonly now: () => number) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; !this.stopping && i < CLIENT_LIMITS.samples_max; i++) {
        const t0 = this.now();
        const actives = await this.actives();
        this.samples.push({ atMs: t0, actives });
        const spent = this.now() - t0;
        if (spent < CLIENT_LIMITS.poll_interval_ms) await sleep(CLIENT_LIMITS.poll_interval_ms - spent);
      }
    })();
  }

  async actives(): Promise<string[]> {
    const r = await Promise.all(this.endpoints.map(async (e) => {
      try {
        const res = await request(`${e.adminUrl}/active`, { dispatcher: this.agent, signal: AbortSignal.timeout(CLIENT_LIMITS.poll_timeout_ms) });
        await res.body.dump();
        return res.statusCode === 200 ? e.id : null;
      } catch { return null; }
    }));
    return r.filter((x): x is string => x !== null);
  }

  /** The latest sample no older than maxAgeMs, or null. */
  latest(maxAgeMs: number): string[] | null {
    const s = this.samples[this.samples.length - 1];
    return s !== undefined && this.now() - s.atMs <= maxAgeMs ? s.actives : null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await this.agent.close().catch(() => undefined);
  }
}
