// Session deadlines. A session expires when no request or ping has reached
// the server for its negotiated timeout. Time is an input (nowMs): the core
// reads no clock.

export interface TrackedSession {
  id: bigint;
  timeoutMs: number;
  deadlineMs: number;
  /** Set once the server has decided to close it (expiry or closeSession in flight). */
  closing: boolean;
  /** The connection the session is attached to, if any. */
  connId: number | null;
  /** In a quorum, on the leader: the server the session's client is connected to (-1: not known yet). */
  owner: number;
}

export class SessionTracker {
  readonly sessions = new Map<bigint, TrackedSession>();
  private nextId: bigint;

  constructor(serverId: number, nowMs: number) {
    // ZooKeeper's scheme: server id in the top byte, time-derived low bits,
    // so ids from different servers and restarts do not collide.
    const timeBits = (BigInt(Math.max(0, Math.floor(nowMs))) << 24n) & 0xffffffffffffffffn;
    this.nextId = BigInt.asIntN(64, (BigInt(serverId & 0xff) << 56n) | (timeBits >> 8n));
  }

  newSessionId(): bigint {
    let id = this.nextId;
    while (this.sessions.has(id) || id === 0n) id = BigInt.asIntN(64, id + 1n);
    this.nextId = BigInt.asIntN(64, id + 1n);
    return id;
  }

  add(id: bigint, timeoutMs: number, nowMs: number, owner = -1): TrackedSession {
    const s: TrackedSession = { id, timeoutMs, deadlineMs: nowMs + timeoutMs, closing: false, connId: null, owner };
    this.sessions.set(id, s);
    return s;
  }

  get(id: bigint): TrackedSession | undefined {
    return this.sessions.get(id);
  }

  touch(id: bigint, nowMs: number): boolean {
    const s = this.sessions.get(id);
    if (!s || s.closing) return false;
    s.deadlineMs = nowMs + s.timeoutMs;
    return true;
  }

  clear(): void {
    this.sessions.clear();
  }

  remove(id: bigint): void {
    this.sessions.delete(id);
  }

  /** Sessions whose deadline has passed and that are not already closing. */
  expired(nowMs: number): TrackedSession[] {
    const out: TrackedSession[] = [];
    for (const s of this.sessions.values()) if (!s.closing && s.deadlineMs <= nowMs) out.push(s);
    return out;
  }

  /** Gives every session `ms` more: time in which the server could not hear them. */
  extendDeadlines(ms: number): void {
    for (const s of this.sessions.values()) s.deadlineMs += ms;
  }

  /** A new leader (or a restarted server) gives every session a full timeout again. */
  restartDeadlines(nowMs: number): void {
    for (const s of this.sessions.values()) s.deadlineMs = nowMs + s.timeoutMs;
  }
}
