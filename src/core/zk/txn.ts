// Transactions: what the leader decides and every server applies, in zxid
// order. A failed write is a transaction too (type error), as in ZooKeeper:
// it takes a zxid so that replies keep their order.
import type { ACL } from '../../proto/zk-records.js';

export type Txn =
  | { type: 'createSession'; timeoutMs: number; passwd: Buffer }
  | { type: 'closeSession' }
  | { type: 'create'; path: string; data: Buffer | null; acl: ACL[]; ephemeralOwner: bigint; parentCVersion: number; op: number }
  | { type: 'delete'; path: string }
  | { type: 'setData'; path: string; data: Buffer | null; version: number }
  | { type: 'setACL'; path: string; acl: ACL[]; version: number }
  | { type: 'check'; path: string; version: number }
  | { type: 'multi'; txns: Txn[] }
  | { type: 'error'; err: number };

export interface TxnHeader {
  sessionId: bigint;
  /** The client's xid, for matching the reply; 0 for server-made transactions. */
  cxid: number;
  zxid: bigint;
  /** Wall time in ms at the leader when the transaction was made: ctime/mtime come from it. */
  timeMs: number;
}

export interface LoggedTxn { hdr: TxnHeader; txn: Txn }
