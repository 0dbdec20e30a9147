// Fencing the previous active instance before this one is promoted: the
// methods configured for that instance, in order, each with its timeout; the
// first that succeeds and is verified wins. graceful asks its controller (the
// admin API) and then its own to-standby hook; shell and http kill or power
// it off, and count only once its service port is closed or it says it is
// standby; ssh (fence-ssh.ts) runs a command on its host with a pinned host
// key, verified the same way. journal (last in a chain) accepts the new journal epoch as the
// fence: the old active can no longer write, whatever its host is doing.
import net from 'node:net';
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { adminRequest, type AdminAccess } from './admin-client.js';
import type { Breadcrumb, ServiceRole } from '../core/controller/controller-core.js';
import { describeCommandResult, runCommand, type CommandResult } from '../io/run-command.js';
import { fenceBySsh } from './fence-ssh.js';
import { queryRole, runHook } from './service-hooks.js';
import { httpCall, httpFailure } from '../io/http-call.js';

export type FenceOutcome = { ok: true; detail: string } | { ok: false; reason: string };
export type FenceMethod = FenceConfig['kind'];
export const FENCE_METHODS: readonly FenceMethod[] = ['graceful', 'shell', 'http', 'ssh', 'journal'];
/** The methods that kill or power off the target and are then verified: carried out by `run`. */
export type KillMethod = Extract<FenceConfig, { kind: 'shell' | 'http' }>;

/**
 * What carrying out a kill method yielded, before anything is decided: how the shell command ended
 * (its exit code, signal, timeout, or why it could not start), or the http method's status or error
 * (refused, timed out: the error's code or message).
 */
export type FenceEvidence =
  | { kind: 'command'; result: CommandResult }
  | { kind: 'http-answer'; status: number }
  | { kind: 'http-error'; error: string };

/** What a kill method's evidence means: it failed, or it counts once the target is verified down. */
export type FenceVerdict = { ok: false; reason: string } | { ok: 'verify'; what: string };

/**
 * Whether a kill method's attempt counts (pure): a shell command that exited 0, an http answer
 * below 300 — each only once verified down (verifyDown); anything else fails the method.
 */
export function fenceVerdict(m: KillMethod, ev: FenceEvidence): FenceVerdict {
  switch (m.kind) {
    case 'shell': {
      if (ev.kind !== 'command') return { ok: false, reason: `shell: no command result (${ev.kind})` };
      const how = describeCommandResult(ev.result);
      return ev.result.code === 0 ? { ok: 'verify', what: `shell: ${how}` } : { ok: false, reason: `shell: ${how}` };
    }
    case 'http':
      if (ev.kind === 'http-error') return { ok: false, reason: `http: POST ${m.url}: ${ev.error}` };
      if (ev.kind !== 'http-answer') return { ok: false, reason: `http: no answer (${ev.kind})` };
      return ev.status < 300 ? { ok: 'verify', what: `http: ${ev.status}` } : { ok: false, reason: `http: POST ${m.url} answered ${ev.status}` };
  }
}

/** One look at a fenced target: its service port accepts connections; the role its service reports (null: not asked, or no answer). */
export interface DownObservation { portOpen: boolean; role: ServiceRole | null }

/** The I/O of verifyDown: one look at the target, and the clock its deadline runs on. */
export interface DownIo {
  probeDown(target: InstanceConfig): Promise<DownObservation>;
  now(): number;
  sleep(ms: number): Promise<void>;
}

/**
 * Whether a killed target is down (pure), from what was seen of it so far: at once when it has no
 * servicePort to check (not verified); down once its port was seen closed or its service (restarted
 * by its supervisor) said standby; not down once `deadlinePassed` with neither seen; else undecided (null).
 */
export function downVerdict(target: InstanceConfig, what: string, seen: readonly DownObservation[], deadlinePassed: boolean): FenceOutcome | null {
  if (target.servicePort === null) return { ok: true, detail: `${what} (not verified: no servicePort configured)` };
  for (const o of seen) {
    if (!o.portOpen) return { ok: true, detail: `${what}; port ${target.servicePort} is closed` };
    if (o.role === 'standby') return { ok: true, detail: `${what}; it came back standby` };
  }
  if (deadlinePassed) return { ok: false, reason: `${what}, but ${target.host}:${target.servicePort} still accepts connections and does not say standby` };
  return null;
}

export interface FenceOptions {
  service: string; target: InstanceConfig | null; crumb: Breadcrumb; token: string; admin: AdminAccess; hasJournal: boolean;
  /** Stops the target's resources on its host (ssh): each resource's stop as a shell command. */
  resourceStops?: readonly { name: string; command: string }[];
  /** Told each method tried and whether it fenced (metrics). */
  onAttempt?: (method: FenceMethod, ok: boolean) => void;
  /** Carries out a kill method (shell, http) and says what happened, instead of the real one (the simulator's kill, which may fail or hang); fenceVerdict decides. */
  run?: (method: KillMethod, target: InstanceConfig) => Promise<FenceEvidence>;
  /** verifyDown's look at the target and its clock, instead of the real ones (the simulator's). */
  down?: DownIo;
}

export async function fenceInstance(opts: FenceOptions): Promise<FenceOutcome> {
  const { target, crumb } = opts;
  const attempted = (method: FenceMethod, r: FenceOutcome) => { opts.onAttempt?.(method, r.ok); return r; };
  if (target === null) {
    if (opts.hasJournal) return attempted('journal', { ok: true, detail: `instance ${crumb.instance} is not in the configuration; fenced by the journal epoch only` });
    return { ok: false, reason: `instance ${crumb.instance} (${crumb.address}) is not in the configuration: no fencing method for it` };
  }
  const down = opts.down ?? REAL_DOWN_IO;
  const run = opts.run ?? ((m: KillMethod, t: InstanceConfig) => runKill(m, t, opts.service, opts.token));
  const failures: string[] = [];
  for (const m of target.fencing) {
    let r: FenceOutcome;
    switch (m.kind) {
      case 'graceful': r = await graceful(opts.service, target, opts.token, opts.admin, m.timeoutMs, down); break;
      case 'shell':
      case 'http': {
        const v = fenceVerdict(m, await run(m, target));
        r = v.ok === 'verify' ? await verifyDown(target, v.what, down) : v;
        break;
      }
      case 'ssh': r = await fenceBySsh(target, m, opts.token, opts.service, opts.resourceStops ?? [], down); break;
      case 'journal':
        if (opts.hasJournal) return attempted('journal', { ok: true, detail: `fenced by the journal epoch only (${failures.join('; ') || 'no method before it'})` });
        r = { ok: false, reason: 'journal: the service has no journal' };
        break;
    }
    attempted(m.kind, r);
    if (r.ok) return r;
    failures.push(r.reason);
  }
  return { ok: false, reason: `every fencing method failed: ${failures.join('; ')}` };
}

/**
 * The driver's fence operation (production's and the simulator's): the instance the breadcrumb
 * names, looked up among the configured `instances` (not there: null, and only the journal epoch
 * can fence it), fenced by fenceInstance. Returns the target found with the outcome.
 */
export async function fenceBreadcrumb(
  instances: readonly InstanceConfig[], crumb: Breadcrumb, token: string,
  opts: Omit<FenceOptions, 'target' | 'crumb' | 'token' | 'resourceStops'> & { resourceStops?: (target: InstanceConfig) => readonly { name: string; command: string }[] },
): Promise<{ target: InstanceConfig | null; outcome: FenceOutcome }> {
  const target = instances.find((x) => x.id === crumb.instance) ?? null;
  const { resourceStops, ...rest } = opts;
  const outcome = await fenceInstance({ ...rest, target, crumb, token, resourceStops: target === null ? [] : resourceStops?.(target) ?? [] });
  return { target, outcome };
}

/** A kill method carried out for real: the shell command with the target in its environment, or the http POST. */
async function runKill(m: KillMethod, target: InstanceConfig, service: string, token: string): Promise<FenceEvidence> {
  if (m.kind === 'shell') {
    const result = await runCommand(m.command, {
      timeoutMs: m.timeoutMs,
      env: { QUORATE_TARGET_INSTANCE: target.id, QUORATE_TARGET_HOST: target.host, QUORATE_TARGET_PORT: String(target.servicePort ?? ''), QUORATE_TARGET_ADMIN_PORT: String(target.adminPort), QUORATE_FENCING_TOKEN: token, QUORATE_SERVICE: service },
    });
    return { kind: 'command', result };
  }
  try {
    const res = await httpCall(m.url, { method: 'POST', body: JSON.stringify({ service, instance: target.id, host: target.host, token }), headers: { 'content-type': 'application/json' }, timeoutMs: m.timeoutMs });
    return { kind: 'http-answer', status: res.status };
  } catch (e) {
    return { kind: 'http-error', error: httpFailure(e, m.timeoutMs) };
  }
}

/** The graceful method as a whole (its controller, then its hook) takes at most `timeoutMs`. */
async function graceful(service: string, target: InstanceConfig, token: string, admin: AdminAccess, timeoutMs: number, down: DownIo): Promise<FenceOutcome> {
  const deadline = performance.now() + timeoutMs;
  const left = () => Math.max(0, Math.floor(deadline - performance.now()));
  let why: string;
  let answered = false;
  try {
    const res = await adminRequest(admin, target, 'POST', '/v1/fence', { token }, timeoutMs);
    if (res.status === 200) return { ok: true, detail: `graceful: its controller confirmed standby` };
    answered = true;
    why = `its controller answered ${res.status}: ${res.text.slice(0, 200)}`;
  } catch (e) {
    why = `its controller: ${(e as Error & { code?: string }).code ?? (e as Error).message}`;
  }
  // Its controller says the service is down: that counts once verified the way a kill is (port
  // closed, or the service says standby) — never on its word alone, and never without a port to check.
  if (answered && / is (unhealthy|not-responding) /.test(why) && target.servicePort !== null) {
    const v = await verifyDown(target, `graceful: its controller reports its service down`, down);
    if (v.ok) return v;
    why += `; ${v.reason}`;
  }
  // The controller is gone (not merely refusing): ask the service itself, when its hook can be reached
  // from here — unless resources follow the active: only its host can stop those (a floating IP left
  // up there would answer beside ours), so a later method (ssh) must.
  if (!answered && target.resources.length > 0) why += `; its resources (${target.resources.map((r) => r.name).join(', ')}) can only be stopped on its host`;
  else if (!answered && target.hooks?.toStandby.kind === 'http' && left() >= GRACEFUL_HOOK_MIN_MS) {
    const ms = Math.min(target.hooks.toStandby.timeoutMs, left());
    const h = await runHook({ ...target.hooks.toStandby, timeoutMs: ms }, { service, instance: target.id, role: 'standby', epoch: null, token, previous: null });
    if (h.ok) return { ok: true, detail: `graceful: ${why}; its to-standby hook answered (${h.detail})` };
    why += `; its to-standby hook: ${h.reason}`;
  }
  return { ok: false, reason: `graceful: ${why}` };
}

/**
 * A kill counts once the service port is closed, or the service (restarted by its supervisor) says
 * standby (downVerdict); asked for about 2 s (`io.probeDown`, each look bounded: a stopped process
 * accepts and never answers), every 100 ms.
 */
export async function verifyDown(target: InstanceConfig, what: string, io: DownIo = REAL_DOWN_IO): Promise<FenceOutcome> {
  const deadline = io.now() + FENCE_VERIFY_MS;
  const seen: DownObservation[] = [];
  for (;;) {
    const v = downVerdict(target, what, seen, io.now() >= deadline);
    if (v !== null) return v;
    seen.push(await io.probeDown(target));
    if (downVerdict(target, what, seen, false) === null) await io.sleep(VERIFY_EVERY_MS);
  }
}

/** One real look: is the service port open, and (when it is and the role hook is http) what does the service say it is. */
async function probeDown(target: InstanceConfig): Promise<DownObservation> {
  // (Never asked without a servicePort: downVerdict decides before any look.)
  if (target.servicePort === null || !(await portOpen(target.host, target.servicePort))) return { portOpen: false, role: null };
  const hook = target.hooks?.role;
  if (hook?.kind !== 'http') return { portOpen: true, role: null };
  const r = await queryRole({ ...hook, timeoutMs: Math.min(hook.timeoutMs, 500) });
  return { portOpen: true, role: r.ok ? r.role : null };
}

const REAL_DOWN_IO: DownIo = { probeDown, now: () => performance.now(), sleep: (ms) => new Promise((res) => setTimeout(res, ms)) };

/** How long verifyDown looks for the target down. */
export const FENCE_VERIFY_MS = 2000;
const VERIFY_EVERY_MS = 100;
/** Not worth calling the hook with less time than this left of the graceful method's timeout. */
const GRACEFUL_HOOK_MIN_MS = 200;

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => { s.destroy(); resolve(true); }, 500);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}
