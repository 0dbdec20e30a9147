// Seeded runs of the journal quorum: journal nodes (the real JournalState,
// one request at a time each, answering only once its storage operations are
// durable) and writers (the real JournalWriter) that supersede each other
// while nodes crash (losing what was not yet durable) and requests are lost
// or slow. At the end a last writer recovers, and the checker looks at what
// each writer was told: J1 (an acknowledged batch was durable on a majority
// when acknowledged), J2/J3 (every acknowledged batch is in the one history
// that remains, whatever writer wrote it; no two nodes disagree on a txid).
import { JournalError, JournalState, type CatchUpStep, type JournalDisk, type JournalStorageOp, type PeerJournal } from '../core/journal/journal-state.js';
import { JournalWriter, type WriterAnswer, type WriterEffect, type WriterRequest } from '../core/journal/journal-writer.js';
import { adoptCaughtUp, nextCatchUp, serveWriterRequest, type Fetched, type ServeEffect } from '../core/journal/journal-serve.js';
import { batchChecksum } from '../proto/journal-wire.js';
import { EventQueue } from './event-queue.js';
import { Rng } from './rng.js';

export interface JournalSimOptions { seed: number; nodes: number; faultMs: number; trace: boolean }
export interface JournalSimResult { seed: number; ok: boolean; violations: string[]; stats: Record<string, number>; trace: string[] }

interface SimJournalNode {
  id: number;
  up: boolean;
  life: number;
  durable: SimJournalDurable;
  pending: JournalStorageOp[];
  state: JournalState | null;
  queue: ({ from: Sim; id: number; req: WriterRequest } | { catchUpFrom: number } | { adopt: PendingAdoption })[];
  busy: boolean;
  /** The request being served (answered with an error if the node dies meanwhile, as a reset connection is). */
  serving: { from: Sim; id: number } | null;
}

type Sim = { writer: JournalWriter; name: string; epoch: () => number };
/** A catch-up chunk fetched from a peer, waiting for the node's turn. */
type PendingAdoption = { peerId: number; manifest: PeerJournal; step: CatchUpStep; got: Fetched | null };

const text = (b: Uint8Array) => new TextDecoder().decode(b);

export type SimJournalDurable = { disk: JournalDisk; edits: Map<bigint, string> };

export function applyDurable(d: SimJournalDurable, op: JournalStorageOp): void {
  const segs = d.disk.segments;
  const seg = (start: bigint) => segs.find((s) => s.startTxid === start);
  switch (op.kind) {
    case 'promise': d.disk.promisedEpoch = op.epoch; return;
    case 'writerEpoch': d.disk.lastWriterEpoch = op.epoch; return;
    case 'committed': d.disk.committedTxid = op.txid; return;
    case 'startSegment': {
      const s = seg(op.startTxid);
      if (s === undefined) segs.push({ startTxid: op.startTxid, endTxid: op.startTxid - 1n, inProgress: true, writerEpoch: op.writerEpoch });
      else s.writerEpoch = op.writerEpoch;
      return;
    }
    case 'append': {
      const s = seg(op.segmentTxid)!;
      op.records.forEach((r, i) => d.edits.set(op.firstTxid + BigInt(i), text(r)));
      s.endTxid = op.firstTxid + BigInt(op.records.length) - 1n;
      return;
    }
    case 'finalize': { const s = seg(op.startTxid)!; s.inProgress = false; s.endTxid = op.endTxid; return; }
    case 'truncate': {
      const s = seg(op.startTxid)!;
      for (let t = op.endTxid + 1n; t <= s.endTxid; t++) d.edits.delete(t);
      s.endTxid = op.endTxid;
      return;
    }
    case 'accepted': d.disk.accepted = { segment: { ...op.segment }, epoch: op.epoch }; return;
  }
}

/**
 * A node's answer to a peer's segment-edits request, as journal-node.ts gives it: its durable copy
 * of the segment starting at `startTxid`, from..to, at most `max` edits (a real node also stops at a
 * byte bound: the simulator passes a small `max` to have copies come in several chunks).
 */
export function segmentEditsOf(d: SimJournalDurable, node: number, startTxid: bigint, fromTxid: bigint, toTxid: bigint, max: number): Fetched {
  const seg = d.disk.segments.find((x) => x.startTxid === startTxid);
  if (seg === undefined) throw new JournalError(409, `node ${node} has no segment starting at ${startTxid}`);
  let to = toTxid < seg.endTxid ? toTxid : seg.endTxid;
  if (fromTxid + BigInt(max) - 1n < to) to = fromTxid + BigInt(max) - 1n;
  const edits: Uint8Array[] = [];
  for (let t = fromTxid; t >= seg.startTxid && t <= to; t++) {
    const v = d.edits.get(t);
    if (v === undefined) break;
    edits.push(new TextEncoder().encode(v));
  }
  return { firstTxid: fromTxid, writerEpoch: seg.writerEpoch, edits };
}

/**
 * A simulated node serves a writer's request at once by journal-serve.ts's rules (the journal node's
 * own), its fetches reading the peers' durable state through `fetch`. Returns the storage operations
 * to make durable (those yielded before a refusal too: the node wrote them) and the answer.
 */
export function serveNow(st: JournalState, req: WriterRequest, peers: readonly number[], fetch: (e: Extract<ServeEffect, { kind: 'fetch' }>) => Fetched): { ops: JournalStorageOp[]; answer: WriterAnswer } {
  const serving = serveWriterRequest(st, req, peers);
  const ops: JournalStorageOp[] = [];
  let input: { fetched?: Fetched; failed?: unknown } = {};
  try {
    for (;;) {
      const r = 'failed' in input ? serving.throw(input.failed) : serving.next(input.fetched);
      if (r.done) return { ops, answer: r.value };
      if (r.value.kind === 'apply') { ops.push(...r.value.ops); input = {}; continue; }
      try { input = { fetched: fetch(r.value) }; } catch (e) { input = { failed: e }; }
    }
  } catch (e) {
    if (!(e instanceof JournalError)) throw e;
    return { ops, answer: { ok: false, status: e.status, message: e.message } };
  }
}

export function runJournalSimulation(o: JournalSimOptions): JournalSimResult {
  const rng = new Rng(o.seed);
  const q = new EventQueue();
  const trace: string[] = [];
  const log = (l: string) => { if (o.trace) trace.push(`${q.now.toFixed(1).padStart(9)} ${l}`); };
  const violations: string[] = [];
  const fail = (v: string) => { if (violations.length < 20) violations.push(`t=${q.now.toFixed(1)}ms ${v}`); };
  const stats = { writers: 0, fenced: 0, acked: 0, batches: 0, crashes: 0, recoveries: 0, catchUps: 0, gapFetches: 0 };
  const ids = Array.from({ length: o.nodes }, (_, i) => i + 1);
  const majority = Math.floor(o.nodes / 2) + 1;
  const nodes = new Map<number, SimJournalNode>(ids.map((id) => [id, {
    id, up: true, life: 0, pending: [], state: null, queue: [], busy: false, serving: null,
    durable: { disk: { promisedEpoch: 0, lastWriterEpoch: 0, committedTxid: 0n, segments: [], accepted: null }, edits: new Map() },
  }]));
  const snapshotDisk = (n: SimJournalNode): JournalDisk => JSON.parse(JSON.stringify(n.durable.disk, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)), (_, v) => (typeof v === 'string' && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v)) as JournalDisk;
  const boot = (n: SimJournalNode) => { n.up = true; n.state = new JournalState('svc', snapshotDisk(n)); n.queue = []; n.busy = false; };
  for (const n of nodes.values()) boot(n);

  /** txid -> payload of every batch some writer was told is written. */
  const acked = new Map<bigint, { payload: string; writer: string }>();

  function answer(s: Sim, id: number, a: WriterAnswer, delay = rng.range(0.1, 2)): void {
    q.after(delay, () => { s.writer.onAnswer(id, a); pumpWriter(s); });
  }

  function serve(n: SimJournalNode): void {
    if (n.busy || !n.up || n.queue.length === 0) return;
    n.busy = true;
    const life = n.life;
    const item = n.queue.shift()!;
    if ('catchUpFrom' in item) { catchUp(n, item.catchUpFrom, life); return; }
    if ('adopt' in item) { adoptChunk(n, item.adopt, life); return; }
    const { from, id, req } = item;
    n.serving = { from, id };
    const st = n.state!;
    // What must not happen: a request below the node's promise (the promise as it stood before the
    // request) changes anything. Checked here, apart from JournalState's own checks.
    const promisedBefore = st.promisedEpoch;
    const finish = (ops: JournalStorageOp[], a: WriterAnswer) => {
      if (a.ok && req.kind !== 'getState' && req.kind !== 'newEpoch' && req.epoch < promisedBefore) {
        fail(`J0: node ${n.id} accepted ${req.kind}${req.kind === 'journal' ? ` of txid ${req.firstTxid}` : ''} from ${from.name} at epoch ${req.epoch}, below its promise ${promisedBefore}`);
      }
      if (a.ok && req.kind === 'newEpoch' && req.epoch <= promisedBefore) fail(`J0: node ${n.id} granted epoch ${req.epoch} to ${from.name}, not above its promise ${promisedBefore}`);
      n.pending.push(...ops);
      q.after(ops.length === 0 ? 0.01 : rng.chance(0.03) ? rng.range(5, 30) : rng.range(0.1, 1.5), () => {
        if (!n.up || n.life !== life) return;
        for (const op of n.pending.splice(0, ops.length)) applyDurable(n.durable, op);
        answer(from, id, a);
        n.busy = false;
        n.serving = null;
        serve(n);
      });
    };
    const others = rng.shuffle(ids.filter((i) => i !== n.id));
    const r = serveNow(st, req, others, (e) => {
      const src = nodes.get(e.node)!;
      if (!src.up) throw new JournalError(409, `cannot fetch from node ${e.node}: down`);
      if (req.kind === 'journal') stats.gapFetches++;
      return segmentEditsOf(src.durable, e.node, e.startTxid, e.fromTxid, e.toTxid, Math.min(e.max, 1 + rng.int(8)));
    });
    finish(r.ops, r.answer);
  }

  /**
   * One catch-up step from `peerId`, as journal-catch-up.ts takes it: the peer's manifest read, the
   * node left free to serve writers while the edits are fetched, then the chunk adopted in the node's
   * turn if the rules still take it (the state may have moved meanwhile, or the peer's copy changed).
   */
  function catchUp(n: SimJournalNode, peerId: number, life: number): void {
    const peer = nodes.get(peerId)!;
    const st = n.state!;
    n.busy = false;
    if (!peer.up) { serve(n); return; }
    const d = peer.durable.disk;
    const manifest = { promisedEpoch: d.promisedEpoch, lastWriterEpoch: d.lastWriterEpoch, committedTxid: d.committedTxid, segments: d.segments.map((x) => ({ ...x })) };
    const next = nextCatchUp(st, manifest);
    if (next === null) { serve(n); return; }
    const { step } = next;
    serve(n);
    q.after(rng.range(0.1, 2), () => {
      if (!n.up || n.life !== life || !peer.up) return;
      let got: Fetched | null = null;
      try {
        if (step.fromTxid <= step.toTxid) got = segmentEditsOf(peer.durable, peerId, step.startTxid, step.fromTxid, next.toTxid, 1 + rng.int(8));
      } catch (e) {
        if (!(e instanceof JournalError)) throw e;
        return;
      }
      q.after(rng.range(0.1, 2), () => { if (n.up && n.life === life) { n.queue.push({ adopt: { peerId, manifest, step, got } }); serve(n); } });
    });
  }

  /** In the node's turn: the fetched chunk adopted if the rules still take it. */
  function adoptChunk(n: SimJournalNode, a: PendingAdoption, life: number): void {
    const st = n.state!;
    const done = () => { n.busy = false; serve(n); };
    const promisedBefore = st.promisedEpoch;
    let ops: JournalStorageOp[] | null;
    try {
      ops = adoptCaughtUp(st, a.manifest, a.step, a.got);
    } catch (e) {
      // A refusal ends the catch-up round, as journal-catch-up.ts's does.
      if (!(e instanceof JournalError)) throw e;
      ops = null;
    }
    if (ops === null) { done(); return; }
    const { step } = a;
    // What must not happen: edits of an open segment copied from a writer below our promise (they are that writer's batches, taken below the promise).
    if (step.finalizeAt === null && step.writerEpoch < promisedBefore) {
      fail(`J0: node ${n.id} copied in-progress segment ${step.startTxid} of writer epoch ${step.writerEpoch} from node ${a.peerId}, below its promise ${promisedBefore}`);
    }
    const to = step.fromTxid + BigInt(a.got?.edits.length ?? 0) - 1n;
    stats.catchUps++;
    log(`node ${n.id}: catch up from ${a.peerId}: segment ${step.startTxid} txids ${step.fromTxid}-${to}${step.replace ? ' (replacing)' : ''}${step.finalizeAt !== null ? ` finalized at ${step.finalizeAt}` : ''}`);
    n.pending.push(...ops);
    q.after(rng.range(0.1, 1.5), () => {
      if (!n.up || n.life !== life) return;
      for (const op of n.pending.splice(0, ops.length)) applyDurable(n.durable, op);
      done();
    });
  }

  function pumpWriter(s: Sim): void {
    for (const e of s.writer.drain()) onWriterEffect(s, e);
  }

  const batchPayloads = new Map<string, string[]>();
  function onWriterEffect(s: Sim, e: WriterEffect): void {
    switch (e.kind) {
      case 'send': {
        const n = nodes.get(e.node)!;
        // Lost or refused: the writer's HTTP client times out or fails (explicit, short timeouts).
        if (!n.up || rng.chance(0.02)) { answer(s, e.id, { ok: false, status: 0, message: `node ${e.node} unreachable` }, rng.range(1, 20)); return; }
        if (e.req.kind === 'journal') batchPayloads.set(`${s.name}:${e.req.firstTxid}`, e.req.records.map(text));
        q.after(rng.range(0.1, 2), () => { if (n.up) { n.queue.push({ from: s, id: e.id, req: e.req }); serve(n); } else answer(s, e.id, { ok: false, status: 0, message: 'down' }); });
        return;
      }
      case 'opened': log(`${s.name}: open in epoch ${e.epoch} at txid ${e.nextTxid}`); appendLoop(s); return;
      case 'fenced': stats.fenced++; log(`${s.name}: fenced: ${e.reason}`); return;
      case 'acked': {
        stats.acked++;
        const payloads = batchPayloads.get(`${s.name}:${e.firstTxid}`)!;
        // J1: durable on a majority now.
        let durableOn = 0;
        for (const n of nodes.values()) {
          if (payloads.every((p, i) => n.durable.edits.get(e.firstTxid + BigInt(i)) === p)) durableOn++;
        }
        if (durableOn < majority) fail(`J1: ${s.name}'s batch at ${e.firstTxid} acknowledged, durable on ${durableOn} of ${o.nodes}`);
        payloads.forEach((p, i) => {
          const t = e.firstTxid + BigInt(i);
          const prev = acked.get(t);
          if (prev !== undefined && prev.payload !== p) fail(`J2: txid ${t} acknowledged to ${prev.writer} as "${prev.payload}" and to ${s.name} as "${p}"`);
          acked.set(t, { payload: p, writer: s.name });
        });
        return;
      }
    }
  }

  function appendLoop(s: Sim): void {
    const step = () => {
      if (s.writer.phase !== 'open' || q.now > o.faultMs) return;
      const n = 1 + rng.int(4);
      s.writer.append(Array.from({ length: n }, (_, i) => new TextEncoder().encode(`${s.name}.${stats.batches}.${i}`)));
      stats.batches++;
      pumpWriter(s);
      q.after(rng.range(0.5, 4), step);
    };
    step();
  }

  let writerNo = 0;
  function newWriter(): Sim {
    const name = `w${++writerNo}`;
    const writer = new JournalWriter(ids, batchChecksum);
    const s: Sim = { writer, name, epoch: () => writer.epoch };
    stats.writers++;
    log(`${name}: opening`);
    writer.open();
    pumpWriter(s);
    return s;
  }

  newWriter();
  const takeover = () => {
    if (q.now >= o.faultMs) return;
    stats.recoveries++;
    newWriter();
    // Sometimes two new writers race for the journal (two controllers that both think they won).
    if (rng.chance(0.3)) q.after(rng.range(0, 3), () => { stats.recoveries++; newWriter(); });
    q.after(rng.range(200, 2000), takeover);
  };
  q.after(rng.range(200, 1000), takeover);
  const crash = () => {
    if (q.now >= o.faultMs) return;
    const n = nodes.get(rng.pick(ids))!;
    if (n.up) {
      stats.crashes++;
      const keep = rng.int(n.pending.length + 1);
      for (const op of n.pending.slice(0, keep)) applyDurable(n.durable, op);
      n.pending = [];
      n.up = false;
      n.life++;
      n.state = null;
      // Connections reset: whatever was asked of it fails.
      for (const r of [...(n.serving ? [n.serving] : []), ...n.queue]) if ('from' in r) answer(r.from, r.id, { ok: false, status: 0, message: `node ${n.id} crashed` });
      n.serving = null;
      n.queue = [];
      n.busy = false;
      log(`node ${n.id}: CRASH (kept ${keep} unsynced ops)`);
      const life = n.life;
      q.after(rng.range(20, 800), () => { if (!n.up && n.life === life) { boot(n); log(`node ${n.id}: restart`); } });
    }
    q.after(rng.range(50, 600), crash);
  };
  q.after(rng.range(100, 500), crash);
  const catchUpTick = () => {
    const n = nodes.get(rng.pick(ids))!;
    const peer = rng.pick(ids.filter((i) => i !== n.id));
    if (n.up) { n.queue.push({ catchUpFrom: peer }); serve(n); }
    if (q.now < o.faultMs + 4000) q.after(rng.range(2, 40), catchUpTick);
  };
  q.after(rng.range(2, 40), catchUpTick);

  // The end: every node up, a last writer recovers; then the history is compared.
  let last: Sim | null = null;
  let attempts = 0;
  const finalWriter = () => {
    // A writer that loses a race (another took a higher epoch, a node was restarting) stops; the
    // operator's next one tries again. Bounded.
    if (last !== null && last.writer.phase !== 'fenced') return;
    if (++attempts > 20) return;
    last = newWriter();
    q.after(200, finalWriter);
  };
  q.at(o.faultMs + 100, () => {
    for (const n of nodes.values()) if (!n.up) boot(n);
    finalWriter();
  });
  while (q.step(o.faultMs + 5000)) { /* run */ }
  if (last === null || (last as Sim).writer.phase !== 'open') fail(`end: the last writer could not open (${last === null ? 'none' : (last as Sim).writer.phase})`);
  // One history: where nodes hold a txid in a finalized segment, they agree; every acknowledged txid is there.
  const history = new Map<bigint, { v: string; where: string }>();
  for (const n of nodes.values()) {
    for (const seg of n.durable.disk.segments) {
      if (seg.inProgress) continue;
      const where = `node ${n.id} segment ${seg.startTxid}-${seg.endTxid} (writer epoch ${seg.writerEpoch})`;
      for (let t = seg.startTxid; t <= seg.endTxid; t++) {
        const v = n.durable.edits.get(t);
        if (v === undefined) { fail(`${where} lacks txid ${t}`); continue; }
        const h = history.get(t);
        if (h !== undefined && h.v !== v) fail(`J3: nodes disagree at txid ${t}: "${h.v}" on ${h.where}, "${v}" on ${where}`);
        history.set(t, { v, where });
      }
    }
  }
  // Readers: what a node serves (edits up to its committed txid) is the one history.
  for (const n of nodes.values()) {
    const d = n.durable.disk;
    for (const seg of d.segments) {
      for (let t = seg.startTxid; t <= seg.endTxid && t <= d.committedTxid; t++) {
        const v = n.durable.edits.get(t);
        const h = history.get(t) ?? (acked.has(t) ? { v: acked.get(t)!.payload, where: 'acknowledged' } : undefined);
        if (h !== undefined && v !== h.v) fail(`J3: a reader of node ${n.id} sees txid ${t} (committed up to ${d.committedTxid}) as "${v}", the history has "${h.v}" (${h.where})`);
      }
    }
  }
  for (const [t, a] of acked) {
    const h = history.get(t);
    if (h?.v !== a.payload) fail(`J3: txid ${t} acknowledged to ${a.writer} as "${a.payload}" is ${h ? `"${h.v}" on ${h.where}` : 'missing'} in the history`);
  }
  return { seed: o.seed, ok: violations.length === 0, violations, stats: { ...stats, historyTxids: history.size }, trace };
}
