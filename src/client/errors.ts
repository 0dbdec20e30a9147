// The one error class the ZooKeeper client throws. `code` is ZooKeeper's own
// KeeperException.Code value (Err), so callers match on numbers that mean the
// same thing against Apache ZooKeeper and against our server.
import { Err, ErrName } from '../proto/zk-constants.js';
import type { MultiResult } from '../proto/zk-records.js';

export class ZkError extends Error {
  /** ZooKeeper's error code (Err.*), negative. */
  readonly code: number;
  /** 'NONODE', 'CONNECTIONLOSS', ... */
  readonly codeName: string;
  /** The client path the failed request named, when it named one. */
  readonly path?: string;
  /** For a failed multi: every op's result (ok, the failing op's code, RUNTIMEINCONSISTENCY after it). */
  results?: MultiResult[];

  constructor(code: number, path?: string, detail?: string) {
    const codeName = ErrName[code] ?? `ERROR(${code})`;
    let message = codeName;
    if (path !== undefined) message += `: ${path}`;
    if (detail !== undefined) message += path !== undefined ? ` (${detail})` : `: ${detail}`;
    super(message);
    this.name = 'ZkError';
    this.code = code;
    this.codeName = codeName;
    if (path !== undefined) this.path = path;
  }
}

export function isZkError(e: unknown, code?: number): e is ZkError {
  return e instanceof ZkError && (code === undefined || e.code === code);
}

/** The outcome of the request is unknown: the connection dropped (or the request timed out) before its reply. */
export function isConnectionLoss(e: unknown): boolean {
  return isZkError(e) && (e.code === Err.CONNECTIONLOSS || e.code === Err.REQUESTTIMEOUT || e.code === Err.OPERATIONTIMEOUT);
}

/** The session is gone (expired, or this client was closed): make a new client. */
export function isSessionExpired(e: unknown): boolean {
  return isZkError(e, Err.SESSIONEXPIRED);
}

export function connectionLoss(detail?: string, path?: string): ZkError {
  return new ZkError(Err.CONNECTIONLOSS, path, detail);
}

export function sessionExpired(detail?: string, path?: string): ZkError {
  return new ZkError(Err.SESSIONEXPIRED, path, detail);
}

export function badArguments(detail: string, path?: string): ZkError {
  return new ZkError(Err.BADARGUMENTS, path, detail);
}
