// zk.watch(path, kind): watch events as an async iterator.
//   for await (const ev of zk.watch('/svc', 'children')) { ...re-read... }
// 'persistent' / 'persistentRecursive' register one addWatch watch (re-armed
// across reconnects by setWatches2). 'data' and 'children' re-arm a one-shot
// watch after each event. Leaving the loop removes the watch.
import { nodeRuntime, sleepOn, type ClientRuntime } from './runtime.js';
import { CLIENT_LIMITS } from '../limits.js';
import { AddWatchMode, Err, EventType, KeeperState, WatcherType } from '../proto/zk-constants.js';
import { isZkError, ZkError } from './errors.js';
import type { Watcher, WatchEvent } from './watch-manager.js';
import type { ZkClient } from './zk-client.js';

export type WatchStreamKind = 'data' | 'children' | 'persistent' | 'persistentRecursive';

/** Events a stream holds for a slow consumer before it fails. */
export const WATCH_STREAM_QUEUE_MAX = CLIENT_LIMITS.watch_stream_queue_max;
const RETRY_PAUSE_MS = 100;

export class WatchStream implements AsyncIterableIterator<WatchEvent> {
  /** Resolves once the watch is first armed (rejects if that fails; next() then throws the same error). */
  readonly ready: Promise<void>;
  private readonly queue: WatchEvent[] = [];
  private waiter: { resolve(r: IteratorResult<WatchEvent>): void; reject(e: Error): void } | null = null;
  private error: Error | null = null;
  private ended = false;
  private readonly watcher: Watcher;

  constructor(private readonly zk: ZkClient, readonly path: string, readonly kind: WatchStreamKind, private readonly rt: ClientRuntime = nodeRuntime) {
    this.watcher = (ev) => this.onEvent(ev);
    this.ready = this.armUntilDone();
    this.ready.catch(() => {});
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.queue.shift();
    if (ev !== undefined) return Promise.resolve({ value: ev, done: false });
    if (this.error !== null) {
      const e = this.error;
      this.error = null;
      this.ended = true;
      return Promise.reject(e);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }

  /** Stop watching (called by `break` in for-await). */
  async return(): Promise<IteratorResult<WatchEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Stop watching and remove the watch (locally at least). */
  async close(): Promise<void> {
    if (this.ended && this.queue.length === 0) return;
    this.queue.length = 0;
    this.end();
    await this.removeWatch();
  }

  private onEvent(ev: WatchEvent): void {
    if (this.ended) return;
    if (ev.type === EventType.None) {
      if (ev.state === KeeperState.Expired) this.fail(new ZkError(Err.SESSIONEXPIRED, this.path));
      else if (ev.state === KeeperState.Closed) this.end();
      return;
    }
    if (ev.type === EventType.DataWatchRemoved || ev.type === EventType.ChildWatchRemoved || ev.type === EventType.PersistentWatchRemoved) {
      this.end(); // removed by a removeWatches call
      return;
    }
    const oneShot = this.kind === 'data' || this.kind === 'children';
    const wanted = this.kind !== 'children' || ev.type !== EventType.NodeDataChanged;
    if (wanted) this.push(ev);
    if (oneShot && !this.ended) void this.armUntilDone().catch(() => {});
  }

  private push(ev: WatchEvent): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: ev, done: false });
      return;
    }
    if (this.queue.length >= WATCH_STREAM_QUEUE_MAX) {
      this.fail(new ZkError(Err.APIERROR, this.path, `watch stream: ${WATCH_STREAM_QUEUE_MAX} events not consumed`));
      void this.removeWatch();
      return;
    }
    this.queue.push(ev);
  }

  private fail(e: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
      return;
    }
    this.error = e;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Arm (or re-arm) the watch; retry after connection loss until it holds, the stream ends, or another error. */
  private async armUntilDone(): Promise<void> {
    for (let attempt = 0; !this.ended; attempt++) {
      try {
        await this.armOnce();
        if (this.ended) await this.removeWatch();
        return;
      } catch (e) {
        if (this.ended) return;
        const retry = isZkError(e) && (e.code === Err.CONNECTIONLOSS || e.code === Err.REQUESTTIMEOUT);
        if (!retry) {
          this.fail(e as Error);
          throw e;
        }
        await sleepOn(this.rt, Math.min(RETRY_PAUSE_MS * (attempt + 1), 1000));
      }
    }
  }

  private async armOnce(): Promise<void> {
    switch (this.kind) {
      case 'persistent':
        await this.zk.addWatch(this.path, AddWatchMode.PERSISTENT, this.watcher);
        return;
      case 'persistentRecursive':
        await this.zk.addWatch(this.path, AddWatchMode.PERSISTENT_RECURSIVE, this.watcher);
        return;
      case 'data':
        await this.zk.exists(this.path, this.watcher);
        return;
      case 'children':
        // A missing node: watch for its creation, and list again if it appeared meanwhile.
        for (let i = 0; i < 100 && !this.ended; i++) {
          try {
            await this.zk.getChildren(this.path, this.watcher);
            return;
          } catch (e) {
            if (!isZkError(e, Err.NONODE)) throw e;
          }
          if ((await this.zk.exists(this.path, this.watcher)) === null) return;
        }
        return;
    }
  }

  private async removeWatch(): Promise<void> {
    const type = this.kind === 'persistent' ? WatcherType.Persistent
      : this.kind === 'persistentRecursive' ? WatcherType.PersistentRecursive : WatcherType.Any;
    try {
      await this.zk.removeWatches(this.path, type, this.watcher, this.zk.state !== 'connected');
    } catch {
      // NOWATCHER (already fired or gone), or the session ended: nothing left to remove.
    }
  }
}
