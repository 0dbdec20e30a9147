// A service's failover history, kept in the quorum so that any host can read
// it and it outlives every controller: each event the controller's core reports
// (promotions, demotions and why, fencing, cede, manual failover, pause and
// resume) becomes a persistent sequential znode under <base>/history, with the
// wall time, the instance, epoch and token. Bounded: an append deletes the
// entry `maxEntries` before it (sequence numbers are dense under one parent),
// and entries older than `maxAgeMs` are dropped on the way. Appends queue
// while the quorum is unreachable (bounded) and go out when it answers.
import type { CreateOptions, ZkClient } from '../client/index.js';
import type { HistoryEvent } from '../core/controller/controller-core.js';
import { CreateMode, Err } from '../proto/zk-constants.js';

export type HistoryEntry = HistoryEvent & { at: string; instance: string; seq: number };

const PREFIX = 'e-';
/** Appends kept while the quorum does not answer; past it the oldest are dropped (and counted). */
const QUEUE_MAX = 500;
/** Every this many appends, entries past maxAgeMs are looked for and deleted (at most AGE_SWEEP_MAX). */
const AGE_SWEEP_EVERY = 50;
const AGE_SWEEP_MAX = 200;
const READ_CHUNK = 100;

export interface HistoryLimits { maxEntries: number; maxAgeMs: number }

export class HistoryLog {
  private queue: Omit<HistoryEntry, 'seq'>[] = [];
  private flushing = false;
  /** Entries lost because the queue overflowed while the quorum was away. */
  dropped = 0;

  constructor(readonly path: string, private readonly limits: HistoryLimits, private readonly onError: (e: Error) => void) {}

  /** Queues an event; it is written by the next flush. */
  record(instance: string, event: HistoryEvent, at: Date): void {
    this.queue.push({ ...event, instance, at: at.toISOString() });
    if (this.queue.length > QUEUE_MAX) { this.queue.shift(); this.dropped++; }
  }

  get pending(): number { return this.queue.length; }

  /** Writes what is queued, in order; stops at the first failure (retried at the next flush). */
  async flush(zk: ZkClient, acl: NonNullable<CreateOptions['acl']>): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const e = this.queue[0];
        let created: string;
        try {
          created = await zk.create(`${this.path}/${PREFIX}`, JSON.stringify(e), { mode: CreateMode.PERSISTENT_SEQUENTIAL, acl });
        } catch (err) {
          if ((err as { code?: number }).code !== Err.NONODE) throw err;
          await zk.ensurePath(this.path, null, { acl });
          continue;
        }
        this.queue.shift();
        const seq = seqOf(created);
        if (seq !== null) await this.trim(zk, seq);
      }
    } catch (err) {
      this.onError(err as Error);
    } finally {
      this.flushing = false;
    }
  }

  private async trim(zk: ZkClient, seq: number): Promise<void> {
    const old = seq - this.limits.maxEntries;
    if (old >= 0) await zk.delete(`${this.path}/${name(old)}`).catch((e: { code?: number }) => { if (e.code !== Err.NONODE) throw e; });
    if (seq % AGE_SWEEP_EVERY !== 0) return;
    const cutoff = Date.now() - this.limits.maxAgeMs;
    const children = (await zk.getChildren(this.path)).filter((c) => c.startsWith(PREFIX)).sort();
    for (const c of children.slice(0, AGE_SWEEP_MAX)) {
      const r = await zk.getData(`${this.path}/${c}`).catch(() => null);
      const at = r === null ? NaN : Date.parse((parseEntry(r.data, c)?.at) ?? '');
      if (!(at < cutoff)) break;
      await zk.delete(`${this.path}/${c}`).catch(() => undefined);
    }
  }

  /** The history, oldest first: at most `limit` of the newest entries, none before `since`. */
  async read(zk: ZkClient, opts: { since?: Date; limit?: number } = {}): Promise<HistoryEntry[]> {
    let children: string[];
    try {
      children = (await zk.getChildren(this.path)).filter((c) => c.startsWith(PREFIX)).sort();
    } catch (e) {
      if ((e as { code?: number }).code === Err.NONODE) return [];
      throw e;
    }
    const wanted = children.slice(-(opts.limit ?? this.limits.maxEntries));
    const out: HistoryEntry[] = [];
    const cutoff = Math.max(opts.since?.getTime() ?? -Infinity, Date.now() - this.limits.maxAgeMs);
    for (let i = 0; i < wanted.length; i += READ_CHUNK) {
      const chunk = wanted.slice(i, i + READ_CHUNK);
      const got = await Promise.all(chunk.map((c) => zk.getData(`${this.path}/${c}`).then((r) => parseEntry(r.data, c), () => null)));
      for (const e of got) if (e !== null && Date.parse(e.at) >= cutoff) out.push(e);
    }
    return out;
  }
}

function name(seq: number): string {
  return `${PREFIX}${String(seq).padStart(10, '0')}`;
}

function seqOf(path: string): number | null {
  const m = /(\d{10})$/.exec(path);
  return m === null ? null : Number(m[1]);
}

/** An entry as stored; null for what does not parse (written by something else: skipped, not fatal). */
export function parseEntry(data: Buffer | null, child: string): HistoryEntry | null {
  if (data === null) return null;
  try {
    const o = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    if (typeof o.type !== 'string' || typeof o.at !== 'string' || typeof o.instance !== 'string' || Number.isNaN(Date.parse(o.at))) return null;
    return { ...(o as unknown as HistoryEntry), seq: seqOf(child) ?? -1 };
  } catch {
    return null;
  }
}
