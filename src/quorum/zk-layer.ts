// The ZooKeeper layer (ServerCore) on the replication peer: the one place
// that says how the two meet, for a quorum server and for the simulator.
// A transaction the layer logs is proposed; its answers to clients leave
// through the host; what it says to the leader or to learners goes through
// the peer, a sync's answer only after the COMMIT of what was proposed
// before it; a commit is applied once (the leader's own already is); the
// role follows the peer's state, a leader's zxids starting after its epoch's
// first counter.
import type { DataTree } from '../core/zk/data-tree.js';
import type { Outbound, ServerCore } from '../core/zk/server-core.js';
import type { PeerState } from '../core/zab/messages.js';
import type { QuorumPeer } from '../core/zab/quorum-peer.js';
import { makeZxid } from '../core/zab/zxid.js';
import { decodeLoggedTxn, deserializeTree, encodeLoggedTxn, serializeTree } from '../proto/txn-codec.js';
import { decodeFromLeader, decodeToLeader, encodeFromLeader, encodeToLeader } from '../proto/zk-quorum-codec.js';
import type { ReplicatedLayer } from './peer-pump.js';

/** What the layer needs of the server that hosts it. */
export interface ZkLayerHost {
  /** The layer's core now (a snapshot's install replaces it). */
  core(): ServerCore;
  /** Makes the core that serves from a leader's snapshot's tree on, and makes it the host's. */
  replaceCore(tree: DataTree, zxid: bigint): ServerCore;
  deliver(out: Outbound[]): void;
  closeClient(connId: number, reason: string): void;
  /** A peer's message this layer cannot read: it is dropped. */
  malformed(from: number, err: Error): void;
  /** A transaction the layer logged was proposed as `proposed` (null: this server is no longer an established leader). */
  proposed?(zxid: bigint, proposed: bigint | null, bytes: number): void;
  /** After a commit was applied. */
  committed?(zxid: bigint): void;
  /** Latency tracing (bench/tools/latency-trace): where a request is. */
  mark?(what: 'prop' | 'reply' | 'fwd' | 'apply' | 'app', zxid?: bigint): void;
}

export class ZkLayer implements ReplicatedLayer {
  /** @param firstCounter the counter of an epoch's first zxid (1; simulations start near 2^32). */
  constructor(private readonly host: ZkLayerHost, private readonly firstCounter = 1n) {}

  committed(zxid: bigint, payload: Uint8Array): void {
    this.host.mark?.('apply', zxid);
    const core = this.host.core();
    if (!core.committedOwn(zxid)) core.committedTxn(decodeLoggedTxn(Buffer.from(payload)));
    this.host.committed?.(zxid);
  }

  fromPeer(from: number, body: Uint8Array, now: number): void {
    this.host.mark?.('app');
    const core = this.host.core();
    try {
      if (core.serverRole === 'leader') core.fromLearner(from, decodeToLeader(Buffer.from(body)), now);
      else core.fromLeader(decodeFromLeader(Buffer.from(body)), now);
    } catch (err) {
      this.host.malformed(from, err as Error);
    }
  }

  roleChanged(state: PeerState, serving: boolean, epoch: number, now: number): void {
    const role = !serving ? 'down' : state === 'leading' ? 'leader' : 'learner';
    this.host.core().setRole(role, now, role === 'leader' ? makeZxid(epoch, this.firstCounter - 1n) : undefined);
  }

  snapshot(): Uint8Array { return serializeTree(this.host.core().tree); }

  install(zxid: bigint, snapshot: Uint8Array, now: number): void {
    this.host.replaceCore(deserializeTree(Buffer.from(snapshot)), zxid).setRole('down', now);
  }

  flush(peer: QuorumPeer, now: number): boolean {
    const host = this.host;
    const out = host.core().drain();
    for (const t of out.log) {
      const payload = encodeLoggedTxn(t);
      const zxid = peer.propose(payload, now);
      host.mark?.('prop', t.hdr.zxid);
      host.proposed?.(t.hdr.zxid, zxid, payload.length);
    }
    if (out.send.length > 0) { host.mark?.('reply'); host.deliver(out.send); }
    for (const c of out.close) host.closeClient(c.connId, c.reason);
    if (out.toLeader.length > 0) host.mark?.('fwd');
    for (const m of out.toLeader) peer.sendToLeader(encodeToLeader(m));
    for (const m of out.toLearners) {
      // A sync's answer goes right after the COMMIT of what was proposed before it.
      if (m.msg.kind === 'synced') peer.sendToLearnerAfter(m.serverId, m.msg.zxid, encodeFromLeader(m.msg));
      else peer.sendToLearner(m.serverId, encodeFromLeader(m.msg));
    }
    return out.log.length + out.send.length + out.close.length + out.toLeader.length + out.toLearners.length > 0;
  }
}
