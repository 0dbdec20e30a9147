// What the nemesis's clients saw, and the checks over it. Pure functions of
// the recorded history (no I/O, no clock), unit-tested with hand-made
// histories (test/unit/nemesis-checker.test.ts).
//
// The model. Each key is written by one client only, sequentially (key
// k<client>-<n mod 50>, value <client>-<n>, every value unique; a delete's
// result is "absent"). A write is either acknowledged (200 with its txid and
// epoch, at ackMs) or indeterminate (a 503, a timeout, a connection error: it
// may or may not have been applied). Times are the nemesis process's own
// monotonic clock, so they compare across clients.
//
// - lost write: the final state (read through the final active) must hold,
//   for each key, the result of its last acknowledged write or of a later
//   (indeterminate) one; never an earlier one, nor absent after an
//   acknowledged put, nor a value nobody wrote.
// - stale read: a read answered by the active (x-quorate-role: active) must
//   return the result of the last write acknowledged before the read began,
//   or of a later write that began before the read ended.
// - C4 (the journal, read whole): edits' epochs never go back; one instance
//   per epoch; an instance's seq within an epoch only goes up. And from the
//   acknowledgements: no epoch acknowledged by two instances; no write
//   acknowledged under an epoch older than one that had already acknowledged
//   a write before this write began (a superseded epoch); each acknowledged
//   write is in the journal at its txid, with its key, value, epoch and
//   instance.
// - the final active's data equal the journal replayed.

export interface WriteOp {
  client: number;
  /** The client's write counter: the order of this key's writes. */
  n: number;
  key: string;
  /** null: a delete. */
  value: string | null;
  startMs: number;
  /** When the client stopped waiting (ack or give-up); NaN while in flight. */
  endMs: number;
  outcome: 'ok' | 'indeterminate';
  ackMs?: number;
  txid?: string;
  epoch?: number;
  /** The instance that acknowledged it. */
  instance?: string;
  attempts: number;
  /** The last failure's description, for indeterminate writes. */
  error?: string;
}

export interface ReadOp {
  client: number;
  key: string;
  startMs: number;
  endMs: number;
  /** null: 404 (absent). */
  value: string | null;
  /** The instance that answered as active. */
  instance: string;
  appliedTxid?: string;
}

export interface JournalEntry {
  txid: bigint;
  instance: string;
  epoch: number;
  seq: number;
  op: string;
  key?: string;
  value?: string;
}

export type ViolationKind =
  | 'lost-write' | 'stale-read' | 'unknown-value' | 'c4-epoch-back' | 'c4-two-instances' | 'c4-seq-back'
  | 'ack-two-instances' | 'ack-superseded-epoch' | 'ack-not-in-journal' | 'final-state-mismatch' | 'journal-unreadable'
  | 'no-convergence' | 'failsafe' | 'final-state-unreadable';

export interface Violation {
  kind: ViolationKind;
  message: string;
}

/** Caps how many violations of one kind are listed (the count is kept). */
export const CHECK_LIMITS = { per_kind_listed: 20 } as const;

class Findings {
  private readonly byKind = new Map<ViolationKind, { listed: Violation[]; count: number }>();
  add(kind: ViolationKind, message: string): void {
    const e = this.byKind.get(kind) ?? { listed: [], count: 0 };
    e.count++;
    if (e.listed.length < CHECK_LIMITS.per_kind_listed) e.listed.push({ kind, message });
    this.byKind.set(kind, e);
  }
  list(): Violation[] {
    const out: Violation[] = [];
    for (const [kind, e] of this.byKind) {
      out.push(...e.listed);
      if (e.count > e.listed.length) out.push({ kind, message: `... and ${e.count - e.listed.length} more ${kind} violations` });
    }
    return out;
  }
}

const show = (v: string | null) => (v === null ? 'absent' : JSON.stringify(v));
const fmtMs = (ms: number) => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : 'never');

function describeWrite(w: WriteOp): string {
  const what = w.value === null ? `delete ${w.key}` : `put ${w.key}=${JSON.stringify(w.value)}`;
  return `${what} (client ${w.client} #${w.n}, ${w.outcome}${w.outcome === 'ok' ? ` at ${fmtMs(w.ackMs!)} by ${w.instance} txid ${w.txid} epoch ${w.epoch}` : ''}, started ${fmtMs(w.startMs)})`;
}

/** Each key's writes in the order they were issued (its one client's write counter). */
export function writesByKey(writes: readonly WriteOp[]): Map<string, WriteOp[]> {
  const m = new Map<string, WriteOp[]>();
  for (const w of writes) {
    const l = m.get(w.key);
    if (l === undefined) m.set(w.key, [w]); else l.push(w);
  }
  for (const l of m.values()) l.sort((a, b) => a.n - b.n);
  return m;
}

/**
 * What a read of one key may return: the result of the last write acknowledged before `startMs`
 * (or absent, when none was), or of any later write that began before `endMs`.
 */
export function allowedResults(ws: readonly WriteOp[], startMs: number, endMs: number): { values: Set<string>; absent: boolean; lastAcked: WriteOp | null } {
  let a = -1;
  for (let i = 0; i < ws.length; i++) if (ws[i].outcome === 'ok' && ws[i].ackMs! < startMs) a = i;
  const values = new Set<string>();
  let absent = a === -1;
  for (let i = Math.max(a, 0); i < ws.length; i++) {
    if (i !== a && !(ws[i].startMs < endMs)) continue;
    if (ws[i].value === null) absent = true; else values.add(ws[i].value!);
  }
  return { values, absent, lastAcked: a === -1 ? null : ws[a] };
}

function checkResult(f: Findings, kind: 'stale-read' | 'lost-write', ws: readonly WriteOp[], key: string, got: string | null, startMs: number, endMs: number, context: string): void {
  const allowed = allowedResults(ws, startMs, endMs);
  if (got === null ? allowed.absent : allowed.values.has(got)) return;
  const writer = got === null ? undefined : ws.find((w) => w.value === got);
  if (got !== null && writer === undefined) {
    f.add('unknown-value', `${context}: ${key} = ${show(got)}, which no client wrote to ${key}`);
    return;
  }
  const expected = [...allowed.values].map((v) => JSON.stringify(v)).concat(allowed.absent ? ['absent'] : []).join(' or ');
  const why = writer !== undefined && !(writer.startMs < endMs)
    ? `a value whose write began only at ${fmtMs(writer.startMs)}, after the read ended`
    : `the last write acknowledged before it began was ${allowed.lastAcked ? describeWrite(allowed.lastAcked) : 'none'}; ${writer ? `got the result of ${describeWrite(writer)}` : 'got absent'}`;
  f.add(kind, `${context}: ${key} = ${show(got)}, expected ${expected}: ${why}`);
}

/** Reads answered by an active: none may be stale. */
export function checkReads(writes: readonly WriteOp[], reads: readonly ReadOp[], f: Findings = new Findings()): Violation[] {
  const byKey = writesByKey(writes);
  for (const r of reads) {
    checkResult(f, 'stale-read', byKey.get(r.key) ?? [], r.key, r.value, r.startMs, r.endMs,
      `read by client ${r.client} on ${r.instance} [${fmtMs(r.startMs)}, ${fmtMs(r.endMs)}]${r.appliedTxid !== undefined ? ` (applied txid ${r.appliedTxid})` : ''}`);
  }
  return f.list();
}

/** The final state (key -> value, absent keys missing): every acknowledged write is there, or superseded by a later one. */
export function checkFinalState(writes: readonly WriteOp[], final: Readonly<Record<string, string>>, f: Findings = new Findings()): Violation[] {
  const byKey = writesByKey(writes);
  for (const [key, ws] of byKey) {
    const got = Object.prototype.hasOwnProperty.call(final, key) ? final[key] : null;
    checkResult(f, 'lost-write', ws, key, got, Infinity, Infinity, 'final state');
  }
  for (const key of Object.keys(final)) {
    if (!byKey.has(key)) f.add('unknown-value', `final state: ${key} = ${show(final[key])}, a key no client wrote`);
  }
  return f.list();
}

/** C4 over the journal, and the acknowledgements against it. */
export function checkJournal(journal: readonly JournalEntry[], writes: readonly WriteOp[], f: Findings = new Findings()): Violation[] {
  let maxEpoch = -Infinity;
  let maxEpochAt: bigint | null = null;
  const epochOwner = new Map<number, { instance: string; txid: bigint }>();
  const lastSeq = new Map<string, { seq: number; txid: bigint }>();
  const byTxid = new Map<string, JournalEntry>();
  let prevTxid: bigint | null = null;
  for (const e of journal) {
    if (prevTxid !== null && e.txid !== prevTxid + 1n) f.add('journal-unreadable', `the journal skips from txid ${prevTxid} to ${e.txid}`);
    prevTxid = e.txid;
    byTxid.set(String(e.txid), e);
    if (e.epoch < maxEpoch) f.add('c4-epoch-back', `txid ${e.txid}: ${e.instance} wrote ${e.op} in epoch ${e.epoch} after epoch ${maxEpoch} had written (txid ${maxEpochAt})`);
    if (e.epoch > maxEpoch) { maxEpoch = e.epoch; maxEpochAt = e.txid; }
    const owner = epochOwner.get(e.epoch);
    if (owner !== undefined && owner.instance !== e.instance) f.add('c4-two-instances', `epoch ${e.epoch} has edits from ${owner.instance} (txid ${owner.txid}) and ${e.instance} (txid ${e.txid})`);
    if (owner === undefined) epochOwner.set(e.epoch, { instance: e.instance, txid: e.txid });
    const k = `${e.instance}@${e.epoch}`;
    const prev = lastSeq.get(k);
    if (prev !== undefined && e.seq <= prev.seq) f.add('c4-seq-back', `txid ${e.txid}: ${e.instance} in epoch ${e.epoch} wrote seq ${e.seq} after seq ${prev.seq} (txid ${prev.txid})`);
    lastSeq.set(k, { seq: e.seq, txid: e.txid });
  }
  // A superseded epoch: a write that began after a newer epoch's acknowledgement, acknowledged under an older one.
  const acked = writes.filter((w) => w.outcome === 'ok').sort((a, b) => a.ackMs! - b.ackMs!);
  const byStart = [...acked].sort((a, b) => a.startMs - b.startMs);
  let newest: WriteOp | null = null;
  let k = 0;
  for (const w of byStart) {
    while (k < acked.length && acked[k].ackMs! < w.startMs) {
      if (newest === null || acked[k].epoch! > newest.epoch!) newest = acked[k];
      k++;
    }
    if (newest !== null && w.epoch! < newest.epoch!) {
      f.add('ack-superseded-epoch', `${describeWrite(w)} was acknowledged under epoch ${w.epoch}, but epoch ${newest.epoch} had acknowledged ${describeWrite(newest)} before it began`);
    }
  }
  const ackOwner = new Map<number, WriteOp>();
  for (const w of writes) {
    if (w.outcome !== 'ok') continue;
    const other = ackOwner.get(w.epoch!);
    if (other !== undefined && other.instance !== w.instance) {
      f.add('ack-two-instances', `epoch ${w.epoch} had writes acknowledged by ${other.instance} (${describeWrite(other)}) and by ${w.instance} (${describeWrite(w)})`);
    }
    if (other === undefined) ackOwner.set(w.epoch!, w);
    const e = byTxid.get(w.txid!);
    const wantOp = w.value === null ? 'del' : 'put';
    if (e === undefined) {
      f.add('ack-not-in-journal', `${describeWrite(w)}: txid ${w.txid} is not in the journal (which ends at ${prevTxid ?? 'nothing'})`);
    } else if (e.op !== wantOp || e.key !== w.key || (w.value !== null && e.value !== w.value) || e.epoch !== w.epoch || e.instance !== w.instance) {
      f.add('ack-not-in-journal', `${describeWrite(w)}: the journal's txid ${w.txid} holds ${JSON.stringify({ instance: e.instance, epoch: e.epoch, op: e.op, key: e.key, value: e.value })}`);
    }
  }
  return f.list();
}

/** The journal's puts and deletes replayed, in txid order. */
export function replay(journal: readonly JournalEntry[]): Record<string, string> {
  const s: Record<string, string> = {};
  for (const e of journal) {
    if (e.op === 'put' && e.key !== undefined && e.value !== undefined) s[e.key] = e.value;
    else if (e.op === 'del' && e.key !== undefined) delete s[e.key];
  }
  return s;
}

export function checkFinalAgainstJournal(final: Readonly<Record<string, string>>, journal: readonly JournalEntry[], f: Findings = new Findings()): Violation[] {
  const want = replay(journal);
  const keys = new Set([...Object.keys(want), ...Object.keys(final)]);
  for (const k of [...keys].sort()) {
    const a = Object.prototype.hasOwnProperty.call(final, k) ? final[k] : null;
    const b = Object.prototype.hasOwnProperty.call(want, k) ? want[k] : null;
    if (a !== b) f.add('final-state-mismatch', `${k}: the final active holds ${show(a)}, the journal replayed gives ${show(b)}`);
  }
  return f.list();
}

/** A journal edit's payload: JSON with at least {instance, epoch, seq}; a string when it is not one. */
export function parseEdit(txid: bigint, payload: string): JournalEntry | string {
  let o: Record<string, unknown>;
  try { o = JSON.parse(payload) as Record<string, unknown>; } catch { return `txid ${txid}: not JSON: ${payload.slice(0, 200)}`; }
  if (o === null || typeof o !== 'object' || typeof o.instance !== 'string' || typeof o.epoch !== 'number' || typeof o.seq !== 'number') {
    return `txid ${txid}: no {instance, epoch, seq}: ${payload.slice(0, 200)}`;
  }
  return {
    txid, instance: o.instance, epoch: o.epoch, seq: o.seq, op: typeof o.op === 'string' ? o.op : 'tick',
    ...(typeof o.key === 'string' ? { key: o.key } : {}), ...(typeof o.value === 'string' ? { value: o.value } : {}),
  };
}

// ---------------------------------------------------------------- failsafe

export interface FaultWindow {
  index: number;
  kind: string;
  /** When it was injected and when its heal began (the processes restarted, the host back). */
  injectedMs: number;
  healMs: number;
  /** The cluster looked settled at injection: one active, every process running, the last fault healed a while ago. */
  settledAtInjection: boolean;
}

export const FAILSAFE_LIMITS = {
  /** A write acknowledged within this before the injection: an active was serving. */
  active_before_ms: 1_500,
  /** With the quorum's majority down, the active keeps acknowledging: no gap longer than this. */
  max_gap_ms: 6_000,
} as const;

/**
 * While the quorum's majority is down, a service in failsafe keeps its active: when one served
 * writes just before and the cluster was settled, writes keep being acknowledged by that active.
 */
export function checkFailsafe(faults: readonly FaultWindow[], acks: readonly { ackMs: number; instance: string }[], f: Findings = new Findings()): Violation[] {
  const sorted = [...acks].sort((a, b) => a.ackMs - b.ackMs);
  for (const w of faults) {
    if (w.kind !== 'quorum-majority-down' || !w.settledAtInjection) continue;
    const before = sorted.filter((a) => a.ackMs <= w.injectedMs && a.ackMs > w.injectedMs - FAILSAFE_LIMITS.active_before_ms);
    if (before.length === 0) continue;
    const active = before[before.length - 1].instance;
    const during = sorted.filter((a) => a.ackMs > w.injectedMs && a.ackMs < w.healMs);
    let last = w.injectedMs;
    let worst = 0;
    let worstAt = last;
    for (const a of during) {
      if (a.ackMs - last > worst) { worst = a.ackMs - last; worstAt = last; }
      last = a.ackMs;
    }
    if (w.healMs - last > worst) { worst = w.healMs - last; worstAt = last; }
    const others = [...new Set(during.map((a) => a.instance).filter((i) => i !== active))];
    if (worst > FAILSAFE_LIMITS.max_gap_ms || others.length > 0) {
      f.add('failsafe', `fault #${w.index} (quorum majority down ${fmtMs(w.injectedMs)}..${fmtMs(w.healMs)}): ${active} was active and serving; ` +
        (worst > FAILSAFE_LIMITS.max_gap_ms ? `no write was acknowledged for ${fmtMs(worst)} from ${fmtMs(worstAt)}` : '') +
        (others.length > 0 ? `${worst > FAILSAFE_LIMITS.max_gap_ms ? '; ' : ''}writes were acknowledged by ${others.join(', ')} meanwhile` : ''));
    }
  }
  return f.list();
}

export interface CheckInput {
  writes: readonly WriteOp[];
  reads: readonly ReadOp[];
  /** null: the journal could not be read whole (a violation says why). */
  journal: readonly JournalEntry[] | null;
  journalProblems: readonly string[];
  /** null: the final state could not be read. */
  finalState: Readonly<Record<string, string>> | null;
  faults: readonly FaultWindow[];
}

export function checkAll(i: CheckInput): Violation[] {
  const f = new Findings();
  checkReads(i.writes, i.reads, f);
  if (i.finalState !== null) checkFinalState(i.writes, i.finalState, f);
  for (const p of i.journalProblems) f.add('journal-unreadable', p);
  if (i.journal !== null) {
    checkJournal(i.journal, i.writes, f);
    if (i.finalState !== null) checkFinalAgainstJournal(i.finalState, i.journal, f);
  }
  checkFailsafe(i.faults, i.writes.filter((w) => w.outcome === 'ok').map((w) => ({ ackMs: w.ackMs!, instance: w.instance! })), f);
  return f.list();
}

export { Findings };
