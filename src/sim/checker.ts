// What every simulated run must satisfy, checked as it happens and at the end:
//  Q1  at most one leader per epoch;
//  Q2  every server applies one history: the same transaction at a zxid, the
//      same successor after each zxid, the same digest of everything up to
//      it; nothing committed (acknowledged to a client) is ever lost;
//  no server reports a broken protocol rule; and once the faults end, the
//  quorum commits again (liveness).
import type { SimState } from './sim-state.js';
import { hexZxid } from '../core/zab/zxid.js';

const text = (p: Uint8Array): string => new TextDecoder().decode(p);

export class Checker {
  readonly violations: string[] = [];
  private leaderOfEpoch = new Map<number, number>();
  private payloadAt = new Map<bigint, string>();
  private successor = new Map<bigint, bigint>();
  private digestAt = new Map<bigint, number>();
  private acked = new Map<bigint, string>();
  /** When the history last grew (a zxid applied for the first time anywhere). */
  lastGrowthMs = -1;
  stats = { epochs: 0, applies: 0, acked: 0, snapshotsInstalled: 0, protocolViolations: 0 };

  private readonly initialZxid: bigint;

  constructor(private readonly now: () => number, initial: SimState) {
    this.initialZxid = initial.zxid;
    this.digestAt.set(initial.zxid, initial.digest);
  }

  private fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now().toFixed(1)}ms ${what}`);
  }

  leading(node: number, epoch: number): void {
    const other = this.leaderOfEpoch.get(epoch);
    if (other === undefined) { this.leaderOfEpoch.set(epoch, node); this.stats.epochs++; }
    else if (other !== node) this.fail(`Q1: servers ${other} and ${node} both lead epoch ${epoch}`);
  }

  /** `node` went from state `before` to `after` by applying (zxid, payload). */
  applied(node: number, before: SimState, zxid: bigint, payload: Uint8Array, after: SimState): void {
    this.stats.applies++;
    const p = text(payload);
    const known = this.payloadAt.get(zxid);
    if (known === undefined) { this.payloadAt.set(zxid, p); this.lastGrowthMs = this.now(); }
    else if (known !== p) this.fail(`Q2: server ${node} applied "${p}" at ${hexZxid(zxid)}, another applied "${known}"`);
    const next = this.successor.get(before.zxid);
    if (next === undefined) this.successor.set(before.zxid, zxid);
    else if (next !== zxid) this.fail(`Q2: server ${node} applied ${hexZxid(zxid)} after ${hexZxid(before.zxid)}, another applied ${hexZxid(next)} there`);
    const d = this.digestAt.get(zxid);
    if (d === undefined) this.digestAt.set(zxid, after.digest);
    else if (d !== after.digest) this.fail(`Q2: server ${node} reached a different state at ${hexZxid(zxid)}`);
  }

  installedSnapshot(node: number, s: SimState): void {
    this.stats.snapshotsInstalled++;
    const d = this.digestAt.get(s.zxid);
    if (d === undefined) this.fail(`Q2: server ${node} installed a snapshot at ${hexZxid(s.zxid)}, which no server applied`);
    else if (d !== s.digest) this.fail(`Q2: server ${node} installed a snapshot at ${hexZxid(s.zxid)} that differs from the history`);
  }

  /** A client was told its write committed. */
  ack(zxid: bigint, payload: Uint8Array): void {
    this.stats.acked++;
    this.acked.set(zxid, text(payload));
  }

  protocolViolation(node: number, reason: string): void {
    this.stats.protocolViolations++;
    this.fail(`server ${node} saw a protocol violation: ${reason}`);
  }

  /**
   * Liveness: once the faults stop, the quorum must commit again. Safety checks alone pass a quorum
   * that stalls with every server serving at one zxid (a proposal no one acks blocks every later one).
   */
  progressedAfter(ms: number): void {
    if (this.lastGrowthMs < ms) this.fail(`liveness: nothing committed after ${ms.toFixed(0)} ms, though the faults ended and writes kept coming (last growth at ${this.lastGrowthMs.toFixed(0)} ms)`);
  }

  /** After the faults stop and the quorum settles: every server in one state, holding every acknowledged write. */
  final(states: Map<number, { state: SimState; serving: boolean }>): void {
    let ref: { node: number; state: SimState } | null = null;
    for (const [node, s] of states) {
      if (!s.serving) this.fail(`end: server ${node} is not serving`);
      if (ref === null) ref = { node, state: s.state };
      else if (s.state.zxid !== ref.state.zxid || s.state.digest !== ref.state.digest) {
        this.fail(`end: server ${node} is at ${hexZxid(s.state.zxid)} (${s.state.count} txns), server ${ref.node} at ${hexZxid(ref.state.zxid)} (${ref.state.count})`);
      }
    }
    // The final history: the chain of successors from the start to where the servers ended.
    const history = new Set<bigint>();
    for (let z = this.successor.get(this.initialZxid); z !== undefined && ref !== null && z <= ref.state.zxid; z = this.successor.get(z)) history.add(z);
    for (const [zxid, p] of this.acked) {
      if (!history.has(zxid)) this.fail(`Q2: acknowledged write "${p}" at ${hexZxid(zxid)} is not in the final history`);
      else if (this.payloadAt.get(zxid) !== p) this.fail(`Q2: acknowledged write "${p}" at ${hexZxid(zxid)} was replaced`);
    }
  }
}
