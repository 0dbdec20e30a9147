// Self-test of the multi-host lab (test/helpers/lab.ts): three network
// namespaces on a bridge, each with its own address and sshd. Checks that
// hosts reach each other, that each sshd takes the lab key against the pinned
// known_hosts and runs commands in its own namespace, that a host can be
// taken off the network and back, that a changed host key is refused, that
// a slot left by a dead owner is reclaimed and cleaned, that the packed
// project runs on a host, and that teardown leaves nothing behind.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, installQuorate, LAB_ROOT, labUnavailable, slotInUse, type Lab, type LabHost } from '../helpers/lab.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** True when a TCP connect from this (root) namespace succeeds within ms. */
function tcpOpen(address: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    const done = (ok: boolean) => { clearTimeout(timer); sock.destroy(); resolve(ok); };
    const timer = setTimeout(() => done(false), ms);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** The key blob pinned for `address` in an OpenSSH known_hosts file. */
function pinnedBlob(knownHostsFile: string, address: string): Buffer {
  const line = fs.readFileSync(knownHostsFile, 'utf8').split('\n').find((l) => l.split(' ')[0] === address);
  if (!line) throw new Error(`${address} is not in ${knownHostsFile}`);
  return Buffer.from(line.split(' ')[2], 'base64');
}

interface SshResult { code: number | null; stdout: string; stderr: string }

/** One command over SSH (ssh2) as the lab user, accepting only `hostKey`. */
function sshRun(lab: Lab, host: LabHost, hostKey: Buffer, command: string, timeoutMs = 15_000): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const conn = new Client();
    const timer = setTimeout(() => { conn.end(); reject(new Error(`ssh to ${host.name} (${host.address}) "${command}": no answer after ${timeoutMs} ms`)); }, timeoutMs);
    const fail = (e: Error) => { clearTimeout(timer); conn.end(); reject(new Error(`ssh to ${host.name} (${host.address}) "${command}": ${e.message}`)); };
    conn.on('ready', () => {
      conn.exec(command, (err, stream) => {
        if (err) return fail(err);
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        stream.on('data', (d: Buffer) => { stdout += d.toString(); });
        stream.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        stream.on('exit', (c: number | null) => { code = c; });
        stream.on('close', () => { clearTimeout(timer); conn.end(); resolve({ code, stdout, stderr }); });
      });
    });
    conn.on('error', fail);
    conn.connect({
      host: host.address,
      port: host.sshPort,
      username: lab.sshUser,
      privateKey: fs.readFileSync(lab.sshKeyFile),
      hostVerifier: (key: Buffer) => key.equals(hostKey),
      readyTimeout: timeoutMs,
    });
  });
}

/** OpenSSH's client from the root namespace, strict about the lab's known_hosts. */
function opensshRun(lab: Lab, host: LabHost, command: string) {
  return spawnSync('ssh', [
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5',
    '-i', lab.sshKeyFile, '-p', String(host.sshPort), `${lab.sshUser}@${host.address}`, command,
  ], { encoding: 'utf8', timeout: 15_000 });
}

/** From host `from`, a TCP connect to `to`:22 (bash /dev/tcp), bounded. */
async function reaches(lab: Lab, from: LabHost, to: LabHost, timeoutMs = 5_000): Promise<boolean> {
  const r = await lab.exec(from, ['bash', '-c', `exec 3<>/dev/tcp/${to.address}/22`], { timeoutMs });
  return r.code === 0;
}

function netnsNames(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
}

function linkExists(name: string, ns?: string): boolean {
  return spawnSync('ip', [...(ns ? ['-n', ns] : []), 'link', 'show', 'dev', name], { encoding: 'utf8' }).status === 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cmdline(pid: number): string {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; }
}

function aliveNotZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

describe.skipIf(labUnavailable() !== null)('multi-host lab', () => {
  let lab: Lab;
  let h1: LabHost;
  let h2: LabHost;
  let h3: LabHost;

  beforeAll(async () => {
    const t0 = Date.now();
    lab = await createLab({ hosts: 3, name: 'selftest' });
    console.log(`createLab (3 hosts, slot ${lab.slot}): ${Date.now() - t0} ms`);
    [h1, h2, h3] = lab.hosts;
  }, 60_000);

  afterAll(async () => {
    await lab?.teardown();
  }, 30_000);

  it('gives each host its own namespace, address, sshd and pinned key', () => {
    expect(lab.hosts.map((h) => h.name)).toEqual(['h1', 'h2', 'h3']);
    expect(lab.gatewayAddress).toBe(`198.18.${lab.slot}.254`);
    for (const [i, h] of lab.hosts.entries()) {
      expect(h.address).toBe(`198.18.${lab.slot}.${i + 1}`);
      expect(h.ns).toBe(`ql${lab.slot}h${i + 1}`);
      expect(h.sshPort).toBe(22);
      expect(netnsNames()).toContain(h.ns);
      // The fingerprint is the one ssh-keygen prints.
      const lf = spawnSync('ssh-keygen', ['-lf', `${h.hostKeyFile}.pub`], { encoding: 'utf8' });
      expect(lf.stdout.split(' ')[1]).toBe(h.fingerprint);
      expect(pinnedBlob(lab.knownHostsFile, h.address).equals(Buffer.from(h.hostPublicKey.split(' ')[1], 'base64'))).toBe(true);
      // Its sshd runs inside its namespace.
      expect(lab.pidsOn(h).some((p) => /^sshd: \/usr\/sbin\/sshd -D -e -f /.test(cmdline(p)))).toBe(true);
    }
    expect(new Set(lab.hosts.map((h) => h.fingerprint)).size).toBe(3);
    // The bridge in its switch namespace; the gateway address in the root namespace.
    expect(linkExists(lab.bridge, lab.switchNs)).toBe(true);
    expect(spawnSync('ip', ['-4', '-o', 'addr', 'show', 'dev', lab.gatewayLink], { encoding: 'utf8' }).stdout).toContain(`inet ${lab.gatewayAddress}/24`);
    expect(fs.statSync(lab.sshKeyFile).isFile()).toBe(true);
  });

  it('lets every host reach every other, and the root namespace reach every host', async () => {
    const pairs = lab.hosts.flatMap((a) => lab.hosts.filter((b) => b !== a).map((b) => [a, b] as const));
    const results = await Promise.all(pairs.map(async ([a, b]) => `${a.name}->${b.name}:${await reaches(lab, a, b)}`));
    expect(results).toEqual(pairs.map(([a, b]) => `${a.name}->${b.name}:true`));
    for (const h of lab.hosts) expect(await tcpOpen(h.address, 22, 2_000)).toBe(true);
    // Nothing but loopback and the host's own IPv4 address inside a host.
    const addrs = await lab.exec(h1, ['ip', '-o', 'addr', 'show'], { timeoutMs: 5_000 });
    const global = addrs.stdout.split('\n').filter((l) => l.trim() && !/\blo\b/.test(l));
    expect(global.map((l) => l.split(/\s+/)[3])).toEqual([`${h1.address}/24`]);
  }, 30_000);

  it('runs commands over ssh as the lab user, pinned to each host key, in the host\'s namespace', async () => {
    for (const h of lab.hosts) {
      const r = await sshRun(lab, h, pinnedBlob(lab.knownHostsFile, h.address), 'ip -4 -o addr show eth0; echo "PATH=$PATH"; command -v node || echo "node: not on PATH"');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`inet ${h.address}/24`);
      for (const other of lab.hosts.filter((o) => o !== h)) expect(r.stdout).not.toContain(`inet ${other.address}/`);
      if (h === h1) console.log(`ssh session on ${h.name}: ${r.stdout.split('\n').filter((l) => !l.includes('inet ')).join(' | ')}`);
    }
    // OpenSSH's own client accepts the known_hosts file as written.
    const r = opensshRun(lab, h2, 'hostname -I 2>/dev/null || ip -4 -o addr show eth0');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(h2.address);
  }, 45_000);

  it('takes a host off the network and puts it back', async () => {
    // Its sshd listener, and a process of the test's, must survive the time away.
    const listener = lab.pidsOn(h2).filter((p) => /^sshd: \/usr\/sbin\/sshd -D -e -f .*\[listener\]/.test(cmdline(p)));
    expect(listener.length).toBe(1);
    const sleeper = lab.spawn(h2, ['sleep', '300']);
    for (let i = 0; i < 100 && !lab.pidsOn(h2).includes(sleeper.pid!); i++) await sleep(20);
    await lab.disconnect(h2);
    const [h1ToH2, h2ToH1, h1ToH3, rootToH2] = await Promise.all([
      reaches(lab, h1, h2, 2_000),
      reaches(lab, h2, h1, 2_000),
      reaches(lab, h1, h3, 2_000),
      tcpOpen(h2.address, 22, 2_000),
    ]);
    expect({ h1ToH2, h2ToH1, h1ToH3, rootToH2 }).toEqual({ h1ToH2: false, h2ToH1: false, h1ToH3: true, rootToH2: false });
    for (const p of [...listener, sleeper.pid!]) expect(aliveNotZombie(p), `pid ${p}: ${cmdline(p)}`).toBe(true);
    expect(lab.pidsOn(h2)).toEqual(expect.arrayContaining([...listener, sleeper.pid!]));
    await lab.reconnect(h2);
    expect(await reaches(lab, h1, h2)).toBe(true);
    expect(await reaches(lab, h2, h3)).toBe(true);
    expect(await tcpOpen(h2.address, 22, 2_000)).toBe(true);
    const ssh = await sshRun(lab, h2, pinnedBlob(lab.knownHostsFile, h2.address), 'true');
    expect(ssh.code).toBe(0);
    lab.signal(sleeper.pid!, 'SIGKILL');
  }, 45_000);

  it('changes a host key, which the pinned known_hosts then refuses', async () => {
    const old = h3.fingerprint;
    const pinned = pinnedBlob(lab.knownHostsFile, h3.address);
    const fresh = await lab.changeHostKey(h3);
    expect(fresh).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(fresh).not.toBe(old);
    expect(h3.fingerprint).toBe(fresh);
    const lf = spawnSync('ssh-keygen', ['-lf', `${h3.hostKeyFile}.pub`], { encoding: 'utf8' });
    expect(lf.stdout.split(' ')[1]).toBe(fresh);
    // The known_hosts file still holds the old key.
    expect(pinnedBlob(lab.knownHostsFile, h3.address).equals(pinned)).toBe(true);
    await expect(sshRun(lab, h3, pinned, 'true')).rejects.toThrow(/verif/i);
    const strict = opensshRun(lab, h3, 'true');
    expect(strict.status).toBe(255);
    expect(strict.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/);
    // The new key is served.
    const ok = await sshRun(lab, h3, Buffer.from(h3.hostPublicKey.split(' ')[1], 'base64'), 'true');
    expect(ok.code).toBe(0);
  }, 45_000);

  it('reclaims a slot whose owner died, removing what it left', async () => {
    // A fake dead owner of a slot nobody holds, with a namespace, a bridge
    // in the root namespace, a process and a lab dir left behind. The lock is planted with link()
    // so a concurrent test file's lab is never disturbed.
    const deadPid = spawnSync('true').pid!;
    const deadDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-lab-dead-'));
    const planted = path.join(LAB_ROOT, `.planted-${process.pid}`);
    fs.writeFileSync(planted, JSON.stringify({ pid: deadPid, start: '1', dir: deadDir }));
    let free = 0;
    for (let s = 1; s <= 50 && free === 0; s++) {
      try { fs.linkSync(planted, path.join(LAB_ROOT, `slot-${s}.lock`)); free = s; } catch { /* taken, or stale: next */ }
    }
    fs.rmSync(planted);
    expect(free).toBeGreaterThan(0);
    const ns = `ql${free}h9`;
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    expect(spawnSync('ip', ['link', 'add', `qlb${free}`, 'type', 'bridge']).status).toBe(0);
    const orphan = spawn('ip', ['netns', 'exec', ns, 'sleep', '300'], { detached: true, stdio: 'ignore' });
    const orphanExit = new Promise((r) => orphan.once('exit', r));
    for (let i = 0; i < 100 && !spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.trim(); i++) await sleep(20);
    expect(slotInUse(free)).toBe(false);
    // New labs take the lowest free slots, stale ones included: make them
    // until one lands on (or past) the planted slot.
    const others: Lab[] = [];
    try {
      for (let i = 0; i < 50 && (others.length === 0 || others[others.length - 1].slot < free); i++) {
        others.push(await createLab({ hosts: 1, name: 'reclaim' }));
      }
      const other = others[others.length - 1];
      expect(other.slot).not.toBe(lab.slot);
      // Whoever took the planted slot (this test, or a concurrent test file) cleaned it.
      for (let i = 0; i < 100 && (netnsNames().includes(ns) || linkExists(`qlb${free}`)); i++) await sleep(50);
      expect(netnsNames()).not.toContain(ns);
      expect(linkExists(`qlb${free}`)).toBe(false);
      await Promise.race([orphanExit, sleep(3_000)]);
      expect(aliveNotZombie(orphan.pid!)).toBe(false);
      expect(fs.existsSync(deadDir)).toBe(false);
      expect(await reaches(other, other.hosts[0], h1)).toBe(false); // another subnet, no route
      expect(await tcpOpen(other.hosts[0].address, 22, 2_000)).toBe(true);
    } finally {
      try { process.kill(-orphan.pid!, 'SIGKILL'); } catch { /* gone */ }
      for (const o of others) await o.teardown();
    }
    for (const o of others) expect(netnsNames()).not.toContain(o.switchNs);
  }, 60_000);

  it('installs the packed project where every host can run it', async () => {
    const t0 = Date.now();
    const bin = await installQuorate();
    console.log(`installQuorate: ${Date.now() - t0} ms -> ${bin}`);
    expect(bin).toMatch(new RegExp(`^${LAB_ROOT}/install-[0-9a-f]{16}/bin/quorate$`));
    const t1 = Date.now();
    expect(await lab.installQuorate()).toBe(bin);
    expect(Date.now() - t1).toBeLessThan(5_000);
    const inNs = await lab.exec(h1, [bin, '--version'], { timeoutMs: 20_000 });
    expect(inNs.code, inNs.stderr).toBe(0);
    expect(inNs.stdout.trim()).toBe(VERSION);
    // Over ssh too: the bin's "#!/usr/bin/env node" must find node on the session's PATH.
    const overSsh = await sshRun(lab, h2, pinnedBlob(lab.knownHostsFile, h2.address), `${bin} --version`, 30_000);
    expect(overSsh.code, `node not on the ssh session's PATH? ${overSsh.stderr}`).toBe(0);
    expect(overSsh.stdout.trim()).toBe(VERSION);
  }, 240_000);

  it('tears down everything, idempotently', async () => {
    const pids = lab.hosts.flatMap((h) => lab.pidsOn(h));
    expect(pids.length).toBeGreaterThanOrEqual(3);
    // A long-lived process started by the test is killed as well.
    const child = lab.spawn(h1, ['sleep', '300'], { logFile: path.join(lab.dir, 'sleep.log') });
    for (let i = 0; i < 100 && !lab.pidsOn(h1).includes(child.pid!); i++) await sleep(20);
    expect(lab.pidsOn(h1)).toContain(child.pid);
    const { dir, slot, switchNs, gatewayLink } = lab;
    const namespaces = [switchNs, ...lab.hosts.map((h) => h.ns)];
    await lab.teardown();
    await lab.teardown();
    expect(netnsNames().filter((n) => namespaces.includes(n))).toEqual([]);
    expect(linkExists(gatewayLink)).toBe(false);
    expect(spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout).not.toMatch(new RegExp(`^\\d+: (ql${slot}h\\d+|qlb${slot}|qlg${slot})[:@]`, 'm'));
    for (const p of [...pids, child.pid!]) expect(aliveNotZombie(p), `pid ${p}`).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    const lock = path.join(LAB_ROOT, `slot-${slot}.lock`);
    if (fs.existsSync(lock)) expect(JSON.parse(fs.readFileSync(lock, 'utf8')).pid).not.toBe(process.pid);
    await expect(lab.exec(h1, ['true'], { timeoutMs: 1_000 })).rejects.toThrow(/torn down/);
  }, 30_000);
});
