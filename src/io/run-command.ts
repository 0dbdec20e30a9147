// Runs an operator's command (a health check, a hook, a fencing command)
// through /bin/sh in its own process group, with a deadline after which the
// whole group is killed (Node's spawn timeout kills only the direct child, so
// `sh -c "sleep 100"` would outlive it). Output is kept, bounded.
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The spawn itself failed (no /bin/sh, EAGAIN...). */
  spawnError: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const OUTPUT_MAX = 8 * 1024;

export function runCommand(command: string, opts: { timeoutMs: number; env?: Record<string, string>; outputMax?: number }): Promise<CommandResult> {
  const t0 = performance.now();
  const max = opts.outputMax ?? OUTPUT_MAX;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    const killGroup = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, opts.timeoutMs);
    child.stdout!.on('data', (d: Buffer) => { if (stdout.length < max) stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < max) stderr += d.toString(); });
    const finish = (r: Omit<CommandResult, 'stdout' | 'stderr' | 'ms' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Whatever the command left behind in its group goes with it.
      if (child.pid !== undefined) killGroup();
      resolve({ ...r, timedOut, stdout: stdout.slice(0, max), stderr: stderr.slice(0, max), ms: performance.now() - t0 });
    };
    child.on('error', (e) => finish({ code: null, signal: null, spawnError: e.message }));
    child.on('close', (code, signal) => finish({ code, signal, spawnError: null }));
  });
}

/** One line for logs and status: how a command ended. */
export function describeCommandResult(r: CommandResult): string {
  if (r.spawnError !== null) return `could not start: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${Math.round(r.ms)} ms (process group killed)`;
  const out = (r.stderr.trim() || r.stdout.trim()).split('\n').at(-1)?.slice(0, 200) ?? '';
  return r.code !== null ? `exit ${r.code}${out ? `: ${out}` : ''}` : `killed by ${r.signal}`;
}
