// The nemesis's checker on hand-made histories: what must pass, and what must
// be reported (lost writes, stale reads, C4 in the journal, acknowledgements
// against the journal, failsafe), and the schedule being a function of the seed.
import { describe, expect, it } from 'vitest';
import {
  allowedResults, checkAll, checkFailsafe, checkFinalAgainstJournal, checkFinalState, checkJournal, checkReads, parseEdit, replay,
  type JournalEntry, type ReadOp, type WriteOp,
} from '../nemesis/checker.js';
import { percentile, unavailableWithin } from '../nemesis/report.js';
import { FAULT_KINDS, makeSchedule } from '../nemesis/schedule.js';

let txid = 0;
/** An acknowledged write: key k0-<n % 50>, value 0-<n> (null: a delete), acknowledged at `ack` under `epoch` by `instance`. */
function ok(n: number, start: number, ack: number, epoch = 1, instance = 'a', key = `k0-${n % 50}`, value: string | null = `0-${n}`): WriteOp {
  return { client: 0, n, key, value, startMs: start, endMs: ack, outcome: 'ok', ackMs: ack, txid: String(++txid), epoch, instance, attempts: 1 };
}
function lost(n: number, start: number, end: number, key = `k0-${n % 50}`, value: string | null = `0-${n}`): WriteOp {
  return { client: 0, n, key, value, startMs: start, endMs: end, outcome: 'indeterminate', attempts: 1, error: 'timeout' };
}
function read(key: string, start: number, end: number, value: string | null, instance = 'a'): ReadOp {
  return { client: 1, key, startMs: start, endMs: end, value, instance };
}
/** The journal entries of acknowledged writes, as the service would have written them. */
function journalOf(ws: WriteOp[]): JournalEntry[] {
  const seqs = new Map<string, number>();
  return ws.filter((w) => w.outcome === 'ok').sort((a, b) => Number(a.txid) - Number(b.txid)).map((w) => {
    const k = `${w.instance}@${w.epoch}`;
    const seq = (seqs.get(k) ?? -1) + 1;
    seqs.set(k, seq);
    return { txid: BigInt(w.txid!), instance: w.instance!, epoch: w.epoch!, seq, op: w.value === null ? 'del' : 'put', key: w.key, ...(w.value === null ? {} : { value: w.value }) };
  });
}

describe('nemesis checker: reads', () => {
  it('a read returns the last write acknowledged before it began, or a later one in flight', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), ok(50, 20, 30), lost(100, 40, 2000)];
    // k0-0: 0-0 acked at 10, 0-50 acked at 30, 0-100 in flight from 40.
    expect(checkReads(ws, [
      read('k0-0', 15, 16, '0-0'), // after the first ack
      read('k0-0', 25, 35, '0-50'), // concurrent with the second write
      read('k0-0', 25, 35, '0-0'), // concurrent: the old value is fine too
      read('k0-0', 31, 32, '0-50'),
      read('k0-0', 45, 50, '0-100'), // an indeterminate write in flight may be seen
      read('k0-0', 45, 50, '0-50'),
      read('k0-0', 5, 6, null), // before any ack: absent
      read('k0-9', 5, 600, null), // nobody wrote it
    ])).toEqual([]);
  });

  it('a read older than a write acknowledged before it began is stale', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), ok(50, 20, 30)];
    const v = checkReads(ws, [read('k0-0', 31, 40, '0-0', 'b')]);
    expect(v).toHaveLength(1);
    expect(v[0].kind).toBe('stale-read');
    expect(v[0].message).toContain('read by client 1 on b');
    expect(v[0].message).toContain('0-50');
  });

  it('absent after an acknowledged put is stale; absent after an acknowledged delete is not', () => {
    txid = 0;
    expect(checkReads([ok(0, 0, 10)], [read('k0-0', 11, 12, null)]).map((x) => x.kind)).toEqual(['stale-read']);
    txid = 0;
    expect(checkReads([ok(0, 0, 10), ok(50, 11, 12, 1, 'a', 'k0-0', null)], [read('k0-0', 13, 14, null)])).toEqual([]);
  });

  it('a value written only after the read ended, or never written, is reported', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), ok(50, 100, 110)];
    expect(checkReads(ws, [read('k0-0', 20, 30, '0-50')]).map((x) => x.kind)).toEqual(['stale-read']);
    expect(checkReads(ws, [read('k0-0', 20, 30, 'zzz')]).map((x) => x.kind)).toEqual(['unknown-value']);
  });

  it('allowedResults: the last acknowledged before the read, and later writes begun before it ended', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), lost(50, 11, 500), ok(100, 600, 610)];
    const a = allowedResults(ws, 20, 550);
    expect([...a.values].sort()).toEqual(['0-0', '0-50']);
    expect(a.absent).toBe(false);
    expect(a.lastAcked?.value).toBe('0-0');
  });
});

describe('nemesis checker: final state', () => {
  it('holds every key\'s last acknowledged write or a later indeterminate one', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), ok(50, 20, 30), lost(100, 40, 50), ok(1, 0, 5), lost(2, 0, 5), lost(52, 10, 20)];
    expect(checkFinalState(ws, { 'k0-0': '0-50', 'k0-1': '0-1', 'k0-2': '0-52' })).toEqual([]);
    expect(checkFinalState(ws, { 'k0-0': '0-100', 'k0-1': '0-1' })).toEqual([]); // k0-2 never acknowledged: absent is fine
  });

  it('reports an acknowledged write missing, overwritten by an older one, or an unknown key', () => {
    txid = 0;
    const ws = [ok(0, 0, 10), ok(50, 20, 30), ok(1, 0, 5)];
    const v = checkFinalState(ws, { 'k0-0': '0-0', 'kx': '1' });
    expect(v.map((x) => x.kind).sort()).toEqual(['lost-write', 'lost-write', 'unknown-value']);
    expect(v.find((x) => x.message.startsWith('final state: k0-1'))?.message).toContain('got absent');
  });
});

describe('nemesis checker: the journal (C4) and acknowledgements', () => {
  it('a clean history passes, and the final state must equal the journal replayed', () => {
    txid = 0;
    const ws = [ok(0, 0, 10, 1, 'a'), ok(50, 20, 30, 1, 'a'), ok(1, 40, 50, 3, 'b'), ok(51, 60, 70, 3, 'b', 'k0-1', null)];
    const j = journalOf(ws);
    expect(checkJournal(j, ws)).toEqual([]);
    expect(replay(j)).toEqual({ 'k0-0': '0-50' });
    expect(checkFinalAgainstJournal({ 'k0-0': '0-50' }, j)).toEqual([]);
    expect(checkFinalAgainstJournal({ 'k0-0': '0-0' }, j).map((x) => x.kind)).toEqual(['final-state-mismatch']);
    expect(checkAll({ writes: ws, reads: [], journal: j, journalProblems: [], finalState: { 'k0-0': '0-50' }, faults: [] })).toEqual([]);
  });

  it('an edit under an older epoch after a newer one, two instances in one epoch, seq going back', () => {
    const e = (t: number, instance: string, epoch: number, seq: number): JournalEntry => ({ txid: BigInt(t), instance, epoch, seq, op: 'tick' });
    expect(checkJournal([e(1, 'a', 1, 0), e(2, 'b', 2, 0), e(3, 'a', 1, 1)], []).map((x) => x.kind)).toEqual(['c4-epoch-back']);
    expect(checkJournal([e(1, 'a', 1, 0), e(2, 'b', 1, 0)], []).map((x) => x.kind)).toEqual(['c4-two-instances']);
    expect(checkJournal([e(1, 'a', 1, 0), e(2, 'a', 1, 2), e(3, 'a', 1, 1)], []).map((x) => x.kind)).toEqual(['c4-seq-back']);
    expect(checkJournal([e(1, 'a', 1, 0), e(3, 'a', 1, 1)], []).map((x) => x.kind)).toEqual(['journal-unreadable']);
  });

  it('an acknowledgement not in the journal, or the same epoch acknowledged by two instances', () => {
    txid = 0;
    const ws = [ok(0, 0, 10, 1, 'a'), ok(50, 20, 30, 1, 'a')];
    const j = journalOf(ws);
    const missing = { ...ok(1, 40, 50, 1, 'a') };
    expect(checkJournal(j, [...ws, missing]).map((x) => x.kind)).toEqual(['ack-not-in-journal']);
    const wrong = { ...ws[1], value: '0-999' };
    expect(checkJournal(j, [ws[0], wrong]).map((x) => x.kind)).toEqual(['ack-not-in-journal']);
    const twice = { ...ws[1], instance: 'b' };
    expect(checkJournal(j, [ws[0], twice]).map((x) => x.kind).sort()).toEqual(['ack-not-in-journal', 'ack-two-instances']);
  });

  it('a write begun after a newer epoch acknowledged one, acknowledged under an older epoch: superseded', () => {
    txid = 0;
    const ws = [ok(0, 0, 10, 1, 'a'), ok(1, 20, 30, 3, 'b'), ok(2, 31, 40, 1, 'a')];
    const v = checkJournal([], ws).filter((x) => x.kind !== 'ack-not-in-journal');
    expect(v.map((x) => x.kind)).toEqual(['ack-superseded-epoch']);
    expect(v[0].message).toContain('epoch 3 had acknowledged');
    // Overlapping (begun before the newer acknowledgement): not judged.
    txid = 0;
    const overlap = [ok(0, 0, 10, 1, 'a'), ok(1, 20, 30, 3, 'b'), ok(2, 25, 40, 1, 'a')];
    expect(checkJournal([], overlap).filter((x) => x.kind !== 'ack-not-in-journal')).toEqual([]);
  });

  it('parses the service\'s edits; anything else is a problem', () => {
    expect(parseEdit(7n, '{"instance":"a","epoch":3,"seq":1,"op":"put","key":"k","value":"v"}')).toEqual({ txid: 7n, instance: 'a', epoch: 3, seq: 1, op: 'put', key: 'k', value: 'v' });
    expect(parseEdit(8n, '{"instance":"a","epoch":3,"seq":2,"op":"active","url":"http://x"}')).toEqual({ txid: 8n, instance: 'a', epoch: 3, seq: 2, op: 'active' });
    expect(typeof parseEdit(9n, 'garbage')).toBe('string');
    expect(typeof parseEdit(9n, '{"instance":"a"}')).toBe('string');
  });
});

describe('nemesis checker: failsafe', () => {
  const fault = { index: 0, kind: 'quorum-majority-down', injectedMs: 1000, healMs: 11_000, settledAtInjection: true };
  const acks = (from: number, to: number, every: number, instance = 'a') => Array.from({ length: Math.floor((to - from) / every) }, (_, i) => ({ ackMs: from + i * every, instance }));

  it('the active kept acknowledging while the majority was down: fine', () => {
    expect(checkFailsafe([fault], acks(0, 12_000, 50))).toEqual([]);
  });

  it('the active stopped acknowledging, or another instance took over: reported', () => {
    expect(checkFailsafe([fault], [...acks(0, 2000, 50), ...acks(9000, 12_000, 50)]).map((x) => x.kind)).toEqual(['failsafe']);
    expect(checkFailsafe([fault], [...acks(0, 3000, 50), ...acks(3000, 12_000, 50, 'b')]).map((x) => x.kind)).toEqual(['failsafe']);
  });

  it('not judged when the cluster was not settled, or nothing was served before', () => {
    expect(checkFailsafe([{ ...fault, settledAtInjection: false }], acks(0, 2000, 50))).toEqual([]);
    expect(checkFailsafe([fault], acks(5000, 12_000, 50))).toEqual([]);
  });
});

describe('nemesis report and schedule', () => {
  it('unavailable time: gaps between acknowledgements longer than the threshold, clipped to the window', () => {
    const acks = [0, 100, 200, 1200, 1300, 5300];
    expect(unavailableWithin(acks, 0, 5300, 500)).toBe(1000 + 4000);
    expect(unavailableWithin(acks, 150, 1250, 500)).toBe(1000);
    expect(unavailableWithin(acks, 2000, 3000, 500)).toBe(1000);
    expect(unavailableWithin(acks, 5300, 6300, 500)).toBe(1000); // nothing after: unavailable to the end
    expect(unavailableWithin([], 0, 100, 500)).toBe(100);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
  });

  it('the schedule is a function of the seed: the same faults for the same seed, others for another', () => {
    const a = makeSchedule({ seed: 42, minutes: 30, sessionTimeoutMs: 5000 });
    expect(makeSchedule({ seed: 42, minutes: 30, sessionTimeoutMs: 5000 })).toEqual(a);
    expect(makeSchedule({ seed: 43, minutes: 30, sessionTimeoutMs: 5000 })).not.toEqual(a);
    expect(new Set(a.map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    for (let i = 1; i < a.length; i++) expect(a[i].atMs).toBeGreaterThanOrEqual(a[i - 1].atMs + a[i - 1].durationMs);
    expect(a[a.length - 1].atMs + a[a.length - 1].durationMs).toBeLessThanOrEqual(30 * 60_000);
    for (const f of a.filter((x) => x.kind.startsWith('pause'))) expect(f.durationMs).toBeGreaterThan(5000);
  });
});
