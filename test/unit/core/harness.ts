// Drives a ServerCore by hand: connections, requests, a manual "fsync"
// (commit), and a clock. Records everything sent, per connection.
import crypto from 'node:crypto';
import { ServerCore, type Outbound } from '../../../src/core/zk/server-core.js';
import type { ZkRequest } from '../../../src/proto/zk-records.js';
import { DataTree } from '../../../src/core/zk/data-tree.js';
import type { LoggedTxn } from '../../../src/core/zk/txn.js';

export const sha1Base64 = (t: string) => crypto.createHash('sha1').update(t).digest('base64');

export class CoreHarness {
  core: ServerCore;
  now = 1_700_000_000_000;
  sent: Outbound[] = [];
  closed: { connId: number; reason: string }[] = [];
  logged: LoggedTxn[] = [];
  private nextConn = 1;

  constructor(opts: Partial<ConstructorParameters<typeof ServerCore>[0]> = {}, tree?: DataTree) {
    this.core = new ServerCore({
      serverId: 1, minSessionTimeoutMs: 4000, maxSessionTimeoutMs: 40000, skipAcl: false, superDigest: null,
      sha1Base64, containerCheckIntervalMs: 1000, ttlEnabled: true, watchesPerSessionMax: 1000, authIdsPerConnectionMax: 8,
      ...opts,
    }, this.now, tree);
    if (tree) this.core.recovered(this.now);
  }

  private pump(): void {
    const o = this.core.drain();
    this.logged.push(...o.log);
    this.sent.push(...o.send);
    this.closed.push(...o.close);
  }

  /** Open a connection and establish a new session; commits the createSession. */
  session(timeoutMs = 10000): { connId: number; sessionId: bigint; passwd: Buffer } {
    const connId = this.nextConn++;
    this.core.connectionOpened(connId, '127.0.0.1');
    this.core.connect(connId, { protocolVersion: 0, lastZxidSeen: 0n, timeOut: timeoutMs, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: false }, this.now, Buffer.alloc(16, connId));
    this.pump();
    this.commit();
    const resp = this.sent.find((s) => s.connId === connId && s.kind === 'connect');
    if (!resp || resp.kind !== 'connect') throw new Error('no connect response');
    return { connId, sessionId: resp.resp.sessionId, passwd: resp.resp.passwd };
  }

  reattach(sessionId: bigint, passwd: Buffer, lastZxidSeen = 0n): number {
    const connId = this.nextConn++;
    this.core.connectionOpened(connId, '127.0.0.1');
    this.core.connect(connId, { protocolVersion: 0, lastZxidSeen, timeOut: 10000, sessionId, passwd, readOnly: false }, this.now, Buffer.alloc(16));
    this.pump();
    return connId;
  }

  send(connId: number, xid: number, req: ZkRequest): void {
    this.core.request(connId, xid, req, this.now);
    this.pump();
  }

  /** Everything logged so far is durable. */
  commit(): void {
    this.core.committed(this.core.proposedZxid);
    this.pump();
  }

  tick(advanceMs: number): void {
    this.now += advanceMs;
    this.core.tick(this.now);
    this.pump();
  }

  repliesTo(connId: number) {
    return this.sent.filter((s): s is Extract<Outbound, { kind: 'reply' }> => s.connId === connId && s.kind === 'reply');
  }

  eventsTo(connId: number) {
    return this.sent.filter((s): s is Extract<Outbound, { kind: 'event' }> => s.connId === connId && s.kind === 'event');
  }

  /** Send and commit, returning the reply. */
  call(connId: number, req: ZkRequest, xid = 1000 + this.sent.length) {
    this.send(connId, xid, req);
    this.commit();
    const r = this.repliesTo(connId).filter((x) => x.xid === xid).at(-1);
    if (!r) throw new Error(`no reply to xid ${xid}`);
    return r;
  }
}
