// A journal's reader: committed edits from a txid on, in order, as they
// arrive, from whichever journal node answers (a node holds the answer until
// there are new edits, up to waitMs). Nodes never serve past their committed
// txid, so every reader sees one history. A node that fails or lags is left
// for the next; the reader goes on while any node answers.
import { JournalNodeClient, JournalNodeError, type JournalNodeAddress, type JournalTls } from './node-client.js';
import { pipelinedTransport } from './pipelined-transport.js';

export interface TailOptions {
  nodes: readonly JournalNodeAddress[];
  timeoutMs?: number;
  /** How long a node may hold a read open waiting for new edits. Default 5000 ms. */
  waitMs?: number;
  /** Edits per read. Default 1000. */
  batch?: number;
  signal?: AbortSignal;
  /** Mutual TLS, when the journal nodes serve HTTPS. */
  tls?: JournalTls | null;
  /** Told the committed txid each answering node reports (a reader's lag is that minus what it applied). */
  onCommitted?: (committedTxid: bigint) => void;
}

export interface JournalEdit { txid: bigint; payload: Buffer }

export async function* tailJournal(journal: string, fromTxid: bigint, opts: TailOptions): AsyncGenerator<JournalEdit> {
  const clients = opts.nodes.map((n) => new JournalNodeClient(n, opts.timeoutMs ?? 2000, { tls: opts.tls ?? null, transport: pipelinedTransport() }));
  const waitMs = opts.waitMs ?? 5000;
  let next = fromTxid;
  let at = 0;
  let failures = 0;
  const purged = new Set<number>();
  try {
    while (!opts.signal?.aborted) {
      const c = clients[at % clients.length];
      try {
        const got = await c.edits(journal, next, opts.batch ?? 1000, waitMs);
        failures = 0;
        purged.delete(c.node.id);
        opts.onCommitted?.(got.committedTxid);
        for (const payload of got.edits) {
          yield { txid: next, payload };
          next++;
          if (opts.signal?.aborted) return;
        }
        // Nothing new here while another node may be further along: try the next one.
        if (got.edits.length === 0) at++;
      } catch (e) {
        if (opts.signal?.aborted) return;
        if (e instanceof JournalNodeError && e.status === 410) {
          purged.add(c.node.id);
          if (purged.size === clients.length) throw new Error(`journal ${journal}: txid ${next} was purged on every node`);
        } else if (e instanceof JournalNodeError && e.status >= 400 && e.status < 500 && e.status !== 404 && e.status !== 409) {
          throw e;
        }
        at++;
        failures++;
        if (failures >= clients.length) await sleep(Math.min(2000, 50 * 2 ** Math.min(failures - clients.length, 6)), opts.signal);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}
