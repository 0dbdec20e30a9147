// ZooKeeper's client-protocol records (zookeeper.jute), as plain objects with
// an encoder and a decoder each. Used by the server (decode requests, encode
// replies) and by the client (the reverse), so both ends share one codec.
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import { OpCode } from './zk-constants.js';
import { ZK_LIMITS } from '../limits.js';

export interface Id { scheme: string; id: string }
export interface ACL { perms: number; id: Id }

export interface Stat {
  czxid: bigint;
  mzxid: bigint;
  ctime: bigint;
  mtime: bigint;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: bigint;
}

export const EMPTY_STAT: Stat = Object.freeze({
  czxid: 0n, mzxid: 0n, ctime: 0n, mtime: 0n, version: 0, cversion: 0, aversion: 0,
  ephemeralOwner: 0n, dataLength: 0, numChildren: 0, pzxid: 0n,
});

export function writeId(w: JuteWriter, id: Id): void {
  w.writeString(id.scheme).writeString(id.id);
}
export function readId(r: JuteReader): Id {
  return { scheme: r.readUstring(), id: r.readUstring() };
}
export function writeAcl(w: JuteWriter, a: ACL): void {
  w.writeInt(a.perms);
  writeId(w, a.id);
}
export function readAcl(r: JuteReader): ACL {
  const perms = r.readInt();
  return { perms, id: readId(r) };
}
export function writeAclList(w: JuteWriter, acl: readonly ACL[] | null): void {
  w.writeVector(acl, writeAcl);
}
export function readAclList(r: JuteReader): ACL[] | null {
  return r.readVector(readAcl);
}

export function writeStat(w: JuteWriter, s: Stat): void {
  w.writeLong(s.czxid).writeLong(s.mzxid).writeLong(s.ctime).writeLong(s.mtime)
    .writeInt(s.version).writeInt(s.cversion).writeInt(s.aversion)
    .writeLong(s.ephemeralOwner).writeInt(s.dataLength).writeInt(s.numChildren)
    .writeLong(s.pzxid);
}
export function readStat(r: JuteReader): Stat {
  return {
    czxid: r.readLong(), mzxid: r.readLong(), ctime: r.readLong(), mtime: r.readLong(),
    version: r.readInt(), cversion: r.readInt(), aversion: r.readInt(),
    ephemeralOwner: r.readLong(), dataLength: r.readInt(), numChildren: r.readInt(),
    pzxid: r.readLong(),
  };
}

// ---- connect ----

export interface ConnectRequest {
  protocolVersion: number;
  lastZxidSeen: bigint;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  /** Trailing optional field: absent in very old clients. */
  readOnly: boolean;
}
export function encodeConnectRequest(w: JuteWriter, c: ConnectRequest): void {
  w.writeInt(c.protocolVersion).writeLong(c.lastZxidSeen).writeInt(c.timeOut)
    .writeLong(c.sessionId).writeBuffer(c.passwd).writeBool(c.readOnly);
}
export function decodeConnectRequest(r: JuteReader): ConnectRequest {
  const protocolVersion = r.readInt();
  const lastZxidSeen = r.readLong();
  const timeOut = r.readInt();
  const sessionId = r.readLong();
  const passwd = r.readBuffer() ?? Buffer.alloc(0);
  const readOnly = r.remaining > 0 ? r.readBool() : false;
  return { protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly };
}

export interface ConnectResponse {
  protocolVersion: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  readOnly: boolean;
}
export function encodeConnectResponse(w: JuteWriter, c: ConnectResponse): void {
  w.writeInt(c.protocolVersion).writeInt(c.timeOut).writeLong(c.sessionId)
    .writeBuffer(c.passwd).writeBool(c.readOnly);
}
export function decodeConnectResponse(r: JuteReader): ConnectResponse {
  const protocolVersion = r.readInt();
  const timeOut = r.readInt();
  const sessionId = r.readLong();
  const passwd = r.readBuffer() ?? Buffer.alloc(0);
  const readOnly = r.remaining > 0 ? r.readBool() : false;
  return { protocolVersion, timeOut, sessionId, passwd, readOnly };
}

// ---- headers ----

export interface RequestHeader { xid: number; type: number }
export interface ReplyHeader { xid: number; zxid: bigint; err: number }

export function readRequestHeader(r: JuteReader): RequestHeader {
  return { xid: r.readInt(), type: r.readInt() };
}
export function writeReplyHeader(w: JuteWriter, h: ReplyHeader): void {
  w.writeInt(h.xid).writeLong(h.zxid).writeInt(h.err);
}
export function readReplyHeader(r: JuteReader): ReplyHeader {
  return { xid: r.readInt(), zxid: r.readLong(), err: r.readInt() };
}

export interface WatcherEvent { type: number; state: number; path: string }
export function writeWatcherEvent(w: JuteWriter, e: WatcherEvent): void {
  w.writeInt(e.type).writeInt(e.state).writeString(e.path);
}
export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return { type: r.readInt(), state: r.readInt(), path: r.readUstring() };
}

// ---- requests ----

export type MultiOp =
  | { type: typeof OpCode.create | typeof OpCode.create2 | typeof OpCode.createContainer; path: string; data: Buffer | null; acl: ACL[]; flags: number }
  | { type: typeof OpCode.createTTL; path: string; data: Buffer | null; acl: ACL[]; flags: number; ttl: bigint }
  | { type: typeof OpCode.delete; path: string; version: number }
  | { type: typeof OpCode.setData; path: string; data: Buffer | null; version: number }
  | { type: typeof OpCode.check; path: string; version: number }
  | { type: typeof OpCode.getChildren; path: string }
  | { type: typeof OpCode.getData; path: string };

export type ZkRequest =
  | { type: typeof OpCode.ping }
  | { type: typeof OpCode.closeSession }
  | { type: typeof OpCode.create | typeof OpCode.create2 | typeof OpCode.createContainer; path: string; data: Buffer | null; acl: ACL[]; flags: number }
  | { type: typeof OpCode.createTTL; path: string; data: Buffer | null; acl: ACL[]; flags: number; ttl: bigint }
  | { type: typeof OpCode.delete | typeof OpCode.deleteContainer; path: string; version: number }
  | { type: typeof OpCode.exists | typeof OpCode.getData | typeof OpCode.getChildren | typeof OpCode.getChildren2; path: string; watch: boolean }
  | { type: typeof OpCode.setData; path: string; data: Buffer | null; version: number }
  | { type: typeof OpCode.getACL | typeof OpCode.getAllChildrenNumber | typeof OpCode.getEphemerals | typeof OpCode.sync; path: string }
  | { type: typeof OpCode.setACL; path: string; acl: ACL[]; version: number }
  | { type: typeof OpCode.check; path: string; version: number }
  | { type: typeof OpCode.multi | typeof OpCode.multiRead; ops: MultiOp[] }
  | { type: typeof OpCode.auth; authType: number; scheme: string; auth: Buffer }
  | { type: typeof OpCode.setWatches | typeof OpCode.setWatches2; relativeZxid: bigint; dataWatches: string[]; existWatches: string[]; childWatches: string[]; persistentWatches: string[]; persistentRecursiveWatches: string[] }
  | { type: typeof OpCode.addWatch; path: string; mode: number }
  | { type: typeof OpCode.checkWatches | typeof OpCode.removeWatches; path: string; watcherType: number }
  | { type: typeof OpCode.whoAmI }
  | { type: typeof OpCode.reconfig; joiningServers: string; leavingServers: string; newMembers: string; curConfigId: bigint };

export type ZkRequestOf<T extends number> = Extract<ZkRequest, { type: T }>;

function readCreateBody(r: JuteReader, type: number): ZkRequest {
  const path = r.readUstring();
  const data = r.readBuffer();
  const acl = readAclList(r) ?? [];
  const flags = r.readInt();
  if (type === OpCode.createTTL) return { type: OpCode.createTTL, path, data, acl, flags, ttl: r.readLong() };
  return { type: type as typeof OpCode.create, path, data, acl, flags };
}

function readMultiOps(r: JuteReader, read: boolean): MultiOp[] {
  const ops: MultiOp[] = [];
  for (;;) {
    const type = r.readInt();
    const done = r.readBool();
    r.readInt(); // err, always -1 in requests
    if (done) break;
    if (ops.length >= ZK_LIMITS.multi_ops_max) throw new JuteError(`multi holds more than ${ZK_LIMITS.multi_ops_max} operations`);
    if (read) {
      if (type !== OpCode.getChildren && type !== OpCode.getData) throw new JuteError(`multiRead cannot hold opcode ${type}`);
      const path = r.readUstring();
      if (type === OpCode.getData) r.readBool(); // GetDataRequest.watch, ignored in multiRead
      else r.readBool();
      ops.push({ type, path });
      continue;
    }
    switch (type) {
      case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
        ops.push(readCreateBody(r, type) as MultiOp);
        break;
      case OpCode.delete: ops.push({ type, path: r.readUstring(), version: r.readInt() }); break;
      case OpCode.setData: ops.push({ type, path: r.readUstring(), data: r.readBuffer(), version: r.readInt() }); break;
      case OpCode.check: ops.push({ type, path: r.readUstring(), version: r.readInt() }); break;
      default: throw new JuteError(`multi cannot hold opcode ${type}`);
    }
  }
  return ops;
}

/** Decode a request body. Throws JuteError on a malformed one; returns null for an unknown opcode. */
export function decodeRequest(type: number, r: JuteReader): ZkRequest | null {
  switch (type) {
    case OpCode.ping: return { type };
    case OpCode.closeSession: return { type };
    case OpCode.create: case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      return readCreateBody(r, type);
    case OpCode.delete: case OpCode.deleteContainer:
      return type === OpCode.deleteContainer ? { type, path: r.readUstring(), version: -1 } : { type, path: r.readUstring(), version: r.readInt() };
    case OpCode.exists: case OpCode.getData: case OpCode.getChildren: case OpCode.getChildren2:
      return { type, path: r.readUstring(), watch: r.readBool() };
    case OpCode.setData: return { type, path: r.readUstring(), data: r.readBuffer(), version: r.readInt() };
    case OpCode.getACL: case OpCode.getAllChildrenNumber: case OpCode.getEphemerals: case OpCode.sync:
      return { type, path: r.readUstring() };
    case OpCode.setACL: return { type, path: r.readUstring(), acl: readAclList(r) ?? [], version: r.readInt() };
    case OpCode.check: return { type, path: r.readUstring(), version: r.readInt() };
    case OpCode.multi: return { type, ops: readMultiOps(r, false) };
    case OpCode.multiRead: return { type, ops: readMultiOps(r, true) };
    case OpCode.auth: return { type, authType: r.readInt(), scheme: r.readUstring(), auth: r.readBuffer() ?? Buffer.alloc(0) };
    case OpCode.setWatches: case OpCode.setWatches2: {
      const relativeZxid = r.readLong();
      const dataWatches = r.readStringVector();
      const existWatches = r.readStringVector();
      const childWatches = r.readStringVector();
      const two = type === OpCode.setWatches2;
      return {
        type, relativeZxid, dataWatches, existWatches, childWatches,
        persistentWatches: two ? r.readStringVector() : [],
        persistentRecursiveWatches: two ? r.readStringVector() : [],
      };
    }
    case OpCode.addWatch: return { type, path: r.readUstring(), mode: r.readInt() };
    case OpCode.checkWatches: case OpCode.removeWatches: return { type, path: r.readUstring(), watcherType: r.readInt() };
    case OpCode.whoAmI: return { type };
    case OpCode.reconfig:
      return { type, joiningServers: r.readUstring(), leavingServers: r.readUstring(), newMembers: r.readUstring(), curConfigId: r.readLong() };
    default: return null;
  }
}

function writeCreateBody(w: JuteWriter, op: { path: string; data: Buffer | null; acl: ACL[]; flags: number; ttl?: bigint }, ttl: boolean): void {
  w.writeString(op.path).writeBuffer(op.data);
  writeAclList(w, op.acl);
  w.writeInt(op.flags);
  if (ttl) w.writeLong(op.ttl ?? 0n);
}

/** Encode a request body (the client's side). */
export function encodeRequest(w: JuteWriter, req: ZkRequest): void {
  switch (req.type) {
    case OpCode.ping: case OpCode.closeSession: case OpCode.whoAmI: return;
    case OpCode.create: case OpCode.create2: case OpCode.createContainer: writeCreateBody(w, req, false); return;
    case OpCode.createTTL: writeCreateBody(w, req, true); return;
    case OpCode.delete: w.writeString(req.path).writeInt(req.version); return;
    case OpCode.deleteContainer: w.writeString(req.path); return;
    case OpCode.exists: case OpCode.getData: case OpCode.getChildren: case OpCode.getChildren2:
      w.writeString(req.path).writeBool(req.watch); return;
    case OpCode.setData: w.writeString(req.path).writeBuffer(req.data).writeInt(req.version); return;
    case OpCode.getACL: case OpCode.getAllChildrenNumber: case OpCode.getEphemerals: case OpCode.sync:
      w.writeString(req.path); return;
    case OpCode.setACL: w.writeString(req.path); writeAclList(w, req.acl); w.writeInt(req.version); return;
    case OpCode.check: w.writeString(req.path).writeInt(req.version); return;
    case OpCode.multi: case OpCode.multiRead:
      for (const op of req.ops) {
        w.writeInt(op.type).writeBool(false).writeInt(-1);
        switch (op.type) {
          case OpCode.create: case OpCode.create2: case OpCode.createContainer: writeCreateBody(w, op, false); break;
          case OpCode.createTTL: writeCreateBody(w, op, true); break;
          case OpCode.delete: case OpCode.check: w.writeString(op.path).writeInt(op.version); break;
          case OpCode.setData: w.writeString(op.path).writeBuffer(op.data).writeInt(op.version); break;
          case OpCode.getChildren: case OpCode.getData: w.writeString(op.path).writeBool(false); break;
        }
      }
      w.writeInt(-1).writeBool(true).writeInt(-1);
      return;
    case OpCode.auth: w.writeInt(req.authType).writeString(req.scheme).writeBuffer(req.auth); return;
    case OpCode.setWatches: case OpCode.setWatches2:
      w.writeLong(req.relativeZxid).writeStringVector(req.dataWatches).writeStringVector(req.existWatches).writeStringVector(req.childWatches);
      if (req.type === OpCode.setWatches2) w.writeStringVector(req.persistentWatches).writeStringVector(req.persistentRecursiveWatches);
      return;
    case OpCode.addWatch: w.writeString(req.path).writeInt(req.mode); return;
    case OpCode.checkWatches: case OpCode.removeWatches: w.writeString(req.path).writeInt(req.watcherType); return;
    case OpCode.reconfig:
      w.writeString(req.joiningServers).writeString(req.leavingServers).writeString(req.newMembers).writeLong(req.curConfigId);
      return;
  }
}

// ---- responses ----

export type MultiResult =
  | { type: typeof OpCode.create; path: string }
  | { type: typeof OpCode.create2 | typeof OpCode.createContainer | typeof OpCode.createTTL; path: string; stat: Stat }
  | { type: typeof OpCode.delete | typeof OpCode.check }
  | { type: typeof OpCode.setData; stat: Stat }
  | { type: typeof OpCode.getChildren; children: string[] }
  | { type: typeof OpCode.getData; data: Buffer | null; stat: Stat }
  | { type: typeof OpCode.error; err: number };

export type ZkResponse =
  | { type: 'empty' }
  | { type: 'path'; path: string }
  | { type: 'pathStat'; path: string; stat: Stat }
  | { type: 'stat'; stat: Stat }
  | { type: 'data'; data: Buffer | null; stat: Stat }
  | { type: 'children'; children: string[] }
  | { type: 'children2'; children: string[]; stat: Stat }
  | { type: 'acl'; acl: ACL[]; stat: Stat }
  | { type: 'number'; n: number }
  | { type: 'strings'; strings: string[] }
  | { type: 'multi'; results: MultiResult[] }
  | { type: 'whoAmI'; clients: { authScheme: string; user: string }[] }
  | { type: 'config'; data: Buffer; stat: Stat };

export function encodeResponse(w: JuteWriter, res: ZkResponse): void {
  switch (res.type) {
    case 'empty': return;
    case 'path': w.writeString(res.path); return;
    case 'pathStat': w.writeString(res.path); writeStat(w, res.stat); return;
    case 'stat': writeStat(w, res.stat); return;
    case 'data': case 'config': w.writeBuffer(res.data); writeStat(w, res.stat); return;
    case 'children': w.writeStringVector(res.children); return;
    case 'children2': w.writeStringVector(res.children); writeStat(w, res.stat); return;
    case 'acl': writeAclList(w, res.acl); writeStat(w, res.stat); return;
    case 'number': w.writeInt(res.n); return;
    case 'strings': w.writeStringVector(res.strings); return;
    case 'whoAmI': w.writeVector(res.clients, (ww, c) => ww.writeString(c.authScheme).writeString(c.user)); return;
    case 'multi':
      for (const r of res.results) {
        w.writeInt(r.type).writeBool(false).writeInt(r.type === OpCode.error ? r.err : 0);
        switch (r.type) {
          case OpCode.create: w.writeString(r.path); break;
          case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL: w.writeString(r.path); writeStat(w, r.stat); break;
          case OpCode.setData: writeStat(w, r.stat); break;
          case OpCode.getChildren: w.writeStringVector(r.children); break;
          case OpCode.getData: w.writeBuffer(r.data); writeStat(w, r.stat); break;
          case OpCode.error: w.writeInt(r.err); break;
          default: break;
        }
      }
      w.writeInt(-1).writeBool(true).writeInt(-1);
      return;
  }
}

function readMultiResults(r: JuteReader): MultiResult[] {
  const out: MultiResult[] = [];
  for (;;) {
    const type = r.readInt();
    const done = r.readBool();
    const err = r.readInt();
    if (done) break;
    switch (type) {
      case OpCode.create: out.push({ type, path: r.readUstring() }); break;
      case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
        out.push({ type, path: r.readUstring(), stat: readStat(r) }); break;
      case OpCode.delete: case OpCode.check: out.push({ type }); break;
      case OpCode.setData: out.push({ type, stat: readStat(r) }); break;
      case OpCode.getChildren: out.push({ type, children: r.readStringVector() }); break;
      case OpCode.getData: out.push({ type, data: r.readBuffer(), stat: readStat(r) }); break;
      case OpCode.error: r.readInt(); out.push({ type, err }); break;
      default: throw new JuteError(`multi result with opcode ${type}`);
    }
  }
  return out;
}

/** Decode the body of a successful reply to a request of the given opcode. */
export function decodeResponse(opType: number, r: JuteReader): ZkResponse {
  switch (opType) {
    case OpCode.create: return { type: 'path', path: r.readUstring() };
    case OpCode.create2: case OpCode.createContainer: case OpCode.createTTL:
      return { type: 'pathStat', path: r.readUstring(), stat: readStat(r) };
    case OpCode.exists: case OpCode.setData: case OpCode.setACL: return { type: 'stat', stat: readStat(r) };
    case OpCode.getData: return { type: 'data', data: r.readBuffer(), stat: readStat(r) };
    case OpCode.reconfig: return { type: 'config', data: r.readBuffer() ?? Buffer.alloc(0), stat: readStat(r) };
    case OpCode.getChildren: return { type: 'children', children: r.readStringVector() };
    case OpCode.getChildren2: return { type: 'children2', children: r.readStringVector(), stat: readStat(r) };
    case OpCode.getACL: return { type: 'acl', acl: readAclList(r) ?? [], stat: readStat(r) };
    case OpCode.getAllChildrenNumber: return { type: 'number', n: r.readInt() };
    case OpCode.getEphemerals: return { type: 'strings', strings: r.readStringVector() };
    case OpCode.sync: return { type: 'path', path: r.readUstring() };
    case OpCode.multi: case OpCode.multiRead: return { type: 'multi', results: readMultiResults(r) };
    case OpCode.whoAmI:
      return { type: 'whoAmI', clients: r.readVector((rr) => ({ authScheme: rr.readUstring(), user: rr.readUstring() })) ?? [] };
    default: return { type: 'empty' };
  }
}
