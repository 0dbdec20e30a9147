// The client side of the simulated network: the real ZooKeeper client
// (ZkClient, through the ClientRuntime it takes) dials simulated servers and
// speaks the real wire protocol to them. Bytes a client writes reach the
// server's ServerCore through the client port's own frame decoding
// (client-frames.ts); the core's answers are encoded the same way and arrive
// as socket data. Each direction of a connection delivers in order, as TCP
// does; a link cut between a process and the quorum holds what is sent until
// it heals (retransmission), and a connection whose server crashed, or that
// its server closed, ends with a close after what was already on the wire.
// A process's timers and socket events run through its SimProcess: held while
// it is paused, dropped once it crashed (the kernel then closes its sockets).
import type { Outbound } from '../core/zk/server-core.js';
import type { ClientRuntime, ClientSocket, ClientSocketEvents } from '../client/runtime.js';
import { FrameDecoder } from '../client/frame.js';
import { JuteError, JuteWriter } from '../proto/jute.js';
import { decodeClientFrame, encodeOutbound } from '../proto/client-frames.js';
import type { EventQueue } from './event-queue.js';
import type { Rng } from './rng.js';
import type { SimEnv } from './sim-cluster.js';
import type { ServerHooks, ZkApp } from './sim-zk-app.js';

/** A simulated process: its events run now, or when its pause ends, and are dropped once the life they belong to ended. */
export interface SimProcess {
  readonly name: string;
  readonly life: number;
  deliver(life: number, f: () => void): void;
  after(ms: number, f: () => void): { cancelled: boolean };
  /** False while the link between this process and the quorum is cut. */
  quorumLinkUp(): boolean;
}

/** One direction of a connection: in order, each send after the one before (TCP's order). */
export class Pipe {
  private nextAt = 0;
  private held: (() => void)[] = [];
  constructor(private readonly q: EventQueue, private readonly latency: () => number, private readonly linkUp: () => boolean = () => true) {}
  /** What is sent while the link is cut waits for heal() (in order); what was on the wire before arrives. */
  send(f: () => void): void {
    if (!this.linkUp()) { this.held.push(f); return; }
    this.nextAt = Math.max(this.nextAt, this.q.now + this.latency());
    this.q.at(this.nextAt, f);
  }
  heal(): void {
    const held = this.held;
    this.held = [];
    for (const f of held) this.send(f);
  }
}

interface ClientConn {
  id: number;
  server: number;
  proc: SimProcess;
  life: number;
  events: ClientSocketEvents;
  up: Pipe;
  down: Pipe;
  decoder: FrameDecoder;
  handshaken: boolean;
  /** The server knows of the connection (and has not closed it). */
  atServer: boolean;
  /** The client destroyed its socket: nothing more reaches it. */
  clientGone: boolean;
}

export class SimClientNetwork implements ServerHooks {
  private readonly conns = new Map<number, ClientConn>();
  private nextConnId = 1;
  private env: SimEnv | null = null;
  private readonly writer = new JuteWriter();

  constructor(private readonly q: EventQueue, private readonly rng: Rng) {}

  /** The cluster's environment, once it started (servers' apps and their drive). */
  attach(env: SimEnv): void { this.env = env; }

  private latency = (): number => this.rng.range(0.05, 1.5);

  /** The runtime a process's ZkClient runs on: the simulation's clock, the process's timers, the client network. */
  runtime(proc: SimProcess): ClientRuntime {
    const life = proc.life;
    return {
      now: () => this.q.now,
      setTimer: (f, ms) => proc.after(ms, f),
      clearTimer: (t) => { (t as { cancelled: boolean }).cancelled = true; },
      random: () => this.rng.next(),
      connect: (host, _port, _tls, events) => this.dial(proc, life, host, events),
    };
  }

  private dial(proc: SimProcess, life: number, host: string, events: ClientSocketEvents): ClientSocket {
    const server = Number(/^zk(\d+)$/.exec(host)?.[1] ?? NaN);
    const c: ClientConn = {
      id: this.nextConnId++, server, proc, life, events,
      up: new Pipe(this.q, this.latency, () => proc.quorumLinkUp()),
      down: new Pipe(this.q, this.latency, () => proc.quorumLinkUp()),
      decoder: new FrameDecoder(), handshaken: false, atServer: false, clientGone: false,
    };
    this.conns.set(c.id, c);
    // The SYN: lost while the link is cut (the client's handshake timeout gives up); refused by a server that is down.
    if (proc.quorumLinkUp()) {
      this.q.after(this.latency(), () => {
        if (c.clientGone || !proc.quorumLinkUp()) return;
        if (this.appOf(server) === null) { this.toClient(c, () => c.events.closed(`connect ECONNREFUSED ${host}`)); return; }
        c.atServer = true;
        this.env!.drive(server, (app) => (app as ZkApp).core.connectionOpened(c.id, `10.0.1.${server}`, null));
        this.toClient(c, () => c.events.ready());
      });
    }
    return {
      write: (bytes) => { if (!c.clientGone) c.up.send(() => this.atServerSide(c, bytes)); },
      destroy: () => {
        if (c.clientGone) return;
        c.clientGone = true;
        c.up.send(() => this.closeAtServer(c));
      },
    };
  }

  private appOf(server: number): ZkApp | null {
    return (this.env?.app(server) ?? null) as ZkApp | null;
  }

  /** Bytes from a client, read as the client port reads them: a frame that does not parse closes the connection. */
  private atServerSide(c: ClientConn, bytes: Buffer): void {
    if (!c.atServer) return;
    let frames: Buffer[];
    try { frames = c.decoder.push(bytes); } catch { this.serverCloses(c); return; }
    for (const frame of frames) {
      if (!c.atServer) return;
      let f;
      try { f = decodeClientFrame(c.handshaken, frame); } catch (e) {
        if (!(e instanceof JuteError)) throw e;
        this.serverCloses(c);
        return;
      }
      const now = Math.floor(this.q.now);
      if (f.kind === 'connect') {
        c.handshaken = true;
        const passwd = Buffer.from(Array.from({ length: 16 }, () => this.rng.int(256)));
        const req = f.req;
        this.env!.drive(c.server, (app) => (app as ZkApp).core.connect(c.id, req, now, passwd));
      } else {
        const { xid, req } = f;
        this.env!.drive(c.server, (app) => (app as ZkApp).core.request(c.id, xid, req, now));
      }
    }
  }

  private closeAtServer(c: ClientConn): void {
    if (!c.atServer) { this.conns.delete(c.id); return; }
    c.atServer = false;
    this.conns.delete(c.id);
    this.env!.drive(c.server, (app) => (app as ZkApp).core.connectionClosed(c.id));
  }

  /** The server drops a connection it cannot read. */
  private serverCloses(c: ClientConn): void {
    this.closeAtServer(c);
    this.toClient(c, () => c.events.closed('connection closed by server'));
  }

  private toClient(c: ClientConn, f: () => void): void {
    c.down.send(() => c.proc.deliver(c.life, () => { if (!c.clientGone) f(); }));
  }

  // ---- ServerHooks: what the servers' ZooKeeper layers send their clients ----

  deliver(server: number, out: Outbound): void {
    const c = this.conns.get(out.connId);
    if (c === undefined || c.server !== server || !c.atServer) return;
    const w = this.writer;
    w.reset();
    const at = w.beginFrame();
    encodeOutbound(w, out);
    w.finishFrame(at);
    const bytes = Buffer.from(w.toBuffer());
    this.toClient(c, () => c.events.data(bytes));
  }

  closed(server: number, connId: number): void {
    const c = this.conns.get(connId);
    if (c === undefined || c.server !== server || !c.atServer) return;
    c.atServer = false;
    this.conns.delete(c.id);
    this.toClient(c, () => c.events.closed('connection closed by server'));
  }

  /** A process died: its kernel closes its sockets (the close reaches each server when the link lets it). */
  processDied(proc: SimProcess, life: number): void {
    for (const c of [...this.conns.values()]) {
      if (c.proc !== proc || c.life !== life || c.clientGone) continue;
      c.clientGone = true;
      c.up.send(() => this.closeAtServer(c));
    }
  }

  /** The link between `proc` and the quorum healed: what its connections held goes out. */
  healed(proc: SimProcess): void {
    for (const c of this.conns.values()) if (c.proc === proc) { c.up.heal(); c.down.heal(); }
  }
}
