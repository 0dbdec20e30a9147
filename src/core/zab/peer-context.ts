// What the leader and learner roles need from the quorum peer that runs them:
// its configuration, its log and epochs, and the effects it may produce.
import type { LogTail } from './log-tail.js';
import type { PeerMessage, StorageOp } from './messages.js';

/** The membership: who votes, who observes, and the version (the zxid of the transaction that made it; 0 for a static one). */
export interface ClusterConfig { version: bigint; voters: readonly number[]; observers: readonly number[] }

export interface QuorumPeerConfig {
  id: number;
  /** Participants (voting members), this server included if it is one. */
  voters: readonly number[];
  observers: readonly number[];
  /** The cluster's id: a learner from another cluster is refused. */
  clusterId: string;
  tickMs: number;
  /** Ticks a learner has to connect and sync, and a new leader to gather a quorum. */
  initLimit: number;
  /** Ticks of silence after which a learner leaves its leader, and a leader without a quorum steps down. */
  syncLimit: number;
  /** Election: wait this long for a better vote once a quorum agrees (ZooKeeper: 200 ms). */
  electionFinalizeWaitMs: number;
  /** Election: resend notifications after this long without a decision, doubling up to electionResendMaxMs. */
  electionResendMinMs: number;
  electionResendMaxMs: number;
  /** Committed transactions kept in memory to sync a learner by DIFF; one further behind gets a snapshot. */
  diffWindowTxns: number;
  /** The counter of an epoch's first zxid: 1, as ZooKeeper; simulations start near 2^32 to exhaust it. */
  firstCounter?: bigint;
  /**
   * Reads a new membership out of a transaction (the server layer's reconfig), or null. When set,
   * the membership can change at run time, and a leader takes servers outside it as non-voting
   * learners (so that they can be in sync before they are added).
   */
  configOf?: (payload: Uint8Array) => ClusterConfig | null;
}

/** Whether `n` servers out of `voters` make a majority. */
export function isQuorum(n: number, voters: number): boolean {
  return n * 2 > voters;
}

export interface PeerContext {
  readonly cfg: QuorumPeerConfig;
  readonly log: LogTail;
  /** Voters of the active membership. */
  readonly voters: ReadonlySet<number>;
  /** Voters of a membership proposed at or before `zxid` and not committed yet, or null. */
  pendingVotersAt(zxid: bigint): ReadonlySet<number> | null;
  readonly acceptedEpoch: number;
  readonly currentEpoch: number;
  readonly lastCommitted: bigint;
  isKnownServer(id: number): 'participant' | 'observer' | null;
  send(conn: number, msg: PeerMessage): void;
  close(conn: number): void;
  /** Opens a connection to `peer`'s quorum port; answered by connected() or disconnected(). */
  connect(peer: number): number;
  /** Adds a transaction to the log (and to disk), noting a membership it carries. */
  appendLog(zxid: bigint, payload: Uint8Array): void;
  /** Drops the log after `zxid` (and on disk), with any membership proposed there. */
  truncateLog(zxid: bigint): void;
  /** A snapshot came with the membership it was taken under. */
  adoptConfig(config: ClusterConfig): void;
  readonly activeConfig: ClusterConfig;
  /** Queues a storage operation; operations become durable in order. */
  persist(op: StorageOp): void;
  /** Runs `fn` once everything persisted so far is durable, unless the role changed meanwhile. */
  afterDurable(fn: () => void): void;
  setAcceptedEpoch(epoch: number): void;
  setCurrentEpoch(epoch: number): void;
  /** Applies every logged transaction up to `zxid` (at most the log's end). */
  commitUpTo(zxid: bigint): void;
  /** Replaces the state with the leader's snapshot at `zxid`. */
  installSnapshot(zxid: bigint, snapshot: Uint8Array): void;
  /** Leaves the current role (closing its connections) and starts looking again. */
  leave(reason: string, now: number): void;
  /** A protocol rule was broken by a peer: logged as an error, then the role is left. */
  violation(reason: string, now: number): void;
  /** A server-layer message from `from` (the leader, or a synced learner). */
  appMessage(from: number, body: Uint8Array): void;
  established(role: 'leading' | 'following' | 'observing', epoch: number, leader: number): void;
}
