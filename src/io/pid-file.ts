// A daemon's pid file: written by the process itself when it starts (so it
// names the process that holds the ports, under systemd or --daemon alike),
// refused while a live process holds it, removed by the process at exit.
// A pid that is dead, a zombie, or that started after the file was written
// (the pid was reused after a crash or a reboot) makes the file stale.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { pidAlive, processStartedAtMs } from './process-info.js';

export class AlreadyRunningError extends Error {
  readonly code = 'QUORATE_ALREADY_RUNNING';
  constructor(readonly pid: number, readonly pidFile: string) {
    super(`already running as pid ${pid} (pid file ${pidFile})`);
  }
}

export type PidFileState =
  | { state: 'running'; pid: number; startedAtMs: number }
  | { state: 'stale'; pid: number; reason: string }
  | { state: 'none' };

export function inspectPidFile(file: string): PidFileState {
  let text: string;
  let writtenAtMs: number;
  try {
    text = readFileSync(file, 'utf8');
    writtenAtMs = statSync(file).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    throw err;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return { state: 'stale', pid: 0, reason: `${file} does not hold a pid` };
  if (!pidAlive(pid)) return { state: 'stale', pid, reason: `pid ${pid} is not running` };
  const startedAtMs = processStartedAtMs(pid);
  // A process cannot have written the file before it started: a later start is another process on a reused pid.
  if (startedAtMs !== null && startedAtMs > writtenAtMs + 2000) return { state: 'stale', pid, reason: `pid ${pid} is another process now (started after the pid file was written)` };
  return { state: 'running', pid, startedAtMs: startedAtMs ?? writtenAtMs };
}

/**
 * Takes the pid file for this process, or throws AlreadyRunningError naming the live holder.
 * A stale file is replaced. The file is removed at exit if it still names this process.
 */
export function claimPidFile(file: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const found = inspectPidFile(file);
      if (found.state === 'running') {
        if (found.pid === process.pid) return;
        throw new AlreadyRunningError(found.pid, file);
      }
      // Stale: move it aside atomically (a racing starter cannot lose its fresh file to our unlink).
      try { renameSync(file, `${file}.stale.${process.pid}`); unlinkSync(`${file}.stale.${process.pid}`); } catch { /* gone meanwhile */ }
      continue;
    }
    try { writeSync(fd, `${process.pid}\n`); } finally { closeSync(fd); }
    process.on('exit', () => releasePidFile(file));
    return;
  }
  throw new Error(`cannot take the pid file ${file}: it keeps changing; is another copy starting?`);
}

/** Removes the pid file if it names this process. */
export function releasePidFile(file: string, pid = process.pid): void {
  try {
    if (Number(readFileSync(file, 'utf8').trim()) === pid) unlinkSync(file);
  } catch { /* already gone */ }
}

/** Removes a pid file whose process is known dead (after a SIGKILL, or a stale file). */
export function removeStalePidFile(file: string): void {
  try { unlinkSync(file); } catch { /* already gone */ }
}
