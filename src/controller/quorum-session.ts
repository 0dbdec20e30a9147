// A controller's quorum session, kept for ever: connect (re-attaching to the
// previous run's session when one was saved), say when it is connected,
// disconnected or expired, and after an expiry start a new one. Hadoop's
// ZKFC gives up after three tries; a controller never does: it retries with
// backoff. The controller process and the controller simulator both run this
// loop, with their own clients and timers.
import type { ZkClient, ZkLogger } from '../client/index.js';
import type { SavedSession } from './session-file.js';

export interface QuorumSessionDeps {
  /** A client that re-attaches to `saved`, or makes a new session (null). */
  makeClient(saved: SavedSession | null): ZkClient;
  setTimer(ms: number, f: () => void): void;
  log: Pick<ZkLogger, 'info' | 'warn'>;
  /** A connection to the session is made: keep the session for a restart. */
  established(zk: ZkClient): void;
  /** Make the connection ready before the core hears of it (auth, base path, what must be read first). */
  prepare(zk: ZkClient): Promise<void>;
  /** Prepared, and still connected: tell the core. */
  connected(zk: ZkClient): void;
  disconnected(): void;
  /** The session expired (its file goes; the core hears of it); a new one follows. */
  expired(): void;
}

export class QuorumSessionLoop {
  /** The current client (connected or not); null before the first. */
  zk: ZkClient | null = null;
  private stopped = false;
  /** Connections made so far: only the newest one's preparation may tell the core it is connected. */
  private connections = 0;

  /** @param saved the previous run's session, to re-attach to until it is found expired (or a session is made). */
  constructor(private saved: SavedSession | null, private readonly d: QuorumSessionDeps) {}

  stop(): void { this.stopped = true; }

  async run(): Promise<void> {
    let backoff = 200;
    while (!this.stopped) {
      const saved = this.saved;
      const zk = this.d.makeClient(saved);
      this.zk = zk;
      let established = false;
      zk.on('state', (s) => {
        if (this.stopped) return;
        if (s === 'connected') {
          established = true;
          this.saved = null;
          this.d.log.info({ sessionId: `0x${zk.sessionId.toString(16)}`, timeoutMs: zk.negotiatedTimeoutMs, reattached: saved !== null && zk.sessionId === saved.id }, 'quorum session connected');
          this.d.established(zk);
          const connection = ++this.connections;
          void this.d.prepare(zk).then(
            () => {
              // The connection may have dropped while it was prepared (a preparation step that keeps its
              // last value on an error still resolves): a 'connected' told after that 'disconnected' would
              // leave the core believing it is connected for as long as the partition lasts. A newer
              // connection tells the core itself, once its own preparation (its maintenance read) is done.
              if (!this.stopped && connection === this.connections && zk.state === 'connected') this.d.connected(zk);
            },
            (e: Error) => this.d.log.warn({ err: e.message }, 'could not prepare the quorum session; waiting for the next connection'),
          );
        } else if (s === 'disconnected') {
          this.d.disconnected();
        } else if (s === 'expired') {
          this.d.log.warn({ sessionId: `0x${zk.sessionId.toString(16)}` }, saved !== null && !established ? 'the previous run\'s quorum session has expired: starting a new one' : 'quorum session expired: starting a new one');
          this.saved = null;
          this.d.expired();
          void zk.close().catch(() => undefined);
          // Expired while re-attaching: the connect below fails and its loop goes on.
          if (established) this.d.setTimer(100, () => void this.run());
        }
      });
      try {
        await zk.connect();
        return;
      } catch (e) {
        // The previous run's session expired: a new one at once (the 'expired' listener said so).
        if (saved !== null && this.saved === null) { await zk.close().catch(() => undefined); continue; }
        this.d.log.warn({ err: (e as Error).message, retryInMs: backoff }, 'cannot reach the quorum; retrying');
        await zk.close().catch(() => undefined);
        await new Promise<void>((r) => { this.d.setTimer(backoff, r); });
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}
