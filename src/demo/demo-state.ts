// demo.json: what runs where, for people and for scripts (the narrated tour,
// the tests). Written whole to a temporary file and renamed over the old one,
// so a reader never sees half of it; rewritten whenever a pid changes. A second
// start on the same directory reads the settings back from it.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../cli/errors.js';
import { DEMO_CLUSTER, DEMO_SERVICE, type DemoLayout, type PartKind } from './demo-layout.js';

export const STATE_FILE = 'demo.json';

/** starting: parts are being started; running: one instance is active and the demo watches; stopping/stopped: after a signal; failed: a part did not start. */
export type DemoPhase = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ProcessEntry {
  kind: PartKind;
  instance: string;
  /** The current process (the last one, once the demo stopped); null before it was first started. */
  pid: number | null;
  restarts: number;
  ports: Record<string, number>;
  urls: Record<string, string>;
  log: string;
  client?: string;
}

export interface DemoState {
  cluster: string;
  service: string;
  dir: string;
  /** The demo's own pid. */
  pid: number;
  phase: DemoPhase;
  startedAt: string;
  basePort: number;
  instances: number;
  zookeeper: string | null;
  configFile: string;
  connectString: string;
  processes: ProcessEntry[];
}

export function stateFileOf(dir: string): string {
  return path.join(dir, STATE_FILE);
}

export function initialState(layout: DemoLayout, startedAt: Date): DemoState {
  const s = layout.settings;
  return {
    cluster: DEMO_CLUSTER, service: DEMO_SERVICE, dir: s.dir, pid: process.pid, phase: 'starting', startedAt: startedAt.toISOString(),
    basePort: s.basePort, instances: s.instances, zookeeper: s.zookeeper, configFile: layout.configFile, connectString: layout.connectString,
    processes: layout.parts.map((p) => ({
      kind: p.kind, instance: p.instance, pid: null, restarts: 0, ports: p.ports, urls: p.urls, log: p.logFile, ...(p.client === undefined ? {} : { client: p.client }),
    })),
  };
}

export function writeState(state: DemoState): void {
  const file = stateFileOf(state.dir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

/** What a previous start recorded, as far as a resume needs it. */
const recordedShape = z.object({
  pid: z.number().int(),
  phase: z.string(),
  basePort: z.number().int(),
  instances: z.number().int(),
  zookeeper: z.string().nullable(),
  processes: z.array(z.object({ kind: z.string(), instance: z.string(), pid: z.number().int().nullable() })),
});
export type RecordedState = z.infer<typeof recordedShape>;

/** The previous start's demo.json, or null when there is none. A file that is not one is a usage error: the directory is someone else's. */
export function readRecordedState(dir: string): RecordedState | null {
  const file = stateFileOf(dir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new UsageError(`${file} is not JSON: not a demo's directory? give another --dir`); }
  const r = recordedShape.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new UsageError(`${file} is not a demo's state file (${first.path.join('.') || 'top level'}: ${first.message}): give another --dir`);
  }
  return r.data;
}
