// npm run nemesis -- [--minutes N] [--seed S] [--hosts 3..5] [--instances 2|3] [--clients N]
//                    [--session-timeout-ms MS] [--out DIR] [--keep-logs] [--report FILE] [--quiet]
//
// Runs the nemesis (see run.ts) and prints its JSON report on stdout (after
// npm's banner: `npm run --silent nemesis` or --report FILE for the JSON alone). Exits 0
// with no violation, 1 with violations (the seed and the command replaying its
// schedule are printed on stderr, the history and logs kept), 2 when the run
// itself could not be carried out (the lab, the set-up). Needs root (the lab).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { labUnavailable } from '../helpers/lab.js';
import { runNemesis } from './run.js';

function usage(problem: string): never {
  process.stderr.write(`nemesis: ${problem}\nusage: npm run nemesis -- [--minutes N] [--seed S] [--hosts 3..5] [--instances 2|3] [--clients N] [--session-timeout-ms MS] [--out DIR] [--keep-logs] [--report FILE] [--quiet]\n`);
  process.exit(2);
}

let values;
try {
  values = parseArgs({
    options: {
      minutes: { type: 'string', default: '5' }, seed: { type: 'string' }, hosts: { type: 'string', default: '3' },
      instances: { type: 'string', default: '3' }, clients: { type: 'string', default: '4' }, 'session-timeout-ms': { type: 'string', default: '5000' },
      out: { type: 'string' }, report: { type: 'string' }, 'keep-logs': { type: 'boolean', default: false }, quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }).values;
} catch (e) { usage((e as Error).message); }
if (values.help) usage('help');
const num = (name: string, text: string, ok: (n: number) => boolean): number => {
  const n = Number(text);
  if (!ok(n)) usage(`--${name}: bad value ${JSON.stringify(text)}`);
  return n;
};
const minutes = num('minutes', values.minutes!, (n) => n > 0 && n <= 24 * 60);
const seed = values.seed === undefined ? crypto.randomInt(0, 2 ** 31) : num('seed', values.seed, (n) => Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff);
const hosts = num('hosts', values.hosts!, (n) => Number.isInteger(n) && n >= 3 && n <= 5);
const instances = num('instances', values.instances!, (n) => n === 2 || n === 3);
const clients = num('clients', values.clients!, (n) => Number.isInteger(n) && n >= 1 && n <= 32);
const sessionTimeoutMs = num('session-timeout-ms', values['session-timeout-ms']!, (n) => Number.isInteger(n) && n >= 2000 && n <= 60_000);

const unavailable = labUnavailable();
if (unavailable !== null) {
  process.stderr.write(`nemesis: the lab cannot run here: ${unavailable}\n`);
  process.exit(2);
}
// Ctrl-C and kill: exit through process.exit so the lab's exit hook tears it down.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { process.stderr.write(`nemesis: ${sig}: tearing the lab down\n`); process.exit(130); });

const log = values.quiet ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
try {
  const report = await runNemesis({ seed, minutes, hosts, instances, clients, sessionTimeoutMs, outDir: values.out, keepLogs: values['keep-logs'], log });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (values.report !== undefined) fs.writeFileSync(values.report, `${JSON.stringify(report, null, 2)}\n`);
  if (report.violations.length > 0) {
    process.stderr.write(`nemesis: ${report.violations.length} violation(s) with seed ${seed}; replay its schedule with:\n  ${report.replay}\nhistory and logs: ${report.outDir}\n`);
    process.exitCode = 1;
  }
} catch (e) {
  process.stderr.write(`nemesis: the run failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 2;
}
