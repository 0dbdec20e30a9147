// What every quorum server process has, standalone or replicated: the data
// directory, the snapshot store and the transaction log, the ServerCore and
// its client port, a ticker that notices when the event loop was held up,
// fuzzy snapshots with autopurge, storage failure handling, and the
// four-letter words. Subclasses decide where transactions go.
import { certificateExpiry } from '../io/tls-identity.js';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServerCore, type ServerCoreOptions } from '../core/zk/server-core.js';
import { DataTree } from '../core/zk/data-tree.js';
import type { QuorumServerConfig } from '../config/quorum-config.js';
import { ZK_LIMITS } from '../limits.js';
import { deserializeTree, SnapshotWriter } from '../proto/txn-codec.js';
import { DataDir } from '../io/data-dir.js';
import type { Logger } from '../io/log.js';
import { SnapshotStore } from '../io/snapshot-store.js';
import { StorageError, TxnLog } from '../io/txn-log.js';
import { ClientPort } from '../io/zk-client-port.js';
import { fourLetterWordText, type ServerSnapshotForWords } from './four-letter-words.js';
import { QUORATE_VERSION } from '../version.js';

export interface ServerOptions {
  config: QuorumServerConfig;
  logger: Logger;
  /** How often empty containers and expired TTL nodes are collected (znode.container.checkIntervalMs). */
  containerCheckIntervalMs?: number;
  /** How often sessions are checked for expiry. */
  tickIntervalMs?: number;
}

/** Monotonic milliseconds anchored at wall time at start: session deadlines do not jump with the wall clock. */
export function nowMs(): number {
  return Math.floor(performance.timeOrigin + performance.now());
}

export function sha1Base64(text: string): string {
  return crypto.createHash('sha1').update(text, 'utf8').digest('base64');
}

export abstract class ServerBase extends EventEmitter {
  core!: ServerCore;
  port = 0;
  protected dataDir!: DataDir;
  protected log!: TxnLog;
  protected snaps!: SnapshotStore;
  protected clientPort!: ClientPort;
  private ticker: NodeJS.Timeout | null = null;
  protected txnsSinceSnapshot = 0;
  protected snapshotAt = 0;
  private snapshotInFlight: Promise<void> | null = null;
  protected failed: StorageError | null = null;
  protected stopped = false;

  protected constructor(protected readonly opts: ServerOptions) {
    super();
  }

  protected get cfg(): QuorumServerConfig { return this.opts.config; }

  /** A certificate rotation (SIGHUP): the TLS client port takes the new one for new connections. TLS cannot be turned on or off this way. */
  reloadClientTls(t: QuorumServerConfig['clientTls']): void {
    if ((t === null) !== (this.cfg.clientTls === null)) throw new Error('the TLS client port was turned on or off: that needs a restart');
    if (t === null) return;
    this.cfg.clientTls = t;
    this.clientPort.setTls(t);
  }

  /** Moves the core's outputs to where they go (called after every batch of client input and every tick). */
  protected abstract pump(): void;
  /** What `srvr` says this server is. */
  protected abstract mode(): ServerSnapshotForWords['mode'];
  /** For the four-letter words: the quorum's state, or null when standalone. */
  protected quorumInfo(): ServerSnapshotForWords['quorum'] { return null; }
  /** Periodic work besides the core's tick. */
  protected abstract onTick(now: number): void;

  /** Opens the data dir, the snapshot store and the log; the tree comes from the newest valid snapshot. */
  protected async openStorage(): Promise<{ tree: DataTree; snapshotZxid: bigint | null }> {
    const cfg = this.cfg;
    const logger = this.opts.logger;
    this.dataDir = await DataDir.open(cfg.dataDir, {
      clusterId: cfg.clusterId, serverId: cfg.serverId, create: true,
      dataLogDir: cfg.dataLogDir !== cfg.dataDir ? cfg.dataLogDir : undefined, logger,
    });
    this.snaps = await SnapshotStore.open(this.dataDir.snapDir, { logger });
    const snap = await this.snaps.loadLatest();
    const tree = snap ? deserializeTree(snap.payload) : new DataTree();
    this.core = this.makeCore(tree);
    this.log = await TxnLog.open(this.dataDir.logDir, {
      logger,
      fsyncWarningMs: ZK_LIMITS.fsync_warning_ms,
      forceSync: cfg.forceSync,
      onFsyncError: (err) => this.storageFailed(err),
    });
    this.snapshotAt = this.nextSnapshotAt();
    return { tree, snapshotZxid: snap?.zxid ?? null };
  }

  protected makeCore(tree: DataTree): ServerCore {
    const cfg = this.cfg;
    return new ServerCore({
      serverId: cfg.serverId,
      minSessionTimeoutMs: cfg.minSessionTimeoutMs,
      maxSessionTimeoutMs: cfg.maxSessionTimeoutMs,
      skipAcl: cfg.skipAcl,
      superDigest: cfg.superDigest,
      sha1Base64,
      containerCheckIntervalMs: this.opts.containerCheckIntervalMs ?? 60_000,
      ttlEnabled: true,
      watchesPerSessionMax: ZK_LIMITS.watches_per_session_max,
      authIdsPerConnectionMax: ZK_LIMITS.auth_ids_per_connection_max,
      ...this.extraCoreOptions(),
    }, nowMs(), tree);
  }

  /** What a subclass adds to the ServerCore's options (a quorum's reconfig). */
  protected extraCoreOptions(): Partial<ServerCoreOptions> { return {}; }

  protected nextSnapshotAt(): number {
    // Like ZooKeeper, randomize so servers of a quorum do not all snapshot at once.
    const half = Math.max(1, Math.floor(this.cfg.snapCount / 2));
    return half + Math.floor(Math.random() * half);
  }

  /** Starts the client port and the ticker. */
  protected async listenClients(tickMs: number): Promise<void> {
    const cfg = this.cfg;
    this.clientPort = new ClientPort({
      host: cfg.clientHost, port: cfg.clientPort,
      secure: cfg.secureClientPort === null || cfg.clientTls === null ? null : { host: cfg.secureClientHost ?? cfg.clientHost, port: cfg.secureClientPort, tls: cfg.clientTls },
      packetBytesMax: cfg.packetBytesMax, packetHeaderBytesExtra: ZK_LIMITS.packet_header_bytes_extra,
      connectionsPerIpMax: cfg.maxClientCnxns, connectionsMax: ZK_LIMITS.connections_max,
      requestsInFlightPerConnectionMax: ZK_LIMITS.requests_in_flight_per_connection_max,
      requestsInFlightMax: ZK_LIMITS.requests_in_flight_max,
      unsentReplyBytesMax: ZK_LIMITS.unsent_reply_bytes_max,
      connectHandshakeMsMax: ZK_LIMITS.connect_handshake_ms_max,
      fourLetterWhitelist: cfg.fourLetterWords,
      logger: this.opts.logger,
    }, {
      opened: (id, ip, x509) => { this.core.connectionOpened(id, ip, x509); },
      connect: (id, req) => { this.core.connect(id, req, nowMs(), crypto.randomBytes(16)); },
      request: (id, xid, req) => {
        if (this.failed) return;
        this.core.request(id, xid, req, nowMs());
      },
      flush: () => this.pump(),
      closed: (id) => { this.core.connectionClosed(id); },
      fourLetterWord: (w) => fourLetterWordText(w, this.wordsSnapshot()),
      queued: (id) => this.core.queueLength(id),
      outstanding: () => this.core.outstanding,
    });
    this.port = await this.clientPort.listen();
    let lastTick = performance.now();
    this.ticker = setInterval(() => {
      const now = performance.now();
      // Later than a tick's worth: the loop was held up, and nothing was read meanwhile.
      const stalledMs = now - lastTick - 2 * tickMs;
      lastTick = now;
      if (stalledMs > 0) {
        this.core.serverStalled(Math.ceil(stalledMs));
        if (stalledMs > ZK_LIMITS.stall_warning_ms) this.opts.logger.warn({ stalledMs: Math.round(stalledMs) }, 'server was held up; session deadlines extended by that time');
      }
      this.onTick(nowMs());
      this.core.tick(nowMs());
      this.pump();
    }, tickMs);
  }

  protected maybeSnapshot(): void {
    if (this.snapshotInFlight || this.txnsSinceSnapshot < this.snapshotAt || this.failed) return;
    this.takeSnapshot().catch((e) => this.opts.logger.error({ err: (e as Error).message }, 'snapshot failed'));
  }

  /**
   * A fuzzy snapshot, as ZooKeeper's: the state as of Z0 (lastZxid now), encoded
   * a few nodes per event-loop turn while transactions keep being applied, so
   * clients are not stalled; recovery replays the log after Z0 over it. The tree
   * only ever holds committed transactions, so neither does the snapshot. One at
   * a time; abandoned (nothing written) if the server stops or its log fails.
   */
  takeSnapshot(): Promise<void> {
    if (this.snapshotInFlight) return this.snapshotInFlight;
    try {
      // From Z0 on, records go to a new file: purging below Z0 keeps every file with a zxid > Z0.
      this.log.roll();
    } catch (e) {
      return Promise.reject(e);
    }
    const writer = new SnapshotWriter(this.core.tree);
    const zxid = writer.zxid;
    this.txnsSinceSnapshot = 0;
    this.snapshotAt = this.nextSnapshotAt();
    const t0 = performance.now();
    this.snapshotInFlight = (async () => {
      try {
        const steps = await this.encodeSnapshot(writer);
        if (steps === null) {
          this.opts.logger.info({ zxid, nodes: writer.nodesWritten }, 'snapshot abandoned: the server is stopping or its log failed');
          return;
        }
        const payload = writer.finish();
        const encodedMs = Math.round(performance.now() - t0);
        const info = await this.snaps.write(zxid, payload);
        this.opts.logger.info({
          zxid, file: info.file, bytes: payload.length, nodes: writer.nodesWritten, steps, encodedMs, ms: Math.round(performance.now() - t0),
        }, 'snapshot written');
        if (this.cfg.autopurgePurgeIntervalHours > 0) await this.purge();
      } finally {
        this.snapshotInFlight = null;
      }
    })();
    return this.snapshotInFlight;
  }

  /** Steps the writer, yielding to the event loop between steps; the number of steps, or null if abandoned. */
  private async encodeSnapshot(writer: SnapshotWriter): Promise<number | null> {
    const stepMs = 2; // event-loop time per step: what a client may wait behind one
    let budget = 500;
    for (let steps = 1; ; steps++) {
      if (this.stopped || this.failed) return null;
      const t0 = performance.now();
      if (writer.step(budget)) return steps;
      // Aim each step at stepMs, whatever a node costs on this machine (half-way, to damp noise).
      const ms = Math.max(0.05, performance.now() - t0);
      budget = Math.max(50, Math.min(5000, Math.round((budget + (budget * stepMs) / ms) / 2)));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Keep the newest autopurge.snapRetainCount snapshots and the logs they need. */
  async purge(): Promise<void> {
    const { deleted, oldestRetainedZxid } = await this.snaps.purge(Math.max(3, this.cfg.autopurgeSnapRetainCount));
    const logs = oldestRetainedZxid === null ? [] : await this.log.purgeBefore(oldestRetainedZxid);
    if (deleted.length + logs.length > 0) this.opts.logger.info({ snapshots: deleted, logs }, 'autopurge removed old files');
  }

  protected storageFailed(err: StorageError): void {
    if (this.failed) return;
    this.failed = err;
    const full = err.code === 'QUORATE_DISK_FULL';
    this.opts.logger.error({ code: err.code, err: err.message, zxid: this.core.lastZxid },
      full ? 'disk full: no longer acknowledging writes; free space and restart the server'
        : 'transaction log failed: no longer acknowledging writes; the server must restart and recover from disk');
    // Nothing more is acknowledged; clients move elsewhere or wait for a restart.
    this.clientPort?.setAccepting(false);
    this.clientPort?.closeAll('storage failure');
    this.emit('storage-failure', err);
  }

  get storageFailure(): StorageError | null { return this.failed; }

  protected wordsSnapshot(): ServerSnapshotForWords {
    const core = this.core;
    const tree = core.tree;
    let ephemerals = 0;
    for (const s of tree.ephemerals.values()) ephemerals += s.size;
    const cfg = this.cfg;
    return {
      mode: this.mode(), zxid: core.lastZxid, nodeCount: tree.nodes.size, ephemeralsCount: ephemerals,
      dataBytes: tree.dataBytes, watches: tree.watches.stats(), latency: this.clientPort.latency,
      packetsReceived: core.stats.packetsReceived, packetsSent: core.stats.packetsSent, outstanding: core.outstanding,
      connections: core.connections().map((c) => {
        const info = this.clientPort.connectionInfo(c.connId);
        return { remote: info?.remote ?? c.ip, sessionId: c.sessionId, queued: c.queued, received: info?.received ?? 0, sent: info?.sent ?? 0 };
      }),
      sessionCount: core.sessions.sessions.size,
      conf: {
        clientPort: this.port, clientPortAddress: cfg.clientHost, dataDir: cfg.dataDir, dataLogDir: cfg.dataLogDir,
        tickTime: cfg.tickMs, maxClientCnxns: cfg.maxClientCnxns, minSessionTimeout: cfg.minSessionTimeoutMs,
        maxSessionTimeout: cfg.maxSessionTimeoutMs, serverId: cfg.serverId, clusterId: cfg.clusterId, forceSync: cfg.forceSync ? 'yes' : 'no',
        snapCount: cfg.snapCount, 'autopurge.snapRetainCount': cfg.autopurgeSnapRetainCount, 'autopurge.purgeInterval': cfg.autopurgePurgeIntervalHours,
      },
      env: {
        'zookeeper.version': `3.8.0-quorate-${QUORATE_VERSION}`, 'quorate.version': QUORATE_VERSION, 'host.name': os.hostname(),
        'node.version': process.version, 'os.name': os.type(), 'os.arch': os.arch(), 'os.version': os.release(),
        'user.name': os.userInfo().username, 'user.dir': process.cwd(), 'process.pid': String(process.pid),
      },
      dataDirBytes: dirBytes(this.dataDir.snapDir), logDirBytes: dirBytes(this.dataDir.logDir),
      openFds: countOpenFds(), maxFds: null,
      quorum: this.quorumInfo(),
      tlsCertDaysLeft: this.tlsCertDaysLeft(),
    };
  }

  /** The soonest end among this server's certificates, in whole days (negative: expired). */
  private tlsCertDaysLeft(): number | null {
    const days = [this.cfg.peerTls?.cert, this.cfg.clientTls?.cert]
      .flatMap((pem) => (pem === undefined ? [] : [certificateExpiry(pem, Date.now())?.daysLeft ?? null]))
      .filter((d): d is number => d !== null);
    return days.length === 0 ? null : Math.min(...days);
  }

  /** Stops what the subclass added (transports); called first by stop(). */
  protected async stopExtra(): Promise<void> { /* nothing by default */ }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.stopExtra();
    await this.clientPort?.close();
    await this.snapshotInFlight?.catch(() => undefined);
    await this.log?.close();
    await this.dataDir?.release();
  }
}

function dirBytes(dir: string): number {
  try {
    return fs.readdirSync(dir).reduce((n, f) => n + (fs.statSync(path.join(dir, f), { throwIfNoEntry: false })?.size ?? 0), 0);
  } catch {
    return 0;
  }
}

function countOpenFds(): number | null {
  try { return fs.readdirSync('/proc/self/fd').length; } catch { return null; }
}
