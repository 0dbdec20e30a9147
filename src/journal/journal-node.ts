// A journal node (`quorate journal --config FILE --id N`): an HTTP server
// (node:http) hosting one journal per managed service under its data
// directory. Every request is validated at the edge (journal names, JSON
// bodies, batch bodies and their checksums; a clear 4xx naming what was
// wrong, nothing written); each journal's operations run one at a time and
// answer only once durable. The node catches up from its peers on its own
// (JournalCatchUp), and fills a writer's batch gap from a peer at once.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { certificateExpiry, rotateServerCertificate } from '../io/tls-identity.js';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { JournalNodeConfig } from '../config/cluster-file.js';
import { JournalError, type JournalStorageOp } from '../core/journal/journal-state.js';
import type { WriterRequest } from '../core/journal/journal-writer.js';
import { serveBatch, serveWriterRequest, type Fetched, type GapFill, type ServeEffect, type Serving } from '../core/journal/journal-serve.js';
import { JournalNodeClient, JournalNodeError } from '../client/journal/node-client.js';
import { pipelinedTransport } from '../client/journal/pipelined-transport.js';
import { formatJournalDir, journalDirHasData, readJournalMeta } from '../io/journal-store.js';
import type { Logger } from '../io/log.js';
import {
  EDITS_HEADERS, EditsQuery, JOURNAL_API_PREFIX, JOURNAL_LIMITS, JSON_BODY_BYTES_MAX, JournalBatchQuery, JournalBodies, SegmentEditsQuery,
  WireError, checksumOfBody, decodeBatch, describeZodError, encodeBatch, journalNameProblem, segmentToJson, toJson, type JournalPostOp,
} from '../proto/journal-wire.js';
import { serveMetrics, type MetricsServer } from '../io/metrics-http.js';
import { journalBatchChannel, type JournalBatchTrace } from '../io/journal-trace.js';
import { HostedJournal } from './hosted-journal.js';
import { JournalCatchUp } from './journal-catch-up.js';
import { JournalMetrics, refusalReasonOf, type JournalRefusalReason } from './journal-metrics.js';

/** An answer other than 200, with the message the client shows. */
class HttpError extends Error {
  /** `reason`: for the refusals metric, when the status alone does not say it. */
  constructor(readonly status: number, message: string, readonly reason?: JournalRefusalReason) { super(message); }
}

/** Edits per read answer, and a reader's longest wait for new ones. */
const READ_EDITS_MAX = 10_000;
const READ_BYTES_MAX = 8 * 1024 * 1024;
const READ_WAIT_MS_MAX = 30_000;

export class JournalNode extends EventEmitter {
  private readonly journals = new Map<string, HostedJournal>();
  /** Serializes format with everything else on a journal that may not exist yet. */
  private readonly formatting = new Map<string, Promise<void>>();
  readonly peers = new Map<number, JournalNodeClient>();
  private readonly catchUp: JournalCatchUp;
  readonly metrics: JournalMetrics;
  private metricsServer: MetricsServer | null = null;
  private server!: Server;
  private stopping = false;

  /** A certificate rotation (SIGHUP): the server and the peer clients take the new one. TLS cannot be turned on or off this way. */
  async reloadTls(t: JournalNodeConfig['tls']): Promise<void> {
    if ((t === null) !== (this.config.tls === null)) throw new Error('journal.tls was turned on or off: that needs a restart');
    if (t === null) return;
    this.config.tls = t;
    rotateServerCertificate(this.server, t);
    const old = [...this.peers.values()];
    for (const n of this.config.nodes) if (n.id !== this.config.nodeId) this.peers.set(n.id, new JournalNodeClient(n, this.config.requestTimeoutMs, { tls: t, transport: pipelinedTransport() }));
    await Promise.all(old.map((p) => p.close()));
  }

  private constructor(readonly config: JournalNodeConfig, readonly logger: Logger) {
    super();
    // Catch-up between nodes goes over the same mutual TLS, with this node's certificate.
    for (const n of config.nodes) if (n.id !== config.nodeId) this.peers.set(n.id, new JournalNodeClient(n, config.requestTimeoutMs, { tls: config.tls, transport: pipelinedTransport() }));
    this.catchUp = new JournalCatchUp(this, config.catchUpIntervalMs);
    this.metrics = new JournalMetrics({
      journals: () => [...this.journals.values()].map((j) => ({
        name: j.name, promisedEpoch: j.state.promisedEpoch, writerEpoch: j.state.lastWriterEpoch, committedTxid: j.state.committedTxid,
        lastTxid: j.lastTxid, knownCommittedTxid: j.knownCommittedTxid,
      })),
    }, config.nodeId);
  }

  static async start(opts: { config: JournalNodeConfig; logger: Logger; port?: number }): Promise<JournalNode> {
    const node = new JournalNode(opts.config, opts.logger);
    await node.loadJournals();
    await node.listen(opts.port ?? opts.config.port);
    if (opts.config.metricsPort !== null) {
      try {
        node.metricsServer = await serveMetrics(node.metrics.registry, opts.config.host, opts.config.metricsPort, opts.logger);
      } catch (e) {
        await node.stop();
        throw new Error(`journal node ${opts.config.nodeId}'s metricsPort: ${(e as Error).message}`, { cause: e });
      }
      opts.logger.info({ host: opts.config.host, metricsPort: node.metricsServer.port }, 'journal node metrics at GET /metrics');
    }
    node.catchUp.start();
    return node;
  }

  get port(): number { return (this.server.address() as AddressInfo).port; }
  /** The metrics port (null: not served). */
  get metricsPort(): number | null { return this.metricsServer?.port ?? null; }

  /** A journal opened with this node's fsync timing. */
  private openJournal(name: string, dir: string): Promise<HostedJournal> {
    return HostedJournal.open(name, dir, this.logger, (seconds) => this.metrics.synced(name, seconds));
  }
  journal(name: string): HostedJournal | undefined { return this.journals.get(name); }
  journalNames(): string[] { return [...this.journals.keys()]; }

  private async loadJournals(): Promise<void> {
    let entries: string[] = [];
    try { entries = await readdir(this.config.dataDir); } catch (e) { if ((e as { code?: string }).code !== 'ENOENT') throw e; }
    for (const name of entries.sort()) {
      if (journalNameProblem(name) !== null) continue;
      const dir = join(this.config.dataDir, name);
      const meta = await readJournalMeta(dir);
      if (meta === null) continue;
      if (meta.cluster !== this.config.clusterId) throw new JournalError(409, `${dir} belongs to cluster ${meta.cluster}, this node is in cluster ${this.config.clusterId}`);
      const j = await this.openJournal(name, dir);
      this.journals.set(name, j);
      const s = j.state;
      this.logger.info({ journal: name, epoch: s.promisedEpoch, writerEpoch: s.lastWriterEpoch, committedTxid: String(s.committedTxid), lastSegment: s.lastSegment && String(s.lastSegment.startTxid) }, 'journal loaded');
    }
  }

  private listen(port: number): Promise<void> {
    const timeouts = { requestTimeout: 60_000, headersTimeout: 10_000, keepAliveTimeout: 60_000 };
    const tls = this.config.tls;
    // With TLS, a caller without a certificate from the cluster's CA fails the handshake: it can call nothing.
    this.server = tls === null
      ? createServer(timeouts, (req, res) => { void this.handle(req, res); })
      : createHttpsServer({ ...timeouts, cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => { void this.handle(req, res); });
    if (tls === null && this.config.insecure) {
      this.logger.warn({ host: this.config.host }, 'journal node serves plain HTTP (journal.insecure): anyone who can reach this port can fence the writer or erase a journal');
    }
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.config.host, () => {
        this.server.off('error', reject);
        this.logger.info({ host: this.config.host, port: this.port, journals: this.journalNames() }, 'journal node listening');
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.catchUp.stop();
    await this.metricsServer?.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    for (const j of this.journals.values()) await j.close();
    for (const p of this.peers.values()) await p.close();
  }

  // ---- HTTP ----------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedNs = journalBatchChannel.hasSubscribers ? process.hrtime.bigint() : 0n;
    try {
      const url = new URL(req.url ?? '/', 'http://journal');
      const method = req.method ?? 'GET';
      if (url.pathname === '/v1/health' && method === 'GET') {
        const certificate = this.config.tls === null ? null : certificateExpiry(this.config.tls.cert, Date.now());
        return this.send(res, 200, { node: this.config.nodeId, journals: this.journalNames(), ...(certificate === null ? {} : { certificate }) });
      }
      if (url.pathname === JOURNAL_API_PREFIX && method === 'GET') {
        return this.send(res, 200, { node: this.config.nodeId, journals: this.journalNames().map((n) => this.stateOf(this.journals.get(n)!)) });
      }
      if (!url.pathname.startsWith(`${JOURNAL_API_PREFIX}/`)) throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`);
      const parts = url.pathname.slice(JOURNAL_API_PREFIX.length + 1).split('/');
      if (parts.length > 2) throw new HttpError(404, `no such endpoint: ${method} ${url.pathname}`);
      let name: string;
      try { name = decodeURIComponent(parts[0]); } catch { throw new HttpError(400, 'the journal name is not valid percent-encoding'); }
      const problem = journalNameProblem(name);
      if (problem !== null) throw new HttpError(400, problem);
      const op = parts[1] ?? '';
      const query = Object.fromEntries(url.searchParams);
      if (method === 'GET') {
        if (op === '') return this.send(res, 200, this.stateOf(this.hosted(name)));
        if (op === 'manifest') return this.send(res, 200, await this.manifest(name));
        if (op === 'edits') {
          // Only a read may wait (long poll): it stops waiting when the reader goes away.
          const abort = new AbortController();
          res.on('close', () => abort.abort());
          return await this.sendEdits(res, name, parse(EditsQuery, query, 'query'), abort.signal);
        }
        if (op === 'segment-edits') return await this.sendSegmentEdits(res, name, parse(SegmentEditsQuery, query, 'query'));
        throw new HttpError(404, `no such endpoint: GET ${url.pathname}`);
      }
      if (method !== 'POST') throw new HttpError(405, `method ${method} is not allowed (GET or POST)`);
      if (op === 'journal') {
        const q = parse(JournalBatchQuery, query, 'query');
        const body = await readBody(req, JOURNAL_LIMITS.batch_bytes_max);
        const trace = receivedNs === 0n ? undefined : { turnNs: 0n, bodyNs: process.hrtime.bigint() };
        let records: Buffer[];
        try { records = decodeBatch(body); } catch (e) { throw new HttpError(e instanceof WireError ? 400 : 500, (e as Error).message); }
        const sum = checksumOfBody(body);
        if (sum !== q.checksum) throw new HttpError(400, `the batch's checksum is ${sum}, the request says ${q.checksum}: the body was damaged`);
        // Even a batch refused says how far a majority has got: what a lagging node is behind.
        this.journals.get(name)?.noteCommittedElsewhere(q.committed);
        await this.journalBatch(name, { epoch: q.epoch, segmentTxid: q.segment, firstTxid: q.first, committedTxid: q.committed, checksum: q.checksum, records, trace });
        this.metrics.batch(name, records.length, body.length);
        this.send(res, 200, {});
        if (trace !== undefined) {
          journalBatchChannel.publish({ node: this.config.nodeId, firstTxid: q.first, records: records.length, receivedNs, bodyNs: trace.bodyNs, turnNs: trace.turnNs, repliedNs: process.hrtime.bigint() } satisfies JournalBatchTrace);
        }
        return;
      }
      if (!(op in JournalBodies)) throw new HttpError(404, `no such endpoint: POST ${url.pathname}`);
      if (Object.keys(query).length > 0) throw new HttpError(400, `POST .../${op} takes no query parameters`);
      const raw = await readBody(req, JSON_BODY_BYTES_MAX);
      let json: unknown;
      try { json = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8')); } catch (e) { throw new HttpError(400, `the body is not JSON: ${(e as Error).message}`); }
      return this.send(res, 200, await this.post(name, op as JournalPostOp, json, req));
    } catch (e) {
      this.sendError(res, e);
    }
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = toJson(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendError(res: ServerResponse, e: unknown): void {
    let status = 500;
    let message = (e as Error).message;
    if (e instanceof HttpError || e instanceof JournalError) status = e.status;
    else if (e instanceof JournalNodeError) { status = 502; message = `fetching from a peer: ${message}`; }
    else if ((e as { code?: string }).code === 'ENOSPC') { status = 507; message = `disk full: ${message}`; }
    else this.logger.error({ err: message }, 'journal request failed');
    this.metrics.refused(e instanceof HttpError && e.reason !== undefined ? e.reason : refusalReasonOf(status, e));
    if (res.headersSent) { res.destroy(); return; }
    const text = toJson({ error: message, status });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(status === 413 ? { connection: 'close' } : {}) });
    res.end(text);
  }

  private hosted(name: string): HostedJournal {
    const j = this.journals.get(name);
    if (j === undefined) throw new HttpError(404, `journal ${name} is not formatted on journal node ${this.config.nodeId} (format it: quorate journal format --journal ${name})`, 'not_formatted');
    if (j.broken !== null) throw new HttpError(500, `journal ${name} on node ${this.config.nodeId} failed to reload from disk: ${j.broken.message}`, 'storage_failed');
    return j;
  }

  private stateOf(j: HostedJournal) {
    const s = j.state;
    return {
      journal: j.name, node: this.config.nodeId, promisedEpoch: s.promisedEpoch, lastWriterEpoch: s.lastWriterEpoch,
      committedTxid: s.committedTxid, firstTxid: s.firstTxid, lastSegment: s.lastSegment && segmentToJson(s.lastSegment),
    };
  }

  async manifest(name: string) {
    const j = this.hosted(name);
    return j.run(async () => ({ ...this.stateOf(j), segments: j.state.manifest().map(segmentToJson) }));
  }

  /** A journal operation: run in turn, its storage operations durable before the answer. */
  private async post(name: string, op: JournalPostOp, json: unknown, req: IncomingMessage): Promise<unknown> {
    if (op === 'format') {
      const force = parse(JournalBodies.format, json, 'body').force ?? false;
      if (force) this.checkOperator(req, 'format --force');
      return this.format(name, force);
    }
    if (op === 'purge') this.checkOperator(req, 'purge');
    const j = this.hosted(name);
    return j.run(async () => {
      const s = j.state;
      switch (op) {
        case 'new-epoch': {
          const b = parse(JournalBodies['new-epoch'], json, 'body');
          const r = await this.serve(j, { kind: 'newEpoch', epoch: b.epoch });
          this.logger.info({ journal: name, epoch: b.epoch }, 'promised a new epoch');
          return { lastSegmentTxid: r.lastSegmentTxid };
        }
        case 'start-segment': {
          const b = parse(JournalBodies['start-segment'], json, 'body');
          await this.kickOnLag(name, () => this.serve(j, { kind: 'startSegment', epoch: b.epoch, txid: b.txid }));
          this.logger.info({ journal: name, epoch: b.epoch, txid: String(b.txid) }, 'segment started');
          return {};
        }
        case 'finalize-segment': {
          const b = parse(JournalBodies['finalize-segment'], json, 'body');
          await this.serve(j, { kind: 'finalize', epoch: b.epoch, startTxid: b.start, endTxid: b.end });
          return {};
        }
        case 'prepare-recovery': {
          const b = parse(JournalBodies['prepare-recovery'], json, 'body');
          const { recovery } = await this.serve(j, { kind: 'prepareRecovery', epoch: b.epoch, segmentTxid: b.segment });
          return { ...recovery!, segment: recovery!.segment && segmentToJson(recovery!.segment) };
        }
        case 'accept-recovery': {
          const b = parse(JournalBodies['accept-recovery'], json, 'body');
          const segment = { startTxid: b.segment.start, endTxid: b.segment.end, inProgress: b.segment.inProgress, writerEpoch: b.segment.writerEpoch };
          await this.serve(j, { kind: 'acceptRecovery', epoch: b.epoch, segment, fromNode: b.fromNode });
          this.logger.info({ journal: name, epoch: b.epoch, segment: String(segment.startTxid), end: String(segment.endTxid) }, 'recovery accepted');
          return {};
        }
        case 'commit': {
          const b = parse(JournalBodies.commit, json, 'body');
          j.noteCommittedElsewhere(b.committed);
          await j.apply(s.commit(b.epoch, b.committed));
          return {};
        }
        case 'purge': {
          const b = parse(JournalBodies.purge, json, 'body');
          await j.apply(s.purge(b.epoch, b.before));
          return {};
        }
      }
      throw new HttpError(404, `no such operation: ${op}`);
    });
  }

  /** A refusal that says this node lags starts a catch-up at once instead of at the next tick. */
  private async kickOnLag<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof JournalError && e.status === 409) this.catchUp.kick(name);
      throw e;
    }
  }

  private async journalBatch(name: string, req: { epoch: number; segmentTxid: bigint; firstTxid: bigint; committedTxid: bigint; checksum: string; records: Buffer[]; trace?: { turnNs: bigint } }): Promise<void> {
    const j = this.hosted(name);
    await j.grouped(req, async (reqs) => {
      for (const r of reqs) if (r.trace !== undefined) r.trace.turnNs = process.hrtime.bigint();
      const results: (Error | null)[] = [];
      let ops: JournalStorageOp[] = [];
      let written: number[] = [];
      // What was checked so far becomes durable together; a failure fails those requests.
      const flush = async () => {
        if (ops.length === 0 && written.length === 0) return;
        try { await j.apply(ops); } catch (e) { for (const k of written) results[k] = e as Error; }
        ops = [];
        written = [];
      };
      for (const [k, r] of reqs.entries()) {
        try {
          // What the batch needs copied first goes after what was checked before it.
          const { ops: own, gap } = await this.kickOnLag(name, () => this.carryOut(j, serveBatch(j.state, r, [...this.peers.keys()]), flush));
          if (gap !== null) this.gapFilled(j.name, gap);
          ops.push(...own);
          results[k] = null;
          written.push(k);
        } catch (e) {
          results[k] = e as Error;
        }
      }
      await flush();
      return results;
    });
  }

  /** A writer's request, served by the rules every node (and the simulator's) serves it by. */
  private serve(j: HostedJournal, req: WriterRequest) {
    return this.carryOut(j, serveWriterRequest(j.state, req, [...this.peers.keys()]));
  }

  private gapFilled(name: string, gap: GapFill): void {
    for (const f of gap.failures) this.logger.debug({ journal: name, peer: f.peer, err: f.message }, 'gap fill from peer failed');
    if (gap.edits > 0) this.metrics.caughtUp(name, gap.edits);
    if (gap.from !== null) this.logger.info({ journal: name, from: gap.from, edits: gap.edits }, 'filled a gap before a batch from a peer');
  }

  /**
   * Carries out what a serving asks (journal-serve.ts): operations made durable in the journal's
   * turn (a failure ends it), edits fetched from a peer (a failure is thrown back in for the rules
   * to decide). `before` runs before each effect.
   */
  private async carryOut<T>(j: HostedJournal, serving: Serving<T>, before?: () => Promise<void>): Promise<T> {
    let input: { fetched?: Fetched; failed?: unknown } = {};
    for (;;) {
      const r = 'failed' in input ? serving.throw(input.failed) : serving.next(input.fetched);
      if (r.done) return r.value;
      await before?.();
      const e = r.value;
      if (e.kind === 'apply') { await j.apply(e.ops); input = {}; continue; }
      try { input = { fetched: await this.fetchFromPeer(j.name, e) }; } catch (err) { input = { failed: err }; }
    }
  }

  private async fetchFromPeer(name: string, e: Extract<ServeEffect, { kind: 'fetch' }>): Promise<Fetched> {
    const peer = this.peers.get(e.node);
    if (peer === undefined) throw new JournalError(409, `journal ${name}: cannot fetch from node ${e.node}: not a peer of node ${this.config.nodeId}`);
    return peer.segmentEdits(name, e.startTxid, e.fromTxid, e.toTxid, Math.min(e.max, READ_EDITS_MAX));
  }

  private async sendEdits(res: ServerResponse, name: string, q: z.output<typeof EditsQuery>, signal: AbortSignal): Promise<void> {
    const j = this.hosted(name);
    const max = Math.min(q.max ?? 1000, READ_EDITS_MAX);
    const first = j.state.firstTxid;
    if (first !== null && q.from < first) throw new HttpError(410, `journal ${name}: txid ${q.from} was purged on node ${this.config.nodeId} (it starts at ${first})`);
    const deadline = Date.now() + Math.min(q.wait ?? 0, READ_WAIT_MS_MAX);
    while (j.state.committedTxid < q.from && Date.now() < deadline && !signal.aborted && !this.stopping) {
      await j.waitForEdits(deadline - Date.now(), signal);
    }
    const committed = j.state.committedTxid;
    const to = q.from + BigInt(max) - 1n < committed ? q.from + BigInt(max) - 1n : committed;
    const edits = to >= q.from ? await j.run(() => this.collect(j, q.from, to)) : [];
    this.sendBatch(res, q.from, committed, null, edits);
  }

  private async sendSegmentEdits(res: ServerResponse, name: string, q: z.output<typeof SegmentEditsQuery>): Promise<void> {
    const j = this.hosted(name);
    const max = Math.min(q.max ?? 1000, READ_EDITS_MAX);
    const { seg, edits } = await j.run(async () => {
      const seg = j.state.segmentAt(q.start);
      if (seg === null) throw new HttpError(404, `journal ${name}: node ${this.config.nodeId} has no segment starting at ${q.start}`);
      let to = q.to < seg.endTxid ? q.to : seg.endTxid;
      if (q.from + BigInt(max) - 1n < to) to = q.from + BigInt(max) - 1n;
      return { seg, edits: q.from < seg.startTxid || to < q.from ? [] : await this.collect(j, q.from, to) };
    });
    this.sendBatch(res, q.from, j.state.committedTxid, seg.writerEpoch, edits);
  }

  private async collect(j: HostedJournal, from: bigint, to: bigint): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let bytes = 0;
    let expect = from;
    for await (const e of j.read(from, to)) {
      if (e.txid !== expect) break;
      bytes += e.payload.length + 4;
      if (bytes > READ_BYTES_MAX && out.length > 0) break;
      out.push(e.payload);
      expect++;
    }
    return out;
  }

  private sendBatch(res: ServerResponse, first: bigint, committed: bigint, writerEpoch: number | null, edits: Buffer[]): void {
    const body = encodeBatch(edits);
    res.writeHead(200, {
      'content-type': 'application/octet-stream', 'content-length': body.length,
      [EDITS_HEADERS.first]: String(first), [EDITS_HEADERS.committed]: String(committed),
      ...(writerEpoch === null ? {} : { [EDITS_HEADERS.writerEpoch]: String(writerEpoch) }),
    });
    res.end(body);
  }

  /**
   * Erasing calls need an operator: with TLS, a certificate whose common name journal.operators
   * lists. Without TLS the node listens on loopback only (or was told insecure), and any caller is
   * trusted, as the configuration accepted.
   */
  private checkOperator(req: IncomingMessage, what: string): void {
    if (this.config.tls === null) return;
    const cn = (req.socket as TLSSocket).getPeerCertificate?.()?.subject?.CN;
    const name = Array.isArray(cn) ? cn.join(',') : cn;
    if (name === undefined || !this.config.operators.includes(name)) {
      throw new HttpError(403, `${what} needs an operator certificate (journal.operators: ${this.config.operators.join(', ') || 'none listed'}); this caller is CN=${name ?? '(none)'}`);
    }
  }

  /** Format: an empty journal here; refused over existing data unless forced. */
  private async format(name: string, force: boolean): Promise<unknown> {
    const prev = this.formatting.get(name) ?? Promise.resolve();
    const run = prev.then(async () => {
      const dir = join(this.config.dataDir, name);
      const existing = this.journals.get(name);
      const doIt = async () => {
        if (!force && (await journalDirHasData(dir))) {
          const s = existing?.state;
          throw new HttpError(409, `journal ${name} on node ${this.config.nodeId} holds data${s ? ` (promised epoch ${s.promisedEpoch}, committed txid ${s.committedTxid})` : ''}; format --force erases it`);
        }
        if (existing !== undefined) { this.journals.delete(name); await existing.retireInTurn(); }
        try {
          await formatJournalDir(dir, { format: 1, cluster: this.config.clusterId, journal: name, node: this.config.nodeId, formattedAt: new Date().toISOString() }, force);
        } finally {
          // Formatted or not, what is on disk is served again (a failed format must not leave a 404 until restart).
          if (existing !== undefined || (await readJournalMeta(dir).catch(() => null)) !== null) this.journals.set(name, await this.openJournal(name, dir));
        }
        this.logger.warn({ journal: name, force }, 'journal formatted');
      };
      if (existing !== undefined) await existing.run(doIt); else await doIt();
    });
    this.formatting.set(name, run.catch(() => undefined));
    await run;
    return {};
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, `bad ${what}: ${describeZodError(r.error)}`);
  return r.data;
}

/**
 * The request's body, refused with 413 past `limit` bytes. A body up to 4x the limit is read to
 * its end and dropped first, so that the client (still sending) gets the 413 rather than a broken
 * pipe; past that the answer goes out and the connection is closed.
 */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const drainMax = 4 * limit;
  if (declared > drainMax) throw new HttpError(413, `a body of ${declared} bytes (at most ${limit})`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > drainMax) throw new HttpError(413, `a body of more than ${limit} bytes`);
    if (size <= limit) chunks.push(c as Buffer);
  }
  if (size > limit) throw new HttpError(413, `a body of ${size} bytes (at most ${limit})`);
  return Buffer.concat(chunks);
}
