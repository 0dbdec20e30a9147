// ACL checks as ZooKeeper does them: an ACL entry grants its perms to an
// identity; a request passes when any entry with the needed bit matches one
// of the connection's identities (world:anyone matches all; super passes
// everything). Hashing is not done here: digests arrive already computed.
import type { ACL, Id } from '../../proto/zk-records.js';
import { Perm } from '../../proto/zk-constants.js';
import { ZK_LIMITS } from '../../limits.js';

export const OPEN_ACL_UNSAFE: ACL[] = [{ perms: Perm.ALL, id: { scheme: 'world', id: 'anyone' } }];
export const READ_ACL_UNSAFE: ACL[] = [{ perms: Perm.READ, id: { scheme: 'world', id: 'anyone' } }];

export const SUPER_ID: Id = { scheme: 'super', id: '' };

export function isSuper(ids: readonly Id[]): boolean {
  return ids.some((i) => i.scheme === 'super');
}

/** ip ACL ids: "a.b.c.d" or "a.b.c.d/bits". */
function ipMatches(aclId: string, clientIp: string): boolean {
  const [net, bitsText] = aclId.split('/');
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const a = ipv4ToInt(net);
  const b = ipv4ToInt(clientIp.replace(/^::ffff:/, ''));
  if (a === null || b === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  if (bits === 0) return true;
  const mask = bits === 32 ? 0xffffffff : ~((1 << (32 - bits)) - 1) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function ipv4ToInt(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v * 256) + n;
  }
  return v >>> 0;
}

function idMatches(auth: Id, entry: Id): boolean {
  if (auth.scheme !== entry.scheme) return false;
  if (auth.scheme === 'ip') return ipMatches(entry.id, auth.id);
  return auth.id === entry.id;
}

export function checkAcl(acl: readonly ACL[], perm: number, ids: readonly Id[], skipAcl: boolean): boolean {
  if (skipAcl) return true;
  if (isSuper(ids)) return true;
  if (acl.length === 0) return true;
  for (const entry of acl) {
    if ((entry.perms & perm) === 0) continue;
    if (entry.id.scheme === 'world' && entry.id.id === 'anyone') return true;
    for (const id of ids) if (idMatches(id, entry.id)) return true;
  }
  return false;
}

function validIdFor(scheme: string, id: string): boolean {
  switch (scheme) {
    case 'digest': return /^[^:]+:[^:]+$/.test(id) || id.split(':').length === 2;
    case 'ip': {
      const [net, bits] = id.split('/');
      return ipv4ToInt(net) !== null && (bits === undefined || /^\d{1,2}$/.test(bits) && Number(bits) <= 32);
    }
    case 'world': return id === 'anyone';
    // ZooKeeper's X509AuthenticationProvider takes any subject name.
    case 'x509': return id.length > 0;
    case 'super': return true;
    default: return false;
  }
}

/**
 * fixupACL: drop duplicates, expand "auth" into the connection's
 * authenticated ids, refuse an empty list or an unknown scheme. Returns null
 * when the list is invalid (INVALIDACL).
 */
export function fixupAcl(acl: readonly ACL[], ids: readonly Id[]): ACL[] | null {
  const uniq: ACL[] = [];
  for (const a of acl) {
    if (!uniq.some((u) => u.perms === a.perms && u.id.scheme === a.id.scheme && u.id.id === a.id.id)) uniq.push(a);
  }
  if (uniq.length === 0) return null;
  const out: ACL[] = [];
  for (const a of uniq) {
    if (a.id.scheme === 'world' && a.id.id === 'anyone') {
      out.push(a);
    } else if (a.id.scheme === 'auth') {
      let any = false;
      for (const cid of ids) {
        // Only identities that come from authentication count, not ip/world.
        if (cid.scheme === 'digest' || cid.scheme === 'super' || cid.scheme === 'x509') {
          any = true;
          out.push({ perms: a.perms, id: { scheme: cid.scheme, id: cid.id } });
        }
      }
      if (!any) return null;
    } else {
      if (!validIdFor(a.id.scheme, a.id.id)) return null;
      out.push(a);
    }
  }
  // "auth" multiplies entries by the caller's identities: bound the result, or a
  // small request could make a huge node ACL (and huge getACL replies).
  if (out.length > ZK_LIMITS.acl_entries_max || aclBytes(out) > ZK_LIMITS.acl_bytes_max) return null;
  return out;
}

export function aclBytes(acl: readonly ACL[]): number {
  let n = 4;
  for (const a of acl) n += 12 + a.id.scheme.length + a.id.id.length * 3;
  return n;
}

/** getACL for a caller without ADMIN: digest hashes are hidden (CVE-2019-0201). */
export function redactDigests(acl: readonly ACL[]): ACL[] {
  return acl.map((a) => (a.id.scheme === 'digest' ? { perms: a.perms, id: { scheme: 'digest', id: a.id.id.replace(/:.*/, ':x') } } : a));
}
