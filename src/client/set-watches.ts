// The setWatches requests that re-arm a session's watches on a new
// connection, relative to the last zxid the client saw (the server fires the
// events missed since). Split into batches of at most batchBytesMax bytes of
// paths, as ZooKeeper's client does, so each stays far below the packet
// limit. setWatches2 (opcode 105) only when there are persistent watches.
import { CLIENT_LIMITS } from '../limits.js';
import { OpCode } from '../proto/zk-constants.js';
import type { ZkRequest } from '../proto/zk-records.js';
import { toServerPath } from './path.js';
import type { WatchSnapshot } from './watch-manager.js';

/** setWatches batches stay under this many bytes of paths (ZooKeeper's client uses 128 KiB). */
export const SET_WATCHES_BATCH_BYTES_MAX = CLIENT_LIMITS.set_watches_batch_bytes_max;

export function setWatchesRequests(
  snap: WatchSnapshot, chroot: string, relativeZxid: bigint, batchBytesMax = SET_WATCHES_BATCH_BYTES_MAX,
): ZkRequest[] {
  const lists = [snap.data, snap.exist, snap.child, snap.persistent, snap.persistentRecursive]
    .map((l) => l.map((p) => toServerPath(chroot, p)));
  const two = lists[3].length > 0 || lists[4].length > 0;
  const idx = [0, 0, 0, 0, 0];
  const out: ZkRequest[] = [];
  while (idx.some((n, k) => n < lists[k].length)) {
    const batch: string[][] = [[], [], [], [], []];
    let bytes = 0;
    for (let k = 0; k < 5; k++) {
      while (idx[k] < lists[k].length) {
        const p = lists[k][idx[k]];
        const cost = 4 + Buffer.byteLength(p);
        if (bytes > 0 && bytes + cost > batchBytesMax) break;
        bytes += cost;
        batch[k].push(p);
        idx[k]++;
      }
    }
    out.push({
      type: two ? OpCode.setWatches2 : OpCode.setWatches, relativeZxid,
      dataWatches: batch[0], existWatches: batch[1], childWatches: batch[2],
      persistentWatches: batch[3], persistentRecursiveWatches: batch[4],
    });
  }
  return out;
}
