// postgresql-failover: the PostgreSQL recipe (examples/postgresql) with the
// real PostgreSQL 15 servers, as its test runs it (three servers, their
// sidecars and controllers, one quorum server, all on 127.0.0.1; controller
// session 3 s, health checked every 200 ms). --rounds times with asynchronous
// replication, then --rounds times with synchronous_standby_names =
// 'ANY 1 (a, b, c)' and synchronous_commit = on: a client writes through the
// client path (psql, libpq multi-host, target_session_attrs=read-write, one
// INSERT at a time), the primary's postmaster is killed with -9, and we
// measure the ms from the kill to the first write the new primary
// acknowledged, how many acknowledged writes the new primary does not have,
// and the ms until the old primary streams from the new one after pg_rewind.
// Each round starts from a settled cluster (the previous round's old primary
// back as a standby). No bar: the figures are what they are; the run fails
// only if a round breaks a property (two primaries seen, a write the new
// primary acknowledged lost, a loss with synchronous replication, timeline
// histories that differ between servers).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { failoverRound, postgresMissing, startPgCluster, type PgCluster, type RoundResult } from '../test/helpers/recipe-postgresql.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { round1, summarize } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 10, quick: 3, integer: true, help: 'kill -9 rounds per replication mode' },
  { name: 'write-ms', full: 1000, quick: 500, integer: true, help: 'ms of writes through the client path before each kill' },
  { name: 'budget-seconds', full: 900, quick: 300, help: 'stop everything and fail past this wall time' },
];
const SWITCHES = { quick: 'short run (also BENCH_QUICK=1)', help: 'this text' };

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

function modeReport(rs: RoundResult[]): Record<string, unknown> {
  const f = summarize(rs.map((r) => r.failoverMs));
  const pr = summarize(rs.map((r) => r.promotedMs));
  const j = summarize(rs.map((r) => r.rejoinMs));
  const lost = rs.map((r) => r.lost.length);
  return {
    failoverToFirstWriteMs: { p50: round1(f.p50Ms), max: round1(f.maxMs), samples: rs.map((r) => round1(r.failoverMs)) },
    promotedMs: { what: 'kill -9 until another server is out of recovery (sampled every ~20-50 ms)', p50: round1(pr.p50Ms), max: round1(pr.maxMs) },
    rejoinAfterPgRewindMs: { p50: round1(j.p50Ms), max: round1(j.maxMs) },
    promotionsThatFirstCaughtUpFromAStandby: rs.filter((r) => r.caughtUpFromStandby).length,
    writesLost: { total: lost.reduce((a, b) => a + b, 0), perRound: lost, ackedAfterKillPerRound: rs.map((r) => r.lostAckedAfterKill.length) },
    writesAcknowledged: { beforeKillPerRound: rs.map((r) => r.ackedBeforeKill), byOldAfterKillPerRound: rs.map((r) => r.ackedByOldAfterKill) },
    rounds: rs.map((r) => ({ from: r.oldPrimary, to: r.newPrimary, failoverMs: round1(r.failoverMs), promotedMs: round1(r.promotedMs), rejoinMs: round1(r.rejoinMs), lost: r.lost.length, caughtUp: r.caughtUpFromStandby, maxPrimariesSeen: r.maxPrimariesSeen, rejoinPath: r.rejoinPath })),
  };
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs('postgresql-failover', argv, SPECS, SWITCHES);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.values;
  const missing = postgresMissing();
  if (missing !== null) { process.stderr.write(`postgresql-failover: ${missing}\n`); return 2; }
  let cluster: PgCluster | null = null;
  // The servers run in their own process groups: leaving without stopping them would leave them running.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { log(`${sig}: stopping everything`); void (cluster?.stopAll() ?? Promise.resolve()).finally(() => process.exit(130)); });
  }
  const budget = setTimeout(() => {
    log('budget exceeded: stopping everything');
    void (cluster?.stopAll() ?? Promise.resolve()).finally(() => process.exit(1));
  }, o['budget-seconds'] * 1000);
  budget.unref();
  const results: Record<'async' | 'sync', RoundResult[]> = { async: [], sync: [] };
  // Other work on the machine stretches every step here (processes spawned per check and hook): say how busy it was.
  const loadStart = os.loadavg().map(round1);
  const problems: string[] = [];
  try {
    log('starting three PostgreSQL 15 servers, their sidecars and controllers, a quorum server');
    cluster = await startPgCluster({ synchronous: false });
    let round = 0;
    for (const mode of ['async', 'sync'] as const) {
      await cluster.setSynchronous(mode === 'sync');
      for (let k = 0; k < o.rounds; k++) {
        const r = await failoverRound(cluster, ++round, { synchronous: mode === 'sync', writeMsBeforeKill: o['write-ms'], log });
        results[mode].push(r);
        log(`${mode} round ${k + 1}: ${r.oldPrimary} -> ${r.newPrimary}, first write after ${round1(r.failoverMs)} ms, lost ${r.lost.length} of ${r.ackedBeforeKill + r.ackedByOldAfterKill} acknowledged by the old primary, rejoined after ${round1(r.rejoinMs)} ms`);
        if (r.maxPrimariesSeen > 1) problems.push(`${mode} round ${k + 1}: ${r.maxPrimariesSeen} primaries seen at once`);
        if (r.lostAckedByNew.length > 0) problems.push(`${mode} round ${k + 1}: writes the new primary acknowledged were lost: ${r.lostAckedByNew.join(', ')}`);
        if (mode === 'sync' && r.lost.length > 0) problems.push(`sync round ${k + 1}: ${r.lost.length} acknowledged writes lost`);
        if (r.historyConflicts.length > 0) problems.push(`${mode} round ${k + 1}: timeline histories differ between servers: ${r.historyConflicts.join('; ')}`);
        if (r.rejoinPath === null) problems.push(`${mode} round ${k + 1}: the old primary rejoined without a pg_rewind or a start-as-standby line in its pgq.log: ${r.rejoinLines.slice(-8).join(' | ')}`);
      }
    }
  } catch (e) {
    problems.push((e as Error).message);
    if (cluster !== null) process.stderr.write(`${cluster.dump()}\n`);
  } finally {
    await cluster?.stopAll();
    clearTimeout(budget);
  }
  const report = {
    benchmark: 'postgresql-failover',
    machine: { cpus: os.cpus().length, node: process.version, loadAverage1mAtStartAndEnd: [loadStart[0], round1(os.loadavg()[0])] },
    options: o,
    setup: 'PostgreSQL 15 (Debian), 3 servers on 127.0.0.1 (fsync on, shared_buffers 16MB, 1 MB WAL segments, wal_log_hints on); sidecars following every 300 ms; controllers: session 3 s, sidecar health check every 200 ms, quorum tick 100 ms; client path: psql with host=a,b,c and target_session_attrs=read-write, one INSERT ... RETURNING at a time',
    what: 'kill -9 of the primary\'s postmaster; failoverToFirstWriteMs: until the client path has a write acknowledged by the new primary; writesLost: acknowledged writes the new primary does not have; rejoinAfterPgRewindMs: until the old primary streams from the new one',
    async: modeReport(results.async),
    sync: { settings: "synchronous_standby_names = 'ANY 1 (a, b, c)', synchronous_commit = on", ...modeReport(results.sync) },
    problems,
    seconds: round1((performance.now() - t0) / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return problems.length === 0 ? 0 : 1;
}
