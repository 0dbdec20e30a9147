// What one simulated run does, drawn from its seed unless the command line
// fixes it, and the command that replays it.
import { Rng } from './rng.js';
import type { SimOptions } from './sim-cluster.js';

export interface SimCli { reconfig?: boolean; spares?: number; bare?: boolean; clients?: number; seeds: number; seed?: number; firstSeed: number; servers?: number; observers?: number; faultMs: number; settleMs: number; nearCounterLimit?: boolean; trace?: boolean; json?: boolean }

/** What a seed runs, unless the command line fixes it: drawn from the seed itself, so the seed alone replays it. */
export function optionsForSeed(seed: number, cli: Pick<SimCli, 'faultMs' | 'settleMs'> & Partial<SimCli>): SimOptions {
  const r = new Rng(seed ^ 0x5eed);
  const servers = cli.servers ?? r.pick([3, 3, 5]);
  const observers = cli.observers ?? (r.chance(0.25) ? 1 : 0);
  const nearCounterLimit = cli.nearCounterLimit ?? r.chance(0.25);
  // Membership changes in half the bare runs (the ZooKeeper layer's reconfig is not wired yet).
  const reconfig = cli.bare === true && (cli.reconfig ?? r.chance(0.5));
  const spares = reconfig ? (cli.spares ?? 1 + r.int(2)) : 0;
  return { seed, servers, observers, faultMs: cli.faultMs, settleMs: cli.settleMs, nearCounterLimit, trace: cli.trace ?? false, zkClients: cli.bare ? 0 : cli.clients ?? 4, spares, reconfig };
}

export function replayCommand(o: SimOptions): string {
  return `npm run sim -- --seed ${o.seed} --servers ${o.servers} --observers ${o.observers} --fault-ms ${o.faultMs} --settle-ms ${o.settleMs}` +
    `${o.nearCounterLimit ? ' --near-counter-limit' : ' --no-near-counter-limit'}${o.zkClients === 0 ? ' --bare' : ` --clients ${o.zkClients}`}` +
    `${o.reconfig ? ` --reconfig --spares ${o.spares}` : o.zkClients === 0 ? ' --no-reconfig' : ''} --trace`;
}

