// The transaction log's files, apart from the log's commit logic (txn-log.ts):
// creating a file ready for records (header, real zeros, fdatasync), the spare
// prepared ahead of a roll, and the O_DSYNC handle that record batches go
// through. A file's capacity is written and fdatasynced before it takes a
// record, so a batch that ends within it changes no file metadata: a write on
// the O_DSYNC handle is then one syscall that is durable when it returns.
import { constants } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LOG_HEADER_BYTES, SPARE_LOG_NAME, SPARE_LOG_TMP_NAME, ZEROS, fsyncDir, logFileHeader, readFully, writeFully,
  type OpenFile, type StorageFile,
} from './storage-format.js';

/** Flags of the handle record batches are written through: each write is durable on return, with no separate fdatasync. */
export const DURABLE_WRITE_FLAGS = constants.O_WRONLY | constants.O_DSYNC;

/** An open log file. */
export interface LogFile {
  /** Plain read-write handle: header, zeros, fdatasync, trimming; and record batches when forceSync is off. */
  fh: StorageFile;
  /** O_WRONLY|O_DSYNC handle for record batches when forceSync is on, else null. */
  dfh: StorageFile | null;
  /** Offset of the next record (just past the last one). */
  pos: number;
  /** Bytes already on disk (header, records, fdatasynced zeros). */
  capacity: number;
}

export interface LogFileIo {
  dir: string;
  openFile: OpenFile;
  forceSync: boolean;
  /** Called once per fdatasync, for the log's stats. */
  onDatasync: () => void;
  /** Called once per fdatasync of a paced background zero-fill (the spare): not commit work. */
  onPacedSync: () => void;
}

/** Background zero-fill pace: small flushed steps with pauses, so the device never holds a 16 MiB burst in front of a commit. */
const PACED_STEP_BYTES = 512 * 1024;
const PACED_PAUSE_MS = 3;

/**
 * Writes real zeros over [from, to): not ftruncate, whose sparse file costs block allocation on every later write.
 * Paced (for the spare, made while commits run): each step is flushed before the next, after a short pause.
 */
export async function zeroFill(fh: StorageFile, from: number, to: number, onPacedSync?: () => void): Promise<void> {
  const paced = onPacedSync !== undefined;
  const step = paced ? PACED_STEP_BYTES : ZEROS.length;
  for (let at = from; at < to;) {
    const n = Math.min(step, to - at);
    await writeFully(fh, ZEROS.subarray(0, n), at);
    at += n;
    if (paced) {
      await fh.datasync();
      onPacedSync();
      await new Promise((r) => setTimeout(r, PACED_PAUSE_MS));
    }
  }
}

async function openDurable(io: LogFileIo, path: string): Promise<StorageFile | null> {
  return io.forceSync ? io.openFile(path, DURABLE_WRITE_FLAGS) : null;
}

export async function closeLogFile(f: LogFile): Promise<void> {
  await f.dfh?.close().catch(() => undefined);
  await f.fh.close().catch(() => undefined);
}

/**
 * Creates `name` ready for records: header, zeros up to `capacity`, fdatasync,
 * then (if `syncDir`) a directory fsync. On failure the file is removed.
 */
export async function createLogFile(io: LogFileIo, name: string, capacity: number, syncDir: boolean, paced = false): Promise<LogFile> {
  const path = join(io.dir, name);
  const fh = await io.openFile(path, 'wx');
  let dfh: StorageFile | null = null;
  try {
    await writeFully(fh, logFileHeader(), 0);
    await zeroFill(fh, LOG_HEADER_BYTES, capacity, paced ? io.onPacedSync : undefined);
    await fh.datasync();
    io.onDatasync();
    if (syncDir) await fsyncDir(io.dir, io.openFile);
    dfh = await openDurable(io, path);
    return { fh, dfh, pos: LOG_HEADER_BYTES, capacity };
  } catch (err) {
    await closeLogFile({ fh, dfh, pos: 0, capacity: 0 });
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

/**
 * Builds the spare: log.next.tmp, filled and fdatasynced, then renamed to log.next.
 * No directory fsync: nothing depends on the spare's name until activateSpare()
 * renames it and fsyncs the directory, and if a crash keeps the rename to
 * log.next, the zeros it names were already durable when it was made.
 */
export async function prepareSpare(io: LogFileIo, capacity: number): Promise<LogFile> {
  await unlink(join(io.dir, SPARE_LOG_TMP_NAME)).catch(() => undefined);
  const f = await createLogFile(io, SPARE_LOG_TMP_NAME, capacity, false, true);
  try {
    await rename(join(io.dir, SPARE_LOG_TMP_NAME), join(io.dir, SPARE_LOG_NAME));
    return f;
  } catch (err) {
    await closeLogFile(f);
    await unlink(join(io.dir, SPARE_LOG_TMP_NAME)).catch(() => undefined);
    throw err;
  }
}

/**
 * At open: deletes an incomplete spare (log.next.tmp) and reuses a complete one
 * (log.next) if it has the expected size and header; anything else is deleted.
 * log.next only ever exists after its zeros were fdatasynced, and it is renamed
 * away before it takes a record, so its name proves its content. Never throws:
 * a spare is only an optimization.
 */
export async function adoptSpare(io: LogFileIo, capacity: number): Promise<LogFile | null> {
  await unlink(join(io.dir, SPARE_LOG_TMP_NAME)).catch(() => undefined);
  const path = join(io.dir, SPARE_LOG_NAME);
  const size = await stat(path).then((s) => s.size, () => null);
  if (size === null) return null;
  let f: LogFile | null = null;
  try {
    if (size === capacity) {
      const fh = await io.openFile(path, 'r+');
      f = { fh, dfh: null, pos: LOG_HEADER_BYTES, capacity };
      const head = Buffer.alloc(LOG_HEADER_BYTES);
      await readFully(fh, head, 0);
      if (head.equals(logFileHeader())) {
        f.dfh = await openDurable(io, path);
        return f;
      }
    }
  } catch {
    // fall through: remove it
  }
  if (f !== null) await closeLogFile(f);
  await unlink(path).catch(() => undefined);
  return null;
}

/** Cuts a closed log file's unused zeros after `end`. */
export async function trimLogFile(io: LogFileIo, name: string, end: number): Promise<void> {
  const fh = await io.openFile(join(io.dir, name), 'r+');
  try { await fh.truncate(end); } finally { await fh.close(); }
}

/** Renames the spare to its log file name and makes the rename durable: required before its first record is written. */
export async function activateSpare(io: LogFileIo, name: string): Promise<void> {
  await rename(join(io.dir, SPARE_LOG_NAME), join(io.dir, name));
  await fsyncDir(io.dir, io.openFile);
}
