// One nemesis run: a lab of 3-5 hosts, the cluster deployed on it, clients
// writing and reading through the active, the seed's faults injected one at
// a time, then every fault healed, convergence awaited, the final state and
// the whole journal read, the history checked. The lab is torn down in every
// outcome. Used by main.ts (npm run nemesis) and test/lab/nemesis.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { tailJournal } from '../../src/client/journal/tail.js';
import { createLab, type Lab } from '../helpers/lab.js';
import { checkAll, parseEdit, type FaultWindow, type JournalEntry, type Violation, type WriteOp } from './checker.js';
import { ActivePoller, Workload } from './clients.js';
import { deploy, type Deployment } from './deploy.js';
import { endpointsOf, Nemesis, type FaultRecord } from './faults.js';
import { countByKind, unavailabilityByFault, unavailabilityByKind, UNAVAILABILITY_MEASURE, type Stat } from './report.js';
import { makeSchedule } from './schedule.js';

export interface NemesisOptions {
  seed: number;
  /** The fault phase's length. */
  minutes: number;
  hosts: number;
  instances?: number;
  clients?: number;
  sessionTimeoutMs?: number;
  /** After the faults stop, one active must serve writes within this. */
  convergenceBoundMs?: number;
  /** Processes' logs and, when a run fails, its history. Default: a new dir under os.tmpdir()/quorate-nemesis. */
  outDir?: string;
  /** Keep outDir after a run without violations. */
  keepLogs?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
}

export const RUN_DEFAULTS = {
  instances: 3,
  clients: 4,
  session_timeout_ms: 5_000,
  convergence_bound_ms: 60_000,
  /** Setup: one active within this after everything started. */
  first_active_ms: 90_000,
  barrier_ms: 30_000,
  /** Reading the whole journal. */
  journal_read_ms: 120_000,
  journal_quiet_ms: 2_000,
} as const;

export interface NemesisReport {
  seed: number;
  minutes: number;
  hosts: number;
  instances: number;
  clients: number;
  sessionTimeoutMs: number;
  faultsInjected: number;
  faults: Record<string, number>;
  writes: { attempted: number; acknowledged: number; indeterminate: number };
  readsChecked: number;
  readsAnsweredByStandby: number;
  violations: Violation[];
  unavailabilityMeasure: string;
  unavailabilityMs: Record<string, Stat>;
  writesAcknowledgedPerSecond: number;
  /** From the last heal to one active serving writes; null when it did not converge within the bound. */
  convergenceMs: number | null;
  convergenceBoundMs: number;
  journalEdits: number;
  /** /active polls in which two controllers answered 200 at once (information: C4 is what the journal says). */
  pollsWithTwoActives: number;
  pollsWithNoActive: number;
  unexpectedExits: { atMs: number; process: string; exit: string }[];
  faultLog: { index: number; kind: string; target: string; atMs: number; durationMs: number; unavailableMs: number; notes?: string[] }[];
  durationMs: number;
  replay: string;
  outDir: string | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function replayCommand(o: { seed: number; minutes: number; hosts: number; instances?: number; clients?: number; sessionTimeoutMs?: number }): string {
  const extra = [
    o.instances !== undefined && o.instances !== RUN_DEFAULTS.instances ? ` --instances ${o.instances}` : '',
    o.clients !== undefined && o.clients !== RUN_DEFAULTS.clients ? ` --clients ${o.clients}` : '',
    o.sessionTimeoutMs !== undefined && o.sessionTimeoutMs !== RUN_DEFAULTS.session_timeout_ms ? ` --session-timeout-ms ${o.sessionTimeoutMs}` : '',
  ].join('');
  return `npm run nemesis -- --seed ${o.seed} --minutes ${o.minutes} --hosts ${o.hosts}${extra}`;
}

/** Reads the whole journal: until it has `atLeast` and no new edit came for a quiet while (bounded). */
async function readJournal(d: Deployment, atLeast: bigint): Promise<{ entries: JournalEntry[]; problems: string[] }> {
  const entries: JournalEntry[] = [];
  const problems: string[] = [];
  const ac = new AbortController();
  const hard = setTimeout(() => ac.abort(), RUN_DEFAULTS.journal_read_ms);
  let quiet: NodeJS.Timeout | undefined;
  const arm = (last: bigint) => { clearTimeout(quiet); if (last >= atLeast) quiet = setTimeout(() => ac.abort(), RUN_DEFAULTS.journal_quiet_ms); };
  let last = 0n;
  arm(last);
  try {
    for await (const e of tailJournal('kv', 1n, { nodes: d.journalNodes, waitMs: 500, signal: ac.signal })) {
      const p = parseEdit(e.txid, e.payload.toString());
      if (typeof p === 'string') problems.push(p); else entries.push(p);
      last = e.txid;
      arm(last);
    }
  } catch (e) {
    problems.push(`reading the journal from txid ${last + 1n}: ${(e as Error).message}`);
  } finally {
    clearTimeout(hard);
    clearTimeout(quiet);
  }
  if (last < atLeast) problems.push(`the journal could be read only up to txid ${last}, short of the barrier write's ${atLeast} (within ${RUN_DEFAULTS.journal_read_ms} ms)`);
  return { entries, problems };
}

export async function runNemesis(o: NemesisOptions): Promise<NemesisReport> {
  const log = o.log ?? (() => undefined);
  const instances = o.instances ?? RUN_DEFAULTS.instances;
  const clients = o.clients ?? RUN_DEFAULTS.clients;
  const sessionTimeoutMs = o.sessionTimeoutMs ?? RUN_DEFAULTS.session_timeout_ms;
  const convergenceBoundMs = o.convergenceBoundMs ?? RUN_DEFAULTS.convergence_bound_ms;
  if (!Number.isInteger(o.hosts) || o.hosts < 3 || o.hosts > 5) throw new Error(`nemesis: --hosts must be 3, 4 or 5, got ${o.hosts}`);
  const schedule = makeSchedule({ seed: o.seed, minutes: o.minutes, sessionTimeoutMs });
  const replay = replayCommand({ seed: o.seed, minutes: o.minutes, hosts: o.hosts, instances, clients, sessionTimeoutMs });
  const outDir = o.outDir ?? path.join(os.tmpdir(), 'quorate-nemesis', `seed-${o.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(outDir, { recursive: true });
  log(`nemesis: seed ${o.seed}, ${o.minutes} min of faults on ${o.hosts} hosts, ${schedule.length} faults scheduled; logs in ${outDir}`);
  const t0 = performance.now();
  const now = () => performance.now() - t0;

  let lab: Lab | null = null;
  let workload: Workload | null = null;
  let poller: ActivePoller | null = null;
  try {
    lab = await createLab({ hosts: o.hosts, name: 'nemesis' });
    log(`nemesis: lab slot ${lab.slot} up after ${Math.round(now())} ms`);
    const bin = await lab.installQuorate();
    log(`nemesis: quorate installed (${bin}) after ${Math.round(now())} ms`);
    const d = await deploy(lab, bin, { hosts: o.hosts, instances, sessionTimeoutMs, logDir: outDir, failsafe: true });
    log(`nemesis: hosts ${d.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}; starting ${d.all.length} processes`);
    await d.start();
    log(`nemesis: every process listens after ${Math.round(now())} ms`);
    const endpoints = endpointsOf(d);
    poller = new ActivePoller(endpoints, now);
    poller.start();
    const firstEnd = now() + RUN_DEFAULTS.first_active_ms;
    while (now() < firstEnd && (poller.latest(1_000) ?? []).length !== 1) await sleep(200);
    const first = poller.latest(1_000) ?? [];
    if (first.length !== 1) throw new Error(`setup: no single active instance within ${RUN_DEFAULTS.first_active_ms} ms of starting (active: ${first.join(', ') || 'none'}); logs in ${outDir}`);
    log(`nemesis: ${first[0]} is active after ${Math.round(now())} ms; clients start`);

    workload = new Workload(endpoints, clients, o.seed, now);
    workload.start();
    const nemesis = new Nemesis(lab, d, poller, now, (l) => log(`  ${(now() / 1000).toFixed(1)}s ${l}`));
    const phaseStart = now();
    const phaseEnd = phaseStart + o.minutes * 60_000;
    for (const f of schedule) {
      if (now() >= phaseEnd) break;
      await nemesis.run(f, phaseStart, phaseEnd);
    }
    if (phaseEnd > now()) await sleep(phaseEnd - now());
    const faultPhaseMs = now() - phaseStart;

    // The faults stop: everything back, then one active serving writes within the bound.
    const healProblems = await nemesis.healAll();
    for (const p of healProblems) log(`nemesis: final heal: ${p}`);
    const healedAt = now();
    const convergeEnd = healedAt + convergenceBoundMs;
    let convergenceMs: number | null = null;
    for (let i = 0; now() < convergeEnd && i < 100_000; i++) {
      const a = poller.latest(1_000) ?? [];
      if (a.length === 1 && workload.writes.some((w) => w.outcome === 'ok' && w.ackMs! > healedAt && w.instance === a[0])) {
        convergenceMs = Math.round(now() - healedAt);
        break;
      }
      await sleep(50);
    }
    log(`nemesis: faults over (${nemesis.records.length} injected); ${convergenceMs === null ? `NO convergence within ${convergenceBoundMs} ms` : `converged in ${convergenceMs} ms`}`);
    await workload.stop();

    // The final state through the final active, after a barrier write; then the whole journal.
    const violations: Violation[] = [];
    if (convergenceMs === null) {
      const roles = await Promise.all(endpoints.map((e) => workload!.describe(e)));
      violations.push({ kind: 'no-convergence', message: `${convergenceBoundMs} ms after the last fault healed, there was still no single active acknowledging writes (controllers saying active: ${(poller.latest(2_000) ?? []).join(', ') || 'none'}; ${roles.join('; ')})${healProblems.length ? `; heal problems: ${healProblems.join('; ')}` : ''}` });
      // Reported; now get the cluster going again so the final state can still be read and checked:
      // restart the controllers that say active (all of them when none does).
      const claiming = poller.latest(2_000) ?? [];
      const again = d.instances.filter((i) => claiming.length === 0 || claiming.includes(i.id));
      log(`nemesis: no convergence (${roles.join('; ')}); restarting the controllers of ${again.map((i) => i.id).join(', ')} to read the final state`);
      for (const i of again) {
        await i.controller.kill9();
        await i.controller.start().catch((e: Error) => log(`nemesis: restarting ${i.controller.label}: ${e.message.split('\n')[0]}`));
      }
      const end = now() + convergenceBoundMs;
      while (now() < end && (poller.latest(1_000) ?? []).length !== 1) await sleep(200);
    }
    let finalState: Record<string, string> | null = null;
    let barrier: WriteOp | null = null;
    const bstate = { target: endpoints[0], n: 0 };
    const barrierEnd = now() + RUN_DEFAULTS.barrier_ms;
    while (now() < barrierEnd) {
      const a = poller.latest(1_000) ?? [];
      if (a.length === 1) bstate.target = endpoints.find((e) => e.id === a[0])!;
      const w = await workload.barrier(bstate);
      if (w.outcome === 'ok') { barrier = w; break; }
      await sleep(500);
    }
    if (barrier !== null) {
      const target = endpoints.find((e) => e.id === barrier!.instance)!;
      let last = '';
      while (now() < barrierEnd + RUN_DEFAULTS.barrier_ms) {
        const r = await workload.dump(target);
        if (typeof r === 'string') last = r;
        else if (r.role === 'active' && r.appliedTxid >= BigInt(barrier.txid!)) { finalState = r.data; break; }
        else last = `${target.id}: role ${r.role}, applied txid ${r.appliedTxid} (barrier at ${barrier.txid})`;
        await sleep(200);
      }
      if (finalState === null) violations.push({ kind: 'final-state-unreadable', message: `the final active's GET /kv did not show the barrier write: ${last}` });
    } else {
      violations.push({ kind: 'final-state-unreadable', message: `no barrier write was acknowledged within ${RUN_DEFAULTS.barrier_ms} ms after the run` });
    }
    await poller.stop();
    const journal = await readJournal(d, barrier !== null ? BigInt(barrier.txid!) : 1n);
    log(`nemesis: journal read: ${journal.entries.length} edits; checking ${workload.writes.length} writes, ${workload.reads.length} reads`);

    const records: FaultRecord[] = nemesis.records;
    const windows: FaultWindow[] = records.filter((r) => Number.isFinite(r.injectedMs)).map((r) => ({ index: r.index, kind: r.kind, injectedMs: r.injectedMs, healMs: r.healMs, settledAtInjection: r.settledAtInjection }));
    violations.push(...checkAll({ writes: workload.writes, reads: workload.reads, journal: journal.entries, journalProblems: journal.problems, finalState, faults: windows }));

    const per = unavailabilityByFault(records, workload.writes.filter((w) => w !== barrier), healedAt + (convergenceMs ?? convergenceBoundMs));
    const samples = poller.samples;
    const c = workload.counters;
    const acksInPhase = workload.writes.filter((w) => w.outcome === 'ok' && w.ackMs! >= phaseStart && w.ackMs! <= phaseStart + faultPhaseMs).length;
    const report: NemesisReport = {
      seed: o.seed, minutes: o.minutes, hosts: o.hosts, instances, clients, sessionTimeoutMs,
      faultsInjected: records.filter((r) => Number.isFinite(r.injectedMs)).length,
      faults: countByKind(records),
      writes: { attempted: c.writesAttempted, acknowledged: c.writesAcknowledged, indeterminate: c.writesIndeterminate },
      readsChecked: c.readsChecked,
      readsAnsweredByStandby: c.readsNotActive,
      violations,
      unavailabilityMeasure: UNAVAILABILITY_MEASURE,
      unavailabilityMs: unavailabilityByKind(per),
      writesAcknowledgedPerSecond: Math.round((acksInPhase / (faultPhaseMs / 1000)) * 10) / 10,
      convergenceMs, convergenceBoundMs,
      journalEdits: journal.entries.length,
      pollsWithTwoActives: samples.filter((s) => s.actives.length > 1).length,
      pollsWithNoActive: samples.filter((s) => s.actives.length === 0).length,
      unexpectedExits: nemesis.unexpectedExits.map((x) => ({ ...x, atMs: Math.round(x.atMs) })),
      faultLog: records.map((r) => ({
        index: r.index, kind: r.kind, target: r.target, atMs: Math.round(r.injectedMs - phaseStart), durationMs: Math.round(r.healMs - r.injectedMs),
        unavailableMs: per.find((x) => x.index === r.index)?.ms ?? 0, ...(r.notes.length ? { notes: r.notes } : {}),
      })),
      durationMs: Math.round(now()),
      replay,
      outDir,
    };
    if (violations.length > 0) {
      // The evidence stays: the history, the journal and every process's log.
      fs.writeFileSync(path.join(outDir, 'history.json'), JSON.stringify({
        report, writes: workload.writes, reads: workload.reads, faults: records, activePolls: samples,
        journal: journal.entries.map((e) => ({ ...e, txid: String(e.txid) })),
      }, null, 0));
    } else if (!o.keepLogs) {
      fs.rmSync(outDir, { recursive: true, force: true });
      report.outDir = null;
    }
    return report;
  } catch (e) {
    (e as Error).message += `\n(seed ${o.seed}; replay: ${replay}; logs in ${outDir})`;
    throw e;
  } finally {
    await workload?.stop().catch(() => undefined);
    await workload?.close();
    await poller?.stop().catch(() => undefined);
    await lab?.teardown();
  }
}
