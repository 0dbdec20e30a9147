// zkCli's text formats, so operators read `quorate zk` output as they read
// zkCli.sh's: stat fields, ACL lists, perms letters.
import { Perm } from '../proto/zk-constants.js';
import type { ACL, Stat } from '../proto/zk-records.js';
import { UsageError } from './errors.js';

const hex = (n: bigint) => '0x' + BigInt.asUintN(64, n).toString(16);

export function formatStat(s: Stat): string {
  return [
    `cZxid = ${hex(s.czxid)}`,
    `ctime = ${new Date(Number(s.ctime)).toUTCString()}`,
    `mZxid = ${hex(s.mzxid)}`,
    `mtime = ${new Date(Number(s.mtime)).toUTCString()}`,
    `pZxid = ${hex(s.pzxid)}`,
    `cversion = ${s.cversion}`,
    `dataVersion = ${s.version}`,
    `aclVersion = ${s.aversion}`,
    `ephemeralOwner = ${hex(s.ephemeralOwner)}`,
    `dataLength = ${s.dataLength}`,
    `numChildren = ${s.numChildren}`,
  ].join('\n');
}

const LETTERS: [string, number][] = [['c', Perm.CREATE], ['d', Perm.DELETE], ['r', Perm.READ], ['w', Perm.WRITE], ['a', Perm.ADMIN]];

export function permsToLetters(perms: number): string {
  return LETTERS.filter(([, bit]) => (perms & bit) !== 0).map(([l]) => l).join('');
}

export function lettersToPerms(letters: string, context: string): number {
  let perms = 0;
  for (const ch of letters) {
    const bit = LETTERS.find(([l]) => l === ch)?.[1];
    if (bit === undefined) throw new UsageError(`${context}: unknown permission "${ch}" (use letters of cdrwa)`);
    perms |= bit;
  }
  return perms;
}

export function formatAcl(acl: ACL[]): string {
  return acl.map((a) => `'${a.id.scheme},'${a.id.id}\n: ${permsToLetters(a.perms)}`).join('\n');
}

/**
 * zkCli's ACL syntax: comma-separated scheme:id:perms, where the id may hold
 * colons (digest:user:hash:cdrwa), and "auth:user:pw:perms" or "auth::perms"
 * mean the caller's own identities.
 */
export function parseAcl(text: string): ACL[] {
  const out: ACL[] = [];
  for (const part of text.split(',')) {
    const first = part.indexOf(':');
    const last = part.lastIndexOf(':');
    if (first < 0 || last === first) throw new UsageError(`ACL "${part}": expected scheme:id:perms, e.g. world:anyone:cdrwa or digest:user:hash:cdrwa`);
    const scheme = part.slice(0, first);
    let id = part.slice(first + 1, last);
    if (scheme === 'auth') id = '';
    out.push({ perms: lettersToPerms(part.slice(last + 1), `ACL "${part}"`), id: { scheme, id } });
  }
  return out;
}
