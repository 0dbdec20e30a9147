import { open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LOG_HEADER_BYTES, RECORD_HEADER_BYTES, StorageCorruptError, StorageError, crc32, crc32Fallback, encodeRecord, logFileHeader,
} from '../../../src/io/storage-format.js';
import { TxnLog, type TxnLogOptions } from '../../../src/io/txn-log.js';
import { ZK_LIMITS } from '../../../src/limits.js';
import { captureLogger, faultyOpen, removeTempDirs, tempDir, type FaultPlan, type IoEvent } from './helpers.js';
import { seededRng } from '../../helpers/seeded.js';

// Random bytes from a seed this file prints when a test fails (replay with TXNLOG_SEED=<seed>).
const { rng } = seededRng('TXNLOG_SEED');
const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rng.int(256)));

const PREALLOC = 64 * 1024;
const payload = (i: number): Buffer => Buffer.from(`txn-${i};`.repeat(1 + (i % 7)));
const recordBytes = (i: number): number => RECORD_HEADER_BYTES + payload(i).length;
/** Offset of record `k` (1-based zxid k) in a file whose first zxid is `first`. */
const offsetOf = (first: number, k: number): number => {
  let off = LOG_HEADER_BYTES;
  for (let i = first; i < k; i++) off += recordBytes(i);
  return off;
};

async function openLog(dir: string, extra: Partial<TxnLogOptions> = {}) {
  const cap = captureLogger();
  const log = await TxnLog.open(dir, { logger: cap.logger, preallocBytes: PREALLOC, ...extra });
  return { log, cap };
}

async function appendRange(log: TxnLog, from: number, to: number): Promise<bigint> {
  for (let i = from; i <= to; i++) log.append(BigInt(i), payload(i));
  return log.sync();
}

async function collect(log: TxnLog, from = 0n): Promise<{ zxid: bigint; payload: Buffer }[]> {
  const out: { zxid: bigint; payload: Buffer }[] = [];
  for await (const r of log.read(from)) out.push(r);
  return out;
}

/** A log in `dir` with records 1..n in one file; returns that file's path. */
async function writeLog(dir: string, n: number): Promise<string> {
  const { log } = await openLog(dir);
  await appendRange(log, 1, n);
  await log.close();
  return join(dir, 'log.0000000000000001');
}

/**
 * The file operations from the start of `commit` until it resolves, but for the
 * old file's trim that a roll starts in the background. Settle the log first.
 */
async function commitPathIo(plan: FaultPlan, commit: () => Promise<unknown>): Promise<Omit<IoEvent, 'file'>[]> {
  const from = plan.trace!.length;
  let to = -1;
  await commit().then(() => { to = plan.trace!.length; });
  return plan.trace!.slice(from, to).filter((e) => e.op !== 'truncate').map(({ file: _, ...e }) => e);
}

/** The log files in `dir` (not the spare), oldest first. */
async function logNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^log\.[0-9a-f]{16}$/.test(f)).sort();
}

async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try { await fh.write(bytes, 0, bytes.length, offset); } finally { await fh.close(); }
}

afterEach(removeTempDirs);

describe('TxnLog: append, sync, reopen', () => {
  it('restores every record across rolled files, and read() starts after fromZxid', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    expect(log.lastZxid).toBe(0n);
    expect(await appendRange(log, 1, 10)).toBe(10n);
    log.roll();
    await appendRange(log, 11, 20);
    log.roll();
    await appendRange(log, 21, 25);
    await log.close();
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', 'log.000000000000000b', 'log.0000000000000015', 'log.next']);
    expect((await stat(join(dir, 'log.0000000000000001'))).size).toBe(offsetOf(1, 11)); // rolled: preallocation trimmed
    expect(log.stats).toMatchObject({ sparesUsed: 3, filesCreatedInline: 0 }); // even the first: prepared at open

    const { log: again, cap } = await openLog(dir);
    expect(again.lastZxid).toBe(25n);
    expect(again.durableZxid).toBe(25n);
    expect(again.recovery).toEqual({ cut: null, files: 3, records: 25 });
    expect(cap.warns()).toEqual([]);
    const all = await collect(again);
    expect(all.map((r) => r.zxid)).toEqual(Array.from({ length: 25 }, (_, i) => BigInt(i + 1)));
    expect(all.every((r) => r.payload.equals(payload(Number(r.zxid))))).toBe(true);
    expect((await collect(again, 15n)).map((r) => Number(r.zxid))).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);

    // Appends after a restart continue the newest file.
    await appendRange(again, 30, 31);
    await again.close();
    const { log: third } = await openLog(dir);
    expect(third.lastZxid).toBe(31n);
    expect((await collect(third, 25n)).map((r) => r.zxid)).toEqual([30n, 31n]);
    await third.close();
  });

  it('keeps zxids past 2^63 (an epoch past 2^31) as the same unsigned 64-bit numbers', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    const big = [0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0001n, 0xffff_fffe_0000_0001n];
    for (const z of big) log.append(z, payload(1));
    await log.sync();
    await log.close();
    const { log: again } = await openLog(dir);
    expect((await collect(again)).map((r) => r.zxid)).toEqual(big);
    expect(again.lastZxid).toBe(big[2]);
    await again.close();
  });

  it('refuses a zxid that does not increase and an empty payload', async () => {
    const { log } = await openLog(await tempDir());
    log.append(5n, payload(5));
    expect(() => log.append(5n, payload(5))).toThrow(RangeError);
    expect(() => log.append(4n, payload(4))).toThrow(RangeError);
    expect(() => log.append(6n, Buffer.alloc(0))).toThrow(RangeError);
    expect(await log.sync()).toBe(5n);
    expect(await log.sync()).toBe(5n); // nothing pending: resolves at once
    await log.close();
    expect(() => log.append(6n, payload(6))).toThrow(expect.objectContaining({ code: 'QUORATE_LOG_CLOSED' }));
  });

  it('gives each file a capacity of preallocBytes in real zeros, not a sparse file; a batch that does not fit goes to the next file', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    log.append(1n, payload(1));
    await log.sync();
    const first = join(dir, 'log.0000000000000001');
    let st = await stat(first);
    expect(st.size).toBe(PREALLOC);
    expect(st.blocks * 512).toBeGreaterThanOrEqual(st.size);
    const big = (i: number) => Buffer.alloc(1000, i);
    for (let i = 2; i <= 61; i++) log.append(BigInt(i), big(i)); // 60 x 1016 bytes: fits
    await log.sync();
    expect((await stat(first)).size).toBe(PREALLOC);
    for (let i = 62; i <= 70; i++) log.append(BigInt(i), big(i)); // does not fit in the rest: the whole batch goes to the next file
    await log.sync();
    await log.settled();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.000000000000003e']);
    expect((await stat(first)).size).toBe(offsetOf(1, 2) + 60 * 1016); // trimmed once it was left
    st = await stat(join(dir, 'log.000000000000003e'));
    expect(st.size).toBe(PREALLOC);
    expect(st.blocks * 512).toBeGreaterThanOrEqual(st.size);
    await log.close();
    const { log: again } = await openLog(dir);
    expect((await collect(again)).map((r) => Number(r.zxid))).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
    await again.close();
  });

  it('has a table CRC32 that matches zlib.crc32', () => {
    for (const n of [0, 1, 7, 100, 4096]) {
      const buf = randomBytes(n);
      expect(crc32Fallback(buf)).toBe(zlib.crc32(buf));
      expect(crc32Fallback(buf.subarray(n >> 1), crc32Fallback(buf.subarray(0, n >> 1)))).toBe(crc32(buf));
    }
  });
});

describe('TxnLog: group commit', () => {
  it('makes 500 concurrent appends durable with far fewer fsyncs', async () => {
    const dir = await tempDir();
    const plan: FaultPlan = { fsyncs: 0 };
    const { log } = await openLog(dir, { openFile: faultyOpen(plan) });
    const syncs: Promise<bigint>[] = [];
    for (let i = 1; i <= 500; i++) {
      log.append(BigInt(i), payload(i));
      syncs.push(log.sync());
      if (i % 50 === 0) await new Promise((r) => setImmediate(r)); // let some fsyncs start mid-stream
    }
    const durable = await Promise.all(syncs);
    durable.forEach((z, i) => expect(z).toBeGreaterThanOrEqual(BigInt(i + 1)));
    expect(log.stats.appends).toBe(500);
    expect(log.stats.fsyncs - log.stats.batches).toBeLessThanOrEqual(2); // plus the spares' fdatasyncs
    expect(log.stats.batches).toBeLessThan(50);
    expect(log.durableZxid).toBe(500n);
    await log.close();
    // one durable write per batch, no fdatasync for it; the spare's paced fill syncs on its own
    expect(log.stats.fsyncs + log.stats.spareSyncs).toBe(plan.fsyncs + plan.durableWrites!);
    const { log: again } = await openLog(dir);
    expect(again.lastZxid).toBe(500n);
    await again.close();
  });

  it('writes without O_DSYNC and syncs nothing per batch when forceSync is off, and says so at open', async () => {
    const plan: FaultPlan = { fsyncs: 0, trace: [] };
    const dir = await tempDir();
    const { log, cap } = await openLog(dir, { openFile: faultyOpen(plan), forceSync: false });
    expect(cap.warns().map((l) => l.msg)).toEqual(['forceSync is off: acknowledged writes can be lost on power failure']);
    await appendRange(log, 1, 1);
    await log.settled();
    const batch = await commitPathIo(plan, () => appendRange(log, 2, 50));
    expect(batch).toEqual([{ op: 'write', dsync: false, bytes: offsetOf(2, 51) - offsetOf(2, 2), zeros: false }]);
    await log.settled();
    // At a roll the old file is fdatasynced before the new one (the spare, renamed) takes a record.
    const rolled = await commitPathIo(plan, () => { log.roll(); return appendRange(log, 51, 51); });
    expect(rolled).toEqual([
      { op: 'datasync', dsync: false, bytes: 0, zeros: false },
      { op: 'sync', dsync: false, bytes: 0, zeros: false },
      { op: 'write', dsync: false, bytes: recordBytes(51), zeros: false },
    ]);
    await log.close();
    expect(plan.trace!.some((e) => e.dsync)).toBe(false);
    expect(plan.durableWrites).toBeUndefined();
    const { log: again } = await openLog(dir);
    expect(again.lastZxid).toBe(51n);
    await again.close();
  });

  it('writes small batches on the event loop and large ones through the thread pool', async () => {
    const dir = await tempDir();
    // Size alone decides here: on a loaded machine a small write can be slow, and a slow one rightly
    // sends the next ones to the thread pool for a while (the next test covers that).
    const { log } = await openLog(dir, { inlineWriteSlowMs: Number.MAX_SAFE_INTEGER });
    for (let i = 1; i <= 10; i++) await appendRange(log, i, i); // ten one-record batches
    expect(log.stats.inlineWrites).toBe(10);
    const big = ZK_LIMITS.inline_write_txns_max + 1;
    await appendRange(log, 11, 10 + big); // one batch over the inline bound
    expect(log.stats.inlineWrites).toBe(10);
    expect(log.stats.batches).toBe(11);
    await log.close();
    const { log: again } = await openLog(dir);
    expect((await collect(again)).map((r) => r.zxid)).toEqual(Array.from({ length: 10 + big }, (_, i) => BigInt(i + 1)));
    await again.close();
  });

  it('sends writes through the thread pool for a while after a slow one, and never inline on a file without a descriptor', async () => {
    const { log } = await openLog(await tempDir(), { inlineWriteSlowMs: -1 }); // every write counts as slow
    await appendRange(log, 1, 1);
    for (let i = 2; i <= 5; i++) await appendRange(log, i, i);
    expect(log.stats.inlineWrites).toBe(1);
    expect(log.stats.slowDurableWrites).toBe(5);
    await log.close();
    const plan: FaultPlan = { fsyncs: 0 };
    const { log: wrapped } = await openLog(await tempDir(), { openFile: faultyOpen(plan) });
    for (let i = 1; i <= 3; i++) await appendRange(wrapped, i, i);
    expect(wrapped.stats.inlineWrites).toBe(0);
    expect(plan.durableWrites).toBe(3);
    await wrapped.close();
  });

  it('bounds a batch by group_commit_txns_max', async () => {
    const { log } = await openLog(await tempDir());
    for (let i = 1; i <= 4500; i++) log.append(BigInt(i), Buffer.from('x'));
    expect(await log.sync()).toBe(4500n);
    expect(log.stats.batches).toBe(3); // 2000 + 2000 + 500
    await log.close();
  });
});

describe('TxnLog: torn tail versus corruption', () => {
  it('cuts a partial record at the end of the newest file and says where', async () => {
    const dir = await tempDir();
    const path = await writeLog(dir, 10);
    const end = offsetOf(1, 11);
    await patch(path, end, encodeRecord(11n, payload(11)).subarray(0, 20));
    const { log, cap } = await openLog(dir);
    expect(log.lastZxid).toBe(10n);
    expect(log.recovery.cut).toMatchObject({ file: path, offset: end, bytesCut: PREALLOC - end, removedFile: false });
    const warn = cap.warns().find((l) => l.msg === 'cut torn tail of transaction log');
    expect(warn).toMatchObject({ file: path, offset: end, bytesCut: PREALLOC - end });
    const st = await stat(path);
    expect(st.size % PREALLOC).toBe(0); // re-preallocated
    expect((await readFile(path)).subarray(end).every((b) => b === 0)).toBe(true);
    await appendRange(log, 11, 12);
    await log.close();
    const { log: again, cap: cap2 } = await openLog(dir);
    expect(again.lastZxid).toBe(12n);
    expect(again.recovery.cut).toBeNull();
    expect(cap2.warns()).toEqual([]);
    await again.close();
  });

  it('cuts random garbage at the end too', async () => {
    const dir = await tempDir();
    const path = await writeLog(dir, 5);
    await patch(path, offsetOf(1, 6), randomBytes(300));
    const { log } = await openLog(dir);
    expect(log.lastZxid).toBe(5n);
    expect(log.recovery.cut?.offset).toBe(offsetOf(1, 6));
    await log.close();
  });

  it('removes a new file whose only record was torn, and continues from the previous file', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 3);
    await log.close();
    const torn = join(dir, 'log.0000000000000004');
    await writeFile(torn, Buffer.concat([logFileHeader(), encodeRecord(4n, payload(4)).subarray(0, 10), Buffer.alloc(100)]));
    const { log: again } = await openLog(dir);
    expect(again.lastZxid).toBe(3n);
    expect(again.recovery.cut).toMatchObject({ file: torn, offset: LOG_HEADER_BYTES, removedFile: true });
    expect(await logNames(dir)).toEqual(['log.0000000000000001']);
    await appendRange(again, 4, 4);
    await again.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.0000000000000004']);
  });

  it('refuses to open when a bad record in the newest file is followed by valid ones, and changes nothing', async () => {
    const dir = await tempDir();
    const path = await writeLog(dir, 10);
    const bad = offsetOf(1, 3);
    await patch(path, bad + RECORD_HEADER_BYTES + 2, Buffer.from([0xff])); // flip a payload byte of zxid 3
    const before = await readFile(path);
    const err = await TxnLog.open(dir, { logger: captureLogger().logger, preallocBytes: PREALLOC }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageCorruptError);
    expect(err).toMatchObject({ code: 'QUORATE_LOG_CORRUPT', file: path, offset: bad });
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toContain(`offset ${bad}`);
    expect((err as Error).message).toMatch(/replica/);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it('treats a zeroed record header followed by valid records as corruption, not the end', async () => {
    const dir = await tempDir();
    const path = await writeLog(dir, 10);
    await patch(path, offsetOf(1, 5), Buffer.alloc(RECORD_HEADER_BYTES));
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'QUORATE_LOG_CORRUPT', offset: offsetOf(1, 5) });
  });

  it('treats a bad record in a file that is not the newest as corruption', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 5);
    log.roll();
    await appendRange(log, 6, 8);
    await log.close();
    const first = join(dir, 'log.0000000000000001');
    await patch(first, offsetOf(1, 5) + RECORD_HEADER_BYTES, Buffer.from('!')); // the last record of the older file
    await expect(openLog(dir)).rejects.toMatchObject({ code: 'QUORATE_LOG_CORRUPT', file: first, offset: offsetOf(1, 5) });
  });

  it('treats a zxid that does not increase as corruption', async () => {
    const dir = await tempDir();
    const path = join(dir, 'log.0000000000000005');
    await writeFile(path, Buffer.concat([logFileHeader(), encodeRecord(5n, payload(5)), encodeRecord(3n, payload(3))]));
    const err = await openLog(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'QUORATE_LOG_CORRUPT', offset: LOG_HEADER_BYTES + recordBytes(5) });
    expect((err as Error).message).toMatch(/not above/);
  });

  it('opens an empty directory, and drops a blank file left by a crash at creation', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    expect(log.lastZxid).toBe(0n);
    await log.close();
    await writeFile(join(dir, 'log.0000000000000007'), Buffer.alloc(PREALLOC));
    const { log: again } = await openLog(dir);
    expect(again.recovery.files).toBe(0);
    expect(await logNames(dir)).toEqual([]);
    await again.close();
  });
});

describe('TxnLog: failures are fatal', () => {
  it('rejects every pending and later sync after a failed durable write, and never retries it', async () => {
    const dir = await tempDir();
    const plan: FaultPlan = { fsyncs: 0 };
    const failures: StorageError[] = [];
    const { log, cap } = await openLog(dir, { openFile: faultyOpen(plan), onFsyncError: (e) => failures.push(e) });
    await appendRange(log, 1, 1);
    plan.failDurableWrite = 'EIO';
    log.append(2n, payload(2));
    const first = log.sync();
    log.append(3n, payload(3));
    const second = log.sync();
    await expect(first).rejects.toMatchObject({ code: 'QUORATE_STORAGE_IO', errno: 'EIO' });
    await expect(second).rejects.toBeInstanceOf(StorageError);
    expect(log.failure?.errno).toBe('EIO');
    expect(failures).toHaveLength(1);
    expect(cap.lines.some((l) => l.level === 50)).toBe(true);
    expect(plan.durableWrites).toBe(2); // zxid 1, then the failed one: never written again

    plan.failDurableWrite = undefined; // the disk "works" again: still no acknowledgement
    expect(() => log.append(4n, payload(4))).toThrow(StorageError);
    await expect(log.sync()).rejects.toMatchObject({ errno: 'EIO' });
    expect(log.durableZxid).toBe(1n);
    await log.close();
    expect(plan.durableWrites).toBe(2);
    const { log: again } = await openLog(dir);
    expect(again.lastZxid).toBeLessThanOrEqual(3n); // what reached the disk before the error may be there; nothing was acknowledged
    await again.close();
  });

  it('a failed fdatasync while creating a file on the commit path is fatal too', async () => {
    const plan: FaultPlan = { fsyncs: 0, failDatasync: 'EIO' };
    const failures: StorageError[] = [];
    const { log, cap } = await openLog(await tempDir(), { openFile: faultyOpen(plan), onFsyncError: (e) => failures.push(e) });
    log.append(1n, payload(1));
    await expect(log.sync()).rejects.toMatchObject({ code: 'QUORATE_STORAGE_IO', errno: 'EIO' });
    expect(failures).toHaveLength(1);
    // The background spare failed first, which alone is only a warning.
    expect(cap.warns().map((l) => l.msg)).toContain('could not prepare the next transaction log file');
    await log.close();
  });

  it('reports ENOSPC as QUORATE_DISK_FULL and tells the operator to free space', async () => {
    const plan: FaultPlan = { fsyncs: 0, failWrite: 'ENOSPC' };
    const { log } = await openLog(await tempDir(), { openFile: faultyOpen(plan) });
    log.append(1n, payload(1));
    const err = await log.sync().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'QUORATE_DISK_FULL', errno: 'ENOSPC' });
    expect((err as Error).message).toMatch(/free space/i);
    await log.close();
  });

  it('logs a slow fsync at warn with its duration', async () => {
    const plan: FaultPlan = { fsyncs: 0, durableWriteDelayMs: 30 };
    const { log, cap } = await openLog(await tempDir(), { openFile: faultyOpen(plan), fsyncWarningMs: 10 });
    await appendRange(log, 1, 3);
    const warn = cap.warns().find((l) => l.msg === 'fsync of transaction log was slow');
    expect(warn?.durationMs).toBeGreaterThanOrEqual(10);
    await log.close();
  });
});

describe('TxnLog: truncation (a leader\'s TRUNC) and discarding (a leader\'s snapshot)', () => {
  it('drops the records above a zxid, in the file holding it and in later files, and goes on after it', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 10);
    log.roll();
    await appendRange(log, 11, 20);
    await log.truncateAfter(7n);
    expect(log.lastZxid).toBe(7n);
    await appendRange(log, 8, 9); // new records may reuse the dropped zxids
    await log.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.0000000000000008']);
    const { log: again } = await openLog(dir);
    expect((await collect(again)).map((r) => Number(r.zxid))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect((await collect(again))[8].payload).toEqual(payload(9));
    await again.close();
  });

  it('truncates within the current file and keeps appending there', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 5);
    log.append(6n, payload(6)); // not yet durable: made durable, then dropped
    await log.truncateAfter(3n);
    await appendRange(log, 4, 4);
    await log.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001']);
    const { log: again, cap } = await openLog(dir);
    expect((await collect(again)).map((r) => Number(r.zxid))).toEqual([1, 2, 3, 4]);
    expect(cap.warns()).toEqual([]); // zeros after the last record, not a torn tail
    await again.close();
  });

  it('discards everything for a snapshot and starts after its zxid', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 5);
    await log.discardAll(100n);
    expect(() => log.append(50n, payload(1))).toThrow(/not above/);
    await appendRange(log, 101, 102);
    await log.close();
    const { log: again } = await openLog(dir);
    expect((await collect(again)).map((r) => Number(r.zxid))).toEqual([101, 102]);
    await again.close();
  });
});

describe('TxnLog: purge', () => {
  it('deletes only files whose every record is below the zxid, never the newest', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 10);
    log.roll();
    await appendRange(log, 11, 20);
    log.roll();
    await appendRange(log, 21, 25);
    expect(await log.purgeBefore(10n)).toEqual([]); // log.1 holds 10
    expect(await log.purgeBefore(15n)).toEqual(['log.0000000000000001']);
    expect(await log.purgeBefore(1000n)).toEqual(['log.000000000000000b']);
    expect(await logNames(dir)).toEqual(['log.0000000000000015']);
    expect((await collect(log)).map((r) => Number(r.zxid))).toEqual([21, 22, 23, 24, 25]);
    await log.close();
    const { log: again } = await openLog(dir);
    expect(again.lastZxid).toBe(25n);
    await again.close();
  });
});
