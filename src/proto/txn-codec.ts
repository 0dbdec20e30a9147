// Our on-disk (and, later, on-the-wire between servers) encoding of
// transactions and snapshots, in jute primitives. The format is Quorate's
// own, versioned by the storage files that hold it.
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import { readAclList, writeAclList, type ACL } from './zk-records.js';
import type { LoggedTxn, Txn, TxnHeader } from '../core/zk/txn.js';
import { DataTree, NO_CHILDREN, type ZNode } from '../core/zk/data-tree.js';

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
  const hdr: TxnHeader = { sessionId: r.readLong(), cxid: r.readInt(), zxid: BigInt.asUintN(64, r.readLong()), timeMs: Number(r.readLong()) };
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
//
// Format 2 is a fuzzy snapshot, as ZooKeeper's: it is written in steps while
// transactions keep being applied, so it holds the sessions as of zxid Z0 (the
// tree's lastZxid when it started) and each node as it was when its turn came,
// at Z0 or later. Loading it and replaying the log after Z0 gives the exact
// tree, because every apply is idempotent against such a capture (see
// DataTree.createNode). Only committed transactions ever reach the tree, so
// a snapshot never holds an uncommitted one.
//
//   int 2 | long Z0 | int sessions | sessions x (long id | int timeoutMs | buffer passwd)
//   then records, each an int tag and its body:
//     ACL  (1) aclList                       defines ACL list #k (k = ACL records before it)
//     NODE (2) ustring path | buffer data | int aclIndex | long czxid, mzxid, pzxid, ctime, mtime
//              | int version, cversion, aversion | long ephemeralOwner
//     EPH  (3) long session | int n | n x ustring path    ephemerals of a session at Z0 (after the nodes)
//     END  (0) int nodes | int aclLists | int ephemerals  counts of what came before
//   and nothing after END.
// Nodes come parent before child: a depth-first walk that takes a node's
// children when it visits the node. Children created later are not in the
// snapshot (the replay creates them); nodes deleted before their turn are
// skipped. The ephemerals at Z0 let the loader find those a replayed
// closeSession must still delete (DataTree.loadGoneEphemeral).

const SNAP_FORMAT_V1 = 1;
const SNAP_FORMAT = 2;
const REC_END = 0;
const REC_ACL = 1;
const REC_NODE = 2;
const REC_EPHEMERALS = 3;
/** Encoded bytes per chunk; the last steps join the chunks into the payload. */
const CHUNK_BYTES = 1 << 20;
/** Joining a byte costs about 1/4000 of encoding a node: a step's node budget buys this many bytes of joining. */
const JOIN_BYTES_PER_NODE = 4096;
const TWO_32 = 0x1_0000_0000;

/**
 * Encodes a snapshot a few nodes at a time; pure (the caller decides when to
 * step). After the walk, steps join the encoded chunks into one buffer, so
 * that no single call copies the whole payload.
 */
export class SnapshotWriter {
  /** Z0: the snapshot is the state as of this zxid (plus, fuzzily, some later changes). */
  readonly zxid: bigint;
  private readonly chunks: Buffer[] = [];
  private w = new JuteWriter(CHUNK_BYTES + (CHUNK_BYTES >> 2));
  private readonly pending: string[] = ['/'];
  private readonly aclByRef = new Map<ACL[], number>();
  private readonly aclByValue = new Map<string, number>();
  private nodes = 0;
  /** Each session's ephemeral paths at Z0, written after the nodes from the end of the array. */
  private readonly ephemerals: [bigint, string[]][];
  private ephemeralsWritten = 0;
  /** Set when the walk is over: the payload being joined, and how much of it is. */
  private out: Buffer | null = null;
  private joined = 0;

  constructor(private readonly tree: DataTree) {
    this.zxid = tree.lastZxid;
    const w = this.w;
    w.writeInt(SNAP_FORMAT).writeLong(this.zxid).writeInt(tree.sessions.size);
    for (const [id, s] of tree.sessions) w.writeLong(id).writeInt(s.timeoutMs).writeBuffer(s.passwd);
    this.ephemerals = [...tree.ephemerals].map(([id, paths]) => [id, [...paths]]);
  }

  get nodesWritten(): number { return this.nodes; }

  /**
   * Capture up to `budgetNodes` more nodes as they are now (then write as many
   * ephemeral paths, then join up to budgetNodes x JOIN_BYTES_PER_NODE bytes); true when done.
   */
  step(budgetNodes: number): boolean {
    const { pending, tree } = this;
    let k = 0;
    for (; k < budgetNodes && pending.length > 0; k++) {
      const path = pending.pop()!;
      const n = tree.nodes.get(path);
      if (!n) continue; // deleted since its parent was visited: the replay deletes it anyway
      this.writeNode(path, n);
      const prefix = path === '/' ? '/' : path + '/';
      for (const c of n.children) pending.push(prefix + c);
      if (this.w.length >= CHUNK_BYTES) this.seal();
    }
    while (k < budgetNodes && this.ephemerals.length > 0) {
      const [id, paths] = this.ephemerals[this.ephemerals.length - 1];
      const n = Math.min(paths.length, budgetNodes - k);
      this.w.writeInt(REC_EPHEMERALS).writeLong(id).writeInt(n);
      for (let i = 0; i < n; i++) this.w.writeString(paths.pop()!);
      if (paths.length === 0) this.ephemerals.pop();
      this.ephemeralsWritten += n;
      k += Math.max(1, n);
      if (this.w.length >= CHUNK_BYTES) this.seal();
    }
    if (pending.length > 0 || this.ephemerals.length > 0) return false;
    if (!this.out) {
      this.w.writeInt(REC_END).writeInt(this.nodes).writeInt(this.aclByValue.size).writeInt(this.ephemeralsWritten);
      this.chunks.push(this.w.toBuffer());
      if (this.chunks.length === 1) {
        this.out = this.chunks.pop()!; // a small tree: nothing to join
        return true;
      }
      this.out = Buffer.allocUnsafe(this.chunks.reduce((n, c) => n + c.length, 0));
      this.chunks.reverse(); // joined from the end of the array
    }
    for (let bytes = budgetNodes * JOIN_BYTES_PER_NODE; bytes > 0 && this.chunks.length > 0;) {
      const c = this.chunks.pop()!;
      c.copy(this.out, this.joined);
      this.joined += c.length;
      bytes -= c.length;
    }
    return this.chunks.length === 0;
  }

  /** The whole payload, once step() has returned true. */
  finish(): Buffer {
    if (!this.out || this.chunks.length > 0) throw new Error(`SnapshotWriter.finish before step() returned true (${this.pending.length} nodes still to visit)`);
    return this.out;
  }

  private seal(): void {
    this.chunks.push(this.w.toBuffer());
    this.w = new JuteWriter(CHUNK_BYTES + (CHUNK_BYTES >> 2));
  }

  private aclOf(acl: ACL[]): number {
    let at = this.aclByRef.get(acl);
    if (at !== undefined) return at;
    // Equal lists are often distinct arrays (each replayed transaction has its own): define each value once.
    const key = JSON.stringify(acl.map((a) => [a.perms, a.id.scheme, a.id.id]));
    at = this.aclByValue.get(key);
    if (at === undefined) {
      at = this.aclByValue.size;
      this.aclByValue.set(key, at);
      this.w.writeInt(REC_ACL);
      writeAclList(this.w, acl);
    }
    this.aclByRef.set(acl, at);
    return at;
  }

  private writeNode(path: string, n: ZNode): void {
    const acl = this.aclOf(n.acl);
    const w = this.w;
    w.writeInt(REC_NODE).writeString(path).writeBuffer(n.data).writeInt(acl)
      .writeLong(n.czxid).writeLong(n.mzxid).writeLong(n.pzxid);
    writeMs(w, n.ctimeMs);
    writeMs(w, n.mtimeMs);
    w.writeInt(n.version).writeInt(n.cversion).writeInt(n.aversion).writeLong(n.ephemeralOwner);
    this.nodes++;
  }
}

/** The same bytes as writeLong(BigInt(ms)) for any safe integer, without a bigint per field. */
function writeMs(w: JuteWriter, ms: number): void {
  const hi = Math.floor(ms / TWO_32);
  w.writeInt(hi).writeInt(ms - hi * TWO_32);
}

function readMs(r: JuteReader): number {
  const hi = r.readInt();
  return hi * TWO_32 + (r.readInt() >>> 0);
}

/** The whole tree at once (tests, `quorum dump`); the server steps a SnapshotWriter instead. */
export function serializeTree(tree: DataTree): Buffer {
  const w = new SnapshotWriter(tree);
  while (!w.step(Number.MAX_SAFE_INTEGER));
  return w.finish();
}

/** Refuses a truncated or malformed payload with a JuteError that says where. */
export function deserializeTree(buf: Buffer): DataTree {
  const r = new JuteReader(buf);
  let where = 'header';
  try {
    const format = r.readInt();
    if (format !== SNAP_FORMAT && format !== SNAP_FORMAT_V1) throw new JuteError(`format ${format} is not ${SNAP_FORMAT}`);
    const tree = new DataTree();
    tree.lastZxid = BigInt.asUintN(64, r.readLong());
    const nSessions = r.readInt();
    if (nSessions < 0 || nSessions * 16 > r.remaining) throw new JuteError(`session count ${nSessions} does not fit in ${r.remaining} bytes`);
    for (let i = 0; i < nSessions; i++) {
      const id = r.readLong();
      tree.sessions.set(id, { timeoutMs: r.readInt(), passwd: copy(r.readBuffer()) ?? Buffer.alloc(0) });
    }
    // The nodes made by new DataTree() (/, /zookeeper...) are in every snapshot, once.
    const premade = new Set(tree.nodes.keys());
    const acls: ACL[][] = [];
    const ephemeralsAtZ0: [bigint, string][] = [];
    let nodes = 0;
    const readNode = (): void => {
      const path = r.readUstring();
      where = `node ${nodes + 1} (${path})`;
      const data = copy(r.readBuffer());
      const aclAt = r.readInt();
      if (aclAt < 0 || aclAt >= acls.length) throw new JuteError(`refers to ACL list ${aclAt} of ${acls.length}`);
      const n: ZNode = {
        data, acl: acls[aclAt], czxid: BigInt.asUintN(64, r.readLong()), mzxid: BigInt.asUintN(64, r.readLong()), pzxid: BigInt.asUintN(64, r.readLong()),
        ctimeMs: readMs(r), mtimeMs: readMs(r),
        version: r.readInt(), cversion: r.readInt(), aversion: r.readInt(), ephemeralOwner: r.readLong(),
        children: NO_CHILDREN,
      };
      if (path[0] !== '/' || (path.length > 1 && path.endsWith('/'))) throw new JuteError('malformed path');
      if (tree.nodes.has(path) && !premade.delete(path)) throw new JuteError('appears twice');
      if (path !== '/' && !tree.get(path.slice(0, Math.max(1, path.lastIndexOf('/'))))) throw new JuteError('comes before its parent');
      tree.loadNode(path, n);
      nodes++;
    };
    if (format === SNAP_FORMAT_V1) {
      // Written before snapshots were fuzzy: all ACL lists, then a counted list of nodes.
      for (let i = 0, k = r.readInt(); i < k; i++) acls.push(readAclList(r) ?? []);
      for (let i = 0, k = r.readInt(); i < k; i++) readNode();
    } else {
      for (;;) {
        where = `record after ${nodes} nodes at offset ${r.position}`;
        if (r.remaining === 0) throw new JuteError('truncated: no end marker');
        const tag = r.readInt();
        if (tag === REC_NODE) readNode();
        else if (tag === REC_ACL) {
          const acl = readAclList(r);
          if (acl === null) throw new JuteError('null ACL list');
          acls.push(acl);
        } else if (tag === REC_EPHEMERALS) {
          const id = r.readLong();
          const n = r.readInt();
          if (n < 0 || n * 4 > r.remaining) throw new JuteError(`ephemeral count ${n} does not fit in ${r.remaining} bytes`);
          for (let i = 0; i < n; i++) ephemeralsAtZ0.push([id, r.readUstring()]);
        } else if (tag === REC_END) {
          const want = [r.readInt(), r.readInt(), r.readInt()];
          const got = [nodes, acls.length, ephemeralsAtZ0.length];
          if (want.some((x, i) => x !== got[i])) {
            throw new JuteError(`end marker counts ${want.join('/')} nodes/ACL lists/ephemerals, read ${got.join('/')}`);
          }
          break;
        } else throw new JuteError(`unknown record tag ${tag}`);
      }
      // An ephemeral at Z0 not captured as such was deleted before the walk reached it.
      for (const [id, path] of ephemeralsAtZ0) if (tree.get(path)?.ephemeralOwner !== id) tree.loadGoneEphemeral(path, id);
    }
    where = 'end';
    if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes`);
    return tree;
  } catch (e) {
    if (e instanceof JuteError) throw new JuteError(`snapshot ${where}: ${e.message}`);
    throw e;
  }
}
