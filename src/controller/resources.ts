// The resources that follow the active role on this instance (a floating IP, a
// mount, a daemon): started in order once the service is active, stopped in
// reverse before it goes standby, monitored while active (a failing monitor
// makes the instance unhealthy, so the role moves). Each is an OCF resource
// agent (ocf-agent.ts) or three commands. A start that fails stops what was
// started before it, so a failed promotion leaves nothing behind.
import type { ResourceConfig } from '../config/controller-config.js';
import type { CheckOutcome } from '../core/controller/health.js';
import { describeCommandResult, runCommand, type CommandResult } from '../io/run-command.js';
import { lastOutput, OCF, ocfCodeName, OcfAgent, type OcfContext } from './ocf-agent.js';

export type ResourceOutcome = { ok: true; detail: string } | { ok: false; reason: string };

interface Resource {
  cfg: ResourceConfig;
  label: string;
  agent: OcfAgent | null;
}

/** One resource's state as its monitor last saw it, for status. */
export interface ResourceStatus { name: string; kind: 'ocf' | 'command'; agent: string | null; running: boolean | null; lastError: string | null }

export class ResourceSet {
  private readonly list: Resource[];
  private readonly seen = new Map<string, { running: boolean | null; lastError: string | null }>();

  constructor(resources: readonly ResourceConfig[], ctx: OcfContext) {
    this.list = resources.map((cfg) => {
      if (cfg.kind === 'ocf') {
        const agent = new OcfAgent({ name: cfg.name, provider: cfg.provider, type: cfg.type, params: cfg.params, timeoutMs: cfg.timeoutMs }, ctx);
        return { cfg, label: agent.label, agent };
      }
      return { cfg, label: cfg.name, agent: null };
    });
  }

  get size(): number { return this.list.length; }

  /** Every OCF agent checked against its meta-data (and its validate-all). Throws with the reason. */
  async validate(): Promise<void> {
    for (const r of this.list) if (r.agent !== null) await r.agent.validate();
  }

  /** How often each resource is monitored: configured, else as its agent declares, else 10 s. */
  monitorIntervalMs(i: number): number {
    const r = this.list[i];
    if (r.cfg.kind === 'command') return r.cfg.monitorIntervalMs;
    return r.cfg.monitorIntervalMs ?? r.agent?.declaredMonitorIntervalMs ?? 10_000;
  }

  failures(i: number): number { return this.list[i].cfg.failures; }

  /** Starts every resource in order; on a failure stops those already started (in reverse) and says why. */
  async startAll(): Promise<ResourceOutcome> {
    const started: Resource[] = [];
    for (const r of this.list) {
      const o = await this.start(r);
      if (!o.ok) {
        const undo = await this.stopEach([...started].reverse());
        return { ok: false, reason: `${o.reason}${started.length > 0 ? `; stopped again: ${undo.ok ? started.map((s) => s.cfg.name).join(', ') : undo.reason}` : ''}` };
      }
      started.push(r);
    }
    return { ok: true, detail: `started ${this.list.map((r) => r.cfg.name).join(', ')}` };
  }

  /** Stops every resource in reverse order, each tried even when one before it failed. */
  stopAll(): Promise<ResourceOutcome> {
    return this.stopEach([...this.list].reverse());
  }

  /**
   * At start, before this controller may race: a resource found running here (the controller
   * restarted while active, say) is stopped: only the active's controller starts them.
   */
  async stopStrays(): Promise<string[]> {
    const strays: Resource[] = [];
    for (const r of this.list) if ((await this.monitor(r, 0)).kind !== 'stopped') strays.push(r);
    if (strays.length === 0) return [];
    const o = await this.stopEach([...strays].reverse());
    if (!o.ok) throw new Error(o.reason);
    return strays.map((r) => r.cfg.name);
  }

  /** Monitors resource `i` (its interval is the caller's): ok while it runs. */
  async check(i: number): Promise<CheckOutcome> {
    const r = this.list[i];
    const m = await this.monitor(r, this.monitorIntervalMs(i));
    if (m.kind === 'running') return { kind: 'ok' };
    const reason = m.kind === 'stopped' ? `resource ${r.label} is not running` : `resource ${r.label}: ${m.reason}`;
    return m.kind === 'timeout' ? { kind: 'timeout', reason } : { kind: 'failed', reason };
  }

  status(): ResourceStatus[] {
    return this.list.map((r) => {
      const s = this.seen.get(r.cfg.name);
      return { name: r.cfg.name, kind: r.cfg.kind, agent: r.agent === null ? null : `ocf:${r.agent.spec.provider}:${r.agent.spec.type}`, running: s?.running ?? null, lastError: s?.lastError ?? null };
    });
  }

  /** The shell commands that stop these resources on the host of an instance fenced over ssh, in reverse order. */
  remoteStopCommands(): { name: string; command: string }[] {
    return [...this.list].reverse().map((r) => ({ name: r.cfg.name, command: r.agent !== null ? r.agent.shellCommand('stop') : (r.cfg as Extract<ResourceConfig, { kind: 'command' }>).stop }));
  }

  private note(r: Resource, running: boolean | null, lastError: string | null): void {
    this.seen.set(r.cfg.name, { running, lastError });
  }

  private async start(r: Resource): Promise<ResourceOutcome> {
    const res = r.agent !== null ? await r.agent.run('start') : await this.command(r, 'start');
    if (res.code === OCF.SUCCESS && !res.timedOut) { this.note(r, true, null); return { ok: true, detail: `started ${r.cfg.name}` }; }
    const reason = `resource ${r.label}: start ${this.describe(r, res)}`;
    this.note(r, null, reason);
    return { ok: false, reason };
  }

  private async stopEach(list: Resource[]): Promise<ResourceOutcome> {
    const failed: string[] = [];
    for (const r of list) {
      const res = r.agent !== null ? await r.agent.run('stop') : await this.command(r, 'stop');
      // Stopping what is not running succeeds (OCF requires it; some agents still answer "not running").
      if ((res.code === OCF.SUCCESS || res.code === OCF.NOT_RUNNING) && !res.timedOut) { this.note(r, false, null); continue; }
      const reason = `resource ${r.label}: stop ${this.describe(r, res)}`;
      this.note(r, null, reason);
      failed.push(reason);
    }
    return failed.length === 0 ? { ok: true, detail: `stopped ${list.map((r) => r.cfg.name).join(', ')}` } : { ok: false, reason: failed.join('; ') };
  }

  private async monitor(r: Resource, intervalMs: number): Promise<{ kind: 'running' } | { kind: 'stopped' } | { kind: 'failed' | 'timeout'; reason: string }> {
    if (r.cfg.kind === 'command' && r.cfg.monitor === null) return { kind: 'running' };
    const res = r.agent !== null ? await r.agent.run('monitor', intervalMs) : await this.command(r, 'monitor');
    if (res.timedOut) { this.note(r, null, `monitor timed out`); return { kind: 'timeout', reason: `monitor ${describeCommandResult(res)}` }; }
    if (res.code === OCF.SUCCESS) { this.note(r, true, null); return { kind: 'running' }; }
    if (res.code === OCF.NOT_RUNNING) { this.note(r, false, null); return { kind: 'stopped' }; }
    const reason = `monitor ${this.describe(r, res)}`;
    this.note(r, null, reason);
    return { kind: 'failed', reason };
  }

  private command(r: Resource, action: 'start' | 'stop' | 'monitor'): Promise<CommandResult> {
    const c = r.cfg as Extract<ResourceConfig, { kind: 'command' }>;
    const text = action === 'start' ? c.start : action === 'stop' ? c.stop : c.monitor!;
    return runCommand(text, { timeoutMs: c.timeoutMs, env: { QUORATE_RESOURCE: c.name, QUORATE_RESOURCE_ACTION: action } });
  }

  private describe(r: Resource, res: CommandResult): string {
    if (r.agent === null || res.timedOut || res.spawnError !== null) return describeCommandResult(res);
    const out = lastOutput(res);
    return `exited ${ocfCodeName(res.code)}${out ? `: ${out}` : ''}`;
  }
}
