// One `quorate` process (the built CLI) started detached in its own process
// group, ready once its port accepts connections; stopped by PID (SIGTERM,
// then SIGKILL of the group), killed -9, or restarted with the same arguments.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitForPort } from './ports.js';

export const CLI = path.resolve(__dirname, '../../dist/src/cli/main.js');

export function ensureBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
}

export interface CliProcess {
  readonly pid: number;
  /** The process's stderr (pino JSON lines), kept in memory. */
  logs(): string;
  alive(): boolean;
  /** SIGTERM, then SIGKILL of the group after 5 s; the exit code (null when killed). */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  restart(): Promise<void>;
}

/** `script`: run this file with node instead of the quorate CLI (then `args` follow it). */
export async function startCliProcess(args: string[], port: number, env: Record<string, string> = {}, script: string[] = [CLI]): Promise<CliProcess> {
  ensureBuilt();
  let child: ChildProcess;
  let logText = '';
  const launch = async () => {
    child = spawn(process.execPath, [...script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...env } });
    child.stderr!.on('data', (d) => { logText += d.toString(); if (logText.length > 4_000_000) logText = logText.slice(-2_000_000); });
    child.stdout!.on('data', () => undefined);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${script === undefined || script[0] === CLI ? `quorate ${args[0]}` : path.basename(script[0])} exited with ${code}:\n${logText.slice(-3000)}`))));
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port, 20_000), exited]);
  };
  await launch();
  const waitExit = (ms: number) => new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => resolve(null), ms);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    get pid() { return child.pid!; },
    logs: () => logText,
    alive: () => !gone(),
    async stop() {
      if (gone()) return child.exitCode;
      child.kill('SIGTERM');
      const code = await waitExit(5000);
      if (!gone()) { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } await waitExit(2000); }
      return code;
    },
    async kill9() {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await waitExit(5000);
    },
    restart: launch,
  };
}
