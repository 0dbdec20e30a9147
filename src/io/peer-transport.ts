// TCP between quorum servers, on 127.0.0.1 or wherever the config says.
//  ElectionPort  notifications; one connection per pair of servers, kept only
//                when the higher id opened it (ZooKeeper's rule: a lower id
//                that wants to talk connects, says who it is, and is called
//                back), so no pair ever holds two.
//  QuorumPort    learners' connections to the leader, carrying ZAB frames.
// Every connection starts by naming the protocol version and the cluster; a
// server of another cluster or version, or a malformed frame, is dropped with
// a warning naming it. With TLS both ports speak mutual TLS: a caller needs a
// certificate from the cluster's CA issued for a member's host (the cluster
// id is not a secret, and a server id is only a claim).
import net from 'node:net';
import tls from 'node:tls';
import { certificateNames, rotateServerCertificate } from './tls-identity.js';
import { JuteError, JuteWriter } from '../proto/jute.js';
import {
  decodeElectionHello, decodeNotification, decodePeerMessage, encodeElectionHello, encodeNotification, encodePeerMessage,
} from '../proto/peer-codec.js';
import { PEER_PROTOCOL_VERSION, type Notification, type PeerMessage } from '../core/zab/messages.js';
import type { Logger } from './log.js';

export interface PeerAddress { host: string; port: number }

/** Mutual TLS between quorum servers (PEM texts): this server's certificate and key, the cluster CA. */
export interface PeerTls { cert: string; key: string; ca: string }

/** A listening socket for peers: plain, or mutual TLS that refuses a caller without a certificate from the CA at the handshake. */
function peerServer(t: PeerTls | null, onConnection: (s: net.Socket) => void): net.Server {
  if (t === null) return net.createServer(onConnection);
  return tls.createServer({ cert: t.cert, key: t.key, ca: t.ca, requestCert: true, rejectUnauthorized: true }, onConnection);
}

/** A connection to a peer; with TLS its certificate must chain to the CA and name the host dialled. Ready on `readyEvent`. */
function peerConnect(t: PeerTls | null, to: PeerAddress): net.Socket {
  if (t === null) return net.connect({ host: to.host, port: to.port });
  return tls.connect({ host: to.host, port: to.port, cert: t.cert, key: t.key, ca: t.ca, rejectUnauthorized: true, ...(net.isIP(to.host) === 0 ? { servername: to.host } : {}) });
}

const readyEvent = (t: PeerTls | null) => (t === null ? 'connect' : 'secureConnect');


/** Splits a byte stream into 4-byte-length frames, refusing frames over `maxBytes`. */
export class FrameSplitter {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    while (this.buf.length - at >= 4) {
      const len = this.buf.readInt32BE(at);
      if (len < 0 || len > this.maxBytes) throw new JuteError(`frame of ${len} bytes (limit ${this.maxBytes})`);
      if (this.buf.length - at - 4 < len) break;
      out.push(this.buf.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
    return out;
  }
}

function frameOf(encode: (w: JuteWriter) => void): Buffer {
  const w = new JuteWriter(64);
  encode(w);
  return Buffer.from(w.toBuffer());
}

export interface ElectionPortOptions {
  id: number;
  clusterId: string;
  listen: PeerAddress;
  peers: ReadonlyMap<number, PeerAddress>;
  /** Take callers outside the membership too (reconfig on: they may be joining). */
  acceptNonMembers?: boolean;
  /** Mutual TLS; null: plain TCP. */
  tls?: PeerTls | null;
  logger: Logger;
  onNotification: (from: number, n: Notification) => void;
}

const ELECTION_FRAME_MAX = 4096;
const RECONNECT_MIN_MS = 100;

export class ElectionPort {
  private server: net.Server | null = null;
  private links = new Map<number, net.Socket>();
  private dialing = new Set<number>();
  private lastDial = new Map<number, number>();
  private waiting = new Map<number, Notification>();
  private sockets = new Set<net.Socket>();
  private closed = false;
  private peers: ReadonlyMap<number, PeerAddress>;

  constructor(private readonly opts: ElectionPortOptions & { tls?: PeerTls | null }) {
    this.peers = opts.peers;
  }

  /** The membership changed: whom we can call. */
  setPeers(peers: ReadonlyMap<number, PeerAddress>): void {
    this.peers = peers;
  }

  /** New certificates (a rotation): new connections use them; connections up keep theirs. */
  setTls(t: PeerTls): void {
    this.opts.tls = t;
    if (this.server instanceof tls.Server) rotateServerCertificate(this.server, t);
  }

  async listen(): Promise<void> {
    const srv = peerServer(this.opts.tls ?? null, (s) => this.inbound(s));
    this.server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.listen.port, this.opts.listen.host, () => { srv.off('error', reject); resolve(); });
    });
  }

  /** Sends `n` to `to` now if connected, else as soon as a connection is up (only the latest is kept). */
  send(to: number, n: Notification): void {
    const s = this.links.get(to);
    if (s !== undefined && !s.destroyed) {
      s.write(frameOf((w) => encodeNotification(w, n)));
      return;
    }
    this.waiting.set(to, n);
    this.dial(to);
  }

  private dial(to: number): void {
    if (this.closed || this.dialing.has(to) || this.links.has(to)) return;
    const now = performance.now();
    if (now - (this.lastDial.get(to) ?? -Infinity) < RECONNECT_MIN_MS) return;
    const addr = this.peers.get(to);
    if (addr === undefined) return;
    this.lastDial.set(to, now);
    this.dialing.add(to);
    const s = peerConnect(this.opts.tls ?? null, addr);
    this.track(s);
    s.setNoDelay(true);
    s.once(readyEvent(this.opts.tls ?? null), () => {
      this.dialing.delete(to);
      s.write(frameOf((w) => encodeElectionHello(w, { protocolVersion: PEER_PROTOCOL_VERSION, clusterId: this.opts.clusterId, serverId: this.opts.id })));
      // Only the higher id keeps the connection it opened; a lower one just asked to be called back.
      if (this.opts.id > to) this.adopt(to, s);
      else s.end();
    });
    s.once('error', () => { this.dialing.delete(to); });
    s.once('close', () => { this.dialing.delete(to); });
  }

  private inbound(s: net.Socket): void {
    this.track(s);
    s.setNoDelay(true);
    const frames = new FrameSplitter(ELECTION_FRAME_MAX);
    let from: number | null = null;
    s.on('data', (chunk: Buffer) => {
      try {
        for (const f of frames.push(chunk)) {
          if (from !== null) { this.opts.onNotification(from, decodeNotification(f)); continue; }
          const h = decodeElectionHello(f);
          const problem = h.protocolVersion !== PEER_PROTOCOL_VERSION ? `speaks peer protocol ${h.protocolVersion}, we speak ${PEER_PROTOCOL_VERSION}`
            : h.clusterId !== this.opts.clusterId ? `is from cluster "${h.clusterId}", not "${this.opts.clusterId}"`
              : !this.peers.has(h.serverId) && !(this.opts.acceptNonMembers === true && h.serverId !== this.opts.id) ? `claims id ${h.serverId}, which is not a member`
                : this.identityProblem(s, h.serverId);
          if (problem !== null) {
            this.opts.logger.warn({ remote: s.remoteAddress, serverId: h.serverId }, `election connection refused: the caller ${problem}`);
            s.destroy();
            return;
          }
          if (h.serverId < this.opts.id && this.peers.has(h.serverId)) {
            // The lower id called: drop it and call back, so that the pair holds one connection.
            s.destroy();
            this.lastDial.delete(h.serverId);
            this.dial(h.serverId);
            return;
          }
          from = h.serverId;
          this.adopt(from, s);
        }
      } catch (e) {
        this.opts.logger.warn({ remote: s.remoteAddress, err: (e as Error).message }, 'malformed election frame; connection dropped');
        s.destroy();
      }
    });
  }

  /** With TLS, a caller claiming a member's id must hold a certificate issued for that member's host. */
  private identityProblem(s: net.Socket, serverId: number): string | null {
    if ((this.opts.tls ?? null) === null) return null;
    const host = this.peers.get(serverId)?.host;
    if (host === undefined) return null; // a joining server (reconfig): its certificate chains to the cluster CA
    const names = certificateNames(s);
    return names.has(host.toLowerCase()) ? null : `claims id ${serverId}, but its certificate names ${[...names].join(', ') || 'nothing'}, not that server's host ${host}`;
  }

  /** `s` is now the connection with `peer`: replaces an older one, carries what waited. */
  private adopt(peer: number, s: net.Socket): void {
    const old = this.links.get(peer);
    if (old !== undefined && old !== s) old.destroy();
    this.links.set(peer, s);
    s.once('close', () => { if (this.links.get(peer) === s) this.links.delete(peer); });
    if (s.listenerCount('data') === 0) {
      // A connection we opened: the peer sends notifications on it too.
      const frames = new FrameSplitter(ELECTION_FRAME_MAX);
      s.on('data', (chunk: Buffer) => {
        try {
          for (const f of frames.push(chunk)) this.opts.onNotification(peer, decodeNotification(f));
        } catch (e) {
          this.opts.logger.warn({ peer, err: (e as Error).message }, 'malformed election frame; connection dropped');
          s.destroy();
        }
      });
    }
    const n = this.waiting.get(peer);
    this.waiting.delete(peer);
    if (n !== undefined) s.write(frameOf((w) => encodeNotification(w, n)));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => this.sockets.delete(s));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export interface QuorumPortHandlers {
  /** A learner connected to us: the id the peer core gives it. */
  accepted(): number;
  connected(conn: number): void;
  message(conn: number, msg: PeerMessage): void;
  /** Every frame of one read was delivered: a good moment to act on them together. */
  flush(): void;
  /** The connection ended (not called for a close we asked for). */
  closed(conn: number): void;
}

export class QuorumPort {
  private server: net.Server | null = null;
  private conns = new Map<number, net.Socket>();
  private closing = new Set<number>();

  constructor(private readonly opts: {
    listen: PeerAddress; logger: Logger; frameBytesMax: number; unsentBytesMax: number;
    /** Mutual TLS; a learner's certificate must name a member's host (any host from the CA when `acceptNonMembers`). */
    tls?: PeerTls | null; memberHosts?: () => Iterable<string>; acceptNonMembers?: boolean;
  }, private readonly h: QuorumPortHandlers) {}

  async listen(): Promise<void> {
    const srv = peerServer(this.opts.tls ?? null, (s) => {
      const problem = this.identityProblem(s);
      if (problem !== null) {
        this.opts.logger.warn({ remote: s.remoteAddress }, `quorum connection refused: ${problem}`);
        s.destroy();
        return;
      }
      this.attach(this.h.accepted(), s, false);
    });
    this.server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.opts.listen.port, this.opts.listen.host, () => { srv.off('error', reject); resolve(); });
    });
  }

  connect(conn: number, to: PeerAddress): void {
    const t = this.opts.tls ?? null;
    const s = peerConnect(t, to);
    this.attach(conn, s, true);
    s.once(readyEvent(t), () => { if (this.conns.get(conn) === s) this.h.connected(conn); });
  }

  /** New certificates (a rotation): new connections use them. */
  setTls(t: PeerTls): void {
    this.opts.tls = t;
    if (this.server instanceof tls.Server) rotateServerCertificate(this.server, t);
  }

  private identityProblem(s: net.Socket): string | null {
    if ((this.opts.tls ?? null) === null || this.opts.acceptNonMembers === true) return null;
    const names = certificateNames(s);
    const hosts = [...(this.opts.memberHosts?.() ?? [])].map((h) => h.toLowerCase());
    return hosts.some((h) => names.has(h)) ? null : `the caller's certificate names ${[...names].join(', ') || 'nothing'}, none of the members' hosts (${hosts.join(', ')})`;
  }

  private attach(conn: number, s: net.Socket, outbound: boolean): void {
    this.conns.set(conn, s);
    s.setNoDelay(true);
    const frames = new FrameSplitter(this.opts.frameBytesMax);
    s.on('data', (chunk: Buffer) => {
      try {
        for (const f of frames.push(chunk)) {
          if (this.conns.get(conn) !== s) break;
          this.h.message(conn, decodePeerMessage(f));
        }
        this.h.flush();
      } catch (e) {
        this.h.flush();
        this.opts.logger.warn({ remote: s.remoteAddress, outbound, err: (e as Error).message }, 'malformed quorum frame; connection dropped');
        s.destroy();
      }
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      if (this.conns.get(conn) !== s) return;
      this.conns.delete(conn);
      if (!this.closing.delete(conn)) this.h.closed(conn);
    });
  }

  send(conn: number, msg: PeerMessage): void {
    const s = this.conns.get(conn);
    if (s === undefined || s.destroyed) return;
    // Frames sent in one turn of the event loop (a batch of proposals, commits, acks) leave in
    // one write: a syscall per frame was most of a loaded leader's time.
    if (s.writableCorked === 0) {
      s.cork();
      process.nextTick(() => s.uncork());
    }
    s.write(frameOf((w) => encodePeerMessage(w, msg)));
    if (s.writableLength > this.opts.unsentBytesMax) {
      // A peer that does not read (stopped, or far slower than the quorum) must not make us hold
      // its backlog without bound: drop it; it syncs again when it comes back.
      this.opts.logger.warn({ remote: s.remoteAddress, unsentBytes: s.writableLength }, 'quorum peer is not reading; connection dropped');
      s.destroy();
    }
  }

  /**
   * Sends what send() has held for the end of this turn now, on every connection: before a
   * durable write on the event loop, so that a leader's proposal travels while it writes its own copy.
   */
  sendHeld(): void {
    for (const s of this.conns.values()) if (s.writableCorked > 0 && !s.destroyed) s.uncork();
  }

  close(conn: number): void {
    const s = this.conns.get(conn);
    if (s === undefined) return;
    this.closing.add(conn);
    s.end();
    s.destroySoon();
  }

  async stop(): Promise<void> {
    for (const s of this.conns.values()) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
