// A promise bounded by a deadline whatever runs underneath: undici leaves a
// connect to a host that does not answer (off the network) pending for its
// own connect timeout (10 s) even when the request's signal has fired, which
// the nemesis saw stretch a 5 s fence to 10.5 s.

/** `p`, or a rejection "no answer within `ms` ms" once `ms` has passed. */
export function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); });
  p.catch(() => undefined);
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** One request's deadline from RequestDeadlines: its signal, and done() once it has its answer. */
export interface RequestDeadline {
  readonly signal: AbortSignal;
  done(): void;
}

/**
 * Deadlines for many requests on one timer. AbortSignal.timeout() per request costs a timer and
 * its weak-reference bookkeeping each time, which at a journal writer's thousands of requests a
 * second took about a quarter of its batch-1 throughput; here a request costs an AbortController
 * and a set entry. The one timer is armed for the earliest deadline and re-armed only when a
 * request with an earlier deadline comes (equal timeouts never re-arm it); it does not keep the
 * process alive. A signal aborts with a TimeoutError at its deadline, a timer's lateness after it.
 */
export class RequestDeadlines {
  private readonly pending = new Set<{ atMs: number; controller: AbortController }>();
  private timer: NodeJS.Timeout | null = null;
  private timerAtMs = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A deadline `ms` from now. */
  start(ms: number): RequestDeadline {
    const entry = { atMs: this.now() + ms, controller: new AbortController() };
    this.pending.add(entry);
    if (entry.atMs < this.timerAtMs) this.arm(entry.atMs);
    return { signal: entry.controller.signal, done: () => { this.pending.delete(entry); } };
  }

  /** Requests with a deadline not yet passed nor done. */
  get size(): number { return this.pending.size; }

  private arm(atMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, Math.ceil(atMs - this.now())));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = null;
    this.timerAtMs = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const e of this.pending) {
      if (e.atMs <= now) {
        this.pending.delete(e);
        e.controller.abort(new DOMException('the request did not finish before its deadline', 'TimeoutError'));
      } else if (e.atMs < next) {
        next = e.atMs;
      }
    }
    if (next !== Infinity) this.arm(next);
  }
}
