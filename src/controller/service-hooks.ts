// The managed service's transitions (to-active, to-standby, pre-promote) and
// its role query, as the operator configured them: an HTTP call (POST with a
// JSON body: role, epoch, fencing token, previous active) or a command (the
// same in QUORATE_* environment variables), each with a timeout.
import { request } from 'undici';
import type { HookConfig } from '../config/controller-config.js';
import type { ServiceRole } from '../core/controller/controller-core.js';
import { within } from '../io/deadline.js';
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
    const { res, text } = await within((async () => {
      const r = await request(h.url, {
        method: 'POST', body: JSON.stringify(p), headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(h.timeoutMs), headersTimeout: h.timeoutMs, bodyTimeout: h.timeoutMs,
      });
      return { res: r, text: (await r.body.text()).slice(0, 300) };
    })(), h.timeoutMs);
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, detail: `POST ${h.url}: ${res.statusCode}` };
    return { ok: false, reason: `POST ${h.url} answered ${res.statusCode}${text ? `: ${text}` : ''}` };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { ok: false, reason: `POST ${h.url}: ${err.name === 'TimeoutError' ? `no answer within ${h.timeoutMs} ms` : err.code ?? err.message}` };
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
      const got = await within((async () => {
        const r = await request(h.url, { method: 'GET', signal: AbortSignal.timeout(h.timeoutMs), headersTimeout: h.timeoutMs, bodyTimeout: h.timeoutMs });
        return { status: r.statusCode, body: await r.body.text() };
      })(), h.timeoutMs);
      text = got.body;
      if (got.status !== 200) return { ok: false, reason: `GET ${h.url} answered ${got.status}` };
    } catch (e) {
      return { ok: false, reason: `GET ${h.url}: ${(e as Error & { code?: string }).code ?? (e as Error).message}` };
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
