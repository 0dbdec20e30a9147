// The peer protocol's messages, as the cores see them (codecs live in
// src/proto/peer-codec.ts). Election notifications travel on their own
// channel; everything else on the learner's connection to the leader, in order.

export type PeerState = 'looking' | 'following' | 'leading' | 'observing';
export type LearnerType = 'participant' | 'observer';

/** Bumped on any incompatible change; sent first on every connection. */
export const PEER_PROTOCOL_VERSION = 1;

/** A server's current vote and state, as fast leader election exchanges them. */
export interface Notification {
  /** The server voted for. */
  leader: number;
  /** That server's last logged zxid. */
  zxid: bigint;
  /** That server's current epoch. */
  peerEpoch: number;
  /** The sender's election round (ZooKeeper's logicalclock / electionEpoch). */
  round: number;
  state: PeerState;
  /** The sender's active membership: a server that knows an older one adopts it (it was committed). */
  config?: { version: bigint; voters: readonly number[]; observers: readonly number[] };
}

export type PeerMessage =
  // learner -> leader, first on the connection
  | { type: 'followerInfo'; serverId: number; learnerType: LearnerType; acceptedEpoch: number; lastZxid: bigint; protocolVersion: number; clusterId: string }
  // leader -> learner: the epoch it proposes
  | { type: 'leaderInfo'; epoch: number; protocolVersion: number }
  // learner -> leader: accepted; what it has
  | { type: 'ackEpoch'; currentEpoch: number; lastZxid: bigint }
  // leader -> learner: how the sync goes (then proposals/commits), then newLeader
  | { type: 'diff'; zxid: bigint }
  | { type: 'trunc'; zxid: bigint }
  /** A snapshot of the leader's state at `zxid`: the driver fills `snapshot` when it sends it. */
  | { type: 'snap'; zxid: bigint; snapshot?: Uint8Array; config: { version: bigint; voters: number[]; observers: number[] } }
  | { type: 'proposal'; zxid: bigint; payload: Uint8Array }
  | { type: 'commit'; zxid: bigint }
  /** To observers: a committed transaction (they see no proposals). */
  | { type: 'inform'; zxid: bigint; payload: Uint8Array }
  | { type: 'newLeader'; zxid: bigint }
  // learner -> leader: a proposal (or newLeader) is durable here
  | { type: 'ack'; zxid: bigint }
  // leader -> learner: the sync is over; everything up to `committed` is committed
  | { type: 'upToDate'; committed: bigint }
  // both ways: liveness
  | { type: 'ping' }
  /** Both ways, once the learner is synced: the server layer's own messages (forwarded requests, session touches). */
  | { type: 'app'; body: Uint8Array }
  /** leader -> learner before closing: why (wrong cluster, version, epoch). */
  | { type: 'refused'; reason: string };

export type StorageOp =
  | { kind: 'acceptedEpoch'; epoch: number }
  | { kind: 'currentEpoch'; epoch: number }
  | { kind: 'append'; zxid: bigint; payload: Uint8Array }
  /** Drop every record above `after`. */
  | { kind: 'truncate'; after: bigint }
  /** A snapshot from the leader replaces the state and the whole log: the log restarts after `zxid`. */
  | { kind: 'snapshot'; zxid: bigint; snapshot: Uint8Array }
  /** The active membership changed (a committed reconfig, or a leader's snapshot). */
  | { kind: 'config'; config: { version: bigint; voters: readonly number[]; observers: readonly number[] } };
