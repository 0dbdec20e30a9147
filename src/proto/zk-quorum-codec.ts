// What quorum servers' ZooKeeper layers say to each other (src/core/zk/quorum-messages.ts),
// as the bodies of ZAB 'app' messages.
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import { decodeRequest, encodeRequest, readId, writeId, type Id } from './zk-records.js';
import type { FromLeader, ToLeader } from '../core/zk/quorum-messages.js';

const TO_LEADER = { request: 1, createSession: 2, revalidate: 3, sync: 4, touch: 5 } as const;
const FROM_LEADER = { revalidated: 1, synced: 2 } as const;

export function encodeToLeader(m: ToLeader): Buffer {
  const w = new JuteWriter(64);
  w.writeInt(TO_LEADER[m.kind]);
  switch (m.kind) {
    case 'request':
      w.writeLong(m.sessionId).writeInt(m.cxid).writeInt(m.req.type);
      encodeRequest(w, m.req);
      w.writeInt(m.ids.length);
      for (const id of m.ids) writeId(w, id);
      break;
    case 'createSession': w.writeLong(m.sessionId).writeInt(m.timeoutMs).writeBuffer(m.passwd); break;
    case 'revalidate': w.writeLong(m.sessionId).writeInt(m.timeoutMs); break;
    case 'sync': w.writeLong(m.sessionId).writeInt(m.cxid); break;
    case 'touch':
      w.writeInt(m.sessions.length);
      for (const s of m.sessions) w.writeLong(s);
      break;
  }
  return Buffer.from(w.toBuffer());
}

function count(r: JuteReader, what: string, itemBytes: number): number {
  const n = r.readInt();
  if (n < 0 || n * itemBytes > r.remaining) throw new JuteError(`${what}: bad count ${n}`);
  return n;
}

export function decodeToLeader(body: Buffer): ToLeader {
  const r = new JuteReader(body);
  const tag = r.readInt();
  let m: ToLeader;
  switch (tag) {
    case TO_LEADER.request: {
      const sessionId = r.readLong();
      const cxid = r.readInt();
      const type = r.readInt();
      const req = decodeRequest(type, r);
      if (req === null) throw new JuteError(`forwarded request with unknown opcode ${type}`);
      const ids: Id[] = [];
      for (let i = count(r, 'ids', 8); i > 0; i--) ids.push(readId(r));
      m = { kind: 'request', sessionId, cxid, req, ids };
      break;
    }
    case TO_LEADER.createSession: {
      const sessionId = r.readLong();
      const timeoutMs = r.readInt();
      const passwd = r.readBuffer();
      if (passwd === null) throw new JuteError('createSession without a password');
      m = { kind: 'createSession', sessionId, timeoutMs, passwd };
      break;
    }
    case TO_LEADER.revalidate: m = { kind: 'revalidate', sessionId: r.readLong(), timeoutMs: r.readInt() }; break;
    case TO_LEADER.sync: m = { kind: 'sync', sessionId: r.readLong(), cxid: r.readInt() }; break;
    case TO_LEADER.touch: {
      const sessions: bigint[] = [];
      for (let i = count(r, 'sessions', 8); i > 0; i--) sessions.push(r.readLong());
      m = { kind: 'touch', sessions };
      break;
    }
    default: throw new JuteError(`unknown message to the leader: ${tag}`);
  }
  if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes after ${m.kind}`);
  return m;
}

export function encodeFromLeader(m: FromLeader): Buffer {
  const w = new JuteWriter(32);
  w.writeInt(FROM_LEADER[m.kind]);
  if (m.kind === 'revalidated') w.writeLong(m.sessionId).writeBool(m.valid).writeInt(m.timeoutMs);
  else w.writeLong(m.sessionId).writeInt(m.cxid).writeLong(m.zxid);
  return Buffer.from(w.toBuffer());
}

export function decodeFromLeader(body: Buffer): FromLeader {
  const r = new JuteReader(body);
  const tag = r.readInt();
  let m: FromLeader;
  if (tag === FROM_LEADER.revalidated) m = { kind: 'revalidated', sessionId: r.readLong(), valid: r.readBool(), timeoutMs: r.readInt() };
  else if (tag === FROM_LEADER.synced) m = { kind: 'synced', sessionId: r.readLong(), cxid: r.readInt(), zxid: BigInt.asUintN(64, r.readLong()) };
  else throw new JuteError(`unknown message from the leader: ${tag}`);
  if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes after ${m.kind}`);
  return m;
}
