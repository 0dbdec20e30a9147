import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDir } from '../../../src/io/data-dir.js';
import { dumpDataDir, reportToJson, verifyDataDir } from '../../../src/io/data-dir-inspect.js';
import { SNAP_HEADER_BYTES, SnapshotStore, snapshotFileName } from '../../../src/io/snapshot-store.js';
import { LOG_HEADER_BYTES, RECORD_HEADER_BYTES, encodeRecord } from '../../../src/io/storage-format.js';
import { TxnLog } from '../../../src/io/txn-log.js';
import { captureLogger, removeTempDirs, tempDir } from './helpers.js';

const txn = (i: number): Buffer => Buffer.from(`set /k${i}`);
const FIRST_LOG = 'log.0000000000000001';

/** A data dir with log records 1..5 | 6..8 and snapshots at 5 and 8. */
async function populated(): Promise<string> {
  const dir = await tempDir();
  const dd = await DataDir.open(dir, { clusterId: 'c', serverId: 1, create: true });
  const { logger } = captureLogger();
  const log = await TxnLog.open(dd.logDir, { logger, preallocBytes: 16 * 1024 });
  const snaps = await SnapshotStore.open(dd.snapDir, { logger });
  for (let i = 1; i <= 5; i++) log.append(BigInt(i), txn(i));
  await log.sync();
  await snaps.write(5n, Buffer.from('tree@5'));
  log.roll();
  for (let i = 6; i <= 8; i++) log.append(BigInt(i), txn(i));
  await log.close();
  await snaps.write(8n, Buffer.from('tree@8'));
  await dd.release();
  return dir;
}

async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try { await fh.write(bytes, 0, bytes.length, offset); } finally { await fh.close(); }
}

async function snapshotOfFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const sub of ['log', 'snap']) for (const f of await readdir(join(dir, sub))) out.set(`${sub}/${f}`, await readFile(join(dir, sub, f)));
  return out;
}

afterEach(removeTempDirs);

describe('verifyDataDir', () => {
  it('reports files, record counts and zxid ranges of a healthy dir', async () => {
    const dir = await populated();
    const r = await verifyDataDir(dir);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.meta).toMatchObject({ clusterId: 'c', serverId: 1 });
    expect(r.logs.map((l) => [l.file, l.records, l.firstZxid, l.lastZxid, l.verdict])).toEqual([
      [FIRST_LOG, 5, 1n, 5n, 'ok'], ['log.0000000000000006', 3, 6n, 8n, 'ok'],
    ]);
    expect(r.snapshots.map((s) => [s.zxid, s.valid])).toEqual([[5n, true], [8n, true]]);
    expect(r.lastLogZxid).toBe(8n);
    expect(r.latestValidSnapshotZxid).toBe(8n);
    expect(JSON.parse(JSON.stringify(reportToJson(r)))).toMatchObject({ lastLogZxid: '0x0000000000000008' });
  });

  it('reports a torn tail as a warning with its offset, and does not cut it', async () => {
    const dir = await populated();
    const last = join(dir, 'log', 'log.0000000000000006');
    const end = LOG_HEADER_BYTES + [6, 7, 8].reduce((n, i) => n + RECORD_HEADER_BYTES + txn(i).length, 0);
    await patch(last, end, encodeRecord(9n, txn(9)).subarray(0, 12));
    const before = await snapshotOfFiles(dir);
    const r = await verifyDataDir(dir);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([expect.objectContaining({ severity: 'warning', file: last, offset: end })]);
    expect(r.logs[1].verdict).toBe('torn');
    expect(await snapshotOfFiles(dir)).toEqual(before);
  });

  it('reports corruption followed by valid records as an error with file and offset', async () => {
    const dir = await populated();
    const first = join(dir, 'log', FIRST_LOG);
    const at = LOG_HEADER_BYTES + RECORD_HEADER_BYTES + txn(1).length; // record 2
    await patch(first, at + RECORD_HEADER_BYTES, Buffer.from('#'));
    await patch(join(dir, 'snap', snapshotFileName(8n)), SNAP_HEADER_BYTES, Buffer.from('#'));
    const before = await snapshotOfFiles(dir);
    const r = await verifyDataDir(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(expect.objectContaining({ severity: 'error', file: first, offset: at }));
    expect(r.problems).toContainEqual(expect.objectContaining({ severity: 'warning', file: join(dir, 'snap', snapshotFileName(8n)) }));
    expect(r.snapshots.find((s) => s.zxid === 8n)?.problem).toBe('checksum mismatch');
    expect(r.latestValidSnapshotZxid).toBe(5n);
    expect(await snapshotOfFiles(dir)).toEqual(before);
  });
});

describe('dumpDataDir', () => {
  it('lists every record with the caller\'s description, and describes snapshots', async () => {
    const dir = await populated();
    const r = await dumpDataDir(dir, {
      describe: (p) => p.toString().toUpperCase(),
      describeSnapshot: (p) => `snapshot ${p.toString()}`,
    });
    expect(r.records.map((x) => [x.zxid, x.description])).toEqual(
      Array.from({ length: 8 }, (_, i) => [BigInt(i + 1), `SET /K${i + 1}`]));
    expect(r.records[0]).toMatchObject({ file: join(dir, 'log', FIRST_LOG), offset: LOG_HEADER_BYTES, size: txn(1).length });
    expect(r.snapshots.map((s) => s.description)).toEqual(['snapshot tree@5', 'snapshot tree@8']);
  });

  it('survives a describe callback that throws, and can stream records', async () => {
    const dir = await populated();
    const seen: bigint[] = [];
    const r = await dumpDataDir(dir, { describe: () => { throw new Error('bad txn'); }, onRecord: (x) => { seen.push(x.zxid); expect(x.description).toMatch(/bad txn/); } });
    expect(r.records).toEqual([]);
    expect(seen).toHaveLength(8);
  });
});
