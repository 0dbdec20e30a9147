// The ssh fencing method's pure parts: known_hosts parsing and host matching
// (plain, "[host]:port", hashed, wildcards, negation, @revoked), the SHA256
// fingerprint as OpenSSH prints it, the host key check and its messages, the
// quoting of the target's variables, and the cluster file's ssh entry
// (exactly one pin; relative paths from the cluster file's directory).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadControllerConfig, type InstanceConfig } from '../../../src/config/controller-config.js';
import { ConfigError } from '../../../src/config/errors.js';
import {
  checkHostKey,
  entryMatchesHost,
  fenceBySsh,
  hostKeyAlgorithmsFor,
  knownHostsName,
  parseKnownHosts,
  pinFromKnownHosts,
  remoteCommand,
  sshFingerprint,
  type SshFenceConfig,
} from '../../../src/controller/fence-ssh.js';
import { shellQuote } from '../../../src/io/shell-quote.js';

// Made with ssh-keygen -t ed25519 / -t ecdsa; fingerprints as ssh-keygen -lf printed them.
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIM4aOnmUEK/E8B9o+NH8Xq6/GXR4wIArqY/s9aWkQ2H2';
const ED_FP = 'SHA256:rxBNWWxhS660d6Qgqs6F9ihvK/6T6bqDHRP8EUI05hM';
const EC = 'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFR7UyUrm+cfOULeTu+P06hfr73GzDLKDmD/EqXpF8m5P7tb4iO6UCU3qZmfSh9psICNxA5Bu4Ig8WhA7Lb/bpQ=';
const EC_FP = 'SHA256:MsOdetMs3mrHq8BnW5rTV42zlv/7GHnU98g/ApvE87o';
// ssh-keygen -H of "[db1.example.com]:2222 ssh-ed25519 ED" and "db2.example.com ecdsa-sha2-nistp256 EC".
const HASHED = [
  `|1|6VMkgzA/en+KgEAVDSUel0l1iWU=|Kscp0b/sfEqmOhtQ2KVVZkhPX7M= ssh-ed25519 ${ED}`,
  `|1|mdoYuKAGcILXLCEnYggEI8oyLPs=|BXUJxmxCyRmK3vAQu0Vw0Lbu42g= ecdsa-sha2-nistp256 ${EC}`,
].join('\n');
const ed = Buffer.from(ED, 'base64');
const ec = Buffer.from(EC, 'base64');

describe('sshFingerprint', () => {
  it('is what ssh-keygen -lf prints: SHA256 and unpadded base64', () => {
    expect(sshFingerprint(ed)).toBe(ED_FP);
    expect(sshFingerprint(ec)).toBe(EC_FP);
  });
});

describe('known_hosts', () => {
  it('uses "host" on port 22 and "[host]:port" otherwise, as OpenSSH does', () => {
    expect(knownHostsName('DB1.example.com', 22)).toBe('db1.example.com');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('parses plain lines with several names, comments and options it must skip', () => {
    const { entries, skipped } = parseKnownHosts([
      '# comment',
      '',
      `db1.example.com,10.0.0.1 ssh-ed25519 ${ED} comment words`,
      `[127.0.0.1]:2222 ecdsa-sha2-nistp256 ${EC}`,
      `broken ssh-ed25519 ${EC}`,
      'short line',
      `@weird host ssh-ed25519 ${ED}`,
    ].join('\n'));
    expect(entries.map((e) => [e.line, e.patterns, e.keyType])).toEqual([
      [3, ['db1.example.com', '10.0.0.1'], 'ssh-ed25519'],
      [4, ['[127.0.0.1]:2222'], 'ecdsa-sha2-nistp256'],
    ]);
    expect(skipped).toEqual([
      'line 5: the key does not match its type ssh-ed25519',
      'line 6: expected "hosts keytype base64-key"',
      'line 7: unknown marker @weird',
    ]);
    expect(entryMatchesHost(entries[0], '10.0.0.1', 22)).toBe(true);
    expect(entryMatchesHost(entries[0], 'DB1.EXAMPLE.COM', 22)).toBe(true);
    // A non-default port needs the [host]:port form.
    expect(entryMatchesHost(entries[0], 'db1.example.com', 2222)).toBe(false);
    expect(entryMatchesHost(entries[1], '127.0.0.1', 2222)).toBe(true);
    expect(entryMatchesHost(entries[1], '127.0.0.1', 22)).toBe(false);
  });

  it('matches hashed entries (|1|salt|hmac) made by ssh-keygen -H', () => {
    const { entries } = parseKnownHosts(HASHED);
    expect(entries).toHaveLength(2);
    expect(entryMatchesHost(entries[0], 'db1.example.com', 2222)).toBe(true);
    expect(entryMatchesHost(entries[0], 'db1.example.com', 22)).toBe(false);
    expect(entryMatchesHost(entries[1], 'db2.example.com', 22)).toBe(true);
    expect(entryMatchesHost(entries[1], 'db1.example.com', 22)).toBe(false);
  });

  it('matches wildcards, and a negated pattern excludes', () => {
    const { entries } = parseKnownHosts(`*.example.com,!bad.example.com,10.0.0.? ssh-ed25519 ${ED}`);
    expect(entryMatchesHost(entries[0], 'db1.example.com', 22)).toBe(true);
    expect(entryMatchesHost(entries[0], 'bad.example.com', 22)).toBe(false);
    expect(entryMatchesHost(entries[0], '10.0.0.7', 22)).toBe(true);
    expect(entryMatchesHost(entries[0], '10.0.0.17', 22)).toBe(false);
    expect(entryMatchesHost(entries[0], 'example.org', 22)).toBe(false);
  });

  it('pins the keys for the host, refuses a host without an entry, and offers only pinned key types', () => {
    const text = `db1.example.com ssh-ed25519 ${ED}\n@cert-authority *.corp ssh-ed25519 ${ED}\n`;
    const p = pinFromKnownHosts(text, '/etc/kh', 'db1.example.com', 22);
    expect(p.ok).toBe(true);
    const none = pinFromKnownHosts(text, '/etc/kh', 'db2.example.com', 22);
    expect(none).toEqual({ ok: false, reason: expect.stringMatching(/^no known_hosts entry for db2\.example\.com in \/etc\/kh: an unknown host key is never accepted, refusing to fence over ssh$/) });
    const ca = pinFromKnownHosts(text, '/etc/kh', 'x.corp', 22);
    expect(ca.ok ? '' : ca.reason).toMatch(/@cert-authority entries are not supported/);
    expect(hostKeyAlgorithmsFor(['ssh-ed25519', 'ssh-rsa', 'sk-ssh-ed25519@openssh.com'])).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});

describe('checkHostKey', () => {
  it('accepts the pinned key and refuses another with the key it got', () => {
    const p = pinFromKnownHosts(`[127.0.0.1]:2222 ssh-ed25519 ${ED}`, '/kh', '127.0.0.1', 2222);
    if (!p.ok) throw new Error(p.reason);
    expect(checkHostKey(p.pin, ed, '127.0.0.1:2222')).toBeNull();
    expect(checkHostKey(p.pin, ec, '127.0.0.1:2222')).toBe(
      `host key of 127.0.0.1:2222 does not match the pinned known_hosts entry (got ecdsa-sha2-nistp256 ${EC_FP}; /kh line 1): refusing to fence over ssh`);
  });

  it('refuses a key marked @revoked even when another line pins it', () => {
    const p = pinFromKnownHosts(`h ssh-ed25519 ${ED}\n@revoked * ssh-ed25519 ${ED}\n`, '/kh', 'h', 22);
    if (!p.ok) throw new Error(p.reason);
    expect(checkHostKey(p.pin, ed, 'h:22')).toMatch(/is marked @revoked in \/kh: refusing to fence over ssh/);
  });

  it('compares fingerprints with or without base64 padding', () => {
    expect(checkHostKey({ kind: 'fingerprint', fingerprint: ED_FP }, ed, 'h:22')).toBeNull();
    expect(checkHostKey({ kind: 'fingerprint', fingerprint: `${ED_FP}=` }, ed, 'h:22')).toBeNull();
    expect(checkHostKey({ kind: 'fingerprint', fingerprint: ED_FP }, ec, 'h:22')).toBe(
      `host key of h:22 does not match the pinned fingerprint ${ED_FP} (got ecdsa-sha2-nistp256 ${EC_FP}): refusing to fence over ssh`);
  });
});

const target: InstanceConfig = {
  id: "it's", host: '127.0.0.1', adminPort: 1, servicePort: 2, priority: 0, noFailover: false, health: [], hooks: null, resources: [], fencing: [],
};
const sshCfg = (over: Partial<SshFenceConfig> = {}): SshFenceConfig => ({
  kind: 'ssh', user: 'root', port: 22, keyFile: '/nonexistent/key', knownHosts: null, fingerprint: ED_FP, command: null, timeoutMs: 1000, ...over,
});

describe('remoteCommand', () => {
  it('exports the target as single-quoted shell variables before the command', () => {
    expect(shellQuote("a'b $x")).toBe(`'a'\\''b $x'`);
    const c = remoteCommand(target, sshCfg({ command: 'echo hi' }), '4294967301', 'orders');
    expect(c).toBe(`export QUORATE_TARGET_INSTANCE='it'\\''s' QUORATE_TARGET_HOST='127.0.0.1' QUORATE_TARGET_PORT='2' QUORATE_TARGET_ADMIN_PORT='1' QUORATE_FENCING_TOKEN='4294967301' QUORATE_SERVICE='orders'; echo hi`);
    expect(remoteCommand(target, sshCfg(), 't', 's')).toMatch(/; P="\$QUORATE_TARGET_PORT"; .*ss -Htlnp/);
  });
});

describe('fenceBySsh before connecting', () => {
  it('a missing key file is a failure reason, not a crash', async () => {
    expect(await fenceBySsh(target, sshCfg(), 't')).toEqual({ ok: false, reason: 'ssh: cannot read the private key /nonexistent/key: ENOENT' });
  });

  it('a file that is not a key is refused without showing its content', async () => {
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-fence-ssh-')), 'key');
    fs.writeFileSync(f, 'not a key SECRET-CONTENT\n');
    const r = await fenceBySsh(target, sshCfg({ keyFile: f }), 't');
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/^ssh: cannot use the private key .*key: /);
    expect(JSON.stringify(r)).not.toContain('SECRET-CONTENT');
  });

  it('without a servicePort there is nothing for the default command to kill', async () => {
    const r = await fenceBySsh({ ...target, servicePort: null }, sshCfg(), 't');
    expect(r.ok ? '' : r.reason).toMatch(/no command configured and instance it's has no servicePort/);
  });
});

describe('the cluster file\'s ssh fencing entry', () => {
  const write = (fencing: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-fence-ssh-cfg-'));
    const file = path.join(dir, 'cluster.yaml');
    fs.writeFileSync(file, [
      'cluster: test',
      'controller:',
      '  connectString: 127.0.0.1:2181',
      'services:',
      '  - name: orders',
      '    instances:',
      '      - id: a',
      '        host: 127.0.0.1',
      '        adminPort: 7001',
      '        servicePort: 7101',
      `        fencing: ${fencing}`,
    ].join('\n') + '\n');
    return file;
  };
  const errorOf = (file: string): ConfigError => {
    try { loadControllerConfig(file, 'orders', null); } catch (e) { if (e instanceof ConfigError) return e; throw e; }
    throw new Error('expected a ConfigError');
  };

  it('resolves relative paths from the cluster file\'s directory and fills defaults', () => {
    const file = write('[ { ssh: { user: root, keyFile: keys/id_ed25519, knownHosts: known_hosts } }, journal ]');
    const dir = path.dirname(file);
    expect(loadControllerConfig(file, 'orders', null).instances[0].fencing).toEqual([
      { kind: 'ssh', user: 'root', port: 22, keyFile: path.join(dir, 'keys/id_ed25519'), knownHosts: path.join(dir, 'known_hosts'), fingerprint: null, command: null, timeoutMs: 5000 },
      { kind: 'journal', timeoutMs: 0 },
    ]);
    const abs = write(`[ { ssh: { user: fence, port: 2222, keyFile: /k, fingerprint: "${ED_FP}", command: "systemctl kill x", timeoutMs: 800 } } ]`);
    expect(loadControllerConfig(abs, 'orders', null).instances[0].fencing).toEqual([
      { kind: 'ssh', user: 'fence', port: 2222, keyFile: '/k', knownHosts: null, fingerprint: ED_FP, command: 'systemctl kill x', timeoutMs: 800 },
    ]);
  });

  it('needs exactly one of knownHosts and fingerprint', () => {
    for (const f of ['[ { ssh: { user: root, keyFile: /k } } ]', `[ { ssh: { user: root, keyFile: /k, knownHosts: /kh, fingerprint: "${ED_FP}" } } ]`]) {
      const e = errorOf(write(f));
      expect(e.message).toMatch(/services\[0\]\.instances\[0\]\.fencing\[0\]\.ssh: .*give exactly one of knownHosts \(a known_hosts file\) or fingerprint/);
    }
  });

  it('refuses a fingerprint that is not OpenSSH\'s SHA256 form, and unknown keys', () => {
    expect(errorOf(write('[ { ssh: { user: root, keyFile: /k, fingerprint: "MD5:aa:bb" } } ]')).message).toMatch(/fencing\[0\]\.ssh\.fingerprint: expected a host key fingerprint "SHA256:\.\.\."/);
    expect(errorOf(write('[ { ssh: { user: root, keyFile: /k, fingerprint: "x", strictHostKeyChecking: no } } ]')).message).toMatch(/fencing\[0\]/);
  });
});
