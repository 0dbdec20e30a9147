// How a replication peer's effects are carried out, for a quorum server and
// for the simulator alike: the two differ only in their I/O (sockets and
// files, or the simulated network and disk) and in what rides on the peer
// (the ZooKeeper layer, or the simulator's bare digest). The order rules
// live here once: what the layer produced goes into the peer before the
// peer's effects are taken; effects are carried out in the order the peer
// gave them, so a snapshot sent to a learner is the state at the last
// commit carried out; a commit reaches the layer before anything after it.
import type { Notification, PeerMessage, PeerState, StorageOp } from '../core/zab/messages.js';
import type { ClusterConfig, PeerEffect, QuorumPeer } from '../core/zab/quorum-peer.js';

/** What rides on the replication peer. */
export interface ReplicatedLayer {
  /** Applies a committed transaction, in zxid order. */
  committed(zxid: bigint, payload: Uint8Array): void;
  /** A message of this layer from server `from` (forwarded requests, session touches, their answers). */
  fromPeer(from: number, body: Uint8Array, now: number): void;
  /** The peer's state changed: who this layer serves as, from now. */
  roleChanged(state: PeerState, serving: boolean, epoch: number, now: number): void;
  /** The state's bytes at the last commit, for a learner's snapshot. */
  snapshot(): Uint8Array;
  /** Replaces the state with a leader's snapshot. */
  install(zxid: bigint, snapshot: Uint8Array, now: number): void;
  /** Moves what the layer produced since the last call into the peer and out to its clients; true if anything moved. */
  flush(peer: QuorumPeer, now: number): boolean;
}

/** The peer's I/O and what its host is told (logs, metrics, a simulator's checks). */
export interface PeerIo {
  vote(to: number, n: Notification): void;
  connect(conn: number, peer: number): void;
  send(conn: number, msg: PeerMessage): void;
  close(conn: number): void;
  /** Carry out in order; report peer.persisted(seq) once this and everything before it is durable. */
  persist(seq: number, op: StorageOp): void;
  /** After the layer has taken the new role. */
  stateChanged(e: Extract<PeerEffect, { kind: 'state' }>): void;
  /** After the committed reconfig was applied to the layer. */
  configChanged(config: ClusterConfig): void;
  violation(reason: string): void;
}

/** Bounds a pump: a peer and a layer that keep producing for this many rounds are broken, not busy. */
const PUMP_ROUNDS_MAX = 10_000;

/**
 * Moves outputs between the layer and the peer and out to the I/O until both
 * are quiet. `alive()` false (the server stopped or crashed meanwhile) ends it.
 */
export function pumpPeer(peer: QuorumPeer, layer: ReplicatedLayer, io: PeerIo, now: () => number, alive: () => boolean = () => true): void {
  for (let round = 0; round < PUMP_ROUNDS_MAX; round++) {
    const moved = layer.flush(peer, now());
    if (!alive()) return;
    const effects = peer.drain();
    for (const e of effects) {
      carryOutPeerEffect(e, layer, io, now());
      if (!alive()) return;
    }
    if (!moved && effects.length === 0) return;
  }
}

function carryOutPeerEffect(e: PeerEffect, layer: ReplicatedLayer, io: PeerIo, now: number): void {
  switch (e.kind) {
    case 'vote': io.vote(e.to, e.n); return;
    case 'connect': io.connect(e.conn, e.peer); return;
    // The layer is exactly at the last commit here: effects are carried out in order.
    case 'send': io.send(e.conn, e.msg.type === 'snap' ? { ...e.msg, snapshot: layer.snapshot() } : e.msg); return;
    case 'close': io.close(e.conn); return;
    case 'persist': io.persist(e.seq, e.op); return;
    case 'commit': layer.committed(e.zxid, e.payload); return;
    case 'installSnapshot': layer.install(e.zxid, e.snapshot, now); return;
    case 'app': layer.fromPeer(e.from, e.body, now); return;
    case 'state':
      layer.roleChanged(e.state, e.serving, e.epoch, now);
      io.stateChanged(e);
      return;
    case 'config': io.configChanged(e.config); return;
    case 'violation': io.violation(e.reason); return;
  }
}
