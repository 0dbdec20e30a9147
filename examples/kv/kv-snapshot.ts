// The store's snapshot on disk: written whole to a temporary file, synced, and
// renamed over the last one, so a crash leaves the old snapshot or the new,
// never half of one. A restarted instance loads it and tails the journal from
// its txid on, not from txid 1. A snapshot that does not parse is refused at
// start with the file's name: the operator removes it and the instance
// rebuilds from the journal.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KvState, type KvSnapshot } from './kv-state.js';

const SNAPSHOT_FILE = 'snapshot.json';

const SnapshotSchema = z.object({
  version: z.literal(1),
  appliedTxid: z.string().regex(/^\d{1,19}$/),
  activeUrl: z.string().nullable(),
  activeInstance: z.string().nullable(),
  undecodable: z.number().int().nonnegative(),
  data: z.array(z.tuple([z.string(), z.string()])),
});

export class KvSnapshotError extends Error {}

/** The state in `dir`'s snapshot, or an empty state when there is none. */
export function loadSnapshot(dir: string): KvState {
  const file = path.join(dir, SNAPSHOT_FILE);
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new KvState();
    throw new KvSnapshotError(`${file}: ${(e as Error).message}`);
  }
  let parsed: KvSnapshot;
  try { parsed = SnapshotSchema.parse(JSON.parse(text)); } catch (e) {
    throw new KvSnapshotError(`${file} is not a snapshot this service wrote (${(e as Error).message.slice(0, 200)}); remove it to rebuild from the journal`);
  }
  return KvState.fromSnapshot(parsed);
}

/** Writes `snap` durably over the last snapshot. */
export async function saveSnapshot(dir: string, snap: KvSnapshot): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, SNAPSHOT_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(snap));
    await fh.sync();
  } finally { await fh.close(); }
  await fs.promises.rename(tmp, file);
  const d = await fs.promises.open(dir, 'r');
  try { await d.sync(); } finally { await d.close(); }
}
