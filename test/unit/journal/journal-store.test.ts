// The journal's files, driven by the journal state machine's own storage
// operations: what a node wrote is what it reads back after a restart; a torn
// tail of the in-progress segment is cut (and said so); damage in a finalized
// segment refuses to open, naming the file and offset.
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JournalState, type JournalStorageOp } from '../../../src/core/journal/journal-state.js';
import { JournalStore } from '../../../src/io/journal-store.js';
import { StorageCorruptError } from '../../../src/io/storage-format.js';
import { captureLogger, removeTempDirs, tempDir } from '../storage/helpers.js';

afterEach(removeTempDirs);
const recs = (from: number, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`edit-${from + i}`));

async function node(dir: string) {
  const cap = captureLogger();
  const { store, disk } = await JournalStore.open(dir, cap.logger);
  const state = new JournalState('svc', disk);
  const run = async (ops: JournalStorageOp[]) => { await store.apply(ops); };
  return { store, state, run, cap, disk };
}

async function writeTwoSegments(dir: string) {
  const n = await node(dir);
  await n.run(n.state.newEpoch(1).ops);
  await n.run(n.state.startSegment(1, 1n));
  await n.run(n.state.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(1, 3), checksum: 'a' }));
  await n.run(n.state.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 4n, records: recs(4, 2), checksum: 'b', committedTxid: 5n }));
  await n.run(n.state.finalizeSegment(1, 1n, 5n));
  await n.run(n.state.startSegment(1, 6n));
  await n.run(n.state.journal({ epoch: 1, segmentTxid: 6n, firstTxid: 6n, records: recs(6, 2), checksum: 'c', committedTxid: 6n }));
  await n.store.close();
}

describe('JournalStore', () => {
  it('keeps a writer epoch past 2^32 in the segment header across a restart', async () => {
    const dir = await tempDir();
    const n = await node(dir);
    const e = 2 ** 40 + 7;
    n.state = new JournalState('svc', { ...n.disk, promisedEpoch: e - 1, lastWriterEpoch: e - 1 });
    await n.run(n.state.newEpoch(e).ops);
    await n.run(n.state.startSegment(e, 1n));
    await n.run(n.state.journal({ epoch: e, segmentTxid: 1n, firstTxid: 1n, records: recs(1, 2), checksum: 'a' }));
    await n.store.close();
    const again = await node(dir);
    expect(again.disk).toMatchObject({ promisedEpoch: e, lastWriterEpoch: e });
    expect(again.disk.segments).toEqual([{ startTxid: 1n, endTxid: 2n, inProgress: true, writerEpoch: e }]);
    await again.store.close();
  });

  it('cuts back a segment it created in this run (no restart between), and keeps its files from other users', async () => {
    const dir = await tempDir();
    const n = await node(dir);
    await n.run(n.state.newEpoch(1).ops);
    await n.run(n.state.startSegment(1, 1n));
    await n.run(n.state.journal({ epoch: 1, segmentTxid: 1n, firstTxid: 1n, records: recs(1, 4), checksum: 'a' }));
    // A truncate reads the records it keeps: a segment opened write-only failed here with EBADF.
    await n.store.apply([{ kind: 'truncate', startTxid: 1n, endTxid: 2n }]);
    const read = [];
    for await (const e of n.store.read(1n, 4n)) read.push(e.txid);
    expect(read).toEqual([1n, 2n]);
    expect(fs.statSync(join(dir, 'edits_inprogress_0000000000000001')).mode & 0o077).toBe(0);
    await n.store.close();
  });

  it('reads a late txid of a long segment without scanning from its start, and reads right after a cut and new edits', async () => {
    const dir = await tempDir();
    const n = await node(dir);
    await n.run(n.state.newEpoch(1).ops);
    await n.run(n.state.startSegment(1, 1n));
    const big = (from: number, k: number) => Array.from({ length: k }, (_, i) => Buffer.from(`edit-${from + i}-`.padEnd(1000, 'x')));
    // 400 edits of ~1 KB in batches of 10: about six index steps of 64 KiB.
    for (let first = 1; first <= 400; first += 10) await n.run(n.state.journal({ epoch: 1, segmentTxid: 1n, firstTxid: BigInt(first), records: big(first, 10), checksum: 'a' }));
    const readAll = async (from: bigint, to: bigint) => { const out: string[] = []; for await (const e of n.store.read(from, to)) out.push(`${e.txid}:${e.payload.subarray(0, 12).toString()}`); return out; };
    expect(await readAll(395n, 400n)).toEqual([395, 396, 397, 398, 399, 400].map((t) => `${t}:${`edit-${t}-`.padEnd(12, 'x')}`));
    expect((await readAll(1n, 400n)).length).toBe(400);
    // Cut back to 250 and write 251.. again with other contents: the index forgets what was cut.
    await n.store.apply([{ kind: 'truncate', startTxid: 1n, endTxid: 250n }]);
    await n.store.apply([{ kind: 'append', segmentTxid: 1n, firstTxid: 251n, records: [Buffer.from('again-251'), Buffer.from('again-252')] }]);
    expect(await readAll(240n, 260n)).toEqual([...Array.from({ length: 11 }, (_, i) => `${240 + i}:${`edit-${240 + i}-`.padEnd(12, 'x')}`), '251:again-251', '252:again-252']);
    // Damage near the start: a read of late txids never looks there (it starts at an indexed record);
    // a read from the start stops at the damage, as before.
    const file = join(dir, fs.readdirSync(dir).find((f) => f.startsWith('edits_inprogress_'))!);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('DAMAGE'), 0, 6, 16 + 100);
    fs.closeSync(fd);
    expect((await readAll(200n, 210n)).map((r) => r.split(':')[0])).toEqual(Array.from({ length: 11 }, (_, i) => String(200 + i)));
    expect(await readAll(1n, 5n)).toEqual([]);
    await n.store.close();
  });

  it('reads back after a restart what it made durable: epochs, committed txid, segments, edits', async () => {
    const dir = await tempDir();
    await writeTwoSegments(dir);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('edits_')).sort()).toEqual([
      'edits_0000000000000001_0000000000000005', 'edits_inprogress_0000000000000006',
    ]);
    const n = await node(dir);
    expect(n.disk).toMatchObject({ promisedEpoch: 1, lastWriterEpoch: 1, committedTxid: 6n, accepted: null });
    expect(n.disk.segments).toEqual([
      { startTxid: 1n, endTxid: 5n, inProgress: false, writerEpoch: 1 },
      { startTxid: 6n, endTxid: 7n, inProgress: true, writerEpoch: 1 },
    ]);
    const read = [];
    for await (const e of n.store.read(2n, 7n)) read.push(`${e.txid}:${e.payload.toString()}`);
    expect(read).toEqual(['2:edit-2', '3:edit-3', '4:edit-4', '5:edit-5', '6:edit-6', '7:edit-7']);
    await n.store.close();
  });

  it('cuts a torn tail of the in-progress segment, says where, and goes on writing', async () => {
    const dir = await tempDir();
    await writeTwoSegments(dir);
    fs.appendFileSync(join(dir, 'edits_inprogress_0000000000000006'), Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    const n = await node(dir);
    expect(n.cap.warns().map((l) => l.msg)).toEqual(['cut torn tail of journal segment']);
    expect(n.disk.segments[1].endTxid).toBe(7n);
    // A new writer recovers the open segment (here as it stands), finalizes it and writes on.
    await n.run(n.state.newEpoch(2).ops);
    await n.run(n.state.prepareRecovery(2, 6n).ops);
    await n.run(n.state.acceptRecovery(2, { startTxid: 6n, endTxid: 7n, inProgress: true }).ops);
    await n.run(n.state.finalizeSegment(2, 6n, 7n));
    await n.run(n.state.startSegment(2, 8n));
    await n.run(n.state.journal({ epoch: 2, segmentTxid: 8n, firstTxid: 8n, records: recs(8, 1), checksum: 'd' }));
    await n.store.close();
    const again = await node(dir);
    expect(again.disk.segments.map((x) => [x.startTxid, x.endTxid, x.inProgress, x.writerEpoch])).toEqual([[1n, 5n, false, 1], [6n, 7n, false, 1], [8n, 8n, true, 2]]);
    expect(again.cap.warns()).toEqual([]);
    await again.store.close();
  });

  it('refuses to open with damage in a finalized segment, naming the file and the offset', async () => {
    const dir = await tempDir();
    await writeTwoSegments(dir);
    const file = join(dir, 'edits_0000000000000001_0000000000000005');
    const b = fs.readFileSync(file);
    b[40] ^= 0xff; // inside the first record
    fs.writeFileSync(file, b);
    const err = await JournalStore.open(dir, captureLogger().logger).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageCorruptError);
    expect((err as Error).message).toMatch(/edits_0000000000000001_0000000000000005 is corrupt at offset 24/);
  });

  it('cuts its in-progress copy back when a recovery chose a shorter one, and remembers the recovery', async () => {
    const dir = await tempDir();
    await writeTwoSegments(dir);
    const n = await node(dir);
    await n.run(n.state.newEpoch(2).ops);
    const prep = n.state.prepareRecovery(2, 6n);
    expect(prep.answer.segment).toEqual({ startTxid: 6n, endTxid: 7n, inProgress: true, writerEpoch: 1 });
    await n.run(prep.ops);
    // A majority's best copy ends at 6: this node's edit 7 was never acknowledged (committed is 6).
    const acc = n.state.acceptRecovery(2, { startTxid: 6n, endTxid: 6n, inProgress: true });
    expect(acc.fetchFrom).toBeNull();
    await n.run(acc.ops);
    await n.store.close();
    const again = await node(dir);
    expect(again.disk.segments[1].endTxid).toBe(6n);
    expect(again.disk.accepted).toEqual({ segment: { startTxid: 6n, endTxid: 6n, inProgress: true }, epoch: 2 });
    expect(again.disk.promisedEpoch).toBe(2);
    await again.store.close();
  });
});
