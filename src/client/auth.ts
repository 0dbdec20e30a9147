// addAuth credentials of a session: kept for the session's life and replayed,
// in the order added, at the start of every new connection (before
// setWatches and before any waiting request). Auth replies carry xid -4 and
// are not part of the pending queue (ZooKeeper answers them on arrival), so
// they are matched here, in the order the credentials were sent.
import { CLIENT_LIMITS } from '../limits.js';
import { OpCode, Xid } from '../proto/zk-constants.js';
import { connectionLoss, ZkError } from './errors.js';
import { encodeRequestFrame } from './frame.js';
import type { ZkLogger } from './log.js';
import type { ClientRuntime } from './runtime.js';

interface Waiter { resolve(): void; reject(e: ZkError): void }
interface Credential { scheme: string; auth: Buffer; waiters: Waiter[] }

/** Credentials one session may hold (ZooKeeper bounds identities per connection too). */
export const AUTH_CREDENTIALS_MAX = CLIENT_LIMITS.auth_credentials_max;

export type SendFrame = (frame: Buffer) => void;

export class AuthCredentials {
  private readonly creds: Credential[] = [];
  private inFlight: Credential[] = [];

  constructor(private readonly log: ZkLogger, private readonly rt: ClientRuntime) {}

  get size(): number {
    return this.creds.length;
  }

  /**
   * Remember a credential and, when `send` is given (connected), send it now.
   * Resolves when a server accepts it; bounded by timeoutMs (CONNECTIONLOSS).
   */
  add(scheme: string, auth: Buffer, timeoutMs: number, send: SendFrame | null): Promise<void> {
    let cred = this.creds.find((c) => c.scheme === scheme && c.auth.equals(auth));
    if (cred === undefined) {
      if (this.creds.length >= AUTH_CREDENTIALS_MAX) return Promise.reject(connectionLoss(`more than ${AUTH_CREDENTIALS_MAX} credentials`));
      cred = { scheme, auth: Buffer.from(auth), waiters: [] };
      this.creds.push(cred);
    }
    const c = cred;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        this.rt.clearTimer(t);
        f();
      };
      const t: unknown = this.rt.setTimer(() => finish(() => reject(connectionLoss(`no answer to addAuth within ${timeoutMs} ms`))), timeoutMs);
      c.waiters.push({ resolve: () => finish(resolve), reject: (e) => finish(() => reject(e)) });
      if (send !== null && !this.inFlight.includes(c)) this.sendOne(c, send);
    });
  }

  /** A new connection: send every credential, in the order added. */
  replay(send: SendFrame): void {
    this.inFlight = [];
    for (const c of this.creds) this.sendOne(c, send);
  }

  /** The connection is gone: unanswered credentials are answered on the next one. */
  disconnected(): void {
    this.inFlight = [];
  }

  /** An auth reply (xid -4). A refused credential is dropped; its callers get the error. */
  reply(err: number): void {
    const c = this.inFlight.shift();
    if (c === undefined) {
      this.log.warn({ err }, 'zk client: auth reply with no auth request outstanding');
      return;
    }
    const waiters = c.waiters;
    c.waiters = [];
    if (err === 0) {
      for (const w of waiters) w.resolve();
      return;
    }
    const i = this.creds.indexOf(c);
    if (i >= 0) this.creds.splice(i, 1);
    this.log.error({ scheme: c.scheme, err }, 'zk client: authentication failed');
    for (const w of waiters) w.reject(new ZkError(err, undefined, `addAuth ${c.scheme} refused`));
  }

  /** The session ended: every caller still waiting gets the error. */
  failAll(err: () => ZkError): void {
    this.inFlight = [];
    for (const c of this.creds) {
      const ws = c.waiters;
      c.waiters = [];
      for (const w of ws) w.reject(err());
    }
  }

  private sendOne(c: Credential, send: SendFrame): void {
    this.inFlight.push(c);
    send(encodeRequestFrame(Xid.auth, { type: OpCode.auth, authType: 0, scheme: c.scheme, auth: c.auth }));
  }
}
