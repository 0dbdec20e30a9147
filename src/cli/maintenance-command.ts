// `quorate pause|resume` (maintenance, kept in the quorum so every controller
// follows it, with who, why and until when) and `quorate history` (the
// service's failover history, from the quorum, through any reachable
// controller).
import os from 'node:os';
import { Command } from 'commander';
import { loadControllerConfig, type ControllerConfig, type InstanceConfig } from '../config/controller-config.js';
import { adminRequest } from '../controller/admin-client.js';
import { parseOcfDuration } from '../controller/ocf-agent.js';
import type { HistoryEntry } from '../controller/history-log.js';
import { UsageError, reportAndExit } from './errors.js';

const serviceOpts = (c: Command) => c.requiredOption('--config <file>', 'cluster file (YAML)').requiredOption('--service <name>', 'the managed service');

/** The first instance whose controller answers `path` with 2xx; every failure on the way, for the error. */
export async function firstAnswering(cfg: ControllerConfig, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ instance: InstanceConfig; json: Record<string, unknown> }> {
  const why: string[] = [];
  for (const i of cfg.instances) {
    try {
      const r = await adminRequest(cfg, i, method, path, body, 5000);
      if (r.status >= 200 && r.status < 300) return { instance: i, json: r.json };
      why.push(`${i.id}: ${r.status} ${String(r.json.error ?? '')}`);
    } catch (e) {
      why.push(`${i.id}: unreachable (${(e as Error & { code?: string }).code ?? (e as Error).message})`);
    }
  }
  throw new Error(`no controller of ${cfg.service} could do it: ${why.join('; ')}`);
}

/** --until TIME or --for DURATION, as an ISO time; null for neither. */
export function untilOf(opts: { until?: string; for?: string }, nowMs: number): string | null {
  if (opts.until !== undefined && opts.for !== undefined) throw new UsageError('give --until or --for, not both');
  if (opts.until !== undefined) {
    const t = Date.parse(opts.until);
    if (Number.isNaN(t)) throw new UsageError(`--until: "${opts.until}" is not a time (say 2026-12-04T02:00:00Z)`);
    if (t <= nowMs) throw new UsageError(`--until: ${opts.until} is not in the future`);
    return new Date(t).toISOString();
  }
  if (opts.for !== undefined) {
    const ms = parseOcfDuration(opts.for);
    if (ms === null || ms <= 0) throw new UsageError(`--for: "${opts.for}" is not a duration (say 90s, 30m or 2h)`);
    return new Date(nowMs + ms).toISOString();
  }
  return null;
}

function describeMaintenance(m: Record<string, unknown> | null | undefined): string {
  if (!m) return 'not paused';
  const until = m.until ? `until ${String(m.until)}` : 'until resumed';
  return `${m.inForce === false ? 'maintenance EXPIRED' : 'paused'} by ${String(m.by)} since ${String(m.at)}, ${until}${m.reason ? `: ${String(m.reason)}` : ''}`;
}

async function pauseOrResume(verb: 'pause' | 'resume', opts: { config: string; service: string; reason?: string; until?: string; for?: string }): Promise<number> {
  const cfg = loadControllerConfig(opts.config, opts.service, null);
  const body = verb === 'pause' ? { reason: opts.reason, until: untilOf(opts, Date.now()), by: `${os.userInfo().username}@${os.hostname()}` } : {};
  const done = await firstAnswering(cfg, 'POST', `/v1/${verb}`, body);
  process.stdout.write(`${verb === 'pause' ? 'maintenance recorded' : 'maintenance cleared'} in the quorum through ${done.instance.id}\n`);
  // Every controller follows the quorum: show each one's view once it has caught up (bounded).
  const want = verb === 'pause';
  const end = Date.now() + 5000;
  let lagging = 0;
  for (const i of cfg.instances) {
    let line = '';
    for (;;) {
      const r = await adminRequest(cfg, i, 'GET', '/v1/status', undefined, 2000).catch((e: Error) => e);
      if (r instanceof Error) { line = `unreachable (${r.message}): it follows the quorum when it reaches it`; lagging++; break; }
      if (r.json.paused === want) { line = describeMaintenance(r.json.maintenance as Record<string, unknown> | null); break; }
      if (Date.now() > end) { line = `not ${want ? 'paused' : 'resumed'} yet: ${describeMaintenance(r.json.maintenance as Record<string, unknown> | null)}`; lagging++; break; }
      await new Promise((res) => setTimeout(res, 100));
    }
    process.stdout.write(`${i.id}: ${line}\n`);
  }
  if (want) process.stdout.write('WARNING: while paused, split-brain protection rests on fencing and the journal\n');
  return lagging > 0 ? 1 : 0;
}

function historyLine(e: HistoryEntry): string {
  const epoch = 'epoch' in e && e.epoch != null ? `epoch ${e.epoch}` : '';
  const token = 'token' in e && e.token ? `token ${e.token}` : '';
  let what: string;
  switch (e.type) {
    case 'promoted': what = `became active after ${e.durationMs} ms${e.previous ? ` (previous ${e.previous})` : ''}`; break;
    case 'demoted': what = `stopped being active: ${e.reason}${e.standbyConfirmed === false ? ' (standby NOT confirmed)' : ''}`; break;
    case 'promotion-failed': what = `promotion failed: ${e.reason}`; break;
    case 'fenced': what = `fenced ${e.target}: ${e.detail}`; break;
    case 'fence-failed': what = `could not fence ${e.target}: ${e.reason}`; break;
    case 'ceded': what = `ceded for ${e.forMs} ms: ${e.reason}`; break;
    case 'failover-target': what = `target of a manual failover${e.forced ? ' (--force)' : ''}`; break;
    case 'paused': what = 'paused (maintenance)'; break;
    case 'resumed': what = 'resumed'; break;
    case 'resumed-after-restart': what = `stayed active across a controller restart: ${e.reason}`; break;
    default: what = JSON.stringify(e);
  }
  return [e.at, e.instance.padEnd(8), [epoch, token].filter(Boolean).join(' ').padEnd(26), what].join('  ');
}

export function maintenanceCommands(): Command[] {
  const pause = serviceOpts(new Command('pause').description('maintenance: no automatic role changes (self-demotion included) until resume or its expiry; kept in the quorum, so every controller follows it'))
    .option('--reason <text>', 'why (shown in status and history)')
    .option('--until <time>', 'ends by itself at this time (ISO 8601)')
    .option('--for <duration>', 'ends by itself after this long (90s, 30m, 2h)')
    .action(async (opts) => { try { process.exitCode = await pauseOrResume('pause', opts); } catch (e) { reportAndExit(e); } });
  const resume = serviceOpts(new Command('resume').description('end maintenance: automatic failover again'))
    .action(async (opts) => { try { process.exitCode = await pauseOrResume('resume', opts); } catch (e) { reportAndExit(e); } });
  const history = serviceOpts(new Command('history').description('the service\'s failover history, kept in the quorum: role changes and why, fencing, manual failovers, maintenance'))
    .option('--since <time>', 'only entries from this time (ISO 8601) or this long ago (30m, 2h)')
    .option('--limit <n>', 'at most this many of the newest entries', '200')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; service: string; since?: string; limit: string; json?: boolean }) => {
      try {
        const cfg = loadControllerConfig(opts.config, opts.service, null);
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.since !== undefined) {
          const ago = parseOcfDuration(opts.since);
          const t = ago !== null && !/^\d+$/.test(opts.since) ? Date.now() - ago : Date.parse(opts.since);
          if (Number.isNaN(t)) throw new UsageError(`--since: "${opts.since}" is neither a time nor a duration`);
          q.set('since', new Date(t).toISOString());
        }
        const r = await firstAnswering(cfg, 'GET', `/v1/history?${q}`);
        const entries = r.json.entries as HistoryEntry[];
        if (opts.json) process.stdout.write(JSON.stringify({ service: cfg.service, entries }, null, 2) + '\n');
        else process.stdout.write([`history of ${cfg.service} (${entries.length} entries, read through ${r.instance.id})`, ...entries.map(historyLine)].join('\n') + '\n');
      } catch (e) { reportAndExit(e); }
    });
  return [pause, resume, history];
}
