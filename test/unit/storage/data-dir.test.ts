import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDir, LOCK_FILE, META_FILE } from '../../../src/io/data-dir.js';
import { captureLogger, removeTempDirs, tempDir } from './helpers.js';

const ID = { clusterId: 'prod-a', serverId: 1 };
const opened: DataDir[] = [];

async function openDir(dir: string, opts: Partial<Parameters<typeof DataDir.open>[1]> = {}): Promise<DataDir> {
  const d = await DataDir.open(dir, { ...ID, create: true, ...opts });
  opened.push(d);
  return d;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

afterEach(async () => {
  for (const d of opened.splice(0)) await d.release();
  await removeTempDirs();
});

describe('DataDir identity', () => {
  it('creates the dir, its subdirs and the meta file on first use, and reopens with the same identity', async () => {
    const dir = join(await tempDir(), 'data');
    const d = await openDir(dir);
    expect(d.logDir).toBe(join(dir, 'log'));
    expect(d.snapDir).toBe(join(dir, 'snap'));
    expect((await readdir(dir)).sort()).toEqual([LOCK_FILE, 'log', META_FILE, 'snap'].sort());
    const meta = JSON.parse(await readFile(join(dir, META_FILE), 'utf8'));
    expect(meta).toMatchObject({ format: 1, clusterId: 'prod-a', serverId: 1 });
    // Nothing in it is for other users: the log holds session passwords and data behind ACLs.
    for (const p of [dir, d.logDir, d.snapDir, join(dir, META_FILE), join(dir, LOCK_FILE)]) expect({ p, other: statSync(p).mode & 0o077 }).toEqual({ p, other: 0 });
    await d.release();
    expect(await readdir(dir)).not.toContain(LOCK_FILE);
    const again = await openDir(dir, { create: false });
    expect(again.meta.clusterId).toBe('prod-a');
  });

  it('refuses a missing dir unless asked to create it', async () => {
    const dir = join(await tempDir(), 'nope');
    await expect(openDir(dir, { create: false })).rejects.toMatchObject({ code: 'QUORATE_DATADIR_MISSING' });
  });

  it('refuses a data dir that belongs to another cluster or server, naming both', async () => {
    const dir = await tempDir();
    await (await openDir(dir)).release();
    const err = await openDir(dir, { clusterId: 'prod-b' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'QUORATE_DATADIR_MISMATCH' });
    expect((err as Error).message).toContain('"prod-a" server 1');
    expect((err as Error).message).toContain('"prod-b" server 1');
    expect((err as Error).message).toMatch(/another server or cluster/);
    await expect(openDir(dir, { serverId: 2 })).rejects.toMatchObject({ code: 'QUORATE_DATADIR_MISMATCH' });
    expect(await readdir(dir)).not.toContain(LOCK_FILE); // a refused open leaves no lock behind
  });

  it('refuses to adopt a dir that holds data but no meta file', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'log'));
    await writeFile(join(dir, 'log', 'log.0000000000000001'), 'x');
    await expect(openDir(dir)).rejects.toMatchObject({ code: 'QUORATE_DATADIR_META' });
  });

  it('puts the log under a separate dataLogDir, which gets its own identity and lock', async () => {
    const dir = await tempDir();
    const logRoot = await tempDir();
    const d = await openDir(dir, { dataLogDir: logRoot });
    expect(d.logDir).toBe(join(logRoot, 'log'));
    expect((await readdir(logRoot)).sort()).toEqual([LOCK_FILE, 'log', META_FILE].sort());
    expect(await readdir(dir)).not.toContain('log');
    await d.release();
    await expect(openDir(await tempDir(), { dataLogDir: logRoot, serverId: 3 })).rejects.toMatchObject({ code: 'QUORATE_DATADIR_MISMATCH' });
  });
});

describe('DataDir lock', () => {
  it('refuses a dir in use by a live process', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, LOCK_FILE), `${process.ppid}\n`); // our parent: alive, and not us
    const err = await openDir(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'QUORATE_DATADIR_LOCKED' });
    expect((err as Error).message).toContain(`data dir ${dir} is in use by pid ${process.ppid}`);
    expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.ppid}\n`);
  });

  it('refuses a second open in the same process', async () => {
    const dir = await tempDir();
    await openDir(dir);
    await expect(openDir(dir)).rejects.toMatchObject({ code: 'QUORATE_DATADIR_LOCKED' });
  });

  it('takes over a stale lock with a warning', async () => {
    const dir = await tempDir();
    const pid = await deadPid();
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname() }));
    const cap = captureLogger();
    await openDir(dir, { logger: cap.logger });
    expect(cap.warns()).toEqual([expect.objectContaining({ msg: 'took over stale data dir lock', stalePid: pid })]);
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect((await readdir(dir)).filter((f) => f.startsWith('LOCK'))).toEqual([LOCK_FILE]);
  });
});
