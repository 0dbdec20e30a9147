// A quorum server's two epochs, each in its own small file in the data dir,
// as ZooKeeper keeps them: acceptedEpoch (the highest epoch promised to a
// prospective leader) and currentEpoch (the epoch of the leader whose sync
// made our log its own). Each write is a temporary file, fsynced, renamed
// over the old one, and the directory fsynced: a crash leaves the old value
// or the new, never a torn one.
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { PRIVATE_FILE_MODE, StorageError, fsyncDir, readTextIfExists, writeFully } from './storage-format.js';

export type EpochName = 'acceptedEpoch' | 'currentEpoch';

/** The file holding the last membership activated here (when it changed at run time). */
export const MEMBERSHIP_FILE = 'membership.json';

export async function readEpoch(dir: string, name: EpochName): Promise<number | null> {
  const text = await readTextIfExists(join(dir, name));
  if (text === null) return null;
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new StorageError(`${join(dir, name)} holds "${text.trim().slice(0, 40)}", not an epoch: restore it from a backup or remove the data dir and let the server sync from the quorum`, 'QUORATE_EPOCH_FILE');
  }
  return n;
}

export async function writeEpoch(dir: string, name: EpochName, epoch: number): Promise<void> {
  await writeSmallFile(dir, name, `${epoch}\n`);
}

export interface StoredMembership { version: bigint; voters: readonly number[]; observers: readonly number[]; /** /zookeeper/config's text (with addresses), when known. */ text?: string }

export async function writeMembership(dir: string, m: StoredMembership): Promise<void> {
  // As ZooKeeper, a dynamic config file named by its version, for people and tools; the JSON
  // beside it is what the server reads back.
  if (m.text !== undefined) await writeSmallFile(dir, `zoo.cfg.dynamic.${m.version.toString(16)}`, m.text.split('\n').filter((l) => !l.startsWith('version=')).join('\n') + '\n');
  await writeSmallFile(dir, MEMBERSHIP_FILE, JSON.stringify({ version: m.version.toString(16), voters: m.voters, observers: m.observers, text: m.text }) + '\n');
}

export async function readMembership(dir: string): Promise<StoredMembership | null> {
  const text = await readTextIfExists(join(dir, MEMBERSHIP_FILE));
  if (text === null) return null;
  try {
    const o = JSON.parse(text) as { version: string; voters: number[]; observers: number[]; text?: unknown };
    if (!/^[0-9a-f]{1,16}$/.test(o.version) || !Array.isArray(o.voters) || !Array.isArray(o.observers) ||
      ![...o.voters, ...o.observers].every((id) => Number.isInteger(id) && id >= 1 && id <= 255)) throw new Error('bad shape');
    return { version: BigInt(`0x${o.version}`), voters: o.voters, observers: o.observers, text: typeof o.text === 'string' ? o.text : undefined };
  } catch {
    throw new StorageError(`${join(dir, MEMBERSHIP_FILE)} is not a membership file (${text.trim().slice(0, 60)}): restore it or remove the data dir and let the server sync`, 'QUORATE_MEMBERSHIP_FILE');
  }
}

/** tmp file, fsync, rename over the old one, fsync the directory: the old content or the new, never torn. */
export async function writeSmallFile(dir: string, name: string, text: string): Promise<void> {
  const path = join(dir, name);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', PRIVATE_FILE_MODE);
  try {
    await writeFully(fh, Buffer.from(text), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}
