// Journal nodes as real processes (`quorate journal --config F --id N`) on
// free loopback ports, sharing a generated cluster file; plus the CLI run
// against that file.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JournalNodeAddress } from '../../src/client/journal/node-client.js';
import { CLI, startCliProcess, type CliProcess } from './cli-process.js';
import { freePort } from './ports.js';

export interface JournalCluster {
  dir: string;
  cfgPath: string;
  nodes: JournalNodeAddress[];
  /** With `metrics`: each node's metricsPort, in node order (else empty). */
  metricsPorts: number[];
  procs: CliProcess[];
  dataDir(id: number): string;
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stopAll(): Promise<void>;
}

/** `journalExtra`: more lines for the journal section (indented two spaces), e.g. its tls. `metrics`: each node serves Prometheus metrics on a port of its own. */
export async function startJournalNodes(n: number, opts: { catchUpIntervalMs?: number; requestTimeoutMs?: number; journalExtra?: string[]; metrics?: boolean } = {}): Promise<JournalCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-journal-'));
  const nodes: JournalNodeAddress[] = [];
  for (let i = 1; i <= n; i++) nodes.push({ id: i, host: '127.0.0.1', port: await freePort() });
  const metricsPorts: number[] = [];
  if (opts.metrics === true) for (let i = 1; i <= n; i++) metricsPorts.push(await freePort());
  const cfgPath = path.join(dir, 'cluster.yaml');
  fs.writeFileSync(cfgPath, [
    'cluster: test',
    'journal:',
    `  dataDir: ${dir}/node-{id}`,
    `  catchUpIntervalMs: ${opts.catchUpIntervalMs ?? 300}`,
    `  requestTimeoutMs: ${opts.requestTimeoutMs ?? 2000}`,
    ...(opts.journalExtra ?? []),
    '  nodes:',
    ...nodes.map((a, k) => `    - { id: ${a.id}, host: ${a.host}, port: ${a.port}${metricsPorts.length > 0 ? `, metricsPort: ${metricsPorts[k]}` : ''} }`),
  ].join('\n') + '\n');
  const procs = await Promise.all(nodes.map((a) => startCliProcess(['journal', '--config', cfgPath, '--id', String(a.id)], a.port)));
  return {
    dir, cfgPath, nodes, metricsPorts, procs,
    dataDir: (id) => path.join(dir, `node-${id}`),
    cli: (args) => new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      });
    }),
    async stopAll() {
      await Promise.all(procs.map((p) => p.stop()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
