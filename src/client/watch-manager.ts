// The client's table of watchers, keyed by client path (chroot stripped), and
// the routing of a notification to them, as ZooKeeper's ZKWatchManager does:
//   NodeCreated, NodeDataChanged -> data + exists watchers
//   NodeDeleted                  -> data + exists + child watchers
//   NodeChildrenChanged          -> child watchers
// One-shot watchers are removed when they fire. Persistent watchers on the
// path fire for every event and stay; persistent-recursive watchers on the
// path or any ancestor fire for every event but NodeChildrenChanged (a
// recursive watch does not report child-list changes, as in ZooKeeper).
// Pure code: no I/O, no timers.
import { EventType, WatcherType } from '../proto/zk-constants.js';
import { pathAndAncestors } from './path.js';

export interface WatchEvent {
  /** EventType.* (None = -1 for a session state change). */
  type: number;
  /** KeeperState.* */
  state: number;
  /** Client path ('' for a session state change). */
  path: string;
}

export type Watcher = (event: WatchEvent) => void;

export type WatchKind = 'data' | 'exists' | 'child' | 'persistent' | 'persistentRecursive';
const KINDS: readonly WatchKind[] = ['data', 'exists', 'child', 'persistent', 'persistentRecursive'];

/** The watch kinds a removeWatches/checkWatches WatcherType covers. */
export function kindsOfWatcherType(watcherType: number): readonly WatchKind[] {
  switch (watcherType) {
    case WatcherType.Children: return ['child'];
    case WatcherType.Data: return ['data', 'exists'];
    case WatcherType.Any: return KINDS;
    case WatcherType.Persistent: return ['persistent'];
    case WatcherType.PersistentRecursive: return ['persistentRecursive'];
    default: return [];
  }
}

/** The event a watcher gets when it is removed by removeWatches. */
export function removedEventType(kind: WatchKind): number {
  if (kind === 'child') return EventType.ChildWatchRemoved;
  if (kind === 'persistent' || kind === 'persistentRecursive') return EventType.PersistentWatchRemoved;
  return EventType.DataWatchRemoved;
}

export interface WatchSnapshot {
  data: string[];
  exist: string[];
  child: string[];
  persistent: string[];
  persistentRecursive: string[];
}

export interface RemovedWatcher { kind: WatchKind; watcher: Watcher }

export class WatchManager {
  private readonly maps: Record<WatchKind, Map<string, Set<Watcher>>> = {
    data: new Map(), exists: new Map(), child: new Map(), persistent: new Map(), persistentRecursive: new Map(),
  };

  add(kind: WatchKind, path: string, watcher: Watcher): void {
    const m = this.maps[kind];
    let set = m.get(path);
    if (set === undefined) m.set(path, (set = new Set()));
    set.add(watcher);
  }

  /** Watchers a notification fires, each once even if registered under several kinds; one-shot ones are removed. */
  trigger(ev: WatchEvent): Watcher[] {
    const out = new Set<Watcher>();
    const take = (kind: WatchKind): void => {
      const set = this.maps[kind].get(ev.path);
      if (set === undefined) return;
      this.maps[kind].delete(ev.path);
      for (const w of set) out.add(w);
    };
    switch (ev.type) {
      case EventType.NodeCreated: case EventType.NodeDataChanged:
        take('data'); take('exists'); break;
      case EventType.NodeDeleted:
        take('data'); take('exists'); take('child'); break;
      case EventType.NodeChildrenChanged:
        take('child'); break;
      default:
        return [];
    }
    const persistent = this.maps.persistent.get(ev.path);
    if (persistent !== undefined) for (const w of persistent) out.add(w);
    if (ev.type !== EventType.NodeChildrenChanged && this.maps.persistentRecursive.size > 0) {
      for (const p of pathAndAncestors(ev.path)) {
        const set = this.maps.persistentRecursive.get(p);
        if (set !== undefined) for (const w of set) out.add(w);
      }
    }
    return [...out];
  }

  /** The watchers removeWatches(path, watcherType, watcher) would remove (all of the type when watcher is absent). */
  matching(path: string, watcherType: number, watcher?: Watcher): RemovedWatcher[] {
    const out: RemovedWatcher[] = [];
    for (const kind of kindsOfWatcherType(watcherType)) {
      const set = this.maps[kind].get(path);
      if (set === undefined) continue;
      for (const w of set) if (watcher === undefined || w === watcher) out.push({ kind, watcher: w });
    }
    return out;
  }

  /** Remove and return what matching() finds. */
  remove(path: string, watcherType: number, watcher?: Watcher): RemovedWatcher[] {
    const found = this.matching(path, watcherType, watcher);
    for (const { kind, watcher: w } of found) {
      const set = this.maps[kind].get(path);
      if (set === undefined) continue;
      set.delete(w);
      if (set.size === 0) this.maps[kind].delete(path);
    }
    return found;
  }

  /** Does the server still need a watch of this kind on path (some watcher remains)? */
  has(kind: WatchKind, path: string): boolean {
    return this.maps[kind].has(path);
  }

  /** Paths per kind, for setWatches after a reconnect. */
  snapshot(): WatchSnapshot {
    return {
      data: [...this.maps.data.keys()],
      exist: [...this.maps.exists.keys()],
      child: [...this.maps.child.keys()],
      persistent: [...this.maps.persistent.keys()],
      persistentRecursive: [...this.maps.persistentRecursive.keys()],
    };
  }

  /** Remove every watcher (session expired or client closed); each is returned once. */
  drainAll(): Watcher[] {
    const out = new Set<Watcher>();
    for (const kind of KINDS) {
      for (const set of this.maps[kind].values()) for (const w of set) out.add(w);
      this.maps[kind].clear();
    }
    return [...out];
  }

  /** Number of (kind, path, watcher) registrations. */
  get size(): number {
    let n = 0;
    for (const kind of KINDS) for (const set of this.maps[kind].values()) n += set.size;
    return n;
  }
}

/** A session state event as watchers see it. */
export function stateEvent(state: number): WatchEvent {
  return { type: EventType.None, state, path: '' };
}
