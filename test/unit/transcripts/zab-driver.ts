// Runs transcript commands against one QuorumPeer (src/core/zab), one peer per
// file: the script plays the other servers by hand (their votes, their
// connections and messages) and the disk (persisted). Commands:
//
//   new id=<n> voters=1,2,3 [observers= cluster=prod tickMs=100 initLimit=10 syncLimit=5
//       finalizeWaitMs=10 resendMinMs=50 resendMaxMs=400 diffWindow=100 acceptedEpoch=0
//       currentEpoch=0 snapshot=0x0 log=<zxid>:<payload>,... at=0]
//   at <ms>                          the clock (never backwards); no step
//   start                            starts looking
//   tick [<ms>]
//   vote from=<id> leader=<id> zxid=<zxid> peerEpoch=<n> round=<n> state=looking|following|leading|observing [config=<c>]
//   accept                           an inbound peer connection: prints its conn id
//   connected conn=<c> | disconnected conn=<c>
//   recv conn=<c> <TYPE> <fields>    a peer message, fields as `send` prints them (FOLLOWERINFO's
//                                    protocolVersion and clusterId default to ours)
//   persisted <seq>                  storage ops up to <seq> are durable
//   propose <payload>                prints the zxid (or null)
//   status                           learners as the leader sees them, the log (no step)
//
// Each step prints every effect, in order: vote, connect, send <TYPE> <fields>, close,
// persist seq=<n> <op> <fields>, commit, installSnapshot, app, state, violation, config;
// then the peer's line: -> <state> serving= leader= acceptedEpoch= currentEpoch= last= committed=.
// A membership prints as <version>/<voters>/<observers> (`-`: none). Payloads print as text when
// printable, else hex:<bytes>.
import { QuorumPeer, type PeerEffect, type QuorumPeerConfig } from '../../../src/core/zab/quorum-peer.js';
import { PEER_PROTOCOL_VERSION, type Notification, type PeerMessage, type PeerState } from '../../../src/core/zab/messages.js';
import type { ClusterConfig } from '../../../src/core/zab/peer-context.js';
import { hexZxid } from '../../../src/core/zab/zxid.js';
import { big, type Command, type Driver, fmtValue, int, need, onlyKeys, parseBytes } from './datadriven.js';

type Kind = 'num' | 'big' | 'str' | 'bytes' | 'config';

/** Each message type's name as ZooKeeper spells it, and its fields in the order they print. */
const MESSAGES: Record<string, { type: PeerMessage['type']; fields: [string, Kind, 'optional'?][] }> = {
  FOLLOWERINFO: { type: 'followerInfo', fields: [['serverId', 'num'], ['learnerType', 'str'], ['acceptedEpoch', 'num'], ['lastZxid', 'big'], ['protocolVersion', 'num'], ['clusterId', 'str']] },
  LEADERINFO: { type: 'leaderInfo', fields: [['epoch', 'num'], ['protocolVersion', 'num']] },
  ACKEPOCH: { type: 'ackEpoch', fields: [['currentEpoch', 'num'], ['lastZxid', 'big']] },
  DIFF: { type: 'diff', fields: [['zxid', 'big']] },
  TRUNC: { type: 'trunc', fields: [['zxid', 'big']] },
  SNAP: { type: 'snap', fields: [['zxid', 'big'], ['snapshot', 'bytes', 'optional'], ['config', 'config']] },
  PROPOSAL: { type: 'proposal', fields: [['zxid', 'big'], ['payload', 'bytes']] },
  COMMIT: { type: 'commit', fields: [['zxid', 'big']] },
  INFORM: { type: 'inform', fields: [['zxid', 'big'], ['payload', 'bytes']] },
  NEWLEADER: { type: 'newLeader', fields: [['zxid', 'big']] },
  ACK: { type: 'ack', fields: [['zxid', 'big']] },
  UPTODATE: { type: 'upToDate', fields: [['committed', 'big']] },
  PING: { type: 'ping', fields: [] },
  APP: { type: 'app', fields: [['body', 'bytes']] },
  REFUSED: { type: 'refused', fields: [['reason', 'str']] },
};
const NAME_OF = new Map(Object.entries(MESSAGES).map(([name, m]) => [m.type as string, name]));

export function fmtConfig(c: { version: bigint; voters: readonly number[]; observers: readonly number[] }): string {
  return `${hexZxid(c.version)}/${c.voters.join(',') || '-'}/${c.observers.join(',') || '-'}`;
}

function parseConfig(s: string): ClusterConfig {
  const parts = s.split('/');
  const ids = (p: string) => (p === '-' || p === '' ? [] : p.split(',').map((x) => int(x, 'server id')));
  if (parts.length !== 3) throw new Error(`config "${s}" is not <version>/<voters>/<observers>`);
  return { version: big(parts[0], 'config version'), voters: ids(parts[1]), observers: ids(parts[2]) };
}

/** Every field, `config` as a membership; in the object's order. */
function fields(o: Record<string, unknown>, skip: readonly string[]): string {
  return Object.entries(o).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `${k}=${k === 'config' && v !== undefined ? fmtConfig(v as ClusterConfig) : fmtValue(v)}`).join(' ');
}

const join = (...parts: string[]) => parts.filter((p) => p !== '').join(' ');

export function fmtMessage(m: PeerMessage): string {
  const spec = MESSAGES[NAME_OF.get(m.type) ?? ''];
  const o = m as unknown as Record<string, unknown>;
  if (spec === undefined) return join(`?${m.type}`, fields(o, ['type']));
  // The table's order; any field the table does not know still prints, after.
  const known = spec.fields.map(([k]) => k);
  const ordered: Record<string, unknown> = {};
  for (const k of known) if (k in o) ordered[k] = o[k];
  for (const k of Object.keys(o)) if (k !== 'type' && !known.includes(k)) ordered[k] = o[k];
  return join(NAME_OF.get(m.type)!, fields(ordered, []));
}

export function fmtPeerEffect(e: PeerEffect): string {
  switch (e.kind) {
    case 'vote': return join(`vote to=${e.to}`, fields(e.n as unknown as Record<string, unknown>, []));
    case 'send': return `send conn=${e.conn} ${fmtMessage(e.msg)}`;
    case 'persist': return join(`persist seq=${e.seq} ${e.op.kind}`, fields(e.op as unknown as Record<string, unknown>, ['kind']));
    case 'state': return join(`state ${e.state}`, fields(e as unknown as Record<string, unknown>, ['kind', 'state']));
    case 'config': return `config ${fmtConfig(e.config)}`;
    default: return join(e.kind, fields(e as unknown as Record<string, unknown>, ['kind']));
  }
}

function parseLog(s: string): { zxid: bigint; payload: Uint8Array }[] {
  if (s === '' || s === '-') return [];
  return s.split(',').map((part) => {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`log entry "${part}" is not <zxid>:<payload>`);
    return { zxid: big(part.slice(0, i), 'log zxid'), payload: parseBytes(part.slice(i + 1)) };
  });
}

const ids = (s: string | undefined): number[] => (s === undefined || s === '' || s === '-' ? [] : s.split(',').map((x) => int(x, 'server id')));

export class ZabDriver implements Driver {
  private peer: QuorumPeer | null = null;
  private now = 0;

  run(cmd: Command): string[] {
    if (cmd.name === 'new') return this.create(cmd);
    const p = this.peer;
    if (p === null) throw new Error('no peer yet: start the file with `new`');
    const pos = cmd.positional;
    const lead: string[] = [];
    switch (cmd.name) {
      case 'at': onlyKeys(cmd, []); this.setTime(pos[0]); return [];
      case 'status':
        onlyKeys(cmd, []);
        return [
          `learners: ${p.learners.map((l) => `${l.id}:${l.type}:${l.phase}`).join(' ') || 'none'}`,
          `log: base=${hexZxid(p.log.base)} ${p.log.range(p.log.base).map((e) => `${hexZxid(e.zxid)}:${fmtValue(e.payload)}`).join(',') || '(empty)'}`,
          `config: ${fmtConfig(p.activeConfig)}${p.pendingConfig === null ? '' : ` pending ${fmtConfig(p.pendingConfig)}`}`,
        ];
      case 'start': onlyKeys(cmd, []); p.start(this.now); break;
      case 'tick': onlyKeys(cmd, []); if (pos.length > 0) this.setTime(pos[0]); p.tick(this.now); break;
      case 'vote': {
        onlyKeys(cmd, ['from', 'leader', 'zxid', 'peerEpoch', 'round', 'state', 'config']);
        const state = need(cmd, 'state');
        if (!['looking', 'following', 'leading', 'observing'].includes(state)) throw new Error(`state ${state}?`);
        const n: Notification = {
          leader: int(need(cmd, 'leader'), 'leader'), zxid: big(need(cmd, 'zxid'), 'zxid'), peerEpoch: int(need(cmd, 'peerEpoch'), 'peerEpoch'),
          round: int(need(cmd, 'round'), 'round'), state: state as PeerState,
        };
        if (cmd.kv.has('config')) n.config = parseConfig(cmd.kv.get('config')!);
        p.vote(int(need(cmd, 'from'), 'from'), n, this.now);
        break;
      }
      case 'accept': onlyKeys(cmd, []); lead.push(`conn ${p.accepted(this.now)}`); break;
      case 'connected': onlyKeys(cmd, ['conn']); p.connected(int(need(cmd, 'conn'), 'conn'), this.now); break;
      case 'disconnected': onlyKeys(cmd, ['conn']); p.disconnected(int(need(cmd, 'conn'), 'conn'), this.now); break;
      case 'recv': p.message(int(need(cmd, 'conn'), 'conn'), this.message(cmd), this.now); break;
      case 'persisted': onlyKeys(cmd, []); p.persisted(int(pos[0] ?? '', 'persisted')); break;
      case 'propose': {
        onlyKeys(cmd, []);
        if (pos.length !== 1) throw new Error('propose <payload>');
        const z = p.propose(parseBytes(pos[0]), this.now);
        lead.push(`zxid ${z === null ? 'null' : hexZxid(z)}`);
        break;
      }
      default: throw new Error(`unknown command ${cmd.name}`);
    }
    return [...lead, ...p.drain().map(fmtPeerEffect), this.stateLine()];
  }

  private create(cmd: Command): string[] {
    if (this.peer !== null) throw new Error('one peer per file');
    onlyKeys(cmd, ['id', 'voters', 'observers', 'cluster', 'tickMs', 'initLimit', 'syncLimit', 'finalizeWaitMs', 'resendMinMs', 'resendMaxMs',
      'diffWindow', 'acceptedEpoch', 'currentEpoch', 'snapshot', 'log', 'at']);
    const n = (k: string, d: number) => (cmd.kv.has(k) ? int(cmd.kv.get(k)!, k) : d);
    const cfg: QuorumPeerConfig = {
      id: int(need(cmd, 'id'), 'id'), voters: ids(need(cmd, 'voters')), observers: ids(cmd.kv.get('observers')), clusterId: cmd.kv.get('cluster') ?? 'prod',
      tickMs: n('tickMs', 100), initLimit: n('initLimit', 10), syncLimit: n('syncLimit', 5),
      electionFinalizeWaitMs: n('finalizeWaitMs', 10), electionResendMinMs: n('resendMinMs', 50), electionResendMaxMs: n('resendMaxMs', 400),
      diffWindowTxns: n('diffWindow', 100),
    };
    this.now = n('at', 0);
    this.peer = new QuorumPeer(cfg, {
      acceptedEpoch: n('acceptedEpoch', 0), currentEpoch: n('currentEpoch', 0),
      snapshotZxid: cmd.kv.has('snapshot') ? big(cmd.kv.get('snapshot')!, 'snapshot') : 0n, log: parseLog(cmd.kv.get('log') ?? ''),
    });
    return [`config ${fields(cfg as unknown as Record<string, unknown>, [])}`, ...this.peer.drain().map(fmtPeerEffect), this.stateLine()];
  }

  private message(cmd: Command): PeerMessage {
    const [name, ...extra] = cmd.positional;
    const spec = MESSAGES[name ?? ''];
    if (spec === undefined) throw new Error(`recv: message type "${name}" is not one of ${Object.keys(MESSAGES).join(' ')}`);
    if (extra.length > 0) throw new Error(`recv: unexpected words ${extra.join(' ')}`);
    const o: Record<string, unknown> = { type: spec.type };
    if (spec.type === 'followerInfo') {
      o.protocolVersion = PEER_PROTOCOL_VERSION;
      o.clusterId = this.peer!.cfg.clusterId;
    }
    onlyKeys(cmd, ['conn', ...spec.fields.map(([k]) => k)]);
    for (const [k, kind, optional] of spec.fields) {
      const v = cmd.kv.get(k);
      if (v === undefined) {
        if (optional !== undefined || k in o) continue;
        throw new Error(`recv ${name}: ${k}= is required`);
      }
      o[k] = kind === 'num' ? int(v, k) : kind === 'big' ? big(v, k) : kind === 'bytes' ? parseBytes(v) : kind === 'config' ? parseConfig(v) : v;
    }
    return o as unknown as PeerMessage;
  }

  private setTime(s: string | undefined): void {
    if (s === undefined) throw new Error('at: which time?');
    const t = int(s, 'time');
    if (t < this.now) throw new Error(`the clock goes back: ${t} < ${this.now}`);
    this.now = t;
  }

  private stateLine(): string {
    const p = this.peer!;
    return `-> ${p.peerState} serving=${p.serving} leader=${p.leaderId ?? 'none'} acceptedEpoch=${p.acceptedEpoch} currentEpoch=${p.currentEpoch} last=${hexZxid(p.log.last)} committed=${hexZxid(p.lastCommitted)}`;
  }
}
