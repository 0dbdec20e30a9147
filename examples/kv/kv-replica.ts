// One instance of the replicated key-value store, as HDFS HA runs a NameNode
// over the Quorum Journal Manager: the standby tails the journal and applies
// every committed edit; promotion opens the journal as writer (a new epoch,
// which fences every earlier writer, and recovery of the segment it left),
// then applies every edit up to the recovered end before it takes a write;
// the active answers a write once the edit is durable on a journal majority,
// and a read once a write sent after the read arrived was accepted by a
// majority (so a deposed active that has not noticed cannot answer a stale
// read); a fenced write demotes it at once.
import { JournalFencedError, QuorumJournalWriter } from '../../src/client/journal/quorum-writer.js';
import { tailJournal } from '../../src/client/journal/tail.js';
import { JournalNodeClient, type JournalNodeAddress, type JournalTls } from '../../src/client/journal/node-client.js';
import { encodeEdit, KvState, type KvEdit } from './kv-state.js';
import { loadSnapshot, saveSnapshot } from './kv-snapshot.js';

/** A write or read this instance may not answer: `activeUrl` is where the active is, when known. */
export class NotActiveError extends Error {
  constructor(message: string, readonly activeUrl: string | null) { super(message); }
}

export interface KvReplicaOptions {
  instance: string;
  /** This instance's service API, as clients reach it (written into the journal when it becomes active). */
  url: string;
  journal: string;
  nodes: readonly JournalNodeAddress[];
  tls: JournalTls | null;
  /** Where the snapshot lives; null: memory only (a restart reads the journal from txid 1). */
  dataDir: string | null;
  /** A snapshot after this many applied edits. */
  snapshotEvery: number;
  /** How long a promotion may take to read the edits up to the recovered end. */
  catchUpTimeoutMs: number;
  log: (msg: string) => void;
}

type Role = 'standby' | 'promoting' | 'active';

/** The journal nodes are probed this often; unreachable (unhealthy) after this long without a majority. */
const JOURNAL_PROBE_EVERY_MS = 1000;
const JOURNAL_UNREACHABLE_MS = 3000;
type EditBody = { op: 'put'; key: string; value: string } | { op: 'del'; key: string } | { op: 'tick' };

export class KvReplica {
  readonly state: KvState;
  role: Role = 'standby';
  /** Edits this instance wrote that a majority acknowledged. */
  written = 0;
  /** Why it last stopped being active. */
  lastStepDown: string | null = null;
  private writer: QuorumJournalWriter | null = null;
  private seq = 0;
  /** Bumped by every promotion and demotion: a promotion that finds it changed was overtaken. */
  private generation = 0;
  private committedSeen = 0n;
  private tail: AbortController | null = null;
  /** Acknowledged own edits waiting for their turn to be applied (acknowledgments may arrive out of order). */
  private readonly acked = new Map<bigint, KvEdit>();
  private readonly appliedWaiters: { txid: bigint; resolve: () => void; reject: (e: Error) => void }[] = [];
  private barrierInFlight: Promise<void> | null = null;
  private barrierNext: Promise<void> | null = null;
  private lastSnapshotTxid: bigint;
  private snapshotting = false;
  private stopped = false;
  /** When a majority of journal nodes last answered a probe, and how many answered the last one. */
  private majorityAt = Date.now();
  private lastProbe = '';
  private probeTimer: NodeJS.Timeout | null = null;
  /** One client per node for the probes, kept (a probe a second must not open new connections each time). */
  private readonly probes: JournalNodeClient[];

  constructor(private readonly o: KvReplicaOptions) {
    this.state = o.dataDir === null ? new KvState() : loadSnapshot(o.dataDir);
    this.lastSnapshotTxid = this.state.appliedTxid;
    this.probes = o.nodes.map((n) => new JournalNodeClient(n, JOURNAL_PROBE_EVERY_MS, { tls: o.tls }));
  }

  start(): void {
    if (this.state.appliedTxid > 0n) this.o.log(`loaded the snapshot at txid ${this.state.appliedTxid} (${this.state.data.size} keys)`);
    this.startTail();
    this.probeJournal();
  }

  /**
   * Why this instance could not serve as active now, or null: a majority of journal nodes has not
   * answered for a while (a standby cut off from the journal must not race, only to fail its promotion).
   */
  journalProblem(now = Date.now()): string | null {
    return now - this.majorityAt > JOURNAL_UNREACHABLE_MS ? `no majority of the journal nodes answered for ${now - this.majorityAt} ms (last probe: ${this.lastProbe})` : null;
  }

  private probeJournal(): void {
    if (this.stopped) return;
    void Promise.allSettled(this.probes.map((c) => c.state(this.o.journal))).then((answers) => {
      // A node that has not formatted the journal yet answers 404: it is reachable.
      const up = answers.filter((a) => a.status === 'fulfilled' || (a.reason as { status?: number }).status === 404).length;
      this.lastProbe = `${up} of ${answers.length} answered`;
      if (up > this.o.nodes.length / 2) this.majorityAt = Date.now();
    }).finally(() => {
      if (!this.stopped) { this.probeTimer = setTimeout(() => this.probeJournal(), JOURNAL_PROBE_EVERY_MS); this.probeTimer.unref(); }
    });
  }

  get epoch(): number | null { return this.writer?.epoch ?? null; }
  /** Committed edits not applied here yet (0 on the active). */
  get lag(): number {
    if (this.role === 'active') return 0;
    const d = this.committedSeen - this.state.appliedTxid;
    return d > 0n ? Number(d) : 0;
  }
  /** Where to send a client this instance cannot serve: the active the journal last named, unless that is us. */
  get activeUrl(): string | null {
    return this.state.activeUrl === this.o.url ? null : this.state.activeUrl;
  }

  // ---- the standby ---------------------------------------------------------

  private startTail(): void {
    if (this.stopped) return;
    const ac = new AbortController();
    this.tail = ac;
    void (async () => {
      try {
        const from = this.state.appliedTxid + 1n;
        for await (const e of tailJournal(this.o.journal, from, { nodes: this.o.nodes, tls: this.o.tls, waitMs: 1000, signal: ac.signal, onCommitted: (c) => this.sawCommitted(c) })) {
          // A promotion stopped this tail: nothing it still yields may be applied.
          if (ac.signal.aborted) return;
          if (e.txid <= this.state.appliedTxid) continue;
          this.applyNext(e.txid, e.payload);
        }
      } catch (err) {
        if (ac.signal.aborted) return;
        this.o.log(`tailing the journal failed: ${(err as Error).message}; again in 1 s`);
        setTimeout(() => { if (this.tail === ac) this.startTail(); }, 1000).unref();
      }
    })();
  }

  private stopTail(): void {
    this.tail?.abort();
    this.tail = null;
  }

  private sawCommitted(c: bigint): void {
    if (c > this.committedSeen) this.committedSeen = c;
  }

  private applyNext(txid: bigint, edit: Buffer | KvEdit): void {
    this.state.apply(txid, edit);
    this.sawCommitted(txid);
    while (this.appliedWaiters.length > 0 && this.appliedWaiters[0].txid <= txid) this.appliedWaiters.shift()!.resolve();
    this.maybeSnapshot();
  }

  // ---- promotion and demotion ------------------------------------------------

  /** Becomes the writer: fences every other, reads every edit up to the recovered end, then takes writes. */
  async promote(): Promise<void> {
    if (this.role === 'active' && this.writer !== null && !this.writer.fenced) return;
    if (this.role !== 'standby') await this.demote('promoted again');
    const gen = ++this.generation;
    this.role = 'promoting';
    this.stopTail();
    const overtaken = () => gen !== this.generation;
    let w: QuorumJournalWriter | null = null;
    try {
      // A journal this replica has read edits from is formatted: asking every node again (the
      // slowest included) would only hold up the promotion.
      w = await QuorumJournalWriter.open(this.o.journal, { nodes: this.o.nodes, formatIfNew: this.state.appliedTxid === 0n, timeoutMs: 1000, tls: this.o.tls });
      if (overtaken()) throw new Error('demoted during promotion');
      const end = w.segmentStartTxid - 1n;
      if (end < this.state.appliedTxid) throw new Error(`this instance has applied txid ${this.state.appliedTxid}, past the journal's end ${end}: its snapshot is not from this journal`);
      this.seq = 0;
      // The first write carries the recovered end to the nodes as committed, so they serve it to the catch-up below.
      const marker: KvEdit = { op: 'active', instance: this.o.instance, epoch: w.epoch, seq: this.seq++, url: this.o.url };
      const { firstTxid } = await w.append([encodeEdit(marker)]);
      await this.catchUp(end, overtaken);
      if (overtaken()) throw new Error('demoted during promotion');
      this.applyNext(firstTxid, marker);
      this.writer = w;
      this.role = 'active';
      this.written++;
      this.o.log(`active (epoch ${w.epoch}): applied every edit up to ${end}, writing from ${firstTxid + 1n}`);
    } catch (e) {
      await w?.close().catch(() => undefined);
      if (!overtaken()) {
        this.role = 'standby';
        this.startTail();
      }
      throw e;
    }
  }

  /** Reads committed edits until `end` is applied (bounded by catchUpTimeoutMs). */
  private async catchUp(end: bigint, overtaken: () => boolean): Promise<void> {
    if (this.state.appliedTxid >= end) return;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.o.catchUpTimeoutMs);
    try {
      for await (const e of tailJournal(this.o.journal, this.state.appliedTxid + 1n, { nodes: this.o.nodes, tls: this.o.tls, waitMs: 100, signal: ac.signal })) {
        if (overtaken()) return;
        if (e.txid > this.state.appliedTxid) this.applyNext(e.txid, e.payload);
        if (this.state.appliedTxid >= end) return;
      }
    } finally { clearTimeout(timer); }
    if (this.state.appliedTxid < end) throw new Error(`read the journal to txid ${this.state.appliedTxid} of ${end} within ${this.o.catchUpTimeoutMs} ms`);
  }

  /** Stops writes at once; the journal (tailed again) is the state from here on. */
  async demote(why: string): Promise<void> {
    if (this.role === 'standby') return;
    this.generation++;
    this.role = 'standby';
    const w = this.writer;
    this.writer = null;
    this.acked.clear();
    for (const waiter of this.appliedWaiters.splice(0)) waiter.reject(new NotActiveError(`no longer active: ${why}`, null));
    this.lastStepDown = why;
    this.o.log(`standby: ${why}`);
    this.startTail();
    await w?.close().catch(() => undefined);
  }

  // ---- the active ------------------------------------------------------------

  /** Appends one edit; resolves once a journal majority has it (the edit is then acknowledged). */
  async write(body: EditBody): Promise<{ txid: bigint; epoch: number }> {
    const w = this.writer;
    if (this.role !== 'active' || w === null) throw new NotActiveError(`instance ${this.o.instance} is ${this.role}`, this.activeUrl);
    const edit = { ...body, instance: this.o.instance, epoch: w.epoch, seq: this.seq++ } as KvEdit;
    let txid: bigint;
    try {
      txid = (await w.append([encodeEdit(edit)])).firstTxid;
    } catch (e) {
      if (e instanceof JournalFencedError && this.writer === w) void this.demote(`fenced by the journal: ${e.message}`);
      throw new NotActiveError(`not acknowledged: ${(e as Error).message}`, null);
    }
    this.written++;
    if (this.writer === w) {
      this.acked.set(txid, edit);
      for (let next = this.state.appliedTxid + 1n; this.acked.has(next); next++) {
        const e = this.acked.get(next)!;
        this.acked.delete(next);
        this.applyNext(next, e);
      }
    }
    return { txid, epoch: w.epoch };
  }

  /**
   * Before a read on the active: a write sent after the read arrived must be accepted by a journal
   * majority (none would, had a newer epoch been taken) and applied here. Reads share writes.
   */
  async readBarrier(): Promise<void> {
    if (this.role !== 'active') throw new NotActiveError(`instance ${this.o.instance} is ${this.role}`, this.activeUrl);
    if (this.barrierInFlight === null) return this.runBarrier();
    // The one in flight may have been sent before this read arrived: wait for the next.
    if (this.barrierNext === null) {
      this.barrierNext = this.barrierInFlight.catch(() => undefined).then(() => { this.barrierNext = null; return this.runBarrier(); });
    }
    return this.barrierNext;
  }

  private runBarrier(): Promise<void> {
    const p = (async () => {
      const { txid } = await this.write({ op: 'tick' });
      if (this.state.appliedTxid >= txid) return;
      await new Promise<void>((resolve, reject) => this.appliedWaiters.push({ txid, resolve, reject }));
    })();
    this.barrierInFlight = p;
    void p.catch(() => undefined).finally(() => { if (this.barrierInFlight === p) this.barrierInFlight = null; });
    return p;
  }

  // ---- snapshots and stopping ---------------------------------------------------

  private maybeSnapshot(force = false): Promise<void> | undefined {
    const dir = this.o.dataDir;
    if (dir === null || this.snapshotting || this.state.appliedTxid === this.lastSnapshotTxid) return undefined;
    if (!force && this.state.appliedTxid - this.lastSnapshotTxid < BigInt(this.o.snapshotEvery)) return undefined;
    this.snapshotting = true;
    const snap = this.state.snapshot();
    return saveSnapshot(dir, snap).then(
      () => { this.lastSnapshotTxid = BigInt(snap.appliedTxid); },
      (e: Error) => this.o.log(`snapshot at txid ${snap.appliedTxid} failed: ${e.message}`),
    ).finally(() => { this.snapshotting = false; });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    await Promise.all(this.probes.map((c) => c.close()));
    this.stopTail();
    await this.demote('stopping');
    await this.maybeSnapshot(true);
  }
}
