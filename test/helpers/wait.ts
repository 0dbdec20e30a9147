// Waiting for a condition instead of sleeping: a test says what it waits for,
// polls it every `everyMs`, and fails naming it (and what it last saw) past
// its bound. Bounded in time and in count.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `f` until it returns something truthy (returned) or `timeoutMs` passes (throws
 * "<what>: not within N ms (last: ...)"). A throw from `f` counts as not yet.
 */
export async function waitUntil<T>(what: string, timeoutMs: number, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i <= Math.ceil(timeoutMs / everyMs); i++) {
    try { const v = await f(); if (v) return v; last = v; } catch (e) { last = e; }
    if (Date.now() >= end) break;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))})`);
}

/**
 * Checks that `f` stays truthy for `ms`, polled every `everyMs` (a "nothing happened" check:
 * it names what must not happen, and fails the moment it does).
 */
export async function holdsFor(what: string, ms: number, f: () => Promise<boolean> | boolean, everyMs = 100): Promise<void> {
  const end = Date.now() + ms;
  for (let i = 0; i <= Math.ceil(ms / everyMs); i++) {
    if (!(await f())) throw new Error(`${what}: stopped holding after ${ms - Math.max(0, end - Date.now())} ms of ${ms}`);
    if (Date.now() >= end) return;
    await sleep(everyMs);
  }
}
