// What the kernel says about a process: alive or not (a zombie is not), and
// when it started. Used by pid files and the data dir lock, where a dead or
// reused pid must not be taken for a running server.
import { readFileSync } from 'node:fs';

/** Linux's USER_HZ: /proc/<pid>/stat counts start time in these ticks. */
const CLOCK_TICKS_PER_S = 100;

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  } catch {
    return null;
  }
}

/** Whether `pid` is a live process: exists (kill 0 says so) and is not a zombie awaiting its reaper. */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
  const fields = statFields(pid);
  if (fields === null) return true; // no /proc: trust kill(0)
  return fields[0] !== 'Z';
}

/** Wall-clock start time of `pid` in ms since the epoch, or null where /proc cannot say. */
export function processStartedAtMs(pid: number): number | null {
  const fields = statFields(pid);
  if (fields === null) return null;
  // Field 22 (starttime) is the 20th after the state field (field 3).
  const ticks = Number(fields[19]);
  let bootS: number | null = null;
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootS = m ? Number(m[1]) : null;
  } catch { /* no /proc/stat */ }
  if (bootS === null || !Number.isFinite(ticks)) return null;
  return bootS * 1000 + (ticks * 1000) / CLOCK_TICKS_PER_S;
}
