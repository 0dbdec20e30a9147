// One HTTP request over node:http / node:https, with a deadline over the
// whole exchange (connect, headers and body) and a cap on the answer's size.
// The controller's calls (health checks, hooks, fencing, admin calls to the
// other controllers, the journal's epoch) go through here rather than undici:
// they are a few a second at most, and undici costs a controller about 30 MB
// of resident memory (its modules, then its WebAssembly HTTP parser at the
// first request) where node's own client costs about 6.
import http from 'node:http';
import https from 'node:https';

export interface HttpCallOptions {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Bounds the whole call, from the connect to the last byte of the answer. */
  timeoutMs: number;
  /** A keep-alive agent to reuse connections (or hold one); else a connection per call. */
  agent?: http.Agent;
  /** For https without an agent: the CA to verify the server against, and this side's certificate. */
  tls?: { ca?: string | Buffer | null; cert?: string | Buffer; key?: string | Buffer } | null;
  /** Answers longer than this fail (a hostile or broken server cannot make us buffer without end). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Called with the socket once the answer's headers are in (a health check holds it to learn of its close). */
  onSocket?: (socket: import('node:net').Socket, res: http.IncomingMessage) => void;
}

export interface HttpAnswer { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/**
 * `kind`: the deadline passed (timeout), no answer came (unreachable: refused, reset, a bad URL), or
 * an answer started and broke off or outgrew the cap (answer). `code` is the system's (ECONNREFUSED,
 * ECONNRESET, ...) when there is one.
 */
export class HttpCallError extends Error {
  constructor(message: string, readonly kind: 'timeout' | 'unreachable' | 'answer', readonly code: string | undefined) {
    super(message);
  }

  get timedOut(): boolean { return this.kind === 'timeout'; }
}

/** Why an http call failed, as a reason says it: the deadline, or the system's code (ECONNREFUSED, ...). */
export function httpFailure(e: unknown, timeoutMs: number): string {
  if (e instanceof HttpCallError && e.timedOut) return `no answer within ${timeoutMs} ms`;
  return (e as Error & { code?: string }).code ?? (e as Error).message;
}

export const HTTP_CALL_BODY_BYTES_MAX = 1 << 20;

export function httpCall(url: string | URL, o: HttpCallOptions): Promise<HttpAnswer> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const deadline = performance.now() + o.timeoutMs;
  // A kept-alive connection the server closed as we reused it fails the request before any answer:
  // once, that is the connection's fault, not the server's, and a new one is tried.
  return attempt(u, o, o.timeoutMs).catch((e: unknown) => {
    if (!(e instanceof StaleSocketError)) throw e;
    const left = Math.floor(deadline - performance.now());
    if (left <= 0) throw new HttpCallError(`no answer within ${o.timeoutMs} ms`, 'timeout', undefined);
    return attempt(u, o, left).catch((e2: unknown) => { throw e2 instanceof StaleSocketError ? e2.first : e2; });
  });
}

class StaleSocketError extends Error {
  constructor(readonly first: HttpCallError) { super(first.message); }
}

function attempt(u: URL, o: HttpCallOptions, timeoutMs: number): Promise<HttpAnswer> {
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(new HttpCallError(`${u.protocol} is not http: or https:`, 'unreachable', undefined));
  const max = o.maxBodyBytes ?? HTTP_CALL_BODY_BYTES_MAX;
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (e: HttpCallError | StaleSocketError | null, a?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (e !== null) { req.destroy(); reject(e); } else resolve(a!);
    };
    const tls = secure && o.agent === undefined && o.tls != null
      ? { ...(o.tls.ca == null ? {} : { ca: o.tls.ca }), ...(o.tls.cert === undefined ? {} : { cert: o.tls.cert, key: o.tls.key }) }
      : {};
    const req = (secure ? https : http).request(u, {
      method: o.method,
      headers: { ...o.headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
      agent: o.agent ?? false,
      ...tls,
    }, (res) => {
      o.onSocket?.(res.socket, res);
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > max) { finish(new HttpCallError(`the answer is ${declared} bytes, more than the ${max} taken`, 'answer', undefined)); return; }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) { finish(new HttpCallError(`the answer is more than the ${max} bytes taken`, 'answer', undefined)); return; }
        chunks.push(c);
      });
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e: Error & { code?: string }) => finish(new HttpCallError(`the answer broke off (${e.code ?? e.message})`, 'answer', e.code)));
      res.on('close', () => { if (!res.complete) finish(new HttpCallError('the answer broke off', 'answer', 'ECONNRESET')); });
    });
    const timer = setTimeout(() => finish(new HttpCallError(`no answer within ${o.timeoutMs} ms`, 'timeout', undefined)), timeoutMs);
    req.on('error', (e: Error & { code?: string }) => {
      const err = new HttpCallError(e.code ?? e.message, 'unreachable', e.code);
      finish(req.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') ? new StaleSocketError(err) : err);
    });
    req.end(body);
  });
}
