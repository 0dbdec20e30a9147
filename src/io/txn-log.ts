// The quorum server's transaction log: append-only files of framed, checksummed
// records, group-committed. With forceSync on, a batch is one pwrite through an
// O_DSYNC handle into space that was zero-filled and fdatasynced beforehand, so
// it is durable when the write returns. Payloads are opaque: the server core
// serializes transactions; this module owns commit, rolls and recovery. The
// format is in storage-format.ts, file creation and the spare in txn-log-file.ts.
import { writeSync } from 'node:fs';
import { InlineWritePolicy } from './inline-write-policy.js';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ZK_LIMITS } from '../limits.js';
import type { Logger } from './log.js';
import {
  FileWindow, LOG_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, StorageCorruptError, StorageError, corruptionAdvice, encodeRecord,
  fsyncDir, hexZxid, ioFailure, judgeLogScan, listLogFiles, logFileName, openRealFile, readRecordAt, scanLogFile,
  writeFully, type OpenFile,
} from './storage-format.js';
import {
  DURABLE_WRITE_FLAGS, activateSpare, adoptSpare, closeLogFile, createLogFile, prepareSpare, trimLogFile, zeroFill, type LogFile, type LogFileIo,
} from './txn-log-file.js';

export { StorageCorruptError, StorageError, type OpenFile, type StorageFile } from './storage-format.js';

// ---- the log --------------------------------------------------------------------

export interface TxnLogOptions {
  logger: Logger;
  /** Capacity of a log file, zero-filled and fdatasynced before it takes a record (ZK_LIMITS.txnlog_prealloc_bytes). */
  preallocBytes?: number;
  /** A durable write slower than this sends the next writes through the thread pool (ZK_LIMITS.inline_write_slow_ms). */
  inlineWriteSlowMs?: number;
  /** A durable write or fsync slower than this is logged at warn (ZK_LIMITS.fsync_warning_ms). */
  fsyncWarningMs?: number;
  /**
   * zoo.cfg forceSync (default true). false writes batches without O_DSYNC, as ZooKeeper skips
   * the fsync: writes are acknowledged from the page cache and a power failure can lose them.
   */
  forceSync?: boolean;
  /** Called once when a write or fsync fails: the server must stop acknowledging and step down. */
  onFsyncError?: (err: StorageError) => void;
  /** Test seam: how files (and the directory, for its fsync) are opened. */
  openFile?: OpenFile;
}

export interface TornTailCut { file: string; offset: number; bytesCut: number; reason: string; removedFile: boolean }
export interface TxnLogStats {
  appends: number;
  batches: number;
  /** fdatasyncs plus durable (O_DSYNC) batch writes: with forceSync on, one per batch. */
  fsyncs: number;
  /** Record bytes written. */
  bytesWritten: number;
  /** Rolls that took the prepared spare (a rename); the others created their file inline. */
  sparesUsed: number;
  /** fdatasyncs of the spare's paced background zero-fill (not commit work, not in fsyncs). */
  spareSyncs: number;
  filesCreatedInline: number;
  /** Durable writes made on the event loop (small batches on a fast disk); the others went through the thread pool. */
  inlineWrites: number;
  /** Durable writes or fsyncs slower than ZK_LIMITS.inline_write_slow_ms. */
  slowDurableWrites: number;
  /** Durable writes or fsyncs slower than fsyncWarningMs, each logged (ZooKeeper's fsync_threshold_exceed_count). */
  fsyncsOverWarning: number;
}

interface FileEntry { file: string; startZxid: bigint; end: number }
interface Pending { zxid: bigint; rec: Buffer; newFile: boolean }
interface Current extends LogFile { entry: FileEntry }
interface Waiter { target: bigint; resolve: (zxid: bigint) => void; reject: (err: StorageError) => void }

/**
 * Durability contract: `append` only buffers. `sync()` resolves with the
 * highest durable zxid once everything appended before the call is on disk;
 * while a batch is being written, later appends wait and share the next one.
 * After any write or fsync error the log is failed for good.
 *
 * Files: each has a fixed capacity, written as zeros and fdatasynced when it is
 * created. A batch that does not fit in the rest of the current file (or the
 * first after roll()) goes to a new one. A spare file is prepared in the
 * background as soon as a file is in use, so that a roll is a rename and a
 * directory fsync; the old file's unused zeros are trimmed in the background.
 */
export class TxnLog {
  readonly stats: TxnLogStats = { appends: 0, batches: 0, fsyncs: 0, bytesWritten: 0, sparesUsed: 0, spareSyncs: 0, filesCreatedInline: 0, inlineWrites: 0, slowDurableWrites: 0, fsyncsOverWarning: 0 };
  /** Told how long each durable write or fdatasync took (ZooKeeper's fsynctime), while metrics are served. */
  durableOpObserver: ((ms: number) => void) | null = null;
  private files: FileEntry[] = [];
  private cur: Current | null = null;
  private pending: Pending[] = [];
  private waiters: Waiter[] = [];
  private needFile = true;
  private appended = 0n;
  private durable = 0n;
  private failed: StorageError | null = null;
  private closed = false;
  private running = false;
  /** Durable writes left that must go through the thread pool because one was slow lately. */
  private readonly inline: InlineWritePolicy;
  private loop: Promise<void> = Promise.resolve();
  /** The prepared next file (log.next), or null. */
  private spare: LogFile | null = null;
  /** Preparation of the spare in flight; never rejects. */
  private sparePrep: Promise<void> | null = null;
  /** The current file's name when preparing a spare last failed: no retry until the next file. */
  private spareFailedFor: string | null | undefined = undefined;
  /** Trims and closes of old files, off the commit path; never rejects. */
  private background: Promise<void> = Promise.resolve();
  private readonly io: LogFileIo;
  private readonly preallocBytes: number;
  private readonly fsyncWarningMs: number;

  private constructor(readonly dir: string, private readonly opts: TxnLogOptions,
    /** What open() found and did: the cut torn tail, if any. */
    readonly recovery: { cut: TornTailCut | null; files: number; records: number }) {
    this.io = { dir, openFile: opts.openFile ?? openRealFile, forceSync: opts.forceSync !== false, onDatasync: () => { this.stats.fsyncs++; }, onPacedSync: () => { this.stats.spareSyncs++; } };
    this.preallocBytes = opts.preallocBytes ?? ZK_LIMITS.txnlog_prealloc_bytes;
    this.fsyncWarningMs = opts.fsyncWarningMs ?? ZK_LIMITS.fsync_warning_ms;
    this.inline = new InlineWritePolicy(opts.inlineWriteSlowMs ?? ZK_LIMITS.inline_write_slow_ms);
    if (!(this.preallocBytes > LOG_HEADER_BYTES)) throw new RangeError(`txn log: preallocBytes ${this.preallocBytes} must exceed the header`);
  }

  /** Recovers the log in `dir` (which must exist) and positions it for append after the last valid record. */
  static async open(dir: string, opts: TxnLogOptions): Promise<TxnLog> {
    const log = new TxnLog(dir, opts, { cut: null, files: 0, records: 0 });
    const openFile = log.io.openFile;
    const entries = await listLogFiles(dir);
    if (opts.forceSync === false) opts.logger.warn({ dir }, 'forceSync is off: acknowledged writes can be lost on power failure');
    let prev = 0n;
    const untrimmed: FileEntry[] = [];
    for (let i = 0; i < entries.length; i++) {
      const isLast = i === entries.length - 1;
      const path = join(dir, entries[i].file);
      const fh = await openFile(path, isLast ? 'r+' : 'r');
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
          // Created (or renamed from the spare) but never holding a durable record: drop it so the
          // next file is named by its real first zxid.
          await unlink(path);
          await fsyncDir(dir, openFile);
          log.recovery.files--;
          if (cut === null) opts.logger.info({ file: path }, 'removed empty transaction log file');
        } else {
          const entry = { file: entries[i].file, startZxid: entries[i].startZxid, end: scan.end };
          log.files.push(entry);
          if (!isLast && scan.size > scan.end) untrimmed.push(entry); // left by a crash before its trim
          if (isLast) {
            let capacity = scan.size;
            if (cut !== null) {
              // Cut, then zero-fill again so that later batches do not grow the file.
              await fh.truncate(scan.end);
              capacity = Math.max(scan.end, log.preallocBytes);
              await zeroFill(fh, scan.end, capacity);
              await fh.datasync();
            }
            log.cur = { fh, dfh: null, pos: scan.end, capacity, entry };
            keep = true;
            if (log.io.forceSync) log.cur.dfh = await openFile(path, DURABLE_WRITE_FLAGS);
            log.needFile = false;
          }
        }
        if (cut !== null) {
          log.recovery.cut = cut;
          opts.logger.warn({ file: path, offset: cut.offset, bytesCut: cut.bytesCut, reason: cut.reason }, 'cut torn tail of transaction log');
        }
      } catch (err) {
        if (keep) await closeLogFile(log.cur!);
        throw err;
      } finally {
        if (!keep) await fh.close();
      }
    }
    log.appended = log.durable = prev;
    log.spare = await adoptSpare(log.io, log.preallocBytes);
    log.maybePrepareSpare();
    for (const entry of untrimmed) log.retire(entry);
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

  /**
   * The next append starts a new file (the server calls this after a snapshot, so old files can be purged).
   * That file is normally the spare, already prepared: the roll costs a rename and a directory fsync.
   */
  roll(): void {
    this.checkUsable();
    this.needFile = true;
  }

  /** Resolves when background file work (preparing the spare, trimming old files) is done: for tests and benchmarks. */
  async settled(): Promise<void> {
    for (;;) {
      const prep = this.sparePrep;
      const bg = this.background;
      await prep;
      await bg;
      if (this.sparePrep === null && this.background === bg) return;
    }
  }

  /** Durable records with zxid > fromZxid, oldest first, read from disk (used for replay at start). */
  async *read(fromZxid: bigint): AsyncGenerator<{ zxid: bigint; payload: Buffer }> {
    const files = [...this.files];
    let prev = 0n;
    for (let i = 0; i < files.length; i++) {
      if (i + 1 < files.length && files[i + 1].startZxid <= fromZxid + 1n) continue; // every record in it is <= fromZxid
      const path = join(this.dir, files[i].file);
      const fh = await this.io.openFile(path, 'r');
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

  /**
   * Drops every record above `zxid` (a leader's TRUNC: they were never committed). Whatever was
   * appended is made durable first; the records past `zxid` in the file that holds it are
   * overwritten with zeros and fdatasynced, later files are deleted. The next append continues
   * after `zxid`.
   */
  async truncateAfter(zxid: bigint): Promise<void> {
    await this.rewriteTail(zxid, async () => {
      const keep = this.files.filter((f) => f.startZxid <= zxid);
      const drop = this.files.filter((f) => f.startZxid > zxid);
      const last = keep.at(-1);
      if (last !== undefined) {
        const path = join(this.dir, last.file);
        // A handle of our own: the current file's may be write-only.
        const file = await this.io.openFile(path, 'r+');
        try {
          const w = new FileWindow(file, last.end);
          let pos = LOG_HEADER_BYTES;
          for (;;) {
            const step = await readRecordAt(w, pos);
            if (step.kind !== 'record' || step.zxid > zxid) break;
            pos = step.next;
          }
          if (pos < last.end) {
            await zeroFill(file, pos, last.end);
            await file.datasync();
            last.end = pos;
            if (this.cur?.entry === last) this.cur.pos = pos;
          }
        } finally {
          await file.close();
        }
      }
      if (this.cur !== null && drop.includes(this.cur.entry)) {
        await closeLogFile(this.cur);
        this.cur = null;
        this.needFile = true;
      }
      this.files = keep;
      for (const f of drop) await unlink(join(this.dir, f.file));
      if (drop.length > 0) await fsyncDir(this.dir, this.io.openFile);
    });
  }

  /**
   * Deletes every log file (a snapshot from the leader replaced the state, and with it the whole
   * history): the next append starts a new file after `zxid`.
   */
  async discardAll(zxid: bigint): Promise<void> {
    await this.rewriteTail(zxid, async () => {
      if (this.cur !== null) await closeLogFile(this.cur);
      this.cur = null;
      this.needFile = true;
      for (const f of this.files) await unlink(join(this.dir, f.file));
      if (this.files.length > 0) await fsyncDir(this.dir, this.io.openFile);
      this.files = [];
    });
  }

  /**
   * Changes the files under the log's end (TRUNC, a leader's snapshot): everything appended is made
   * durable and background work finished first; a failure fails the log; after it, appends go on
   * after `zxid`.
   */
  private async rewriteTail(zxid: bigint, work: () => Promise<void>): Promise<void> {
    this.checkUsable();
    await this.syncAll();
    await this.loop;
    await this.settled();
    try {
      await work();
    } catch (err) {
      this.fail(err);
      throw this.failed ?? err;
    }
    this.appended = this.durable = zxid;
  }


  /** Deletes whole files whose every record is below `zxid`; never the newest file. Returns the names deleted. */
  async purgeBefore(zxid: bigint): Promise<string[]> {
    let n = 0;
    while (n + 1 < this.files.length && this.files[n + 1].startZxid <= zxid) n++;
    const victims = this.files.splice(0, n); // taken out first so read() started later does not see them
    for (const v of victims) await unlink(join(this.dir, v.file));
    if (victims.length > 0) await fsyncDir(this.dir, this.io.openFile);
    return victims.map((v) => v.file);
  }

  /** Flushes what was appended (unless failed), then closes the files. A prepared spare stays on disk for the next open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true; // from here append() throws, so nothing appended is silently dropped
    if (this.failed === null && this.appended > this.durable) await this.syncAll().catch(() => undefined);
    await this.loop;
    await this.settled();
    for (const f of [this.cur, this.spare]) if (f !== null) await closeLogFile(f);
    this.cur = null;
    this.spare = null;
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
      // One write per run of records between rolls: normally the whole batch.
      for (let i = 0; i < batch.length;) {
        let j = i + 1;
        let runBytes = batch[i].rec.length;
        while (j < batch.length && !batch[j].newFile) runBytes += batch[j++].rec.length;
        const cur = this.cur;
        if (batch[i].newFile || cur === null || cur.pos + runBytes > cur.capacity) await this.startFile(batch[i].zxid);
        await this.writeRecords(j - i === 1 ? batch[i].rec : Buffer.concat(batch.slice(i, j).map((p) => p.rec), runBytes), j - i);
        i = j;
      }
    } catch (err) {
      this.fail(err);
      return;
    }
    this.stats.batches++;
    this.durable = batch[batch.length - 1].zxid;
    const ready = this.waiters.filter((w) => w.target <= this.durable);
    this.waiters = this.waiters.filter((w) => w.target > this.durable);
    for (const w of ready) w.resolve(this.durable);
    this.maybePrepareSpare();
  }

  /** Makes a new current file whose first record is `zxid`: the spare if there is one, else one created here. */
  private async startFile(zxid: bigint): Promise<void> {
    const old = this.cur;
    // forceSync off: the old file's records must be on disk before the new file holds any, or a
    // power failure could leave a torn record in a file that is not the newest (read as corruption).
    if (old !== null && old.dfh === null) await this.timed(() => old.fh.datasync(), old.entry.file, 0, 0);
    if (this.sparePrep !== null) await this.sparePrep; // already writing the file we need: wait rather than write another
    const file = logFileName(zxid);
    let next = this.spare;
    this.spare = null;
    if (next !== null) {
      try {
        await activateSpare(this.io, file); // durable before the first record is written, so recovery sees the real name
      } catch (err) {
        await closeLogFile(next);
        throw err;
      }
      this.stats.sparesUsed++;
    } else {
      next = await createLogFile(this.io, file, this.preallocBytes, true);
      this.stats.filesCreatedInline++;
    }
    const entry = { file, startZxid: zxid, end: LOG_HEADER_BYTES };
    this.files.push(entry);
    this.cur = { ...next, entry };
    if (old !== null) this.retire(old);
  }

  /** Writes records at the end of the current file: with forceSync on, one durable write (no fdatasync needed). */
  private async writeRecords(buf: Buffer, txns: number): Promise<void> {
    const cur = this.cur!;
    const dfh = cur.dfh;
    if (dfh === null) {
      await writeFully(cur.fh, buf, cur.pos);
    } else if (dfh.fd !== undefined && this.inline.canInline(txns, buf.length)) {
      // A small batch on a disk that has been fast is written right here, on the event loop (see InlineWritePolicy).
      const fd = dfh.fd;
      const ms = this.inline.inline(() => {
        for (let done = 0; done < buf.length;) done += writeSync(fd, buf, done, buf.length - done, cur.pos + done);
      });
      this.afterDurableOp(ms, cur.entry.file, txns, buf.length, true);
      this.stats.inlineWrites++;
    } else {
      await this.timed(() => writeFully(dfh, buf, cur.pos), cur.entry.file, txns, buf.length);
    }
    cur.pos += buf.length;
    // A run larger than a fresh file's capacity extended the file (a durable write carries the new size).
    if (cur.pos > cur.capacity) cur.capacity = cur.pos;
    cur.entry.end = cur.pos;
    this.stats.bytesWritten += buf.length;
  }

  /** Runs a durable write or fdatasync, counts it, and warns when it was slow. */
  private async timed(op: () => Promise<void>, file: string, txns: number, bytes: number): Promise<void> {
    const t0 = performance.now();
    await op();
    this.afterDurableOp(performance.now() - t0, file, txns, bytes);
  }

  /** `inline`: made on the event loop, and already noted by the inline policy. */
  private afterDurableOp(ms: number, file: string, txns: number, bytes: number, inline = false): void {
    this.stats.fsyncs++;
    if (!inline) this.inline.note(ms);
    this.stats.slowDurableWrites = this.inline.slowWrites;
    this.durableOpObserver?.(ms);
    if (ms > this.fsyncWarningMs) {
      this.stats.fsyncsOverWarning++;
      this.opts.logger.warn({ file: join(this.dir, file), durationMs: Math.round(ms), txns, bytes }, 'fsync of transaction log was slow');
    }
  }

  /** Keeps one spare ready: prepared in the background as soon as none is ready or being prepared. */
  private maybePrepareSpare(): void {
    if (this.spare !== null || this.sparePrep !== null || this.failed !== null || this.closed) return;
    const forFile = this.cur?.entry.file ?? null;
    if (this.spareFailedFor === forFile) return;
    this.sparePrep = prepareSpare(this.io, this.preallocBytes).then((f) => {
      if (this.failed !== null || this.closed) void closeLogFile(f);
      else this.spare = f;
    }, (err: unknown) => {
      // Not fatal: no acknowledged record depends on the spare. The next roll creates its file
      // inline, and a failure there is fatal as any other.
      this.spareFailedFor = forFile;
      const e = ioFailure(err, `preparing the next transaction log file in ${this.dir}`);
      this.opts.logger.warn({ code: e.code, errno: e.errno, err: e.message }, 'could not prepare the next transaction log file');
    }).finally(() => { this.sparePrep = null; });
  }

  /**
   * Trims an old file's unused zeros (so that recovery need not read them) and closes it, off the
   * commit path. Given a file entry rather than an open file, opens it for that.
   */
  private retire(old: Current | FileEntry): void {
    this.background = this.background.then(async () => {
      const entry = 'entry' in old ? old.entry : old;
      // Not synced: if the trim is lost in a crash, the zeros read as the end of the file, as before it.
      try {
        if ('entry' in old) await old.fh.truncate(old.pos);
        else await trimLogFile(this.io, old.file, old.end);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') { // purged meanwhile
          this.opts.logger.warn({ file: join(this.dir, entry.file), err: (err as Error).message }, 'could not trim transaction log file');
        }
      }
      if ('entry' in old) await closeLogFile(old);
    });
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
    for (const f of [this.cur, this.spare]) if (f !== null) void closeLogFile(f);
    this.cur = null;
    this.spare = null;
    try { this.opts.onFsyncError?.(e); } catch { /* the callback's failure must not hide ours */ }
  }
}
