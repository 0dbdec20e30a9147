// The demo's flags, checked one by one (a bad value is a usage error, exit 2,
// naming the flag and what it wants), and the settings a start runs with:
// a flag wins, else what the directory's demo.json recorded, else the default.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../cli/errors.js';
import { freePortBlock, portIsFree } from '../io/ports.js';
import { BLOCK_PORTS, type DemoSettings } from './demo-layout.js';
import { DEMO_LIMITS as L } from './demo-limits.js';
import { STATE_FILE, readRecordedState, type RecordedState } from './demo-state.js';

export interface DemoFlags { dir?: string; basePort?: number; instances?: number; zookeeper?: string }

export function parseInstances(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < L.instances_min || n > L.instances_max) {
    throw new InvalidArgumentError(`expected ${L.instances_min}..${L.instances_max} instances of the example service, got "${text}"`);
  }
  return n;
}

export function parseBasePort(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < L.base_port_min || n > L.base_port_max) {
    throw new InvalidArgumentError(`expected a base port ${L.base_port_min}..${L.base_port_max} (the demo uses it and the ${BLOCK_PORTS - 1} ports above it), got "${text}"`);
  }
  return n;
}

/** host:port[,host:port...]: a ZooKeeper ensemble. No chroot: the demo's znodes live under /quorate/<cluster>/kv. */
export function parseZookeeper(text: string): string {
  if (text.includes('/')) throw new InvalidArgumentError(`expected host:port[,host:port...] without a chroot, got "${text}"`);
  const hosts = text.split(',');
  for (const h of hosts) {
    const m = /^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(h);
    if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65_535) {
      throw new InvalidArgumentError(`expected host:port[,host:port...], got "${h}" in "${text}"`);
    }
  }
  return hosts.join(',');
}

/**
 * The directory to run in, made if missing. One that exists must be empty or hold a demo's
 * demo.json: the demo writes cluster.yaml, logs and data directories into it.
 */
export function prepareDir(flag: string | undefined): { dir: string; created: boolean } {
  if (flag === undefined) return { dir: mkdtempSync(path.join(os.tmpdir(), 'quorate-demo-')), created: true };
  const dir = path.resolve(flag);
  if (!existsSync(dir)) {
    try { mkdirSync(dir, { recursive: true }); } catch (e) { throw new UsageError(`--dir ${flag}: cannot create it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    return { dir, created: true };
  }
  if (!statSync(dir).isDirectory()) throw new UsageError(`--dir ${flag}: not a directory`);
  const entries = readdirSync(dir);
  if (entries.length > 0 && !entries.includes(STATE_FILE)) {
    throw new UsageError(`--dir ${flag}: not empty and holds no ${STATE_FILE} (not a demo's directory); give a new or empty directory`);
  }
  return { dir, created: false };
}

/** The ports of a block that something else listens on already. */
export async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const free = await Promise.all(ports.map(portIsFree));
  return ports.filter((_, i) => !free[i]);
}

async function freeBlock(): Promise<number> {
  const base = await freePortBlock(BLOCK_PORTS, L.auto_base_port_from, L.auto_base_port_to, L.auto_base_port_attempts);
  if (base !== null) return base;
  throw new Error(`no block of ${BLOCK_PORTS} free ports found in ${L.auto_base_port_from}..${L.auto_base_port_to} after ${L.auto_base_port_attempts} tries; give --base-port N`);
}

export async function resolveSettings(flags: DemoFlags, dir: string, recorded: RecordedState | null): Promise<DemoSettings> {
  const instances = flags.instances ?? recorded?.instances ?? L.instances_default;
  if (!Number.isInteger(instances) || instances < L.instances_min || instances > L.instances_max) {
    throw new UsageError(`${dir}/${STATE_FILE} records ${instances} instances; give --instances ${L.instances_min}..${L.instances_max}`);
  }
  const zookeeper = flags.zookeeper ?? recorded?.zookeeper ?? null;
  const basePort = flags.basePort ?? recorded?.basePort ?? await freeBlock();
  if (basePort < L.base_port_min || basePort > L.base_port_max) throw new UsageError(`${dir}/${STATE_FILE} records base port ${basePort}; give --base-port N`);
  return { dir, basePort, instances, zookeeper };
}

export { readRecordedState };
