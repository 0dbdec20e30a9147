// One journal node's HTTP API, as its clients see it (the writer, readers, and
// other journal nodes fetching edits; the controller taking an epoch): explicit
// timeouts, answers validated, failures turned into a JournalNodeError naming
// the node and what went wrong (status 0: no answer).
//
// How requests are carried is the caller's choice: by default node's own
// client (plainTransport), one request per connection at a time, for a
// process that makes a few calls (the controller at a failover, status),
// where undici's ~30 MB of resident memory would buy nothing; the writer, the
// readers and the nodes' catch-up pass pipelinedTransport (undici, batches
// pipelined on one connection).
import http from 'node:http';
import https from 'node:https';
import { httpCall, HttpCallError } from '../../io/http-call.js';
import { z } from 'zod';
import type { JournalSegment } from '../../core/journal/journal-state.js';
import type { PrepareRecoveryAnswer, SegmentState } from '../../core/journal/recovery.js';
import {
  EDITS_HEADERS, ErrorAnswer, JOURNAL_API_PREFIX, JournalStateAnswer, ManifestAnswer, NewEpochAnswer, PrepareRecoveryAnswerBody,
  JOURNAL_LIMITS, decodeBatch, segmentFromJson, segmentToJson, toJson, type JournalPostOp,
} from '../../proto/journal-wire.js';

export interface JournalNodeAddress { id: number; host: string; port: number }

/** Mutual TLS to journal nodes (PEM texts): this process's certificate and key, and the cluster CA the nodes' certificates chain to. */
export interface JournalTls { cert: string; key: string; ca: string }

export class JournalNodeError extends Error {
  /** `status` is the node's HTTP status, or 0 when it did not answer (refused, reset, timed out). */
  constructor(readonly node: number, readonly status: number, message: string) { super(message); }
}

export interface JournalNodeState {
  promisedEpoch: number;
  lastWriterEpoch: number;
  committedTxid: bigint;
  firstTxid: bigint | null;
  lastSegment: JournalSegment | null;
}

export interface EditsAnswer { firstTxid: bigint; committedTxid: bigint; writerEpoch: number | null; edits: Buffer[] }

/** One request's answer, or why there was none. */
export type Carried = { ok: true; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer } | { ok: false; timedOut: boolean; brokeOff: boolean; why: string };

/** Carries one node's requests; `extraWaitMs`: the node may hold this answer that much longer (a long poll). */
export interface Transport {
  request(method: 'GET' | 'POST', path: string, body: Buffer | string | undefined, headers: Record<string, string>, extraWaitMs: number): Promise<Carried>;
  close(): Promise<void>;
}

export type TransportFactory = (origin: string, timeoutMs: number, tls: JournalTls | null) => Transport;

export interface JournalNodeClientOptions {
  /** Default plainTransport (node:http); the writer and readers pass pipelinedTransport(n). */
  transport?: TransportFactory;
  tls?: JournalTls | null;
}

export class JournalNodeClient {
  private readonly transport: Transport;
  readonly label: string;

  constructor(readonly node: JournalNodeAddress, private readonly timeoutMs: number, opts: JournalNodeClientOptions = {}) {
    this.label = `journal node ${node.id} (${node.host}:${node.port})`;
    const tls = opts.tls ?? null;
    const origin = `${tls === null ? 'http' : 'https'}://${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`;
    this.transport = (opts.transport ?? plainTransport)(origin, timeoutMs, tls);
  }

  private async call(method: 'GET' | 'POST', path: string, body?: Buffer | string, extraWaitMs = 0): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream' };
    const res = await this.transport.request(method, path, body, headers, extraWaitMs);
    if (!res.ok) {
      const why = res.brokeOff ? `: the answer broke off (${res.why})` : res.timedOut ? ` did not answer within ${this.timeoutMs + extraWaitMs} ms` : ` unreachable (${res.why})`;
      throw new JournalNodeError(this.node.id, 0, `${this.label}${why}`);
    }
    if (res.status >= 400) {
      const parsed = ErrorAnswer.safeParse(safeJson(res.body));
      throw new JournalNodeError(this.node.id, res.status, parsed.success ? parsed.data.error : `${this.label} answered ${res.status}`);
    }
    return { headers: res.headers, body: res.body };
  }

  private async json<S extends z.ZodType>(schema: S, method: 'GET' | 'POST', path: string, body?: unknown): Promise<z.output<S>> {
    const r = await this.call(method, path, body === undefined ? undefined : toJson(body));
    const parsed = schema.safeParse(safeJson(r.body));
    if (!parsed.success) throw new JournalNodeError(this.node.id, 0, `${this.label} gave an answer that is not the expected shape (${parsed.error.issues[0]?.message})`);
    return parsed.data;
  }

  private path(journal: string, op?: string): string {
    return `${JOURNAL_API_PREFIX}/${encodeURIComponent(journal)}${op === undefined ? '' : `/${op}`}`;
  }

  async post(journal: string, op: JournalPostOp, body: unknown): Promise<void> {
    await this.call('POST', this.path(journal, op), toJson(body));
  }

  /** The node's id and the journals it holds (GET /v1/health). */
  async health(): Promise<{ node: number; journals: string[] }> {
    return this.json(HealthAnswer, 'GET', '/v1/health');
  }

  async state(journal: string): Promise<JournalNodeState> {
    const a = await this.json(JournalStateAnswer, 'GET', this.path(journal));
    return { ...a, lastSegment: a.lastSegment && segmentFromJson(a.lastSegment) };
  }

  async manifest(journal: string): Promise<JournalNodeState & { segments: JournalSegment[] }> {
    const a = await this.json(ManifestAnswer, 'GET', this.path(journal, 'manifest'));
    return { ...a, lastSegment: a.lastSegment && segmentFromJson(a.lastSegment), segments: a.segments.map(segmentFromJson) };
  }

  async newEpoch(journal: string, epoch: number): Promise<bigint | null> {
    return (await this.json(NewEpochAnswer, 'POST', this.path(journal, 'new-epoch'), { epoch })).lastSegmentTxid;
  }

  async prepareRecovery(journal: string, epoch: number, segment: bigint): Promise<PrepareRecoveryAnswer & { committedTxid: bigint }> {
    const a = await this.json(PrepareRecoveryAnswerBody, 'POST', this.path(journal, 'prepare-recovery'), { epoch, segment });
    return { ...a, segment: a.segment && segmentFromJson(a.segment) };
  }

  async acceptRecovery(journal: string, epoch: number, segment: SegmentState, fromNode: number): Promise<void> {
    await this.post(journal, 'accept-recovery', { epoch, segment: segmentToJson(segment), fromNode });
  }

  /** A batch: `body` is encodeBatch() of its edits (encoded once for every node). */
  async journal(journal: string, q: { epoch: number; segment: bigint; first: bigint; committed: bigint; checksum: string }, body: Buffer): Promise<void> {
    const query = `epoch=${q.epoch}&segment=${q.segment}&first=${q.first}&committed=${q.committed}&checksum=${q.checksum}`;
    await this.call('POST', `${this.path(journal, 'journal')}?${query}`, body);
  }

  /** Committed edits from `from` (at most `max`); with `waitMs`, the node holds the answer until there are some. */
  async edits(journal: string, from: bigint, max: number, waitMs = 0): Promise<EditsAnswer> {
    const q = new URLSearchParams({ from: String(from), max: String(max), ...(waitMs > 0 ? { wait: String(waitMs) } : {}) });
    return this.readEdits(`${this.path(journal, 'edits')}?${q}`, waitMs);
  }

  /** Edits `from`..`to` of segment `start`, committed or not (for recovery and catch-up between nodes). */
  async segmentEdits(journal: string, start: bigint, from: bigint, to: bigint, max: number): Promise<EditsAnswer> {
    const q = new URLSearchParams({ start: String(start), from: String(from), to: String(to), max: String(max) });
    return this.readEdits(`${this.path(journal, 'segment-edits')}?${q}`, 0);
  }

  private async readEdits(path: string, waitMs: number): Promise<EditsAnswer> {
    const r = await this.call('GET', path, undefined, waitMs);
    const header = (k: string) => { const v = r.headers[k]; return typeof v === 'string' && /^\d{1,19}$/.test(v) ? BigInt(v) : null; };
    const first = header(EDITS_HEADERS.first);
    const committed = header(EDITS_HEADERS.committed);
    if (first === null || committed === null) throw new JournalNodeError(this.node.id, 0, `${this.label}: an edits answer without its ${EDITS_HEADERS.first}/${EDITS_HEADERS.committed} headers`);
    const we = header(EDITS_HEADERS.writerEpoch);
    try {
      return { firstTxid: first, committedTxid: committed, writerEpoch: we === null ? null : Number(we), edits: decodeBatch(r.body, true) };
    } catch (e) {
      throw new JournalNodeError(this.node.id, 0, `${this.label}: an edits answer that does not decode (${(e as Error).message})`);
    }
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** node:http, a few keep-alive connections per node. */
export const plainTransport: TransportFactory = (origin, timeoutMs, tls) => new PlainTransport(origin, timeoutMs, tls);

class PlainTransport implements Transport {
  private readonly agent: http.Agent;

  constructor(private readonly origin: string, private readonly timeoutMs: number, tls: JournalTls | null) {
    this.agent = tls === null ? new http.Agent({ keepAlive: true, maxSockets: 4 })
      : new https.Agent({ keepAlive: true, maxSockets: 4, cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true });
  }

  async request(method: 'GET' | 'POST', path: string, body: Buffer | string | undefined, headers: Record<string, string>, extraWaitMs: number): Promise<Carried> {
    try {
      const r = await httpCall(this.origin + path, { method, body, headers, timeoutMs: this.timeoutMs + extraWaitMs, agent: this.agent, maxBodyBytes: JOURNAL_LIMITS.batch_bytes_max });
      return { ok: true, status: r.status, headers: r.headers, body: r.body };
    } catch (e) {
      const err = e as Error & { code?: string };
      const kind = err instanceof HttpCallError ? err.kind : 'unreachable';
      return { ok: false, timedOut: kind === 'timeout', brokeOff: kind === 'answer', why: err.code ?? err.message };
    }
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

const HealthAnswer = z.object({ node: z.number(), journals: z.array(z.string()) });

function safeJson(b: Buffer): unknown {
  try { return JSON.parse(b.toString('utf8')); } catch { return undefined; }
}
