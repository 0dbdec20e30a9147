// Request builders shared by the single calls and multi: create modes, ACL
// presets, data conversion and the Op.* builders for multi / multiRead.
import { CreateMode, MAX_TTL_MS, OpCode, Perm, createModeInfo } from '../proto/zk-constants.js';
import type { ACL, MultiOp } from '../proto/zk-records.js';
import { badArguments } from './errors.js';
import { validatePath } from './path.js';

/** ZooDefs.Ids ACL presets. */
export const Acls = {
  /** Anyone can do anything. */
  OPEN_ACL_UNSAFE: [{ perms: Perm.ALL, id: { scheme: 'world', id: 'anyone' } }] as ACL[],
  /** All permissions for the identities this connection authenticated with (addAuth). */
  CREATOR_ALL_ACL: [{ perms: Perm.ALL, id: { scheme: 'auth', id: '' } }] as ACL[],
  /** Anyone can read. */
  READ_ACL_UNSAFE: [{ perms: Perm.READ, id: { scheme: 'world', id: 'anyone' } }] as ACL[],
};

export type Data = Buffer | Uint8Array | string | null | undefined;

export interface CreateOptions {
  /** CreateMode.* value; PERSISTENT by default. */
  mode?: number;
  /** OPEN_ACL_UNSAFE by default. */
  acl?: ACL[];
  /** Required for (and only for) the *_WITH_TTL modes: 1 .. 2^40-1 ms. */
  ttlMs?: number;
}

/** A string is sent as UTF-8; null (or undefined) is sent as a null buffer (length -1), which is not an empty one. */
export function toData(data: Data): Buffer | null {
  if (data === null || data === undefined) return null;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw badArguments('data must be a Buffer, a Uint8Array, a string or null');
}

function checkVersion(version: number): number {
  if (!Number.isInteger(version) || version < -1 || version > 0x7fffffff) throw badArguments(`invalid version ${version}`);
  return version;
}

function checkAcl(acl: ACL[]): ACL[] {
  if (!Array.isArray(acl) || acl.length === 0) throw badArguments('acl must be a non-empty array (ZooKeeper answers INVALIDACL)');
  for (const a of acl) {
    if (typeof a?.perms !== 'number' || typeof a.id?.scheme !== 'string' || typeof a.id?.id !== 'string') {
      throw badArguments('each ACL entry needs {perms: number, id: {scheme: string, id: string}}');
    }
  }
  return acl;
}

export type CreateOp = Extract<MultiOp, { acl: ACL[] }>;

/**
 * Build a create request. The opcode follows ZooKeeper's client: a container
 * is createContainer, a TTL mode is createTTL (both answer path + stat);
 * otherwise create (path only) or create2 (path + stat) when `withStat`.
 */
export function buildCreate(path: string, data: Data, opts: CreateOptions = {}, withStat = false): CreateOp {
  const flags = opts.mode ?? CreateMode.PERSISTENT;
  const info = createModeInfo(flags);
  if (info === null) throw badArguments(`unknown create mode ${String(flags)}`, path);
  validatePath(path, info.sequential);
  const acl = checkAcl(opts.acl ?? Acls.OPEN_ACL_UNSAFE);
  const body = toData(data);
  if (info.ttl) {
    const ttl = opts.ttlMs;
    if (ttl === undefined || !Number.isInteger(ttl) || ttl <= 0 || BigInt(ttl) > MAX_TTL_MS) {
      throw badArguments(`a TTL create needs ttlMs in 1..${MAX_TTL_MS}`, path);
    }
    return { type: OpCode.createTTL, path, data: body, acl, flags, ttl: BigInt(ttl) };
  }
  if (opts.ttlMs !== undefined) throw badArguments('ttlMs is only valid with a *_WITH_TTL create mode', path);
  const type = info.container ? OpCode.createContainer : withStat ? OpCode.create2 : OpCode.create;
  return { type, path, data: body, acl, flags };
}

/** Builders for multi (create, delete, setData, check) and multiRead (getData, getChildren). */
export const Op = {
  create(path: string, data: Data, opts: CreateOptions = {}): MultiOp {
    return buildCreate(path, data, opts, false);
  },
  delete(path: string, version = -1): MultiOp {
    validatePath(path);
    return { type: OpCode.delete, path, version: checkVersion(version) };
  },
  setData(path: string, data: Data, version = -1): MultiOp {
    validatePath(path);
    return { type: OpCode.setData, path, data: toData(data), version: checkVersion(version) };
  },
  check(path: string, version: number): MultiOp {
    validatePath(path);
    return { type: OpCode.check, path, version: checkVersion(version) };
  },
  getData(path: string): MultiOp {
    validatePath(path);
    return { type: OpCode.getData, path };
  },
  getChildren(path: string): MultiOp {
    validatePath(path);
    return { type: OpCode.getChildren, path };
  },
};

export { checkVersion, checkAcl };
