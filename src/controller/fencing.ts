// Fencing the previous active instance before this one is promoted: the
// methods configured for that instance, in order, each with its timeout; the
// first that succeeds and is verified wins. graceful asks its controller (the
// admin API) and then its own to-standby hook; shell and http kill or power
// it off, and count only once its service port is closed or it says it is
// standby; ssh (fence-ssh.ts) runs a command on its host with a pinned host
// key, verified the same way. journal (last in a chain) accepts the new journal epoch as the
// fence: the old active can no longer write, whatever its host is doing.
import net from 'node:net';
import { request } from 'undici';
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { adminRequest, type AdminAccess } from './admin-client.js';
import type { Breadcrumb } from '../core/controller/controller-core.js';
import { describeCommandResult, runCommand } from '../io/run-command.js';
import { fenceBySsh } from './fence-ssh.js';
import { queryRole, runHook } from './service-hooks.js';

export type FenceOutcome = { ok: true; detail: string } | { ok: false; reason: string };
export type FenceMethod = FenceConfig['kind'];
export const FENCE_METHODS: readonly FenceMethod[] = ['graceful', 'shell', 'http', 'ssh', 'journal'];

export async function fenceInstance(opts: {
  service: string; target: InstanceConfig | null; crumb: Breadcrumb; token: string; admin: AdminAccess; hasJournal: boolean;
  /** Stops the target's resources on its host (ssh): each resource's stop as a shell command. */
  resourceStops?: readonly { name: string; command: string }[];
  /** Told each method tried and whether it fenced (metrics). */
  onAttempt?: (method: FenceMethod, ok: boolean) => void;
  /** Carries out a method other than journal instead of the real one (the simulator's kill, which may fail or hang). */
  run?: (method: Exclude<FenceConfig, { kind: 'journal' }>, target: InstanceConfig) => Promise<FenceOutcome>;
}): Promise<FenceOutcome> {
  const { target, crumb } = opts;
  const attempted = (method: FenceMethod, r: FenceOutcome) => { opts.onAttempt?.(method, r.ok); return r; };
  if (target === null) {
    if (opts.hasJournal) return attempted('journal', { ok: true, detail: `instance ${crumb.instance} is not in the configuration; fenced by the journal epoch only` });
    return { ok: false, reason: `instance ${crumb.instance} (${crumb.address}) is not in the configuration: no fencing method for it` };
  }
  const failures: string[] = [];
  for (const m of target.fencing) {
    let r: FenceOutcome;
    if (opts.run !== undefined && m.kind !== 'journal') r = await opts.run(m, target);
    else switch (m.kind) {
      case 'graceful': r = await graceful(opts.service, target, opts.token, opts.admin, m.timeoutMs); break;
      case 'shell': {
        const c = await runCommand(m.command, {
          timeoutMs: m.timeoutMs,
          env: { QUORATE_TARGET_INSTANCE: target.id, QUORATE_TARGET_HOST: target.host, QUORATE_TARGET_PORT: String(target.servicePort ?? ''), QUORATE_TARGET_ADMIN_PORT: String(target.adminPort), QUORATE_FENCING_TOKEN: opts.token, QUORATE_SERVICE: opts.service },
        });
        r = c.code === 0 ? await verifyDown(target, `shell: ${describeCommandResult(c)}`) : { ok: false, reason: `shell: ${describeCommandResult(c)}` };
        break;
      }
      case 'http': {
        try {
          const res = await request(m.url, { method: 'POST', body: JSON.stringify({ service: opts.service, instance: target.id, host: target.host, token: opts.token }), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(m.timeoutMs) });
          await res.body.dump();
          r = res.statusCode < 300 ? await verifyDown(target, `http: ${res.statusCode}`) : { ok: false, reason: `http: POST ${m.url} answered ${res.statusCode}` };
        } catch (e) {
          r = { ok: false, reason: `http: POST ${m.url}: ${(e as Error & { code?: string }).code ?? (e as Error).message}` };
        }
        break;
      }
      case 'ssh': r = await fenceBySsh(target, m, opts.token, opts.service, opts.resourceStops ?? []); break;
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

/** The graceful method as a whole (its controller, then its hook) takes at most `timeoutMs`. */
async function graceful(service: string, target: InstanceConfig, token: string, admin: AdminAccess, timeoutMs: number): Promise<FenceOutcome> {
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
    const v = await verifyDown(target, `graceful: its controller reports its service down`);
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
 * standby; asked for about 2 s, each question bounded (a stopped process accepts and never answers).
 */
export async function verifyDown(target: InstanceConfig, what: string): Promise<FenceOutcome> {
  if (target.servicePort === null) return { ok: true, detail: `${what} (not verified: no servicePort configured)` };
  const deadline = performance.now() + VERIFY_MS;
  const role = target.hooks?.role?.kind === 'http' ? { ...target.hooks.role, timeoutMs: Math.min(target.hooks.role.timeoutMs, 500) } : null;
  while (performance.now() < deadline) {
    if (!(await portOpen(target.host, target.servicePort))) return { ok: true, detail: `${what}; port ${target.servicePort} is closed` };
    if (role !== null) {
      const r = await queryRole(role);
      if (r.ok && r.role === 'standby') return { ok: true, detail: `${what}; it came back standby` };
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return { ok: false, reason: `${what}, but ${target.host}:${target.servicePort} still accepts connections and does not say standby` };
}

const VERIFY_MS = 2000;
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
