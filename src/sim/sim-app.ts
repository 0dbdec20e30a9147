// What runs on top of the replication core in a simulated server: nothing
// but the digest (the bare ZAB runs), or the ZooKeeper layer with its clients
// (zk-app.ts). The simulated cluster hands it commits, snapshots, role
// changes and server-layer messages, and lets it propose and send.
import type { PeerState } from '../core/zab/messages.js';

export interface SimAppContext {
  now(): number;
  /** The server's id. */
  readonly id: number;
  propose(payload: Uint8Array): bigint | null;
  sendToLeader(body: Uint8Array): boolean;
  sendToLearner(id: number, body: Uint8Array): boolean;
  sendToLearnerAfter(id: number, zxid: bigint, body: Uint8Array): void;
}

export interface SimApp {
  /** Applies a committed transaction. */
  apply(zxid: bigint, payload: Uint8Array): void;
  /** The state's bytes, for a snapshot at what was applied last. */
  snapshot(): Uint8Array;
  /** Replaces the state with a snapshot's (null: the initial state). */
  restore(bytes: Uint8Array | null): void;
  role(state: PeerState, serving: boolean, epoch: number): void;
  message(from: number, body: Uint8Array): void;
  tick(): void;
  /** Carries out what the app produced since the last call. */
  flush(): void;
  /** The server process died: every client connection drops. */
  crashed(): void;
}

/** The bare run: the cluster's own digest is the state; nothing else happens. */
export class NoApp implements SimApp {
  apply(): void { /* the digest is kept by the cluster */ }
  snapshot(): Uint8Array { return new Uint8Array(0); }
  restore(): void { /* nothing */ }
  role(): void { /* nothing */ }
  message(): void { /* nothing */ }
  tick(): void { /* nothing */ }
  flush(): void { /* nothing */ }
  crashed(): void { /* nothing */ }
}
