// The ZooKeeper client port: TCP framing, the connect handshake, four-letter
// words, and the caps that keep one client from hurting the others (per-IP
// connections, requests in flight, unsent reply bytes, frame size). A bad
// frame closes that connection only. Everything above framing is the
// handler's business (the server glue around the pure core).
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { JuteError, JuteWriter } from '../proto/jute.js';
import { decodeClientFrame, encodeOutbound } from '../proto/client-frames.js';
import { FOUR_LETTER_WORDS, OpCode, OpName, ZK_ONLY_FOUR_LETTER_WORDS } from '../proto/zk-constants.js';
import type { ConnectRequest, ZkRequest } from '../proto/zk-records.js';
import type { Outbound } from '../core/zk/server-core.js';
import type { Logger } from './log.js';
import { isLoopback } from './ports.js';
import { rotateServerCertificate } from './tls-identity.js';


export interface ClientPortHandler {
  /** `x509`: the verified client certificate's subject on the TLS port, else null. */
  opened(connId: number, ip: string, x509: string | null): void;
  connect(connId: number, req: ConnectRequest): void;
  request(connId: number, xid: number, req: ZkRequest): void;
  closed(connId: number): void;
  fourLetterWord(word: string): string;
  /** Called once after the frames of one socket read are handed over: replies and log writes go out in one batch. */
  flush(): void;
  /** Requests of this connection not yet answered: above the cap the socket stops being read. */
  queued(connId: number): number;
  /** Requests not yet answered on the whole server (globalOutstandingLimit): above the cap every socket stops being read. */
  outstanding(): number;
}

/** The TLS client port (ZooKeeper's secureClientPort): PEM texts, and whether a client certificate is asked for. */
export interface ClientTls { cert: string; key: string; ca: string | null; clientAuth: 'none' | 'want' | 'need'; minVersion?: 'TLSv1.2' | 'TLSv1.3' }

export interface ClientPortOptions {
  host: string;
  port: number;
  /** A second port speaking the same protocol over TLS (same connections table, limits and sessions). */
  secure?: { host: string; port: number; tls: ClientTls } | null;
  packetBytesMax: number;
  packetHeaderBytesExtra: number;
  connectionsPerIpMax: number;
  connectionsMax: number;
  requestsInFlightPerConnectionMax: number;
  requestsInFlightMax: number;
  unsentReplyBytesMax: number;
  connectHandshakeMsMax: number;
  fourLetterWhitelist: ReadonlySet<string>;
  logger: Logger;
}

interface PortConn {
  id: number;
  socket: net.Socket;
  ip: string;
  remote: string;
  buf: Buffer;
  handshaken: boolean;
  firstBytesChecked: boolean;
  paused: boolean;
  closed: boolean;
  handshakeTimer: NodeJS.Timeout | null;
  /** Request start times in order, for latency (replies leave in request order). */
  started: number[];
  received: number;
  sent: number;
  /** Answered a four-letter word: never a session, so the core never heard of it. */
  fourLetterWord: boolean;
  /** The verified client certificate's subject (TLS port), as ZooKeeper's x509 scheme names it. */
  x509: string | null;
  /** Came in on the TLS client port. */
  secure: boolean;
  /** What ZooKeeper's `cons` tells of a connection: when it was opened (wall ms), its last reply, its latencies. */
  establishedMs: number;
  lastOpType: number | null;
  lastCxid: number;
  lastZxid: bigint;
  /** performance.now() of the last timed reply; 0 before one. */
  lastResponseAt: number;
  lastLatencyMs: number;
  latency: LatencyStats;
}

export interface LatencyStats { min: number; max: number; total: number; count: number }

/** Where request latencies go besides the server-wide figures (a Prometheus summary); set only while metrics are served. */
export interface LatencyObserver { observe(ms: number): void }

/** What `cons` shows of one connection: PortConn's figures, and ZooKeeper's NIO interest ops (1 while reading, +4 while replies wait to be written). */
export type ConnectionInfo = Pick<PortConn, 'remote' | 'received' | 'sent' | 'secure' | 'establishedMs' | 'lastOpType' | 'lastCxid' | 'lastZxid' | 'lastResponseAt' | 'lastLatencyMs' | 'latency'> & { interestOps: number };

export class ClientPort {
  private server: net.Server | null = null;
  private secureServer: tls.Server | null = null;
  private readonly conns = new Map<number, PortConn>();
  private readonly perIp = new Map<string, number>();
  private nextConnId = 1;
  readonly latency: LatencyStats = { min: 0, max: 0, total: 0, count: 0 };
  /** Reply frames' sizes in bytes, as ZooKeeper's client_response_stats (-1 before the first). */
  readonly responseBytes = { last: -1, min: -1, max: -1 };
  /**
   * Connections refused over the caps (ZooKeeper's connection_rejected); closed for a frame that
   * could not be read (ours); accepted without a verified client certificate, from loopback or not
   * (ZooKeeper's non_mtls_local_conn_count and non_mtls_remote_conn_count).
   */
  readonly counters = { rejected: 0, badFrames: 0, nonMtlsLocal: 0, nonMtlsRemote: 0 };
  private latencyObservers: { read: LatencyObserver; update: LatencyObserver } | null = null;
  private readonly writer = new JuteWriter(64 * 1024);
  /** False while the server cannot serve (storage failed): new sessions are refused, four-letter words still answer. */
  private accepting = true;
  private pausedCount = 0;

  constructor(private readonly opts: ClientPortOptions, private readonly handler: ClientPortHandler) {}

  async listen(): Promise<number> {
    const srv = net.createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = srv;
    await listenOn(srv, this.opts.port, this.opts.host);
    const sec = this.opts.secure ?? null;
    if (sec !== null) {
      const t = sec.tls;
      // clientAuth need: no certificate from the CA, no handshake; want: asked for, used as an x509 identity when valid.
      const tsrv = tls.createServer({
        handshakeTimeout: this.opts.connectHandshakeMsMax,
        ...(t.minVersion === undefined ? {} : { minVersion: t.minVersion }),
        cert: t.cert, key: t.key, ...(t.ca === null ? {} : { ca: t.ca }), requestCert: t.clientAuth !== 'none', rejectUnauthorized: t.clientAuth === 'need',
      }, (s) => this.accept(s));
      tsrv.on('tlsClientError', () => undefined);
      this.secureServer = tsrv;
      await listenOn(tsrv, sec.port, sec.host);
    }
    const addr = srv.address();
    return typeof addr === 'object' && addr ? addr.port : this.opts.port;
  }

  /** The TLS port's number (0 asked: the one the kernel gave), or null without one. */
  get securePort(): number | null {
    const a = this.secureServer?.address();
    return typeof a === 'object' && a ? a.port : null;
  }

  /** A certificate rotation (SIGHUP): new connections to the TLS port get the new certificate. */
  setTls(t: ClientTls): void {
    if (this.secureServer) rotateServerCertificate(this.secureServer, t);
  }

  async close(): Promise<void> {
    for (const c of this.conns.values()) this.destroy(c, 'server stopping');
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.secureServer ? this.secureServer.close(() => resolve()) : resolve()));
    this.server = null;
    this.secureServer = null;
  }

  connectionInfo(connId: number): ConnectionInfo | undefined {
    const c = this.conns.get(connId);
    if (c === undefined) return undefined;
    return {
      remote: c.remote, received: c.received, sent: c.sent, secure: c.secure,
      interestOps: (c.paused ? 0 : 1) | (c.socket.writableLength > 0 ? 4 : 0),
      establishedMs: c.establishedMs, lastOpType: c.lastOpType, lastCxid: c.lastCxid, lastZxid: c.lastZxid,
      lastResponseAt: c.lastResponseAt, lastLatencyMs: c.lastLatencyMs, latency: { ...c.latency },
    };
  }

  /** Reads' and updates' latencies also go to these (null: no longer). */
  observeLatency(observers: { read: LatencyObserver; update: LatencyObserver } | null): void {
    this.latencyObservers = observers;
  }

  private accept(socket: net.Socket): void {
    const ip = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    const count = this.perIp.get(ip) ?? 0;
    const log = this.opts.logger;
    if ((this.opts.connectionsPerIpMax > 0 && count >= this.opts.connectionsPerIpMax) || this.conns.size >= this.opts.connectionsMax) {
      log.warn({ ip, connections: count }, 'too many connections: refusing (maxClientCnxns)');
      this.counters.rejected++;
      socket.destroy();
      return;
    }
    this.perIp.set(ip, count + 1);
    const c: PortConn = {
      id: this.nextConnId++, socket, ip, remote: `${ip}:${socket.remotePort}`, buf: Buffer.alloc(0),
      handshaken: false, firstBytesChecked: false, paused: false, closed: false, handshakeTimer: null, started: [], received: 0, sent: 0, fourLetterWord: false,
      x509: x509Subject(socket), secure: socket instanceof tls.TLSSocket, establishedMs: Date.now(),
      lastOpType: null, lastCxid: 0, lastZxid: -1n, lastResponseAt: 0, lastLatencyMs: 0, latency: { min: 0, max: 0, total: 0, count: 0 },
    };
    if (c.x509 === null) {
      if (isLoopback(ip)) this.counters.nonMtlsLocal++; else this.counters.nonMtlsRemote++;
    }
    this.conns.set(c.id, c);
    socket.setNoDelay(true);
    c.handshakeTimer = setTimeout(() => this.destroy(c, 'no connect request in time'), this.opts.connectHandshakeMsMax);
    c.handshakeTimer.unref();
    socket.on('data', (d) => this.onData(c, d));
    socket.on('error', () => this.destroy(c, 'socket error'));
    socket.on('close', () => this.destroy(c, 'peer closed'));
  }

  private destroy(c: PortConn, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    if (c.handshakeTimer) clearTimeout(c.handshakeTimer);
    if (c.paused) this.pausedCount--;
    this.conns.delete(c.id);
    const n = (this.perIp.get(c.ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(c.ip); else this.perIp.set(c.ip, n);
    this.opts.logger.debug({ conn: c.id, remote: c.remote, reason }, 'client connection closed');
    c.socket.destroy();
    if (c.firstBytesChecked && !c.fourLetterWord) this.handler.closed(c.id);
  }

  private onData(c: PortConn, d: Buffer): void {
    if (c.closed || c.fourLetterWord) return;
    c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
    if (!c.firstBytesChecked) {
      // A four-letter word is recognised only as the first 4 bytes of a connection, possibly split.
      if (c.buf.length < 4) return;
      c.firstBytesChecked = true;
      const word = c.buf.subarray(0, 4).toString('latin1');
      if ((FOUR_LETTER_WORDS as readonly string[]).includes(word) || (ZK_ONLY_FOUR_LETTER_WORDS as readonly string[]).includes(word)) {
        this.answerFourLetterWord(c, word);
        return;
      }
      if (!this.accepting) {
        this.destroy(c, 'server is not serving clients');
        return;
      }
      this.handler.opened(c.id, c.ip, c.x509);
    }
    this.drainFrames(c);
  }

  private answerFourLetterWord(c: PortConn, word: string): void {
    let text: string;
    if (!this.opts.fourLetterWhitelist.has(word)) text = `${word} is not executed because it is not in the whitelist.\n`;
    else {
      try { text = this.handler.fourLetterWord(word); } catch (e) { text = `error: ${(e as Error).message}\n`; }
    }
    c.fourLetterWord = true;
    c.socket.end(text);
    c.socket.pause();
    // Destroy once flushed (or after a bound): a peer that never closes its side must not hold the socket.
    this.destroySoon(c, 'four-letter word answered');
  }

  private drainFrames(c: PortConn): void {
    const handed = this.parseFrames(c);
    // One flush per socket read: the core's replies and log writes for all its frames go out together.
    if (handed > 0) this.handler.flush();
  }

  /** Hand every complete frame to the handler; returns how many. A bad frame closes this connection only. */
  private parseFrames(c: PortConn): number {
    const max = this.opts.packetBytesMax + this.opts.packetHeaderBytesExtra;
    let off = 0;
    let handed = 0;
    const buf = c.buf;
    while (!c.closed && !c.paused && buf.length - off >= 4) {
      const len = buf.readInt32BE(off);
      if (len < 0 || len > max) {
        this.opts.logger.warn({ conn: c.id, remote: c.remote, len, max }, 'frame length out of bounds: closing connection (jute.maxbuffer)');
        this.counters.badFrames++;
        this.destroy(c, 'bad frame length');
        return handed;
      }
      if (buf.length - off - 4 < len) break;
      const frame = buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      try {
        this.onFrame(c, frame);
        handed++;
      } catch (e) {
        if (!(e instanceof JuteError)) throw e;
        this.opts.logger.warn({ conn: c.id, remote: c.remote, err: e.message }, 'malformed request: closing connection');
        this.counters.badFrames++;
        this.destroy(c, 'malformed frame');
        return handed;
      }
      if (!c.paused && (this.handler.queued(c.id) >= this.opts.requestsInFlightPerConnectionMax
        || this.handler.outstanding() >= this.opts.requestsInFlightMax)) {
        c.paused = true;
        c.socket.pause();
        this.pausedCount++;
      }
    }
    c.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
    return handed;
  }

  private onFrame(c: PortConn, frame: Buffer): void {
    c.received++;
    const f = decodeClientFrame(c.handshaken, frame);
    if (f.kind === 'connect') {
      c.handshaken = true;
      if (c.handshakeTimer) { clearTimeout(c.handshakeTimer); c.handshakeTimer = null; }
      this.handler.connect(c.id, f.req);
      return;
    }
    const type = f.req.type;
    if (type !== OpCode.ping && type !== OpCode.auth) c.started.push(performance.now());
    if (this.opts.logger.isLevelEnabled('trace')) this.opts.logger.trace({ conn: c.id, xid: f.xid, op: OpName[type] ?? type }, 'request');
    this.handler.request(c.id, f.xid, f.req);
  }

  /** Write the core's outbound messages, one socket write per connection. */
  deliver(sends: Outbound[]): void {
    if (sends.length === 0) return;
    const w = this.writer;
    const cap = this.opts.unsentReplyBytesMax;
    let i = 0;
    while (i < sends.length) {
      const connId = sends[i].connId;
      const c = this.conns.get(connId);
      let j = i;
      w.reset();
      for (; j < sends.length && sends[j].connId === connId; j++) {
        if (!c || c.closed) continue;
        this.encode(c, sends[j], w);
        // Bound what one slow reader can make us hold, even within one batch of replies.
        if (w.length + c.socket.writableLength > cap) {
          this.opts.logger.warn({ conn: c.id, remote: c.remote, unsentBytes: w.length + c.socket.writableLength }, 'client does not read its replies: closing connection');
          this.destroy(c, 'unsent replies over the cap');
        }
      }
      if (c && !c.closed && w.length > 0) c.socket.write(Buffer.from(w.toBuffer()));
      i = j;
    }
    w.reset();
    if (this.pausedCount > 0) this.resumeReadable();
  }

  /** Resume reading sockets whose queue, and the server's, have drained to half their caps. */
  private resumeReadable(): void {
    if (this.handler.outstanding() >= this.opts.requestsInFlightMax / 2) return;
    for (const c of this.conns.values()) {
      if (c.paused && !c.closed && this.handler.queued(c.id) < this.opts.requestsInFlightPerConnectionMax / 2) {
        c.paused = false;
        this.pausedCount--;
        c.socket.resume();
        // Frames already buffered are parsed soon (not from inside deliver(), which is mid-write);
        // the socket's next data event would not replay them.
        if (c.buf.length > 0) setImmediate(() => { if (!c.closed && !c.paused) this.drainFrames(c); });
      }
    }
  }

  private encode(c: PortConn, o: Outbound, w: JuteWriter): void {
    const at = w.beginFrame();
    c.sent++;
    encodeOutbound(w, o);
    if (o.kind === 'connect') {
      c.lastOpType = OpCode.createSession;
    } else if (o.kind === 'reply') {
      c.lastOpType = o.opType;
      c.lastCxid = o.xid;
      c.lastZxid = o.zxid;
      if (o.opType !== OpCode.ping && o.opType !== OpCode.auth) {
        const t0 = c.started.shift();
        if (t0 !== undefined) {
          const now = performance.now();
          const ms = now - t0;
          recordLatency(this.latency, ms);
          recordLatency(c.latency, ms);
          c.lastLatencyMs = ms;
          c.lastResponseAt = now;
          const obs = this.latencyObservers;
          if (obs !== null) (isUpdate(o.opType) ? obs.update : obs.read).observe(ms);
        }
      }
    }
    w.finishFrame(at);
    const bytes = w.length - at;
    const R = this.responseBytes;
    R.last = bytes;
    if (R.min < 0 || bytes < R.min) R.min = bytes;
    if (bytes > R.max) R.max = bytes;
  }

  /** Close a connection once what was already queued for it is flushed. */
  closeConnection(connId: number, reason: string): void {
    const c = this.conns.get(connId);
    if (!c) return;
    this.opts.logger.debug({ conn: connId, remote: c.remote, reason }, 'closing client connection');
    c.socket.end();
    // end() flushes then closes; do not read anything more from it.
    c.socket.pause();
    this.destroySoon(c, reason);
  }

  private destroySoon(c: PortConn, reason: string): void {
    const t = setTimeout(() => this.destroy(c, reason), 1000);
    t.unref();
    c.socket.once('finish', () => { clearTimeout(t); this.destroy(c, reason); });
  }

  setAccepting(on: boolean): void {
    this.accepting = on;
  }

  closeAll(reason: string): void {
    for (const c of [...this.conns.values()]) this.destroy(c, reason);
  }

  get connectionCount(): number { return this.conns.size; }
}

function recordLatency(L: LatencyStats, ms: number): void {
  if (L.count === 0 || ms < L.min) L.min = ms;
  if (ms > L.max) L.max = ms;
  L.total += ms;
  L.count++;
}

/** Requests that change the tree or the sessions: ZooKeeper times them as updatelatency, the rest as readlatency. */
function isUpdate(op: number): boolean {
  switch (op) {
    case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL: case OpCode.delete:
    case OpCode.deleteContainer: case OpCode.setData: case OpCode.setACL: case OpCode.check: case OpCode.multi:
    case OpCode.reconfig: case OpCode.closeSession: case OpCode.createSession:
      return true;
    default:
      return false;
  }
}

function listenOn(srv: net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => { srv.off('error', reject); resolve(); });
  });
}

/**
 * The subject of a verified client certificate as ZooKeeper's X509AuthenticationProvider names
 * it (Java's X500Principal.getName(): the most specific part first, "CN=app,OU=ops,O=example"),
 * or null: no TLS, no certificate, or one the CA did not sign.
 */
export function x509Subject(socket: net.Socket): string | null {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return null;
  const raw = socket.getPeerCertificate()?.raw;
  if (raw === undefined) return null;
  try {
    return new X509Certificate(raw).subject.split('\n').reverse().join(',');
  } catch {
    return null;
  }
}
