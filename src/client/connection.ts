// One TCP connection to one server: the connect handshake, framing, the
// queue of requests awaiting replies, pings and the read timeout. It knows
// nothing of reconnecting; the session (session.ts) makes a new Connection
// when this one closes.
//
// ZooKeeper answers a connection's requests strictly in order, so a reply
// must carry the xid at the head of the pending queue; anything else is a
// protocol error and the connection is dropped (as the Java client does).
// Pings (xid -2), notifications (-1) and auth replies (-4) are not queued.
import { JuteReader } from '../proto/jute.js';
import {
  decodeConnectResponse, encodeConnectRequest, readReplyHeader, readWatcherEvent,
  type ConnectRequest, type ConnectResponse, type ReplyHeader, type WatcherEvent,
} from '../proto/zk-records.js';
import { Err, OpCode, Xid } from '../proto/zk-constants.js';
import { connectionLoss, ZkError } from './errors.js';
import { encodeFrame, encodeRequestFrame, FrameDecoder } from './frame.js';
import { everyMs, nodeRuntime, type ClientRuntime, type ClientSocket, type ZkClientTls } from './runtime.js';

export type { ZkClientTls } from './runtime.js';

/** A request written to the socket, waiting for its reply. */
export interface Pending {
  xid: number;
  opType: number;
  /** Monotonic ms when written. */
  sentAtMs: number;
  /** Called synchronously, in wire order, with the reply. Must not throw. */
  complete(hdr: ReplyHeader, body: JuteReader): void;
  /** The connection closed (CONNECTIONLOSS) or the request timed out. Must not throw. */
  fail(err: ZkError): void;
}

export interface ConnectionEvents {
  notification(ev: WatcherEvent): void;
  authReply(err: number): void;
  /** A reply header carried a zxid > 0. */
  zxid(zxid: bigint): void;
  /** The connection is gone; every pending request has already failed. */
  closed(reason: string): void;
}

export interface ConnectionOptions {
  host: string;
  port: number;
  tls?: ZkClientTls | null;
  request: ConnectRequest;
  /** Bound on TCP connect + handshake. */
  handshakeTimeoutMs: number;
  /** A request unanswered for this long fails with REQUESTTIMEOUT and the connection is dropped. */
  requestTimeoutMs: number;
  events: ConnectionEvents;
  /** Clock, timers and sockets (default: Node's). */
  runtime?: ClientRuntime;
}

type Phase = 'handshake' | 'held' | 'open' | 'closed';

export class Connection {
  private readonly socket: ClientSocket;
  private readonly rt: ClientRuntime;
  private readonly decoder = new FrameDecoder();
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private phase: Phase = 'handshake';
  private held: Buffer[] = [];
  private outbox: Buffer[] = [];
  private flushScheduled = false;
  private timer: { stop(): void } | null = null;
  private lastRecvMs: number;
  private lastSendMs: number;
  private negotiatedTimeoutMs = 0;
  private handshake: { resolve(r: ConnectResponse): void; reject(e: Error): void } | null = null;
  /** Test hook: no pings and no read timeout, so the server sees an idle (dead) client. */
  pingsPaused = false;
  readonly remote: string;

  private constructor(private readonly opts: ConnectionOptions) {
    this.remote = `${opts.host}:${opts.port}`;
    this.rt = opts.runtime ?? nodeRuntime;
    this.lastRecvMs = this.lastSendMs = this.rt.now();
    this.socket = this.rt.connect(opts.host, opts.port, opts.tls ?? null, {
      ready: () => { this.socket.write(encodeFrame((w) => encodeConnectRequest(w, opts.request))); },
      data: (chunk) => this.onData(chunk),
      closed: (reason) => this.destroy(reason),
    });
  }

  /** Connect and handshake; bounded by handshakeTimeoutMs. Frames after the handshake are held until start(). */
  static open(opts: ConnectionOptions): Promise<{ conn: Connection; response: ConnectResponse }> {
    const conn = new Connection(opts);
    return new Promise((resolve, reject) => {
      const rt = conn.rt;
      const t = rt.setTimer(() => conn.destroy(`no handshake within ${opts.handshakeTimeoutMs} ms`), opts.handshakeTimeoutMs);
      conn.handshake = {
        resolve: (response) => { rt.clearTimer(t); resolve({ conn, response }); },
        reject: (e) => { rt.clearTimer(t); reject(e); },
      };
    });
  }

  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  get isOpen(): boolean {
    return this.phase === 'held' || this.phase === 'open';
  }

  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Begin normal operation with the negotiated session timeout: pings, read timeout, held frames. */
  start(negotiatedTimeoutMs: number): void {
    if (this.phase !== 'held') return;
    this.phase = 'open';
    this.negotiatedTimeoutMs = negotiatedTimeoutMs;
    const tickMs = Math.min(1000, Math.max(10, Math.floor(negotiatedTimeoutMs / 10)));
    this.timer = everyMs(this.rt, tickMs, () => this.tick(), true);
    const held = this.held;
    this.held = [];
    for (const f of held) {
      if (this.isClosed()) return;
      this.onFrame(f);
    }
  }

  /** Write a framed request; `p` (when given) waits for the reply in order. */
  send(frame: Buffer, p?: Pending): void {
    if (!this.isOpen) {
      p?.fail(connectionLoss('not connected'));
      return;
    }
    if (p !== undefined) {
      p.sentAtMs = this.rt.now();
      this.pending.push(p);
    }
    this.outbox.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.isOpen || this.outbox.length === 0) return;
    const out = this.outbox.length === 1 ? this.outbox[0] : Buffer.concat(this.outbox);
    this.outbox = [];
    this.lastSendMs = this.rt.now();
    this.socket.write(out);
  }

  private tick(): void {
    if (this.phase !== 'open') return;
    const now = this.rt.now();
    const head = this.pending[this.pendingHead];
    if (head !== undefined && now - head.sentAtMs > this.opts.requestTimeoutMs) {
      this.pendingHead++;
      head.fail(new ZkError(Err.REQUESTTIMEOUT, undefined, `no reply within ${this.opts.requestTimeoutMs} ms`));
      this.destroy(`request xid ${head.xid} unanswered for ${this.opts.requestTimeoutMs} ms`);
      return;
    }
    if (this.pingsPaused) return;
    const readTimeoutMs = (this.negotiatedTimeoutMs * 2) / 3;
    if (now - this.lastRecvMs > readTimeoutMs) {
      this.destroy(`nothing heard from the server for ${Math.round(now - this.lastRecvMs)} ms`);
      return;
    }
    if (now - this.lastSendMs >= this.negotiatedTimeoutMs / 3 && this.outbox.length === 0) {
      this.send(encodeRequestFrame(Xid.ping, { type: OpCode.ping }));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastRecvMs = this.rt.now();
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.destroy(`protocol error: ${(e as Error).message}`);
      return;
    }
    for (const f of frames) {
      if (this.isClosed()) return;
      if (this.phase === 'handshake') {
        let response: ConnectResponse;
        try {
          response = decodeConnectResponse(new JuteReader(f));
        } catch (e) {
          this.destroy(`bad connect response: ${(e as Error).message}`);
          return;
        }
        this.phase = 'held';
        const h = this.handshake;
        this.handshake = null;
        h?.resolve(response);
      } else if (this.phase === 'held') {
        this.held.push(f);
      } else {
        this.onFrame(f);
      }
    }
  }

  private onFrame(f: Buffer): void {
    const r = new JuteReader(f);
    let hdr: ReplyHeader;
    try {
      hdr = readReplyHeader(r);
    } catch (e) {
      this.destroy(`protocol error: ${(e as Error).message}`);
      return;
    }
    if (hdr.xid === Xid.ping) return;
    if (hdr.xid === Xid.notification) {
      let ev: WatcherEvent;
      try {
        ev = readWatcherEvent(r);
      } catch (e) {
        this.destroy(`bad notification: ${(e as Error).message}`);
        return;
      }
      this.opts.events.notification(ev);
      return;
    }
    if (hdr.xid === Xid.auth) {
      this.opts.events.authReply(hdr.err);
      return;
    }
    const head = this.pending[this.pendingHead];
    if (head === undefined || head.xid !== hdr.xid) {
      this.destroy(`xid out of order: reply xid ${hdr.xid}, expected ${head === undefined ? 'none' : head.xid}`);
      return;
    }
    this.pendingHead++;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    if (hdr.zxid > 0n) this.opts.events.zxid(hdr.zxid);
    head.complete(hdr, r);
  }

  /** Close the socket; fail everything pending with CONNECTIONLOSS. Idempotent. */
  destroy(reason: string): void {
    if (this.phase === 'closed') return;
    const wasOpen = this.phase !== 'handshake';
    this.phase = 'closed';
    this.timer?.stop();
    this.timer = null;
    this.held = [];
    this.outbox = [];
    this.socket.destroy();
    if (this.handshake !== null) {
      const h = this.handshake;
      this.handshake = null;
      h.reject(connectionLoss(`${this.remote}: ${reason}`));
      return;
    }
    const failed = this.pending.slice(this.pendingHead);
    this.pending.length = 0;
    this.pendingHead = 0;
    for (const p of failed) p.fail(connectionLoss(`connection to ${this.remote} lost: ${reason}`));
    if (wasOpen) this.opts.events.closed(reason);
  }
}
