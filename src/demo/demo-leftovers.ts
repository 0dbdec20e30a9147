// Children of an earlier demo on the same directory that outlived it (the
// demo was killed with -9, so it could not stop them): they hold the ports and
// the data directories a new start needs. A pid counts as one only while its
// command line still names this directory; a reused pid is left alone.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../io/process-info.js';
import { DEMO_LIMITS as L } from './demo-limits.js';
import type { RecordedState } from './demo-state.js';

function commandLine(pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { return ''; }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const rounds = Math.ceil(ms / L.poll_interval_ms);
  for (let i = 0; i < rounds && pids.some(pidAlive); i++) await sleep(L.poll_interval_ms);
  return pids.filter(pidAlive);
}

/** Stops what an earlier demo on `dir` left running; returns "kind instance (pid N)" for each. */
export async function stopLeftovers(recorded: RecordedState | null, dir: string): Promise<string[]> {
  if (recorded === null) return [];
  const found = recorded.processes.filter((p) => p.pid !== null && p.pid !== process.pid && pidAlive(p.pid) && commandLine(p.pid).includes(dir + path.sep));
  if (found.length === 0) return [];
  const pids = found.map((p) => p.pid!);
  for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  const stubborn = await waitGone(pids, L.stop_wait_ms);
  for (const pid of stubborn) { try { process.kill(-pid, 'SIGKILL'); } catch { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } } }
  const still = await waitGone(stubborn, L.kill_wait_ms);
  if (still.length > 0) throw new Error(`processes of an earlier demo on ${dir} do not stop: pids ${still.join(', ')}`);
  return found.map((p) => `${p.kind} ${p.instance} (pid ${p.pid})`);
}
