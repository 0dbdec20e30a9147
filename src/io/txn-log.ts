// The quorum server's transaction log: append-only files of framed, checksummed
// records, group-committed under fdatasync. Payloads are opaque: the server
// core serializes transactions; this module owns the files, fsync, preallocation
// and recovery. The format itself is in storage-format.ts.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ZK_LIMITS } from '../limits.js';
import type { Logger } from './log.js';
import {
  FileWindow, LOG_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, StorageCorruptError, StorageError, corruptionAdvice, encodeRecord,
  fsyncDir, hexZxid, ioFailure, judgeLogScan, listLogFiles, logFileHeader, logFileName, openRealFile, readRecordAt, scanLogFile,
  writeFully, ZEROS, type OpenFile, type StorageFile,
} from './storage-format.js';

export { StorageCorruptError, StorageError, type OpenFile, type StorageFile } from './storage-format.js';

// ---- the log --------------------------------------------------------------------

export interface TxnLogOptions {
  logger: Logger;
  /** Preallocation step (ZK_LIMITS.txnlog_prealloc_bytes). */
  preallocBytes?: number;
  /** fsync slower than this is logged at warn (ZK_LIMITS.fsync_warning_ms). */
  fsyncWarningMs?: number;
  /**
   * zoo.cfg forceSync (default true). false skips the fdatasync after each batch, as ZooKeeper
   * does: writes are acknowledged from the page cache and a power failure can lose them.
   */
  forceSync?: boolean;
  /** Called once when a write or fsync fails: the server must stop acknowledging and step down. */
  onFsyncError?: (err: StorageError) => void;
  /** Test seam: how files (and the directory, for its fsync) are opened. */
  openFile?: OpenFile;
}

export interface TornTailCut { file: string; offset: number; bytesCut: number; reason: string; removedFile: boolean }
export interface TxnLogStats { appends: number; batches: number; fsyncs: number; bytesWritten: number }

interface Pending { zxid: bigint; rec: Buffer; newFile: boolean }
interface Current { fh: StorageFile; file: string; pos: number; allocated: number }
interface Waiter { target: bigint; resolve: (zxid: bigint) => void; reject: (err: StorageError) => void }

/**
 * Durability contract: `append` only buffers. `sync()` resolves with the
 * highest durable zxid once everything appended before the call is on disk;
 * while an fsync is in flight, later appends wait and share the next one.
 * After any write or fsync error the log is failed for good.
 */
export class TxnLog {
  readonly stats: TxnLogStats = { appends: 0, batches: 0, fsyncs: 0, bytesWritten: 0 };
  private files: { file: string; startZxid: bigint; end: number }[] = [];
  private cur: Current | null = null;
  private pending: Pending[] = [];
  private waiters: Waiter[] = [];
  private needFile = true;
  private appended = 0n;
  private durable = 0n;
  private failed: StorageError | null = null;
  private closed = false;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly openFile: OpenFile;
  private readonly preallocBytes: number;
  private readonly fsyncWarningMs: number;

  private constructor(readonly dir: string, private readonly opts: TxnLogOptions,
    /** What open() found and did: the cut torn tail, if any. */
    readonly recovery: { cut: TornTailCut | null; files: number; records: number }) {
    this.openFile = opts.openFile ?? openRealFile;
    this.preallocBytes = opts.preallocBytes ?? ZK_LIMITS.txnlog_prealloc_bytes;
    this.fsyncWarningMs = opts.fsyncWarningMs ?? ZK_LIMITS.fsync_warning_ms;
  }

  /** Recovers the log in `dir` (which must exist) and positions it for append after the last valid record. */
  static async open(dir: string, opts: TxnLogOptions): Promise<TxnLog> {
    const log = new TxnLog(dir, opts, { cut: null, files: 0, records: 0 });
    const entries = await listLogFiles(dir);
    if (opts.forceSync === false) opts.logger.warn({ dir }, 'forceSync is off: acknowledged writes can be lost on power failure');
    let prev = 0n;
    for (let i = 0; i < entries.length; i++) {
      const isLast = i === entries.length - 1;
      const path = join(dir, entries[i].file);
      const fh = await log.openFile(path, isLast ? 'r+' : 'r');
      let keep = false;
      try {
        const scan = await scanLogFile(fh, entries[i], prev);
        const verdict = judgeLogScan(scan, isLast);
        if (verdict.kind === 'corrupt') {
          throw new StorageCorruptError(`transaction log ${path} is corrupt at offset ${verdict.offset}: ${verdict.message}. ` +
            corruptionAdvice(dir, entries[i].file), path, verdict.offset);
        }
        log.recovery.files++;
        log.recovery.records += scan.records;
        if (scan.lastZxid !== null) prev = scan.lastZxid;
        const cut = verdict.kind === 'torn'
          ? { file: path, offset: verdict.offset, bytesCut: scan.size - verdict.offset, reason: verdict.reason, removedFile: scan.records === 0 }
          : null;
        if (isLast && scan.records === 0) {
          // Created but never holding a durable record: drop it so the next file is named by its real first zxid.
          await unlink(path);
          await fsyncDir(dir, log.openFile);
          log.recovery.files--;
          if (cut === null) opts.logger.info({ file: path }, 'removed empty transaction log file');
        } else {
          log.files.push({ file: entries[i].file, startZxid: entries[i].startZxid, end: scan.end });
        }
        if (isLast && scan.records > 0) {
          log.cur = { fh, file: entries[i].file, pos: scan.end, allocated: scan.size };
          if (cut !== null) {
            await fh.truncate(scan.end);
            log.cur.allocated = scan.end;
            await log.preallocate(scan.end); // re-preallocate so the next writes do not grow the file
            await fh.datasync();
          }
          log.needFile = false;
          keep = true;
        }
        if (cut !== null) {
          log.recovery.cut = cut;
          opts.logger.warn({ file: path, offset: cut.offset, bytesCut: cut.bytesCut, reason: cut.reason }, 'cut torn tail of transaction log');
        }
      } finally {
        if (!keep) await fh.close();
      }
    }
    log.appended = log.durable = prev;
    return log;
  }

  /** Highest zxid appended (durable or not). */
  get lastZxid(): bigint { return this.appended; }
  /** Highest zxid known to be on disk. */
  get durableZxid(): bigint { return this.durable; }
  /** The error that failed the log, or null. */
  get failure(): StorageError | null { return this.failed; }

  /** Buffers one record. zxids must strictly increase. Throws if the log has failed or is closed. */
  append(zxid: bigint, payload: Buffer): void {
    this.checkUsable();
    if (zxid <= this.appended) throw new RangeError(`txn log: zxid 0x${hexZxid(zxid)} is not above the last 0x${hexZxid(this.appended)}`);
    if (payload.length === 0 || payload.length > RECORD_PAYLOAD_BYTES_MAX) {
      throw new RangeError(`txn log: payload of ${payload.length} bytes (must be 1..${RECORD_PAYLOAD_BYTES_MAX})`);
    }
    this.pending.push({ zxid, rec: encodeRecord(zxid, payload), newFile: this.needFile });
    this.needFile = false;
    this.appended = zxid;
    this.stats.appends++;
  }

  /** Resolves with the highest durable zxid once every record appended so far is on disk. */
  sync(): Promise<bigint> {
    try { this.checkUsable(); } catch (err) { return Promise.reject(err); }
    return this.syncAll();
  }

  /** The next append starts a new file (the server calls this after a snapshot, so old files can be purged). */
  roll(): void {
    this.checkUsable();
    this.needFile = true;
  }

  /** Durable records with zxid > fromZxid, oldest first, read from disk (used for replay at start). */
  async *read(fromZxid: bigint): AsyncGenerator<{ zxid: bigint; payload: Buffer }> {
    const files = [...this.files];
    let prev = 0n;
    for (let i = 0; i < files.length; i++) {
      if (i + 1 < files.length && files[i + 1].startZxid <= fromZxid + 1n) continue; // every record in it is <= fromZxid
      const path = join(this.dir, files[i].file);
      const fh = await this.openFile(path, 'r');
      try {
        const w = new FileWindow(fh, files[i].end);
        for (let pos = LOG_HEADER_BYTES; pos < files[i].end;) {
          const step = await readRecordAt(w, pos);
          if (step.kind !== 'record' || step.zxid <= prev) {
            throw new StorageCorruptError(`transaction log ${path} changed under the server at offset ${pos}`, path, pos);
          }
          prev = step.zxid;
          pos = step.next;
          if (step.zxid > fromZxid) yield { zxid: step.zxid, payload: step.payload };
        }
      } finally {
        await fh.close();
      }
    }
  }

  /** Deletes whole files whose every record is below `zxid`; never the newest file. Returns the names deleted. */
  async purgeBefore(zxid: bigint): Promise<string[]> {
    let n = 0;
    while (n + 1 < this.files.length && this.files[n + 1].startZxid <= zxid) n++;
    const victims = this.files.splice(0, n); // taken out first so read() started later does not see them
    for (const v of victims) await unlink(join(this.dir, v.file));
    if (victims.length > 0) await fsyncDir(this.dir, this.openFile);
    return victims.map((v) => v.file);
  }

  /** Flushes what was appended (unless failed), then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // from here append() throws, so nothing appended is silently dropped
    if (this.failed === null && this.appended > this.durable) await this.syncAll().catch(() => undefined);
    await this.loop;
    await this.cur?.fh.close().catch(() => undefined);
    this.cur = null;
  }

  private checkUsable(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new StorageError(`transaction log ${this.dir} is closed`, 'QUORATE_LOG_CLOSED');
  }

  private syncAll(): Promise<bigint> {
    if (this.appended <= this.durable) return Promise.resolve(this.durable);
    return new Promise((resolve, reject) => {
      this.waiters.push({ target: this.appended, resolve, reject });
      if (!this.running) {
        this.running = true;
        this.loop = this.flushLoop();
      }
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      // `running` is cleared in the same tick as the last check, so a sync() arriving later starts a new loop.
      while (this.failed === null && this.waiters.length > 0) await this.flushBatch();
    } finally {
      this.running = false;
    }
  }

  private async flushBatch(): Promise<void> {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < ZK_LIMITS.group_commit_txns_max &&
      (n === 0 || bytes + this.pending[n].rec.length <= ZK_LIMITS.group_commit_bytes_max)) bytes += this.pending[n++].rec.length;
    const batch = this.pending.splice(0, n);
    if (batch.length === 0) return this.fail(new Error('internal: sync waiting with nothing pending'));
    try {
      for (let i = 0; i < batch.length;) {
        if (batch[i].newFile) await this.startFile(batch[i].zxid);
        let j = i + 1;
        while (j < batch.length && !batch[j].newFile) j++;
        await this.writeRecords(Buffer.concat(batch.slice(i, j).map((p) => p.rec)));
        i = j;
      }
      if (this.opts.forceSync !== false) await this.datasync(batch.length, bytes);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.stats.batches++;
    this.durable = batch[batch.length - 1].zxid;
    this.files[this.files.length - 1].end = this.cur!.pos;
    const ready = this.waiters.filter((w) => w.target <= this.durable);
    this.waiters = this.waiters.filter((w) => w.target > this.durable);
    for (const w of ready) w.resolve(this.durable);
  }

  private async startFile(zxid: bigint): Promise<void> {
    if (this.cur) {
      // Trim the old file's unused preallocation: recovery reads a file's tail to prove nothing
      // valid follows its end, and old files should not cost that read at every start.
      await this.cur.fh.truncate(this.cur.pos);
      await this.datasync(0, 0); // the old file's records must be durable before anything in the new one is
      this.files[this.files.length - 1].end = this.cur.pos;
      const old = this.cur;
      this.cur = null;
      await old.fh.close();
    }
    const file = logFileName(zxid);
    const fh = await this.openFile(join(this.dir, file), 'wx');
    this.cur = { fh, file, pos: LOG_HEADER_BYTES, allocated: 0 };
    this.files.push({ file, startZxid: zxid, end: LOG_HEADER_BYTES });
    await writeFully(fh, logFileHeader(), 0);
    this.cur.allocated = LOG_HEADER_BYTES;
    await this.preallocate(LOG_HEADER_BYTES);
    await this.datasync(0, 0);
    await fsyncDir(this.dir, this.openFile);
  }

  private async writeRecords(buf: Buffer): Promise<void> {
    const cur = this.cur!;
    await this.preallocate(cur.pos + buf.length);
    await writeFully(cur.fh, buf, cur.pos);
    cur.pos += buf.length;
    this.stats.bytesWritten += buf.length;
  }

  /** Extends the file with real zeros (not ftruncate: a sparse file costs block allocation again on every write). */
  private async preallocate(end: number): Promise<void> {
    const cur = this.cur!;
    if (end < cur.allocated) return;
    const target = Math.ceil((end + 1) / this.preallocBytes) * this.preallocBytes;
    for (let at = Math.max(cur.allocated, end); at < target;) {
      const n = Math.min(ZEROS.length, target - at);
      await writeFully(cur.fh, ZEROS.subarray(0, n), at);
      at += n;
    }
    cur.allocated = target;
  }

  private async datasync(txns: number, bytes: number): Promise<void> {
    const cur = this.cur!;
    const t0 = performance.now();
    await cur.fh.datasync();
    this.stats.fsyncs++;
    const ms = performance.now() - t0;
    if (ms > this.fsyncWarningMs) {
      this.opts.logger.warn({ file: join(this.dir, cur.file), durationMs: Math.round(ms), txns, bytes }, 'fsync of transaction log was slow');
    }
  }

  /** Fatal: after a failed write or fsync the page cache may have dropped data, so nothing is ever acknowledged again. */
  private fail(err: unknown): void {
    if (this.failed) return;
    const e = ioFailure(err, `writing transaction log ${this.dir}`);
    this.failed = e;
    this.opts.logger.error({ code: e.code, errno: e.errno, err: e }, 'transaction log failed; no further writes will be acknowledged');
    for (const w of this.waiters) w.reject(e);
    this.waiters = [];
    this.pending = [];
    const cur = this.cur;
    this.cur = null;
    void cur?.fh.close().catch(() => undefined);
    try { this.opts.onFsyncError?.(e); } catch { /* the callback's failure must not hide ours */ }
  }
}
