// The session half of the client: state, (re)connecting through the servers
// of the connect string, the queue of requests that wait for a connection,
// auth replay, watch re-arming (setWatches) and notification delivery.
//
// Requests made while disconnected wait in a bounded queue and are sent, in
// order, once the session is re-attached; a request that waits longer than
// requestTimeoutMs fails with CONNECTIONLOSS (it was never sent). Requests
// already sent when the socket drops fail with CONNECTIONLOSS (outcome
// unknown). Expiry is learnt from the server (timeout <= 0 in the connect
// reply), as in ZooKeeper: it is terminal and fails everything with
// SESSIONEXPIRED. close() ends the session; later calls fail with
// SESSIONEXPIRED ("client closed"). detach() leaves the session alive on the
// quorum (for a re-attach by id and password) and ends this client.
import { EventEmitter } from 'node:events';
import type { WatcherEvent, ZkRequest } from '../proto/zk-records.js';
import { Err, KeeperState, OpCode, Xid } from '../proto/zk-constants.js';
import { encodeCall, failCall, newCall, pendingOf, type Call, type Reply } from './calls.js';
import { Connection } from './connection.js';
import { nodeRuntime, sleepOn, type ClientRuntime, type ZkClientTls } from './runtime.js';
import { badArguments, connectionLoss, sessionExpired, ZkError } from './errors.js';
import { AuthCredentials } from './auth.js';
import { encodeRequestFrame } from './frame.js';
import { NOOP_LOGGER, type ZkLogger } from './log.js';
import { parseConnectString, toClientPath, type HostPort } from './path.js';
import { setWatchesRequests } from './set-watches.js';
import { WaitQueue } from './wait-queue.js';
import { stateEvent, WatchManager, type Watcher, type WatchEvent } from './watch-manager.js';

export type ZkState = 'connecting' | 'connected' | 'disconnected' | 'expired' | 'closed';

export interface ZkClientOptions {
  /** 'host:port,host:port[/chroot]' */
  connectString: string;
  /** Requested session timeout; the server clamps it (see negotiatedTimeoutMs). */
  sessionTimeoutMs: number;
  logger?: ZkLogger;
  /** Bound on one TCP connect + handshake to one server. Default: sessionTimeoutMs / (servers + 1), within 1..5 s. */
  connectTimeoutMs?: number;
  /** Bound on a request waiting for a connection or for its reply. Default: sessionTimeoutMs. */
  requestTimeoutMs?: number;
  /** Accept a read-only server (readOnly flag in the handshake). */
  canBeReadOnly?: boolean;
  /** Re-attach to an existing session instead of creating one. */
  session?: { id: bigint; passwd: Buffer };
  /** Gets session state events ({type: None, state: KeeperState.*, path: ''}). */
  defaultWatcher?: Watcher;
  /** Speak to the servers' TLS client ports (secureClientPort). */
  tls?: ZkClientTls | null;
  /** Clock, timers, randomness and sockets (default: Node's; the simulator gives its own). */
  runtime?: ClientRuntime;
}

export interface ZkClientEvents {
  state: [ZkState];
  /** Session state changes as ZooKeeper events (type None); also given to defaultWatcher. */
  event: [WatchEvent];
}

export type { Reply } from './calls.js';

const BACKOFF_MS_MAX = 1000;
const ZERO_PASSWD = Buffer.alloc(16);

export class ZkSession extends EventEmitter<ZkClientEvents> {
  protected readonly log: ZkLogger;
  protected readonly chroot: string;
  protected readonly watches = new WatchManager();
  private readonly hosts: HostPort[];
  private hostIndex = 0;
  private readonly sessionTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  protected readonly requestTimeoutMs: number;
  private readonly canBeReadOnly: boolean;
  private readonly tls: ZkClientTls | null;
  private readonly defaultWatcher: Watcher | undefined;
  protected readonly rt: ClientRuntime;

  private _state: ZkState = 'disconnected';
  private _sessionId = 0n;
  private _passwd: Buffer = ZERO_PASSWD;
  private _negotiatedTimeoutMs = 0;
  private _lastZxidSeen = 0n;
  private _readOnly = false;
  private conn: Connection | null = null;
  private xid = 0;
  private readonly waiting: WaitQueue<Call>;
  private readonly auth: AuthCredentials;
  private connectLoopRunning = false;
  private connectPromise: Promise<void> | null = null;
  private connectWaiter: { resolve(): void; reject(e: ZkError): void; deadlineMs: number } | null = null;
  protected closing = false;
  private closeAcked = false;
  private closePromise: Promise<void> | null = null;
  private final = false;
  private suspendUntilMs = 0;
  private pingsPaused = false;

  constructor(opts: ZkClientOptions) {
    super();
    const { hosts, chroot } = parseConnectString(opts.connectString);
    this.hosts = hosts;
    this.chroot = chroot;
    if (!Number.isInteger(opts.sessionTimeoutMs) || opts.sessionTimeoutMs <= 0) throw badArguments('sessionTimeoutMs must be a positive integer');
    this.sessionTimeoutMs = opts.sessionTimeoutMs;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? Math.min(5000, Math.max(1000, Math.floor(opts.sessionTimeoutMs / (hosts.length + 1))));
    this.requestTimeoutMs = opts.requestTimeoutMs ?? opts.sessionTimeoutMs;
    this.canBeReadOnly = opts.canBeReadOnly ?? false;
    this.tls = opts.tls ?? null;
    this.log = opts.logger ?? NOOP_LOGGER;
    this.rt = opts.runtime ?? nodeRuntime;
    this.defaultWatcher = opts.defaultWatcher;
    this.auth = new AuthCredentials(this.log, this.rt);
    this.waiting = new WaitQueue<Call>(this.rt, Math.max(10, Math.min(250, Math.floor(this.requestTimeoutMs / 4))),
      (c) => failCall(c, connectionLoss(`not connected within ${c.timeoutMs} ms`, c.path)));
    if (opts.session !== undefined) {
      this._sessionId = opts.session.id;
      this._passwd = Buffer.from(opts.session.passwd);
    }
  }

  get state(): ZkState { return this._state; }
  get sessionId(): bigint { return this._sessionId; }
  get sessionPasswd(): Buffer { return Buffer.from(this._passwd); }
  get negotiatedTimeoutMs(): number { return this._negotiatedTimeoutMs; }
  get lastZxidSeen(): bigint { return this._lastZxidSeen; }
  /** The current server is read-only (only with canBeReadOnly). */
  get readOnly(): boolean { return this._readOnly; }
  /** 'host:port' of the server currently connected, or null. */
  get server(): string | null { return this.conn?.isOpen ? this.conn.remote : null; }

  /** Resolves once a session is established (or re-attached); bounded by timeoutMs (default requestTimeoutMs). */
  connect(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.connectPromise !== null) return this.connectPromise;
    if (this.final || this.closing) return Promise.reject(this.terminalError());
    this.connectPromise = new Promise<void>((resolve, reject) => {
      this.connectWaiter = { resolve, reject, deadlineMs: this.rt.now() + (opts.timeoutMs ?? this.requestTimeoutMs) };
    });
    this.setState('connecting');
    void this.connectLoop();
    return this.connectPromise;
  }

  /** Hooks for tests that simulate network faults. Not for production use. */
  readonly testHooks = {
    /** Drop the socket now (the client reconnects and re-attaches). */
    dropConnection: (): void => { this.conn?.destroy('dropped by test hook'); },
    /** Stop (or resume) pings and the read timeout, so the server sees a silent client. */
    pausePings: (paused: boolean): void => {
      this.pingsPaused = paused;
      if (this.conn !== null) this.conn.pingsPaused = paused;
    },
    /** Drop the socket and do not reconnect for `ms` (a partition). */
    partition: (ms: number): void => {
      this.suspendUntilMs = this.rt.now() + ms;
      this.conn?.destroy('partitioned by test hook');
    },
    /** End a partition early. */
    heal: (): void => { this.suspendUntilMs = 0; },
  };

  // ---- requests ----

  private terminalError(path?: string): ZkError {
    return this._state === 'expired' ? sessionExpired(undefined, path) : sessionExpired('client closed', path);
  }

  /** Send a request (or queue it until connected). `path` is the client path named in errors. */
  protected submit(req: ZkRequest, path?: string, onReply?: (err: number) => void, timeoutMs = this.requestTimeoutMs): Promise<Reply> {
    if (this.final) return Promise.reject(this.terminalError(path));
    if (this.closing && req.type !== OpCode.closeSession) return Promise.reject(sessionExpired('client is closing', path));
    let frame: Buffer;
    try {
      frame = encodeCall(req, path);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Reply>((resolve, reject) => {
      const call = newCall(req, frame, path, onReply, timeoutMs, resolve, reject, this.rt.now());
      if (this.canSend()) this.sendCall(call);
      else this.enqueue(call);
    });
  }

  private canSend(): boolean {
    return this._state === 'connected' && this.conn !== null && this.conn.isOpen;
  }

  private sendCall(call: Call): void {
    this.xid = this.xid >= 0x7fffffff ? 1 : this.xid + 1;
    this.conn!.send(call.frame, pendingOf(call, this.xid, this.log));
  }

  private enqueue(call: Call): void {
    if (!this.waiting.push(call)) failCall(call, connectionLoss(`not connected and ${this.waiting.length} requests already wait`, call.path));
  }

  /** Add credentials to the connection (replayed after every reconnect). Resolves on the server's answer. */
  protected sendAuth(scheme: string, auth: Buffer): Promise<void> {
    if (this.final) return Promise.reject(this.terminalError());
    const conn = this.canSend() ? this.conn : null;
    return this.auth.add(scheme, auth, this.requestTimeoutMs, conn === null ? null : (f) => conn.send(f));
  }

  // ---- connecting ----

  private async connectLoop(): Promise<void> {
    if (this.connectLoopRunning) return;
    this.connectLoopRunning = true;
    try {
      let failures = 0;
      let lastError = '';
      while (!this.final) {
        while (!this.final && this.suspendUntilMs > this.rt.now()) await sleepOn(this.rt, Math.min(50, this.suspendUntilMs - this.rt.now()));
        if (this.final) return;
        const w = this.connectWaiter;
        if (w !== null && this.rt.now() > w.deadlineMs) {
          const e = connectionLoss(`could not connect to ${this.hosts.map((h) => `${h.host}:${h.port}`).join(',')} (${lastError})`);
          this.connectWaiter = null;
          this.finish('closed', () => e);
          w.reject(e);
          return;
        }
        const hp = this.hosts[this.hostIndex];
        this.hostIndex = (this.hostIndex + 1) % this.hosts.length;
        try {
          const { conn, response } = await Connection.open({
            host: hp.host, port: hp.port, tls: this.tls,
            request: {
              protocolVersion: 0, lastZxidSeen: this._lastZxidSeen, timeOut: this.sessionTimeoutMs,
              sessionId: this._sessionId, passwd: this._passwd, readOnly: this.canBeReadOnly,
            },
            handshakeTimeoutMs: this.connectTimeoutMs,
            runtime: this.rt,
            requestTimeoutMs: this.requestTimeoutMs,
            events: {
              notification: (ev) => this.onNotification(conn, ev),
              authReply: (err) => { if (this.conn === conn) this.onAuthReply(err); },
              zxid: (z) => { if (z > this._lastZxidSeen) this._lastZxidSeen = z; },
              closed: (reason) => this.onConnectionClosed(conn, reason),
            },
          });
          if (this.final) {
            conn.destroy('client closed');
            return;
          }
          if (response.timeOut <= 0 || (this._sessionId !== 0n && response.sessionId !== this._sessionId)) {
            conn.destroy('session expired');
            this.log.warn({ sessionId: this._sessionId, server: conn.remote }, 'zk client: session expired');
            this.expire();
            return;
          }
          if (conn.isOpen) {
            this.adopt(conn, response.sessionId, response.passwd, response.timeOut, response.readOnly);
            return;
          }
          throw connectionLoss(`${conn.remote} closed the connection right after the handshake`);
        } catch (e) {
          failures++;
          lastError = (e as Error).message;
          this.log.debug({ server: `${hp.host}:${hp.port}`, err: lastError }, 'zk client: connect attempt failed');
        }
        if (failures % this.hosts.length === 0) {
          const round = failures / this.hosts.length;
          const base = Math.min(BACKOFF_MS_MAX, 20 * 2 ** Math.min(round, 10));
          await sleepOn(this.rt, base / 2 + this.rt.random() * (base / 2));
        }
      }
    } finally {
      this.connectLoopRunning = false;
    }
  }

  private adopt(conn: Connection, sessionId: bigint, passwd: Buffer, timeOutMs: number, readOnly: boolean): void {
    const reattach = this._sessionId !== 0n;
    this.conn = conn;
    this._sessionId = sessionId;
    this._passwd = Buffer.from(passwd);
    this._negotiatedTimeoutMs = timeOutMs;
    this._readOnly = readOnly;
    conn.pingsPaused = this.pingsPaused;
    conn.start(timeOutMs);
    this.log.info({ sessionId, server: conn.remote, timeoutMs: timeOutMs, reattach }, 'zk client: session established');
    this.auth.replay((f) => conn.send(f));
    for (const req of setWatchesRequests(this.watches.snapshot(), this.chroot, this._lastZxidSeen)) {
      conn.send(encodeRequestFrame(Xid.setWatches, req), {
        xid: Xid.setWatches, opType: req.type, sentAtMs: 0,
        complete: (hdr) => { if (hdr.err !== Err.OK) this.log.warn({ err: hdr.err }, 'zk client: setWatches refused'); },
        fail: () => {},
      });
    }
    // Requests that waited for the connection go out after auth and setWatches, in
    // order, and before anything a 'state' listener sends.
    for (const c of this.waiting.drain()) this.sendCall(c);
    this.setState('connected');
    const w = this.connectWaiter;
    this.connectWaiter = null;
    w?.resolve();
  }

  private onAuthReply(err: number): void {
    this.auth.reply(err);
    if (err !== Err.OK) this.emitEvent(stateEvent(KeeperState.AuthFailed));
  }

  private onConnectionClosed(conn: Connection, reason: string): void {
    if (this.conn !== conn) return;
    this.conn = null;
    this.auth.disconnected();
    if (this.final || this.closeAcked) return;
    this.log.warn({ sessionId: this._sessionId, server: conn.remote, reason }, 'zk client: disconnected');
    this.setState('disconnected');
    this.emitEvent(stateEvent(KeeperState.Disconnected));
    void this.connectLoop();
  }

  private onNotification(conn: Connection, ev: WatcherEvent): void {
    if (this.conn !== conn) return;
    const path = toClientPath(this.chroot, ev.path);
    if (path === null) {
      this.log.warn({ path: ev.path, chroot: this.chroot }, 'zk client: notification outside the chroot');
      return;
    }
    const event: WatchEvent = { type: ev.type, state: ev.state, path };
    for (const w of this.watches.trigger(event)) this.callWatcher(w, event);
  }

  protected callWatcher(w: Watcher, ev: WatchEvent): void {
    try {
      w(ev);
    } catch (e) {
      this.log.error({ err: e, path: ev.path }, 'zk client: watcher threw');
    }
  }

  // ---- state ----

  private setState(s: ZkState): void {
    if (this._state === s) return;
    this._state = s;
    if (s === 'connected') this.emitEvent(stateEvent(this._readOnly ? KeeperState.ConnectedReadOnly : KeeperState.SyncConnected));
    try {
      this.emit('state', s);
    } catch (e) {
      this.log.error({ err: e }, "zk client: 'state' listener threw");
    }
  }

  private emitEvent(ev: WatchEvent): void {
    if (this.defaultWatcher !== undefined) this.callWatcher(this.defaultWatcher, ev);
    try {
      this.emit('event', ev);
    } catch (e) {
      this.log.error({ err: e }, "zk client: 'event' listener threw");
    }
  }

  private expire(): void {
    this.finish('expired', (p) => sessionExpired(undefined, p));
  }

  /** Enter a terminal state: fail everything outstanding, tell every watcher once, stop all timers. */
  protected finish(state: 'expired' | 'closed', err: (path?: string) => ZkError): void {
    if (this.final) return;
    this.final = true;
    const conn = this.conn;
    this.conn = null;
    conn?.destroy(state === 'expired' ? 'session expired' : 'client closed');
    for (const c of this.waiting.drain()) failCall(c, err(c.path));
    this.auth.failAll(() => err());
    const w = this.connectWaiter;
    this.connectWaiter = null;
    w?.reject(err());
    const ev = stateEvent(state === 'expired' ? KeeperState.Expired : KeeperState.Closed);
    for (const watcher of this.watches.drainAll()) this.callWatcher(watcher, ev);
    this.setState(state);
    this.emitEvent(ev);
  }

  /**
   * Leave without ending the session: the socket closes and this client is done, but the session
   * lives on in the quorum (its ephemerals with it) until its timeout passes, so that another
   * client given its id and password (options.session) can re-attach to it. Idempotent.
   */
  detach(): void {
    if (this.final) return;
    this.closing = true;
    this.closePromise ??= Promise.resolve();
    this.finish('closed', (p) => sessionExpired('client detached', p));
  }

  /** End the session: closeSession (bounded by timeoutMs, default min(requestTimeoutMs, 5 s)), then the socket. Idempotent. */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closePromise === null) this.closePromise = this.doClose(opts.timeoutMs ?? Math.min(this.requestTimeoutMs, 5000));
    return this.closePromise;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    if (this.final) {
      if (this._state !== 'closed') this.setState('closed');
      return;
    }
    this.closing = true;
    if (this._sessionId !== 0n && (this.conn !== null || this.connectLoopRunning)) {
      const deadline = this.rt.now() + timeoutMs;
      for (let attempt = 0; attempt < 10 && !this.final && !this.closeAcked; attempt++) {
        const left = deadline - this.rt.now();
        if (left <= 0) break;
        let timer: unknown;
        const timeout = new Promise<'timeout'>((r) => { timer = this.rt.setTimer(() => r('timeout'), left); });
        try {
          const sent = this.submit({ type: OpCode.closeSession }, undefined, () => { this.closeAcked = true; }, left);
          sent.catch(() => {});
          if ((await Promise.race([sent, timeout])) === 'timeout') break;
        } catch (e) {
          if (!(e instanceof ZkError) || e.code !== Err.CONNECTIONLOSS) break;
        } finally {
          this.rt.clearTimer(timer);
        }
      }
    }
    this.finish('closed', (p) => sessionExpired('client closed', p));
  }
}
