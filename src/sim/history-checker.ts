// ZooKeeper's client guarantees, checked on the history simulated clients
// recorded (ZooKeeper's reads are not linearizable, so we do not ask that):
//  - linearizable writes: a write that completed before another began has the
//    lower zxid;
//  - FIFO client order: a session's writes take zxids in the order issued;
//  - valid reads: a read returns the value of the write whose zxid its stat
//    names (mzxid), never a value no write made;
//  - read-your-writes: after its write completes, a session never reads an
//    older version of that node;
//  - monotonic reads, across reconnects: a session never sees the state go
//    back (the zxid a server answers with, and each node's mzxid, never
//    decrease).
// (That a watch fires before its client can see the change is checked as the
// answers arrive, in zk-workload.ts.)
import { hexZxid } from '../core/zab/zxid.js';

export interface HistoryOp {
  session: string;
  kind: 'write' | 'read';
  path: string;
  /** Written value, or the value read. */
  value: string | null;
  invokeAt: number;
  respondAt: number;
  /** The reply header's zxid (for a write: its transaction's). */
  zxid: bigint;
  /** The node's mzxid as the reply's stat gives it. */
  mzxid: bigint;
}

export function checkHistory(ops: readonly HistoryOp[], initial: ReadonlyMap<string, { value: string; mzxid: bigint }>): string[] {
  const problems: string[] = [];
  const fail = (s: string) => { if (problems.length < 20) problems.push(s); };
  const writes = ops.filter((o) => o.kind === 'write');

  // Linearizable writes: sweep by invocation time, keeping the highest zxid of writes done before.
  const byInvoke = [...writes].sort((a, b) => a.invokeAt - b.invokeAt);
  const byRespond = [...writes].sort((a, b) => a.respondAt - b.respondAt);
  let done = 0;
  let maxDone: HistoryOp | null = null;
  for (const w of byInvoke) {
    while (done < byRespond.length && byRespond[done].respondAt < w.invokeAt) {
      if (maxDone === null || byRespond[done].zxid > maxDone.zxid) maxDone = byRespond[done];
      done++;
    }
    if (maxDone !== null && maxDone.zxid >= w.zxid) {
      fail(`linearizable writes: ${w.session}'s write ${hexZxid(w.zxid)} began after ${maxDone.session}'s write ${hexZxid(maxDone.zxid)} had completed`);
    }
  }

  // Valid reads: the value is the one written at mzxid.
  const writtenAt = new Map<bigint, HistoryOp>();
  for (const w of writes) {
    const other = writtenAt.get(w.zxid);
    if (other !== undefined) fail(`two writes acknowledged with zxid ${hexZxid(w.zxid)} (${other.session}, ${w.session})`);
    writtenAt.set(w.zxid, w);
  }
  for (const r of ops) {
    if (r.kind !== 'read') continue;
    const w = writtenAt.get(r.mzxid);
    const init = initial.get(r.path);
    const expected = w !== undefined ? w.value : init !== undefined && init.mzxid === r.mzxid ? init.value : undefined;
    // A write whose answer was lost is not in the history: its value can be read, but not checked.
    if (expected !== undefined && (w === undefined || w.path === r.path) && expected !== r.value) {
      fail(`valid reads: ${r.session} read "${r.value}" from ${r.path} at mzxid ${hexZxid(r.mzxid)}, which wrote "${expected}"`);
    }
    if (r.mzxid > r.zxid) fail(`valid reads: ${r.session} read ${r.path} at mzxid ${hexZxid(r.mzxid)} from a server at ${hexZxid(r.zxid)}`);
  }

  // Per session, in the order the client saw the answers.
  const sessions = new Map<string, HistoryOp[]>();
  for (const o of ops) {
    let list = sessions.get(o.session);
    if (list === undefined) sessions.set(o.session, (list = []));
    list.push(o);
  }
  for (const [session, list] of sessions) {
    list.sort((a, b) => a.respondAt - b.respondAt);
    let lastWrite = -1n;
    let seen = 0n;
    const seenAt = new Map<string, bigint>();
    for (const o of list) {
      if (o.kind === 'write') {
        if (o.zxid <= lastWrite) fail(`FIFO order: ${session}'s write ${hexZxid(o.zxid)} answered after its write ${hexZxid(lastWrite)}`);
        lastWrite = o.zxid;
      }
      if (o.zxid < seen) fail(`monotonic reads: ${session} was answered at ${hexZxid(o.zxid)} after ${hexZxid(seen)} (t=${o.respondAt.toFixed(1)}ms)`);
      if (o.zxid > seen) seen = o.zxid;
      const before = seenAt.get(o.path) ?? -1n;
      if (o.mzxid < before) {
        fail(`${o.kind === 'read' ? 'read-your-writes / monotonic reads' : 'FIFO order'}: ${session} saw ${o.path} at mzxid ${hexZxid(o.mzxid)} after ${hexZxid(before)} (t=${o.respondAt.toFixed(1)}ms)`);
      }
      if (o.mzxid > before) seenAt.set(o.path, o.mzxid);
    }
  }
  return problems;
}
