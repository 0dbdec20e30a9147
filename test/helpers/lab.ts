// A multi-host test lab on one machine: N "hosts", each a Linux network
// namespace with its own IPv4 address (198.18.<slot>.<i>, from the
// benchmarking range 198.18.0.0/15) and its own OpenSSH sshd on port 22,
// joined by veth pairs to a bridge. The root namespace (where vitest runs)
// holds the gateway address 198.18.<slot>.254/24 on one more veth into that
// bridge, so the test process itself reaches every host directly.
//
// The bridge sits in a namespace of its own, the "switch" (ql<slot>sw), not
// in the root namespace: with br_netfilter loaded (Docker loads it) bridged
// frames go through the bridge namespace's iptables FORWARD chain, whose
// policy Docker sets to DROP, which would cut hosts off from each other. In
// the switch namespace bridge-nf-call-* is turned off (per namespace since
// Linux 5.3) and there are no rules anyway.
//
// Two vitest workers may build labs at once: each lab takes a "slot" (1..50)
// under /tmp/quorate-lab/ with an exclusive lock file holding the owner's
// pid and start time; names and addresses derive from the slot. Taking a
// slot first removes what a dead owner left behind (namespaces, links,
// processes, its lab dir). Teardown runs in every outcome: explicitly
// (afterAll), after a creation that failed half way, and best effort from a
// process 'exit' hook. Needs root, iproute2 and openssh-server.
import { spawn as spawnChild, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- limits

/** Where slot locks, npm pack output and cached installs live. */
export const LAB_ROOT = '/tmp/quorate-lab';
const SLOT_MIN = 1;
const SLOT_MAX = 50;
const HOSTS_MAX = 20;
/** Attempts to take one slot whose lock keeps changing under us. */
const SLOT_TAKE_ATTEMPTS_MAX = 3;
/** A reclaim guard is held for microseconds: one this old belongs to a dead process. */
const RECLAIM_GUARD_STALE_MS = 10_000;
const IP_TIMEOUT_MS = 10_000;
const KEYGEN_TIMEOUT_MS = 15_000;
const SSHD_START_TIMEOUT_MS = 15_000;
const SSHD_STOP_TIMEOUT_MS = 3_000;
const PROBE_CONNECT_TIMEOUT_MS = 1_000;
const RECONNECT_TIMEOUT_MS = 15_000;
const LINK_STATE_TIMEOUT_MS = 3_000;
const HOST_TO_HOST_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 25;
const KILL_ROUNDS_MAX = 80;
const CHILD_EXIT_GRACE_MS = 2_000;
/** Output kept from one exec (each of stdout and stderr). */
const OUTPUT_KEEP_CHARS = 1_000_000;
const SSHD_LOG_KEEP_CHARS = 32_000;
const NPM_PACK_TIMEOUT_MS = 120_000;
const NPM_INSTALL_TIMEOUT_MS = 300_000;
const VERSION_TIMEOUT_MS = 20_000;
/** Installs of older tarballs are removed once this old. */
const INSTALL_KEEP_MS = 24 * 3600_000;
const INSTALLS_SCANNED_MAX = 200;
/** Temp files under LAB_ROOT of a caller killed half way are removed once this old. */
const TEMP_KEEP_MS = 3600_000;

/** block(): the rules' preference, and where the local table's rule moves to (after them). */
const BLOCK_RULE_PREF = 10;
const LOCAL_RULE_PREF = 100;

const SSHD = '/usr/sbin/sshd';
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => fs.existsSync(p)) ?? 'ip';
const KEYGEN = ['/usr/bin/ssh-keygen', '/bin/ssh-keygen', '/usr/local/bin/ssh-keygen'].find((p) => fs.existsSync(p)) ?? '/usr/bin/ssh-keygen';

/**
 * The PATH Debian's sshd gives root's sessions (compiled in; without PAM,
 * /etc/environment is not read). The shell run by sshd may extend it: bash
 * sources ~/.bashrc for commands over ssh. When no `node` is on it (node
 * installed elsewhere, e.g. by CI's setup-node), the lab's sshds put the
 * test's own node first (SetEnv PATH), so "#!/usr/bin/env node" scripts run
 * over ssh as they would on a host with node installed; else null.
 */
export const SSHD_ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SESSION_PATH: string | null = SSHD_ROOT_PATH.split(':').some((d) => fs.existsSync(path.join(d, 'node')))
  ? null
  : `${path.dirname(process.execPath)}:${SSHD_ROOT_PATH}`;

/**
 * The repo: two levels up from test/helpers/, or three when this file runs
 * compiled from dist/test/helpers/ (the nemesis): the first of those holding
 * a package.json.
 */
const REPO_ROOT = ((here: string) => {
  const up2 = path.resolve(here, '..', '..');
  return fs.existsSync(path.join(up2, 'package.json')) ? up2 : path.resolve(up2, '..');
})(path.dirname(fileURLToPath(import.meta.url)));

// ---------------------------------------------------------------- API types

export interface LabHost {
  /** h1..hN */
  readonly name: string;
  /** The network namespace, ql<slot>h<i>. */
  readonly ns: string;
  /** 198.18.<slot>.<i> */
  readonly address: string;
  readonly sshPort: 22;
  /** The sshd's current private host key (changeHostKey replaces it). */
  hostKeyFile: string;
  /** "ssh-ed25519 AAAA..." (type and base64 blob, no comment). */
  hostPublicKey: string;
  /** "SHA256:..." as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

export interface LabExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the command ran past timeoutMs and its process group was killed. */
  timedOut: boolean;
}

export interface LabExecOptions {
  timeoutMs: number;
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
}

export interface LabSpawnOptions {
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
  /** stdout and stderr are appended here; without it they are discarded. */
  logFile?: string;
}

export interface Lab {
  readonly name: string;
  readonly slot: number;
  /** A temp dir holding every file of the lab. */
  readonly dir: string;
  readonly hosts: LabHost[];
  /** The bridge's address in the root namespace (198.18.<slot>.254). */
  readonly gatewayAddress: string;
  /** The root namespace's veth holding gatewayAddress (qlg<slot>). */
  readonly gatewayLink: string;
  /** The bridge (qlb<slot>), inside switchNs. */
  readonly bridge: string;
  /** The namespace holding the bridge and the hosts' outer veth ends (ql<slot>sw). */
  readonly switchNs: string;
  readonly sshUser: 'root';
  /** The PATH each sshd gives sessions, before the login shell's rc files extend it. */
  readonly sessionPath: string;
  /** The lab user's private key (ed25519, no passphrase), authorized on every host. */
  readonly sshKeyFile: string;
  /** Every host's address and key at creation, OpenSSH format. Not updated by changeHostKey. */
  readonly knownHostsFile: string;
  /** Runs argv inside the host's namespace; the process group is killed after timeoutMs. */
  exec(host: LabHost, argv: string[], opts: LabExecOptions): Promise<LabExecResult>;
  /** A long-lived process inside the host's namespace, in its own process group; killed by teardown. */
  spawn(host: LabHost, argv: string[], opts?: LabSpawnOptions): ChildProcess;
  /** Takes the host off the network (its veth, switch side, down); its processes keep running. */
  disconnect(host: LabHost): Promise<void>;
  /** Puts the host back; resolves once its address answers from the root namespace. */
  reconnect(host: LabHost): Promise<void>;
  /** The pids of every process inside the host's namespace. */
  pidsOn(host: LabHost): number[];
  /** Sends a signal; false when there is no such process. */
  signal(pid: number, sig: NodeJS.Signals | number): boolean;
  /** A new host key for the host and its sshd restarted with it; returns the new fingerprint. */
  changeHostKey(host: LabHost): Promise<string>;
  /**
   * Silently drops IPv4 traffic between hosts a and b, both ways: TCP whose
   * port (at either end) is one of `ports`, or every packet when ports is
   * omitted. Other traffic, and the root namespace's, is untouched. Done with
   * policy routing rules on the receiving side (no netfilter needed): packets
   * from the peer are routed to a blackhole before local delivery, as lost
   * packets (no reset, no ICMP), established connections included.
   */
  block(a: LabHost, b: LabHost, ports?: number[]): Promise<void>;
  /** Removes every block between a and b that block() set. */
  unblock(a: LabHost, b: LabHost): Promise<void>;
  /** Kills everything in the lab, deletes namespaces and links, releases the slot, removes dir. Idempotent. */
  teardown(): Promise<void>;
  /** See the standalone installQuorate(). */
  installQuorate(): Promise<string>;
}

export interface CreateLabOptions {
  hosts: number;
  /** Used in the temp dir's name and key comments. */
  name?: string;
}

// ---------------------------------------------------------------- availability

let unavailableCache: string | null | undefined;

/**
 * Why this machine cannot run the lab, or null when it can. Checks: root,
 * sshd and ssh-keygen present, and `ip netns add` working. Under CI
 * (process.env.CI set) it returns null anyway, like missingTool(): CI runs as
 * root and must run the lab, so a missing piece there fails the tests loudly
 * (createLab says what is wrong) instead of skipping them.
 */
export function labUnavailable(): string | null {
  if (unavailableCache === undefined) unavailableCache = probeLab();
  return unavailableCache !== null && process.env.CI ? null : unavailableCache;
}

function probeLab(): string | null {
  if (process.platform !== 'linux') return `the lab needs Linux network namespaces (platform ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'the lab needs root (network namespaces, a bridge, sshd on port 22)';
  if (!fs.existsSync(SSHD)) return `${SSHD} is missing (apt-get install openssh-server)`;
  if (!fs.existsSync(KEYGEN)) return `${KEYGEN} is missing (apt-get install openssh-client)`;
  const probe = `qlprobe${process.pid}`;
  const add = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (add.error || add.status !== 0) return `"ip netns add ${probe}" failed: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync(IP, ['netns', 'del', probe], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  return null;
}

// ---------------------------------------------------------------- small sync tools

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** p's value, or 'timeout' after ms (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

function quoteArgv(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs `ip args...` synchronously; throws naming the command unless allowFail. */
function ipSync(args: string[], allowFail = false): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(IP, args, { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  const ok = !r.error && r.status === 0;
  if (!ok && !allowFail) {
    throw new Error(`lab: "ip ${quoteArgv(args)}" failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}): ${(r.stderr ?? '').trim()}`);
  }
  return { ok, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** `ip -batch` in the root namespace, or in `ns` with -n. */
function ipBatch(lines: string[], ns?: string): void {
  const args = [...(ns ? ['-n', ns] : []), '-batch', '-'];
  const r = spawnSync(IP, args, { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (r.error || r.status !== 0) {
    throw new Error(`lab: "ip ${args.join(' ')}"${ns ? ` (namespace ${ns})` : ''} failed (${r.error ? r.error.message : `exit ${r.status ?? r.signal}`}): ${(r.stderr ?? '').trim()}\ncommands:\n${lines.join('\n')}`);
  }
}

function netnsPids(ns: string): number[] {
  const r = ipSync(['netns', 'pids', ns], true);
  if (!r.ok) return [];
  return r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

function listNetns(): string[] {
  return ipSync(['netns', 'list'], true).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

function listLinks(): string[] {
  // "8: qltv@if2: <...>" -> qltv
  return ipSync(['-o', 'link', 'show'], true).stdout.split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((s): s is string => Boolean(s));
}

/** The process start time (clock ticks since boot), or null when no such process. */
function procStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22, counted from field 3
  } catch {
    return null;
  }
}

function killQuiet(pid: number, sig: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- slots

const slotNames = (slot: number) => ({
  /** The bridge, inside switchNs. */
  bridge: `qlb${slot}`,
  switchNs: `ql${slot}sw`,
  /** The root namespace's end of the gateway veth (its peer in switchNs is "gw"). */
  gatewayLink: `qlg${slot}`,
  /** Every namespace of the slot: hosts and the switch. */
  nsRe: new RegExp(`^ql${slot}(h\\d+|sw)$`),
  /** Links of the slot that may sit in the root namespace. */
  rootLinkRe: new RegExp(`^(ql${slot}h\\d+|qlb${slot}|qlg${slot})$`),
  subnet: `198.18.${slot}.`,
  gateway: `198.18.${slot}.254`,
});

const lockPath = (slot: number) => path.join(LAB_ROOT, `slot-${slot}.lock`);

interface SlotOwner { pid: number; start: string; dir: string }

function parseOwner(text: string | null): SlotOwner | null {
  if (text === null) return null;
  try {
    const o = JSON.parse(text) as SlotOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null;
  }
}

function readLock(slot: number): string | null {
  try { return fs.readFileSync(lockPath(slot), 'utf8'); } catch { return null; }
}

function readOwner(slot: number): SlotOwner | null {
  return parseOwner(readLock(slot));
}

function ownerAlive(o: SlotOwner | null): boolean {
  if (o === null) return false;
  return procStartTime(o.pid) === o.start;
}

/** Removes a lab dir recorded in a stale lock, only if it looks like one of ours. */
function removeLabDir(dir: string): void {
  if (typeof dir === 'string' && path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith('quorate-lab-')) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kills every process in the namespace (bounded rounds); returns pids that survived. */
function killNetnsProcesses(ns: string): number[] {
  let pids: number[] = [];
  for (let round = 0; round < KILL_ROUNDS_MAX; round++) {
    pids = netnsPids(ns).filter((p) => p !== process.pid);
    if (pids.length === 0) return [];
    for (const p of pids) killQuiet(p, 'SIGKILL');
    sleepSync(POLL_INTERVAL_MS);
  }
  return pids;
}

/**
 * Removes everything named after the slot: processes in its namespaces,
 * veths, the bridge, the namespaces. Throws (after trying everything) when
 * something is left.
 */
function cleanSlot(slot: number): void {
  const { nsRe, rootLinkRe } = slotNames(slot);
  const problems: string[] = [];
  const namespaces = listNetns().filter((n) => nsRe.test(n));
  for (const ns of namespaces) {
    const left = killNetnsProcesses(ns);
    if (left.length > 0) problems.push(`processes ${left.join(',')} in namespace ${ns} survived SIGKILL`);
  }
  // Bridges last: a bridge does not go away with its ports.
  const links = listLinks().filter((l) => rootLinkRe.test(l)).sort((a, b) => Number(a.startsWith('qlb')) - Number(b.startsWith('qlb')));
  for (const l of links) {
    const r = ipSync(['link', 'del', l], true);
    if (!r.ok && listLinks().includes(l)) problems.push(`"ip link del ${l}": ${r.stderr.trim()}`);
  }
  for (const ns of namespaces) {
    const r = ipSync(['netns', 'del', ns], true);
    if (!r.ok && listNetns().includes(ns)) problems.push(`"ip netns del ${ns}": ${r.stderr.trim()}`);
  }
  if (problems.length > 0) throw new Error(`lab slot ${slot}: cleanup incomplete: ${problems.join('; ')}`);
}

/** An address in 198.18.<slot>.0/24 in the root namespace, on an interface not of this slot. */
function subnetTakenByOthers(slot: number): string | null {
  const { gatewayLink, subnet } = slotNames(slot);
  const out = ipSync(['-4', '-o', 'addr', 'show'], true).stdout;
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(line);
    if (m && m[2].startsWith(subnet) && m[1] !== gatewayLink) return `${m[2]} on ${m[1]}`;
  }
  return null;
}

/**
 * Removes the slot's lock if it still holds `staleText` (a dead owner's).
 * Only a holder of the slot's reclaim guard (taken with link, held for
 * microseconds) may unlink a lock it did not write, so a lock taken afresh
 * by a live process is never removed; a guard older than RECLAIM_GUARD_STALE_MS
 * (its holder died within those microseconds) is cleared.
 */
function reclaimStale(slot: number, staleText: string): void {
  const guard = path.join(LAB_ROOT, `slot-${slot}.reclaim`);
  const tmp = path.join(LAB_ROOT, `.guard-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, String(process.pid));
  try {
    fs.linkSync(tmp, guard);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - fs.statSync(guard).mtimeMs > RECLAIM_GUARD_STALE_MS) {
        const aside = path.join(LAB_ROOT, `.stale-guard-${crypto.randomBytes(6).toString('hex')}`);
        fs.renameSync(guard, aside);
        fs.rmSync(aside, { force: true });
      }
    } catch { /* gone meanwhile */ }
    return;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    const now = readLock(slot);
    if (now !== staleText || ownerAlive(parseOwner(now))) return;
    fs.rmSync(lockPath(slot), { force: true });
    const o = parseOwner(now);
    if (o) removeLabDir(o.dir);
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

/** Takes the lowest free slot (reclaiming ones whose owner died); returns it, cleaned. */
function acquireSlot(dir: string): number {
  fs.mkdirSync(LAB_ROOT, { recursive: true, mode: 0o755 });
  const me: SlotOwner = { pid: process.pid, start: procStartTime(process.pid) ?? '?', dir };
  const tmp = path.join(LAB_ROOT, `.lock-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, JSON.stringify(me));
  const skipped: string[] = [];
  try {
    for (let slot = SLOT_MIN; slot <= SLOT_MAX; slot++) {
      for (let attempt = 0; attempt < SLOT_TAKE_ATTEMPTS_MAX; attempt++) {
        try {
          fs.linkSync(tmp, lockPath(slot)); // atomic: fails with EEXIST when taken
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          const text = readLock(slot);
          if (ownerAlive(parseOwner(text))) break; // in use: next slot
          if (text !== null) reclaimStale(slot, text);
          continue;
        }
        // Ours. Remove what a dead owner left behind, then check the subnet is free.
        try {
          cleanSlot(slot);
          const taken = subnetTakenByOthers(slot);
          if (taken === null) return slot;
          skipped.push(`slot ${slot}: ${taken}`);
        } catch (e) {
          skipped.push((e as Error).message);
        }
        fs.rmSync(lockPath(slot), { force: true });
        break;
      }
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  throw new Error(`lab: no free slot in ${SLOT_MIN}..${SLOT_MAX} under ${LAB_ROOT}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
}

/** Whether a live process holds the slot's lock (a stale lock counts as free). */
export function slotInUse(slot: number): boolean {
  return ownerAlive(readOwner(slot));
}

function releaseSlot(slot: number, dir: string): void {
  const o = readOwner(slot);
  if (o && o.pid === process.pid && o.dir === dir) fs.rmSync(lockPath(slot), { force: true });
}

// ---------------------------------------------------------------- keys

function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function runAsync(cmd: string, args: string[], timeoutMs: number, what: string, env?: NodeJS.ProcessEnv, cwd?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout = (stdout + d.toString()).slice(-OUTPUT_KEEP_CHARS); });
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-OUTPUT_KEEP_CHARS); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killQuiet(-child.pid!, 'SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`${what}: "${cmd} ${quoteArgv(args)}" did not start: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ stdout, stderr });
      reject(new Error(`${what}: "${cmd} ${quoteArgv(args)}" ${timedOut ? `killed after ${timeoutMs} ms` : `failed (exit ${code ?? signal})`}:\n${stderr.trim()}\n${stdout.trim()}`.trim()));
    });
  });
}

async function makeKey(file: string, comment: string): Promise<string> {
  await runAsync(KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], KEYGEN_TIMEOUT_MS, `lab: ssh-keygen for ${file}`);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

// ---------------------------------------------------------------- TCP probes

type Probe = 'banner' | 'open' | 'refused' | 'unreachable';

/** One TCP connect from the root namespace: 'banner' when an SSH banner came, 'refused' on RST. */
function probeTcp(address: string, port: number, timeoutMs: number, wantBanner: boolean): Promise<Probe> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: address, port });
    let done = false;
    const finish = (p: Probe) => { if (!done) { done = true; clearTimeout(timer); sock.destroy(); resolve(p); } };
    const timer = setTimeout(() => finish('unreachable'), timeoutMs);
    let got = '';
    sock.on('connect', () => { if (!wantBanner) finish('open'); });
    sock.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.includes('\n')) finish(got.startsWith('SSH-') ? 'banner' : 'open'); });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'unreachable'));
    sock.on('close', () => finish('open'));
  });
}

// ---------------------------------------------------------------- the lab

interface HostState {
  host: LabHost;
  index: number;
  veth: string;
  hostDir: string;
  /** The sessions' HOME: empty, so the shell sshd runs reads no profile. */
  home: string;
  configFile: string;
  pidFile: string;
  keyGeneration: number;
  sshd: ChildProcess | null;
  sshdLog: string;
}

const liveLabs = new Set<LabImpl>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) {
      try { lab.teardownSync(); } catch { /* best effort at exit */ }
    }
  });
}

class LabImpl implements Lab {
  readonly sshUser = 'root' as const;
  readonly sessionPath = SESSION_PATH ?? SSHD_ROOT_PATH;
  readonly hosts: LabHost[] = [];
  readonly bridge: string;
  readonly switchNs: string;
  readonly gatewayLink: string;
  readonly gatewayAddress: string;
  readonly sshKeyFile: string;
  readonly knownHostsFile: string;
  private readonly authorizedKeysFile: string;
  private readonly states = new Map<LabHost, HostState>();
  private readonly children = new Set<ChildProcess>();
  private namespaces: string[] = [];
  private tornDown = false;

  constructor(readonly name: string, readonly slot: number, readonly dir: string) {
    const n = slotNames(slot);
    this.bridge = n.bridge;
    this.switchNs = n.switchNs;
    this.gatewayLink = n.gatewayLink;
    this.gatewayAddress = n.gateway;
    this.sshKeyFile = path.join(dir, 'user_ed25519');
    this.knownHostsFile = path.join(dir, 'known_hosts');
    this.authorizedKeysFile = path.join(dir, 'authorized_keys');
  }

  private where(host: LabHost): string {
    return `lab host ${host.name} (namespace ${host.ns}, ${host.address})`;
  }

  private state(host: LabHost): HostState {
    const s = this.states.get(host);
    if (!s) throw new Error(`lab ${this.name}: ${host?.name ?? String(host)} is not a host of this lab`);
    if (this.tornDown) throw new Error(`lab ${this.name}: already torn down (${host.name})`);
    return s;
  }

  async build(count: number): Promise<void> {
    const slot = this.slot;
    for (let i = 1; i <= count; i++) {
      const ns = `ql${slot}h${i}`;
      const hostDir = path.join(this.dir, `h${i}`);
      fs.mkdirSync(hostDir);
      fs.mkdirSync(path.join(hostDir, 'home'));
      const host: LabHost = { name: `h${i}`, ns, address: `198.18.${slot}.${i}`, sshPort: 22, hostKeyFile: '', hostPublicKey: '', fingerprint: '' };
      this.hosts.push(host);
      this.states.set(host, {
        host, index: i, veth: ns, hostDir, home: path.join(hostDir, 'home'),
        configFile: path.join(hostDir, 'sshd_config'), pidFile: path.join(hostDir, 'sshd.pid'),
        keyGeneration: 0, sshd: null, sshdLog: '',
      });
    }

    // Keys first (in parallel): the lab user's and one host key per host.
    const userPub = makeKey(this.sshKeyFile, `quorate-lab-${this.name}-user`);
    await Promise.all(this.hosts.map((h) => this.newHostKey(h)));
    fs.writeFileSync(this.authorizedKeysFile, `${await userPub}\n`, { mode: 0o600 });
    fs.writeFileSync(this.knownHostsFile, this.hosts.map((h) => `${h.address} ${h.hostPublicKey}`).join('\n') + '\n');

    // The network: the switch namespace with the bridge, one veth pair per
    // host into it, one from the root namespace (the gateway). No IPv6
    // addresses (link-local ones included) anywhere outside loopback.
    const sw = this.switchNs;
    this.namespaces = [sw, ...this.hosts.map((h) => h.ns)];
    ipBatch(this.namespaces.map((ns) => `netns add ${ns}`));
    await this.execSetup(sw, [
      'for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do [ -e $f ] && echo 1 > $f; done',
      'for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables /proc/sys/net/bridge/bridge-nf-call-arptables; do [ -e $f ] && echo 0 > $f; done',
      'exit 0',
    ].join('; '));
    ipBatch([
      `link add ${this.gatewayLink} type veth peer name gw netns ${sw}`,
      `link set ${this.gatewayLink} addrgenmode none`,
    ]);
    try { fs.writeFileSync(`/proc/sys/net/ipv6/conf/${this.gatewayLink}/disable_ipv6`, '1'); } catch { /* no IPv6 in this kernel */ }
    ipBatch([`address add ${this.gatewayAddress}/24 dev ${this.gatewayLink}`, `link set ${this.gatewayLink} up`]);
    ipBatch([
      `link add ${this.bridge} type bridge stp_state 0 forward_delay 0`,
      'link set gw master ' + this.bridge,
      ...this.hosts.map((h) => `link add ${h.ns} type veth peer name eth0 netns ${h.ns}`),
      ...this.hosts.map((h) => `link set ${h.ns} master ${this.bridge}`),
      `link set ${this.bridge} up`,
      'link set gw up',
      ...this.hosts.map((h) => `link set ${h.ns} up`),
    ], sw);
    for (const h of this.hosts) {
      ipBatch([
        'link set lo up',
        'link set eth0 addrgenmode none',
        `address add ${h.address}/24 dev eth0`,
        'link set eth0 up',
      ], h.ns);
    }

    // One sshd per host, in parallel.
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // its privilege separation dir
    await Promise.all(this.hosts.map((h) => this.startSshd(h)));
    if (this.hosts.length > 1) await this.checkHostToHost();
  }

  /** A shell snippet run in a namespace during set-up; throws naming the namespace. */
  private async execSetup(ns: string, script: string): Promise<void> {
    await runAsync(IP, ['netns', 'exec', ns, 'sh', '-c', script], IP_TIMEOUT_MS, `lab: set-up in namespace ${ns}`);
  }

  /** The first host reaches every other host's sshd through the bridge. */
  private async checkHostToHost(): Promise<void> {
    const [from, ...others] = this.hosts;
    const script = others.map((h) => `exec 3<>/dev/tcp/${h.address}/22 || { echo "no connection to ${h.name} ${h.address}:22" >&2; exit 1; }; exec 3>&-`).join('; ');
    const argv = ['bash', '-c', script];
    const r = await this.exec(from, argv, { timeoutMs: HOST_TO_HOST_TIMEOUT_MS });
    if (r.code !== 0) {
      const nf = await this.exec(from, ['sh', '-c', 'cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo "(no br_netfilter)"'], { timeoutMs: IP_TIMEOUT_MS }).catch(() => null);
      throw new Error(`${this.where(from)}: cannot reach the other hosts through bridge ${this.bridge} (namespace ${this.switchNs}): "${quoteArgv(argv)}" ${r.timedOut ? `timed out after ${HOST_TO_HOST_TIMEOUT_MS} ms` : `exited ${r.code ?? r.signal}`}: ${r.stderr.trim()}; bridge-nf-call-iptables in the host namespace: ${nf?.stdout.trim() ?? '?'}`);
    }
  }

  private async newHostKey(host: LabHost): Promise<void> {
    const s = this.states.get(host)!;
    s.keyGeneration++;
    const file = path.join(s.hostDir, `ssh_host_ed25519_key.${s.keyGeneration}`);
    const pub = await makeKey(file, `quorate-lab-${this.name}-${host.name}-${s.keyGeneration}`);
    host.hostKeyFile = file;
    host.hostPublicKey = pub;
    host.fingerprint = fingerprintOf(pub);
  }

  private writeSshdConfig(s: HostState): void {
    fs.writeFileSync(s.configFile, [
      `ListenAddress ${s.host.address}:22`,
      `HostKey ${s.host.hostKeyFile}`,
      `PidFile ${s.pidFile}`,
      `AuthorizedKeysFile ${this.authorizedKeysFile}`,
      'AuthenticationMethods publickey',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'HostbasedAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'X11Forwarding no',
      'LoginGraceTime 20',
      'MaxStartups 64:30:128',
      'MaxSessions 64',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      // A home of the host's own: bash run by sshd sources ~/.bashrc for every command, and this
      // machine's root's (pyenv's init) costs about half a second of CPU per ssh command.
      `SetEnv HOME=${s.home}${SESSION_PATH ? ` PATH=${SESSION_PATH}` : ''}`,
    ].join('\n') + '\n');
  }

  private async startSshd(host: LabHost): Promise<void> {
    const s = this.states.get(host)!;
    this.writeSshdConfig(s);
    const argv = [IP, 'netns', 'exec', host.ns, SSHD, '-D', '-e', '-f', s.configFile];
    const child = spawnChild(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    s.sshd = child;
    s.sshdLog = '';
    this.track(child);
    child.stderr!.on('data', (d: Buffer) => { s.sshdLog = (s.sshdLog + d.toString()).slice(-SSHD_LOG_KEEP_CHARS); });
    let exited: string | null = null;
    child.once('exit', (code, sig) => { exited = `exited (${code ?? sig})`; });
    child.once('error', (e) => { exited = `did not start: ${e.message}`; });
    // Do not let a forgotten teardown keep the worker alive: the exit hook cleans up.
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();

    const fail = (why: string) => new Error(`${this.where(host)}: sshd ${why}: "${quoteArgv(argv)}"\nsshd stderr:\n${s.sshdLog.trim() || '(none)'}`);
    const deadline = Date.now() + SSHD_START_TIMEOUT_MS;
    let last: Probe = 'unreachable';
    for (let attempt = 0; attempt < SSHD_START_TIMEOUT_MS / POLL_INTERVAL_MS && Date.now() < deadline; attempt++) {
      if (exited) break;
      last = await probeTcp(host.address, 22, PROBE_CONNECT_TIMEOUT_MS, true);
      if (last === 'banner') return;
      await sleep(POLL_INTERVAL_MS * 2);
    }
    if (exited) {
      await sleep(50); // let the last stderr lines arrive
      throw fail(exited);
    }
    throw fail(`gave no SSH banner on ${host.address}:22 within ${SSHD_START_TIMEOUT_MS} ms (last probe: ${last})`);
  }

  private async stopSshd(s: HostState): Promise<void> {
    const child = s.sshd;
    s.sshd = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    killQuiet(child.pid!, 'SIGTERM');
    if (await within(gone, SSHD_STOP_TIMEOUT_MS) === 'timeout') {
      killQuiet(child.pid!, 'SIGKILL');
      if (await within(gone, SSHD_STOP_TIMEOUT_MS) === 'timeout') {
        throw new Error(`${this.where(s.host)}: its sshd (pid ${child.pid}) survived SIGTERM and SIGKILL`);
      }
    }
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
  }

  async exec(host: LabHost, argv: string[], opts: LabExecOptions): Promise<LabExecResult> {
    const s = this.state(host);
    if (!Array.isArray(argv) || argv.length === 0) throw new Error(`${this.where(host)}: exec needs a non-empty argv`);
    if (!(opts?.timeoutMs > 0)) throw new Error(`${this.where(host)}: exec "${quoteArgv(argv)}" needs timeoutMs > 0`);
    const full = ['netns', 'exec', s.host.ns, ...argv];
    return new Promise((resolve, reject) => {
      const child = spawnChild(IP, full, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...opts.env } });
      this.track(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => { stdout = (stdout + d.toString()).slice(-OUTPUT_KEEP_CHARS); });
      child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-OUTPUT_KEEP_CHARS); });
      let timedOut = false;
      let settled = false;
      const timer = setTimeout(() => { timedOut = true; killQuiet(-child.pid!, 'SIGKILL'); }, opts.timeoutMs);
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (timedOut) stderr += `\n[lab: ${this.where(host)}: "${quoteArgv(argv)}" killed after ${opts.timeoutMs} ms]`;
        resolve({ code, signal, stdout, stderr, timedOut });
      };
      child.on('error', (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(new Error(`${this.where(host)}: "${quoteArgv(argv)}" did not start: ${e.message}`));
      });
      child.on('close', finish);
      // A background grandchild may hold stdout open: do not wait for it past a grace period.
      child.on('exit', (code, signal) => {
        setTimeout(() => { child.stdout?.destroy(); child.stderr?.destroy(); finish(code, signal); }, CHILD_EXIT_GRACE_MS).unref();
      });
    });
  }

  spawn(host: LabHost, argv: string[], opts: LabSpawnOptions = {}): ChildProcess {
    const s = this.state(host);
    if (!Array.isArray(argv) || argv.length === 0) throw new Error(`${this.where(host)}: spawn needs a non-empty argv`);
    const fd = opts.logFile ? fs.openSync(opts.logFile, 'a') : null;
    try {
      const child = spawnChild(IP, ['netns', 'exec', s.host.ns, ...argv], {
        stdio: ['ignore', fd ?? 'ignore', fd ?? 'ignore'], detached: true, env: { ...process.env, ...opts.env },
      });
      this.track(child);
      return child;
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  }

  /** "state UP" and the lower layer of a link, from `ip -o link show` in a namespace. */
  private linkUp(ns: string, ifname: string): { up: boolean; text: string } {
    const text = ipSync(['-n', ns, '-o', 'link', 'show', 'dev', ifname], true).stdout.trim();
    return { up: /state UP/.test(text) && !/NO-CARRIER/.test(text), text };
  }

  private async waitLinkState(host: LabHost, want: 'up' | 'down', what: string): Promise<void> {
    const s = this.state(host);
    const deadline = Date.now() + LINK_STATE_TIMEOUT_MS;
    for (let i = 0; i < LINK_STATE_TIMEOUT_MS / POLL_INTERVAL_MS && Date.now() < deadline; i++) {
      const outer = this.linkUp(this.switchNs, s.veth).up;
      const inner = this.linkUp(host.ns, 'eth0').up;
      if (want === 'up' ? outer && inner : !outer && !inner) return;
      await sleep(POLL_INTERVAL_MS);
    }
    throw new Error(`${this.where(host)}: ${what}: links still not ${want} after ${LINK_STATE_TIMEOUT_MS} ms: ${this.linkUp(this.switchNs, s.veth).text} / ${this.linkUp(host.ns, 'eth0').text}`);
  }

  async disconnect(host: LabHost): Promise<void> {
    const s = this.state(host);
    ipSync(['-n', this.switchNs, 'link', 'set', s.veth, 'down']);
    await this.waitLinkState(host, 'down', `disconnect ("ip -n ${this.switchNs} link set ${s.veth} down")`);
  }

  async reconnect(host: LabHost): Promise<void> {
    const s = this.state(host);
    ipSync(['-n', this.switchNs, 'link', 'set', s.veth, 'up']);
    await this.waitLinkState(host, 'up', `reconnect ("ip -n ${this.switchNs} link set ${s.veth} up")`);
    // Effective once the host's address answers from the root namespace: a
    // connect to port 22 that succeeds, or is refused (its sshd was killed).
    const deadline = Date.now() + RECONNECT_TIMEOUT_MS;
    let last: Probe = 'unreachable';
    for (let i = 0; i < RECONNECT_TIMEOUT_MS / POLL_INTERVAL_MS && Date.now() < deadline; i++) {
      last = await probeTcp(host.address, 22, PROBE_CONNECT_TIMEOUT_MS, false);
      if (last !== 'unreachable') return;
      await sleep(POLL_INTERVAL_MS * 2);
    }
    throw new Error(`${this.where(host)}: reconnect: ${host.address}:22 does not answer from the root namespace after ${RECONNECT_TIMEOUT_MS} ms`);
  }

  pidsOn(host: LabHost): number[] {
    return netnsPids(this.state(host).host.ns);
  }

  signal(pid: number, sig: NodeJS.Signals | number): boolean {
    return killQuiet(pid, sig);
  }

  /** Per host namespace: the block rules in place ("from <addr> ..." argv tails), by peer address. */
  private readonly blockRules = new Map<string, Map<string, string[][]>>();

  /** The local table's rule moved after the block rules' preference (once per host), so they see packets for local delivery. */
  private localRuleMoved(host: LabHost): void {
    if (this.blockRules.has(host.ns)) return;
    const rules = ipSync(['-n', host.ns, 'rule', 'show'], true).stdout;
    if (!new RegExp(`^${LOCAL_RULE_PREF}:\\s+from all lookup local`, 'm').test(rules)) {
      ipBatch([`rule add pref ${LOCAL_RULE_PREF} lookup local`], host.ns);
    }
    if (/^0:\s+from all lookup local/m.test(rules)) ipBatch(['rule del pref 0 lookup local'], host.ns);
    this.blockRules.set(host.ns, new Map());
  }

  async block(a: LabHost, b: LabHost, ports?: number[]): Promise<void> {
    this.state(a);
    this.state(b);
    if (a === b) throw new Error(`${this.where(a)}: block needs two different hosts`);
    if (ports !== undefined && (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))) {
      throw new Error(`${this.where(a)}: block: ports must be a non-empty list of port numbers, got ${JSON.stringify(ports)}`);
    }
    for (const [on, peer] of [[a, b], [b, a]] as const) {
      this.localRuleMoved(on);
      const tails: string[][] = ports === undefined
        ? [['from', peer.address, 'blackhole']]
        : ports.flatMap((p) => [
          ['from', peer.address, 'ipproto', 'tcp', 'dport', String(p), 'blackhole'],
          ['from', peer.address, 'ipproto', 'tcp', 'sport', String(p), 'blackhole'],
        ]);
      const byPeer = this.blockRules.get(on.ns)!;
      const have = byPeer.get(peer.address) ?? [];
      const fresh = tails.filter((t) => !have.some((h) => h.join(' ') === t.join(' ')));
      if (fresh.length > 0) ipBatch(fresh.map((t) => `rule add pref ${BLOCK_RULE_PREF} ${t.join(' ')}`), on.ns);
      byPeer.set(peer.address, [...have, ...fresh]);
    }
  }

  async unblock(a: LabHost, b: LabHost): Promise<void> {
    this.state(a);
    this.state(b);
    const problems: string[] = [];
    for (const [on, peer] of [[a, b], [b, a]] as const) {
      const byPeer = this.blockRules.get(on.ns);
      const tails = byPeer?.get(peer.address) ?? [];
      byPeer?.delete(peer.address);
      for (const t of tails) {
        const r = ipSync(['-n', on.ns, 'rule', 'del', 'pref', String(BLOCK_RULE_PREF), ...t], true);
        if (!r.ok) problems.push(`"ip -n ${on.ns} rule del pref ${BLOCK_RULE_PREF} ${t.join(' ')}": ${r.stderr.trim()}`);
      }
    }
    if (problems.length > 0) throw new Error(`${this.where(a)}: unblock from ${b.name}: ${problems.join('; ')}`);
  }

  async changeHostKey(host: LabHost): Promise<string> {
    const s = this.state(host);
    await this.newHostKey(host);
    await this.stopSshd(s);
    await this.startSshd(host);
    return host.fingerprint;
  }

  installQuorate(): Promise<string> {
    return installQuorate();
  }

  /** The synchronous core of teardown (also used by the 'exit' hook). */
  teardownSync(): void {
    if (this.tornDown) return;
    const problems: string[] = [];
    for (const child of this.children) {
      if (child.pid !== undefined) { killQuiet(-child.pid, 'SIGKILL'); killQuiet(child.pid, 'SIGKILL'); }
    }
    try {
      cleanSlot(this.slot);
    } catch (e) {
      problems.push((e as Error).message);
    }
    for (const ns of this.namespaces) {
      if (listNetns().includes(ns)) problems.push(`namespace ${ns} still exists`);
    }
    if (problems.length > 0) throw new Error(`lab ${this.name} teardown: ${problems.join('; ')}`);
    this.tornDown = true;
    liveLabs.delete(this);
    releaseSlot(this.slot, this.dir);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    const children = [...this.children];
    this.teardownSync();
    // Reap what we killed so no zombie of ours stays behind.
    await within(Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))), CHILD_EXIT_GRACE_MS);
  }
}

/** Builds a lab of `hosts` hosts; on any failure tears down what it built and rethrows. */
export async function createLab(opts: CreateLabOptions): Promise<Lab> {
  const count = opts.hosts;
  if (!Number.isInteger(count) || count < 1 || count > HOSTS_MAX) throw new Error(`createLab: hosts must be an integer in 1..${HOSTS_MAX}, got ${count}`);
  const name = (opts.name ?? 'lab').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'lab';
  const reason = probeLab();
  if (reason !== null) throw new Error(`createLab: the lab cannot run here: ${reason}`);
  checkRootAccount();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `quorate-lab-${name}-`));
  let slot: number;
  try {
    slot = acquireSlot(dir);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const lab = new LabImpl(name, slot, dir);
  liveLabs.add(lab);
  installExitHook();
  try {
    await lab.build(count);
    return lab;
  } catch (e) {
    try {
      await lab.teardown();
    } catch (t) {
      (e as Error).message += `\n(and teardown after the failure: ${(t as Error).message})`;
    }
    throw e;
  }
}

/** sshd with UsePAM no refuses an account whose password field starts with '!'. */
function checkRootAccount(): void {
  let shadow: string;
  try { shadow = fs.readFileSync('/etc/shadow', 'utf8'); } catch { return; }
  const field = shadow.split('\n').find((l) => l.startsWith('root:'))?.split(':')[1];
  if (field !== undefined && field.startsWith('!')) {
    throw new Error('createLab: root\'s password field in /etc/shadow starts with "!" (locked): sshd with "UsePAM no" refuses every login as root, keys included. Set it to "*" (usermod -p \'*\' root) on this test machine.');
  }
}

// ---------------------------------------------------------------- installing the package

let installing: Promise<string> | null = null;

/**
 * Packs the repo (npm pack, dist/ already built) and installs the tarball
 * globally under a prefix shared by every lab host (they all see /tmp):
 * /tmp/quorate-lab/install-<sha256 of the tarball, 16 hex>/. Cached per
 * tarball content, so several test files install once; concurrent callers
 * each install into a temp dir and rename it into place (first wins).
 * Returns <prefix>/bin/quorate, checked to print package.json's version.
 */
export function installQuorate(): Promise<string> {
  installing ??= doInstallQuorate().catch((e) => { installing = null; throw e; });
  return installing;
}

async function doInstallQuorate(): Promise<string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin?: Record<string, string> };
  const entry = path.join(REPO_ROOT, pkg.bin?.quorate ?? 'dist/src/cli/main.js');
  if (!fs.existsSync(entry)) throw new Error(`installQuorate: ${entry} is missing: run "npm run build" first (npm test does)`);
  fs.mkdirSync(LAB_ROOT, { recursive: true, mode: 0o755 });
  const packDir = fs.mkdtempSync(path.join(LAB_ROOT, '.pack-'));
  try {
    await runAsync('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir, '--loglevel=error'], NPM_PACK_TIMEOUT_MS, `installQuorate: npm pack in ${REPO_ROOT}`, process.env, REPO_ROOT);
    const tgzName = fs.readdirSync(packDir).find((f) => f.endsWith('.tgz'));
    if (!tgzName) throw new Error(`installQuorate: npm pack in ${REPO_ROOT} left no .tgz in ${packDir}`);
    const tgz = path.join(packDir, tgzName);
    const hash = crypto.createHash('sha256').update(fs.readFileSync(tgz)).digest('hex').slice(0, 16);
    const prefix = path.join(LAB_ROOT, `install-${hash}`);
    const bin = path.join(prefix, 'bin', 'quorate');
    // A prefix only ever appears whole (renamed into place), marked complete.
    const marker = path.join(prefix, '.complete');
    if (!fs.existsSync(marker)) {
      const tmp = fs.mkdtempSync(path.join(LAB_ROOT, '.install-'));
      try {
        await runAsync('npm', ['install', '-g', '--prefix', tmp, tgz, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
          NPM_INSTALL_TIMEOUT_MS, `installQuorate: npm install -g --prefix ${tmp} ${tgz}`);
        fs.copyFileSync(tgz, path.join(tmp, tgzName));
        fs.writeFileSync(path.join(tmp, '.complete'), `${tgzName} sha256:${hash}\n`);
        fs.chmodSync(tmp, 0o755); // mkdtemp made it 0700
        if (fs.existsSync(prefix) && !fs.existsSync(marker)) moveAsideAndRemove(prefix); // not made by this code: replace it
        try {
          fs.renameSync(tmp, prefix);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e; // else a concurrent caller won: use theirs
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    try { fs.utimesSync(prefix, new Date(), new Date()); } catch { /* checked below */ } // in use: not pruned
    pruneOldInstalls(prefix);
    const version = await versionOf(bin);
    if (version !== pkg.version) throw new Error(`installQuorate: "${bin} --version" printed ${JSON.stringify(version)}, expected ${pkg.version}`);
    return bin;
  } finally {
    fs.rmSync(packDir, { recursive: true, force: true });
  }
}

function moveAsideAndRemove(dir: string): void {
  const aside = path.join(LAB_ROOT, `.old-${crypto.randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(dir, aside);
  } catch {
    return; // moved or removed meanwhile
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

/** Removes installs of other tarballs (older code) not touched for INSTALL_KEEP_MS, and old temps. */
function pruneOldInstalls(keep: string): void {
  let names: string[];
  try { names = fs.readdirSync(LAB_ROOT).filter((n) => n.startsWith('install-')).slice(0, INSTALLS_SCANNED_MAX); } catch { return; }
  for (const n of names) {
    const dir = path.join(LAB_ROOT, n);
    if (dir === keep) continue;
    try {
      if (Date.now() - fs.statSync(dir).mtimeMs > INSTALL_KEEP_MS) moveAsideAndRemove(dir);
    } catch { /* gone meanwhile */ }
  }
  // Temp files and dirs of callers killed half way (pack, install, lock and guard temps).
  let temps: string[];
  try { temps = fs.readdirSync(LAB_ROOT).filter((n) => /^\.(pack|install|old|lock|guard|stale)-/.test(n)).slice(0, INSTALLS_SCANNED_MAX); } catch { return; }
  for (const n of temps) {
    const p = path.join(LAB_ROOT, n);
    try {
      if (Date.now() - fs.lstatSync(p).mtimeMs > TEMP_KEEP_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch { /* gone meanwhile */ }
  }
}

async function versionOf(bin: string): Promise<string> {
  try {
    return (await runAsync(bin, ['--version'], VERSION_TIMEOUT_MS, `installQuorate: ${bin} --version`)).stdout.trim();
  } catch (e) {
    return `(failed: ${(e as Error).message})`;
  }
}
