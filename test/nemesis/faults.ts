// Injects and heals the schedule's faults on the deployment, one at a time,
// resolving "the active", "the leader", "a standby" when each is injected,
// and records what it hit and when.
import { fourLetterWord } from '../../src/client/four-letter-word.js';
import type { Lab, LabHost } from '../helpers/lab.js';
import type { ActivePoller } from './clients.js';
import { JOURNAL_PORTS, PORTS, QUORUM_PORTS, type Deployment, type Instance, type Proc } from './deploy.js';
import type { Fault, FaultKind } from './schedule.js';

export const FAULT_LIMITS = {
  /** A poller sample this fresh names the active; else the controllers are asked. */
  active_sample_age_ms: 500,
  four_letter_timeout_ms: 1_000,
  /** The cluster counts as settled for a fault when the previous one healed at least this long before. */
  settled_after_heal_ms: 3_000,
} as const;

export interface FaultRecord {
  index: number;
  kind: FaultKind;
  /** What it hit, resolved at injection: "service b on h2 (the active)". */
  target: string;
  plannedAtMs: number;
  injectedMs: number;
  /** When the heal began (restart, SIGCONT, reconnect, unblock). */
  healMs: number;
  /** When the heal was done (processes listening again). */
  healedMs: number;
  /** Who the controllers said was active at injection. */
  activeAtInjection: string[];
  settledAtInjection: boolean;
  notes: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Nemesis {
  readonly records: FaultRecord[] = [];
  /** Processes found dead that the nemesis had not killed. */
  readonly unexpectedExits: { atMs: number; process: string; exit: string }[] = [];
  /** The processes the nemesis took down and has not brought back (for the final heal). */
  private readonly down = new Set<Proc>();
  private readonly paused = new Set<Proc>();
  private readonly off = new Set<LabHost>();
  private readonly blocked: [LabHost, LabHost][] = [];
  private lastHealedMs = -Infinity;

  constructor(private readonly lab: Lab, private readonly d: Deployment, private readonly poller: ActivePoller, private readonly now: () => number, private readonly log: (line: string) => void) {}

  private async activeIds(): Promise<string[]> {
    return this.poller.latest(FAULT_LIMITS.active_sample_age_ms) ?? await this.poller.actives();
  }

  /** The active instance, or (none or several) the pick-th of all. */
  private async activeInstance(pick: number, notes: string[]): Promise<{ inst: Instance; why: string }> {
    const ids = await this.activeIds();
    if (ids.length === 1) return { inst: this.d.instances.find((i) => i.id === ids[0])!, why: 'the active' };
    notes.push(ids.length === 0 ? 'no instance was active: chose one by the schedule\'s pick' : `several controllers said active (${ids.join(', ')}): chose one by the pick`);
    const pool = ids.length > 1 ? this.d.instances.filter((i) => ids.includes(i.id)) : this.d.instances;
    return { inst: pool[pick % pool.length], why: ids.length === 0 ? 'no active' : 'one of several actives' };
  }

  private async standbyInstance(pick: number): Promise<{ inst: Instance; why: string }> {
    const ids = await this.activeIds();
    const pool = this.d.instances.filter((i) => !ids.includes(i.id));
    const from = pool.length > 0 ? pool : this.d.instances;
    return { inst: from[pick % from.length], why: pool.length > 0 ? 'a standby' : 'no standby' };
  }

  private async leaderIndex(pick: number, notes: string[]): Promise<number> {
    const modes = await Promise.all(this.d.quorum.map(async (q) => {
      if (!q.running || q.paused || this.off.has(q.host)) return null;
      const srvr = await fourLetterWord(q.host.address, PORTS.quorumClient, 'srvr', FAULT_LIMITS.four_letter_timeout_ms).catch(() => '');
      return /^Mode: (\S+)/m.exec(srvr)?.[1] ?? null;
    }));
    const i = modes.indexOf('leader');
    if (i >= 0) return i;
    notes.push(`no quorum server said leader (${modes.map((m) => m ?? '-').join(', ')}): chose one by the pick`);
    return pick % this.d.quorum.length;
  }

  private async kill(p: Proc): Promise<void> {
    await p.kill9();
    this.down.add(p);
  }

  private async restart(p: Proc, notes: string[]): Promise<void> {
    this.down.delete(p);
    if (p.running) return;
    try {
      await p.start();
    } catch (e) {
      notes.push(`restart of ${p.label} failed: ${(e as Error).message.split('\n')[0]}`);
      this.down.add(p);
      throw e;
    }
  }

  private async blockAll(a: LabHost, ports: number[]): Promise<void> {
    for (const b of this.d.hosts) {
      if (b === a) continue;
      this.blocked.push([a, b]);
      await this.lab.block(a, b, ports);
    }
  }

  private async unblockAll(): Promise<void> {
    while (this.blocked.length > 0) {
      const [a, b] = this.blocked.pop()!;
      await this.lab.unblock(a, b);
    }
  }

  /** Waits until `atMs`, injects the fault, holds it for its duration, heals it. */
  async run(f: Fault, phaseStartMs: number, stopAtMs: number): Promise<FaultRecord> {
    const wait = phaseStartMs + f.atMs - this.now();
    if (wait > 0) await sleep(wait);
    const notes: string[] = [];
    // A process that died on its own (not by the nemesis) is brought back first, and said.
    for (const p of this.d.all) {
      if (!p.running && !this.down.has(p)) {
        notes.push(`${p.label} had exited on its own (${p.child?.exitCode ?? p.child?.signalCode ?? '?'}): restarted`);
        this.unexpectedExits.push({ atMs: this.now(), process: p.label, exit: String(p.child?.exitCode ?? p.child?.signalCode ?? '?') });
        try { await p.start(); } catch (e) { notes.push(`its restart failed: ${(e as Error).message.split('\n')[0]}`); }
      }
    }
    const activeAtInjection = await this.activeIds();
    const settled = activeAtInjection.length === 1 && this.down.size === 0 && this.paused.size === 0 && this.off.size === 0 &&
      this.blocked.length === 0 && this.now() - this.lastHealedMs >= FAULT_LIMITS.settled_after_heal_ms;
    const rec: FaultRecord = {
      index: f.index, kind: f.kind, target: '', plannedAtMs: phaseStartMs + f.atMs, injectedMs: NaN, healMs: NaN, healedMs: NaN,
      activeAtInjection, settledAtInjection: settled, notes,
    };
    this.records.push(rec);
    // The fault lasts its duration, cut short if the fault phase ends first.
    const hold = async () => { const left = Math.min(f.durationMs, stopAtMs - this.now()); if (left > 0) await sleep(left); };
    const heal: (() => Promise<void>)[] = [];
    const t = f.target;
    switch (f.kind) {
      case 'kill-instance':
      case 'kill-controller':
      case 'pause-instance':
      case 'pause-controller': {
        const { inst, why } = t.who === 'active' ? await this.activeInstance(t.pick, notes) : await this.standbyInstance(t.who === 'standby' ? t.pick : 0);
        const p = f.kind.endsWith('instance') ? inst.service : inst.controller;
        rec.target = `${p.label} (${why})`;
        rec.injectedMs = this.now();
        if (f.kind.startsWith('kill')) {
          await this.kill(p);
          heal.push(() => this.restart(p, notes));
        } else {
          p.pause();
          this.paused.add(p);
          heal.push(async () => { p.resume(); this.paused.delete(p); });
        }
        break;
      }
      case 'kill-quorum': {
        const i = t.who === 'leader' ? await this.leaderIndex(t.pick, notes) : t.who === 'index' ? t.index % this.d.quorum.length : 0;
        const p = this.d.quorum[i];
        rec.target = `${p.label}${t.who === 'leader' ? ' (the leader)' : ''}`;
        rec.injectedMs = this.now();
        await this.kill(p);
        heal.push(() => this.restart(p, notes));
        break;
      }
      case 'kill-journal': {
        const p = this.d.journal[t.who === 'index' ? t.index % this.d.journal.length : 0];
        rec.target = p.label;
        rec.injectedMs = this.now();
        await this.kill(p);
        heal.push(() => this.restart(p, notes));
        break;
      }
      case 'quorum-majority-down': {
        const ps = (t.who === 'servers' ? t.indices : [0, 1]).map((i) => this.d.quorum[i % this.d.quorum.length]);
        rec.target = ps.map((p) => p.label).join(' and ');
        rec.injectedMs = this.now();
        await Promise.all(ps.map((p) => this.kill(p)));
        heal.push(async () => { await Promise.all(ps.map((p) => this.restart(p, notes))); });
        break;
      }
      case 'host-off': {
        let host: LabHost;
        if (t.who === 'active') {
          const { inst, why } = await this.activeInstance(t.pick, notes);
          host = inst.host;
          rec.target = `${host.name} (the host of ${inst.id}, ${why})`;
        } else {
          host = this.d.hosts[(t.who === 'index' ? t.index : 0) % this.d.hosts.length];
          rec.target = host.name;
        }
        rec.injectedMs = this.now();
        await this.lab.disconnect(host);
        this.off.add(host);
        heal.push(async () => { await this.lab.reconnect(host); this.off.delete(host); });
        break;
      }
      case 'partition-active-quorum':
      case 'partition-active-journal': {
        const { inst, why } = await this.activeInstance(t.who === 'active' ? t.pick : 0, notes);
        const ports = f.kind === 'partition-active-quorum' ? QUORUM_PORTS : JOURNAL_PORTS;
        rec.target = `${inst.host.name} (the host of ${inst.id}, ${why}) cut from the others' ${f.kind === 'partition-active-quorum' ? 'quorum' : 'journal'} ports ${ports.join(', ')}`;
        rec.injectedMs = this.now();
        await this.blockAll(inst.host, ports);
        heal.push(() => this.unblockAll());
        break;
      }
    }
    this.log(`fault #${f.index} ${f.kind}: ${rec.target}${notes.length ? ` [${notes.join('; ')}]` : ''}, for ${f.durationMs} ms`);
    await hold();
    rec.healMs = this.now();
    for (const h of heal) {
      try { await h(); } catch (e) { notes.push(`heal: ${(e as Error).message.split('\n')[0]}`); }
    }
    rec.healedMs = this.now();
    this.lastHealedMs = rec.healedMs;
    return rec;
  }

  /** Everything back: processes started and continued, hosts reconnected, blocks lifted. Returns what failed. */
  async healAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const p of this.paused) p.resume();
    this.paused.clear();
    for (const h of [...this.off]) {
      try { await this.lab.reconnect(h); this.off.delete(h); } catch (e) { problems.push((e as Error).message); }
    }
    try { await this.unblockAll(); } catch (e) { problems.push((e as Error).message); }
    for (const p of this.d.all) {
      if (p.paused) p.resume();
      if (!p.running && !this.down.has(p)) this.unexpectedExits.push({ atMs: this.now(), process: p.label, exit: String(p.child?.exitCode ?? p.child?.signalCode ?? '?') });
      if (!p.running) {
        try { await p.start(); this.down.delete(p); } catch (e) { problems.push(`${p.label}: ${(e as Error).message.split('\n')[0]}`); }
      }
    }
    return problems;
  }
}

/** The instance endpoints of a deployment, for the clients. */
export function endpointsOf(d: Deployment): { id: string; url: string; adminUrl: string }[] {
  return d.instances.map((i) => ({ id: i.id, url: i.url, adminUrl: i.adminUrl }));
}
