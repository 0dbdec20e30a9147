// The ssh fencing method against a real OpenSSH server (Debian's
// openssh-server) on 127.0.0.1 and a free port. The set-up makes a host key,
// a user key, a second host key (a "changed" server) and a key the server
// does not know, writes an sshd_config under a temp dir and runs
// `/usr/sbin/sshd -D -e -f CFG` (stopped by PID in afterAll). Each test starts
// its own victim, a small node TCP server in its own process group, and
// fences it: the pinned host key and the right user key kill it and the port
// closes; a changed host key, an unknown user key or a silent server fail
// with a clear reason and the victim survives.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadControllerConfig, type InstanceConfig } from '../../src/config/controller-config.js';
import { fenceBySsh, sshFingerprint, type SshFenceConfig } from '../../src/controller/fence-ssh.js';
import { fenceInstance } from '../../src/controller/fencing.js';
import { freePort, missingTool, waitForPort } from '../helpers/ports.js';

const SSHD = '/usr/sbin/sshd';
const KEYGEN = '/usr/bin/ssh-keygen';
const haveSshd = fs.existsSync(SSHD) && fs.existsSync(KEYGEN);

interface Victim { port: number; proc: ChildProcess; exited: Promise<NodeJS.Signals | number | null> }

describe.skipIf(missingTool(haveSshd))('ssh fencing against a real sshd', () => {
  let dir = '';
  let sshd: ChildProcess | null = null;
  let sshdLog = '';
  let sshPort = 0;
  const user = os.userInfo().username;
  const victims: Victim[] = [];
  const key = (name: string) => path.join(dir, name);
  const pub = (name: string) => fs.readFileSync(`${key(name)}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-sshd-'));
    for (const k of ['host_ed25519', 'other_host_ed25519', 'user_ed25519', 'stranger_ed25519']) {
      const r = spawnSync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', key(k)], { timeout: 10_000, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ssh-keygen ${k}: ${r.stderr || r.error?.message}`);
    }
    fs.writeFileSync(key('authorized_keys'), `${pub('user_ed25519')}\n`);
    sshPort = await freePort();
    fs.writeFileSync(key('sshd_config'), [
      'ListenAddress 127.0.0.1',
      `Port ${sshPort}`,
      `HostKey ${key('host_ed25519')}`,
      `AuthorizedKeysFile ${key('authorized_keys')}`,
      `PidFile ${key('sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'UsePAM no',
      'PrintMotd no',
      'LoginGraceTime 20',
      'LogLevel VERBOSE',
    ].join('\n') + '\n');
    // The privilege separation directory sshd insists on (when run as root).
    try { fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); } catch { /* not root: sshd does not need it */ }
    const check = spawnSync(SSHD, ['-t', '-f', key('sshd_config')], { timeout: 10_000, encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`sshd -t: ${check.stderr || check.error?.message}`);
    // sshd re-executes itself: it needs its absolute path.
    sshd = spawn(SSHD, ['-D', '-e', '-f', key('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    sshd.stderr!.on('data', (d: Buffer) => { sshdLog = (sshdLog + d.toString()).slice(-16_000); });
    let gone = false;
    sshd.once('exit', () => { gone = true; });
    try {
      await waitForPort(sshPort, 10_000, '127.0.0.1', () => gone);
    } catch (e) {
      throw new Error(`sshd did not start: ${(e as Error).message}\n${sshdLog}`);
    }
  });

  afterEach(async () => {
    for (const v of victims.splice(0)) {
      try { process.kill(v.proc.pid!, 'SIGKILL'); } catch { /* already gone */ }
      await Promise.race([v.exited, sleep(2000)]);
    }
  });

  afterAll(async () => {
    if (sshd?.pid !== undefined && sshd.exitCode === null && sshd.signalCode === null) {
      const exited = new Promise((r) => sshd!.once('exit', r));
      process.kill(sshd.pid, 'SIGTERM');
      if (await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]) === false) {
        try { process.kill(sshd.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A TCP server in its own process group, listening on a free port. */
  async function startVictim(): Promise<Victim> {
    const port = await freePort();
    const proc = spawn(process.execPath, ['-e', `require('net').createServer((s) => s.end()).listen(${port}, '127.0.0.1')`], { detached: true, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | number | null>((r) => proc.once('exit', (code, signal) => r(signal ?? code)));
    const v = { port, proc, exited };
    victims.push(v);
    let gone = false;
    void exited.then(() => { gone = true; });
    await waitForPort(port, 10_000, '127.0.0.1', () => gone);
    return v;
  }

  const targetFor = (v: Victim): InstanceConfig => ({
    id: 'old', host: '127.0.0.1', adminPort: 1, servicePort: v.port, priority: 0, noFailover: false, health: [], hooks: null, resources: [], fencing: [],
  });

  const knownHosts = (hostKey: string, name = `[127.0.0.1]:${sshPort}`): string => {
    const f = key(`known_hosts.${hostKey}.${name.replace(/[^A-Za-z0-9]/g, '_')}`);
    fs.writeFileSync(f, `# pinned for the test\n${name} ${pub(hostKey)}\n`);
    return f;
  };

  const fingerprintOf = (hostKey: string): string => sshFingerprint(Buffer.from(pub(hostKey).split(' ')[1], 'base64'));

  const cfg = (over: Partial<SshFenceConfig>): SshFenceConfig => ({
    kind: 'ssh', user, port: sshPort, keyFile: key('user_ed25519'), knownHosts: null, fingerprint: null, command: null, timeoutMs: 8000, ...over,
  });

  /** The victim's process is gone (reaped: its exit event came) and nothing listens on its port. */
  async function expectKilled(v: Victim): Promise<void> {
    const how = await Promise.race([v.exited, sleep(5000).then(() => 'still running')]);
    expect(how).toBe('SIGKILL');
    expect(() => process.kill(v.proc.pid!, 0)).toThrow(/ESRCH/);
    expect(await accepts(v.port)).toBe(false);
  }

  async function expectAlive(v: Victim): Promise<void> {
    expect(v.proc.exitCode).toBeNull();
    expect(v.proc.signalCode).toBeNull();
    expect(() => process.kill(v.proc.pid!, 0)).not.toThrow();
    expect(await accepts(v.port)).toBe(true);
  }

  it('kills the process listening on the service port, with the host key pinned in known_hosts', async () => {
    const v = await startVictim();
    const r = await fenceBySsh(targetFor(v), cfg({ knownHosts: knownHosts('host_ed25519') }), '4294967301', 'orders');
    expect(r, sshdLog).toMatchObject({ ok: true });
    expect(r.ok ? r.detail : '').toMatch(new RegExp(`^ssh: ${user}@127\\.0\\.0\\.1:${sshPort} ran the fence command \\(exit 0: killed \\d+ \\(port ${v.port}\\), \\d+ ms\\); port ${v.port} is closed$`));
    await expectKilled(v);
  });

  it('refuses to fence when the server presents another host key than the pinned one; the victim survives', async () => {
    const v = await startVictim();
    const r = await fenceBySsh(targetFor(v), cfg({ knownHosts: knownHosts('other_host_ed25519') }), '1');
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toBe(
      `ssh: host key of 127.0.0.1:${sshPort} does not match the pinned known_hosts entry (got ssh-ed25519 ${fingerprintOf('host_ed25519')}; ${key(`known_hosts.other_host_ed25519._127_0_0_1__${sshPort}`)} line 2): refusing to fence over ssh`);
    const f = await fenceBySsh(targetFor(v), cfg({ fingerprint: fingerprintOf('other_host_ed25519') }), '1');
    expect(f.ok ? '' : f.reason).toBe(
      `ssh: host key of 127.0.0.1:${sshPort} does not match the pinned fingerprint ${fingerprintOf('other_host_ed25519')} (got ssh-ed25519 ${fingerprintOf('host_ed25519')}): refusing to fence over ssh`);
    await sleep(300);
    await expectAlive(v);
  });

  it('never accepts an unknown host: a known_hosts file without an entry for this host and port refuses', async () => {
    const v = await startVictim();
    // The right key, but pinned for port 22 (OpenSSH's name for another port is "[host]:port").
    const r = await fenceBySsh(targetFor(v), cfg({ knownHosts: knownHosts('host_ed25519', '127.0.0.1') }), '1');
    expect(r.ok ? '' : r.reason).toMatch(new RegExp(`^ssh: no known_hosts entry for \\[127\\.0\\.0\\.1\\]:${sshPort} in .*: an unknown host key is never accepted, refusing to fence over ssh$`));
    await expectAlive(v);
  });

  it('a user key the server does not accept fails cleanly as an authentication failure; the victim survives', async () => {
    const v = await startVictim();
    const r = await fenceBySsh(targetFor(v), cfg({ knownHosts: knownHosts('host_ed25519'), keyFile: key('stranger_ed25519') }), '1');
    expect(r).toEqual({ ok: false, reason: `ssh: authentication as ${user}@127.0.0.1:${sshPort} with the key ${key('stranger_ed25519')} failed (the server refused the key)` });
    const missing = await fenceBySsh(targetFor(v), cfg({ knownHosts: knownHosts('host_ed25519'), keyFile: key('no_such_key') }), '1');
    expect(missing).toEqual({ ok: false, reason: `ssh: cannot read the private key ${key('no_such_key')}: ENOENT` });
    await sleep(300);
    await expectAlive(v);
  });

  it('the fingerprint form works too', async () => {
    const v = await startVictim();
    const r = await fenceBySsh(targetFor(v), cfg({ fingerprint: fingerprintOf('host_ed25519') }), '7');
    expect(r, sshdLog).toMatchObject({ ok: true });
    await expectKilled(v);
  });

  it('a custom command gets the target in quoted shell variables, and its non-zero exit fails the method', async () => {
    const v = await startVictim();
    const out = key('env.out');
    const r = await fenceBySsh({ ...targetFor(v), id: "it's-old" }, cfg({
      fingerprint: fingerprintOf('host_ed25519'),
      command: `printf '%s|%s|%s|%s|%s\\n' "$QUORATE_TARGET_INSTANCE" "$QUORATE_TARGET_HOST" "$QUORATE_TARGET_PORT" "$QUORATE_FENCING_TOKEN" "$QUORATE_SERVICE" > ${out}; echo 'power switch unreachable' >&2; exit 3`,
    }), `$(touch ${key('pwned')}) \`x\``, 'orders');
    expect(r).toEqual({ ok: false, reason: `ssh: the fence command on ${user}@127.0.0.1:${sshPort} failed (exit 3: power switch unreachable)` });
    expect(fs.readFileSync(out, 'utf8')).toBe(`it's-old|127.0.0.1|${v.port}|$(touch ${key('pwned')}) \`x\`|orders\n`);
    expect(fs.existsSync(key('pwned'))).toBe(false);
    await expectAlive(v);
  });

  it('the timeout covers a server that accepts the connection but never answers', async () => {
    const v = await startVictim();
    const silent = net.createServer(() => { /* never speaks */ });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const t0 = Date.now();
      const r = await fenceBySsh(targetFor(v), cfg({ port, fingerprint: fingerprintOf('host_ed25519'), timeoutMs: 700 }), '1');
      expect(r).toEqual({ ok: false, reason: `ssh: timed out after 700 ms while connecting (${user}@127.0.0.1:${port}); connection closed` });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      silent.close();
    }
    await expectAlive(v);
  });

  it('through the cluster file (paths relative to it) and fenceInstance, after a failing method', async () => {
    const v = await startVictim();
    fs.writeFileSync(key('kh_rel'), `[127.0.0.1]:${sshPort} ${pub('host_ed25519')}\n`);
    const file = key('cluster.yaml');
    fs.writeFileSync(file, [
      'cluster: test',
      'controller:',
      '  connectString: 127.0.0.1:2181',
      'services:',
      '  - name: orders',
      '    instances:',
      '      - id: old',
      '        host: 127.0.0.1',
      `        adminPort: ${await freePort()}`,
      `        servicePort: ${v.port}`,
      '        fencing:',
      `          - { shell: "exit 1", timeoutMs: 2000 }`,
      `          - { ssh: { user: ${user}, port: ${sshPort}, keyFile: user_ed25519, knownHosts: kh_rel, timeoutMs: 8000 } }`,
    ].join('\n') + '\n');
    const target = loadControllerConfig(file, 'orders', null).instances[0];
    expect(target.fencing[1]).toMatchObject({ kind: 'ssh', keyFile: key('user_ed25519'), knownHosts: key('kh_rel') });
    const r = await fenceInstance({ service: 'orders', target, crumb: { instance: 'old', address: `127.0.0.1:${v.port}`, epoch: null, token: '1' }, token: '2', adminToken: null, hasJournal: false });
    expect(r, sshdLog).toMatchObject({ ok: true, detail: expect.stringMatching(/^ssh: .* ran the fence command/) });
    await expectKilled(v);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => { s.destroy(); resolve(true); }, 1000);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}
