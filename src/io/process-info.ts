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

/**
 * Wall-clock start time of `pid` in ms since the epoch, or null where /proc cannot say. Measured
 * against this process's own start (/proc/self/stat and process.uptime), not the boot time in
 * /proc/stat, which a systemd unit with ProcSubset=pid cannot read.
 */
export function processStartedAtMs(pid: number): number | null {
  const theirs = statFields(pid);
  const mine = statFields(process.pid);
  if (theirs === null || mine === null) return null;
  // Field 22 (starttime, in clock ticks since boot) is the 20th after the state field (field 3).
  const theirTicks = Number(theirs[19]);
  const myTicks = Number(mine[19]);
  if (!Number.isFinite(theirTicks) || !Number.isFinite(myTicks)) return null;
  const myStartMs = Date.now() - process.uptime() * 1000;
  return myStartMs + ((theirTicks - myTicks) * 1000) / CLOCK_TICKS_PER_S;
}
