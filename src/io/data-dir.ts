// A quorum server's data directory: who it belongs to and who is using it.
//
// quorate-meta.json records the format, cluster id and server id. It is
// checked on every open, because a data dir copied to the wrong server or
// cluster would otherwise be trusted, and could make healthy servers truncate
// their logs to match it. LOCK keeps two processes off the same directory:
// Node has no flock, so it is a file created with O_EXCL holding the owner's
// pid, taken over when that pid is dead.
//
// Layout: <dir>/snap/snapshot.*, <dir>/log/log.* (or <dataLogDir>/log/log.*,
// as zoo.cfg's dataLogDir puts the log on its own disk). A separate
// dataLogDir gets its own meta file and LOCK.
import { mkdir, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from './log.js';
import { pidAlive } from './process-info.js';
import { PRIVATE_DIR_MODE, StorageError, fsyncDir, openRealFile, readTextIfExists, writeFully, type OpenFile } from './storage-format.js';

export const META_FILE = 'quorate-meta.json';
export const LOCK_FILE = 'LOCK';
export const DATA_DIR_FORMAT = 1;

export interface DataDirMeta { format: number; clusterId: string; serverId: number; createdAt?: string }

export interface DataDirOptions {
  clusterId: string;
  serverId: number;
  /** Create the directory (and its subdirectories) if missing; otherwise a missing dir is an error. */
  create: boolean;
  /** Where the transaction log goes, if not under `dir` (zoo.cfg dataLogDir). */
  dataLogDir?: string;
  logger?: Logger;
  /** Test seam for the fsyncs of meta file and directories. */
  openFile?: OpenFile;
}

/** Directories locked by this process (a second open in the same process is a bug, not a stale lock). */
const heldHere = new Set<string>();

/** Reads the meta file, or null if there is none. Never writes. */
export async function readMeta(dir: string): Promise<DataDirMeta | null> {
  const text = await readTextIfExists(join(dir, META_FILE));
  if (text === null) return null;
  try {
    const m = JSON.parse(text) as Partial<DataDirMeta>;
    if (typeof m.format === 'number' && typeof m.clusterId === 'string' && typeof m.serverId === 'number') return m as DataDirMeta;
  } catch { /* reported below */ }
  throw new StorageError(`${join(dir, META_FILE)} is not a valid Quorate meta file; restore it from a backup or move the data dir aside`,
    'QUORATE_DATADIR_META');
}

export class DataDir {
  private released = false;

  private constructor(
    readonly dir: string,
    readonly logDir: string,
    readonly snapDir: string,
    readonly meta: DataDirMeta,
    private readonly locked: string[],
  ) {}

  static async open(dir: string, opts: DataDirOptions): Promise<DataDir> {
    const roots = [resolve(dir)];
    if (opts.dataLogDir !== undefined && resolve(opts.dataLogDir) !== roots[0]) roots.push(resolve(opts.dataLogDir));
    const logDir = join(roots[roots.length - 1], 'log');
    const snapDir = join(roots[0], 'snap');
    const locked: string[] = [];
    try {
      let meta: DataDirMeta | null = null;
      for (const root of roots) {
        await ensureDir(root, opts.create, opts.openFile);
        await takeLock(root, opts.logger);
        locked.push(root);
        const sub = root === roots[0] ? [snapDir, ...(roots.length === 1 ? [logDir] : [])] : [logDir];
        meta = await checkOrWriteMeta(root, sub, opts);
        for (const s of sub) await ensureDir(s, true, opts.openFile);
      }
      return new DataDir(roots[0], logDir, snapDir, meta!, locked);
    } catch (err) {
      for (const root of locked) await dropLock(root);
      throw err;
    }
  }

  /** Releases the lock(s). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const root of this.locked) await dropLock(root);
  }
}

async function ensureDir(dir: string, create: boolean, openFile?: OpenFile): Promise<void> {
  try {
    if ((await stat(dir)).isDirectory()) return;
    throw new StorageError(`${dir} exists but is not a directory`, 'QUORATE_DATADIR_MISSING');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!create) {
    throw new StorageError(`data dir ${dir} does not exist. Create it (or let the server create it on first start), ` +
      'or fix the path: starting on an empty directory by mistake would throw this server\'s data away.', 'QUORATE_DATADIR_MISSING');
  }
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await fsyncDir(dirname(dir), openFile); // the new entry must survive a crash like any other
}

interface LockOwner { pid: number; host: string; text: string }

async function takeLock(root: string, logger?: Logger): Promise<void> {
  if (heldHere.has(root)) {
    throw new StorageError(`data dir ${root} is already open in this process (pid ${process.pid})`, 'QUORATE_DATADIR_LOCKED');
  }
  const path = join(root, LOCK_FILE);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }) + '\n';
  // Two rounds: the second follows taking over a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFileExclusive(path, mine);
      heldHere.add(root);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readLockOwner(path);
    if (owner === null) continue; // vanished between our create and our read: try again
    if (owner.host !== hostname()) {
      throw new StorageError(`data dir ${root} is locked by pid ${owner.pid} on host ${owner.host}; ` +
        `if no Quorate process there still uses it, remove ${path}`, 'QUORATE_DATADIR_LOCKED');
    }
    if (owner.pid !== process.pid && pidAlive(owner.pid)) {
      throw new StorageError(`data dir ${root} is in use by pid ${owner.pid}. Stop that server first; if pid ${owner.pid} ` +
        `is not a Quorate process (the pid was reused), remove ${path}`, 'QUORATE_DATADIR_LOCKED');
    }
    // Stale (dead pid, or our own pid left by an earlier container run). Move it aside
    // atomically, then check that what we moved is still the stale lock we judged: if a
    // racing starter replaced it meanwhile, put theirs back and give up. Without flock a
    // narrower race remains; the lock is a guard against operator mistakes, not a mutex.
    const aside = `${path}.stale.${process.pid}`;
    try {
      await rename(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((await readFile(aside, 'utf8').catch(() => null)) !== owner.text) {
      await rename(aside, path).catch(() => undefined);
      throw new StorageError(`data dir ${root} was locked by another process while this one was taking over a stale lock`,
        'QUORATE_DATADIR_LOCKED');
    }
    await unlink(aside).catch(() => undefined);
    logger?.warn({ dir: root, stalePid: owner.pid }, 'took over stale data dir lock');
  }
  throw new StorageError(`could not lock data dir ${root}: ${path} keeps changing; is another server starting on it?`, 'QUORATE_DATADIR_LOCKED');
}

async function writeFileExclusive(path: string, text: string): Promise<void> {
  const fh = await openRealFile(path, 'wx');
  try { await writeFully(fh, Buffer.from(text), 0); } finally { await fh.close(); }
}

async function readLockOwner(path: string): Promise<LockOwner | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number') return { pid: o.pid, host: typeof o.host === 'string' ? o.host : hostname(), text };
  } catch { /* a plain pid, or garbage */ }
  const pid = Number.parseInt(text.trim(), 10);
  // An empty or garbled LOCK is what a crash between create and write leaves: treat it as stale.
  return { pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0, host: hostname(), text };
}

async function dropLock(root: string): Promise<void> {
  if (!heldHere.delete(root)) return;
  const path = join(root, LOCK_FILE);
  const owner = await readLockOwner(path).catch(() => null);
  // Only remove it if it is still ours (an operator may have removed and someone else retaken it).
  if (owner !== null && owner.pid === process.pid) await unlink(path).catch(() => undefined);
}

async function checkOrWriteMeta(root: string, dataSubdirs: string[], opts: DataDirOptions): Promise<DataDirMeta> {
  const found = await readMeta(root);
  if (found !== null) {
    if (found.format !== DATA_DIR_FORMAT) {
      throw new StorageError(`data dir ${root} has format ${found.format}; this version of Quorate reads format ${DATA_DIR_FORMAT}`,
        'QUORATE_DATADIR_FORMAT');
    }
    if (found.clusterId !== opts.clusterId || found.serverId !== opts.serverId) {
      throw new StorageError(`data dir ${root} belongs to cluster "${found.clusterId}" server ${found.serverId}, but this is cluster ` +
        `"${opts.clusterId}" server ${opts.serverId}. The data dir belongs to another server or cluster: point this server at its ` +
        'own data dir, or move this one aside to start empty and resync from the leader.', 'QUORATE_DATADIR_MISMATCH');
    }
    return found;
  }
  // No meta but files: someone removed it, or this dir came from elsewhere. Adopting it could be wrong.
  for (const sub of dataSubdirs) {
    const files = await readdir(sub).catch(() => [] as string[]);
    if (files.length > 0) {
      throw new StorageError(`data dir ${root} holds data in ${sub} but has no ${META_FILE}, so whose it is cannot be checked. ` +
        `Restore ${META_FILE}, or move the data dir aside to start empty.`, 'QUORATE_DATADIR_META');
    }
  }
  const meta: DataDirMeta = { format: DATA_DIR_FORMAT, clusterId: opts.clusterId, serverId: opts.serverId, createdAt: new Date().toISOString() };
  const path = join(root, META_FILE);
  const openFile = opts.openFile ?? openRealFile;
  const fh = await openFile(`${path}.tmp`, 'w');
  try {
    await writeFully(fh, Buffer.from(JSON.stringify(meta, null, 2) + '\n'), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(`${path}.tmp`, path);
  await fsyncDir(root, openFile);
  opts.logger?.info({ dir: root, clusterId: meta.clusterId, serverId: meta.serverId }, 'initialised data dir');
  return meta;
}
