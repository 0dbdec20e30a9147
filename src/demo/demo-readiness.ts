// Is a part up? The same probes `quorate … start --daemon` waits on (quorum:
// srvr; journal: /v1/health; controller: its admin API), the example service's
// GET /health, and who is active (a controller's GET /active answers 200 only
// on the active). Every wait is bounded in time and in rounds, and gives up at
// once, with the exit status, when a part's process ends.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { ZkClient } from '../client/index.js';
import { loadClusterFile, loadJournalConfig } from '../config/cluster-file.js';
import { loadControllerConfig } from '../config/controller-config.js';
import { controllerSpec, journalSpec, quorumSpec } from '../daemon/daemon-spec.js';
import { silentLogger } from '../io/log.js';
import { DEMO_SERVICE, type DemoLayout, type DemoPart } from './demo-layout.js';
import { DEMO_LIMITS as L } from './demo-limits.js';
import { describeExit, type DemoSupervisor } from './demo-supervisor.js';

export interface PartProbe { answering: boolean; role: string | null; detail: string | null }
export type ProbeFn = () => Promise<PartProbe>;

/** A part that did not come up; `part` null when it is not one process (no leader, no single active). */
export class StartFailure extends Error {
  readonly code = 'QUORATE_DEMO_START';
  constructor(readonly part: DemoPart | null, message: string) { super(message); }
}

async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(L.probe_timeout_ms) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON: the status says enough */ }
  return { status: res.status, json };
}

/** How to ask one part whether it answers; the cluster file is read once, here. */
export function probeFor(layout: DemoLayout, part: DemoPart): ProbeFn {
  const file = layout.configFile;
  const toProbe = (p: { answering: boolean; role: string | null; detail: string | null }): PartProbe => ({ answering: p.answering, role: p.role, detail: p.detail });
  switch (part.kind) {
    case 'quorum': { const spec = quorumSpec(loadClusterFile(file, Number(part.instance)).quorum, { config: file }); return async () => toProbe(await spec.probe(L.probe_timeout_ms)); }
    case 'journal': { const spec = journalSpec(loadJournalConfig(file, Number(part.instance)), file); return async () => toProbe(await spec.probe(L.probe_timeout_ms)); }
    case 'controller': { const spec = controllerSpec(loadControllerConfig(file, DEMO_SERVICE, part.instance), file); return async () => toProbe(await spec.probe(L.probe_timeout_ms)); }
    case 'service': return async () => {
      try {
        const r = await getJson(`${part.urls.service}/health`);
        return { answering: r.status === 200, role: typeof r.json.role === 'string' ? r.json.role : null, detail: `GET /health answered ${r.status}` };
      } catch (e) {
        return { answering: false, role: null, detail: `GET /health: ${(e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).message}` };
      }
    };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls the parts until `accept` says the whole picture is right (it returns null; else why not),
 * within timeoutMs. Throws StartFailure when a watched process ends or time runs out.
 */
export async function waitFor(
  parts: readonly DemoPart[], probes: Map<DemoPart, ProbeFn>, sup: DemoSupervisor, watched: readonly DemoPart[],
  accept: (seen: Map<DemoPart, PartProbe>) => { why: string; part: DemoPart | null } | null, timeoutMs: number, stopping: () => boolean,
): Promise<Map<DemoPart, PartProbe>> {
  const deadline = Date.now() + timeoutMs;
  const rounds = Math.ceil(timeoutMs / L.poll_interval_ms) + 1;
  let last: { why: string; part: DemoPart | null } = { why: 'not asked yet', part: parts[0] ?? null };
  for (let round = 0; round < rounds && Date.now() <= deadline && !stopping(); round++) {
    for (const p of watched) {
      const e = sup.exitOf(p);
      if (e !== null) throw new StartFailure(p, `${p.label} (pid ${sup.pid(p)}) ${describeExit(e)} before the demo was up`);
    }
    const seen = new Map(await Promise.all(parts.map(async (p) => [p, await probes.get(p)!()] as const)));
    const verdict = accept(seen);
    if (verdict === null) return seen;
    last = verdict;
    await sleep(L.poll_interval_ms);
  }
  if (stopping()) throw new StartFailure(null, 'stopped while starting');
  throw new StartFailure(last.part, `${last.why} after ${Math.round(timeoutMs / 1000)} s`);
}

/** Every part answers. */
export function allAnswer(seen: Map<DemoPart, PartProbe>): { why: string; part: DemoPart } | null {
  for (const [p, s] of seen) if (!s.answering) return { why: `${p.label} does not answer (${s.detail ?? 'no answer'})`, part: p };
  return null;
}

/** Every quorum server answers and exactly one leads. */
export function oneLeader(seen: Map<DemoPart, PartProbe>): { why: string; part: DemoPart | null } | null {
  const silent = allAnswer(seen);
  if (silent !== null) return silent;
  const roles = [...seen].map(([p, s]) => `${p.instance} ${s.role}`);
  return [...seen.values()].filter((s) => s.role === 'leader').length === 1 ? null : { why: `no single quorum leader (${roles.join(', ')})`, part: null };
}

/** A probe of a controller's GET /active: answering means active. */
export function activeProbe(controller: DemoPart): ProbeFn {
  return async () => {
    try {
      const r = await getJson(`${controller.urls.admin}/active`);
      return { answering: r.status === 200, role: r.status === 200 ? 'active' : 'standby', detail: null };
    } catch (e) {
      return { answering: false, role: null, detail: (e as Error).message };
    }
  };
}

export function exactlyOneActive(seen: Map<DemoPart, PartProbe>): { why: string; part: DemoPart | null } | null {
  const active = [...seen].filter(([, s]) => s.answering).map(([p]) => p.instance);
  return active.length === 1 ? null : { why: active.length === 0 ? 'no instance became active' : `${active.length} instances say active (${active.join(', ')})`, part: null };
}

/** An existing ZooKeeper answers: a session can be opened (bounded by timeoutMs). */
export async function zookeeperProblem(connectString: string, timeoutMs: number): Promise<string | null> {
  const zk = new ZkClient({ connectString, sessionTimeoutMs: 4000, logger: silentLogger() });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([zk.connect(), new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`no session within ${timeoutMs / 1000} s`)), timeoutMs); })]);
    return null;
  } catch (e) {
    return `ZooKeeper at ${connectString}: ${(e as Error).message}`;
  } finally {
    clearTimeout(timer);
    await zk.close().catch(() => undefined);
  }
}

/** The last lines of a log file (at most log_tail_bytes_max read). */
export function logTail(file: string, lines: number = L.log_tail_lines): string[] {
  try {
    const size = statSync(file).size;
    const bytes = Math.min(size, L.log_tail_bytes_max);
    const buf = Buffer.alloc(bytes);
    const fd = openSync(file, 'r');
    try { readSync(fd, buf, 0, bytes, size - bytes); } finally { closeSync(fd); }
    return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '').slice(-lines);
  } catch {
    return [];
  }
}
