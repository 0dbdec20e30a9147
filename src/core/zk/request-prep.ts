// Turns a write request into a transaction, or an error transaction, before
// it is logged (ZooKeeper's PrepRequestProcessor). It validates against the
// committed tree plus the changes of transactions still in flight, so two
// pipelined creates of one path cannot both pass. Checks run in ZooKeeper's
// order so that clients see the same error code for the same request.
import { CreateMode, Err, MAX_TTL_MS, OpCode, Perm, CONTAINER_EPHEMERAL_OWNER, createModeInfo, ttlEphemeralOwner, ttlOfEphemeralOwner } from '../../proto/zk-constants.js';
import type { ACL, Id, MultiOp, ZkRequest } from '../../proto/zk-records.js';
import { checkAcl, fixupAcl } from './acl.js';
import type { DataTree } from './data-tree.js';
import { parentOf, pathProblem } from './path.js';
import { txnBytesUpperBound, type Txn } from './txn.js';
import { ZK_LIMITS } from '../../limits.js';
import { applyReconfig, formatMembership, parseMembership, votersOf, type MemberLine, type Membership } from './membership.js';

interface ChangeRecord {
  zxid: bigint;
  /** null: the node is deleted by an in-flight transaction. */
  node: { version: number; cversion: number; aversion: number; ephemeralOwner: bigint; childCount: number; acl: ACL[] } | null;
}

/**
 * Request data arrives as a slice of the socket's read buffer, which may hold
 * many other frames: a znode keeping that slice would pin the whole buffer.
 */
function ownCopy(data: Buffer | null): Buffer | null {
  return data === null ? null : Buffer.from(data);
}

class PrepError extends Error {
  constructor(readonly err: number) { super(`prep error ${err}`); }
}

export interface PrepContext {
  sessionId: bigint;
  ids: readonly Id[];
}

export class RequestPrep {
  private readonly pending = new Map<string, ChangeRecord>();
  /** The records in the order they were made (zxid order), so applied() drops them without a scan. */
  private readonly madeOrder: [string, ChangeRecord][] = [];
  private madeHead = 0;
  /** Distinct ACL lists, shared by every node that has one (ZooKeeper's ACL cache): less memory, smaller snapshots. */
  private readonly acls = new Map<string, ACL[]>();
  /** Records replaced during a multi, to restore them if the multi fails. */
  private undo: [string, ChangeRecord | undefined][] | null = null;

  constructor(private readonly tree: DataTree, private readonly opts: { skipAcl: boolean; ttlEnabled: boolean }) {}

  /** Drop in-flight records made by transactions up to zxid, now in the tree. */
  applied(zxid: bigint): void {
    const q = this.madeOrder;
    while (this.madeHead < q.length && q[this.madeHead][1].zxid <= zxid) {
      const [p, r] = q[this.madeHead++];
      // A later transaction may have replaced the record: keep that one.
      if (this.pending.get(p) === r) this.pending.delete(p);
    }
    if (this.madeHead > 1024 && this.madeHead * 2 > q.length) {
      q.splice(0, this.madeHead);
      this.madeHead = 0;
    }
  }

  /** The one shared copy of an ACL list equal to acl. */
  internAcl(acl: ACL[]): ACL[] {
    let key = '';
    for (const a of acl) key += `${a.perms}\u0000${a.id.scheme}\u0000${a.id.id}\u0001`;
    const known = this.acls.get(key);
    if (known) return known;
    if (this.acls.size >= 100_000) this.acls.clear();
    this.acls.set(key, acl);
    return acl;
  }

  /** Forget all in-flight changes (a leader stepping down). */
  reset(): void {
    this.pending.clear();
    this.madeOrder.length = 0;
    this.madeHead = 0;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  prepare(ctx: PrepContext, req: ZkRequest, zxid: bigint): Txn {
    try {
      if (req.type === OpCode.multi) return this.prepareMulti(ctx, req.ops, zxid);
      return this.prepareOne(ctx, req, zxid);
    } catch (e) {
      if (e instanceof PrepError) return { type: 'error', err: e.err };
      throw e;
    }
  }

  /**
   * A reconfig (on the leader): the new membership, written to /zookeeper/config with the
   * transaction's zxid as its version. Refused: without WRITE on /zookeeper/config (the super
   * user by default), with a stale curConfigId (BADVERSION), while another is in flight
   * (RECONFIGINPROGRESS), malformed (BADARGUMENTS), or when a server joining, or a quorum of the
   * new voters, is not connected and in sync with the leader (NEWCONFIGNOQUORUM).
   */
  prepareReconfig(ctx: PrepContext, req: Extract<ZkRequest, { type: typeof OpCode.reconfig }>, zxid: bigint, synced: ReadonlySet<number>): Txn {
    const path = '/zookeeper/config';
    try {
      if (this.pending.has(path)) throw new PrepError(Err.RECONFIGINPROGRESS);
      const node = this.record(path);
      this.checkAcl(node.acl, Perm.WRITE, ctx);
      const current = parseMembership(this.tree.get(path)?.data?.toString('utf8') ?? '');
      if (current === null) throw new PrepError(Err.UNIMPLEMENTED);
      if (req.curConfigId !== -1n && req.curConfigId !== current.version) throw new PrepError(Err.BADVERSION);
      let members: Map<number, MemberLine>;
      try {
        members = applyReconfig(current, req);
      } catch {
        throw new PrepError(Err.BADARGUMENTS);
      }
      const next: Membership = { version: zxid, members };
      const voters = votersOf(next);
      if (voters.length === 0) throw new PrepError(Err.BADARGUMENTS);
      // Stricter than ZooKeeper (a quorum of the new voters in sync): every server joining must be
      // connected and in sync too, or the membership would count on a server nobody has seen.
      const joining = [...members.keys()].filter((id) => !current.members.has(id));
      if (joining.some((id) => !synced.has(id)) || voters.filter((v) => synced.has(v)).length * 2 <= voters.length) {
        throw new PrepError(Err.NEWCONFIGNOQUORUM);
      }
      const version = (node.version + 1) | 0;
      this.setRecord(path, { zxid, node: { ...node, version } });
      return { type: 'setData', path, data: Buffer.from(formatMembership(next)), version };
    } catch (e) {
      if (e instanceof PrepError) return { type: 'error', err: e.err };
      throw e;
    }
  }

  /** deleteContainer, made by the server for empty containers and expired TTL nodes. */
  prepareContainerDelete(path: string, zxid: bigint): Txn {
    try {
      const rec = this.record(path);
      if (rec.childCount > 0) throw new PrepError(Err.NOTEMPTY);
      const owner = rec.ephemeralOwner;
      if (owner !== CONTAINER_EPHEMERAL_OWNER && ttlOfEphemeralOwner(owner) === null) throw new PrepError(Err.BADVERSION);
      this.recordDelete(path, zxid);
      return { type: 'delete', path };
    } catch (e) {
      if (e instanceof PrepError) return { type: 'error', err: e.err };
      throw e;
    }
  }

  private prepareMulti(ctx: PrepContext, ops: MultiOp[], zxid: bigint): Txn {
    this.undo = [];
    const txns: Txn[] = [];
    let failedAt = -1;
    let failErr = 0;
    let bytes = 64;
    try {
      for (let i = 0; i < ops.length; i++) {
        try {
          const t = this.prepareOne(ctx, ops[i] as ZkRequest, zxid);
          bytes += txnBytesUpperBound(t);
          if (bytes > ZK_LIMITS.txn_bytes_max) throw new PrepError(Err.BADARGUMENTS);
          txns.push(t);
        } catch (e) {
          if (!(e instanceof PrepError)) throw e;
          failedAt = i;
          failErr = e.err;
          break;
        }
      }
      if (failedAt < 0) return { type: 'multi', txns };
      for (const [p, r] of this.undo.reverse()) {
        if (r === undefined) this.pending.delete(p);
        else this.pending.set(p, r);
      }
      return {
        type: 'multi',
        txns: ops.map((_, i) => ({ type: 'error', err: i < failedAt ? Err.OK : i === failedAt ? failErr : Err.RUNTIMEINCONSISTENCY })),
      };
    } finally {
      this.undo = null;
    }
  }

  private setRecord(path: string, rec: ChangeRecord): void {
    this.undo?.push([path, this.pending.get(path)]);
    this.pending.set(path, rec);
    this.madeOrder.push([path, rec]);
  }

  /** The node as it will be once every in-flight transaction applies; throws NONODE. */
  private record(path: string): NonNullable<ChangeRecord['node']> {
    const r = this.pending.get(path);
    if (r !== undefined) {
      if (r.node === null) throw new PrepError(Err.NONODE);
      return r.node;
    }
    const n = this.tree.get(path);
    if (!n) throw new PrepError(Err.NONODE);
    return { version: n.version, cversion: n.cversion, aversion: n.aversion, ephemeralOwner: n.ephemeralOwner, childCount: n.children.size, acl: n.acl };
  }

  private exists(path: string): boolean {
    const r = this.pending.get(path);
    if (r !== undefined) return r.node !== null;
    return this.tree.get(path) !== undefined;
  }

  private checkAcl(acl: readonly ACL[], perm: number, ctx: PrepContext): void {
    if (!checkAcl(acl, perm, ctx.ids, this.opts.skipAcl)) throw new PrepError(Err.NOAUTH);
  }

  private validPath(path: string, sequential = false): void {
    if (pathProblem(path, sequential) !== null) throw new PrepError(Err.BADARGUMENTS);
  }

  private recordDelete(path: string, zxid: bigint): void {
    const parentPath = parentOf(path);
    const parent = this.record(parentPath);
    this.setRecord(parentPath, { zxid, node: { ...parent, childCount: parent.childCount - 1 } });
    this.setRecord(path, { zxid, node: null });
  }

  private prepareOne(ctx: PrepContext, req: ZkRequest, zxid: bigint): Txn {
    switch (req.type) {
      case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
        return this.prepareCreate(ctx, req, zxid);
      case OpCode.delete: {
        this.validPath(req.path);
        if (req.path === '/') throw new PrepError(Err.BADARGUMENTS);
        const parent = this.record(parentOf(req.path));
        this.checkAcl(parent.acl, Perm.DELETE, ctx);
        const node = this.record(req.path);
        if (req.version !== -1 && req.version !== node.version) throw new PrepError(Err.BADVERSION);
        if (node.childCount > 0) throw new PrepError(Err.NOTEMPTY);
        this.recordDelete(req.path, zxid);
        return { type: 'delete', path: req.path };
      }
      case OpCode.setData: {
        this.validPath(req.path);
        const node = this.record(req.path);
        this.checkAcl(node.acl, Perm.WRITE, ctx);
        if (req.version !== -1 && req.version !== node.version) throw new PrepError(Err.BADVERSION);
        const version = (node.version + 1) | 0;
        this.setRecord(req.path, { zxid, node: { ...node, version } });
        return { type: 'setData', path: req.path, data: ownCopy(req.data), version };
      }
      case OpCode.setACL: {
        this.validPath(req.path);
        const node = this.record(req.path);
        const fixed = fixupAcl(req.acl, ctx.ids);
        if (fixed === null) throw new PrepError(Err.INVALIDACL);
        const acl = this.internAcl(fixed);
        this.checkAcl(node.acl, Perm.ADMIN, ctx);
        if (req.version !== -1 && req.version !== node.aversion) throw new PrepError(Err.BADVERSION);
        const version = (node.aversion + 1) | 0;
        this.setRecord(req.path, { zxid, node: { ...node, aversion: version, acl } });
        return { type: 'setACL', path: req.path, acl, version };
      }
      case OpCode.check: {
        this.validPath(req.path);
        const node = this.record(req.path);
        this.checkAcl(node.acl, Perm.READ, ctx);
        if (req.version !== -1 && req.version !== node.version) throw new PrepError(Err.BADVERSION);
        return { type: 'check', path: req.path, version: node.version };
      }
      default:
        throw new PrepError(Err.UNIMPLEMENTED);
    }
  }

  private prepareCreate(ctx: PrepContext, req: Extract<ZkRequest, { type: 1 | 15 | 19 | 21 }>, zxid: bigint): Txn {
    const mode = createModeInfo(req.flags);
    if (mode === null) throw new PrepError(Err.BADARGUMENTS);
    const isContainer = mode.container || req.type === OpCode.createContainer;
    const ttl = req.type === OpCode.createTTL ? req.ttl : -1n;
    if (mode.ttl && !this.opts.ttlEnabled) throw new PrepError(Err.UNIMPLEMENTED);
    if (mode.ttl ? ttl <= 0n || ttl > MAX_TTL_MS : ttl >= 0n) throw new PrepError(Err.BADARGUMENTS);
    if (req.type === OpCode.createContainer && req.flags !== CreateMode.CONTAINER) throw new PrepError(Err.BADARGUMENTS);
    this.validPath(req.path, mode.sequential);
    if (req.path === '/' && !mode.sequential) throw new PrepError(Err.BADARGUMENTS);
    const fixed = fixupAcl(req.acl, ctx.ids);
    if (fixed === null) throw new PrepError(Err.INVALIDACL);
    const acl = this.internAcl(fixed);
    const parentPath = parentOf(mode.sequential && req.path.endsWith('/') ? req.path + 'x' : req.path);
    const parent = this.record(parentPath);
    this.checkAcl(parent.acl, Perm.CREATE, ctx);
    let path = req.path;
    if (mode.sequential) path += String(parent.cversion).padStart(10, '0');
    this.validPath(path);
    if (this.exists(path)) throw new PrepError(Err.NODEEXISTS);
    const owner = parent.ephemeralOwner;
    if (owner !== 0n && owner !== CONTAINER_EPHEMERAL_OWNER && ttlOfEphemeralOwner(owner) === null) {
      throw new PrepError(Err.NOCHILDRENFOREPHEMERALS);
    }
    const parentCVersion = (parent.cversion + 1) | 0;
    const ephemeralOwner = isContainer ? CONTAINER_EPHEMERAL_OWNER
      : mode.ttl ? ttlEphemeralOwner(ttl)
        : mode.ephemeral ? ctx.sessionId : 0n;
    this.setRecord(parentPath, { zxid, node: { ...parent, cversion: parentCVersion, childCount: parent.childCount + 1 } });
    this.setRecord(path, { zxid, node: { version: 0, cversion: 0, aversion: 0, ephemeralOwner, childCount: 0, acl } });
    return { type: 'create', path, data: ownCopy(req.data), acl, ephemeralOwner, parentCVersion, op: req.type };
  }
}
