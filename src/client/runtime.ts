// What the ZooKeeper client takes from its surroundings: a clock, timers,
// randomness for backoff jitter, and TCP (or TLS) connections. Production
// uses Node's (nodeRuntime); the controller simulator gives the same client
// simulated ones, so the client code that runs there is the code we ship.
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';

/** The client protocol over TLS: the CA the servers' certificates chain to, and this client's own certificate when the server asks for one. */
export interface ZkClientTls { ca: string; cert?: string; key?: string }

/** What a connection hears from its socket. */
export interface ClientSocketEvents {
  /** Connected (after the TLS handshake, with TLS): the connect request may be written. */
  ready(): void;
  data(chunk: Buffer): void;
  /** The socket is gone (an error, or the server closed it); called at most once. */
  closed(reason: string): void;
}

export interface ClientSocket {
  write(bytes: Buffer): void;
  destroy(): void;
}

export interface ClientRuntime {
  /** Monotonic milliseconds. */
  now(): number;
  /** A one-shot timer; `unref`: it does not keep the process alive. */
  setTimer(f: () => void, ms: number, unref?: boolean): unknown;
  clearTimer(t: unknown): void;
  /** In [0, 1). */
  random(): number;
  connect(host: string, port: number, tls: ZkClientTls | null, events: ClientSocketEvents): ClientSocket;
}

export const nodeRuntime: ClientRuntime = {
  now: () => performance.now(),
  setTimer: (f, ms, unref) => {
    const t = setTimeout(f, ms);
    if (unref === true) t.unref();
    return t;
  },
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
  random: () => Math.random(),
  connect(host, port, t, events) {
    // With TLS the server's certificate must chain to the CA and name the host dialled.
    const socket = t === null ? net.connect({ host, port })
      : tls.connect({ host, port, ca: t.ca, ...(t.cert === undefined ? {} : { cert: t.cert, key: t.key }), rejectUnauthorized: true, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    socket.setNoDelay(true);
    let closed = false;
    const close = (reason: string) => { if (!closed) { closed = true; events.closed(reason); } };
    socket.on(t === null ? 'connect' : 'secureConnect', () => events.ready());
    socket.on('data', (chunk: Buffer) => events.data(chunk));
    socket.on('error', (e) => close(`socket error: ${e.message}`));
    socket.on('close', () => close('connection closed by server'));
    socket.on('end', () => close('connection closed by server'));
    return { write: (b) => { socket.write(b); }, destroy: () => { closed = true; socket.destroy(); } };
  },
};

/** A repeating timer on a runtime's one-shot timers; stop() ends it. */
export function everyMs(rt: ClientRuntime, ms: number, f: () => void, unref = false): { stop(): void } {
  let t: unknown = null;
  let stopped = false;
  const arm = () => { t = rt.setTimer(() => { if (stopped) return; f(); if (!stopped) arm(); }, ms, unref); };
  arm();
  return { stop: () => { stopped = true; if (t !== null) rt.clearTimer(t); } };
}

export const sleepOn = (rt: ClientRuntime, ms: number): Promise<void> => new Promise((r) => { rt.setTimer(r, ms); });
