// The ssh fencing method: log in to the old active's host with a key (ssh2),
// run a command there (by default: kill whatever listens on the service's
// port), and count it only once the port is verified closed. Unlike Hadoop's
// sshfence, which turns host key checking off, the server's host key must
// match a pinned known_hosts entry or SHA256 fingerprint: an unknown or
// changed key refuses the fence (a wrong host must never be "fenced" in the
// belief that the old active is gone). The private key is read at fencing
// time and never logged.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { Algorithms, ClientErrorExtensions, ServerHostKeyAlgorithm } from 'ssh2';
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { verifyDown, type FenceOutcome } from './fencing.js';

export type SshFenceConfig = Extract<FenceConfig, { kind: 'ssh' }>;

const OUTPUT_MAX = 8 * 1024;

/**
 * Kills every process listening on TCP port $QUORATE_TARGET_PORT (ss from
 * iproute2, kill -9). Exit 0 when it killed them or nothing listens; non-zero
 * when it cannot see or kill them. Verification (the port closed) follows.
 */
export const DEFAULT_SSH_FENCE_COMMAND = [
  'P="$QUORATE_TARGET_PORT"',
  'command -v ss >/dev/null 2>&1 || { echo "ss (iproute2) is not installed" >&2; exit 127; }',
  'L=$(ss -Htlnp "sport = :$P") || exit $?',
  'if [ -z "$L" ]; then echo "nothing listens on port $P"; exit 0; fi',
  'PIDS=$(printf "%s\\n" "$L" | grep -o "pid=[0-9]*" | cut -d= -f2 | sort -u)',
  'if [ -z "$PIDS" ]; then echo "port $P is in use but its process is not visible to $(id -un)" >&2; exit 1; fi',
  'kill -9 $PIDS && echo "killed" $PIDS "(port $P)"',
].join('; ');

// ---- host keys ------------------------------------------------------------------

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
export function checkHostKey(pin: HostKeyPin, key: Buffer, where: string): string | null {
  const fp = sshFingerprint(key);
  if (pin.kind === 'fingerprint') {
    if (normalizeFingerprint(pin.fingerprint) === fp) return null;
    return `host key of ${where} does not match the pinned fingerprint ${normalizeFingerprint(pin.fingerprint)} (got ${keyBlobType(key) ?? 'key'} ${fp}): refusing to fence over ssh`;
  }
  if (pin.revoked.some((e) => e.keyBlob.equals(key))) return `host key of ${where} (${fp}) is marked @revoked in ${pin.file}: refusing to fence over ssh`;
  if (pin.keys.some((e) => e.keyBlob.equals(key))) return null;
  return `host key of ${where} does not match the pinned known_hosts entry (got ${keyBlobType(key) ?? 'key'} ${fp}; ${pin.file} line ${pin.keys.map((e) => e.line).join(', ')}): refusing to fence over ssh`;
}

/** The pinned keys for a host from a known_hosts file's text, or why there are none. */
export function pinFromKnownHosts(text: string, file: string, host: string, port: number): { ok: true; pin: HostKeyPin & { kind: 'known_hosts' } } | { ok: false; reason: string } {
  const { entries, skipped } = parseKnownHosts(text);
  const mine = entries.filter((e) => entryMatchesHost(e, host, port));
  const keys = mine.filter((e) => e.marker === null);
  const revoked = mine.filter((e) => e.marker === 'revoked');
  if (keys.length === 0) {
    const notes = [
      ...(mine.some((e) => e.marker === 'cert-authority') ? ['@cert-authority entries are not supported'] : []),
      ...(skipped.length > 0 ? [`unreadable lines: ${skipped.slice(0, 3).join('; ')}`] : []),
    ];
    return { ok: false, reason: `no known_hosts entry for ${knownHostsName(host, port)} in ${file}${notes.length ? ` (${notes.join('; ')})` : ''}: an unknown host key is never accepted, refusing to fence over ssh` };
  }
  return { ok: true, pin: { kind: 'known_hosts', file, keys, revoked } };
}

// ---- the command ------------------------------------------------------------------

/** Single-quoted for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line sent to sshd: the target described in exported shell
 * variables (sshd usually refuses client environment variables), then the
 * command. Assumes a POSIX login shell for the user.
 */
export function remoteCommand(target: InstanceConfig, cfg: SshFenceConfig, token: string, service: string): string {
  const env: [string, string][] = [
    ['QUORATE_TARGET_INSTANCE', target.id],
    ['QUORATE_TARGET_HOST', target.host],
    ['QUORATE_TARGET_PORT', target.servicePort === null ? '' : String(target.servicePort)],
    ['QUORATE_TARGET_ADMIN_PORT', String(target.adminPort)],
    ['QUORATE_FENCING_TOKEN', token],
    ['QUORATE_SERVICE', service],
  ];
  return `export ${env.map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')}; ${cfg.command ?? DEFAULT_SSH_FENCE_COMMAND}`;
}

function lastLine(s: string): string {
  return s.trim().split('\n').at(-1)?.slice(0, 200) ?? '';
}

// ---- fencing ------------------------------------------------------------------------

/**
 * Fence `target` over ssh: pinned host key, key authentication, the command's exit status 0,
 * then verifyDown (the service port closed, or the service back as standby). Never throws.
 * The timeout covers connecting, authenticating and the command; the connection is closed at it.
 */
export async function fenceBySsh(target: InstanceConfig, cfg: SshFenceConfig, token: string, service = ''): Promise<FenceOutcome> {
  const where = `${target.host}:${cfg.port}`;
  const who = `${cfg.user}@${where}`;
  const fail = (reason: string): FenceOutcome => ({ ok: false, reason: `ssh: ${reason}` });
  if (cfg.command === null && target.servicePort === null) {
    return fail(`no command configured and instance ${target.id} has no servicePort for the default one (kill what listens on it)`);
  }

  let privateKey: Buffer;
  try {
    privateKey = await readFile(cfg.keyFile);
  } catch (e) {
    return fail(`cannot read the private key ${cfg.keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) return fail(`cannot use the private key ${cfg.keyFile}: ${parsed.message}`);
  if (Array.isArray(parsed) && parsed.length === 0) return fail(`cannot use the private key ${cfg.keyFile}: it holds no key`);

  let pin: HostKeyPin;
  const algorithms: Algorithms = {};
  if (cfg.knownHosts !== null) {
    let text: string;
    try {
      text = await readFile(cfg.knownHosts, 'utf8');
    } catch (e) {
      return fail(`cannot read the known_hosts file ${cfg.knownHosts}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: refusing to fence over ssh`);
    }
    const p = pinFromKnownHosts(text, cfg.knownHosts, target.host, cfg.port);
    if (!p.ok) return fail(p.reason);
    pin = p.pin;
    const algs = hostKeyAlgorithmsFor(p.pin.keys.map((e) => e.keyType));
    if (algs.length === 0) return fail(`the known_hosts entries for ${knownHostsName(target.host, cfg.port)} in ${cfg.knownHosts} have no supported key type (${[...new Set(p.pin.keys.map((e) => e.keyType))].join(', ')}): refusing to fence over ssh`);
    algorithms.serverHostKey = algs;
  } else if (cfg.fingerprint !== null) {
    pin = { kind: 'fingerprint', fingerprint: cfg.fingerprint };
  } else {
    return fail('no pinned host key (knownHosts or fingerprint): an unknown host key is never accepted, refusing to fence over ssh');
  }

  const command = remoteCommand(target, cfg, token, service);
  const t0 = performance.now();
  const ran = await new Promise<FenceOutcome>((resolve) => {
    const client = new ssh2.Client();
    let settled = false;
    let hostKeyProblem: string | null = null;
    let stage = 'connecting';
    const finish = (r: FenceOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeAllListeners('ready');
      client.on('error', () => { /* late errors after we gave up */ });
      client.end();
      client.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish(fail(`timed out after ${cfg.timeoutMs} ms while ${stage} (${who}); connection closed`)), cfg.timeoutMs);
    client.on('error', (e: Error & ClientErrorExtensions & { code?: string }) => {
      if (hostKeyProblem !== null) return finish(fail(hostKeyProblem));
      if (e.level === 'client-authentication') return finish(fail(`authentication as ${who} with the key ${cfg.keyFile} failed (the server refused the key)`));
      if (e.level === 'client-timeout') return finish(fail(`timed out while ${stage} (${who}): ${e.message}`));
      finish(fail(`${stage} ${who}: ${e.code ?? e.message}`));
    });
    client.on('close', () => finish(fail(hostKeyProblem ?? `the connection to ${who} closed while ${stage}`)));
    client.on('ready', () => {
      stage = 'running the fence command';
      client.exec(command, (err, stream) => {
        if (err) return finish(fail(`cannot run the fence command on ${who}: ${err.message}`));
        let stdout = '';
        let stderr = '';
        let exitCode: number | null = null;
        let exitSignal: string | null = null;
        stream.on('data', (d: Buffer) => { if (stdout.length < OUTPUT_MAX) stdout += d.toString(); });
        stream.stderr.on('data', (d: Buffer) => { if (stderr.length < OUTPUT_MAX) stderr += d.toString(); });
        stream.on('exit', (code: number | null, signal?: string) => { exitCode = code; exitSignal = signal ?? null; });
        stream.on('close', () => {
          const out = lastLine(stderr) || lastLine(stdout);
          const ms = Math.round(performance.now() - t0);
          if (exitCode === 0) return finish({ ok: true, detail: `ssh: ${who} ran the fence command (exit 0${out ? `: ${out}` : ''}, ${ms} ms)` });
          const how = exitCode !== null ? `exit ${exitCode}` : exitSignal !== null ? `killed by ${exitSignal}` : 'no exit status';
          finish(fail(`the fence command on ${who} failed (${how}${out ? `: ${out}` : ''})`));
        });
      });
    });
    try {
      client.connect({
        host: target.host,
        port: cfg.port,
        username: cfg.user,
        privateKey,
        algorithms,
        // Our own timer bounds the whole exchange; ssh2's handshake timer is only a backstop.
        readyTimeout: cfg.timeoutMs + 1000,
        hostVerifier: (key: Buffer): boolean => {
          hostKeyProblem = checkHostKey(pin, key, where);
          if (hostKeyProblem === null) stage = 'authenticating';
          return hostKeyProblem === null;
        },
      });
    } catch (e) {
      // A key ssh2 cannot use; its message does not contain the key.
      finish(fail(`cannot connect to ${who}: ${(e as Error).message}`));
    }
  });
  if (!ran.ok) return ran;
  return verifyDown(target, ran.detail);
}
