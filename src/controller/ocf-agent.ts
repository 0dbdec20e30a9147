// Pacemaker's OCF resource agents (Debian's resource-agents: IPaddr2, Filesystem,
// nginx, apache...), run the way Pacemaker runs them: the agent's path under
// OCF_ROOT/resource.d/<provider>/<type>, the action as its one argument, the
// parameters as OCF_RESKEY_<name>, the timeout as OCF_RESKEY_CRM_meta_timeout,
// and the OCF exit codes. What an agent declares in its meta-data (parameters,
// required ones, action timeouts and the monitor interval) is read at start,
// and a configuration it would refuse is refused then, not at the first failover.
import fs from 'node:fs';
import path from 'node:path';
import { describeCommandResult, runCommand, type CommandResult } from '../io/run-command.js';
import { shellQuote } from '../io/shell-quote.js';

/** The OCF exit codes (OCF resource agent API 1.1). */
export const OCF = { SUCCESS: 0, ERR_GENERIC: 1, ERR_ARGS: 2, ERR_UNIMPLEMENTED: 3, ERR_PERM: 4, ERR_INSTALLED: 5, ERR_CONFIGURED: 6, NOT_RUNNING: 7, RUNNING_MASTER: 8, FAILED_MASTER: 9 } as const;
const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(OCF).map(([k, v]) => [v, `OCF_${k}`]));

export function ocfCodeName(code: number | null): string {
  return code === null ? 'no exit code' : `${code} (${CODE_NAMES[code] ?? 'not an OCF code'})`;
}

export interface AgentMetaData {
  parameters: { name: string; required: boolean }[];
  /** Action name to its timeout and interval in ms, as the agent declares them. */
  actions: Map<string, { timeoutMs: number | null; intervalMs: number | null }>;
}

/** Pacemaker's tools an agent may call; without Pacemaker they are missing and the agent would half-run. */
const PACEMAKER_TOOLS = ['crm_attribute', 'crm_master', 'attrd_updater', 'crm_resource', 'crm_node', 'cibadmin', 'crm_mon', 'crm_failcount', 'stonith_admin'];
/** Shell functions of ocf-shellfuncs that call those tools. */
const PACEMAKER_FUNCTIONS: Record<string, string> = { ocf_promotion_score: 'crm_attribute', ocf_attribute_target: 'crm_node' };

/** An interval or timeout as Pacemaker writes it: 20s, 1m, 1min, 500ms, 2h, or bare seconds. */
export function parseOcfDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|m|min|h|hr)?\s*$/i.exec(text);
  if (m === null) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = unit.startsWith('ms') ? 1 : unit.startsWith('s') ? 1000 : unit.startsWith('m') ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

/** Reads the agent's meta-data XML: its parameters and actions (a flat, well-known shape: no XML library needed). */
export function parseMetaData(xml: string): AgentMetaData {
  if (!/<resource-agent\b/.test(xml)) throw new Error('its meta-data is not a <resource-agent> document');
  const attrs = (tag: string) => {
    const out: Record<string, string> = {};
    for (const m of tag.matchAll(/([A-Za-z_-]+)\s*=\s*"([^"]*)"/g)) out[m[1]] = m[2];
    return out;
  };
  const parameters: AgentMetaData['parameters'] = [];
  for (const m of xml.matchAll(/<parameter\b([^>]*)>/g)) {
    const a = attrs(m[1]);
    if (a.name) parameters.push({ name: a.name, required: a.required === '1' || a.required === 'true' });
  }
  const actions: AgentMetaData['actions'] = new Map();
  for (const m of xml.matchAll(/<action\b([^>]*)\/?>/g)) {
    const a = attrs(m[1]);
    if (!a.name || actions.has(a.name)) continue;
    actions.set(a.name, { timeoutMs: a.timeout ? parseOcfDuration(a.timeout) : null, intervalMs: a.interval ? parseOcfDuration(a.interval) : null });
  }
  return { parameters, actions };
}

export interface OcfAgentSpec {
  /** The resource's name (OCF_RESOURCE_INSTANCE). */
  name: string;
  provider: string;
  type: string;
  params: Record<string, string>;
  /** Overrides every action's timeout from the meta-data. */
  timeoutMs: number | null;
}

export interface OcfContext {
  ocfRoot: string;
  /** HA_RSCTMP: where agents keep their state (lock and pid files); one per controller. */
  stateDir: string;
}

const DEFAULT_ACTION_TIMEOUT_MS = 20_000;
const META_DATA_TIMEOUT_MS = 5000;

export class OcfAgent {
  readonly path: string;
  private meta: AgentMetaData | null = null;

  constructor(readonly spec: OcfAgentSpec, private readonly ctx: OcfContext) {
    this.path = path.join(ctx.ocfRoot, 'resource.d', spec.provider, spec.type);
  }

  get label(): string { return `${this.spec.name} (ocf:${this.spec.provider}:${this.spec.type})`; }

  /** The monitor interval the agent declares, or null. */
  get declaredMonitorIntervalMs(): number | null { return this.meta?.actions.get('monitor')?.intervalMs ?? null; }

  /**
   * Everything an operator would otherwise learn at the first failover: the agent exists and runs,
   * its meta-data parses, every parameter is one it declares, every required one is given, it does
   * not need Pacemaker, and its own validate-all passes. Throws with the reason.
   */
  async validate(): Promise<void> {
    const where = `resource ${this.label}`;
    let st: fs.Stats;
    try { st = fs.statSync(this.path); } catch {
      throw new Error(`${where}: no agent at ${this.path} (is the resource-agents package installed, and the provider:type right?)`);
    }
    if (!st.isFile() || (st.mode & 0o111) === 0) throw new Error(`${where}: ${this.path} is not an executable file`);
    const r = await this.exec('meta-data', META_DATA_TIMEOUT_MS, 0);
    if (r.code !== OCF.SUCCESS) throw new Error(`${where}: meta-data failed: ${describeCommandResult(r)}`);
    let meta: AgentMetaData;
    try { meta = parseMetaData(r.stdout); } catch (e) { throw new Error(`${where}: ${(e as Error).message}`); }
    const declared = new Set(meta.parameters.map((p) => p.name));
    const unknown = Object.keys(this.spec.params).filter((k) => !declared.has(k));
    if (unknown.length > 0) throw new Error(`${where}: unknown parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the agent declares ${[...declared].join(', ') || 'none'}`);
    const missing = meta.parameters.filter((p) => p.required && this.spec.params[p.name] === undefined).map((p) => p.name);
    if (missing.length > 0) throw new Error(`${where}: missing required parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
    for (const a of ['start', 'stop', 'monitor']) if (!meta.actions.has(a)) throw new Error(`${where}: the agent has no ${a} action`);
    if (meta.actions.has('promote') || meta.actions.has('demote')) {
      throw new Error(`${where}: a promotable agent (it has promote and demote actions, for Pacemaker's promotable clones); Quorate starts, stops and monitors resources on the active only: promote the service with its hooks instead`);
    }
    const needs = pacemakerToolsUsed(safeRead(this.path)).filter((t) => !onPath(t));
    if (needs.length > 0) throw new Error(`${where}: the agent calls Pacemaker's ${needs.join(', ')}, which ${needs.length > 1 ? 'are' : 'is'} not installed: it would half-run outside Pacemaker`);
    this.meta = meta;
    if (meta.actions.has('validate-all')) {
      const v = await this.run('validate-all');
      if (v.code !== OCF.SUCCESS) throw new Error(`${where}: validate-all says ${ocfCodeName(v.code)}${lastOutput(v) ? `: ${lastOutput(v)}` : ''}`);
    }
  }

  /** Runs an action with the agent's declared timeout (or the configured one). */
  run(action: 'start' | 'stop' | 'monitor' | 'validate-all', intervalMs = 0): Promise<CommandResult> {
    const declared = this.meta?.actions.get(action)?.timeoutMs ?? null;
    return this.exec(action, this.spec.timeoutMs ?? declared ?? DEFAULT_ACTION_TIMEOUT_MS, intervalMs);
  }

  /** The environment Pacemaker gives an agent, for running it here or on another host over ssh. */
  env(action: string, timeoutMs: number, intervalMs: number): Record<string, string> {
    const env: Record<string, string> = {
      OCF_ROOT: this.ctx.ocfRoot, OCF_FUNCTIONS_DIR: path.join(this.ctx.ocfRoot, 'lib', 'heartbeat'),
      OCF_RA_VERSION_MAJOR: '1', OCF_RA_VERSION_MINOR: '1',
      OCF_RESOURCE_INSTANCE: this.spec.name, OCF_RESOURCE_TYPE: this.spec.type, OCF_RESOURCE_PROVIDER: this.spec.provider,
      OCF_RESKEY_CRM_meta_timeout: String(timeoutMs), OCF_RESKEY_CRM_meta_interval: String(intervalMs),
      HA_RSCTMP: this.ctx.stateDir, __OCF_ACTION: action,
    };
    for (const [k, v] of Object.entries(this.spec.params)) env[`OCF_RESKEY_${k}`] = v;
    return env;
  }

  /** The shell command that runs `action` with that environment (for a remote host). */
  shellCommand(action: 'stop'): string {
    const timeoutMs = this.spec.timeoutMs ?? this.meta?.actions.get(action)?.timeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
    const env = this.env(action, timeoutMs, 0);
    return `env ${Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')} ${shellQuote(this.path)} ${action}`;
  }

  private exec(action: string, timeoutMs: number, intervalMs: number): Promise<CommandResult> {
    if (action !== 'meta-data') fs.mkdirSync(this.ctx.stateDir, { recursive: true, mode: 0o700 });
    // Meta-data runs to tens of kilobytes (IPaddr2's is 14), its actions last.
    return runCommand(`${shellQuote(this.path)} ${action}`, { timeoutMs, env: this.env(action, timeoutMs, intervalMs), outputMax: action === 'meta-data' ? 1 << 20 : undefined });
  }
}

/** The Pacemaker tools an agent's script calls (directly or through ocf-shellfuncs helpers). */
export function pacemakerToolsUsed(script: string): string[] {
  const code = script.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
  const found = new Set<string>();
  for (const t of PACEMAKER_TOOLS) if (new RegExp(`(^|[^A-Za-z0-9_$-])${t}([^A-Za-z0-9_-]|$)`, 'm').test(code)) found.add(t);
  for (const [fn, tool] of Object.entries(PACEMAKER_FUNCTIONS)) if (new RegExp(`\\b${fn}\\b`).test(code)) found.add(tool);
  return [...found].sort();
}

function safeRead(file: string): string {
  try { return fs.readFileSync(file, 'utf8').slice(0, 2_000_000); } catch { return ''; }
}

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try { fs.accessSync(path.join(dir, tool), fs.constants.X_OK); return true; } catch { /* next */ }
  }
  return false;
}

export function lastOutput(r: CommandResult): string {
  return (r.stderr.trim() || r.stdout.trim()).split('\n').at(-1)?.slice(0, 200) ?? '';
}
