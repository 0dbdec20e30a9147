import { open, readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SNAP_HEADER_BYTES, SnapshotStore, snapshotFileName } from '../../../src/io/snapshot-store.js';
import { captureLogger, removeTempDirs, tempDir } from './helpers.js';

const state = (zxid: number): Buffer => Buffer.from(`state as of ${zxid} `.repeat(50));

async function openStore(dir: string) {
  const cap = captureLogger();
  return { store: await SnapshotStore.open(dir, { logger: cap.logger }), cap };
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, offset);
  } finally { await fh.close(); }
}

afterEach(removeTempDirs);

describe('SnapshotStore', () => {
  it('writes atomically and loads the newest', async () => {
    const dir = await tempDir();
    const { store } = await openStore(dir);
    expect(await store.loadLatest()).toBeNull();
    for (const z of [0x100, 0x200, 0x300]) await store.write(BigInt(z), state(z));
    expect((await readdir(dir)).sort()).toEqual([snapshotFileName(0x100n), snapshotFileName(0x200n), snapshotFileName(0x300n)]);
    expect((await store.list()).map((s) => s.zxid)).toEqual([0x100n, 0x200n, 0x300n]);
    const latest = await store.loadLatest();
    expect(latest?.zxid).toBe(0x300n);
    expect(latest?.payload.equals(state(0x300))).toBe(true);
    expect(latest?.skipped).toEqual([]);
  });

  it('passes over a newest snapshot that fails validation, with a warning', async () => {
    const dir = await tempDir();
    const { store, cap } = await openStore(dir);
    for (const z of [1, 2, 3]) await store.write(BigInt(z), state(z));
    await flipByte(join(dir, snapshotFileName(3n)), SNAP_HEADER_BYTES + 10);
    const latest = await store.loadLatest();
    expect(latest?.zxid).toBe(2n);
    expect(latest?.skipped).toEqual([{ file: join(dir, snapshotFileName(3n)), problem: 'checksum mismatch' }]);
    expect(cap.warns()[0]).toMatchObject({ file: join(dir, snapshotFileName(3n)), problem: 'checksum mismatch' });

    await truncate(join(dir, snapshotFileName(2n)), SNAP_HEADER_BYTES + 5); // a truncated one is passed over too
    expect((await store.loadLatest())?.zxid).toBe(1n);
  });

  it('refuses to start from nothing when every snapshot is invalid', async () => {
    const dir = await tempDir();
    const { store } = await openStore(dir);
    await store.write(7n, state(7));
    await flipByte(join(dir, snapshotFileName(7n)), 0);
    await expect(store.loadLatest()).rejects.toMatchObject({ code: 'QUORATE_SNAPSHOT_CORRUPT' });
  });

  it('rejects a snapshot whose header zxid does not match its name', async () => {
    const dir = await tempDir();
    const { store } = await openStore(dir);
    await store.write(1n, state(1));
    const copy = await store.write(5n, state(5));
    await writeFile(join(dir, snapshotFileName(9n)), await readFile(copy.path));
    const latest = await store.loadLatest();
    expect(latest?.zxid).toBe(5n);
    expect(latest?.skipped[0].problem).toMatch(/does not match/);
  });

  it('purge keeps the newest N valid snapshots and reports the oldest kept', async () => {
    const dir = await tempDir();
    const { store } = await openStore(dir);
    for (const z of [1, 2, 3, 4, 5]) await store.write(BigInt(z), state(z));
    expect(await store.purge(3)).toEqual({ deleted: [snapshotFileName(1n), snapshotFileName(2n)], oldestRetainedZxid: 3n });
    expect((await store.list()).map((s) => s.zxid)).toEqual([3n, 4n, 5n]);

    // A damaged newest one does not count, so the last good ones survive.
    await flipByte(join(dir, snapshotFileName(5n)), SNAP_HEADER_BYTES);
    expect(await store.purge(2)).toEqual({ deleted: [], oldestRetainedZxid: 3n });
    expect(await store.purge(1)).toEqual({ deleted: [snapshotFileName(3n)], oldestRetainedZxid: 4n });
    expect((await store.list()).map((s) => s.zxid)).toEqual([4n, 5n]);
    expect(await store.purge(5)).toEqual({ deleted: [], oldestRetainedZxid: null });
    await expect(store.purge(0)).rejects.toThrow(RangeError);
  });

  it('removes unfinished .tmp files at open and never lists them', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, `${snapshotFileName(9n)}.tmp`), 'half a snapshot');
    const { store } = await openStore(dir);
    expect(await readdir(dir)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });
});
