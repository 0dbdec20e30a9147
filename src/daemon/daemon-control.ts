// zkServer.sh's job for one process on this host: start it in the background
// (pid file and log file under a run directory; success only once it
// answers), stop it (SIGTERM, wait, say what happened), and say whether it
// runs (pid, uptime, role). Exit codes follow the LSB init-script
// convention, so a shell script can test them.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { inspectPidFile, removeStalePidFile } from '../io/pid-file.js';
import { pidAlive } from '../io/process-info.js';
import type { DaemonKind, DaemonSpec, Probe } from './daemon-spec.js';

/** Where pid and log files go when neither --run-dir nor the cluster file's runDir says. */
export const DEFAULT_RUN_DIR = '/run/quorate';

export const DAEMON_DEFAULTS = {
  /** How long `start --daemon` waits for the process to answer (a quorum server loading a big snapshot needs a while). */
  start_wait_ms: 30_000,
  /** How long `stop` waits after SIGTERM before SIGKILL. */
  stop_wait_ms: 30_000,
  probe_timeout_ms: 2_000,
  poll_interval_ms: 100,
  log_tail_lines: 15,
} as const;

/** LSB status codes: 0 running, 1 dead but a pid file remains, 3 not running, 4 unknown (here: runs but does not answer). */
export const STATUS_EXIT = { running: 0, stale: 1, stopped: 3, 'not-answering': 4 } as const;

export type DaemonStateName = 'running' | 'stopped' | 'not-answering';

export interface DaemonState {
  kind: DaemonKind;
  id: string;
  state: DaemonStateName;
  pid: number | null;
  uptimeMs: number | null;
  role: string | null;
  detail: string | null;
  facts: Record<string, string>;
  pidFile: string;
  logFile: string;
  /** A pid file left by a process that is gone. */
  stale: boolean;
}

export const pidFileOf = (runDir: string, spec: DaemonSpec) => path.join(runDir, `${spec.name}.pid`);
export const logFileOf = (runDir: string, spec: DaemonSpec) => path.join(runDir, `${spec.name}.log`);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

export async function daemonStatus(spec: DaemonSpec, runDir: string, probeTimeoutMs: number = DAEMON_DEFAULTS.probe_timeout_ms): Promise<DaemonState> {
  const pidFile = pidFileOf(runDir, spec);
  const base = { kind: spec.kind, id: spec.id, pidFile, logFile: logFileOf(runDir, spec), facts: {} };
  const found = inspectPidFile(pidFile);
  if (found.state !== 'running') {
    return { ...base, state: 'stopped', pid: null, uptimeMs: null, role: null, stale: found.state === 'stale', detail: found.state === 'stale' ? `stale pid file: ${found.reason}` : null };
  }
  const p: Probe = await spec.probe(probeTimeoutMs);
  return {
    ...base, state: p.answering ? 'running' : 'not-answering', pid: found.pid, uptimeMs: Math.max(0, Date.now() - found.startedAtMs),
    role: p.role, detail: p.detail, facts: p.facts, stale: false,
  };
}

export function statusExitCode(s: DaemonState): number {
  return s.state === 'stopped' ? (s.stale ? STATUS_EXIT.stale : STATUS_EXIT.stopped) : STATUS_EXIT[s.state];
}

export function describeState(spec: DaemonSpec, s: DaemonState): string {
  if (s.state === 'stopped') return `${spec.label}: stopped${s.detail ? ` (${s.detail})` : ''}`;
  const up = s.uptimeMs === null ? '' : `, up ${formatDuration(s.uptimeMs)}`;
  if (s.state === 'not-answering') return `${spec.label}: running (pid ${s.pid}${up}) but NOT ANSWERING: ${s.detail ?? 'no answer'}`;
  return `${spec.label}: running (pid ${s.pid}${up}), role ${s.role ?? '-'}${s.detail ? `, ${s.detail}` : ''}`;
}

export interface Outcome { ok: boolean; message: string }

function logTail(file: string, fromOffset: number, lines: number): string {
  try {
    const all = readFileSync(file);
    const text = all.subarray(Math.max(fromOffset, all.length - 64 * 1024)).toString('utf8');
    return text.split('\n').filter((l) => l.trim() !== '').slice(-lines).map((l) => `  | ${l}`).join('\n');
  } catch {
    return '';
  }
}

/**
 * Starts `spec` in the background: refuses (successfully, changing nothing) when it already runs;
 * otherwise spawns `entry startArgs --run-dir runDir` detached, its output appended to the log
 * file, and waits until it answers. A process that exits, or does not answer within waitMs
 * (it is then stopped), is a failure reported with the log's last lines.
 */
export async function startDaemon(spec: DaemonSpec, opts: { runDir: string; waitMs: number; entry: string }): Promise<Outcome> {
  const pidFile = pidFileOf(opts.runDir, spec);
  const logFile = logFileOf(opts.runDir, spec);
  const found = inspectPidFile(pidFile);
  if (found.state === 'running') return { ok: true, message: `${spec.label} is already running (pid ${found.pid}); nothing changed` };
  try {
    mkdirSync(opts.runDir, { recursive: true, mode: 0o755 });
  } catch (e) {
    return { ok: false, message: `cannot create the run directory ${opts.runDir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give --run-dir DIR or runDir in the cluster file` };
  }
  let logFd: number;
  try {
    logFd = openSync(logFile, 'a', 0o640);
  } catch (e) {
    return { ok: false, message: `cannot open the log file ${logFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const logOffset = statSync(logFile).size;
  const child = spawn(process.execPath, [...(spec.nodeFlags ?? []), ...process.execArgv, opts.entry, ...spec.startArgs, '--run-dir', opts.runDir], {
    detached: true, stdio: ['ignore', logFd, logFd], env: process.env,
  });
  closeSync(logFd);
  let exited: string | null = null;
  child.on('exit', (code, signal) => { exited = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`; });
  child.on('error', (e) => { exited = `could not be started: ${e.message}`; });
  const tail = () => { const t = logTail(logFile, logOffset, DAEMON_DEFAULTS.log_tail_lines); return t === '' ? ` (log ${logFile} is empty)` : `; last lines of ${logFile}:\n${t}`; };

  const deadline = Date.now() + opts.waitMs;
  const t0 = Date.now();
  while (Date.now() < deadline) {
    if (exited !== null) return { ok: false, message: `${spec.label} ${exited} before it answered${tail()}` };
    const p = await spec.probe(Math.min(1000, Math.max(100, deadline - Date.now())));
    if (exited !== null) continue;
    if (p.answering) {
      child.unref();
      return { ok: true, message: `started ${spec.label} (pid ${child.pid}) in ${Date.now() - t0} ms${p.role ? `, role ${p.role}` : ''}; log ${logFile}` };
    }
    await sleep(DAEMON_DEFAULTS.poll_interval_ms);
  }
  // It never answered: do not leave a half-started process behind.
  const pid = child.pid;
  let stopped = 'it was not running any more';
  if (pid !== undefined && exited === null) {
    try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ }
    for (let i = 0; i < 50 && exited === null; i++) await sleep(100);
    if (exited === null) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } stopped = 'it was killed (SIGKILL)'; } else stopped = 'it was stopped (SIGTERM)';
  }
  child.unref();
  return { ok: false, message: `${spec.label} (pid ${pid}) did not answer within ${opts.waitMs} ms; ${stopped}${tail()}` };
}

/** SIGTERM, wait up to timeoutMs, then SIGKILL. Stopping one that does not run is a success that says so. */
export async function stopDaemon(spec: DaemonSpec, opts: { runDir: string; timeoutMs: number }): Promise<Outcome> {
  const pidFile = pidFileOf(opts.runDir, spec);
  const found = inspectPidFile(pidFile);
  if (found.state === 'none') return { ok: true, message: `${spec.label} is not running` };
  if (found.state === 'stale') {
    removeStalePidFile(pidFile);
    return { ok: true, message: `${spec.label} is not running (removed a stale pid file: ${found.reason})` };
  }
  const { pid } = found;
  const t0 = Date.now();
  try { process.kill(pid, 'SIGTERM'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM') return { ok: false, message: `${spec.label} (pid ${pid}): not allowed to signal it (run as its user or root)` };
  }
  while (Date.now() - t0 < opts.timeoutMs && pidAlive(pid)) await sleep(50);
  if (!pidAlive(pid)) {
    removeStalePidFile(pidFile); // a clean exit removed it already; a crash on the way out did not
    return { ok: true, message: `stopped ${spec.label} (pid ${pid}) in ${Date.now() - t0} ms` };
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
  if (pidAlive(pid)) return { ok: false, message: `${spec.label} (pid ${pid}) survived SIGTERM and SIGKILL (is it stuck in the kernel, in D state?)` };
  removeStalePidFile(pidFile);
  return { ok: true, message: `${spec.label} (pid ${pid}) did not stop within ${opts.timeoutMs} ms of SIGTERM: killed with SIGKILL` };
}
