// The managed service's transitions (to-active, to-standby, pre-promote) and
// its role query, as the operator configured them: an HTTP call (POST with a
// JSON body: role, epoch, fencing token, previous active) or a command (the
// same in QUORATE_* environment variables), each with a timeout.
import type { HookConfig } from '../config/controller-config.js';
import type { ServiceRole } from '../core/controller/controller-core.js';
import { httpCall, httpFailure } from '../io/http-call.js';
import { describeCommandResult, runCommand } from '../io/run-command.js';

export interface HookPayload { service: string; instance: string; role: 'active' | 'standby'; epoch: number | null; token: string | null; previous: string | null }
export type HookResult = { ok: true; detail: string } | { ok: false; reason: string };

export function hookEnv(p: HookPayload): Record<string, string> {
  return {
    QUORATE_SERVICE: p.service, QUORATE_INSTANCE: p.instance, QUORATE_ROLE: p.role,
    QUORATE_EPOCH: p.epoch === null ? '' : String(p.epoch), QUORATE_FENCING_TOKEN: p.token ?? '', QUORATE_PREVIOUS: p.previous ?? '',
  };
}

export async function runHook(h: HookConfig, p: HookPayload): Promise<HookResult> {
  if (h.kind === 'command') {
    const r = await runCommand(h.command, { timeoutMs: h.timeoutMs, env: hookEnv(p) });
    return r.code === 0 ? { ok: true, detail: describeCommandResult(r) } : { ok: false, reason: `command ${describeCommandResult(r)}` };
  }
  try {
    const res = await httpCall(h.url, { method: 'POST', body: JSON.stringify(p), headers: { 'content-type': 'application/json' }, timeoutMs: h.timeoutMs });
    const text = res.body.toString('utf8').slice(0, 300);
    if (res.status >= 200 && res.status < 300) return { ok: true, detail: `POST ${h.url}: ${res.status}` };
    return { ok: false, reason: `POST ${h.url} answered ${res.status}${text ? `: ${text}` : ''}` };
  } catch (e) {
    return { ok: false, reason: `POST ${h.url}: ${httpFailure(e, h.timeoutMs)}` };
  }
}

/**
 * Asks the service its role: an HTTP GET answering {"role": ..., "epoch": N} or the word, or a
 * command printing either. `epoch` (the service's journal writer epoch) is null when not given.
 */
export async function queryRole(h: HookConfig): Promise<{ ok: true; role: ServiceRole; epoch: number | null } | { ok: false; reason: string }> {
  let text: string;
  if (h.kind === 'command') {
    const r = await runCommand(h.command, { timeoutMs: h.timeoutMs });
    if (r.code !== 0) return { ok: false, reason: `role command ${describeCommandResult(r)}` };
    text = r.stdout;
  } else {
    try {
      const got = await httpCall(h.url, { method: 'GET', timeoutMs: h.timeoutMs });
      text = got.body.toString('utf8');
      if (got.status !== 200) return { ok: false, reason: `GET ${h.url} answered ${got.status}` };
    } catch (e) {
      return { ok: false, reason: `GET ${h.url}: ${httpFailure(e, h.timeoutMs)}` };
    }
  }
  let word = text.trim();
  let epoch: number | null = null;
  try {
    const j = JSON.parse(word) as { role?: unknown; epoch?: unknown };
    if (typeof j?.role === 'string') word = j.role;
    if (Number.isSafeInteger(j?.epoch) && (j.epoch as number) >= 0) epoch = j.epoch as number;
  } catch { /* a bare word */ }
  return word === 'active' || word === 'standby' ? { ok: true, role: word, epoch } : { ok: false, reason: `the role answer ${JSON.stringify(word.slice(0, 40))} is neither active nor standby` };
}
