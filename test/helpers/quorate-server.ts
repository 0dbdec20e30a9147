// Runs our quorum server as a real process (the built CLI) on a free
// loopback port, from a generated zoo.cfg, for integration and system tests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.js';

export const CLI = path.resolve(__dirname, '../../dist/src/cli/main.js');

export interface QuorateServer {
  port: number;
  dir: string;
  dataDir: string;
  cfgPath: string;
  connectString: string;
  pid: number;
  /** The process's stderr (pino JSON lines), kept in memory. */
  logs(): string;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  restart(): Promise<void>;
  alive(): boolean;
}

export function ensureBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
}

export async function startQuorateServer(opts: { cfg?: Record<string, string>; dir?: string; env?: Record<string, string>; clientPort?: number } = {}): Promise<QuorateServer> {
  ensureBuilt();
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-zk-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = opts.clientPort ?? await freePort();
  const cfg: Record<string, string> = {
    tickTime: '2000', dataDir, clientPort: String(port), clientPortAddress: '127.0.0.1',
    maxClientCnxns: '0', '4lw.commands.whitelist': '*', ...opts.cfg,
  };
  const cfgPath = path.join(dir, 'zoo.cfg');
  fs.writeFileSync(cfgPath, Object.entries(cfg).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  let child: ChildProcess;
  let logText = '';
  const launch = async () => {
    child = spawn(process.execPath, [CLI, 'quorum', '--zoo-cfg', cfgPath], {
      stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...opts.env },
    });
    child.stderr!.on('data', (d) => { logText += d.toString(); if (logText.length > 4_000_000) logText = logText.slice(-2_000_000); });
    child.stdout!.on('data', () => undefined);
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${logText.slice(-3000)}`))));
    await Promise.race([waitForPort(Number(cfg.clientPort), 20_000), exited]);
  };
  await launch();
  const waitExit = (ms: number) => new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => resolve(null), ms);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
  return {
    port, dir, dataDir, cfgPath, connectString: `127.0.0.1:${port}`,
    get pid() { return child.pid!; },
    logs: () => logText,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const code = await waitExit(5000);
      if (child.exitCode === null && child.signalCode === null) { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } await waitExit(2000); }
      return code;
    },
    async kill9() {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await waitExit(5000);
    },
    async restart() {
      await launch();
    },
  };
}
