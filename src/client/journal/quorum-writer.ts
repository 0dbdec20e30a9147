// The writer of a journal quorum, as a managed service's active instance uses
// it: open() takes a new epoch on a majority of journal nodes (fencing every
// earlier writer), recovers the segment the last writer left open, and
// starts a new one; append() resolves once a majority has the batch durable
// and pipelines batches; a majority of refusals or timeouts fences the
// writer (every pending and later call fails with JournalFencedError; it
// never retries into a split brain). The protocol is the pure JournalWriter;
// this carries its requests over HTTP.
import { JournalWriter, type WriterAnswer, type WriterEffect, type WriterRequest } from '../../core/journal/journal-writer.js';
import { checksumOfBody, encodeBatch } from '../../proto/journal-wire.js';
import { formatIfNew, JournalFencedError } from './journal-epoch.js';
import { JournalNodeClient, JournalNodeError, type JournalNodeAddress, type JournalTls } from './node-client.js';
import { pipelinedTransport } from './pipelined-transport.js';

export { JournalFencedError };

export interface JournalClientOptions {
  nodes: readonly JournalNodeAddress[];
  /** Per request to one node (undici's defaults are minutes). Default 2000 ms. */
  timeoutMs?: number;
  /** Batches in flight per node connection. Default 16. */
  pipelining?: number;
  /** How long after an acknowledgment, with no batch to carry it, the committed txid is sent on its own (readers wait for it). Default 20 ms. */
  commitDelayMs?: number;
  /** Format the journal on every node when no node has it (a new service); never over data. */
  formatIfNew?: boolean;
  /** Mutual TLS, when the journal nodes serve HTTPS. */
  tls?: JournalTls | null;
}

export const JOURNAL_CLIENT_DEFAULTS = { timeout_ms: 2000, pipelining: 16, commit_delay_ms: 20 } as const;

interface Waiter<T> { resolve: (v: T) => void; reject: (e: Error) => void }

export class QuorumJournalWriter {
  private readonly core: JournalWriter;
  private readonly clients = new Map<number, JournalNodeClient>();
  private readonly batches = new Map<number, Waiter<{ firstTxid: bigint; lastTxid: bigint }>>();
  private opening: Waiter<void> | null = null;
  private closing: Waiter<void> | null = null;
  private fencedReason: string | null = null;
  private commitTimer: NodeJS.Timeout | null = null;
  private lastCommitSent = 0n;
  /** Per node: the last txid it acknowledged, and the committed txid it was last told (a batch or a notice carried it). */
  private readonly nodeWritten = new Map<number, bigint>();
  private readonly nodeToldCommitted = new Map<number, bigint>();
  private readonly commitDelayMs: number;
  /** A batch's body, encoded once for its checksum and every node (the core sends the same records array to each). */
  private readonly bodies = new WeakMap<readonly Uint8Array[], Buffer>();

  private constructor(readonly journal: string, opts: JournalClientOptions) {
    if (opts.nodes.length === 0) throw new Error('journal writer: no journal nodes');
    for (const n of opts.nodes) this.clients.set(n.id, new JournalNodeClient(n, opts.timeoutMs ?? JOURNAL_CLIENT_DEFAULTS.timeout_ms, { transport: pipelinedTransport(opts.pipelining ?? JOURNAL_CLIENT_DEFAULTS.pipelining), tls: opts.tls ?? null }));
    this.core = new JournalWriter(opts.nodes.map((n) => n.id), (records) => checksumOfBody(this.encoded(records)));
    this.commitDelayMs = opts.commitDelayMs ?? JOURNAL_CLIENT_DEFAULTS.commit_delay_ms;
  }

  /** Opens `journal` for writing in a new epoch. Rejects with JournalFencedError when a majority refused or did not answer. */
  static async open(journal: string, opts: JournalClientOptions): Promise<QuorumJournalWriter> {
    const w = new QuorumJournalWriter(journal, opts);
    try {
      if (opts.formatIfNew) await w.formatIfNew();
      await new Promise<void>((resolve, reject) => {
        w.opening = { resolve, reject };
        w.core.open();
        w.pump();
      });
    } catch (e) {
      await w.shutdown();
      throw e;
    }
    return w;
  }

  get epoch(): number { return this.core.epoch; }
  get fenced(): boolean { return this.fencedReason !== null; }
  /** The highest txid a majority has acknowledged. */
  get committedTxid(): bigint { return this.core.committedTxid; }
  /** The first txid of the segment this writer started: after open(), every txid before it is recovered and committed. */
  get segmentStartTxid(): bigint { return this.core.segmentStartTxid; }

  /** Writes a batch; resolves with its txids once a majority has it durable. */
  append(records: Uint8Array[]): Promise<{ firstTxid: bigint; lastTxid: bigint }> {
    if (this.fencedReason !== null) return Promise.reject(new JournalFencedError(`journal ${this.journal}: fenced: ${this.fencedReason}`));
    if (this.core.phase !== 'open') return Promise.reject(new Error(`journal ${this.journal}: append while the writer is ${this.core.phase}`));
    this.cancelCommitNotice();
    const batch = this.core.append(records);
    const p = new Promise<{ firstTxid: bigint; lastTxid: bigint }>((resolve, reject) => this.batches.set(batch, { resolve, reject }));
    this.pump();
    return p;
  }

  /** Finalizes the current segment once every batch is acknowledged, and starts the next. */
  async roll(): Promise<void> {
    await this.settle();
    await new Promise<void>((resolve, reject) => {
      this.opening = { resolve, reject };
      this.core.roll();
      this.pump();
    });
  }

  /** Waits for every batch, finalizes the segment, and lets go of the nodes. */
  async close(): Promise<void> {
    try {
      if (this.fencedReason === null && this.core.phase === 'open') {
        await this.settle();
        await new Promise<void>((resolve, reject) => {
          this.closing = { resolve, reject };
          this.core.close();
          this.pump();
        });
      }
    } finally {
      await this.shutdown();
    }
  }

  private async settle(): Promise<void> {
    await Promise.allSettled([...this.batches.keys()].map((b) => new Promise<void>((r) => {
      const w = this.batches.get(b)!;
      this.batches.set(b, { resolve: (v) => { w.resolve(v); r(); }, reject: (e) => { w.reject(e); r(); } });
    })));
    if (this.fencedReason !== null) throw new JournalFencedError(`journal ${this.journal}: fenced: ${this.fencedReason}`);
  }

  private async shutdown(): Promise<void> {
    this.cancelCommitNotice();
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }

  private encoded(records: readonly Uint8Array[]): Buffer {
    let body = this.bodies.get(records);
    if (body === undefined) { body = encodeBatch(records); this.bodies.set(records, body); }
    return body;
  }

  private async formatIfNew(): Promise<void> {
    await formatIfNew(this.journal, [...this.clients.values()]);
  }

  private pump(): void {
    for (const e of this.core.drain()) this.onEffect(e);
  }

  private onEffect(e: WriterEffect): void {
    switch (e.kind) {
      case 'send': void this.send(e.node, e.id, e.req); return;
      case 'opened': { const o = this.opening; this.opening = null; o?.resolve(); return; }
      case 'closed': { const c = this.closing; this.closing = null; c?.resolve(); return; }
      case 'acked': {
        const w = this.batches.get(e.batch);
        this.batches.delete(e.batch);
        w?.resolve({ firstTxid: e.firstTxid, lastTxid: e.lastTxid });
        if (this.core.inFlight === 0) this.scheduleCommitNotice();
        return;
      }
      case 'fenced': {
        this.fencedReason = e.reason;
        const err = new JournalFencedError(`journal ${this.journal}: fenced: ${e.reason}`);
        for (const w of this.batches.values()) w.reject(err);
        this.batches.clear();
        this.opening?.reject(err);
        this.closing?.reject(err);
        this.opening = this.closing = null;
        this.cancelCommitNotice();
        return;
      }
    }
  }

  private async send(node: number, id: number, req: WriterRequest): Promise<void> {
    const c = this.clients.get(node)!;
    const j = this.journal;
    let answer: WriterAnswer;
    try {
      switch (req.kind) {
        case 'getState': answer = { ok: true, promisedEpoch: (await c.state(j)).promisedEpoch }; break;
        case 'newEpoch': answer = { ok: true, lastSegmentTxid: await c.newEpoch(j, req.epoch) }; break;
        case 'prepareRecovery': answer = { ok: true, recovery: await c.prepareRecovery(j, req.epoch, req.segmentTxid) }; break;
        case 'acceptRecovery': await c.acceptRecovery(j, req.epoch, req.segment, req.fromNode); answer = { ok: true }; break;
        case 'finalize': await c.post(j, 'finalize-segment', { epoch: req.epoch, start: req.startTxid, end: req.endTxid }); answer = { ok: true }; break;
        case 'startSegment': await c.post(j, 'start-segment', { epoch: req.epoch, txid: req.txid }); answer = { ok: true }; break;
        case 'journal':
          await c.journal(j, { epoch: req.epoch, segment: req.segmentTxid, first: req.firstTxid, committed: req.committedTxid, checksum: req.checksum }, this.encoded(req.records));
          answer = { ok: true };
          this.nodeAcknowledged(node, req.firstTxid + BigInt(req.records.length) - 1n, req.committedTxid);
          break;
      }
    } catch (e) {
      answer = { ok: false, status: e instanceof JournalNodeError ? e.status : 0, message: (e as Error).message };
    }
    this.core.onAnswer(id, answer);
    this.pump();
  }

  /**
   * A node that answers a batch after the committed-txid notice went out (it was the slow one of
   * the three) was told nothing it could take then: a node takes no committed txid beyond what it
   * holds. It is told now, or its committed txid would stay behind until the next write.
   */
  private nodeAcknowledged(node: number, lastTxid: bigint, carried: bigint): void {
    if (lastTxid > (this.nodeWritten.get(node) ?? 0n)) this.nodeWritten.set(node, lastTxid);
    if (carried > (this.nodeToldCommitted.get(node) ?? 0n)) this.nodeToldCommitted.set(node, carried);
    if (this.commitTimer === null && this.lastCommitSent > 0n) this.sendCommitNotice(node, this.lastCommitSent);
  }

  /** Tells `node` the committed txid, as far as it holds edits; once per new value. */
  private sendCommitNotice(node: number, committed: bigint): void {
    if (this.fencedReason !== null) return;
    const written = this.nodeWritten.get(node) ?? 0n;
    const upTo = committed < written ? committed : written;
    if (upTo <= (this.nodeToldCommitted.get(node) ?? 0n)) return;
    this.nodeToldCommitted.set(node, upTo);
    this.clients.get(node)!.post(this.journal, 'commit', { epoch: this.core.epoch, committed: upTo }).catch(() => undefined);
  }

  /** With no batch to carry it, the committed txid goes to the nodes on its own a little later. */
  private scheduleCommitNotice(): void {
    if (this.commitTimer !== null || this.core.committedTxid <= this.lastCommitSent) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null;
      if (this.fencedReason !== null || this.core.inFlight > 0) return;
      const committed = this.core.committedTxid;
      this.lastCommitSent = committed;
      for (const node of this.clients.keys()) this.sendCommitNotice(node, committed);
    }, this.commitDelayMs);
    this.commitTimer.unref();
  }

  private cancelCommitNotice(): void {
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
  }
}
