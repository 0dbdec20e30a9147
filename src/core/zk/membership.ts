// A quorum's membership as ZooKeeper writes it in /zookeeper/config, in a
// dynamic config file and in a reconfig request:
//   server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]
// one per line (or comma-separated in a request), then version=<hex>. Pure:
// parsing and the reconfig arithmetic, errors as messages naming the entry.

export interface MemberLine {
  id: number;
  host: string;
  peerPort: number;
  electionPort: number;
  role: 'participant' | 'observer';
  clientHost?: string;
  clientPort?: number;
}

export interface Membership { version: bigint; members: Map<number, MemberLine> }

const SERVER_RE = /^server\.(\d{1,3})=([^:;=\s]+):(\d{1,5}):(\d{1,5})(?::(participant|observer))?(?:;(?:([^:;\s]+):)?(\d{1,5}))?$/;

function port(text: string, what: string, entry: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${what} ${text} in "${entry}" is not a port (1-65535)`);
  return n;
}

/** One `server.N=...` entry; throws with a message naming it when it is malformed. */
export function parseMemberLine(entry: string): MemberLine {
  const m = SERVER_RE.exec(entry.trim());
  if (m === null) throw new Error(`"${entry.trim()}" is not server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]`);
  const id = Number(m[1]);
  if (id < 1 || id > 255) throw new Error(`server id ${id} in "${entry.trim()}" is out of range (1-255)`);
  const line: MemberLine = { id, host: m[2], peerPort: port(m[3], 'peer port', entry), electionPort: port(m[4], 'election port', entry), role: (m[5] as MemberLine['role'] | undefined) ?? 'participant' };
  if (m[7] !== undefined) {
    line.clientPort = port(m[7], 'client port', entry);
    line.clientHost = m[6] ?? '0.0.0.0';
  }
  return line;
}

export function formatMemberLine(s: MemberLine): string {
  const client = s.clientPort !== undefined ? `;${s.clientHost ?? '0.0.0.0'}:${s.clientPort}` : '';
  return `server.${s.id}=${s.host}:${s.peerPort}:${s.electionPort}:${s.role}${client}`;
}

export function formatMembership(m: Membership): string {
  return [...[...m.members.values()].sort((a, b) => a.id - b.id).map(formatMemberLine), `version=${m.version.toString(16)}`].join('\n');
}

/** The text of /zookeeper/config (or a dynamic config file); null when empty (a standalone server). */
export function parseMembership(text: string): Membership | null {
  const members = new Map<number, MemberLine>();
  let version = 0n;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('version=')) {
      const v = line.slice('version='.length);
      if (!/^[0-9a-fA-F]{1,16}$/.test(v)) throw new Error(`"${line}" is not version=<hex>`);
      version = BigInt(`0x${v}`);
      continue;
    }
    const m = parseMemberLine(line);
    if (members.has(m.id)) throw new Error(`server.${m.id} appears twice`);
    members.set(m.id, m);
  }
  return members.size === 0 ? null : { version, members };
}

export function votersOf(m: Membership): number[] { return [...m.members.values()].filter((s) => s.role === 'participant').map((s) => s.id).sort((a, b) => a - b); }
export function observersOf(m: Membership): number[] { return [...m.members.values()].filter((s) => s.role === 'observer').map((s) => s.id).sort((a, b) => a - b); }

/** What a reconfig request asks: the whole new membership (-members) or changes (-add / -remove). */
export function applyReconfig(current: Membership, req: { joiningServers: string; leavingServers: string; newMembers: string }): Map<number, MemberLine> {
  const entries = (s: string) => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (req.newMembers.trim() !== '') {
    if (req.joiningServers.trim() !== '' || req.leavingServers.trim() !== '') throw new Error('give the new members, or servers to add and remove, not both');
    const next = new Map<number, MemberLine>();
    for (const e of entries(req.newMembers)) {
      const m = parseMemberLine(e);
      if (next.has(m.id)) throw new Error(`server.${m.id} appears twice`);
      next.set(m.id, m);
    }
    return next;
  }
  const next = new Map(current.members);
  for (const e of entries(req.leavingServers)) {
    const id = Number(e);
    if (!Number.isInteger(id) || !next.has(id)) throw new Error(`cannot remove "${e}": not a server id of the membership`);
    next.delete(id);
  }
  for (const e of entries(req.joiningServers)) {
    const m = parseMemberLine(e);
    next.set(m.id, m);
  }
  return next;
}
