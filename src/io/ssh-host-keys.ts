// SSH host keys: known_hosts parsing (plain, hashed, @revoked), OpenSSH's
// fingerprints, and the check of a presented key against a pin. Shared by
// fencing and `quorate cluster`; an unknown or changed key is never accepted.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerHostKeyAlgorithm } from 'ssh2';

/** The fingerprint OpenSSH prints for a key blob (ssh-keygen -lf): "SHA256:" + unpadded base64 of its SHA-256. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** "SHA256:abc" with or without base64 padding, compared the way OpenSSH prints it. */
export function normalizeFingerprint(fp: string): string {
  return fp.trim().replace(/=+$/, '');
}

/** The key type named inside a key blob (its first SSH string), or null if the blob is malformed. */
export function keyBlobType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return null;
  return blob.subarray(4, 4 + n).toString('latin1');
}

export interface KnownHostEntry {
  /** Line number in the file (1-based). */
  line: number;
  marker: 'revoked' | 'cert-authority' | null;
  /** Comma-separated host patterns ("host", "[host]:port", wildcards, "!negated"), or null for a hashed entry. */
  patterns: string[] | null;
  /** A hashed entry (|1|salt|hash): HMAC-SHA1 of the host name keyed by the salt. */
  hashed: { salt: Buffer; hash: Buffer } | null;
  keyType: string;
  keyBlob: Buffer;
}

/** Parses a known_hosts file; lines it cannot read are listed in `skipped` (with their line numbers), not thrown. */
export function parseKnownHosts(text: string): { entries: KnownHostEntry[]; skipped: string[] } {
  const entries: KnownHostEntry[] = [];
  const skipped: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'] = null;
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else { skipped.push(`line ${i + 1}: unknown marker ${m}`); continue; }
    }
    if (fields.length < 3) { skipped.push(`line ${i + 1}: expected "hosts keytype base64-key"`); continue; }
    const [hosts, keyType, b64] = fields;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) { skipped.push(`line ${i + 1}: the key is not base64`); continue; }
    const keyBlob = Buffer.from(b64, 'base64');
    if (keyBlobType(keyBlob) !== keyType) { skipped.push(`line ${i + 1}: the key does not match its type ${keyType}`); continue; }
    let patterns: string[] | null = null;
    let hashed: KnownHostEntry['hashed'] = null;
    if (hosts.startsWith('|1|')) {
      const parts = hosts.split('|');
      if (parts.length !== 4 || parts[2] === '' || parts[3] === '') { skipped.push(`line ${i + 1}: malformed hashed host name`); continue; }
      hashed = { salt: Buffer.from(parts[2], 'base64'), hash: Buffer.from(parts[3], 'base64') };
    } else if (hosts.startsWith('|')) {
      skipped.push(`line ${i + 1}: unsupported hashed host name format`);
      continue;
    } else {
      patterns = hosts.split(',').filter((p) => p !== '');
    }
    entries.push({ line: i + 1, marker, patterns, hashed, keyType, keyBlob });
  }
  return { entries, skipped };
}

/** The name OpenSSH looks a host up by: "host" on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
  return re.test(name);
}

/** Whether a known_hosts entry names this host (OpenSSH's rules: any positive pattern, and no negated one). */
export function entryMatchesHost(e: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (e.hashed !== null) {
    const h = createHmac('sha1', e.hashed.salt).update(name).digest();
    return h.length === e.hashed.hash.length && timingSafeEqual(h, e.hashed.hash);
  }
  let hit = false;
  for (const p of e.patterns ?? []) {
    if (p.startsWith('!')) { if (globMatch(p.slice(1), name)) return false; } else if (globMatch(p, name)) hit = true;
  }
  return hit;
}

/** The host key algorithms to offer for pinned key types, so the server presents a key we know. */
export function hostKeyAlgorithmsFor(keyTypes: Iterable<string>): ServerHostKeyAlgorithm[] {
  const out: ServerHostKeyAlgorithm[] = [];
  const add = (...a: ServerHostKeyAlgorithm[]) => { for (const x of a) if (!out.includes(x)) out.push(x); };
  for (const t of keyTypes) {
    if (t === 'ssh-ed25519' || t === 'ecdsa-sha2-nistp256' || t === 'ecdsa-sha2-nistp384' || t === 'ecdsa-sha2-nistp521' || t === 'ssh-dss') add(t);
    else if (t === 'ssh-rsa') add('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
  }
  return out;
}

/** How a presented host key is judged: against known_hosts entries for the host, or against a fingerprint. */
export type HostKeyPin =
  | { kind: 'known_hosts'; file: string; keys: KnownHostEntry[]; revoked: KnownHostEntry[] }
  | { kind: 'fingerprint'; fingerprint: string };

/** null when the key is accepted, else why not (one sentence ending in "refusing to fence over ssh"). */
export function checkHostKey(pin: HostKeyPin, key: Buffer, where: string, refusing = 'refusing to fence over ssh'): string | null {
  const fp = sshFingerprint(key);
  if (pin.kind === 'fingerprint') {
    if (normalizeFingerprint(pin.fingerprint) === fp) return null;
    return `host key of ${where} does not match the pinned fingerprint ${normalizeFingerprint(pin.fingerprint)} (got ${keyBlobType(key) ?? 'key'} ${fp}): ${refusing}`;
  }
  if (pin.revoked.some((e) => e.keyBlob.equals(key))) return `host key of ${where} (${fp}) is marked @revoked in ${pin.file}: ${refusing}`;
  if (pin.keys.some((e) => e.keyBlob.equals(key))) return null;
  return `host key of ${where} does not match the pinned known_hosts entry (got ${keyBlobType(key) ?? 'key'} ${fp}; ${pin.file} line ${pin.keys.map((e) => e.line).join(', ')}): ${refusing}`;
}

/** The pinned keys for a host from a known_hosts file's text, or why there are none. */
export function pinFromKnownHosts(text: string, file: string, host: string, port: number, refusing = 'refusing to fence over ssh'): { ok: true; pin: HostKeyPin & { kind: 'known_hosts' } } | { ok: false; reason: string } {
  const { entries, skipped } = parseKnownHosts(text);
  const mine = entries.filter((e) => entryMatchesHost(e, host, port));
  const keys = mine.filter((e) => e.marker === null);
  const revoked = mine.filter((e) => e.marker === 'revoked');
  if (keys.length === 0) {
    const notes = [
      ...(mine.some((e) => e.marker === 'cert-authority') ? ['@cert-authority entries are not supported'] : []),
      ...(skipped.length > 0 ? [`unreadable lines: ${skipped.slice(0, 3).join('; ')}`] : []),
    ];
    return { ok: false, reason: `no known_hosts entry for ${knownHostsName(host, port)} in ${file}${notes.length ? ` (${notes.join('; ')})` : ''}: an unknown host key is never accepted, ${refusing}` };
  }
  return { ok: true, pin: { kind: 'known_hosts', file, keys, revoked } };
}

