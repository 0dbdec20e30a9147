// A small Redis client (RESP2 over one TCP connection, pipelined): what the
// Redis recipe's agent needs to read INFO and send REPLICAOF, and what the
// recipe's test and benchmark use to write through HAProxy. No dependency:
// the repo takes no new npm package for an example.
import net from 'node:net';

/** Bounds on what a reply may hold: a server (or something posing as one) cannot make us buffer without end. */
export const RESP_LIMITS = {
  /** The largest bulk string accepted (INFO is a few kB; the tests' values are small). */
  bulk_bytes_max: 16 * 1024 * 1024,
  /** The most elements in one array reply (MGET batches stay far below). */
  array_elements_max: 100_000,
  /** Nested arrays deeper than this are refused. */
  depth_max: 8,
  /** Commands sent and not yet answered on one connection. */
  in_flight_max: 10_000,
} as const;

/** An error reply from the server (-ERR, -READONLY, -NOREPLICAS ...): the connection stays usable. */
export class RedisReplyError extends Error {
  /** The first word of the reply: ERR, READONLY, NOREPLICAS, LOADING ... */
  readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = 'RedisReplyError';
    this.code = message.split(' ')[0] ?? 'ERR';
  }
}

/** The connection failed, timed out or the server broke the protocol: the connection is closed. */
export class RedisConnectionError extends Error {
  constructor(message: string, readonly code: 'CONNECT' | 'TIMEOUT' | 'CLOSED' | 'PROTOCOL' | 'BUSY') {
    super(message);
    this.name = 'RedisConnectionError';
  }
}

export type RespValue = string | number | null | RespValue[] | RedisReplyError;

type Parsed = { value: RespValue; next: number } | null;

/** One value from `buf` at `at`, or null when the buffer does not hold all of it yet. Throws on a protocol error. */
export function parseResp(buf: Buffer, at: number, depth = 0): Parsed {
  if (at >= buf.length) return null;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) {
    if (buf.length - at > 64 * 1024) throw new Error('a reply line longer than 64 kB');
    return null;
  }
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+': return { value: line, next };
    case '-': return { value: new RedisReplyError(line), next };
    case ':': {
      const n = Number(line);
      if (!Number.isSafeInteger(n)) throw new Error(`an integer reply out of range: ${line.slice(0, 30)}`);
      return { value: n, next };
    }
    case '$': {
      const len = Number(line);
      if (len === -1) return { value: null, next };
      if (!Number.isSafeInteger(len) || len < 0 || len > RESP_LIMITS.bulk_bytes_max) throw new Error(`a bulk length of ${line.slice(0, 30)}`);
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n === -1) return { value: null, next };
      if (!Number.isSafeInteger(n) || n < 0 || n > RESP_LIMITS.array_elements_max) throw new Error(`an array length of ${line.slice(0, 30)}`);
      if (depth >= RESP_LIMITS.depth_max) throw new Error(`arrays nested deeper than ${RESP_LIMITS.depth_max}`);
      const out: RespValue[] = [];
      let p = next;
      for (let k = 0; k < n; k++) {
        const r = parseResp(buf, p, depth + 1);
        if (r === null) return null;
        out.push(r.value);
        p = r.next;
      }
      return { value: out, next: p };
    }
  }
  throw new Error(`a reply starting with ${JSON.stringify(type)}`);
}

export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

interface Waiter { resolve: (v: RespValue) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * One connection. Commands are answered in order; a command that gets no answer within its
 * timeout closes the connection (what follows on the wire could no longer be matched to it) and
 * fails every command still waiting.
 */
export class RedisConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: Waiter[] = [];
  private closedBy: RedisConnectionError | null = null;

  private constructor(private readonly sock: net.Socket, readonly where: string) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e: Error & { code?: string }) => this.fail(new RedisConnectionError(`${where}: ${e.code ?? e.message}`, 'CLOSED')));
    sock.on('close', () => this.fail(new RedisConnectionError(`${where}: connection closed`, 'CLOSED')));
  }

  static connect(host: string, port: number, timeoutMs: number): Promise<RedisConnection> {
    const where = `redis ${host}:${port}`;
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => { sock.destroy(); reject(new RedisConnectionError(`${where}: no connection within ${timeoutMs} ms`, 'TIMEOUT')); }, timeoutMs);
      sock.once('connect', () => { clearTimeout(timer); sock.removeAllListeners('error'); resolve(new RedisConnection(sock, where)); });
      sock.once('error', (e: Error & { code?: string }) => { clearTimeout(timer); sock.destroy(); reject(new RedisConnectionError(`${where}: ${e.code ?? e.message}`, 'CONNECT')); });
    });
  }

  get open(): boolean { return this.closedBy === null; }

  /** The reply (an error reply resolves as a RedisReplyError value: use `call` to have it thrown). */
  send(args: readonly (string | number)[], timeoutMs: number): Promise<RespValue> {
    if (this.closedBy !== null) return Promise.reject(this.closedBy);
    if (this.waiting.length >= RESP_LIMITS.in_flight_max) return Promise.reject(new RedisConnectionError(`${this.where}: ${RESP_LIMITS.in_flight_max} commands already in flight`, 'BUSY'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new RedisConnectionError(`${this.where}: no answer to ${String(args[0])} within ${timeoutMs} ms`, 'TIMEOUT')), timeoutMs);
      this.waiting.push({ resolve, reject, timer });
      this.sock.write(encodeCommand(args));
    });
  }

  /** The reply; an error reply is thrown as RedisReplyError. */
  async call(args: readonly (string | number)[], timeoutMs: number): Promise<Exclude<RespValue, RedisReplyError>> {
    const v = await this.send(args, timeoutMs);
    if (v instanceof RedisReplyError) throw v;
    return v;
  }

  close(): void {
    this.fail(new RedisConnectionError(`${this.where}: closed by us`, 'CLOSED'));
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let at = 0;
    for (;;) {
      let r: Parsed;
      try { r = parseResp(this.buf, at); } catch (e) { this.fail(new RedisConnectionError(`${this.where}: protocol error: ${(e as Error).message}`, 'PROTOCOL')); return; }
      if (r === null) break;
      at = r.next;
      const w = this.waiting.shift();
      if (w === undefined) { this.fail(new RedisConnectionError(`${this.where}: a reply nobody asked for`, 'PROTOCOL')); return; }
      clearTimeout(w.timer);
      w.resolve(r.value);
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
  }

  private fail(e: RedisConnectionError): void {
    if (this.closedBy !== null) return;
    this.closedBy = e;
    this.sock.destroy();
    for (const w of this.waiting.splice(0)) { clearTimeout(w.timer); w.reject(e); }
  }
}

/** One command on a connection of its own, all of it within `timeoutMs`. */
export async function redisCall(host: string, port: number, args: readonly (string | number)[], timeoutMs: number): Promise<Exclude<RespValue, RedisReplyError>> {
  const t0 = performance.now();
  const c = await RedisConnection.connect(host, port, timeoutMs);
  try {
    return await c.call(args, Math.max(1, timeoutMs - (performance.now() - t0)));
  } finally {
    c.close();
  }
}

/** INFO's text as key -> value (section headers and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** What the recipe reads from `INFO replication persistence`. */
export interface ReplicationView {
  role: 'master' | 'slave';
  /** master_repl_offset: on a replica, how much of its primary's stream it has applied. */
  offset: number;
  replid: string;
  /** The history this one continued from (a promoted replica keeps its old primary's id here), or null. */
  replid2: string | null;
  /** A replica's primary as configured (host, port), and whether the link is up. */
  master: { host: string; port: number; linkUp: boolean } | null;
  /** A full resynchronization is running: the data set is the old one until it ends. */
  syncing: boolean;
  /** Loading its data set from disk at start: it answers little until done. */
  loading: boolean;
}

const NO_REPLID = '0000000000000000000000000000000000000000';

export function replicationView(info: Map<string, string>): ReplicationView {
  const need = (k: string) => {
    const v = info.get(k);
    if (v === undefined) throw new Error(`INFO has no ${k}`);
    return v;
  };
  const role = need('role');
  if (role !== 'master' && role !== 'slave') throw new Error(`INFO role is ${JSON.stringify(role)}`);
  const offset = Number(need('master_repl_offset'));
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`INFO master_repl_offset is ${info.get('master_repl_offset')}`);
  const replid2 = info.get('master_replid2') ?? NO_REPLID;
  return {
    role, offset, replid: need('master_replid'), replid2: replid2 === NO_REPLID ? null : replid2,
    master: role === 'slave' ? { host: need('master_host'), port: Number(need('master_port')), linkUp: info.get('master_link_status') === 'up' } : null,
    syncing: info.get('master_sync_in_progress') === '1',
    loading: info.get('loading') === '1',
  };
}

/** INFO replication and persistence of one server, within `timeoutMs`. */
export async function readReplication(host: string, port: number, timeoutMs: number): Promise<ReplicationView> {
  const text = await redisCall(host, port, ['INFO', 'replication', 'persistence'], timeoutMs);
  if (typeof text !== 'string') throw new Error(`redis ${host}:${port}: INFO answered ${JSON.stringify(text)?.slice(0, 80)}`);
  return replicationView(parseInfo(text));
}

/**
 * How many bytes of replication stream `me` lacks compared with `peer`: within one history (the
 * ids they share) the difference of offsets; across histories everything the peer holds, since a
 * full resynchronization from `me` would discard it.
 */
export function bytesBehind(me: ReplicationView, peer: ReplicationView): number {
  const mine = [me.replid, me.replid2].filter((x): x is string => x !== null);
  const shared = [peer.replid, peer.replid2].some((x) => x !== null && mine.includes(x));
  return shared ? Math.max(0, peer.offset - me.offset) : peer.offset;
}
