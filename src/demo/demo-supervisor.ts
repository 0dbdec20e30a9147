// The demo's children: started with this node and the CLI's (or the example
// service's) own path, output appended to their log files, each in its own
// process group so that a terminal's Ctrl-C reaches only the demo, which then
// stops them in order. Once the demo runs, a child that dies is started again
// after a few seconds (a crash loop waits longer each time), and said so.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import type { DemoPart, PartKind } from './demo-layout.js';
import { DEMO_LIMITS as L } from './demo-limits.js';

export interface ChildExit { code: number | null; signal: NodeJS.Signals | null }
export interface DemoPrograms { cli: string; service: string }

export interface SupervisorEvents {
  /** A line for the operator's terminal. */
  say(line: string): void;
  /** A pid changed: demo.json is to be rewritten. */
  changed(): void;
  /** A part was started again after it died (to report when it answers). */
  restarted(part: DemoPart): void;
}

interface Slot {
  child: ChildProcess | null;
  pid: number | null;
  startedAtMs: number;
  /** How the current child ended; null while it runs. */
  exit: ChildExit | null;
  exited: Promise<ChildExit>;
  restarts: number;
  lastDelayMs: number;
  timer: NodeJS.Timeout | null;
}

export function describeExit(e: ChildExit): string {
  return e.signal !== null ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class DemoSupervisor {
  private readonly slots = new Map<DemoPart, Slot>();
  private restarting = false;
  private stopping = false;

  constructor(private readonly programs: DemoPrograms, private readonly events: SupervisorEvents) {
    // Last resort: if the demo itself ends without stopping them (an uncaught error), its children go with it.
    process.on('exit', () => { for (const s of this.slots.values()) if (s.exit === null && s.pid !== null) killGroup(s.pid, 'SIGKILL'); });
  }

  /** Starts the part's process (again); returns its pid. Refused once stopAll began: a child started then would be left running. */
  start(part: DemoPart): number {
    if (this.stopping) throw new Error(`not starting ${part.label}: the demo is stopping`);
    mkdirSync(path.dirname(part.logFile), { recursive: true });
    const fd = openSync(part.logFile, 'a', 0o644);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.programs[part.program], ...part.args], { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    const prev = this.slots.get(part);
    let resolveExit!: (e: ChildExit) => void;
    const slot: Slot = {
      child, pid: child.pid ?? null, startedAtMs: Date.now(), exit: null, exited: new Promise((r) => { resolveExit = r; }),
      restarts: prev?.restarts ?? 0, lastDelayMs: prev?.lastDelayMs ?? 0, timer: null,
    };
    this.slots.set(part, slot);
    const ended = (e: ChildExit) => {
      if (slot.exit !== null) return;
      slot.exit = e;
      resolveExit(e);
      this.onExit(part, slot, e);
    };
    child.once('exit', (code, signal) => ended({ code, signal }));
    child.once('error', (err) => { this.events.say(`${part.label}: ${err.message}`); ended({ code: 127, signal: null }); });
    return slot.pid ?? -1;
  }

  pid(part: DemoPart): number | null { return this.slots.get(part)?.pid ?? null; }
  restarts(part: DemoPart): number { return this.slots.get(part)?.restarts ?? 0; }
  /** How the part's current process ended, or null while it runs (or was never started). */
  exitOf(part: DemoPart): ChildExit | null { return this.slots.get(part)?.exit ?? null; }

  /** From now on a child that dies is started again. */
  keepRunning(): void { this.restarting = true; }

  private onExit(part: DemoPart, slot: Slot, e: ChildExit): void {
    if (this.stopping || !this.restarting) return;
    const ranMs = Date.now() - slot.startedAtMs;
    // A part that died soon after its start waits twice as long as last time: a crash loop stays slow and visible.
    const delayMs = ranMs >= L.healthy_run_ms || slot.lastDelayMs === 0 ? L.restart_delay_ms : Math.min(slot.lastDelayMs * 2, L.restart_delay_ms_max);
    slot.lastDelayMs = delayMs;
    this.events.say(`${part.label} (pid ${slot.pid}) ${describeExit(e)}; starting it again in ${delayMs / 1000} s`);
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (this.stopping) return;
      const pid = this.start(part);
      this.slots.get(part)!.restarts = slot.restarts + 1;
      this.events.say(`started ${part.label} again: pid ${pid} (log ${part.logFile})`);
      this.events.changed();
      this.events.restarted(part);
    }, delayMs);
  }

  /**
   * Stops every child, kind by kind in `order`: SIGTERM, up to stop_wait_ms for them to exit, then
   * SIGKILL of each leftover's process group. Returns the labels of those that needed SIGKILL.
   */
  async stopAll(order: readonly PartKind[]): Promise<{ stopped: number; killed: string[] }> {
    this.stopping = true;
    for (const s of this.slots.values()) if (s.timer !== null) { clearTimeout(s.timer); s.timer = null; }
    let stopped = 0;
    const killed: string[] = [];
    for (const kind of order) {
      const live = [...this.slots].filter(([p, s]) => p.kind === kind && s.exit === null && s.pid !== null);
      if (live.length === 0) continue;
      for (const [, s] of live) killGroup(s.pid!, 'SIGTERM', false);
      await Promise.race([Promise.all(live.map(([, s]) => s.exited)), sleep(L.stop_wait_ms)]);
      const leftovers = live.filter(([, s]) => s.exit === null);
      for (const [p, s] of leftovers) { killed.push(`${p.label} (pid ${s.pid})`); killGroup(s.pid!, 'SIGKILL'); }
      if (leftovers.length > 0) await Promise.race([Promise.all(leftovers.map(([, s]) => s.exited)), sleep(L.kill_wait_ms)]);
      stopped += live.length;
    }
    return { stopped, killed };
  }
}

/** `group`: the whole process group (the child leads its own); else only the child, which stops its own way. */
function killGroup(pid: number, signal: NodeJS.Signals, group = true): void {
  try { process.kill(group ? -pid : pid, signal); } catch { /* already gone */ }
}
