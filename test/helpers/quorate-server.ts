// Runs our quorum server as a real process (the built CLI) on a free
// loopback port, from a generated zoo.cfg, for integration and system tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, ensureBuilt, startCliProcess } from './cli-process.js';
import { freePort } from './ports.js';

export { CLI, ensureBuilt };

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
  const proc = await startCliProcess(['quorum', '--zoo-cfg', cfgPath], Number(cfg.clientPort), opts.env);
  return {
    port, dir, dataDir, cfgPath, connectString: `127.0.0.1:${port}`,
    get pid() { return proc.pid; },
    logs: proc.logs,
    alive: proc.alive,
    stop: proc.stop,
    kill9: proc.kill9,
    restart: proc.restart,
  };
}
