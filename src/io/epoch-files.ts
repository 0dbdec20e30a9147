// A quorum server's two epochs, each in its own small file in the data dir,
// as ZooKeeper keeps them: acceptedEpoch (the highest epoch promised to a
// prospective leader) and currentEpoch (the epoch of the leader whose sync
// made our log its own). Each write is a temporary file, fsynced, renamed
// over the old one, and the directory fsynced: a crash leaves the old value
// or the new, never a torn one.
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, fsyncDir, writeFully } from './storage-format.js';

export type EpochName = 'acceptedEpoch' | 'currentEpoch';

export async function readEpoch(dir: string, name: EpochName): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new StorageError(`${join(dir, name)} holds "${text.trim().slice(0, 40)}", not an epoch: restore it from a backup or remove the data dir and let the server sync from the quorum`, 'QUORATE_EPOCH_FILE');
  }
  return n;
}

export async function writeEpoch(dir: string, name: EpochName, epoch: number): Promise<void> {
  const path = join(dir, name);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeFully(fh, Buffer.from(`${epoch}\n`), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}
