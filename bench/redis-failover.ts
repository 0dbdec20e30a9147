// redis-failover: the Redis recipe (examples/redis) with Debian's
// redis-server and haproxy, our quorum and controllers, on 127.0.0.1 (three
// Redis instances, no persistence; controller session 3 s, health checks every
// 200 ms, the recipe's agents every 200 ms; conf/haproxy.cfg). Clients write
// unique keys through HAProxy (4 connections, one write in flight each,
// reconnecting after any error). Each round: kill -9 of the primary's
// redis-server, time until the first acknowledgement of a write sent after the
// kill, and every acknowledged write read back from the new primary (lost =
// acknowledged but not there); the killed Redis is started again and rejoins
// as a replica before the next round. Four settings, --rounds each:
//   async          plain writes (SET: acknowledged by the primary alone), min-replicas-to-write 0
//   wait           SET + WAIT 1 500 (acknowledged once a replica has it), min-replicas-to-write 1
//   async-stalled  as async, with the replicas stalled (SIGSTOP) while the primary acknowledges
//                  --stall-mb of 16 kB values, killed before they resume: the window made visible
//   wait-stalled   as wait, replicas stalled for 1 s before the kill
// Prints one JSON document; exits 1 if any acknowledged write was lost with WAIT.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { failoverRound, killAllSync, startRedisRecipe, type RoundOptions, type RoundResult } from '../test/helpers/recipe-cluster.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { round1, summarize } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 10, quick: 3, integer: true, help: 'kill -9 rounds per setting' },
  { name: 'stall-mb', full: 32, quick: 32, help: 'MB of values the primary acknowledges while the replicas are stalled (async-stalled)' },
  { name: 'budget-seconds', full: 900, quick: 300, help: 'kill everything and fail past this wall time' },
];
const SWITCHES = { quick: 'short run (also BENCH_QUICK=1)', help: 'this text' };

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

interface Setting { name: string; what: string; round: Omit<RoundOptions, 'prefix'> }

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs('redis-failover', argv, SPECS, SWITCHES);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.values;
  const budget = setTimeout(() => { log('budget exceeded: killing everything'); killAllSync(); process.exit(1); }, o['budget-seconds'] * 1000);
  budget.unref();
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { killAllSync(); process.exit(130); });

  const WAIT = { replicas: 1, timeoutMs: 500 };
  const base = { connections: 4, ackedBefore: 300, ackedAfter: 200, valueBytes: 16, stall: null };
  const stallBytes = Math.round(o['stall-mb'] * 1024 * 1024);
  const settings: Setting[] = [
    { name: 'async', what: 'SET acknowledged by the primary alone; min-replicas-to-write 0', round: { ...base, wait: null, minReplicasToWrite: 0 } },
    { name: 'wait', what: 'SET + WAIT 1 500, acknowledged once WAIT counts a replica; min-replicas-to-write 1', round: { ...base, wait: WAIT, minReplicasToWrite: 1 } },
    {
      name: 'async-stalled', what: `as async (16 kB values); the replicas SIGSTOPped while the primary acknowledges ${o['stall-mb']} MB, the primary killed before they resume`,
      round: { ...base, wait: null, minReplicasToWrite: 0, valueBytes: 16 * 1024, ackedBefore: 100, ackedAfter: 50, stall: { bytes: stallBytes, maxMs: 10_000 } },
    },
    {
      name: 'wait-stalled', what: 'as wait (16 kB values); the replicas SIGSTOPped for 1 s, the primary killed before they resume',
      round: { ...base, wait: WAIT, minReplicasToWrite: 1, valueBytes: 16 * 1024, ackedBefore: 100, ackedAfter: 50, stall: { bytes: Number.MAX_SAFE_INTEGER, maxMs: 1000 } },
    },
  ];

  log('starting the recipe: quorum, 3 x (redis-server, agent, controller), haproxy');
  const recipe = await startRedisRecipe({ instances: 3, minReplicasToWrite: 1, maxLagOnFailover: 1024 * 1024 });
  const results: Record<string, unknown> = {};
  let waitLost = 0;
  try {
    for (const s of settings) {
      const rounds: RoundResult[] = [];
      for (let k = 0; k < o.rounds; k++) {
        const r = await failoverRound(recipe, { ...s.round, prefix: `${s.name}-${k}` });
        rounds.push(r);
        log(`${s.name} ${k + 1}/${o.rounds}: ${r.old} -> ${r.next}, first write acknowledged ${round1(r.failoverMs)} ms after the kill (controller active after ${round1(r.activeMs)} ms); ${r.acked} acknowledged, ${r.lost.length} lost${s.round.stall ? `, ${round1(r.ackedBytesInStall / 1048576)} MB acknowledged in the stall` : ''}`);
      }
      const f = summarize(rounds.map((r) => r.failoverMs));
      const a = summarize(rounds.map((r) => r.activeMs));
      const lost = rounds.map((r) => r.lost.length);
      if (s.round.wait !== null) waitLost += lost.reduce((x, y) => x + y, 0);
      results[s.name] = {
        what: s.what,
        failoverMs: { what: 'kill -9 of the primary to the first acknowledgement, through HAProxy, of a write sent after it', samples: rounds.map((r) => round1(r.failoverMs)), p50: round1(f.p50Ms), max: round1(f.maxMs) },
        controllerActiveMs: { what: 'kill -9 to the new active controller answering /active with a primary Redis', p50: round1(a.p50Ms), max: round1(a.maxMs) },
        writesLostPerRound: lost,
        writesAcknowledgedPerRound: rounds.map((r) => r.acked),
        ...(s.round.stall ? { mbAcknowledgedInStallPerRound: rounds.map((r) => round1(r.ackedBytesInStall / 1048576)) } : {}),
        clientErrors: rounds.reduce<Record<string, number>>((m, r) => { for (const [k, v] of Object.entries(r.errors)) m[k] = (m[k] ?? 0) + v; return m; }, {}),
      };
    }
  } finally {
    await recipe.stopAll();
  }
  const report = {
    benchmark: 'redis-failover',
    machine: { cpus: os.cpus().length, node: process.version },
    options: o,
    setup: 'redis-server 7.0 x3 (examples/redis/redis.conf, no persistence), haproxy 2.6 with conf/haproxy.cfg, our standalone quorum (tick 100 ms), controllers (session 3 s, agent health check every 200 ms, maxLagOnFailover 1 MiB), agents (every 200 ms); all on 127.0.0.1; 4 client connections through HAProxy',
    settings: results,
    bar: { what: 'no write acknowledged with WAIT 1 is lost', lost: waitLost, pass: waitLost === 0 },
    seconds: round1((performance.now() - t0) / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.bar.pass ? 0 : 1;
}
