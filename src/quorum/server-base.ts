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
import v8 from 'node:v8';
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
import { serveMetrics, type MetricsServer } from '../io/metrics-http.js';
import { fourLetterWordText, type ServerSnapshotForWords } from './four-letter-words.js';
import { AdminServer } from './admin-server.js';
import { QuorumMetrics } from './quorum-metrics.js';
import { QUORATE_VERSION } from '../version.js';
import { LatencyTrace } from '../io/latency-trace.js';

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
  /** Prometheus (cfg.metrics): its summaries are fed from the request path and the log; null when not served. */
  protected readonly metrics: QuorumMetrics | null;
  /** The steps of each request, marked for a latency diagnosis (QUORATE_LATENCY_TRACE); null when off. */
  protected readonly trace: LatencyTrace | null;
  private metricsServer: MetricsServer | null = null;
  private adminServer: AdminServer | null = null;
  /** performance.now() when this server last started serving clients in its role (ZooKeeper's uptime). */
  protected servingSince = performance.now();
  /** The newest snapshot on disk, for the AdminServer's last_snapshot. */
  protected lastSnapshot: { zxid: bigint; timestampSec: number } | null = null;

  protected constructor(protected readonly opts: ServerOptions) {
    super();
    this.trace = LatencyTrace.fromEnv(opts.config.serverId);
    const m = opts.config.metrics;
    const c = opts.config;
    this.metrics = m === null ? null : new QuorumMetrics(() => this.wordsSnapshot(), {
      processMetrics: m.processMetrics, quorum: c.servers.length > 1, tls: c.peerTls !== null || c.clientTls !== null,
    });
  }

  /** The metrics and AdminServer ports as bound (0 asked: the one the kernel gave); null when not served. */
  get metricsPort(): number | null { return this.metricsServer?.port ?? null; }
  get adminPort(): number | null { return this.adminServer?.port ?? null; }

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
    if (snap !== null) this.lastSnapshot = { zxid: snap.zxid, timestampSec: Math.floor(fs.statSync(snap.path).mtimeMs / 1000) };
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

  /** ZooKeeper's dbinittime: from opening storage to the tree rebuilt from the snapshot and the log. */
  protected recoveredIn(ms: number): void {
    this.metrics?.dbInitTime.observe(ms);
  }

  protected makeCore(tree: DataTree): ServerCore {
    const cfg = this.cfg;
    // A core replaced (a learner installing its leader's snapshot) hands its counts on: they count this server's life.
    const before = (this.core as ServerCore | undefined)?.stats;
    const core = new ServerCore({
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
    if (before !== undefined) Object.assign(core.stats, before);
    return core;
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
        this.trace?.mark('req');
        this.core.request(id, xid, req, nowMs());
      },
      flush: () => this.pump(),
      closed: (id) => { this.core.connectionClosed(id); },
      fourLetterWord: (w) => fourLetterWordText(w, this.wordsSnapshot()),
      queued: (id) => this.core.queueLength(id),
      outstanding: () => this.core.outstanding,
    });
    this.port = await this.clientPort.listen();
    this.servingSince = performance.now();
    try {
      await this.listenHttp();
    } catch (e) {
      await this.stop();
      throw e;
    }
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

  /** The Prometheus and AdminServer ports, when configured; a port that cannot be opened stops the start. */
  private async listenHttp(): Promise<void> {
    const { metrics: m, admin: a } = this.cfg;
    const logger = this.opts.logger;
    if (this.metrics !== null && m !== null) {
      const metrics = this.metrics;
      this.clientPort.observeLatency({ read: metrics.readLatency, update: metrics.updateLatency });
      this.log.durableOpObserver = (ms) => metrics.fsyncTime.observe(ms);
      this.metricsServer = await serveMetrics(metrics.registry, m.host, m.port, logger)
        .catch((e: Error) => { throw new Error(`${e.message} (the metrics port: metricsProvider.httpPort in a zoo.cfg, metricsPort in a cluster file)`); });
      logger.info({ host: m.host, port: this.metricsServer.port }, 'Prometheus metrics served at /metrics');
    }
    if (a !== null) {
      this.adminServer = await AdminServer.start(a, () => this.wordsSnapshot(), logger)
        .catch((e: Error) => { throw new Error(`${e.message} (the AdminServer port: admin.serverPort in a zoo.cfg, adminPort in a cluster file)`); });
      logger.info({ host: a.host, port: this.adminServer.port, commandUrl: a.commandUrl }, 'AdminServer serving its commands');
    }
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
        this.lastSnapshot = { zxid, timestampSec: Math.floor(Date.now() / 1000) };
        this.metrics?.snapshotTime.observe(performance.now() - t0);
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
      connections: core.connections().flatMap((c) => {
        const info = this.clientPort.connectionInfo(c.connId);
        if (info === undefined) return [];
        return [{
          remote: info.remote, sessionId: c.sessionId, queued: c.queued, received: info.received, sent: info.sent,
          secure: info.secure, interestOps: info.interestOps, establishedMs: info.establishedMs, sessionTimeoutMs: c.sessionTimeoutMs,
          lastOpType: info.lastOpType, lastCxid: info.lastCxid, lastZxid: info.lastZxid,
          lastResponseMs: info.lastResponseAt === 0 ? 0 : performance.timeOrigin + info.lastResponseAt, lastLatencyMs: info.lastLatencyMs, latency: info.latency,
        }];
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
        'user.name': os.userInfo().username, 'user.home': os.homedir(), 'user.dir': process.cwd(), 'process.pid': String(process.pid),
        // ZooKeeper shows its JVM heap here; ours is V8's.
        ...heapFigures(),
      },
      dataDirBytes: dirBytes(this.dataDir.snapDir), logDirBytes: dirBytes(this.dataDir.logDir),
      openFds: countOpenFds(), maxFds: maxOpenFds(),
      quorum: this.quorumInfo(),
      tlsCertDaysLeft: this.tlsCertDaysLeft(),
      uptimeMs: performance.now() - this.servingSince,
      authFailed: core.stats.authFailed,
      responseBytes: { ...this.clientPort.responseBytes },
      connectionsRejected: this.clientPort.counters.rejected,
      nonMtlsLocal: this.clientPort.counters.nonMtlsLocal,
      nonMtlsRemote: this.clientPort.counters.nonMtlsRemote,
      sessionsExpired: core.stats.sessionsExpired,
      badFrameCloses: this.clientPort.counters.badFrames,
      fsyncsOverWarning: this.log.stats.fsyncsOverWarning,
      lastSnapshot: this.lastSnapshot,
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
    await this.adminServer?.close();
    await this.metricsServer?.close();
    this.metrics?.stop();
    await this.stopExtra();
    await this.clientPort?.close();
    await this.snapshotInFlight?.catch(() => undefined);
    await this.log?.close();
    await this.dataDir?.release();
    this.trace?.stop(this.log?.stats);
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

/** The soft limit on open files (ZooKeeper's max_file_descriptor_count), from /proc/self/limits; null where that is unknown. */
function maxOpenFds(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** As ZooKeeper's envi shows its heap: "<n>MB". */
function heapFigures(): Record<string, string> {
  const h = process.memoryUsage();
  const limit = v8.getHeapStatistics().heap_size_limit;
  const mb = (b: number) => `${Math.round(b / 2 ** 20)}MB`;
  return { 'os.memory.free': mb(h.heapTotal - h.heapUsed), 'os.memory.max': mb(limit), 'os.memory.total': mb(h.heapTotal) };
}
