// A journal node's requests over undici, for the processes that write and read
// journals (the writer, readers, the nodes' catch-up): batches are sent as
// idempotent so undici pipelines them on one connection, in order; the node
// recognises a retried batch by (epoch, first txid, checksum). A module of
// its own so that a process that only takes epochs (the controller) never
// loads undici.
import { Client } from 'undici';
import { RequestDeadlines } from '../../io/deadline.js';
import type { Carried, JournalTls, Transport, TransportFactory } from './node-client.js';

/** `pipelining`: requests in flight on the one connection. */
export function pipelinedTransport(pipelining = 1): TransportFactory {
  return (origin, timeoutMs, tls) => new PipelinedTransport(origin, timeoutMs, tls, pipelining);
}

class PipelinedTransport implements Transport {
  private readonly client: Client;
  /** One timer for every request's whole-request deadline (AbortSignal.timeout per request cost a quarter of batch-1 throughput). */
  private readonly deadlines = new RequestDeadlines();

  constructor(origin: string, private readonly timeoutMs: number, tls: JournalTls | null, pipelining: number) {
    this.client = new Client(origin, {
      // The node's certificate must chain to the cluster CA and name the host we dial (IP or DNS SAN).
      ...(tls === null ? {} : { connect: { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true } }),
      pipelining,
      connectTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async request(method: 'GET' | 'POST', path: string, body: Buffer | string | undefined, headers: Record<string, string>, extraWaitMs: number): Promise<Carried> {
    let res;
    const deadline = this.deadlines.start(this.timeoutMs + extraWaitMs);
    try {
      res = await this.client.request({
        method, path, body, headers,
        idempotent: true,
        // undici holds the pipeline behind any request it thinks may block (all but HEAD, by default); ours answer promptly.
        blocking: extraWaitMs > 0,
        headersTimeout: this.timeoutMs + extraWaitMs,
        bodyTimeout: this.timeoutMs,
        // undici's timeouts start when a request reaches the head of the pipeline; behind a node that
        // stopped answering, queued requests would wait on: one deadline covers the whole request.
        signal: deadline.signal,
      });
    } catch (e) {
      deadline.done();
      const err = e as Error & { code?: string };
      const timedOut = err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_CONNECT_TIMEOUT' || err.name === 'TimeoutError' || err.name === 'AbortError';
      return { ok: false, timedOut, brokeOff: false, why: err.code ?? err.message };
    }
    try {
      return { ok: true, status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    } catch (e) {
      return { ok: false, timedOut: false, brokeOff: true, why: (e as Error).message };
    } finally {
      deadline.done();
    }
  }

  async close(): Promise<void> {
    await this.client.destroy().catch(() => undefined);
  }
}
