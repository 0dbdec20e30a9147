// A single quorum server: the pure ServerCore driven by the client port, the
// transaction log (group commit) and the snapshot store. A write is answered
// only after its transaction is fsynced. On start the tree, sessions and
// zxid come back from the newest valid snapshot plus the log after it.
import { decodeLoggedTxn, encodeLoggedTxn } from '../proto/txn-codec.js';
import { StorageError } from '../io/txn-log.js';
import { ServerBase, nowMs, type ServerOptions } from './server-base.js';
import type { ServerSnapshotForWords } from './four-letter-words.js';

export { sha1Base64 } from './server-base.js';
export type StandaloneServerOptions = ServerOptions;

export class StandaloneServer extends ServerBase {
  private syncing = false;

  private constructor(opts: StandaloneServerOptions) {
    super(opts);
  }

  static async start(opts: StandaloneServerOptions): Promise<StandaloneServer> {
    const s = new StandaloneServer(opts);
    await s.recover();
    await s.listenClients(opts.tickIntervalMs ?? Math.max(10, Math.min(100, Math.floor(opts.config.tickMs / 4))));
    opts.logger.info({ role: 'standalone', port: s.port, zxid: s.core.lastZxid }, 'quorum server serving clients');
    return s;
  }

  protected mode(): ServerSnapshotForWords['mode'] { return 'standalone'; }
  protected onTick(): void { /* the core's tick is all */ }

  private async recover(): Promise<void> {
    const logger = this.opts.logger;
    const t0 = performance.now();
    const { tree, snapshotZxid } = await this.openStorage();
    let replayed = 0;
    for await (const rec of this.log.read(tree.lastZxid)) {
      this.core.replay(decodeLoggedTxn(rec.payload));
      replayed++;
    }
    const { staleEphemeralMarks } = this.core.recovered(nowMs());
    if (staleEphemeralMarks > 0) {
      logger.warn({ staleEphemeralMarks, snapshotZxid },
        'the log after the snapshot lacks transactions that removed ephemerals: run `quorate quorum verify` on the data dir');
    }
    this.txnsSinceSnapshot = replayed;
    this.recoveredIn(performance.now() - t0);
    logger.info({
      zxid: this.core.lastZxid, snapshotZxid, replayed, nodes: tree.nodes.size,
      sessions: tree.sessions.size, cut: this.log.recovery.cut,
    }, 'recovered data tree from disk');
  }

  /** Move the core's outputs to the log, the sockets and the closers. */
  protected pump(): void {
    const out = this.core.drain();
    if (out.log.length > 0 && !this.failed) {
      try {
        for (const t of out.log) this.log.append(t.hdr.zxid, encodeLoggedTxn(t));
      } catch (e) {
        this.storageFailed(e instanceof StorageError ? e : new StorageError(String(e), 'QUORATE_LOG_APPEND'));
      }
      this.txnsSinceSnapshot += out.log.length;
      this.requestSync();
    }
    this.clientPort.deliver(out.send);
    for (const c of out.close) this.clientPort.closeConnection(c.connId, c.reason);
  }

  private requestSync(): void {
    if (this.syncing || this.failed) return;
    this.syncing = true;
    // One sync at a time from here; the log batches whatever is appended meanwhile into the next fsync.
    this.log.sync().then((zxid) => {
      this.syncing = false;
      if (this.failed) return;
      this.core.committed(zxid);
      this.pump();
      if (this.log.lastZxid > zxid) this.requestSync();
      this.maybeSnapshot();
    }, (err: unknown) => {
      this.syncing = false;
      this.storageFailed(err instanceof StorageError ? err : new StorageError(String(err), 'QUORATE_LOG_SYNC'));
    });
  }

}
