// Operator intent kept in the quorum, so every controller follows it —
// one that restarts, or that was cut off when it was set, reads it the moment
// it reaches the quorum again: maintenance (a durable pause, with who, why and
// until when) and a scheduled switchover (`failover --at`). A controller that
// cannot read the quorum keeps what it last read.
import type { ZkClient } from '../client/index.js';
import { Err } from '../proto/zk-constants.js';

export interface Maintenance { by: string; at: string; reason: string | null; until: string | null }
export interface ScheduledFailover { at: string; to: string | null; by: string; createdAt: string }

/** Whether maintenance is in force at `now` (an expired one is not). */
export function maintenanceInForce(m: Maintenance | null, now: number): boolean {
  return m !== null && (m.until === null || Date.parse(m.until) > now);
}

function parseJson(data: Buffer | null): Record<string, unknown> | null {
  if (data === null || data.length === 0) return null;
  try {
    const o = JSON.parse(data.toString('utf8')) as unknown;
    return o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : null;
  } catch { return null; }
}

const isoOrNull = (v: unknown): string | null => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : null);

/** What the maintenance znode holds; null when it does not parse (treated as no maintenance, and logged). */
export function parseMaintenance(data: Buffer | null): Maintenance | null {
  const o = parseJson(data);
  if (o === null || typeof o.by !== 'string' || isoOrNull(o.at) === null) return null;
  return { by: o.by, at: o.at as string, reason: typeof o.reason === 'string' ? o.reason : null, until: isoOrNull(o.until) };
}

export function parseScheduledFailover(data: Buffer | null): ScheduledFailover | null {
  const o = parseJson(data);
  if (o === null || isoOrNull(o.at) === null || typeof o.by !== 'string' || isoOrNull(o.createdAt) === null) return null;
  return { at: o.at as string, to: typeof o.to === 'string' ? o.to : null, by: o.by, createdAt: o.createdAt as string };
}

/**
 * Follows one znode: `onChange` with its data (null when absent) at every (re)connection and every
 * change, through a watch re-armed each time. Errors other than absence go to `onError` and wait
 * for the next connection.
 */
export class WatchedZnode {
  private generation = 0;

  constructor(readonly path: string, private readonly onChange: (data: Buffer | null) => void, private readonly onError: (e: Error) => void) {}

  /** Call on each new connection (or session): reads and watches again. */
  follow(zk: ZkClient): Promise<void> {
    const gen = ++this.generation;
    return this.read(zk, gen);
  }

  private async read(zk: ZkClient, gen: number): Promise<void> {
    const again = () => { if (gen === this.generation) void this.read(zk, gen); };
    try {
      const r = await zk.getData(this.path, again);
      if (gen === this.generation) this.onChange(r.data);
    } catch (e) {
      if ((e as { code?: number }).code !== Err.NONODE) { this.onError(e as Error); return; }
      // Absent: watch for its creation (exists leaves a watch on a missing node).
      try {
        const st = await zk.exists(this.path, again);
        if (gen !== this.generation) return;
        if (st === null) this.onChange(null);
        else again(); // created between the two reads
      } catch (e2) {
        this.onError(e2 as Error);
      }
    }
  }
}
