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

/** An upper bound of a transaction's encoded size, to refuse oversized writes before they are logged. */
export function txnBytesUpperBound(t: Txn): number {
  const str = (s: string) => 4 + s.length * 3;
  const acl = (a: ACL[]) => a.reduce((n, e) => n + 12 + str(e.id.scheme) + str(e.id.id), 4);
  switch (t.type) {
    case 'create': return 64 + str(t.path) + (t.data?.length ?? 0) + acl(t.acl);
    case 'setData': return 64 + str(t.path) + (t.data?.length ?? 0);
    case 'setACL': return 64 + str(t.path) + acl(t.acl);
    case 'delete': case 'check': return 64 + str(t.path);
    case 'multi': return t.txns.reduce((n, x) => n + txnBytesUpperBound(x), 64);
    default: return 64;
  }
}
