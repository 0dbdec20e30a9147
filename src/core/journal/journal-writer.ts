// The writer's side of the journal protocol, as a pure state machine: it
// decides what to ask which journal node and when a batch counts as written
// (a majority of nodes made it durable: J1). open(): the nodes' promises, a
// new epoch above all of them granted by a majority, recovery of the segment
// the last writer left open (prepare on a majority, choose as QJM does,
// accept on a majority, finalize), then a new segment. append() pipelines
// batches. A majority of refusals makes the writer fenced: it stops, it does
// not retry into a split brain. Answers come back through onAnswer(); the
// driver (HTTP, or the simulator) carries requests and answers.
import { chooseRecovery, type PrepareRecoveryAnswer, type SegmentState } from './recovery.js';

export type WriterRequest =
  | { kind: 'getState' }
  | { kind: 'newEpoch'; epoch: number }
  | { kind: 'prepareRecovery'; epoch: number; segmentTxid: bigint }
  | { kind: 'acceptRecovery'; epoch: number; segment: SegmentState; fromNode: number }
  | { kind: 'finalize'; epoch: number; startTxid: bigint; endTxid: bigint }
  | { kind: 'startSegment'; epoch: number; txid: bigint }
  | { kind: 'journal'; epoch: number; segmentTxid: bigint; firstTxid: bigint; records: Uint8Array[]; checksum: string; committedTxid: bigint };

export type WriterAnswer =
  | { ok: true; promisedEpoch?: number; lastSegmentTxid?: bigint | null; recovery?: PrepareRecoveryAnswer & { committedTxid: bigint } }
  | { ok: false; status: number; message: string };

export type WriterEffect =
  | { kind: 'send'; node: number; id: number; req: WriterRequest }
  | { kind: 'opened'; epoch: number; nextTxid: bigint }
  | { kind: 'acked'; batch: number; firstTxid: bigint; lastTxid: bigint }
  | { kind: 'fenced'; reason: string }
  /** close() finished: the segment is finalized on a majority (or was empty). */
  | { kind: 'closed' };

type Step = 'state' | 'newEpoch' | 'prepare' | 'accept' | 'finalize' | 'start' | { batch: number };

interface Pending { step: Step; ok: Map<number, WriterAnswer & { ok: true }>; failed: Map<number, string>; done: boolean }

export type WriterPhase = 'idle' | 'opening' | 'open' | 'rolling' | 'closing' | 'closed' | 'fenced';

export class JournalWriter {
  phase: WriterPhase = 'idle';
  epoch = 0;
  private out: WriterEffect[] = [];
  private nextId = 1;
  private readonly byId = new Map<number, { pending: Pending; node: number }>();
  private recoveringTxid: bigint | null = null;
  private chosen: { segment: SegmentState; node: number } | null = null;
  /** The segment being finalized (after recovery, a roll or a close). */
  private finalizing: { start: bigint; end: bigint } | null = null;
  private segmentTxid = 0n;
  private nextTxid = 1n;
  private committed = 0n;
  private nextBatch = 1;
  private readonly batches = new Map<number, { first: bigint; last: bigint }>();

  constructor(private readonly nodes: readonly number[], private readonly checksum: (records: Uint8Array[]) => string) {}

  private get majority(): number { return Math.floor(this.nodes.length / 2) + 1; }

  /** The highest txid a majority acknowledged (sent to the nodes with the next request). */
  get committedTxid(): bigint { return this.committed; }
  /** Batches sent and not yet acknowledged by a majority. */
  get inFlight(): number { return this.batches.size; }
  get segmentStartTxid(): bigint { return this.segmentTxid; }

  drain(): WriterEffect[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private broadcast(step: Step, req: WriterRequest): void {
    const pending: Pending = { step, ok: new Map(), failed: new Map(), done: false };
    for (const node of this.nodes) {
      const id = this.nextId++;
      this.byId.set(id, { pending, node });
      this.out.push({ kind: 'send', node, id, req });
    }
  }

  open(): void {
    if (this.phase !== 'idle') throw new Error(`journal writer: open() while ${this.phase}`);
    this.phase = 'opening';
    this.broadcast('state', { kind: 'getState' });
  }

  /** Sends a batch; resolved by an `acked` effect once a majority has it durable. Returns the batch number. */
  append(records: Uint8Array[]): number {
    if (this.phase !== 'open') throw new Error(`journal writer: append() while ${this.phase}`);
    if (records.length === 0) throw new Error('journal writer: an empty batch');
    const batch = this.nextBatch++;
    const first = this.nextTxid;
    const last = first + BigInt(records.length) - 1n;
    this.nextTxid = last + 1n;
    this.batches.set(batch, { first, last });
    this.broadcast({ batch }, {
      kind: 'journal', epoch: this.epoch, segmentTxid: this.segmentTxid, firstTxid: first, records, checksum: this.checksum(records), committedTxid: this.committed,
    });
    return batch;
  }

  /**
   * Finalizes the open segment and starts the next one (an `opened` effect says it is done).
   * Only with nothing in flight: the segment's end is then known.
   */
  roll(): void {
    this.finishSegment('rolling');
  }

  /** Finalizes the open segment; a `closed` effect says it is done. Only with nothing in flight. */
  close(): void {
    this.finishSegment('closing');
  }

  private finishSegment(phase: 'rolling' | 'closing'): void {
    if (this.phase !== 'open') throw new Error(`journal writer: ${phase === 'rolling' ? 'roll' : 'close'}() while ${this.phase}`);
    if (this.batches.size > 0) throw new Error(`journal writer: ${this.batches.size} batches still in flight`);
    this.phase = phase;
    if (this.nextTxid === this.segmentTxid) {
      // Nothing written: nothing to finalize (a later recovery finds it empty and starts it over).
      if (phase === 'closing') this.finishClose(); else { this.phase = 'open'; this.out.push({ kind: 'opened', epoch: this.epoch, nextTxid: this.nextTxid }); }
      return;
    }
    this.finalizeSegment(this.segmentTxid, this.nextTxid - 1n);
  }

  private finishClose(): void {
    this.phase = 'closed';
    this.out.push({ kind: 'closed' });
  }

  private finalizeSegment(start: bigint, end: bigint): void {
    this.finalizing = { start, end };
    this.broadcast('finalize', { kind: 'finalize', epoch: this.epoch, startTxid: start, endTxid: end });
  }

  private fence(reason: string): void {
    if (this.phase === 'fenced') return;
    this.phase = 'fenced';
    this.out.push({ kind: 'fenced', reason });
  }

  onAnswer(id: number, answer: WriterAnswer): void {
    const entry = this.byId.get(id);
    if (entry === undefined) return;
    this.byId.delete(id);
    const p = entry.pending;
    if (p.done || this.phase === 'fenced') return;
    const node = entry.node;
    if (answer.ok) p.ok.set(node, answer); else p.failed.set(node, answer.message);
    if (p.ok.size >= this.majority) {
      p.done = true;
      this.advance(p);
    } else if (p.failed.size > this.nodes.length - this.majority) {
      p.done = true;
      this.fence(`a majority refused or did not answer (${[...p.failed.entries()].map(([n, m]) => `node ${n}: ${m}`).join('; ')})`);
    }
  }

  private advance(p: Pending): void {
    const step = p.step;
    if (typeof step === 'object') {
      const b = this.batches.get(step.batch)!;
      this.batches.delete(step.batch);
      if (b.last > this.committed) this.committed = b.last;
      this.out.push({ kind: 'acked', batch: step.batch, firstTxid: b.first, lastTxid: b.last });
      return;
    }
    switch (step) {
      case 'state': {
        let max = 0;
        for (const a of p.ok.values()) max = Math.max(max, a.promisedEpoch ?? 0);
        this.epoch = max + 1;
        this.broadcast('newEpoch', { kind: 'newEpoch', epoch: this.epoch });
        return;
      }
      case 'newEpoch': {
        let last: bigint | null = null;
        for (const a of p.ok.values()) if (a.lastSegmentTxid != null && (last === null || a.lastSegmentTxid > last)) last = a.lastSegmentTxid;
        if (last === null) { this.startAt(1n); return; }
        this.recoveringTxid = last;
        this.broadcast('prepare', { kind: 'prepareRecovery', epoch: this.epoch, segmentTxid: last });
        return;
      }
      case 'prepare': {
        const answers = [...p.ok.entries()].map(([node, a]) => ({ node, ...a.recovery! }));
        const best = chooseRecovery(answers);
        if (best === null || best.segment === null) {
          // Nobody in the majority has edits in it: nothing to keep, start over at its first txid.
          this.startAt(this.recoveringTxid!);
          return;
        }
        this.chosen = { segment: { ...best.segment, inProgress: false }, node: best.node };
        this.broadcast('accept', { kind: 'acceptRecovery', epoch: this.epoch, segment: best.segment, fromNode: best.node });
        return;
      }
      case 'accept': {
        const s = this.chosen!.segment;
        this.finalizeSegment(s.startTxid, s.endTxid);
        return;
      }
      case 'finalize':
        if (this.phase === 'closing') this.finishClose(); else this.startAt(this.finalizing!.end + 1n);
        return;
      case 'start':
        this.phase = 'open';
        this.out.push({ kind: 'opened', epoch: this.epoch, nextTxid: this.nextTxid });
        return;
    }
  }

  private startAt(txid: bigint): void {
    this.segmentTxid = txid;
    this.nextTxid = txid;
    if (txid - 1n > this.committed) this.committed = txid - 1n;
    this.broadcast('start', { kind: 'startSegment', epoch: this.epoch, txid });
  }
}
