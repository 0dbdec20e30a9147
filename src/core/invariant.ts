// Invariants, asserted where the cores decide what they rely on. A violated
// invariant means the state is already wrong: nothing may go on from it. The
// check is a comparison; the snapshot of the state that broke it is built only
// when it fails (pass a function), so the hot paths stay cheap.
//
// What happens then is the process's choice, not the core's: the daemons
// register a handler at start (src/io/invariant-exit.ts: logged at level
// fatal with the name and the state, then exit 70) so that no catch block on
// the way up can turn it into an error answer and go on; the simulator
// registers none, and the exception ends the schedule, reported as failed with
// its seed.

/** Names every invariant asserted in src/core, so that a log line or a failed schedule says which rule broke. */
export type InvariantName =
  | 'journal.write-at-promise'
  | 'zab.zxid-never-reused'
  | 'zab.commit-in-order'
  | 'zab.epoch-durable-before-answer'
  | 'zk.one-shot-watch-removed'
  | 'zk.apply-in-zxid-order'
  | 'zk.closed-session-leaves-no-ephemeral'
  | 'controller.lease-before-side-effect'
  | 'controller.active-only-healthy';

export type InvariantHandler = (v: InvariantViolation) => void;

let handler: InvariantHandler | null = null;

/** Installs what the process does when an invariant breaks (before the exception is thrown); null: only throw. */
export function setInvariantHandler(h: InvariantHandler | null): void {
  handler = h;
}

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(readonly invariant: InvariantName, readonly state: Record<string, unknown>) {
    super(`invariant ${invariant} violated: ${safeStringify(state)}`);
  }
}

/**
 * Stops the process's work on a broken invariant: the handler (a daemon's: log and exit) runs, then
 * the exception goes up. `state` is made JSON-safe (bigints as strings, byte arrays as their length).
 */
export function invariantFailed(name: InvariantName, state: Record<string, unknown>): never {
  const v = new InvariantViolation(name, jsonSafe(state, 0) as Record<string, unknown>);
  handler?.(v);
  throw v;
}

/** `cond` must hold; `state` (called only when it does not) describes what broke it. */
export function invariant(cond: boolean, name: InvariantName, state: () => Record<string, unknown>): asserts cond {
  if (!cond) invariantFailed(name, state());
}

/** A JSON-safe copy: bigint as a decimal string with a trailing n, bytes as their length, Maps and Sets as arrays; bounded depth and width. */
export function jsonSafe(v: unknown, depth: number): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return typeof v === 'function' || typeof v === 'symbol' ? String(v) : v;
  if (depth > 5) return '[…]';
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Map) return [...v].slice(0, 50).map(([k, x]) => [jsonSafe(k, depth + 1), jsonSafe(x, depth + 1)]);
  if (v instanceof Set) return [...v].slice(0, 50).map((x) => jsonSafe(x, depth + 1));
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => jsonSafe(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v).slice(0, 50)) out[k] = jsonSafe(x, depth + 1);
  return out;
}

function safeStringify(state: Record<string, unknown>): string {
  try {
    const s = JSON.stringify(state);
    return s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  } catch {
    return '(state not printable)';
  }
}
