// One journal on this node: its JournalState, its files, and the queue that
// serializes its operations (a check and its fsync never interleave with
// another request's). Readers waiting for new committed edits wait here. A
// storage failure reloads the journal from disk (the state in memory may be
// ahead of what was written); if that fails too, the journal answers 500.
import { JournalError, JournalState, type JournalStorageOp } from '../core/journal/journal-state.js';
import { JournalStore, type SyncObserver } from '../io/journal-store.js';
import type { Logger } from '../io/log.js';

export class HostedJournal {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private waiting: { req: unknown; resolve: () => void; reject: (e: Error) => void }[] = [];
  broken: Error | null = null;
  /** Formatted away: requests still queued behind the format are refused, not run on a closed store. */
  private retired = false;

  /**
   * The highest committed txid a writer or a peer told this node about: edits a majority holds,
   * never cut by any recovery. This node lags while it holds less.
   */
  knownCommittedTxid = 0n;

  private constructor(readonly name: string, readonly dir: string, public state: JournalState, private store: JournalStore, private readonly logger: Logger, private readonly onSynced: SyncObserver | null) {}

  static async open(name: string, dir: string, logger: Logger, onSynced: SyncObserver | null = null): Promise<HostedJournal> {
    const { store, disk } = await JournalStore.open(dir, logger, onSynced);
    return new HostedJournal(name, dir, new JournalState(name, disk), store, logger, onSynced);
  }

  /** A writer or a peer says a majority holds the edits up to `txid`. */
  noteCommittedElsewhere(txid: bigint | undefined): void {
    if (txid !== undefined && txid > this.knownCommittedTxid) this.knownCommittedTxid = txid;
  }

  /** How far this node has got: its last edit, or the committed txid when its segments were all purged. */
  get lastTxid(): bigint {
    const end = this.state.lastSegment?.endTxid ?? 0n;
    return end > this.state.committedTxid ? end : this.state.committedTxid;
  }

  /** Runs `fn` after every operation queued before it has finished. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const turn = () => (this.retired ? Promise.reject(new JournalError(409, `journal ${this.name} was formatted while this request waited; try again`)) : fn());
    const next = this.queue.then(turn, turn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Requests that arrive while the journal is busy are taken together in one turn (pipelined
   * batches: one write and one fsync for all). `turn` answers each request: null or its error.
   */
  grouped<R>(req: R, turn: (reqs: R[]) => Promise<(Error | null)[]>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      if (this.waiting.length > 1) return;
      // After this loop turn's I/O: every request parsed from the same read has its body by then.
      setImmediate(() => void this.run(async () => {
        const items = this.waiting.splice(0) as { req: R; resolve: () => void; reject: (e: Error) => void }[];
        let results: (Error | null)[];
        try { results = await turn(items.map((i) => i.req)); } catch (e) { results = items.map(() => e as Error); }
        items.forEach((it, k) => { const r = results[k]; if (r) it.reject(r); else it.resolve(); });
      }));
    });
  }

  /** Makes a request's storage operations durable; wakes readers when the committed txid moved. */
  async apply(ops: readonly JournalStorageOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.store.apply(ops);
    } catch (err) {
      this.logger.error({ journal: this.name, err: (err as Error).message }, 'journal storage failed; reloading the journal from disk');
      await this.reload();
      throw err;
    }
    if (ops.some((o) => o.kind === 'committed' || o.kind === 'append')) this.wake();
  }

  private async reload(): Promise<void> {
    await this.store.close().catch(() => undefined);
    try {
      const { store, disk } = await JournalStore.open(this.dir, this.logger, this.onSynced);
      this.store = store;
      this.state = new JournalState(this.name, disk);
      this.broken = null;
    } catch (err) {
      this.broken = err as Error;
      this.logger.error({ journal: this.name, err: (err as Error).message }, 'journal cannot be reloaded from disk; it refuses requests');
    }
  }

  read(from: bigint, to: bigint): AsyncGenerator<{ txid: bigint; payload: Buffer }> {
    return this.store.read(from, to);
  }

  /** Resolves when the committed txid may have moved, or after `ms`. */
  waitForEdits(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.waiters.delete(done); signal.removeEventListener('abort', done); resolve(); };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  async close(): Promise<void> {
    this.wake();
    await this.run(() => this.store.close());
  }

  /** From inside one of this journal's turns (a close would wait behind that turn for ever): closed for good. */
  async retireInTurn(): Promise<void> {
    this.retired = true;
    this.wake();
    await this.store.close();
  }
}
