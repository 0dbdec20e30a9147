// A simulated server's ZooKeeper layer: the quorum server's own ZkLayer and
// ServerCore over the real QuorumPeer, with simulated clients as its host's
// connections (zk-workload.ts's model clients, or the real ZkClient over the
// simulated client network of sim-client-net.ts).
import { createHash } from 'node:crypto';
import { DataTree } from '../core/zk/data-tree.js';
import { ServerCore, type Outbound } from '../core/zk/server-core.js';
import type { PeerState } from '../core/zab/messages.js';
import type { QuorumPeer } from '../core/zab/quorum-peer.js';
import { serializeTree } from '../proto/txn-codec.js';
import { ZkLayer } from '../quorum/zk-layer.js';
import type { SimApp, SimAppContext } from './sim-app.js';

/** Not a real digest: the simulation has no auth, the core only needs a pure function. */
const fakeSha1 = (t: string): string => Buffer.from(t).toString('base64');

/** Where a server's answers to its clients go, and its closes of their connections. */
export interface ServerHooks {
  deliver(server: number, out: Outbound): void;
  closed(server: number, connId: number): void;
}

/** A simulated server's ZooKeeper layer: the quorum server's own ZkLayer, with the simulated clients as its host's connections. */
export class ZkApp implements SimApp {
  core!: ServerCore;
  private readonly layer: ZkLayer;

  /** @param onCommitted sees every transaction this server applies (after it applied it). */
  constructor(private readonly ctx: SimAppContext, private readonly hooks: ServerHooks, firstCounter: bigint, problem: (what: string) => void,
    private readonly onCommitted?: (zxid: bigint, payload: Uint8Array) => void) {
    const closeAll = () => { if (this.core !== undefined) for (const c of this.core.connections()) hooks.closed(ctx.id, c.connId); };
    this.layer = new ZkLayer({
      core: () => this.core,
      replaceCore: (tree) => { closeAll(); this.core = this.newCore(tree); return this.core; },
      deliver: (out) => { for (const m of out) hooks.deliver(ctx.id, m); },
      closeClient: (connId) => hooks.closed(ctx.id, connId),
      malformed: (from, err) => problem(`server ${ctx.id} could not read a message from server ${from}: ${err.message}`),
    }, firstCounter);
  }

  private newCore(tree: DataTree): ServerCore {
    return new ServerCore({
      serverId: this.ctx.id, minSessionTimeoutMs: 200, maxSessionTimeoutMs: 2000, skipAcl: false, superDigest: null,
      sha1Base64: fakeSha1, containerCheckIntervalMs: 1000, ttlEnabled: true, watchesPerSessionMax: 1000, authIdsPerConnectionMax: 8,
    }, this.ctx.now(), tree);
  }

  committed(zxid: bigint, payload: Uint8Array): void { this.layer.committed(zxid, payload); this.onCommitted?.(zxid, payload); }
  fromPeer(from: number, body: Uint8Array, now: number): void { this.layer.fromPeer(from, body, now); }
  roleChanged(state: PeerState, serving: boolean, epoch: number, now: number): void { this.layer.roleChanged(state, serving, epoch, now); }
  snapshot(): Uint8Array { return this.layer.snapshot(); }
  install(zxid: bigint, snapshot: Uint8Array, now: number): void { this.layer.install(zxid, snapshot, now); }
  flush(peer: QuorumPeer, now: number): boolean { return this.layer.flush(peer, now); }

  restore(bytes: Uint8Array | null): void {
    if (bytes === null) this.layer.install(0n, serializeTree(new DataTree()), this.ctx.now());
    else this.layer.install(0n, bytes, this.ctx.now());
  }

  tick(): void { this.core.tick(this.ctx.now()); }

  crashed(): void {
    for (const c of this.core.connections()) this.hooks.closed(this.ctx.id, c.connId);
  }

  /** Every znode with its stat and data, and the sessions, in path order: servers at one zxid must agree on all of it. */
  stateDigest(): { zxid: bigint; digest: string } {
    const tree = this.core.tree;
    const h = createHash('sha1');
    for (const path of [...tree.nodes.keys()].sort()) {
      const n = tree.nodes.get(path)!;
      h.update(`${path}\0${n.data?.toString('hex') ?? '-'}\0${n.czxid},${n.mzxid},${n.pzxid},${n.ctimeMs},${n.mtimeMs},${n.version},${n.cversion},${n.aversion},${n.ephemeralOwner},${[...n.children].sort().join('/')}\n`);
    }
    for (const id of [...tree.sessions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`s${id},${tree.sessions.get(id)!.timeoutMs}\n`);
    return { zxid: tree.lastZxid, digest: h.digest('hex') };
  }
}

