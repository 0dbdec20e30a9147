// A journal node that fell behind (it was down, or slow) catches up from its
// peers on its own, without waiting for the writer's next segment: every
// interval, and at once when a writer's request was refused because this
// node lags, it reads a peer's manifest and copies what JournalState's
// catchUpStep says is decided or the current writer's (finalized segments,
// the open segment's edits), keeping their writer epoch.
import type { PeerJournal } from '../core/journal/journal-state.js';
import { adoptCaughtUp, COPY_CHUNK_EDITS, nextCatchUp } from '../core/journal/journal-serve.js';
import type { JournalNode } from './journal-node.js';

/** Steps per round and journal: a bound, so one round never runs for ever. */
const STEPS_PER_ROUND_MAX = 100_000;

export class JournalCatchUp {
  private timer: NodeJS.Timeout | null = null;
  private readonly running = new Set<string>();
  private readonly again = new Set<string>();

  constructor(private readonly node: JournalNode, private readonly intervalMs: number) {}

  start(): void {
    const tick = () => {
      for (const name of this.node.journalNames()) this.kick(name);
      this.timer = setTimeout(tick, this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, Math.min(this.intervalMs, 200));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Runs a round for `name` now, or right after the one running. */
  kick(name: string): void {
    if (this.timer === null) return;
    if (this.running.has(name)) { this.again.add(name); return; }
    this.running.add(name);
    this.round(name)
      .catch((e) => this.node.logger.warn({ journal: name, err: (e as Error).message }, 'catch-up round failed'))
      .finally(() => {
        this.running.delete(name);
        if (this.again.delete(name)) this.kick(name);
      });
  }

  private async round(name: string): Promise<void> {
    const peers = [...this.node.peers.values()].sort(() => Math.random() - 0.5);
    for (const peer of peers) {
      const j = this.node.journal(name);
      if (j === undefined || this.timer === null) return;
      let m: PeerJournal;
      try { m = await peer.manifest(name); } catch { continue; }
      j.noteCommittedElsewhere(m.committedTxid);
      let copied = 0n;
      for (let i = 0; i < STEPS_PER_ROUND_MAX; i++) {
        const next = nextCatchUp(j.state, m);
        if (next === null) break;
        const { step, toTxid } = next;
        // A step with nothing to copy only finalizes (we hold the whole segment the peer finalized).
        const got = step.fromTxid > step.toTxid ? null : await peer.segmentEdits(name, step.startTxid, step.fromTxid, toTxid, COPY_CHUNK_EDITS);
        // The state may have moved while we fetched (a writer's request ran): the rules look again in the journal's turn.
        const applied = await j.run(async () => {
          const ops = adoptCaughtUp(j.state, m, step, got);
          if (ops === null) return false;
          await j.apply(ops);
          return true;
        });
        if (!applied) break;
        const edits = got?.edits.length ?? 0;
        this.node.metrics.caughtUp(name, edits);
        copied += BigInt(edits);
      }
      if (copied > 0n) {
        const s = j.state;
        this.node.logger.info({ journal: name, from: peer.node.id, edits: String(copied), epoch: s.promisedEpoch, committedTxid: String(s.committedTxid), lastSegment: s.lastSegment && `${s.lastSegment.startTxid}-${s.lastSegment.endTxid}` }, 'caught up from a peer');
      }
    }
  }
}
