// Snapshots of the server's state, one file each, written atomically. The
// payload is opaque (the server core serializes the tree and sessions).
//
// File:   snapshot.<16 hex digits of the zxid it covers>
// Layout: 'QSNP' | u32 format version | i64 zxid | u64 payload length | payload | u32 CRC32 of payload
// Written as snapshot.<zxid>.tmp, fsynced, renamed, directory fsynced: a crash
// leaves either the old set of snapshots or the new one, plus a stray .tmp.
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from './log.js';
import { StorageError, crc32, fsyncDir, hexZxid, ioFailure, openRealFile, readFully, writeFully, type OpenFile } from './storage-format.js';

export const SNAP_MAGIC = 'QSNP';
export const SNAP_VERSION = 1;
export const SNAP_HEADER_BYTES = 24;
export const SNAP_TRAILER_BYTES = 4;
const SNAP_NAME = /^snapshot\.([0-9a-f]{16})$/;
const TMP_NAME = /^snapshot\.[0-9a-f]{16}\.tmp$/;

export const snapshotFileName = (zxid: bigint): string => `snapshot.${hexZxid(zxid)}`;

export interface SnapshotInfo { zxid: bigint; file: string; path: string; size: number }
export interface SnapshotProblem { file: string; problem: string }
export interface LoadedSnapshot extends SnapshotInfo {
  payload: Buffer;
  /** Newer snapshots that failed validation and were passed over. */
  skipped: SnapshotProblem[];
}

function snapshotHeader(zxid: bigint, payloadBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(SNAP_HEADER_BYTES);
  buf.write(SNAP_MAGIC, 0, 'latin1');
  buf.writeUInt32BE(SNAP_VERSION, 4);
  buf.writeBigUInt64BE(zxid, 8);
  buf.writeBigUInt64BE(BigInt(payloadBytes), 16);
  return buf;
}

export function encodeSnapshot(zxid: bigint, payload: Buffer): Buffer {
  const trailer = Buffer.allocUnsafe(SNAP_TRAILER_BYTES);
  trailer.writeUInt32BE(crc32(payload), 0);
  return Buffer.concat([snapshotHeader(zxid, payload.length), payload, trailer]);
}

/** Payload bytes written (and checksummed) per step, so a large snapshot never stalls the event loop for long. */
const WRITE_CHUNK_BYTES = 1024 * 1024;

/** Snapshot files in a directory, oldest first (by name; contents are not read). */
export async function listSnapshots(dir: string): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  for (const file of await readdir(dir)) {
    const m = SNAP_NAME.exec(file);
    if (!m) continue;
    const path = join(dir, file);
    out.push({ zxid: BigInt.asIntN(64, BigInt('0x' + m[1])), file, path, size: (await stat(path)).size });
  }
  return out.sort((a, b) => (a.zxid < b.zxid ? -1 : a.zxid > b.zxid ? 1 : 0));
}

/** Reads and validates one snapshot file without changing it. */
export async function readSnapshotFile(info: SnapshotInfo, openFile: OpenFile = openRealFile):
  Promise<{ ok: true; payload: Buffer } | { ok: false; problem: string }> {
  const fh = await openFile(info.path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size < SNAP_HEADER_BYTES + SNAP_TRAILER_BYTES) return { ok: false, problem: `file of ${size} bytes is shorter than a snapshot header` };
    const head = Buffer.allocUnsafe(SNAP_HEADER_BYTES);
    await readFully(fh, head, 0);
    if (head.toString('latin1', 0, 4) !== SNAP_MAGIC) return { ok: false, problem: 'not a Quorate snapshot (bad magic)' };
    if (head.readUInt32BE(4) !== SNAP_VERSION) return { ok: false, problem: `unsupported snapshot format version ${head.readUInt32BE(4)}` };
    const zxid = head.readBigUInt64BE(8);
    if (zxid !== info.zxid) return { ok: false, problem: `header zxid 0x${hexZxid(zxid)} does not match the file name` };
    const len = head.readBigUInt64BE(16);
    if (len !== BigInt(size - SNAP_HEADER_BYTES - SNAP_TRAILER_BYTES)) {
      return { ok: false, problem: `header says ${len} payload bytes, file holds ${size - SNAP_HEADER_BYTES - SNAP_TRAILER_BYTES} (truncated or extended)` };
    }
    const rest = Buffer.allocUnsafe(size - SNAP_HEADER_BYTES);
    await readFully(fh, rest, SNAP_HEADER_BYTES);
    const payload = rest.subarray(0, rest.length - SNAP_TRAILER_BYTES);
    if (crc32(payload) !== rest.readUInt32BE(payload.length)) return { ok: false, problem: 'checksum mismatch' };
    return { ok: true, payload };
  } finally {
    await fh.close();
  }
}

export interface SnapshotStoreOptions {
  logger: Logger;
  /** Test seam: how files (and the directory, for its fsync) are opened. */
  openFile?: OpenFile;
}

export class SnapshotStore {
  private readonly openFile: OpenFile;

  private constructor(readonly dir: string, private readonly opts: SnapshotStoreOptions) {
    this.openFile = opts.openFile ?? openRealFile;
  }

  /** Opens the store in `dir` (which must exist) and removes .tmp files left by a crash mid-write. */
  static async open(dir: string, opts: SnapshotStoreOptions): Promise<SnapshotStore> {
    const store = new SnapshotStore(dir, opts);
    const stale = (await readdir(dir)).filter((f) => TMP_NAME.test(f));
    for (const f of stale) await unlink(join(dir, f));
    if (stale.length > 0) {
      await fsyncDir(dir, store.openFile);
      opts.logger.info({ dir, files: stale }, 'removed unfinished snapshot files');
    }
    return store;
  }

  /** Writes a snapshot of the state as of `zxid`; durable (file and name) when the promise resolves. */
  async write(zxid: bigint, payload: Buffer): Promise<SnapshotInfo> {
    const file = snapshotFileName(zxid);
    const path = join(this.dir, file);
    const tmp = `${path}.tmp`;
    const size = SNAP_HEADER_BYTES + payload.length + SNAP_TRAILER_BYTES;
    try {
      const fh = await this.openFile(tmp, 'w');
      try {
        await writeFully(fh, snapshotHeader(zxid, payload.length), 0);
        let crc = 0;
        for (let off = 0; off < payload.length; off += WRITE_CHUNK_BYTES) {
          const part = payload.subarray(off, Math.min(payload.length, off + WRITE_CHUNK_BYTES));
          crc = crc32(part, crc);
          await writeFully(fh, part, SNAP_HEADER_BYTES + off);
          // Flush as we go: one fdatasync of the whole file at the end would put a burst of
          // tens of MB in front of the transaction log's commits.
          await fh.datasync();
        }
        const trailer = Buffer.allocUnsafe(SNAP_TRAILER_BYTES);
        trailer.writeUInt32BE(crc, 0);
        await writeFully(fh, trailer, SNAP_HEADER_BYTES + payload.length);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await fsyncDir(this.dir, this.openFile);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw ioFailure(err, `writing snapshot ${path}`);
    }
    return { zxid, file, path, size };
  }

  /** Snapshot files, oldest first (by name; contents are not validated). */
  list(): Promise<SnapshotInfo[]> {
    return listSnapshots(this.dir);
  }

  /**
   * The newest snapshot that validates, or null if there are none. An invalid
   * newer one is logged and passed over; if snapshots exist but none validates
   * this throws, because starting empty would silently drop their state.
   */
  async loadLatest(): Promise<LoadedSnapshot | null> {
    const all = await this.list();
    const skipped: SnapshotProblem[] = [];
    for (const info of all.reverse()) {
      const r = await readSnapshotFile(info, this.openFile);
      if (r.ok) return { ...info, payload: r.payload, skipped };
      skipped.push({ file: info.path, problem: r.problem });
      this.opts.logger.warn({ file: info.path, zxid: '0x' + hexZxid(info.zxid), problem: r.problem }, 'skipping invalid snapshot, trying an older one');
    }
    if (skipped.length > 0) {
      throw new StorageError(`no valid snapshot in ${this.dir}: ${skipped.map((s) => `${s.file}: ${s.problem}`).join('; ')}. ` +
        'Restore this server from a healthy replica (move the data dir aside and let it sync from the leader).', 'QUORATE_SNAPSHOT_CORRUPT');
    }
    return null;
  }

  /**
   * Keeps the newest `retainCount` snapshots that validate (and any invalid
   * ones newer than the oldest of those, for the operator to look at); deletes
   * the rest. Counting only valid ones means a damaged newest snapshot never
   * costs the last good one. Returns the oldest retained zxid, below which the
   * transaction log may be purged (null when fewer than `retainCount` validate: purge no log).
   */
  async purge(retainCount: number): Promise<{ deleted: string[]; oldestRetainedZxid: bigint | null }> {
    if (!Number.isInteger(retainCount) || retainCount < 1) throw new RangeError(`snapshot purge: retainCount must be >= 1, got ${retainCount}`);
    const all = (await this.list()).reverse();
    let valid = 0;
    let cutAt = all.length;
    for (let i = 0; i < all.length && valid < retainCount; i++) {
      if ((await readSnapshotFile(all[i], this.openFile)).ok && ++valid === retainCount) cutAt = i + 1;
    }
    // Fewer good snapshots than asked to keep: delete nothing and let the log keep everything too.
    if (valid < retainCount) return { deleted: [], oldestRetainedZxid: null };
    const victims = all.slice(cutAt).reverse(); // oldest first
    for (const v of victims) await unlink(v.path);
    if (victims.length > 0) await fsyncDir(this.dir, this.openFile);
    return { deleted: victims.map((v) => v.file), oldestRetainedZxid: all[cutAt - 1].zxid };
  }
}
