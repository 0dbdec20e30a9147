// The peer protocol on the wire: 4-byte length frames holding a jute-style
// record whose first int says what it is. The election port starts every
// connection with a hello (protocol version, cluster id, server id); the
// quorum port starts with FOLLOWERINFO, which carries the same. Anything
// malformed throws JuteError: the driver closes that connection.
import { JuteError, JuteReader, JuteWriter } from './jute.js';
import type { LearnerType, Notification, PeerMessage, PeerState } from '../core/zab/messages.js';

const STATES: PeerState[] = ['looking', 'following', 'leading', 'observing'];
const LEARNER_TYPES: LearnerType[] = ['participant', 'observer'];

const TAG = {
  followerInfo: 1, leaderInfo: 2, ackEpoch: 3, diff: 4, trunc: 5, snap: 6, proposal: 7, commit: 8, inform: 9,
  newLeader: 10, ack: 11, upToDate: 12, ping: 13, app: 14, refused: 15,
} as const satisfies Record<PeerMessage['type'], number>;
const TYPE_OF_TAG = new Map<number, PeerMessage['type']>(Object.entries(TAG).map(([k, v]) => [v, k as PeerMessage['type']]));

/** zxids are unsigned 64-bit here (an epoch may pass 2^31); jute longs are signed. */
function readZxid(r: JuteReader): bigint {
  return BigInt.asUintN(64, r.readLong());
}

function readIds(r: JuteReader, what: string): number[] {
  const n = r.readInt();
  if (n < 0 || n > 255 || n * 4 > r.remaining) throw new JuteError(`${what}: bad count ${n}`);
  return Array.from({ length: n }, () => r.readInt());
}

function readBytes(r: JuteReader, what: string): Buffer {
  const b = r.readBuffer();
  if (b === null) throw new JuteError(`${what}: missing bytes`);
  return b;
}

function readEnum<T>(r: JuteReader, values: readonly T[], what: string): T {
  const i = r.readInt();
  if (i < 0 || i >= values.length) throw new JuteError(`${what}: unknown value ${i}`);
  return values[i];
}

/** Writes `msg` as one frame. */
export function encodePeerMessage(w: JuteWriter, msg: PeerMessage): void {
  const at = w.beginFrame();
  w.writeInt(TAG[msg.type]);
  switch (msg.type) {
    case 'followerInfo':
      w.writeInt(msg.protocolVersion).writeString(msg.clusterId).writeLong(BigInt(msg.serverId))
        .writeInt(LEARNER_TYPES.indexOf(msg.learnerType)).writeInt(msg.acceptedEpoch).writeLong(msg.lastZxid);
      break;
    case 'leaderInfo': w.writeInt(msg.protocolVersion).writeInt(msg.epoch); break;
    case 'ackEpoch': w.writeInt(msg.currentEpoch).writeLong(msg.lastZxid); break;
    case 'diff': case 'trunc': case 'commit': case 'newLeader': case 'ack': w.writeLong(msg.zxid); break;
    case 'snap':
      w.writeLong(msg.zxid).writeBuffer(msg.snapshot ?? null).writeLong(msg.config.version);
      for (const ids of [msg.config.voters, msg.config.observers]) { w.writeInt(ids.length); for (const id of ids) w.writeInt(id); }
      break;
    case 'proposal': case 'inform': w.writeLong(msg.zxid).writeBuffer(msg.payload); break;
    case 'upToDate': w.writeLong(msg.committed); break;
    case 'ping': break;
    case 'app': w.writeBuffer(msg.body); break;
    case 'refused': w.writeString(msg.reason); break;
  }
  w.finishFrame(at);
}

/** Decodes one frame's body (without its length). */
export function decodePeerMessage(body: Buffer): PeerMessage {
  const r = new JuteReader(body);
  const tag = r.readInt();
  const type = TYPE_OF_TAG.get(tag);
  if (type === undefined) throw new JuteError(`unknown peer message type ${tag}`);
  let msg: PeerMessage;
  switch (type) {
    case 'followerInfo': {
      const protocolVersion = r.readInt();
      const clusterId = r.readUstring();
      const serverId = Number(r.readLong());
      const learnerType = readEnum(r, LEARNER_TYPES, 'learner type');
      msg = { type, protocolVersion, clusterId, serverId, learnerType, acceptedEpoch: r.readInt(), lastZxid: readZxid(r) };
      break;
    }
    case 'leaderInfo': msg = { type, protocolVersion: r.readInt(), epoch: r.readInt() }; break;
    case 'ackEpoch': msg = { type, currentEpoch: r.readInt(), lastZxid: readZxid(r) }; break;
    case 'diff': case 'trunc': case 'commit': case 'newLeader': case 'ack': msg = { type, zxid: readZxid(r) }; break;
    case 'snap': {
      const zxid = readZxid(r);
      const snapshot = readBytes(r, 'snapshot');
      const version = readZxid(r);
      msg = { type, zxid, snapshot, config: { version, voters: readIds(r, 'voters'), observers: readIds(r, 'observers') } };
      break;
    }
    case 'proposal': case 'inform': { const zxid = readZxid(r); msg = { type, zxid, payload: readBytes(r, 'payload') }; break; }
    case 'upToDate': msg = { type, committed: readZxid(r) }; break;
    case 'ping': msg = { type }; break;
    case 'app': msg = { type, body: readBytes(r, 'app body') }; break;
    case 'refused': msg = { type, reason: r.readUstring() }; break;
  }
  if (r.remaining !== 0) throw new JuteError(`${r.remaining} trailing bytes after a ${type} message`);
  return msg;
}

/** The first frame on an election connection: who is calling, from which cluster, speaking what. */
export interface ElectionHello { protocolVersion: number; clusterId: string; serverId: number }

export function encodeElectionHello(w: JuteWriter, h: ElectionHello): void {
  const at = w.beginFrame();
  w.writeInt(h.protocolVersion).writeString(h.clusterId).writeLong(BigInt(h.serverId));
  w.finishFrame(at);
}

export function decodeElectionHello(body: Buffer): ElectionHello {
  const r = new JuteReader(body);
  const h = { protocolVersion: r.readInt(), clusterId: r.readUstring(), serverId: Number(r.readLong()) };
  if (r.remaining !== 0) throw new JuteError('trailing bytes after the election hello');
  return h;
}

export function encodeNotification(w: JuteWriter, n: Notification): void {
  const at = w.beginFrame();
  w.writeLong(BigInt(n.leader)).writeLong(n.zxid).writeInt(n.peerEpoch).writeInt(n.round).writeInt(STATES.indexOf(n.state));
  w.writeBool(n.config !== undefined);
  if (n.config !== undefined) {
    w.writeLong(n.config.version);
    for (const ids of [n.config.voters, n.config.observers]) { w.writeInt(ids.length); for (const id of ids) w.writeInt(id); }
  }
  w.finishFrame(at);
}

export function decodeNotification(body: Buffer): Notification {
  const r = new JuteReader(body);
  const n: Notification = { leader: Number(r.readLong()), zxid: readZxid(r), peerEpoch: r.readInt(), round: r.readInt(), state: readEnum(r, STATES, 'peer state') };
  if (r.readBool()) n.config = { version: readZxid(r), voters: readIds(r, 'voters'), observers: readIds(r, 'observers') };
  if (r.remaining !== 0) throw new JuteError('trailing bytes after a notification');
  return n;
}
