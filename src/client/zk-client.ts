// The ZooKeeper client API used by the controller, the CLI, the benchmarks
// and the tests. Works against Apache ZooKeeper (3.6+) and our quorum server.
//
//   const zk = new ZkClient({ connectString: '127.0.0.1:2181/app', sessionTimeoutMs: 10_000 });
//   await zk.connect();
//   await zk.create('/lock', 'me', { mode: CreateMode.EPHEMERAL });
//   await zk.close();
//
// Paths are client paths (the chroot is added and stripped here). Every
// failure is a ZkError with ZooKeeper's code; see session.ts for what
// happens to requests across disconnects, expiry and close.
import { AddWatchMode, Err, KeeperState, OpCode, WatcherType } from '../proto/zk-constants.js';
import type { ACL, MultiOp, MultiResult, Stat, ZkResponse } from '../proto/zk-records.js';
import { badArguments, ZkError } from './errors.js';
import { buildCreate, checkAcl, checkVersion, toData, type CreateOptions, type Data } from './ops.js';
import { toClientPath, toServerPath, validatePath } from './path.js';
import { ZkSession, type Reply, type ZkClientOptions } from './session.js';
import { removedEventType, type Watcher, type WatchKind } from './watch-manager.js';
import { WatchStream, type WatchStreamKind } from './watch-stream.js';

type Body<T extends ZkResponse['type']> = Extract<ZkResponse, { type: T }>;

export class ZkClient extends ZkSession {
  constructor(opts: ZkClientOptions) {
    super(opts);
  }

  // ---- helpers ----

  /** Validate a client path and give the server path. */
  private sp(path: string, sequential = false): string {
    validatePath(path, sequential);
    return toServerPath(this.chroot, path);
  }

  private cp(serverPath: string): string {
    return toClientPath(this.chroot, serverPath) ?? serverPath;
  }

  private body<T extends ZkResponse['type']>(r: Reply, type: T, path?: string): Body<T> {
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
    if (r.body === null || r.body.type !== type) throw new ZkError(Err.MARSHALLINGERROR, path, `expected a ${type} reply`);
    return r.body as Body<T>;
  }

  private static checkWatcher(w: Watcher | undefined): void {
    if (w !== undefined && typeof w !== 'function') throw badArguments('watcher must be a function');
  }

  /** Register `watcher` under `kind` at reply time when the reply's err is `whenErr`. */
  private arm(path: string, watcher: Watcher | undefined, onOk: WatchKind, onNoNode?: WatchKind): ((err: number) => void) | undefined {
    if (watcher === undefined) return undefined;
    return (err) => {
      if (err === Err.OK) this.watches.add(onOk, path, watcher);
      else if (err === Err.NONODE && onNoNode !== undefined) this.watches.add(onNoNode, path, watcher);
    };
  }

  // ---- znodes ----

  /** Create a znode; resolves to its path (with the sequence suffix for sequential modes). */
  async create(path: string, data: Data = null, opts: CreateOptions = {}): Promise<string> {
    const req = buildCreate(path, data, opts, false);
    const r = await this.submit({ ...req, path: toServerPath(this.chroot, path) }, path);
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
    const b = r.body;
    if (b?.type === 'path' || b?.type === 'pathStat') return this.cp(b.path);
    throw new ZkError(Err.MARSHALLINGERROR, path, 'expected a path reply');
  }

  /** Create a znode; resolves to its path and stat. */
  async create2(path: string, data: Data = null, opts: CreateOptions = {}): Promise<{ path: string; stat: Stat }> {
    const req = buildCreate(path, data, opts, true);
    const b = this.body(await this.submit({ ...req, path: toServerPath(this.chroot, path) }, path), 'pathStat', path);
    return { path: this.cp(b.path), stat: b.stat };
  }

  async delete(path: string, version = -1): Promise<void> {
    const r = await this.submit({ type: OpCode.delete, path: this.sp(path), version: checkVersion(version) }, path);
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
  }

  /** The node's stat, or null when it does not exist. A watcher is armed either way. */
  async exists(path: string, watcher?: Watcher): Promise<Stat | null> {
    ZkClient.checkWatcher(watcher);
    const r = await this.submit({ type: OpCode.exists, path: this.sp(path), watch: watcher !== undefined }, path, this.arm(path, watcher, 'data', 'exists'));
    if (r.err === Err.NONODE) return null;
    return this.body(r, 'stat', path).stat;
  }

  /** data is null when the node holds a null buffer (distinct from an empty one). */
  async getData(path: string, watcher?: Watcher): Promise<{ data: Buffer | null; stat: Stat }> {
    ZkClient.checkWatcher(watcher);
    const r = await this.submit({ type: OpCode.getData, path: this.sp(path), watch: watcher !== undefined }, path, this.arm(path, watcher, 'data'));
    const b = this.body(r, 'data', path);
    return { data: b.data === null ? null : Buffer.from(b.data), stat: b.stat };
  }

  async setData(path: string, data: Data, version = -1): Promise<Stat> {
    const r = await this.submit({ type: OpCode.setData, path: this.sp(path), data: toData(data), version: checkVersion(version) }, path);
    return this.body(r, 'stat', path).stat;
  }

  async getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    ZkClient.checkWatcher(watcher);
    const r = await this.submit({ type: OpCode.getChildren, path: this.sp(path), watch: watcher !== undefined }, path, this.arm(path, watcher, 'child'));
    return this.body(r, 'children', path).children;
  }

  async getChildren2(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> {
    ZkClient.checkWatcher(watcher);
    const r = await this.submit({ type: OpCode.getChildren2, path: this.sp(path), watch: watcher !== undefined }, path, this.arm(path, watcher, 'child'));
    const b = this.body(r, 'children2', path);
    return { children: b.children, stat: b.stat };
  }

  /** Number of descendants of path (ZooKeeper 3.6+). */
  async getAllChildrenNumber(path: string): Promise<number> {
    return this.body(await this.submit({ type: OpCode.getAllChildrenNumber, path: this.sp(path) }, path), 'number', path).n;
  }

  /** This session's ephemeral nodes under prefix (ZooKeeper 3.6+), as client paths. */
  async getEphemerals(prefix = '/'): Promise<string[]> {
    const r = await this.submit({ type: OpCode.getEphemerals, path: this.sp(prefix) }, prefix);
    return this.body(r, 'strings', prefix).strings.map((p) => this.cp(p));
  }

  async getACL(path: string): Promise<{ acl: ACL[]; stat: Stat }> {
    const b = this.body(await this.submit({ type: OpCode.getACL, path: this.sp(path) }, path), 'acl', path);
    return { acl: b.acl, stat: b.stat };
  }

  async setACL(path: string, acl: ACL[], version = -1): Promise<Stat> {
    const r = await this.submit({ type: OpCode.setACL, path: this.sp(path), acl: checkAcl(acl), version: checkVersion(version) }, path);
    return this.body(r, 'stat', path).stat;
  }

  /** Create path and any missing parents (PERSISTENT, or opts for the last one); NODEEXISTS on the way is fine. */
  async ensurePath(path: string, data: Data = null, opts: CreateOptions = {}): Promise<void> {
    validatePath(path);
    const parts = path.split('/').filter((s) => s !== '');
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      try {
        await (i === parts.length ? this.create(p, data, opts) : this.create(p, null));
      } catch (e) {
        if (!(e instanceof ZkError) || e.code !== Err.NODEEXISTS) throw e;
      }
    }
  }

  // ---- transactions ----

  private serverOp(op: MultiOp): MultiOp {
    if (op === null || typeof op !== 'object' || typeof op.path !== 'string') throw badArguments('multi ops must come from Op.*');
    const sequential = 'flags' in op && (op.flags === 2 || op.flags === 3 || op.flags === 6);
    return { ...op, path: this.sp(op.path, sequential) };
  }

  private clientResult(r: MultiResult): MultiResult {
    return 'path' in r ? { ...r, path: this.cp(r.path) } : r;
  }

  /**
   * Run ops atomically. On failure throws a ZkError with the first failing op's
   * code and path, and `.results` (ops before it OK, it its code, after it RUNTIMEINCONSISTENCY).
   */
  async multi(ops: MultiOp[]): Promise<MultiResult[]> {
    if (!Array.isArray(ops)) throw badArguments('multi takes an array of ops');
    for (const op of ops) {
      if (op?.type === OpCode.getData || op?.type === OpCode.getChildren) throw badArguments('read ops belong in multiRead', op.path);
    }
    const r = await this.submit({ type: OpCode.multi, ops: ops.map((o) => this.serverOp(o)) });
    const results = this.body(r, 'multi').results.map((x) => this.clientResult(x));
    const bad = results.findIndex((x) => x.type === OpCode.error && x.err !== Err.OK);
    if (bad >= 0) {
      const failed = results[bad] as Extract<MultiResult, { type: typeof OpCode.error }>;
      const e = new ZkError(failed.err, ops[bad]?.path, `multi op ${bad} failed`);
      e.results = results;
      throw e;
    }
    return results;
  }

  /** Several getData / getChildren in one round trip; each op answers on its own (an error result does not fail the rest). */
  async multiRead(ops: MultiOp[]): Promise<MultiResult[]> {
    if (!Array.isArray(ops)) throw badArguments('multiRead takes an array of ops');
    for (const op of ops) {
      if (op?.type !== OpCode.getData && op?.type !== OpCode.getChildren) throw badArguments('multiRead takes only Op.getData and Op.getChildren', op?.path);
    }
    const r = await this.submit({ type: OpCode.multiRead, ops: ops.map((o) => this.serverOp(o)) });
    return this.body(r, 'multi').results.map((x) => this.clientResult(x));
  }

  /** Wait until the server this client talks to has caught up with the leader (as of now). */
  async sync(path = '/'): Promise<void> {
    const r = await this.submit({ type: OpCode.sync, path: this.sp(path) }, path);
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
  }

  /**
   * Changes the quorum's membership (ZooKeeper's reconfig): servers to add (`server.N=...` entries)
   * and ids to remove, or the whole new membership; `fromConfigId` (-1: any) guards against a
   * concurrent change. Resolves with the new /zookeeper/config text and its stat.
   */
  async reconfig(change: { add?: string[]; remove?: number[]; members?: string[] }, fromConfigId = -1n): Promise<{ config: string; stat: Stat }> {
    const r = await this.submit({
      type: OpCode.reconfig, joiningServers: (change.add ?? []).join(','), leavingServers: (change.remove ?? []).join(','),
      newMembers: (change.members ?? []).join(','), curConfigId: fromConfigId,
    }, '/zookeeper/config');
    const b = this.body(r, 'config', '/zookeeper/config');
    return { config: b.data.toString('utf8'), stat: b.stat };
  }

  // ---- auth ----

  /** Add an identity to this session's connection, e.g. addAuth('digest', 'user:password'). Replayed on reconnect. */
  async addAuth(scheme: string, auth: string | Buffer): Promise<void> {
    if (typeof scheme !== 'string' || scheme === '') throw badArguments('addAuth needs a scheme');
    await this.sendAuth(scheme, typeof auth === 'string' ? Buffer.from(auth, 'utf8') : auth);
  }

  /** The identities the server holds for this connection (ZooKeeper 3.8+/3.9: opcode 107; older servers answer UNIMPLEMENTED). */
  async whoAmI(): Promise<{ authScheme: string; user: string }[]> {
    return this.body(await this.submit({ type: OpCode.whoAmI }), 'whoAmI').clients;
  }

  // ---- watches ----

  /** A persistent (or persistent-recursive) watch: fires for every event and is not removed by firing. */
  async addWatch(path: string, mode: number, watcher: Watcher): Promise<void> {
    if (typeof watcher !== 'function') throw badArguments('addWatch needs a watcher function', path);
    if (mode !== AddWatchMode.PERSISTENT && mode !== AddWatchMode.PERSISTENT_RECURSIVE) throw badArguments(`unknown addWatch mode ${mode}`, path);
    const kind: WatchKind = mode === AddWatchMode.PERSISTENT ? 'persistent' : 'persistentRecursive';
    const r = await this.submit({ type: OpCode.addWatch, path: this.sp(path), mode }, path, this.arm(path, watcher, kind));
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
  }

  /**
   * Remove watchers of watcherType (WatcherType.*) on path: `watcher` alone, or all of them.
   * NOWATCHER when none matches. Unless `local`, the server drops its watch once no
   * local watcher of that type is left. Each removed watcher gets a *WatchRemoved event.
   */
  async removeWatches(path: string, watcherType: number, watcher?: Watcher, local = false): Promise<void> {
    validatePath(path);
    const found = this.watches.matching(path, watcherType, watcher);
    if (found.length === 0) throw new ZkError(Err.NOWATCHER, path);
    if (!local) {
      // The server holds one watch per type and path: drop it only when no local watcher of that type is left.
      const serverTypes = new Set(found.map((f) => serverWatcherType(f.kind)));
      for (const m of this.watches.matching(path, WatcherType.Any)) {
        if (!found.some((f) => f.kind === m.kind && f.watcher === m.watcher)) serverTypes.delete(serverWatcherType(m.kind));
      }
      const othersLeft = this.watches.matching(path, WatcherType.Any).length > found.length;
      for (const t of serverTypes) {
        let r = await this.submit({ type: OpCode.removeWatches, path: this.sp(path), watcherType: t }, path);
        if ((t === WatcherType.Persistent || t === WatcherType.PersistentRecursive) && LEGACY_REMOVE_ERRORS.has(r.err)) {
          // ZooKeeper before 3.9 knows only Children/Data/Any here: Any would also drop this
          // session's other watches on the path, so use it only when none is left locally;
          // otherwise the server keeps sending events that no local watcher takes.
          r = othersLeft ? { err: Err.OK, zxid: 0n, body: null } : await this.submit({ type: OpCode.removeWatches, path: this.sp(path), watcherType: WatcherType.Any }, path);
        }
        // NOWATCHER: a one-shot watch fired on the server meanwhile; the local one goes anyway.
        if (r.err !== Err.OK && r.err !== Err.NOWATCHER) throw new ZkError(r.err, path);
      }
    }
    for (const { kind, watcher: w } of this.watches.remove(path, watcherType, watcher)) {
      this.callWatcher(w, { type: removedEventType(kind), state: KeeperState.SyncConnected, path });
    }
  }

  /**
   * Does the server hold a watch of watcherType on path for this session?
   * (ZooKeeper 3.8 answers MARSHALLINGERROR for the Persistent* types, which it does not know here.)
   */
  async checkWatches(path: string, watcherType: number): Promise<boolean> {
    const r = await this.submit({ type: OpCode.checkWatches, path: this.sp(path), watcherType }, path);
    if (r.err === Err.NOWATCHER) return false;
    if (r.err !== Err.OK) throw new ZkError(r.err, path);
    return true;
  }

  /**
   * Watch events as an async iterator. 'persistent' / 'persistentRecursive' use
   * addWatch; 'data' (exists watch: created, changed, deleted) and 'children'
   * re-arm the one-shot watch after each event (changes between an event and
   * the re-arm fold into one event: re-read state after each). Leaving the
   * loop (break/return) removes the watch. The iteration throws SESSIONEXPIRED
   * when the session expires, and ends when the client closes.
   */
  watch(path: string, kind: WatchStreamKind): WatchStream {
    validatePath(path);
    return new WatchStream(this, path, kind, this.rt);
  }
}

/** What a pre-3.9 server answers to removeWatches with WatcherType Persistent / PersistentRecursive. */
const LEGACY_REMOVE_ERRORS = new Set<number>([Err.MARSHALLINGERROR, Err.UNIMPLEMENTED, Err.BADARGUMENTS]);

function serverWatcherType(kind: WatchKind): number {
  switch (kind) {
    case 'child': return WatcherType.Children;
    case 'persistent': return WatcherType.Persistent;
    case 'persistentRecursive': return WatcherType.PersistentRecursive;
    default: return WatcherType.Data;
  }
}
