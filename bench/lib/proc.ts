// What /proc says about a process (CPU time, resident memory), and CPU meters
// for the load generator itself and for a server process over one phase.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { round1, round3 } from './stats.js';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64 and arm64

/** utime + stime of a process (all its threads), in ms; null when unreadable. */
export function procCpuMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: fields are counted after its ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]); // field 14
    const stime = Number(rest[12]); // field 15
    return ((utime + stime) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU time (ms) of every process on the machine, by pid, with its command name. */
export function allProcsCpuMs(): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  let entries: string[] = [];
  try { entries = fs.readdirSync('/proc'); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(e), { name, ms: ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK });
    } catch { /* exited */ }
  }
  return out;
}

/** The processes (other than `exclude`) that used the most CPU between two allProcsCpuMs() snapshots. */
export function topOtherProcs(
  before: Map<number, { name: string; ms: number }>, after: Map<number, { name: string; ms: number }>, wallMs: number, exclude: number[], n = 3,
): { pid: number; name: string; pctOneCore: number }[] {
  const rows: { pid: number; name: string; pctOneCore: number }[] = [];
  for (const [pid, a] of after) {
    if (exclude.includes(pid)) continue;
    const used = a.ms - (before.get(pid)?.ms ?? 0);
    if (used > 0) rows.push({ pid, name: a.name, pctOneCore: round1((100 * used) / wallMs) });
  }
  return rows.sort((x, y) => y.pctOneCore - x.pctOneCore).slice(0, n);
}

/** VmRSS of a process in MB (from /proc/PID/status); null when unreadable. */
export function procRssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round1(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/**
 * A process's resident memory split by who pays for it (from /proc/PID/smaps_rollup, in MB): `private`
 * is its own (heap, stacks, its own dirty pages), `shared` are pages other processes map too — for a
 * Node daemon mostly the node binary's text, paid once per host however many Node processes run —
 * and `pss` charges each shared page to its sharers in equal parts. null when unreadable.
 */
export function procMemoryMb(pid: number): { rss: number; private: number; shared: number; pss: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    const priv = kb('Private_Clean') + kb('Private_Dirty');
    const shared = kb('Shared_Clean') + kb('Shared_Dirty');
    return { rss: round1(kb('Rss') / 1024), private: round1(priv / 1024), shared: round1(shared / 1024), pss: round1(kb('Pss') / 1024) };
  } catch {
    return null;
  }
}

/** Busy CPU time of the whole machine (all cores, all processes), in ms, from /proc/stat; null when unreadable. */
export function machineBusyMs(): number | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
    return (busy * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

export interface CpuReading {
  /** CPU time / wall time: 100 = one core busy. */
  pctOneCore: number;
  /** Same, over all the machine's cores: 100 = every core busy. */
  pctAllCores: number;
}

export interface GeneratorCpu extends CpuReading {
  /** Event loop utilization of the generator's main thread (1 = never idle). */
  eventLoopUtilization: number;
}

const CORES = os.cpus().length;

function reading(cpuMs: number, wallMs: number): CpuReading {
  const pct = wallMs > 0 ? (100 * cpuMs) / wallMs : NaN;
  return { pctOneCore: round1(pct), pctAllCores: round1(pct / CORES) };
}

/** Start a meter over this process (the load generator) and, optionally, a server process. */
export interface CpuMeterReading {
  generator: GeneratorCpu;
  server: CpuReading | null;
  /** Everything else on the machine (other people's tests, the kernel's softirqs...): a busy neighbour skews the figures. */
  others: CpuReading | null;
}

/** Start a meter over this process (the load generator), optionally a server process, and the rest of the machine. */
export function startCpuMeter(serverPid?: number): () => CpuMeterReading {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const s0 = serverPid !== undefined ? procCpuMs(serverPid) : null;
  const m0 = machineBusyMs();
  return () => {
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const elu = performance.eventLoopUtilization(elu0);
    const s1 = serverPid !== undefined ? procCpuMs(serverPid) : null;
    const m1 = machineBusyMs();
    const genMs = (c.user + c.system) / 1000;
    const serverMs = s0 !== null && s1 !== null ? s1 - s0 : null;
    return {
      generator: { ...reading(genMs, wall), eventLoopUtilization: round3(elu.utilization) },
      server: serverMs !== null ? reading(serverMs, wall) : null,
      others: m0 !== null && m1 !== null && serverMs !== null ? reading(Math.max(0, m1 - m0 - genMs - serverMs), wall) : null,
    };
  };
}

function dirtyKb(): number | null {
  try {
    const m = /^Dirty:\s+(\d+)\s+kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** sync(1): write back every dirty page of the machine (bounded to 30 s); how much there was and how long it took. */
export function flushDirtyPages(): { dirtyKbBefore: number | null; syncMs: number } {
  const dirtyKbBefore = dirtyKb();
  const t0 = performance.now();
  spawnSync('sync', [], { timeout: 30_000, stdio: 'ignore' });
  return { dirtyKbBefore, syncMs: round1(performance.now() - t0) };
}
