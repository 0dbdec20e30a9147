// The verbs every daemon kind shares: `start --daemon`, `stop` and the
// process form of `status`, printed for an operator or as JSON for
// `quorate cluster`. Each kind supplies how to load its spec.
import { InvalidArgumentError, type Command } from 'commander';
import { claimPidFile } from '../io/pid-file.js';
import {
  DAEMON_DEFAULTS, DEFAULT_RUN_DIR, daemonStatus, describeState, pidFileOf, startDaemon, statusExitCode, stopDaemon,
} from '../daemon/daemon-control.js';
import type { DaemonSpec } from '../daemon/daemon-spec.js';

export interface DaemonFlags { daemon?: boolean; runDir?: string; waitMs?: number; timeoutMs?: number; json?: boolean }

export function parseMs(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 86_400_000) throw new InvalidArgumentError(`expected milliseconds 0-86400000, got "${text}"`);
  return n;
}

export function parseServerId(text: string): number {
  const n = Number(text);
  // InvalidArgumentError: commander reports it as a usage error (exit 2).
  if (!Number.isInteger(n) || n < 1 || n > 254) throw new InvalidArgumentError(`expected a server id 1-254, got "${text}"`);
  return n;
}

/** --run-dir wins over the cluster file's runDir, which wins over the default. */
export function runDirFor(flag: string | undefined, fromFile: string | null): string {
  return flag ?? fromFile ?? DEFAULT_RUN_DIR;
}

export function withStartFlags(c: Command): Command {
  return c
    .option('--daemon', 'run in the background: pid and log file under the run directory; returns once it answers')
    .option('--run-dir <dir>', `pid and log files (default: the cluster file's runDir, else ${DEFAULT_RUN_DIR})`)
    .option('--wait-ms <ms>', `with --daemon, how long to wait for it to answer (default ${DAEMON_DEFAULTS.start_wait_ms})`, parseMs);
}

export function withStopFlags(c: Command): Command {
  return c
    .option('--run-dir <dir>', `where its pid file is (default: the cluster file's runDir, else ${DEFAULT_RUN_DIR})`)
    .option('--timeout-ms <ms>', `wait this long after SIGTERM before SIGKILL (default ${DAEMON_DEFAULTS.stop_wait_ms})`, parseMs);
}

export function withStatusFlags(c: Command): Command {
  return c
    .option('--run-dir <dir>', `where its pid file is (default: the cluster file's runDir, else ${DEFAULT_RUN_DIR})`)
    .option('--wait-ms <ms>', 'wait up to this long for it to run and answer', parseMs)
    .option('--json', 'print JSON');
}

/**
 * `start`: with --daemon, in the background (returning once it answers); otherwise `run` in the
 * foreground, after taking the pid file when --run-dir is given (a second copy is refused).
 */
export async function startDaemonOrRun(spec: DaemonSpec, runDir: string, flags: DaemonFlags, run: () => Promise<void>): Promise<void> {
  if (flags.daemon) {
    process.exitCode = await startInBackground(spec, runDir, flags.waitMs);
    return;
  }
  if (flags.runDir !== undefined) claimPidFile(pidFileOf(flags.runDir, spec));
  await run();
}

export async function startInBackground(spec: DaemonSpec, runDir: string, waitMs: number | undefined): Promise<number> {
  const entry = process.argv[1];
  const r = await startDaemon(spec, { runDir, waitMs: waitMs ?? DAEMON_DEFAULTS.start_wait_ms, entry });
  (r.ok ? process.stdout : process.stderr).write(`${r.message}\n`);
  return r.ok ? 0 : 1;
}

export async function stopProcess(spec: DaemonSpec, runDir: string, timeoutMs: number | undefined): Promise<number> {
  const r = await stopDaemon(spec, { runDir, timeoutMs: timeoutMs ?? DAEMON_DEFAULTS.stop_wait_ms });
  (r.ok ? process.stdout : process.stderr).write(`${r.message}\n`);
  return r.ok ? 0 : 1;
}

export async function printProcessStatus(spec: DaemonSpec, runDir: string, flags: DaemonFlags): Promise<number> {
  const deadline = Date.now() + (flags.waitMs ?? 0);
  let s = await daemonStatus(spec, runDir);
  while (s.state !== 'running' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, DAEMON_DEFAULTS.poll_interval_ms));
    s = await daemonStatus(spec, runDir);
  }
  process.stdout.write(flags.json ? JSON.stringify({ ...s, label: spec.label }) + '\n' : `${describeState(spec, s)}\n`);
  return statusExitCode(s);
}
