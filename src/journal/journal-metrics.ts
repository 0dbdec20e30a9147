// A journal node's Prometheus metrics, in a registry of its own (never the
// process-wide default, so two nodes in one test process do not mix): each
// journal's epochs, committed txid and lag read from its state when scraped;
// fsync times, batch sizes, refusals and catch-up steps counted as they
// happen. Label values come from fixed sets or from the journals formatted
// on this node, never from a request's free text.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';
import { JournalError } from '../core/journal/journal-state.js';
import { JOURNAL_LIMITS } from '../proto/journal-wire.js';

/**
 * Why a journal request was not answered 200. 400 bad_request; 403 fenced (an epoch below the
 * promise) or not_operator; 404 not_formatted or no_endpoint (405 too); 409 conflict (out of
 * order, a gap, this node lags, recovery); 410 purged; 413 too_large; 500 storage_failed (the
 * journal could not be reloaded from disk) or internal; 502 peer_failed; 507 disk_full.
 */
export const JOURNAL_REFUSAL_REASONS = [
  'bad_request', 'fenced', 'not_operator', 'not_formatted', 'no_endpoint', 'conflict', 'purged', 'too_large',
  'storage_failed', 'internal', 'peer_failed', 'disk_full',
] as const;
export type JournalRefusalReason = (typeof JOURNAL_REFUSAL_REASONS)[number];

/** The reason for an answer's status when the error does not say it itself. */
export function refusalReasonOf(status: number, e: unknown): JournalRefusalReason {
  if (e instanceof JournalError) return e.status === 403 ? 'fenced' : e.status === 409 ? 'conflict' : 'bad_request';
  switch (status) {
    case 400: return 'bad_request';
    case 403: return 'not_operator';
    case 404: case 405: return 'no_endpoint';
    case 409: return 'conflict';
    case 410: return 'purged';
    case 413: return 'too_large';
    case 502: return 'peer_failed';
    case 507: return 'disk_full';
    default: return 'internal';
  }
}

/** What the gauges read at scrape time: one entry per journal hosted here. */
export interface JournalGaugeSource {
  journals(): {
    name: string; promisedEpoch: number; writerEpoch: number; committedTxid: bigint;
    /** The last txid this node holds (or has seen committed, when its segments were purged). */
    lastTxid: bigint;
    /** The highest committed txid a writer or a peer told this node about. */
    knownCommittedTxid: bigint;
  }[];
}

const FSYNC_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const BATCH_RECORDS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];
/** 256 bytes up to the largest batch a writer may send. */
const BATCH_BYTES_BUCKETS = exponentialBuckets(256, 4, Math.ceil(Math.log(JOURNAL_LIMITS.batch_bytes_max / 256) / Math.log(4)) + 1);

/** Beyond 2^53 a txid loses precision as a float sample: Prometheus stores nothing finer anyway. */
const num = (n: bigint) => Number(n);

export class JournalMetrics {
  readonly registry = new Registry();
  private readonly fsync: Histogram<'journal'>;
  private readonly batchRecords: Histogram<'journal'>;
  private readonly batchBytes: Histogram<'journal'>;
  private readonly refusals: Counter<'reason'>;
  private readonly catchUpSteps: Counter<'journal'>;
  private readonly catchUpEdits: Counter<'journal'>;

  constructor(source: JournalGaugeSource, nodeId: number) {
    const r = [this.registry];
    this.registry.setDefaultLabels({ node: String(nodeId) });
    collectDefaultMetrics({ register: this.registry });
    const perJournal = (name: string, help: string, pick: (j: ReturnType<JournalGaugeSource['journals']>[number]) => number) =>
      new Gauge({
        name, help, labelNames: ['journal'], registers: r,
        collect() {
          this.reset();
          for (const j of source.journals()) this.set({ journal: j.name }, pick(j));
        },
      });
    perJournal('quorate_journal_promised_epoch', 'The highest epoch this node promised a writer: requests below it are fenced.', (j) => j.promisedEpoch);
    perJournal('quorate_journal_writer_epoch', 'The epoch of the writer allowed to write here.', (j) => j.writerEpoch);
    perJournal('quorate_journal_committed_txid', 'The committed txid as this node knows it (readers stop there).', (j) => num(j.committedTxid));
    perJournal('quorate_journal_last_txid', 'The last txid this node holds.', (j) => num(j.lastTxid));
    perJournal('quorate_journal_lag_txids', 'Txids this node lacks below the highest committed txid a writer or a peer told it about (0: not behind).',
      (j) => (j.knownCommittedTxid > j.lastTxid ? num(j.knownCommittedTxid - j.lastTxid) : 0));
    this.fsync = new Histogram({ name: 'quorate_journal_fsync_seconds', help: 'Time of the fdatasync that makes a write of edits durable (one per group of batches written together).', labelNames: ['journal'], buckets: FSYNC_BUCKETS_S, registers: r });
    this.batchRecords = new Histogram({ name: 'quorate_journal_batch_records', help: 'Edits per writer batch accepted.', labelNames: ['journal'], buckets: BATCH_RECORDS_BUCKETS, registers: r });
    this.batchBytes = new Histogram({ name: 'quorate_journal_batch_bytes', help: 'Bytes per writer batch accepted (its body).', labelNames: ['journal'], buckets: BATCH_BYTES_BUCKETS, registers: r });
    this.refusals = new Counter({ name: 'quorate_journal_refusals_total', help: 'Requests answered with an error, by reason.', labelNames: ['reason'], registers: r });
    // Every reason shows from the start, at 0: rate() over a counter that appears late misses its first increase.
    for (const reason of JOURNAL_REFUSAL_REASONS) this.refusals.inc({ reason }, 0);
    this.catchUpSteps = new Counter({ name: 'quorate_journal_catch_up_steps_total', help: 'Catch-up steps applied: edits copied from a peer (by a catch-up round, or to fill the gap before a writer\'s batch).', labelNames: ['journal'], registers: r });
    this.catchUpEdits = new Counter({ name: 'quorate_journal_catch_up_edits_total', help: 'Edits copied from peers by catch-up steps.', labelNames: ['journal'], registers: r });
  }

  synced(journal: string, seconds: number): void { this.fsync.observe({ journal }, seconds); }

  batch(journal: string, records: number, bytes: number): void {
    this.batchRecords.observe({ journal }, records);
    this.batchBytes.observe({ journal }, bytes);
  }

  refused(reason: JournalRefusalReason): void { this.refusals.inc({ reason }); }

  caughtUp(journal: string, edits: number): void {
    this.catchUpSteps.inc({ journal });
    this.catchUpEdits.inc({ journal }, edits);
  }
}
