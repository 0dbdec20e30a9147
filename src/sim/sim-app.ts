// What runs on top of the replication core in a simulated server: nothing
// but the digest (the bare ZAB runs), or the ZooKeeper layer with its clients
// (zk-workload.ts), which is the quorum server's own ZkLayer. The simulated
// cluster carries the peer's effects out through the quorum server's
// pumpPeer, as production does.
import type { ReplicatedLayer } from '../quorum/peer-pump.js';

export interface SimAppContext {
  /** The server's clock: whole milliseconds, as a real server's. */
  now(): number;
  /** The server's id. */
  readonly id: number;
}

export interface SimApp extends ReplicatedLayer {
  /** Starts from a snapshot's bytes (null: the initial state). */
  restore(bytes: Uint8Array | null): void;
  tick(): void;
  /** The server process died: every client connection drops. */
  crashed(): void;
  /** The state, in a form equal on every server that applied the same transactions (absent: the digest is the state). */
  stateDigest?(): { zxid: bigint; digest: string };
}

/** The bare run: the cluster's own digest is the state; nothing else happens. */
export class NoApp implements SimApp {
  committed(): void { /* the digest is kept by the cluster */ }
  fromPeer(): void { /* nothing */ }
  roleChanged(): void { /* nothing */ }
  snapshot(): Uint8Array { return new Uint8Array(0); }
  install(): void { /* nothing */ }
  flush(): boolean { return false; }
  restore(): void { /* nothing */ }
  tick(): void { /* nothing */ }
  crashed(): void { /* nothing */ }
}
