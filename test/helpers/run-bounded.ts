// Runs a program in its own process group, keeps its output, and kills the
// whole group when it runs past its time: for the real-client suites.
import { spawn, type SpawnOptions } from 'node:child_process';

export interface BoundedRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

export function runBounded(cmd: string, args: string[], timeoutMs: number, opts: SpawnOptions = {}): Promise<BoundedRun> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-30_000); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stdout += `\n[killed after ${timeoutMs} ms]`;
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}
