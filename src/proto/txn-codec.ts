// Our on-disk (and, later, on-the-wire between servers) encoding of
// transactions and snapshots, in jute primitives. The format is Quorate's
// own, versioned by the storage files that hold it.
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import { readAclList, writeAclList, type ACL } from './zk-records.js';
import type { LoggedTxn, Txn, TxnHeader } from '../core/zk/txn.js';
import { DataTree, type ZNode } from '../core/zk/data-tree.js';

const T = { createSession: 1, closeSession: 2, create: 3, delete: 4, setData: 5, setACL: 6, check: 7, multi: 8, error: 9 } as const;
const NAMES: Record<number, Txn['type']> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k as Txn['type']]));

function writeTxn(w: JuteWriter, t: Txn): void {
  w.writeInt(T[t.type]);
  switch (t.type) {
    case 'createSession': w.writeInt(t.timeoutMs).writeBuffer(t.passwd); return;
    case 'closeSession': return;
    case 'create':
      w.writeString(t.path).writeBuffer(t.data);
      writeAclList(w, t.acl);
      w.writeLong(t.ephemeralOwner).writeInt(t.parentCVersion).writeInt(t.op);
      return;
    case 'delete': w.writeString(t.path); return;
    case 'setData': w.writeString(t.path).writeBuffer(t.data).writeInt(t.version); return;
    case 'setACL': w.writeString(t.path); writeAclList(w, t.acl); w.writeInt(t.version); return;
    case 'check': w.writeString(t.path).writeInt(t.version); return;
    case 'multi': w.writeVector(t.txns, writeTxn); return;
    case 'error': w.writeInt(t.err); return;
  }
}

function copy(b: Buffer | null): Buffer | null {
  // Records are sliced from a large read buffer: copy so the tree does not pin it.
  return b === null ? null : Buffer.from(b);
}

function readTxn(r: JuteReader, depth = 0): Txn {
  const code = r.readInt();
  const type = NAMES[code];
  switch (type) {
    case 'createSession': return { type, timeoutMs: r.readInt(), passwd: copy(r.readBuffer()) ?? Buffer.alloc(0) };
    case 'closeSession': return { type };
    case 'create': {
      const path = r.readUstring();
      const data = copy(r.readBuffer());
      const acl = readAclList(r) ?? [];
      return { type, path, data, acl, ephemeralOwner: r.readLong(), parentCVersion: r.readInt(), op: r.readInt() };
    }
    case 'delete': return { type, path: r.readUstring() };
    case 'setData': return { type, path: r.readUstring(), data: copy(r.readBuffer()), version: r.readInt() };
    case 'setACL': return { type, path: r.readUstring(), acl: readAclList(r) ?? [], version: r.readInt() };
    case 'check': return { type, path: r.readUstring(), version: r.readInt() };
    case 'multi':
      if (depth > 0) throw new JuteError('nested multi transaction');
      return { type, txns: r.readVector((rr) => readTxn(rr, depth + 1)) ?? [] };
    case 'error': return { type, err: r.readInt() };
    default: throw new JuteError(`unknown transaction type ${code}`);
  }
}

export function encodeLoggedTxn(t: LoggedTxn, w: JuteWriter = new JuteWriter(128)): Buffer {
  w.writeLong(t.hdr.sessionId).writeInt(t.hdr.cxid).writeLong(t.hdr.zxid).writeLong(BigInt(t.hdr.timeMs));
  writeTxn(w, t.txn);
  return w.toBuffer();
}

export function decodeLoggedTxn(buf: Buffer): LoggedTxn {
  const r = new JuteReader(buf);
  const hdr: TxnHeader = { sessionId: r.readLong(), cxid: r.readInt(), zxid: r.readLong(), timeMs: Number(r.readLong()) };
  const txn = readTxn(r);
  if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes after transaction 0x${hdr.zxid.toString(16)}`);
  return { hdr, txn };
}

/** One line for `quorate quorum dump`. */
export function describeTxn(t: LoggedTxn): string {
  const h = t.hdr;
  const base = `zxid=0x${h.zxid.toString(16)} session=0x${BigInt.asUintN(64, h.sessionId).toString(16)} cxid=${h.cxid} time=${new Date(h.timeMs).toISOString()}`;
  return `${base} ${summarize(t.txn)}`;
}

function summarize(t: Txn): string {
  switch (t.type) {
    case 'create': return `create ${t.path} (${t.data?.length ?? 0} bytes${t.ephemeralOwner !== 0n ? `, owner 0x${BigInt.asUintN(64, t.ephemeralOwner).toString(16)}` : ''})`;
    case 'delete': return `delete ${t.path}`;
    case 'setData': return `setData ${t.path} version=${t.version} (${t.data?.length ?? 0} bytes)`;
    case 'setACL': return `setACL ${t.path} aversion=${t.version}`;
    case 'check': return `check ${t.path} version=${t.version}`;
    case 'createSession': return `createSession timeout=${t.timeoutMs}ms`;
    case 'closeSession': return 'closeSession';
    case 'error': return `error ${t.err}`;
    case 'multi': return `multi [${t.txns.map(summarize).join('; ')}]`;
  }
}

// ---- snapshots ----

const SNAP_FORMAT = 1;

/** The whole tree and its sessions at lastZxid. Taken between transactions, so it holds nothing uncommitted. */
export function serializeTree(tree: DataTree): Buffer {
  const w = new JuteWriter(1 << 20);
  w.writeInt(SNAP_FORMAT).writeLong(tree.lastZxid);
  w.writeInt(tree.sessions.size);
  for (const [id, s] of tree.sessions) w.writeLong(id).writeInt(s.timeoutMs).writeBuffer(s.passwd);
  // ACL lists are shared by many nodes: write each distinct list once.
  const aclIndex = new Map<ACL[], number>();
  const aclLists: ACL[][] = [];
  for (const [, n] of tree.walk()) {
    if (!aclIndex.has(n.acl)) { aclIndex.set(n.acl, aclLists.length); aclLists.push(n.acl); }
  }
  w.writeInt(aclLists.length);
  for (const a of aclLists) writeAclList(w, a);
  w.writeInt(tree.nodes.size);
  for (const [path, n] of tree.walk()) {
    w.writeString(path).writeBuffer(n.data).writeInt(aclIndex.get(n.acl)!)
      .writeLong(n.czxid).writeLong(n.mzxid).writeLong(n.pzxid)
      .writeLong(BigInt(n.ctimeMs)).writeLong(BigInt(n.mtimeMs))
      .writeInt(n.version).writeInt(n.cversion).writeInt(n.aversion).writeLong(n.ephemeralOwner);
  }
  return w.toBuffer();
}

export function deserializeTree(buf: Buffer): DataTree {
  const r = new JuteReader(buf);
  const format = r.readInt();
  if (format !== SNAP_FORMAT) throw new JuteError(`snapshot format ${format} is not ${SNAP_FORMAT}`);
  const tree = new DataTree();
  tree.lastZxid = r.readLong();
  const nSessions = r.readInt();
  for (let i = 0; i < nSessions; i++) {
    const id = r.readLong();
    tree.sessions.set(id, { timeoutMs: r.readInt(), passwd: copy(r.readBuffer()) ?? Buffer.alloc(0) });
  }
  const nAcls = r.readInt();
  const acls: ACL[][] = [];
  for (let i = 0; i < nAcls; i++) acls.push(readAclList(r) ?? []);
  const nNodes = r.readInt();
  for (let i = 0; i < nNodes; i++) {
    const path = r.readUstring();
    const data = copy(r.readBuffer());
    const aclAt = r.readInt();
    if (aclAt < 0 || aclAt >= acls.length) throw new JuteError(`snapshot node ${path} refers to ACL list ${aclAt} of ${acls.length}`);
    const n: ZNode = {
      data, acl: acls[aclAt], czxid: r.readLong(), mzxid: r.readLong(), pzxid: r.readLong(),
      ctimeMs: Number(r.readLong()), mtimeMs: Number(r.readLong()),
      version: r.readInt(), cversion: r.readInt(), aversion: r.readInt(), ephemeralOwner: r.readLong(),
      children: new Set(),
    };
    if (path !== '/' && !tree.get(path.slice(0, Math.max(1, path.lastIndexOf('/'))))) {
      throw new JuteError(`snapshot node ${path} comes before its parent`);
    }
    tree.loadNode(path, n);
  }
  if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes in snapshot`);
  return tree;
}
