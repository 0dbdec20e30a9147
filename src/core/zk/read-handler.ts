// Reads are answered from the local tree at the moment they reach the head
// of their connection's queue, so a read after a write of the same session
// sees that write, and a watch armed by a read fires for any later change.
import { Err, EventType, KeeperState, OpCode, Perm, WatcherType } from '../../proto/zk-constants.js';
import type { Id, MultiResult, WatcherEvent, ZkRequest, ZkResponse } from '../../proto/zk-records.js';
import { checkAcl, redactDigests } from './acl.js';
import { type DataTree, statOf } from './data-tree.js';
import { pathProblem } from './path.js';
import { WatchBit } from './watches.js';

export interface ReadContext {
  connId: number;
  sessionId: bigint;
  ids: readonly Id[];
  skipAcl: boolean;
  /** Watch events to deliver to this connection before the reply (setWatches). */
  events: WatcherEvent[];
  /** Watches one connection may hold; past it new watches are not armed. */
  watchesMax: number;
}

export interface ReadResult { err: number; body?: ZkResponse }

const ok = (body: ZkResponse): ReadResult => ({ err: Err.OK, body });
const fail = (err: number): ReadResult => ({ err });

function sortedChildren(set: Set<string>): string[] {
  return [...set];
}

export function handleRead(tree: DataTree, ctx: ReadContext, req: ZkRequest): ReadResult {
  const allowed = (acl: Parameters<typeof checkAcl>[0], perm: number) => checkAcl(acl, perm, ctx.ids, ctx.skipAcl);
  const watch = (path: string, bit: number) => {
    if (tree.watches.countFor(ctx.connId) < ctx.watchesMax) tree.watches.add(path, ctx.connId, bit);
  };
  switch (req.type) {
    case OpCode.exists: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      const n = tree.get(req.path);
      if (req.watch) watch(req.path, WatchBit.DATA);
      return n ? ok({ type: 'stat', stat: statOf(n) }) : fail(Err.NONODE);
    }
    case OpCode.getData: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      const n = tree.get(req.path);
      if (!n) return fail(Err.NONODE);
      if (!allowed(n.acl, Perm.READ)) return fail(Err.NOAUTH);
      if (req.watch) watch(req.path, WatchBit.DATA);
      return ok({ type: 'data', data: n.data, stat: statOf(n) });
    }
    case OpCode.getChildren: case OpCode.getChildren2: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      const n = tree.get(req.path);
      if (!n) return fail(Err.NONODE);
      if (!allowed(n.acl, Perm.READ)) return fail(Err.NOAUTH);
      if (req.watch) watch(req.path, WatchBit.CHILD);
      const children = sortedChildren(n.children);
      return req.type === OpCode.getChildren ? ok({ type: 'children', children }) : ok({ type: 'children2', children, stat: statOf(n) });
    }
    case OpCode.getACL: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      const n = tree.get(req.path);
      if (!n) return fail(Err.NONODE);
      if (!allowed(n.acl, Perm.READ | Perm.ADMIN)) return fail(Err.NOAUTH);
      const acl = allowed(n.acl, Perm.ADMIN) ? n.acl : redactDigests(n.acl);
      return ok({ type: 'acl', acl, stat: statOf(n) });
    }
    case OpCode.getAllChildrenNumber: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      const n = tree.get(req.path);
      if (!n) return fail(Err.NONODE);
      if (!allowed(n.acl, Perm.READ)) return fail(Err.NOAUTH);
      return ok({ type: 'number', n: tree.countDescendants(req.path) });
    }
    case OpCode.getEphemerals: {
      const prefix = req.path;
      const mine = [...(tree.ephemerals.get(ctx.sessionId) ?? [])].filter((p) => prefix === '/' || p.startsWith(prefix)).sort();
      return ok({ type: 'strings', strings: mine });
    }
    case OpCode.multiRead: {
      const results: MultiResult[] = [];
      for (const op of req.ops) {
        const r = handleRead(tree, ctx, { type: op.type as typeof OpCode.getData, path: op.path, watch: false });
        if (r.err !== Err.OK) results.push({ type: OpCode.error, err: r.err });
        else if (r.body?.type === 'data') results.push({ type: OpCode.getData, data: r.body.data, stat: r.body.stat });
        else if (r.body?.type === 'children') results.push({ type: OpCode.getChildren, children: r.body.children });
      }
      return ok({ type: 'multi', results });
    }
    case OpCode.whoAmI:
      // Authenticated identities first, then the address, in the order ZooKeeper 3.8 lists them.
      return ok({ type: 'whoAmI', clients: [...ctx.ids.filter((i) => i.scheme !== 'ip'), ...ctx.ids.filter((i) => i.scheme === 'ip')]
        .map((i) => ({ authScheme: i.scheme, user: i.scheme === 'digest' ? i.id.replace(/:.*/, '') : i.id })) });
    case OpCode.addWatch: {
      if (pathProblem(req.path) !== null) return fail(Err.BADARGUMENTS);
      if (req.mode !== 0 && req.mode !== 1) return fail(Err.BADARGUMENTS);
      watch(req.path, req.mode === 1 ? WatchBit.RECURSIVE : WatchBit.PERSISTENT);
      // ZooKeeper answers addWatch with an ErrorResponse(0) body; the Java client reads it.
      return ok({ type: 'number', n: 0 });
    }
    case OpCode.checkWatches: case OpCode.removeWatches: {
      const bits = watcherTypeBits(req.watcherType);
      if (bits === 0) return fail(Err.BADARGUMENTS);
      const present = tree.watches.has(req.path, ctx.connId, bits);
      if (!present) return fail(Err.NOWATCHER);
      if (req.type === OpCode.removeWatches) tree.watches.remove(req.path, ctx.connId, bits);
      return ok({ type: 'empty' });
    }
    case OpCode.setWatches: case OpCode.setWatches2: {
      const rel = req.relativeZxid;
      const fire = (type: number, path: string) => ctx.events.push({ type, state: KeeperState.SyncConnected, path });
      for (const p of req.dataWatches) {
        const n = tree.get(p);
        if (!n) fire(EventType.NodeDeleted, p);
        else if (n.mzxid > rel) fire(EventType.NodeDataChanged, p);
        else watch(p, WatchBit.DATA);
      }
      for (const p of req.existWatches) {
        const n = tree.get(p);
        if (n) fire(EventType.NodeCreated, p);
        else watch(p, WatchBit.DATA);
      }
      for (const p of req.childWatches) {
        const n = tree.get(p);
        if (!n) fire(EventType.NodeDeleted, p);
        else if (n.pzxid > rel) fire(EventType.NodeChildrenChanged, p);
        else watch(p, WatchBit.CHILD);
      }
      for (const p of req.persistentWatches) watch(p, WatchBit.PERSISTENT);
      for (const p of req.persistentRecursiveWatches) watch(p, WatchBit.RECURSIVE);
      return ok({ type: 'empty' });
    }
    default:
      return fail(Err.UNIMPLEMENTED);
  }
}

function watcherTypeBits(t: number): number {
  switch (t) {
    case WatcherType.Children: return WatchBit.CHILD;
    case WatcherType.Data: return WatchBit.DATA;
    case WatcherType.Any: return WatchBit.CHILD | WatchBit.DATA | WatchBit.PERSISTENT | WatchBit.RECURSIVE;
    case WatcherType.Persistent: return WatchBit.PERSISTENT;
    case WatcherType.PersistentRecursive: return WatchBit.RECURSIVE;
    default: return 0;
  }
}
