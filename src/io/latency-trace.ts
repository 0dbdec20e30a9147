// A diagnostic for latency tails, off unless QUORATE_LATENCY_TRACE names a
// directory: the quorum server marks the steps of each write (request read,
// proposed, durable, acked, committed, applied, reply written) with a wall
// clock of sub-millisecond resolution that other processes on the same
// machine share (performance.timeOrigin + performance.now()), and the garbage
// collector's pauses and the event loop's delays beside them, so that a slow
// request can be split into its hops afterwards (bench/tools/latency-trace.ts
// joins the servers' files with the client's). Bounded: at most
// EVENTS_MAX events are held between writes; more are counted, not kept.
import { appendFile, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

const EVENTS_MAX = 200_000;
const WRITE_INTERVAL_MS = 1000;

export class LatencyTrace {
  private events: string[] = [];
  private dropped = 0;
  private readonly file: string;
  private readonly timer: NodeJS.Timeout;
  private readonly gc: PerformanceObserver;
  private readonly loop: IntervalHistogram;

  /** The trace named by QUORATE_LATENCY_TRACE (a directory), or null when it is not set. */
  static fromEnv(serverId: number): LatencyTrace | null {
    const dir = process.env.QUORATE_LATENCY_TRACE;
    return dir === undefined || dir === '' ? null : new LatencyTrace(join(dir, `server-${serverId}-${process.pid}.jsonl`));
  }

  private constructor(file: string) {
    this.file = file;
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.push(`{"t":${(performance.timeOrigin + e.startTime).toFixed(3)},"k":"gc","ms":${e.duration.toFixed(3)},"kind":${(e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0}}`);
    });
    this.gc.observe({ entryTypes: ['gc'] });
    this.loop = monitorEventLoopDelay({ resolution: 5 });
    this.loop.enable();
    this.timer = setInterval(() => this.write(), WRITE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Marks step `k` now, for transaction `zxid` (when known) and peer `p` (an ack's sender). */
  mark(k: string, zxid?: bigint, p?: number): void {
    const t = (performance.timeOrigin + performance.now()).toFixed(3);
    this.push(`{"t":${t},"k":"${k}"${zxid === undefined ? '' : `,"z":"${zxid.toString(16)}"`}${p === undefined ? '' : `,"p":${p}`}}`);
  }

  private push(line: string): void {
    if (this.events.length < EVENTS_MAX) this.events.push(line);
    else this.dropped++;
  }

  private loopLine(): string {
    const h = this.loop;
    const ms = (ns: number) => (ns / 1e6).toFixed(3);
    const line = `{"t":${(performance.timeOrigin + performance.now()).toFixed(3)},"k":"loop","p50":${ms(h.percentile(50))},"p99":${ms(h.percentile(99))},"max":${ms(h.max)},"n":${h.count},"dropped":${this.dropped}}`;
    h.reset();
    return line;
  }

  private write(): void {
    const lines = this.events;
    lines.push(this.loopLine());
    this.events = [];
    appendFile(this.file, lines.join('\n') + '\n', () => undefined);
  }

  /** Writes what is held, with `stats` (the log's counters) as a last line. */
  stop(stats?: object): void {
    clearInterval(this.timer);
    this.gc.disconnect();
    this.events.push(this.loopLine());
    if (stats !== undefined) this.events.push(`{"t":${(performance.timeOrigin + performance.now()).toFixed(3)},"k":"stats","stats":${JSON.stringify(stats)}}`);
    this.loop.disable();
    try { appendFileSync(this.file, this.events.join('\n') + '\n'); } catch { /* a diagnostic */ }
    this.events = [];
  }
}
