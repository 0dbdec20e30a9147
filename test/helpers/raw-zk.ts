// Raw ZooKeeper client-protocol frames over a plain TCP socket, for tests
// that must send what a well-behaved client never would (bad frames, wrong
// passwords, pipelined bursts, four-letter words split across writes).
import net from 'node:net';
import tls from 'node:tls';
import { JuteReader, JuteWriter } from '../../src/proto/jute.js';
import {
  decodeConnectResponse, encodeConnectRequest, encodeRequest, readReplyHeader,
  type ConnectResponse, type ReplyHeader, type ZkRequest,
} from '../../src/proto/zk-records.js';

/** A frame: 4-byte big-endian length, then the body. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export interface ConnectOpts { sessionId?: bigint; passwd?: Buffer; timeOut?: number; lastZxidSeen?: bigint; readOnly?: boolean }

export function connectBody(o: ConnectOpts = {}): Buffer {
  const w = new JuteWriter(64);
  encodeConnectRequest(w, {
    protocolVersion: 0, lastZxidSeen: o.lastZxidSeen ?? 0n, timeOut: o.timeOut ?? 10_000,
    sessionId: o.sessionId ?? 0n, passwd: o.passwd ?? Buffer.alloc(16), readOnly: o.readOnly ?? false,
  });
  return Buffer.from(w.toBuffer());
}

export const connectFrame = (o: ConnectOpts = {}): Buffer => frame(connectBody(o));

/** Request header (xid, opcode) and body. */
export function requestBody(xid: number, req: ZkRequest): Buffer {
  const w = new JuteWriter(64);
  w.writeInt(xid).writeInt(req.type);
  encodeRequest(w, req);
  return Buffer.from(w.toBuffer());
}

export const requestFrame = (xid: number, req: ZkRequest): Buffer => frame(requestBody(xid, req));

export interface Reply extends ReplyHeader { r: JuteReader; raw: Buffer }

export function parseReply(body: Buffer): Reply {
  const r = new JuteReader(body);
  return { ...readReplyHeader(r), r, raw: body };
}

export function parseConnectResponse(body: Buffer): ConnectResponse {
  return decodeConnectResponse(new JuteReader(body));
}

/**
 * A raw client connection that collects whole frames as they arrive (if
 * `read` is true; otherwise nothing is ever read, to play a client that does
 * not read its replies).
 */
export class RawConn {
  readonly frames: Buffer[] = [];
  closed = false;
  error: Error | null = null;
  bytesIn = 0;
  private pending: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket, read: boolean) {
    socket.setNoDelay(true);
    if (read) socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => { this.error = e; });
    socket.on('close', () => { this.closed = true; this.wake(); });
  }

  /** Ports to speak TLS to, with the client certificate to present (the fuzz test's TLS run). */
  static readonly tlsFor = new Map<number, { ca: string; cert: string; key: string }>();

  static open(port: number, opts: { read?: boolean; timeoutMs?: number } = {}): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const t0 = RawConn.tlsFor.get(port);
      const s = t0 === undefined ? net.connect({ port, host: '127.0.0.1' }) : tls.connect({ port, host: '127.0.0.1', ca: t0.ca, cert: t0.cert, key: t0.key });
      const t = setTimeout(() => { s.destroy(); reject(new Error(`connect to 127.0.0.1:${port} timed out`)); }, opts.timeoutMs ?? 5000);
      s.once(t0 === undefined ? 'connect' : 'secureConnect', () => { clearTimeout(t); s.off('error', onErr); resolve(new RawConn(s, opts.read ?? true)); });
      const onErr = (e: Error) => { clearTimeout(t); reject(e); };
      s.once('error', onErr);
    });
  }

  private onData(d: Buffer): void {
    this.bytesIn += d.length;
    this.pending = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
    let off = 0;
    while (this.pending.length - off >= 4) {
      const len = this.pending.readInt32BE(off);
      if (len < 0 || this.pending.length - off - 4 < len) break;
      this.frames.push(Buffer.from(this.pending.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    this.pending = off === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(off);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when cond() holds (true) or the socket closed / time ran out (cond() then). */
  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.closed) return cond();
      const left = deadline - Date.now();
      if (left <= 0) return cond();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  /** Wait for at least n frames; throws when they do not come. */
  async waitFrames(n: number, timeoutMs = 5000): Promise<Buffer[]> {
    if (!(await this.until(() => this.frames.length >= n, timeoutMs))) {
      throw new Error(`expected ${n} frames, got ${this.frames.length} (closed=${this.closed})`);
    }
    return this.frames;
  }

  waitClosed(timeoutMs = 5000): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  /** Write, resolving when the bytes were handed to the kernel (false if the socket failed). */
  write(buf: Buffer | string): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(buf, (err) => resolve(!err)));
  }

  /** Valid connect handshake: returns the connect response. */
  async handshake(o: ConnectOpts = {}, timeoutMs = 5000): Promise<ConnectResponse> {
    const before = this.frames.length;
    await this.write(connectFrame(o));
    await this.waitFrames(before + 1, timeoutMs);
    return parseConnectResponse(this.frames[before]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Send a four-letter word (optionally split into pieces written separately,
 * optionally followed by extra bytes) and read the answer until the server
 * closes. Resolves with the text (what arrived before close or timeout).
 */
export async function fourLetterWord(port: number, word: string,
  opts: { pieces?: number[]; after?: Buffer | string; timeoutMs?: number; gapMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const t0 = RawConn.tlsFor.get(port);
    const s = t0 === undefined ? net.connect({ port, host: '127.0.0.1' }) : tls.connect({ port, host: '127.0.0.1', ca: t0.ca, cert: t0.cert, key: t0.key });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', (e) => { if (!done && chunks.length === 0 && (e as NodeJS.ErrnoException).code === 'ECONNREFUSED') { done = true; clearTimeout(t); reject(e); } });
    s.once(t0 === undefined ? 'connect' : 'secureConnect', async () => {
      s.setNoDelay(true);
      const bytes = Buffer.from(word, 'latin1');
      const pieces = opts.pieces ?? [bytes.length];
      let at = 0;
      for (const n of pieces) {
        if (s.destroyed) return;
        s.write(bytes.subarray(at, at + n));
        at += n;
        await new Promise((r) => setTimeout(r, opts.gapMs ?? 20));
      }
      if (at < bytes.length && !s.destroyed) s.write(bytes.subarray(at));
      if (opts.after !== undefined && !s.destroyed) s.write(opts.after);
    });
  });
}

/** Lines of a pino JSON log with level >= min (unparseable lines are skipped). */
export function logLines(text: string, minLevel: number): { level: number; msg?: string; [k: string]: unknown }[] {
  const out: { level: number; msg?: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { level?: unknown };
      if (typeof o.level === 'number' && o.level >= minLevel) out.push(o as { level: number });
    } catch { /* a line cut by the helper's log truncation */ }
  }
  return out;
}

/** Resident set size of a process in bytes (Linux), or null. */
export async function rssBytes(pid: number): Promise<number | null> {
  const fs = await import('node:fs/promises');
  try {
    const text = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(text);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
