// What a quorum server's ZooKeeper layer says to the leader's (writes and
// session business it cannot decide alone) and what the leader answers.
// Carried as ZAB 'app' messages; encoded by src/proto/zk-quorum-codec.ts.
import type { Id, ZkRequest } from '../../proto/zk-records.js';

export type ToLeader =
  /** A client's write (or closeSession), to be prepared and proposed by the leader. */
  | { kind: 'request'; sessionId: bigint; cxid: number; req: ZkRequest; ids: Id[] }
  | { kind: 'createSession'; sessionId: bigint; timeoutMs: number; passwd: Buffer }
  /** A client re-attached to a session here: is it alive, and may it move to us? */
  | { kind: 'revalidate'; sessionId: bigint; timeoutMs: number }
  /** A client's sync: answered once every write proposed before it is committed and sent to us. */
  | { kind: 'sync'; sessionId: bigint; cxid: number }
  /** Sessions that sent something here since the last touch (their pings stay local). */
  | { kind: 'touch'; sessions: bigint[] };

export type FromLeader =
  | { kind: 'revalidated'; sessionId: bigint; valid: boolean; timeoutMs: number }
  | { kind: 'synced'; sessionId: bigint; cxid: number; zxid: bigint };
