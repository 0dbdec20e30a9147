// `npm run sim -- --seeds N`: runs N seeded schedules and checks each; a
// failing seed prints the command that replays it exactly (with --trace for
// the story of the run). Exit 1 if any failed, 2 on bad arguments.
import { Command, InvalidArgumentError } from 'commander';
import { performance } from 'node:perf_hooks';
import { optionsForSeed, replayCommand, type SimCli } from './options.js';
import { runSimulation, type SimResult } from './sim-cluster.js';
import { runJournalSimulation } from './journal-sim.js';
import { runControllerSimulation, SIM_SETTLE_BOUND_MS } from './controller-sim.js';

function integer(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got "${v}"`);
    return n;
  };
}

function main(argv: string[]): number | Promise<number> {
  const program = new Command('sim')
    .description('Seeded simulations of the quorum (election, ZAB) under crashes and partitions, checked against Q1 and Q2, and for commits again once the faults end.')
    .option('--seeds <n>', 'how many seeds to run', integer('--seeds', 1, 1_000_000), 20)
    .option('--first-seed <n>', 'the first of them', integer('--first-seed', 0, 2 ** 32 - 1), 1)
    .option('--seed <n>', 'run this one seed only', integer('--seed', 0, 2 ** 32 - 1))
    .option('--servers <n>', 'voting servers (default: drawn from the seed)', integer('--servers', 1, 9))
    .option('--observers <n>', 'observers (default: drawn from the seed)', integer('--observers', 0, 4))
    .option('--fault-ms <ms>', 'simulated time with faults', integer('--fault-ms', 0, 3_600_000), 20_000)
    .option('--settle-ms <ms>', 'simulated time after the faults stop', integer('--settle-ms', 1000, 3_600_000), 10_000)
    .option('--near-counter-limit', 'start zxid counters near 2^32 (default: drawn from the seed)')
    .option('--no-near-counter-limit', 'start zxid counters at 1')
    .option('--journal', 'the journal quorum instead (JournalState nodes, JournalWriter writers): J1-J3')
    .option('--controller', 'the failover controllers instead (ControllerCore through the production driver code and the real ZkClient, the simulated quorum, the journal, services): C1-C4 and one active after the faults')
    .option('--instances <n>', 'with --controller: service instances (default: drawn from the seed)', integer('--instances', 2, 5))
    .option('--bare', 'replication only, no ZooKeeper layer or clients')
    .option('--reconfig', 'with --bare: change the membership during the run (default: drawn from the seed)')
    .option('--no-reconfig', 'with --bare: keep the membership')
    .option('--spares <n>', 'with --reconfig: servers started outside the membership', integer('--spares', 0, 4))
    .option('--clients <n>', 'simulated ZooKeeper clients (default 4)', integer('--clients', 1, 100))
    .option('--trace', 'print the run\'s events (with --seed)')
    .option('--json', 'print one JSON document')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const cli = program.opts<SimCli & { journal?: boolean; controller?: boolean; instances?: number }>();
  if (cli.journal) return runJournalSeeds(cli);
  if (cli.controller) return runControllerSeeds(cli);
  const seeds = cli.seed !== undefined ? [cli.seed] : Array.from({ length: cli.seeds }, (_, i) => cli.firstSeed + i);
  const t0 = performance.now();
  const failures: { result: SimResult; replay: string }[] = [];
  const totals = { reconfigs: 0, runs: 0, epochs: 0, acked: 0, clientOpsChecked: 0, crashes: 0, powerFailures: 0, partitions: 0, leaderIsolations: 0, snapshotsInstalled: 0, events: 0 };
  for (const seed of seeds) {
    const opts = optionsForSeed(seed, cli);
    let result: SimResult;
    try {
      result = runSimulation(opts);
    } catch (e) {
      result = { seed, options: opts, ok: false, violations: [`threw: ${(e as Error).stack ?? String(e)}`], stats: {} as SimResult['stats'], trace: [] };
    }
    totals.runs++;
    totals.clientOpsChecked += (result.stats as unknown as Record<string, number>).historyOps ?? 0;
    for (const k of ['reconfigs', 'epochs', 'acked', 'crashes', 'powerFailures', 'partitions', 'leaderIsolations', 'snapshotsInstalled', 'events'] as const) totals[k] += result.stats[k] ?? 0;
    if (cli.trace) for (const line of result.trace) process.stdout.write(line + '\n');
    if (!result.ok) {
      const replay = replayCommand(opts);
      failures.push({ result, replay });
      process.stderr.write(`seed ${seed} FAILED:\n  ${result.violations.join('\n  ')}\n  replay: ${replay}\n`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    runs: totals.runs, failed: failures.length, seconds: Number(seconds.toFixed(2)),
    schedulesPerMinute: Math.round(totals.runs / seconds * 60),
    totals, failedSeeds: failures.map((f) => ({ seed: f.result.seed, replay: f.replay, violations: f.result.violations })),
  };
  process.stdout.write(cli.json ? JSON.stringify(summary, null, 2) + '\n'
    : `${summary.runs} schedules, ${summary.failed} failed, ${summary.seconds} s (${summary.schedulesPerMinute}/min); ` +
      `${totals.epochs} epochs, ${totals.acked} acknowledged writes (bare), ${totals.clientOpsChecked} client operations checked, ${totals.crashes} crashes, ${totals.powerFailures} power failures, ${totals.partitions} partitions, ` +
      `${totals.leaderIsolations} leaders cut off, ${totals.reconfigs} membership changes, ${totals.snapshotsInstalled} snapshot syncs\n`);
  return failures.length > 0 ? 1 : 0;
}

/** `--journal`: the journal quorum's seeds; a failing one prints its replay command. */
function runJournalSeeds(cli: SimCli): number {
  const seeds = cli.seed !== undefined ? [cli.seed] : Array.from({ length: cli.seeds }, (_, i) => cli.firstSeed + i);
  const t0 = performance.now();
  const failedSeeds: { seed: number; replay: string; violations: string[] }[] = [];
  const totals = { acked: 0, writers: 0, fenced: 0, crashes: 0, catchUps: 0, gapFetches: 0 };
  for (const seed of seeds) {
    const nodes = cli.servers ?? (seed % 2 ? 3 : 5);
    let r: ReturnType<typeof runJournalSimulation>;
    try {
      r = runJournalSimulation({ seed, nodes, faultMs: Math.min(cli.faultMs, 20_000), trace: cli.trace ?? false });
    } catch (e) {
      r = { seed, ok: false, violations: [`threw: ${(e as Error).stack ?? String(e)}`], stats: {}, trace: [] };
    }
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k] ?? 0;
    if (cli.trace) for (const line of r.trace) process.stdout.write(line + '\n');
    if (!r.ok) {
      const replay = `npm run sim -- --journal --seed ${seed} --servers ${nodes} --fault-ms ${Math.min(cli.faultMs, 20_000)} --trace`;
      failedSeeds.push({ seed, replay, violations: r.violations });
      process.stderr.write(`seed ${seed} FAILED:\n  ${r.violations.join('\n  ')}\n  replay: ${replay}\n`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const failed = failedSeeds.length;
  if (cli.json) {
    process.stdout.write(JSON.stringify({ runs: seeds.length, failed, seconds: Number(seconds.toFixed(2)), schedulesPerMinute: Math.round(seeds.length / seconds * 60), totals, failedSeeds }, null, 2) + '\n');
  } else {
    process.stdout.write(`${seeds.length} journal schedules, ${failed} failed, ${seconds.toFixed(2)} s (${Math.round(seeds.length / seconds * 60)}/min); ` +
      `${totals.acked} batches acknowledged, ${totals.writers} writers (${totals.fenced} fenced), ${totals.crashes} node crashes, ${totals.catchUps} catch-up steps, ${totals.gapFetches} gap-fill fetches (chunks of 1-8 edits)\n`);
  }
  return failed > 0 ? 1 : 0;
}

/** `--controller`: the controllers' seeds; a failing one prints its replay command. */
async function runControllerSeeds(cli: SimCli & { instances?: number }): Promise<number> {
  const seeds = cli.seed !== undefined ? [cli.seed] : Array.from({ length: cli.seeds }, (_, i) => cli.firstSeed + i);
  const t0 = performance.now();
  let failed = 0;
  const totals: Record<string, number> = {};
  for (const seed of seeds) {
    const instances = cli.instances ?? (seed % 3 === 0 ? 3 : 2);
    const opts = { seed, instances, faultMs: cli.faultMs, settleMs: Math.min(cli.settleMs, 5000), trace: cli.trace ?? false };
    let r: Awaited<ReturnType<typeof runControllerSimulation>>;
    try {
      r = await runControllerSimulation(opts);
    } catch (e) {
      r = { seed, ok: false, violations: [`threw: ${(e as Error).stack ?? String(e)}`], stats: {}, trace: [] };
    }
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
    if (cli.trace) for (const line of r.trace) process.stdout.write(line + '\n');
    if (!r.ok) {
      failed++;
      process.stderr.write(`seed ${seed} FAILED:\n  ${r.violations.join('\n  ')}\n  replay: npm run sim -- --controller --seed ${seed} --instances ${instances} --fault-ms ${opts.faultMs} --settle-ms ${opts.settleMs} --trace\n`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${seeds.length} controller schedules, ${failed} failed, ${seconds.toFixed(2)} s (${Math.round(seeds.length / seconds * 60)}/min); one active required ${SIM_SETTLE_BOUND_MS} ms after the faults; ` +
    Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ') + '\n');
  return failed > 0 ? 1 : 0;
}

void Promise.resolve(main(process.argv.slice(2))).then((code) => { process.exitCode = code; });
