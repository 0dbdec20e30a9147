// Machinery shared by the storage layer (txn-log.ts, snapshot-store.ts,
// data-dir.ts, data-dir-inspect.ts): errors, CRC, the file seam, and the
// transaction log's on-disk format with its read-only scanner. The scanner and
// judgeLogScan() live here, apart from TxnLog, because the log's recovery and
// the `verify` command must reach the same verdict on the same bytes.
//
// Log file: log.<16 hex digits of its first zxid>
// Header:   'QTXL' | u32 format version | 16 reserved bytes (zero)
// Record:   u32 payload length | u32 CRC32 over zxid+payload | i64 zxid | payload
// The rest of a file is preallocated zeros; a zero length marks the end.
// Spare:    log.next, a file prepared ahead of a roll (header + zeros, fdatasynced;
//           built as log.next.tmp and renamed when complete). It never holds a
//           record: it is renamed to log.<zxid> before its first write. Readers
//           ignore both names; the log's open() reuses a complete log.next and
//           deletes a log.next.tmp.
import { open as fsOpen, readFile, readdir } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { ZK_LIMITS } from '../limits.js';

// ---- shared storage primitives ------------------------------------------------

/** A storage failure an operator must act on; `code` is stable, `errno` is the OS code when there was one. */
export class StorageError extends Error {
  constructor(message: string, readonly code: string, readonly errno?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** Damage that is not a torn tail: the server must not start on it (and must not cut it). */
export class StorageCorruptError extends StorageError {
  constructor(message: string, readonly file: string, readonly offset: number) {
    super(message, 'QUORATE_LOG_CORRUPT');
    this.name = 'StorageCorruptError';
  }
}

/** Maps an fs error to a StorageError; ENOSPC gets its own code because the operator's fix differs. */
export function ioFailure(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new StorageError(`${what}: disk full (${errno}). Free space on this volume and restart the server; ` +
      'nothing that was not already acknowledged has been acknowledged.', 'QUORATE_DISK_FULL', errno, { cause: err });
  }
  return new StorageError(`${what}: ${errno ?? String(err)}. The storage is now failed and acknowledges nothing more; ` +
    'restart the server so that it recovers from what is on disk.', 'QUORATE_STORAGE_IO', errno, { cause: err });
}

/** The subset of fs.promises.FileHandle this layer uses: the seam tests use to inject failures and count fsyncs. */
export interface StorageFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
  /** The descriptor of a real file (fs.promises.FileHandle has it): lets the log write small batches synchronously. */
  readonly fd?: number;
}
/** `flags` as fs.promises.open takes them: a string ('r', 'wx', ...) or numeric O_* flags (the log's O_DSYNC handle). */
export type OpenFile = (path: string, flags: string | number) => Promise<StorageFile>;
/**
 * What Quorate creates on disk is its own: transaction logs hold session passwords and data
 * behind ACLs, journals hold the services' edits. Directories 0700, files 0600, whatever the umask.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
export const openRealFile: OpenFile = (path, flags) => fsOpen(path, flags, PRIVATE_FILE_MODE);

/** A small file's text, or null if there is no such file. */
export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A new or renamed directory entry is only durable once the directory itself is fsynced. */
export async function fsyncDir(dir: string, openFile: OpenFile = openRealFile): Promise<void> {
  const fh = await openFile(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

export async function readFully(fh: StorageFile, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new StorageError(`unexpected end of file at offset ${position + done}`, 'QUORATE_STORAGE_IO');
    done += bytesRead;
  }
}

export async function writeFully(fh: StorageFile, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Table-driven CRC32 (IEEE), for Node 20 releases before zlib.crc32 (20.15). Same incremental contract. */
export function crc32Fallback(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? crc32Fallback;

/** Shared zeros for preallocation and zero tests (never written to). */
export const ZEROS = Buffer.alloc(1 << 20);

export function isAllZero(buf: Buffer): boolean {
  for (let at = 0; at < buf.length; at += ZEROS.length) {
    const part = buf.subarray(at, at + ZEROS.length);
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

export const hexZxid = (zxid: bigint): string => BigInt.asUintN(64, zxid).toString(16).padStart(16, '0');

/** Reads through a file in large windows, so scanning does not issue one read per record. */
export class FileWindow {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  constructor(private readonly fh: StorageFile, readonly size: number, private readonly windowBytes = 1 << 20) {}

  /** Bytes [pos, pos+len), which must lie inside the file. The view is only valid until the next call. */
  async at(pos: number, len: number): Promise<Buffer> {
    if (pos < this.start || pos + len > this.start + this.buf.length) {
      this.buf = await this.fresh(pos, Math.min(Math.max(len, this.windowBytes), this.size - pos));
      this.start = pos;
    }
    return this.buf.subarray(pos - this.start, pos - this.start + len);
  }

  /** A private copy of [pos, pos+len), leaving the window alone. */
  async fresh(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    await readFully(this.fh, buf, pos);
    return buf;
  }
}

// ---- log format -----------------------------------------------------------------

export const LOG_MAGIC = 'QTXL';
export const LOG_VERSION = 1;
export const LOG_HEADER_BYTES = 24;
export const RECORD_HEADER_BYTES = 16;
/** A whole record must fit in one group-commit batch. */
export const RECORD_PAYLOAD_BYTES_MAX = ZK_LIMITS.group_commit_bytes_max - RECORD_HEADER_BYTES;
/**
 * When looking for a valid record after a bad one, a candidate's zxid must be
 * within this distance above the last good zxid (2^20 epochs). It is what
 * makes a random 8 bytes fail fast instead of costing a CRC over megabytes.
 */
const SUCCESSOR_ZXID_SPAN = 1n << 52n;
const LOG_NAME = /^log\.([0-9a-f]{16})$/;
/** The spare log file, complete and ready to be renamed to log.<first zxid>. */
export const SPARE_LOG_NAME = 'log.next';
/** The spare while it is being written: a crash leaves it incomplete. */
export const SPARE_LOG_TMP_NAME = 'log.next.tmp';

export const logFileName = (zxid: bigint): string => `log.${hexZxid(zxid)}`;

export function logFileHeader(): Buffer {
  const h = Buffer.alloc(LOG_HEADER_BYTES);
  h.write(LOG_MAGIC, 0, 'latin1');
  h.writeUInt32BE(LOG_VERSION, 4);
  return h;
}

export function encodeRecord(zxid: bigint, payload: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  rec.writeUInt32BE(payload.length, 0);
  rec.writeBigUInt64BE(zxid, 8);
  payload.copy(rec, RECORD_HEADER_BYTES);
  rec.writeUInt32BE(crc32(rec.subarray(8)), 4);
  return rec;
}

export interface LogFileEntry { file: string; startZxid: bigint }

/** Log files in a directory, oldest first (names sort by zxid; other files are ignored). */
export async function listLogFiles(dir: string): Promise<LogFileEntry[]> {
  const out: LogFileEntry[] = [];
  for (const file of await readdir(dir)) {
    const m = LOG_NAME.exec(file);
    if (m) out.push({ file, startZxid: BigInt.asIntN(64, BigInt('0x' + m[1])) });
  }
  return out.sort((a, b) => (a.startZxid < b.startZxid ? -1 : a.startZxid > b.startZxid ? 1 : 0));
}

type Step =
  | { kind: 'record'; zxid: bigint; payload: Buffer; next: number }
  | { kind: 'end' }
  | { kind: 'bad'; reason: string; zero: boolean };

/** Reads the record at `pos`, validating framing and CRC (not ordering). */
export async function readRecordAt(w: FileWindow, pos: number): Promise<Step> {
  if (pos === w.size) return { kind: 'end' };
  if (pos + RECORD_HEADER_BYTES > w.size) return { kind: 'bad', reason: 'partial record header', zero: false };
  const h = await w.at(pos, RECORD_HEADER_BYTES);
  const len = h.readUInt32BE(0);
  if (len === 0) return { kind: 'bad', reason: 'zero length', zero: true };
  if (len > RECORD_PAYLOAD_BYTES_MAX) return { kind: 'bad', reason: `length ${len} is over the maximum`, zero: false };
  if (pos + RECORD_HEADER_BYTES + len > w.size) return { kind: 'bad', reason: 'record runs past the end of the file', zero: false };
  const crc = h.readUInt32BE(4);
  const body = await w.at(pos + 8, 8 + len);
  if (crc32(body) !== crc) return { kind: 'bad', reason: 'checksum mismatch', zero: false };
  return { kind: 'record', zxid: body.readBigUInt64BE(0), payload: Buffer.from(body.subarray(8)), next: pos + RECORD_HEADER_BYTES + len };
}

export interface LogScan {
  file: string;
  size: number;
  records: number;
  firstZxid: bigint | null;
  lastZxid: bigint | null;
  /** Offset just past the last valid record. */
  end: number;
  /** 'blank' = shorter than a header or an all-zero header: a file created but never written. */
  header: 'ok' | 'blank' | string;
  /** Why reading stopped before EOF (null: the records ran exactly to EOF, or the header was bad). */
  stop: null | {
    offset: number; reason: string; zero: boolean;
    /** A valid CRC with a zxid out of order: never a torn write. */
    order: boolean;
    /** Some byte from `offset` on is not zero. */
    tailNonZero: boolean;
    /** Where a valid later record starts, if one does: proof this is not a torn tail. */
    successorAt: number | null;
  };
}

/** Reads one log file without changing it. `prevZxid` is the last zxid of the files before it. */
export async function scanLogFile(fh: StorageFile, entry: LogFileEntry, prevZxid: bigint,
  onRecord?: (zxid: bigint, payload: Buffer, offset: number) => void): Promise<LogScan> {
  const size = (await fh.stat()).size;
  const w = new FileWindow(fh, size);
  const scan: LogScan = { file: entry.file, size, records: 0, firstZxid: null, lastZxid: null, end: LOG_HEADER_BYTES, header: 'ok', stop: null };
  if (size < LOG_HEADER_BYTES) return { ...scan, header: 'blank', end: 0 };
  const head = await w.at(0, LOG_HEADER_BYTES);
  if (isAllZero(head)) {
    // Created but never written, unless records follow: then the header itself was damaged.
    const found = await findSuccessor(w, 0, prevZxid > entry.startZxid - 1n ? prevZxid : entry.startZxid - 1n);
    scan.header = found.at === null ? 'blank' : `zeroed header, but a valid record starts at offset ${found.at}`;
    scan.end = 0;
    return scan;
  }
  if (head.toString('latin1', 0, 4) !== LOG_MAGIC) { scan.header = 'not a Quorate transaction log (bad magic)'; return scan; }
  if (head.readUInt32BE(4) !== LOG_VERSION) { scan.header = `unsupported log format version ${head.readUInt32BE(4)}`; return scan; }
  let pos = LOG_HEADER_BYTES;
  let prev = prevZxid;
  for (;;) {
    const step = await readRecordAt(w, pos);
    if (step.kind === 'end') return scan;
    let order: string | null = null;
    if (step.kind === 'record') {
      if (scan.records === 0 && step.zxid !== entry.startZxid) order = `first zxid 0x${hexZxid(step.zxid)} does not match the file name`;
      else if (step.zxid <= prev) order = `zxid 0x${hexZxid(step.zxid)} is not above the previous 0x${hexZxid(prev)}`;
    }
    if (step.kind === 'bad' || order !== null) {
      const anchor = scan.lastZxid ?? (prev > entry.startZxid - 1n ? prev : entry.startZxid - 1n);
      const found = await findSuccessor(w, pos, anchor);
      const reason = step.kind === 'bad' ? step.reason : order!;
      scan.stop = { offset: pos, reason, zero: step.kind === 'bad' && step.zero, order: order !== null, tailNonZero: found.nonZero, successorAt: found.at };
      return scan;
    }
    onRecord?.(step.zxid, step.payload, pos);
    scan.firstZxid ??= step.zxid;
    scan.lastZxid = prev = step.zxid;
    scan.records++;
    scan.end = pos = step.next;
  }
}

/** Looks at every offset after `from` for a record with a valid CRC and a zxid above `anchor`. */
async function findSuccessor(w: FileWindow, from: number, anchor: bigint): Promise<{ at: number | null; nonZero: boolean }> {
  const step = 1 << 20;
  let nonZero = false;
  for (let base = from; base < w.size; base += step) {
    // Overlap windows by a record header so a header straddling two windows is still seen.
    const buf = Buffer.from(await w.at(base, Math.min(step + RECORD_HEADER_BYTES, w.size - base)));
    if (isAllZero(buf)) continue;
    nonZero = true;
    for (let i = base === from ? 1 : 0; i < step && i + RECORD_HEADER_BYTES <= buf.length; i++) {
      const len = buf.readUInt32BE(i);
      if (len === 0 || len > RECORD_PAYLOAD_BYTES_MAX || base + i + RECORD_HEADER_BYTES + len > w.size) continue;
      const zxid = buf.readBigUInt64BE(i + 8);
      if (zxid <= anchor || zxid - anchor > SUCCESSOR_ZXID_SPAN) continue;
      if (crc32(await w.fresh(base + i + 8, 8 + len)) === buf.readUInt32BE(i + 4)) return { at: base + i, nonZero };
    }
  }
  return { at: null, nonZero };
}

export type LogVerdict =
  | { kind: 'ok' }
  | { kind: 'blank' }
  | { kind: 'torn'; offset: number; reason: string }
  | { kind: 'corrupt'; offset: number; message: string };

/** What a scan means: the one place that decides torn tail (cut it) versus corruption (refuse). */
export function judgeLogScan(scan: LogScan, isLast: boolean): LogVerdict {
  if (scan.header === 'blank') return isLast ? { kind: 'blank' } : { kind: 'corrupt', offset: 0, message: 'file has no header' };
  if (scan.header !== 'ok') return { kind: 'corrupt', offset: 0, message: scan.header };
  const s = scan.stop;
  if (s === null) return { kind: 'ok' };
  if (s.order) return { kind: 'corrupt', offset: s.offset, message: s.reason };
  if (s.successorAt !== null) {
    return { kind: 'corrupt', offset: s.offset, message: `${s.reason}, but a valid later record starts at offset ${s.successorAt}, so this is not a torn write` };
  }
  if (s.zero && !s.tailNonZero) return { kind: 'ok' }; // the preallocated zeros after the last record
  if (isLast) return { kind: 'torn', offset: s.offset, reason: s.reason };
  return { kind: 'corrupt', offset: s.offset, message: `${s.reason} in a file that is not the newest one` };
}

export function corruptionAdvice(dir: string, file: string): string {
  return `Do not cut this by hand. Restore this server from a healthy replica (stop it, move ${dir} aside, ` +
    `start it empty and let it sync from the leader), or move ${file} and the newer log files aside if you accept losing their transactions.`;
}
