// The znode tree and the sessions that own ephemerals: the state every
// server holds and changes only by applying committed transactions in zxid
// order. Validation happens before (RequestPrep); apply trusts its input, so
// replaying the log or following a leader reaches the same tree.
import { EventType, OpCode, Err, CONTAINER_EPHEMERAL_OWNER, ttlOfEphemeralOwner } from '../../proto/zk-constants.js';
import type { ACL, MultiResult, Stat } from '../../proto/zk-records.js';
import { OPEN_ACL_UNSAFE, READ_ACL_UNSAFE } from './acl.js';
import { baseName, joinPath, parentOf } from './path.js';
import type { Txn, TxnHeader } from './txn.js';
import { WatchTable, type WatchFire } from './watches.js';
import { invariantFailed } from '../invariant.js';

export interface ZNode {
  data: Buffer | null;
  acl: ACL[];
  czxid: bigint;
  mzxid: bigint;
  pzxid: bigint;
  ctimeMs: number;
  mtimeMs: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  children: Set<string>;
}

export interface SessionRecord { timeoutMs: number; passwd: Buffer }

export interface ApplyResult {
  err: number;
  path?: string;
  stat?: Stat;
  results?: MultiResult[];
}

export function statOf(n: ZNode): Stat {
  return {
    czxid: n.czxid, mzxid: n.mzxid, ctime: BigInt(n.ctimeMs), mtime: BigInt(n.mtimeMs),
    version: n.version, cversion: n.cversion, aversion: n.aversion,
    ephemeralOwner: clientEphemeralOwner(n.ephemeralOwner), dataLength: n.data?.length ?? 0,
    numChildren: n.children.size, pzxid: n.pzxid,
  };
}

/** Clients see 0 for containers and TTL nodes, whose owner field only encodes their kind (as ZooKeeper). */
function clientEphemeralOwner(owner: bigint): bigint {
  return owner === CONTAINER_EPHEMERAL_OWNER || ttlOfEphemeralOwner(owner) !== null ? 0n : owner;
}

/** Leaf znodes (most of them) share this empty set; a node gets a set of its own with its first child. Never add to it. */
export const NO_CHILDREN: Set<string> = new Set<string>();

function addChild(n: ZNode, name: string): void {
  if (n.children === NO_CHILDREN) n.children = new Set();
  n.children.add(name);
}

function newNode(data: Buffer | null, acl: ACL[], zxid: bigint, timeMs: number, ephemeralOwner: bigint): ZNode {
  return {
    data, acl, czxid: zxid, mzxid: zxid, pzxid: zxid, ctimeMs: timeMs, mtimeMs: timeMs,
    version: 0, cversion: 0, aversion: 0, ephemeralOwner, children: NO_CHILDREN,
  };
}

export class DataTree {
  readonly nodes = new Map<string, ZNode>();
  readonly sessions = new Map<bigint, SessionRecord>();
  readonly ephemerals = new Map<bigint, Set<string>>();
  readonly containers = new Set<string>();
  readonly ttls = new Set<string>();
  readonly watches = new WatchTable();
  lastZxid = 0n;
  /** Sum of data bytes, for mntr's approximate_data_size. */
  dataBytes = 0;
  /**
   * Only while replaying the log over a fuzzy snapshot: ephemerals that their
   * sessions owned at the snapshot's zxid but whose nodes were gone (deleted,
   * maybe re-created by another owner) when the snapshot reached them. Their
   * closeSession, replayed, must still move the parent's pzxid (ZOOKEEPER-3145);
   * their delete or closeSession in the log, always there, clears them.
   */
  private readonly goneEphemerals = new Map<string, bigint>();

  constructor() {
    const root = newNode(Buffer.alloc(0), OPEN_ACL_UNSAFE, 0n, 0, 0n);
    this.nodes.set('/', root);
    this.addSystemNode('/zookeeper', OPEN_ACL_UNSAFE);
    this.addSystemNode('/zookeeper/quota', OPEN_ACL_UNSAFE);
    this.addSystemNode('/zookeeper/config', READ_ACL_UNSAFE);
  }

  private addSystemNode(path: string, acl: ACL[]): void {
    this.nodes.set(path, newNode(Buffer.alloc(0), acl, 0n, 0, 0n));
    addChild(this.nodes.get(parentOf(path))!, baseName(path));
  }

  /**
   * The quorum's membership, as ZooKeeper shows it in /zookeeper/config (server.N lines and
   * version=): set by the server from its configuration, not a transaction.
   */
  setConfigData(data: Buffer): void {
    const n = this.nodes.get('/zookeeper/config')!;
    this.dataBytes += data.length - (n.data?.length ?? 0);
    n.data = data;
  }

  get(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  /** Insert a node as read from a snapshot (parents come first in snapshot order). */
  loadNode(path: string, n: ZNode): void {
    const existing = this.nodes.get(path);
    if (existing) n.children = existing.children;
    this.nodes.set(path, n);
    this.dataBytes += n.data?.length ?? 0;
    const parent = path === '/' ? undefined : this.nodes.get(parentOf(path));
    if (parent) addChild(parent, baseName(path));
    this.indexOwner(path, n.ephemeralOwner);
  }

  /** An ephemeral of `owner` at the snapshot's zxid that the snapshot did not capture as such (see goneEphemerals). */
  loadGoneEphemeral(path: string, owner: bigint): void {
    this.goneEphemerals.set(path, owner);
  }

  /** How many of those the replay has not met yet (0 once the log after the snapshot is replayed). */
  get goneEphemeralCount(): number { return this.goneEphemerals.size; }

  /**
   * After replay: marks still left mean the log lacked transactions that followed the snapshot.
   * Drop them, so that a later closeSession cannot delete a node someone else owns now; returns how many.
   */
  clearGoneEphemerals(): number {
    const n = this.goneEphemerals.size;
    this.goneEphemerals.clear();
    return n;
  }

  private indexOwner(path: string, owner: bigint): void {
    if (owner === 0n) return;
    if (owner === CONTAINER_EPHEMERAL_OWNER) this.containers.add(path);
    else if (ttlOfEphemeralOwner(owner) !== null) this.ttls.add(path);
    else {
      let s = this.ephemerals.get(owner);
      if (!s) this.ephemerals.set(owner, (s = new Set()));
      s.add(path);
    }
  }

  private unindexOwner(path: string, owner: bigint): void {
    if (owner === 0n) return;
    if (owner === CONTAINER_EPHEMERAL_OWNER) this.containers.delete(path);
    else if (ttlOfEphemeralOwner(owner) !== null) this.ttls.delete(path);
    else {
      const s = this.ephemerals.get(owner);
      s?.delete(path);
      if (s && s.size === 0) this.ephemerals.delete(owner);
    }
  }

  /** Apply one committed transaction; watch events go to fires. */
  apply(hdr: TxnHeader, txn: Txn, fires: WatchFire[]): ApplyResult {
    const r = this.applyOne(hdr, txn, fires);
    if (hdr.zxid > this.lastZxid) this.lastZxid = hdr.zxid;
    return r;
  }

  private applyOne(hdr: TxnHeader, txn: Txn, fires: WatchFire[]): ApplyResult {
    switch (txn.type) {
      case 'createSession':
        this.sessions.set(hdr.sessionId, { timeoutMs: txn.timeoutMs, passwd: txn.passwd });
        return { err: Err.OK };
      case 'closeSession': {
        const paths = [...(this.ephemerals.get(hdr.sessionId) ?? [])];
        for (const [p, owner] of this.goneEphemerals) if (owner === hdr.sessionId) paths.push(p);
        paths.sort();
        // Children before parents cannot occur (ephemerals have no children), but sort keeps replay deterministic.
        for (const p of paths) this.deleteNode(p, hdr.zxid, fires);
        // A closed (or expired) session owns nothing: its ephemerals (a controller's lock) went with it.
        const left = this.ephemerals.get(hdr.sessionId);
        if (left !== undefined && left.size > 0) invariantFailed('zk.closed-session-leaves-no-ephemeral', { sessionId: hdr.sessionId, zxid: hdr.zxid, ephemerals: [...left] });
        this.sessions.delete(hdr.sessionId);
        this.ephemerals.delete(hdr.sessionId);
        return { err: Err.OK };
      }
      case 'create': {
        const n = this.createNode(txn, hdr, fires);
        return { err: Err.OK, path: txn.path, stat: n ? statOf(n) : undefined };
      }
      case 'delete':
        return { err: this.deleteNode(txn.path, hdr.zxid, fires) ? Err.OK : Err.NONODE };
      case 'setData': {
        const n = this.nodes.get(txn.path);
        if (!n) return { err: Err.NONODE };
        this.dataBytes += (txn.data?.length ?? 0) - (n.data?.length ?? 0);
        n.data = txn.data;
        n.version = txn.version;
        n.mzxid = hdr.zxid;
        n.mtimeMs = hdr.timeMs;
        this.watches.trigger(txn.path, EventType.NodeDataChanged, fires);
        return { err: Err.OK, stat: statOf(n) };
      }
      case 'setACL': {
        const n = this.nodes.get(txn.path);
        if (!n) return { err: Err.NONODE };
        n.acl = txn.acl;
        n.aversion = txn.version;
        return { err: Err.OK, stat: statOf(n) };
      }
      case 'check': {
        const n = this.nodes.get(txn.path);
        return n ? { err: Err.OK, stat: statOf(n) } : { err: Err.NONODE };
      }
      case 'error':
        return { err: txn.err };
      case 'multi':
        return this.applyMulti(hdr, txn.txns, fires);
    }
  }

  private applyMulti(hdr: TxnHeader, txns: Txn[], fires: WatchFire[]): ApplyResult {
    const results: MultiResult[] = [];
    if (txns.some((t) => t.type === 'error')) {
      // Nothing is applied; each op reports as ZooKeeper does (0 before the failure, its code, then -2).
      for (const t of txns) results.push({ type: OpCode.error, err: t.type === 'error' ? t.err : Err.OK });
      return { err: Err.OK, results };
    }
    for (const t of txns) {
      const r = this.applyOne(hdr, t, fires);
      switch (t.type) {
        case 'create':
          results.push(t.op === OpCode.create ? { type: OpCode.create, path: t.path }
            : { type: t.op as typeof OpCode.create2, path: t.path, stat: r.stat! });
          break;
        case 'delete': results.push({ type: OpCode.delete }); break;
        case 'check': results.push({ type: OpCode.check }); break;
        case 'setData': results.push({ type: OpCode.setData, stat: r.stat! }); break;
        default: results.push({ type: OpCode.error, err: r.err }); break;
      }
    }
    return { err: Err.OK, results };
  }

  // Replaying the log over a fuzzy snapshot (one written while transactions
  // kept being applied, see SnapshotWriter) meets nodes captured after a
  // transaction that is replayed again: every apply below must reach the same
  // state whether or not its effect is already in the tree. In live operation
  // RequestPrep has validated the transaction, so these branches never run.

  private createNode(txn: Extract<Txn, { type: 'create' }>, hdr: TxnHeader, fires: WatchFire[]): ZNode | null {
    const parentPath = parentOf(txn.path);
    const parent = this.nodes.get(parentPath);
    if (!parent) return null;
    const bumpParent = txn.parentCVersion > parent.cversion;
    if (bumpParent) {
      // Also when the node exists already (captured after this create): ZooKeeper's setCversionPzxid.
      parent.cversion = txn.parentCVersion;
      parent.pzxid = hdr.zxid;
    }
    if (this.nodes.has(txn.path)) return null;
    const n = newNode(txn.data, txn.acl, hdr.zxid, hdr.timeMs, txn.ephemeralOwner);
    addChild(parent, baseName(txn.path));
    this.nodes.set(txn.path, n);
    this.dataBytes += txn.data?.length ?? 0;
    this.indexOwner(txn.path, txn.ephemeralOwner);
    this.watches.trigger(txn.path, EventType.NodeCreated, fires);
    this.watches.trigger(parentPath, EventType.NodeChildrenChanged, fires);
    return n;
  }

  private deleteNode(path: string, zxid: bigint, fires: WatchFire[]): boolean {
    if (this.goneEphemerals.size > 0) this.goneEphemerals.delete(path);
    const n = this.nodes.get(path);
    const parentPath = parentOf(path);
    const parent = this.nodes.get(parentPath);
    if (parent) {
      parent.children.delete(baseName(path));
      // Also when the node is gone already (captured after this delete).
      if (zxid > parent.pzxid) parent.pzxid = zxid;
    }
    if (!n) return false;
    // A node has children here only in replay, captured from a later incarnation
    // of this path: those children were created after this delete, and their
    // creates, replayed later, bring them back.
    if (n.children.size > 0) this.dropDescendants(path, n);
    this.nodes.delete(path);
    this.dataBytes -= n.data?.length ?? 0;
    this.unindexOwner(path, n.ephemeralOwner);
    this.watches.trigger(path, EventType.NodeDeleted, fires);
    this.watches.trigger(parentPath, EventType.NodeChildrenChanged, fires);
    return true;
  }

  private dropDescendants(path: string, n: ZNode): void {
    const stack: [string, ZNode][] = [[path, n]];
    while (stack.length > 0) {
      const [p, node] = stack.pop()!;
      for (const c of node.children) {
        const cp = joinPath(p, c);
        const child = this.nodes.get(cp);
        if (!child) continue;
        stack.push([cp, child]);
        this.nodes.delete(cp);
        this.dataBytes -= child.data?.length ?? 0;
        this.unindexOwner(cp, child.ephemeralOwner);
      }
      node.children = NO_CHILDREN;
    }
  }

  /** Number of descendants (getAllChildrenNumber). */
  countDescendants(path: string): number {
    const n = this.nodes.get(path);
    if (!n) return 0;
    let count = 0;
    const stack: string[] = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const node = this.nodes.get(p);
      if (!node) continue;
      for (const c of node.children) {
        count++;
        stack.push(joinPath(p, c));
      }
    }
    return count;
  }

  /** Paths in an order where a parent precedes its children (snapshots). */
  *walk(): Generator<[string, ZNode]> {
    const stack: string[] = ['/'];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const n = this.nodes.get(p);
      if (!n) continue;
      yield [p, n];
      for (const c of n.children) stack.push(joinPath(p, c));
    }
  }
}
