// A scripted ZooKeeper server on 127.0.0.1 for protocol-level client tests:
// it records what the client sends and answers only what the test tells it
// to (pings and the handshake are answered by default).
import net from 'node:net';
import { JuteReader, JuteWriter } from '../../../src/proto/jute.js';
import { OpCode, Xid } from '../../../src/proto/zk-constants.js';
import {
  decodeConnectRequest, decodeRequest, encodeConnectResponse, readRequestHeader, writeReplyHeader, writeWatcherEvent,
  type ConnectRequest, type ConnectResponse, type WatcherEvent, type ZkRequest,
} from '../../../src/proto/zk-records.js';
import { FrameDecoder } from '../../../src/client/frame.js';

export interface FakeRequest { xid: number; type: number; req: ZkRequest | null }

export class FakeConn {
  connectReq: ConnectRequest | null = null;
  readonly requests: FakeRequest[] = [];
  closed = false;
  private waiters: Array<() => void> = [];
  constructor(readonly socket: net.Socket, readonly server: FakeZk) {}

  send(write: (w: JuteWriter) => void): void {
    const w = new JuteWriter();
    const at = w.beginFrame();
    write(w);
    w.finishFrame(at);
    if (!this.closed) this.socket.write(w.toBuffer());
  }
  replyConnect(resp: Partial<ConnectResponse> = {}): void {
    const req = this.connectReq!;
    this.send((w) => encodeConnectResponse(w, {
      protocolVersion: 0, timeOut: this.server.negotiatedMs ?? req.timeOut,
      sessionId: req.sessionId !== 0n ? req.sessionId : 0x1234_5678_9abc_def0n, passwd: Buffer.alloc(16, 7), readOnly: false, ...resp,
    }));
  }
  reply(xid: number, err = 0, zxid = 0n, body?: (w: JuteWriter) => void): void {
    this.send((w) => { writeReplyHeader(w, { xid, zxid, err }); body?.(w); });
  }
  notify(ev: WatcherEvent): void {
    this.send((w) => { writeReplyHeader(w, { xid: Xid.notification, zxid: -1n, err: 0 }); writeWatcherEvent(w, ev); });
  }
  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
  onFrame(f: Buffer): void {
    const r = new JuteReader(f);
    if (this.connectReq === null) {
      this.connectReq = decodeConnectRequest(r);
      this.server.onConnect(this);
    } else {
      const { xid, type } = readRequestHeader(r);
      const req = decodeRequest(type, r);
      if (type === OpCode.ping) {
        if (this.server.answerPings) this.reply(Xid.ping);
        this.server.pings++;
      } else {
        this.requests.push({ xid, type, req });
        this.server.onRequest(this, { xid, type, req });
      }
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
  /** Wait until `n` non-ping requests have arrived. */
  async waitRequests(n: number, timeoutMs = 5000): Promise<FakeRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.requests.length} of ${n} requests arrived`);
      await new Promise<void>((res) => { this.waiters.push(res); setTimeout(res, 20); });
    }
    return this.requests.slice(0, n);
  }
}

export class FakeZk {
  readonly conns: FakeConn[] = [];
  negotiatedMs: number | null = null;
  answerPings = true;
  pings = 0;
  onConnect: (c: FakeConn) => void = (c) => c.replyConnect();
  onRequest: (c: FakeConn, r: FakeRequest) => void = () => {};
  private constructor(private readonly srv: net.Server, readonly port: number) {}

  static async start(): Promise<FakeZk> {
    const srv = net.createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as net.AddressInfo).port;
    const fz = new FakeZk(srv, port);
    srv.on('connection', (s) => {
      const c = new FakeConn(s, fz);
      fz.conns.push(c);
      const d = new FrameDecoder();
      s.on('data', (chunk) => { for (const f of d.push(chunk)) c.onFrame(f); });
      s.on('close', () => { c.closed = true; });
      s.on('error', () => {});
    });
    return fz;
  }
  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }
  async waitConns(n: number, timeoutMs = 5000): Promise<FakeConn> {
    const deadline = Date.now() + timeoutMs;
    while (this.conns.filter((c) => c.connectReq !== null).length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.conns.length} of ${n} connections arrived`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.conns.filter((c) => c.connectReq !== null)[n - 1];
  }
  async stop(): Promise<void> {
    for (const c of this.conns) c.close();
    await new Promise<void>((res) => this.srv.close(() => res()));
  }
}
