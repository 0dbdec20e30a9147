import { describe, expect, it } from 'vitest';
import { EventType, KeeperState, WatcherType } from '../../../src/proto/zk-constants.js';
import { WatchManager, type Watcher, type WatchEvent, type WatchKind } from '../../../src/client/watch-manager.js';

const ev = (type: number, path: string): WatchEvent => ({ type, state: KeeperState.SyncConnected, path });

function setup(): { wm: WatchManager; w: Record<WatchKind, Watcher> } {
  const wm = new WatchManager();
  const w = {} as Record<WatchKind, Watcher>;
  for (const kind of ['data', 'exists', 'child', 'persistent', 'persistentRecursive'] as WatchKind[]) {
    w[kind] = Object.defineProperty(() => {}, 'name', { value: kind }) as Watcher;
    wm.add(kind, '/a', w[kind]);
  }
  return { wm, w };
}
const names = (ws: Watcher[]): string[] => ws.map((f) => f.name).sort();

describe('WatchManager routing (ZooKeeper ZKWatchManager semantics)', () => {
  it.each([
    [EventType.NodeCreated, ['data', 'exists', 'persistent', 'persistentRecursive']],
    [EventType.NodeDataChanged, ['data', 'exists', 'persistent', 'persistentRecursive']],
    [EventType.NodeDeleted, ['child', 'data', 'exists', 'persistent', 'persistentRecursive']],
    [EventType.NodeChildrenChanged, ['child', 'persistent']],
  ])('event type %i fires %j', (type, expected) => {
    const { wm } = setup();
    expect(names(wm.trigger(ev(type, '/a')))).toEqual([...expected].sort());
  });

  it('one-shot watchers fire once; persistent ones stay', () => {
    const { wm } = setup();
    wm.trigger(ev(EventType.NodeDeleted, '/a'));
    expect(names(wm.trigger(ev(EventType.NodeDeleted, '/a')))).toEqual(['persistent', 'persistentRecursive']);
    expect(wm.snapshot()).toEqual({ data: [], exist: [], child: [], persistent: ['/a'], persistentRecursive: ['/a'] });
  });

  it('a data event leaves the child watcher armed', () => {
    const { wm } = setup();
    wm.trigger(ev(EventType.NodeDataChanged, '/a'));
    expect(wm.snapshot().child).toEqual(['/a']);
    expect(wm.snapshot().data).toEqual([]);
  });

  it('recursive watchers see descendants but not their child-list changes; others do not', () => {
    const { wm } = setup();
    expect(names(wm.trigger(ev(EventType.NodeCreated, '/a/b/c')))).toEqual(['persistentRecursive']);
    expect(names(wm.trigger(ev(EventType.NodeChildrenChanged, '/a/b')))).toEqual([]);
    expect(names(wm.trigger(ev(EventType.NodeDataChanged, '/ab')))).toEqual([]);
    const root = new WatchManager();
    const r: Watcher = () => {};
    root.add('persistentRecursive', '/', r);
    expect(root.trigger(ev(EventType.NodeDeleted, '/x/y'))).toEqual([r]);
  });

  it('the same watcher under several kinds fires once', () => {
    const wm = new WatchManager();
    const w: Watcher = () => {};
    wm.add('data', '/p', w);
    wm.add('child', '/p', w);
    wm.add('persistentRecursive', '/', w);
    wm.add('data', '/p', w);
    expect(wm.size).toBe(3);
    expect(wm.trigger(ev(EventType.NodeDeleted, '/p'))).toEqual([w]);
    expect(wm.size).toBe(1);
  });

  it('session events and unknown types fire nothing', () => {
    const { wm } = setup();
    expect(wm.trigger({ type: EventType.None, state: KeeperState.Disconnected, path: '' })).toEqual([]);
    expect(wm.trigger(ev(99, '/a'))).toEqual([]);
    expect(wm.size).toBe(5);
  });

  it('matching/remove by watcher type and watcher', () => {
    const { wm, w } = setup();
    const other: Watcher = () => {};
    wm.add('data', '/a', other);
    expect(wm.matching('/a', WatcherType.Data).map((m) => m.kind).sort()).toEqual(['data', 'data', 'exists']);
    expect(wm.matching('/a', WatcherType.Children)).toEqual([{ kind: 'child', watcher: w.child }]);
    expect(wm.matching('/a', WatcherType.Any).length).toBe(6);
    expect(wm.matching('/a', WatcherType.Persistent)).toEqual([{ kind: 'persistent', watcher: w.persistent }]);
    expect(wm.matching('/a', WatcherType.PersistentRecursive)).toEqual([{ kind: 'persistentRecursive', watcher: w.persistentRecursive }]);
    expect(wm.matching('/a', 42)).toEqual([]);
    expect(wm.remove('/a', WatcherType.Data, other)).toEqual([{ kind: 'data', watcher: other }]);
    expect(wm.has('data', '/a')).toBe(true);
    wm.remove('/a', WatcherType.Data);
    expect(wm.has('data', '/a')).toBe(false);
    expect(wm.has('exists', '/a')).toBe(false);
    expect(wm.has('child', '/a')).toBe(true);
    expect(wm.remove('/b', WatcherType.Any)).toEqual([]);
  });

  it('drainAll returns every watcher once and empties the table', () => {
    const { wm, w } = setup();
    wm.add('child', '/z', w.child);
    const all = wm.drainAll();
    expect(all.length).toBe(5);
    expect(wm.size).toBe(0);
    expect(wm.snapshot()).toEqual({ data: [], exist: [], child: [], persistent: [], persistentRecursive: [] });
  });
});
