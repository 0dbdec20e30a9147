// The QuorumPeer's handshake rules, driven by hand: a learner from another
// cluster, speaking another protocol version, or not a member, is refused by
// the leader; a learner that connects before its leader has taken the role
// is closed and tries again; and the codec round-trips every message.
import { describe, expect, it } from 'vitest';
import { QuorumPeer, type PeerEffect, type QuorumPeerConfig } from '../../../src/core/zab/quorum-peer.js';
import { PEER_PROTOCOL_VERSION, type PeerMessage } from '../../../src/core/zab/messages.js';
import { makeZxid } from '../../../src/core/zab/zxid.js';
import { JuteWriter } from '../../../src/proto/jute.js';
import { decodePeerMessage, encodePeerMessage } from '../../../src/proto/peer-codec.js';

const cfg = (id: number): QuorumPeerConfig => ({
  id, voters: [1, 2, 3], observers: [], clusterId: 'prod', tickMs: 100, initLimit: 10, syncLimit: 5,
  electionFinalizeWaitMs: 10, electionResendMinMs: 50, electionResendMaxMs: 400, diffWindowTxns: 100,
});
const fresh = { acceptedEpoch: 0, currentEpoch: 0, snapshotZxid: 0n, log: [] };

/** A peer that has decided it leads (votes from 2 and 3 for it). */
function leader(): QuorumPeer {
  const p = new QuorumPeer(cfg(3), fresh);
  p.start(0);
  for (const from of [1, 2]) p.vote(from, { leader: 3, zxid: 0n, peerEpoch: 0, round: 1, state: 'looking' }, 1);
  p.drain();
  expect(p.peerState).toBe('leading');
  return p;
}

const sends = (effects: PeerEffect[]) => effects.filter((e): e is Extract<PeerEffect, { kind: 'send' }> => e.kind === 'send').map((e) => e.msg);

function info(over: Partial<Extract<PeerMessage, { type: 'followerInfo' }>> = {}): PeerMessage {
  return { type: 'followerInfo', serverId: 1, learnerType: 'participant', acceptedEpoch: 0, lastZxid: 0n, protocolVersion: PEER_PROTOCOL_VERSION, clusterId: 'prod', ...over };
}

describe('QuorumPeer handshake', () => {
  it.each([
    [{ clusterId: 'staging' }, /cluster "staging" is not this leader's cluster "prod"/],
    [{ protocolVersion: 99 }, /peer protocol version 99/],
    [{ serverId: 7 }, /server 7 is not a member/],
    [{ learnerType: 'observer' as const }, /configured as a participant, not a observer/],
  ])('refuses a learner with %o', (over, reason) => {
    const p = leader();
    const conn = p.accepted(2);
    p.message(conn, info(over), 3);
    const out = p.drain();
    const refused = sends(out).find((m) => m.type === 'refused');
    expect(refused?.type === 'refused' && refused.reason).toMatch(reason);
    expect(out.some((e) => e.kind === 'close' && e.conn === conn)).toBe(true);
  });

  it('answers a member of its cluster with its new epoch once a quorum has spoken', () => {
    const p = leader();
    const conn = p.accepted(2);
    p.message(conn, info({ acceptedEpoch: 4 }), 3);
    const out = p.drain();
    const persisted = out.find((e) => e.kind === 'persist');
    expect(persisted?.kind === 'persist' && persisted.op).toEqual({ kind: 'acceptedEpoch', epoch: 5 });
    expect(sends(out)).toEqual([]); // not before acceptedEpoch is durable
    p.persisted(persisted!.kind === 'persist' ? persisted.seq : 0);
    expect(sends(p.drain())).toEqual([{ type: 'leaderInfo', epoch: 5, protocolVersion: PEER_PROTOCOL_VERSION }]);
  });

  it('closes a learner that calls before it leads; the learner tries again', () => {
    const follower = new QuorumPeer(cfg(1), fresh);
    follower.start(0);
    follower.vote(3, { leader: 3, zxid: 0n, peerEpoch: 0, round: 1, state: 'looking' }, 1);
    follower.vote(2, { leader: 3, zxid: 0n, peerEpoch: 0, round: 1, state: 'looking' }, 1);
    follower.tick(100); // past the finalize wait
    const connect = follower.drain().find((e) => e.kind === 'connect');
    expect(connect?.kind === 'connect' && connect.peer).toBe(3);
    const notYet = new QuorumPeer(cfg(3), fresh); // still looking
    notYet.start(0);
    notYet.drain();
    const inbound = notYet.accepted(1);
    expect(notYet.drain()).toEqual([{ kind: 'close', conn: inbound }]);
    follower.disconnected(connect!.kind === 'connect' ? connect.conn : 0, 110);
    expect(follower.peerState).toBe('following'); // not back to looking
    follower.tick(200);
    expect(follower.drain().some((e) => e.kind === 'connect' && e.peer === 3)).toBe(true);
  });
});

/** Drains `p`, reporting every persist durable at once; returns what it sent and committed meanwhile. */
function settle(p: QuorumPeer): PeerEffect[] {
  const all: PeerEffect[] = [];
  for (let i = 0; i < 20; i++) {
    const out = p.drain();
    if (out.length === 0) break;
    all.push(...out);
    const last = out.filter((e) => e.kind === 'persist').pop();
    if (last?.kind === 'persist') p.persisted(last.seq);
  }
  return all;
}

/** Runs a learner's handshake with leader `p` up to and including its ACK of NEWLEADER. */
function join(p: QuorumPeer, serverId: number, now: number): { conn: number; effects: PeerEffect[] } {
  const conn = p.accepted(now);
  p.message(conn, info({ serverId }), now);
  const epochInfo = sends(settle(p)).find((m) => m.type === 'leaderInfo');
  const epoch = epochInfo?.type === 'leaderInfo' ? epochInfo.epoch : 1;
  p.message(conn, { type: 'ackEpoch', currentEpoch: 0, lastZxid: 0n }, now);
  const effects = settle(p);
  p.message(conn, { type: 'ack', zxid: makeZxid(epoch, 0) }, now);
  effects.push(...settle(p));
  return { conn, effects };
}

describe('QuorumPeer broadcast', () => {
  it('counts a rejoining follower\'s NEWLEADER ack for the outstanding proposals its sync carried', () => {
    // Leader 3 with follower 2; 2 goes silent (its link not closed yet) with a proposal outstanding;
    // 1 joins: the sync carries that proposal, and 1 acks it only through NEWLEADER. Before the fix
    // the proposal never committed and neither did anything after it: the quorum stalled.
    const p = leader();
    const two = join(p, 2, 2);
    expect(p.serving).toBe(true);
    const z = p.propose(Buffer.from('w1'), 3)!;
    settle(p); // durable on the leader: one ack of three
    expect(p.lastCommitted).toBe(0n);
    const one = join(p, 1, 4);
    const sent = sends(one.effects);
    expect(sent.some((m) => m.type === 'proposal' && m.zxid === z)).toBe(true);
    expect(p.lastCommitted).toBe(z);
    expect(one.effects.some((e) => e.kind === 'send' && e.conn === two.conn && e.msg.type === 'commit' && e.msg.zxid === z)).toBe(true);
    // And the quorum goes on: the next proposal commits with 1's ordinary ACK.
    const z2 = p.propose(Buffer.from('w2'), 5)!;
    settle(p);
    p.message(one.conn, { type: 'ack', zxid: z2 }, 5);
    settle(p);
    expect(p.lastCommitted).toBe(z2);
  });
});

describe('peer codec', () => {
  const z = makeZxid(5, 7);
  const samples: PeerMessage[] = [
    info({ lastZxid: makeZxid(0xffff_fffe, 0xffff_ffff) }),
    { type: 'leaderInfo', epoch: 6, protocolVersion: PEER_PROTOCOL_VERSION },
    { type: 'ackEpoch', currentEpoch: 5, lastZxid: z },
    { type: 'diff', zxid: z }, { type: 'trunc', zxid: z }, { type: 'snap', zxid: z, snapshot: Buffer.from('tree'), config: { version: z, voters: [1, 2, 3], observers: [9] } },
    { type: 'proposal', zxid: z, payload: Buffer.from([1, 2, 3]) }, { type: 'commit', zxid: z },
    { type: 'inform', zxid: z, payload: Buffer.from('x') }, { type: 'newLeader', zxid: makeZxid(6, 0) },
    { type: 'ack', zxid: z }, { type: 'upToDate', committed: z }, { type: 'ping' },
    { type: 'app', body: Buffer.from('body') }, { type: 'refused', reason: 'why' },
  ];

  it('round-trips every message, 64-bit zxids included', () => {
    for (const m of samples) {
      const w = new JuteWriter(64);
      encodePeerMessage(w, m);
      const frame = Buffer.from(w.toBuffer());
      expect(frame.readInt32BE(0)).toBe(frame.length - 4);
      expect(decodePeerMessage(frame.subarray(4))).toEqual(m);
    }
  });

  it('refuses an unknown type, a truncated body and trailing bytes', () => {
    const w = new JuteWriter(64);
    encodePeerMessage(w, { type: 'commit', zxid: z });
    const body = Buffer.from(w.toBuffer()).subarray(4);
    expect(() => decodePeerMessage(Buffer.from([0, 0, 0, 99]))).toThrow(/unknown peer message type 99/);
    expect(() => decodePeerMessage(body.subarray(0, body.length - 2))).toThrow(/truncated/);
    expect(() => decodePeerMessage(Buffer.concat([body, Buffer.from([0])]))).toThrow(/trailing/);
  });
});

describe('a follower', () => {
  /** A follower of 3 in epoch 1, through LEADERINFO; `durable` makes every persist durable at once. */
  function follower(durable: boolean): { p: QuorumPeer; conn: number; out: PeerEffect[] } {
    const p = new QuorumPeer(cfg(1), fresh);
    p.start(0);
    p.vote(3, { leader: 3, zxid: 0n, peerEpoch: 0, round: 1, state: 'looking' }, 1);
    p.vote(2, { leader: 3, zxid: 0n, peerEpoch: 0, round: 1, state: 'looking' }, 1);
    p.tick(100);
    const connect = p.drain().find((e) => e.kind === 'connect');
    const conn = connect!.kind === 'connect' ? connect.conn : -1;
    p.connected(conn, 101);
    p.drain();
    p.message(conn, { type: 'leaderInfo', epoch: 1, protocolVersion: PEER_PROTOCOL_VERSION }, 102);
    const out = p.drain();
    if (durable) for (const e of out) if (e.kind === 'persist') p.persisted(e.seq);
    return { p, conn, out: [...out, ...p.drain()] };
  }

  it('promises the new epoch (ACKEPOCH) only once its acceptedEpoch is durable', () => {
    const { p, out } = follower(false);
    const persisted = out.find((e) => e.kind === 'persist');
    expect(persisted?.kind === 'persist' && persisted.op).toEqual({ kind: 'acceptedEpoch', epoch: 1 });
    expect(sends(out)).toEqual([]);
    p.persisted(persisted!.kind === 'persist' ? persisted.seq : 0);
    expect(sends(p.drain()).map((m) => m.type)).toEqual(['ackEpoch']);
  });

  it('refuses a proposal that does not follow its log (ZOOKEEPER-4925): a protocol violation, nothing appended', () => {
    const { p, conn } = follower(true);
    p.message(conn, { type: 'diff', zxid: makeZxid(1, 1) }, 103);
    p.message(conn, { type: 'proposal', zxid: makeZxid(1, 1), payload: new Uint8Array([1]) }, 103);
    p.message(conn, { type: 'newLeader', zxid: makeZxid(1, 0) }, 103);
    p.message(conn, { type: 'upToDate', committed: 0n }, 104);
    p.drain();
    p.message(conn, { type: 'proposal', zxid: makeZxid(1, 3), payload: new Uint8Array([3]) }, 105);
    const out = p.drain();
    const v = out.find((e) => e.kind === 'violation');
    expect(v?.kind === 'violation' && v.reason).toMatch(/does not follow our last 0x100000001/);
    expect(out.some((e) => e.kind === 'persist' && e.op.kind === 'append')).toBe(false);
  });
});
