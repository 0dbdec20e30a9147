// Server-side watch table, keyed by path and by watcher (a connection).
// Semantics follow ZooKeeper 3.6+: one-shot data and child watches, and
// persistent / persistent-recursive watches from addWatch. A recursive watch
// sees every event below its path except NodeChildrenChanged; the others see
// events on their exact path only. One trigger notifies a watcher once.
import { EventType } from '../../proto/zk-constants.js';
import { invariantFailed } from '../invariant.js';

export const WatchBit = {
  DATA: 1,
  CHILD: 2,
  PERSISTENT: 4,
  RECURSIVE: 8,
} as const;

export interface WatchFire { watcher: number; type: number; path: string }

export class WatchTable {
  private readonly byPath = new Map<string, Map<number, number>>();
  private readonly byWatcher = new Map<number, Set<string>>();
  private recursiveCount = 0;

  add(path: string, watcher: number, bit: number): void {
    let m = this.byPath.get(path);
    if (!m) this.byPath.set(path, (m = new Map()));
    const old = m.get(watcher) ?? 0;
    if (bit === WatchBit.RECURSIVE && (old & WatchBit.RECURSIVE) === 0) this.recursiveCount++;
    m.set(watcher, old | bit);
    let s = this.byWatcher.get(watcher);
    if (!s) this.byWatcher.set(watcher, (s = new Set()));
    s.add(path);
  }

  has(path: string, watcher: number, bits: number): boolean {
    return ((this.byPath.get(path)?.get(watcher) ?? 0) & bits) !== 0;
  }

  /** Removes the given bits; true when any was present. */
  remove(path: string, watcher: number, bits: number): boolean {
    const m = this.byPath.get(path);
    const old = m?.get(watcher) ?? 0;
    if (!m || (old & bits) === 0) return false;
    this.setBits(m, path, watcher, old & ~bits, old);
    return true;
  }

  private setBits(m: Map<number, number>, path: string, watcher: number, next: number, old: number): void {
    if ((old & WatchBit.RECURSIVE) !== 0 && (next & WatchBit.RECURSIVE) === 0) this.recursiveCount--;
    if (next === 0) {
      m.delete(watcher);
      if (m.size === 0) this.byPath.delete(path);
      const s = this.byWatcher.get(watcher);
      s?.delete(path);
      if (s && s.size === 0) this.byWatcher.delete(watcher);
    } else {
      m.set(watcher, next);
    }
  }

  removeWatcher(watcher: number): void {
    const paths = this.byWatcher.get(watcher);
    if (!paths) return;
    for (const p of [...paths]) {
      const m = this.byPath.get(p);
      if (m) this.setBits(m, p, watcher, 0, m.get(watcher) ?? 0);
    }
    this.byWatcher.delete(watcher);
  }

  /** Fire the watches an event triggers, removing one-shot ones. */
  trigger(path: string, type: number, out: WatchFire[]): void {
    const m = this.byPath.get(path);
    if (m === undefined && (this.recursiveCount === 0 || type === EventType.NodeChildrenChanged)) return;
    const notified = new Set<number>();
    const exactBits = type === EventType.NodeChildrenChanged ? WatchBit.CHILD
      : type === EventType.NodeDeleted ? WatchBit.DATA | WatchBit.CHILD
        : WatchBit.DATA;
    if (m) {
      for (const [watcher, bits] of [...m]) {
        const hit = bits & (exactBits | WatchBit.PERSISTENT | (type !== EventType.NodeChildrenChanged ? WatchBit.RECURSIVE : 0));
        if (hit === 0) continue;
        const oneShot = bits & exactBits;
        if (oneShot !== 0) this.setBits(m, path, watcher, bits & ~oneShot, bits);
        // A one-shot watch is gone once it fired (a client re-arms it with a new read).
        if (oneShot !== 0 && ((m.get(watcher) ?? 0) & oneShot) !== 0) invariantFailed('zk.one-shot-watch-removed', { path, watcher, type, bits, left: m.get(watcher) });
        if (!notified.has(watcher)) {
          notified.add(watcher);
          out.push({ watcher, type, path });
        }
      }
    }
    if (this.recursiveCount === 0 || type === EventType.NodeChildrenChanged) return;
    let p = path;
    while (p !== '/') {
      const i = p.lastIndexOf('/');
      p = i <= 0 ? '/' : p.slice(0, i);
      const am = this.byPath.get(p);
      if (!am) continue;
      for (const [watcher, bits] of am) {
        if ((bits & WatchBit.RECURSIVE) !== 0 && !notified.has(watcher)) {
          notified.add(watcher);
          out.push({ watcher, type, path });
        }
      }
    }
  }

  /** For wchs/wchc/wchp and mntr. */
  stats(): { paths: number; watches: number; watchers: number } {
    let watches = 0;
    for (const m of this.byPath.values()) watches += m.size;
    return { paths: this.byPath.size, watches, watchers: this.byWatcher.size };
  }

  pathsOf(watcher: number): string[] {
    return [...(this.byWatcher.get(watcher) ?? [])];
  }

  watchersOf(path: string): number[] {
    return [...(this.byPath.get(path)?.keys() ?? [])];
  }

  allPaths(): string[] {
    return [...this.byPath.keys()];
  }

  countFor(watcher: number): number {
    return this.byWatcher.get(watcher)?.size ?? 0;
  }
}
