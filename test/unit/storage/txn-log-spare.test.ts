// The log's commit path with forceSync on: one O_DSYNC write per batch into a
// file that was zero-filled beforehand, and rolls that take a spare file
// prepared in the background. The trace of file operations is the evidence.
import { readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LOG_HEADER_BYTES, RECORD_HEADER_BYTES, SPARE_LOG_NAME, SPARE_LOG_TMP_NAME, encodeRecord, listLogFiles, logFileHeader,
} from '../../../src/io/storage-format.js';
import { TxnLog, type TxnLogOptions } from '../../../src/io/txn-log.js';
import { captureLogger, faultyOpen, removeTempDirs, tempDir, type FaultPlan, type IoEvent } from './helpers.js';

const PREALLOC = 64 * 1024;
const payload = (i: number): Buffer => Buffer.from(`txn-${i};`.repeat(4));
const recordBytes = (i: number): number => RECORD_HEADER_BYTES + payload(i).length;

async function openLog(dir: string, extra: Partial<TxnLogOptions> = {}) {
  const cap = captureLogger();
  const log = await TxnLog.open(dir, { logger: cap.logger, preallocBytes: PREALLOC, ...extra });
  return { log, cap };
}

async function appendRange(log: TxnLog, from: number, to: number, make = payload): Promise<bigint> {
  for (let i = from; i <= to; i++) log.append(BigInt(i), make(i));
  return log.sync();
}

async function zxids(log: TxnLog): Promise<number[]> {
  const out: number[] = [];
  for await (const r of log.read(0n)) out.push(Number(r.zxid));
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const logNames = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => /^log\.[0-9a-f]{16}$/.test(f)).sort();

/** The file operations from the start of `commit` until it resolves, but for an old file's trim (background). Settle the log first. */
async function commitPathIo(plan: FaultPlan, commit: () => Promise<unknown>): Promise<Pick<IoEvent, 'op' | 'dsync' | 'bytes' | 'zeros'>[]> {
  const from = plan.trace!.length;
  let to = -1;
  await commit().then(() => { to = plan.trace!.length; });
  return plan.trace!.slice(from, to).filter((e) => e.op !== 'truncate').map(({ op, dsync, bytes, zeros }) => ({ op, dsync, bytes, zeros }));
}

const durableWrite = (bytes: number) => ({ op: 'write', dsync: true, bytes, zeros: false });
const dirSync = { op: 'sync', dsync: false, bytes: 0, zeros: false };

async function expectBlankSpare(dir: string): Promise<void> {
  const buf = await readFile(join(dir, SPARE_LOG_NAME));
  expect(buf.length).toBe(PREALLOC);
  expect(buf.subarray(0, LOG_HEADER_BYTES).equals(logFileHeader())).toBe(true);
  expect(buf.subarray(LOG_HEADER_BYTES).every((b) => b === 0)).toBe(true);
  const st = await stat(join(dir, SPARE_LOG_NAME));
  expect(st.blocks * 512).toBeGreaterThanOrEqual(st.size); // real zeros, not a sparse file
}

afterEach(removeTempDirs);

describe('TxnLog: durable writes (forceSync on)', () => {
  it('writes each batch as one write through an O_DSYNC handle, with no fdatasync', async () => {
    const plan: FaultPlan = { fsyncs: 0, trace: [] };
    const { log } = await openLog(await tempDir(), { openFile: faultyOpen(plan) });
    await appendRange(log, 1, 1);
    await log.settled();
    for (let i = 2; i <= 20; i++) {
      const fsyncs = log.stats.fsyncs;
      expect(await commitPathIo(plan, () => appendRange(log, i, i))).toEqual([durableWrite(recordBytes(i))]);
      expect(log.stats.fsyncs).toBe(fsyncs + 1); // a durable write counts as the batch's fsync
    }
    const io = await commitPathIo(plan, () => appendRange(log, 21, 30)); // a group of ten: still one write
    expect(io).toEqual([durableWrite(range(21, 30).reduce((n, i) => n + recordBytes(i), 0))]);
    await log.close();
  });
});

describe('TxnLog: the spare file', () => {
  it('is prepared in the background at open and again as soon as a roll has taken it; readers ignore it', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await log.settled();
    expect(await readdir(dir)).toEqual([SPARE_LOG_NAME]);
    await expectBlankSpare(dir);
    expect(await listLogFiles(dir)).toEqual([]);
    const spareIno = (await stat(join(dir, SPARE_LOG_NAME))).ino;
    await appendRange(log, 1, 3);
    expect((await stat(join(dir, 'log.0000000000000001'))).ino).toBe(spareIno); // the first file was the spare
    await log.settled();
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', SPARE_LOG_NAME]);
    await expectBlankSpare(dir);
    expect(log.stats).toMatchObject({ sparesUsed: 1, filesCreatedInline: 0 });
    await log.close();
  });

  it('a roll takes the spare: a directory fsync for its rename and the durable write, nothing else on the commit path', async () => {
    const dir = await tempDir();
    const plan: FaultPlan = { fsyncs: 0, trace: [] };
    const { log } = await openLog(dir, { openFile: faultyOpen(plan) });
    await appendRange(log, 1, 5);
    await log.settled();
    const io = await commitPathIo(plan, () => { log.roll(); return appendRange(log, 6, 6); });
    expect(io).toEqual([dirSync, durableWrite(recordBytes(6))]);
    expect(log.stats).toMatchObject({ sparesUsed: 2, filesCreatedInline: 0 });
    await log.settled();
    expect((await stat(join(dir, 'log.0000000000000001'))).size).toBe(LOG_HEADER_BYTES + range(1, 5).reduce((n, i) => n + recordBytes(i), 0));
    expect(plan.trace!.filter((e) => e.op === 'truncate')).toHaveLength(1); // trimmed off the commit path
    await log.close();
    const { log: again } = await openLog(dir);
    expect(await zxids(again)).toEqual(range(1, 6));
    await again.close();
  });

  it('a batch that does not fit in the rest of the file goes to the spare, with no zero-writes on the commit path', async () => {
    const dir = await tempDir();
    const plan: FaultPlan = { fsyncs: 0, trace: [] };
    const { log } = await openLog(dir, { openFile: faultyOpen(plan) });
    const kib = (i: number) => Buffer.alloc(1024 - RECORD_HEADER_BYTES, i & 0xff); // 1 KiB records
    await appendRange(log, 1, 40, kib);
    await log.settled();
    for (let i = 41; i <= 62; i++) expect(await commitPathIo(plan, () => appendRange(log, i, i, kib))).toEqual([durableWrite(1024)]);
    expect(await logNames(dir)).toEqual(['log.0000000000000001']);
    // 62 KiB + header used; two more do not fit in 64 KiB.
    const io = await commitPathIo(plan, () => appendRange(log, 63, 64, kib));
    expect(io).toEqual([dirSync, durableWrite(2048)]);
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.000000000000003f']);
    expect(log.stats).toMatchObject({ sparesUsed: 2, filesCreatedInline: 0 });
    await log.close();
    const { log: again, cap } = await openLog(dir);
    expect(again.recovery).toEqual({ cut: null, files: 2, records: 64 });
    expect(cap.warns()).toEqual([]);
    expect(await zxids(again)).toEqual(range(1, 64));
    await again.close();
  });

  it('a roll while the spare is still being prepared waits for it rather than writing a second file', async () => {
    const plan: FaultPlan = { fsyncs: 0, datasyncDelayMs: 40 };
    const dir = await tempDir();
    const { log } = await openLog(dir, { openFile: faultyOpen(plan) });
    expect(await appendRange(log, 1, 2)).toBe(2n); // at once: the spare started at open is not ready yet
    log.roll();
    expect(await appendRange(log, 3, 3)).toBe(3n); // the next spare started after the first batch
    expect(log.stats).toMatchObject({ sparesUsed: 2, filesCreatedInline: 0 });
    await log.close();
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', 'log.0000000000000003', SPARE_LOG_NAME]);
  });

  it('a record larger than a whole file extends that file, and the next batch goes to a new one', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 1);
    const big = Buffer.alloc(100_000, 9);
    log.append(2n, big);
    await log.sync();
    await appendRange(log, 3, 3);
    await log.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.0000000000000002', 'log.0000000000000003']);
    expect((await stat(join(dir, 'log.0000000000000002'))).size).toBe(LOG_HEADER_BYTES + RECORD_HEADER_BYTES + big.length);
    const { log: again, cap } = await openLog(dir);
    expect(await zxids(again)).toEqual([1, 2, 3]);
    expect(cap.warns()).toEqual([]);
    await again.close();
  });

  it('failing to prepare the spare is only a warning: the log keeps committing and the roll creates its file inline', async () => {
    const dir = await tempDir();
    const { log: first } = await openLog(dir);
    await appendRange(first, 1, 3);
    await first.close();
    await unlink(join(dir, SPARE_LOG_NAME));
    const plan: FaultPlan = { fsyncs: 0, failDatasync: 'EIO' };
    const failures: unknown[] = [];
    const { log, cap } = await openLog(dir, { openFile: faultyOpen(plan), onFsyncError: (e) => failures.push(e) });
    await log.settled();
    expect(cap.warns().map((l) => l.msg)).toEqual(['could not prepare the next transaction log file']);
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001']); // nothing half-made left behind
    expect(await appendRange(log, 4, 6)).toBe(6n); // durable writes need no fdatasync
    plan.failDatasync = undefined;
    log.roll();
    expect(await appendRange(log, 7, 7)).toBe(7n);
    expect(log.stats).toMatchObject({ sparesUsed: 0, filesCreatedInline: 1 });
    await log.settled();
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', 'log.0000000000000007', SPARE_LOG_NAME]); // tried again for the new file
    expect(failures).toEqual([]);
    await log.close();
  });
});

describe('TxnLog: recovery with a spare file', () => {
  it('reuses a spare left at close (the same file) and recovers cleanly around it', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 3);
    await log.close();
    expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', SPARE_LOG_NAME]);
    const spareIno = (await stat(join(dir, SPARE_LOG_NAME))).ino;
    const { log: again, cap } = await openLog(dir);
    expect(again.recovery).toEqual({ cut: null, files: 1, records: 3 });
    expect(cap.warns()).toEqual([]);
    again.roll();
    await appendRange(again, 4, 4);
    expect((await stat(join(dir, 'log.0000000000000004'))).ino).toBe(spareIno);
    expect(again.stats).toMatchObject({ sparesUsed: 1, filesCreatedInline: 0 });
    await again.close();
    const { log: third } = await openLog(dir);
    expect(await zxids(third)).toEqual([1, 2, 3, 4]);
    await third.close();
  });

  it('removes a half-made spare (log.next.tmp), and a log.next of the wrong size or header, then prepares a new one', async () => {
    for (const damage of [
      (dir: string) => writeFile(join(dir, SPARE_LOG_TMP_NAME), Buffer.alloc(1000, 1)),
      (dir: string) => writeFile(join(dir, SPARE_LOG_NAME), Buffer.concat([logFileHeader(), Buffer.alloc(100)])),
      (dir: string) => writeFile(join(dir, SPARE_LOG_NAME), Buffer.alloc(PREALLOC, 1)),
    ]) {
      const dir = await tempDir();
      const { log: first } = await openLog(dir);
      await appendRange(first, 1, 3);
      await first.close();
      await unlink(join(dir, SPARE_LOG_NAME));
      await damage(dir);
      const { log, cap } = await openLog(dir);
      expect(log.recovery).toEqual({ cut: null, files: 1, records: 3 });
      expect(cap.warns()).toEqual([]);
      await log.settled();
      expect((await readdir(dir)).sort()).toEqual(['log.0000000000000001', SPARE_LOG_NAME]);
      await expectBlankSpare(dir);
      await log.close();
    }
  });

  it('a crash between the spare\'s rename and its first durable write: the empty file is dropped at open', async () => {
    const dir = await tempDir();
    const plan: FaultPlan = { fsyncs: 0 };
    const { log } = await openLog(dir, { openFile: faultyOpen(plan) });
    await appendRange(log, 1, 3);
    await log.settled();
    plan.failDurableWrite = 'EIO'; // the write never lands, as if the process died before it
    log.roll();
    log.append(4n, payload(4));
    await expect(log.sync()).rejects.toMatchObject({ errno: 'EIO' });
    await log.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.0000000000000004']); // renamed, holding only zeros

    const { log: again, cap } = await openLog(dir);
    expect(again.lastZxid).toBe(3n);
    expect(again.recovery).toEqual({ cut: null, files: 1, records: 3 });
    expect(cap.lines.some((l) => l.msg === 'removed empty transaction log file')).toBe(true);
    expect(cap.warns()).toEqual([]);
    expect(await logNames(dir)).toEqual(['log.0000000000000001']);
    await appendRange(again, 4, 5);
    await again.close();
    const { log: third } = await openLog(dir);
    expect(await zxids(third)).toEqual([1, 2, 3, 4, 5]);
    await third.close();
  });

  it('a crash after a roll, before the old file was trimmed: its zeros read as its end, not as damage, and it is trimmed at open', async () => {
    const dir = await tempDir();
    const { log } = await openLog(dir);
    await appendRange(log, 1, 3);
    await log.close();
    expect((await stat(join(dir, 'log.0000000000000001'))).size).toBe(PREALLOC); // still holds its zeros
    // The next file, as the spare renamed and written once: header, one record, zeros.
    await rename(join(dir, SPARE_LOG_NAME), join(dir, 'log.0000000000000004'));
    await writeFile(join(dir, 'log.0000000000000004'), Buffer.concat([logFileHeader(), encodeRecord(4n, payload(4)),
      Buffer.alloc(PREALLOC - LOG_HEADER_BYTES - recordBytes(4))]));
    const { log: again, cap } = await openLog(dir);
    expect(again.recovery).toEqual({ cut: null, files: 2, records: 4 });
    expect(cap.warns()).toEqual([]);
    await appendRange(again, 5, 5); // continues the newest file
    await again.settled();
    expect((await stat(join(dir, 'log.0000000000000001'))).size).toBe(LOG_HEADER_BYTES + recordBytes(1) + recordBytes(2) + recordBytes(3)); // trimmed now
    await again.close();
    expect(await logNames(dir)).toEqual(['log.0000000000000001', 'log.0000000000000004']);
    const { log: third } = await openLog(dir);
    expect(await zxids(third)).toEqual([1, 2, 3, 4, 5]);
    await third.close();
  });
});
