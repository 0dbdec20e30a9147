// `quorate demo`: a whole cluster on 127.0.0.1 from one command — three
// quorum servers (or an existing ZooKeeper), three journal nodes, 2-5
// instances of the example key-value service each with its controller —
// started in order, each waited for, kept running (a child that dies is
// started again) and stopped in order on Ctrl-C or SIGTERM. demo.json in the
// data directory says what runs where.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { reportAndExit } from '../cli/errors.js';
import { parseClusterFile } from '../config/cluster-file.js';
import { AlreadyRunningError, claimPidFile } from '../io/pid-file.js';
import { BLOCK_PORTS, START_ORDER, demoLayout, layoutPorts, type DemoLayout, type DemoPart } from './demo-layout.js';
import { DEMO_LIMITS as L } from './demo-limits.js';
import { stopLeftovers } from './demo-leftovers.js';
import { busyPorts, parseBasePort, parseInstances, parseZookeeper, prepareDir, readRecordedState, resolveSettings, type DemoFlags } from './demo-options.js';
import { StartFailure, activeProbe, allAnswer, exactlyOneActive, logTail, oneLeader, probeFor, waitFor, zookeeperProblem, type ProbeFn } from './demo-readiness.js';
import { initialState, writeState, type DemoState } from './demo-state.js';
import { quorateCommand, summaryText } from './demo-summary.js';
import { DemoSupervisor, type DemoPrograms } from './demo-supervisor.js';

/** The CLI and the example service, beside this module in the build (dist/src/demo/ → dist/src/cli/, dist/examples/), from a checkout and from an installed package alike. */
function programs(): DemoPrograms {
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const service = fileURLToPath(new URL('../../examples/example-service.js', import.meta.url));
  for (const f of [cli, service]) if (!existsSync(f)) throw new Error(`${f} is missing: the demo runs from a build (npm run build) or an installed package`);
  return { cli, service };
}

const stamp = () => new Date().toTimeString().slice(0, 8);
const say = (line: string) => process.stdout.write(`${stamp()} ${line}\n`);

const KIND_NAMES = { quorum: 'quorum servers', journal: 'journal nodes', service: 'service instances', controller: 'controllers' } as const;

class DemoRun {
  private stopping = false;
  readonly sup: DemoSupervisor;
  private readonly probes = new Map<DemoPart, ProbeFn>();

  constructor(private readonly layout: DemoLayout, private readonly state: DemoState, progs: DemoPrograms) {
    this.sup = new DemoSupervisor(progs, { say, changed: () => this.save(), restarted: (p) => void this.reportBack(p) });
  }

  private save(): void {
    for (const e of this.state.processes) {
      const part = this.layout.parts.find((p) => p.kind === e.kind && p.instance === e.instance)!;
      e.pid = this.sup.pid(part) ?? e.pid;
      e.restarts = this.sup.restarts(part);
    }
    writeState(this.state);
  }

  /** Starts every part in order, each kind waited for; then until exactly one instance is active. Returns the active instance. */
  async start(): Promise<string> {
    for (const p of this.layout.parts) this.probes.set(p, probeFor(this.layout, p));
    const started: DemoPart[] = [];
    for (const kind of START_ORDER) {
      const parts = this.layout.parts.filter((p) => p.kind === kind);
      if (parts.length === 0) continue;
      for (const p of parts) { this.sup.start(p); started.push(p); }
      this.save();
      const seen = await waitFor(parts, this.probes, this.sup, started, kind === 'quorum' ? oneLeader : allAnswer, L.start_wait_ms, () => this.stopping);
      const leader = kind === 'quorum' ? ` (leader: server ${[...seen].find(([, s]) => s.role === 'leader')![0].instance})` : '';
      say(`${KIND_NAMES[kind]} ${parts.map((p) => p.instance).join(', ')} answer${leader}`);
    }
    const controllers = this.layout.parts.filter((p) => p.kind === 'controller');
    const actives = new Map(controllers.map((c) => [c, activeProbe(c)] as const));
    const seen = await waitFor(controllers, actives, this.sup, started, exactlyOneActive, L.active_wait_ms, () => this.stopping);
    return [...seen].find(([, s]) => s.answering)![0].instance;
  }

  running(): void {
    this.state.phase = 'running';
    this.save();
    this.sup.keepRunning();
  }

  /** After a restart: say when the part answers again (and in what role), within a bound. */
  private async reportBack(part: DemoPart): Promise<void> {
    const probe = this.probes.get(part)!;
    const rounds = Math.ceil(L.rejoin_report_wait_ms / L.poll_interval_ms);
    for (let i = 0; i < rounds && !this.stopping && this.sup.exitOf(part) === null; i++) {
      const s = await probe();
      // A quorum server answers while it still elects: wait for it to lead or follow.
      if (s.answering && s.role !== 'electing') { say(`${part.label} answers again${s.role === null ? '' : ` (${s.role})`}`); return; }
      await new Promise((r) => setTimeout(r, L.poll_interval_ms));
    }
  }

  /** Stops everything in the reverse order of the start; the phase recorded at the end: stopped (a signal) or failed. */
  async stop(why: string, phase: 'stopped' | 'failed'): Promise<void> {
    this.stopping = true;
    this.state.phase = 'stopping';
    this.save();
    say(`${why}: stopping controllers, services, journal nodes${this.layout.settings.zookeeper === null ? ', quorum servers' : ''}`);
    const r = await this.sup.stopAll([...START_ORDER].reverse());
    this.state.phase = phase;
    this.save();
    say(`stopped ${r.stopped} processes${r.killed.length > 0 ? `; SIGKILL was needed for ${r.killed.join(', ')}` : ''}`);
  }

  isStopping(): boolean { return this.stopping; }
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const progs = programs();
  const { dir } = prepareDir(flags.dir);
  try { claimPidFile(`${dir}/demo.pid`); } catch (e) {
    if (e instanceof AlreadyRunningError) throw new Error(`a demo already runs on ${dir} (pid ${e.pid}): stop it first (kill ${e.pid}) or give another --dir`);
    throw e;
  }
  const recorded = readRecordedState(dir);
  const leftovers = await stopLeftovers(recorded, dir);
  if (leftovers.length > 0) say(`stopped what an earlier demo on ${dir} left running: ${leftovers.join(', ')}`);
  const settings = await resolveSettings(flags, dir, recorded);
  const layout = demoLayout(settings);
  mkdirSync(`${dir}/logs`, { recursive: true });
  writeFileSync(layout.configFile, layout.clusterFileText);
  parseClusterFile(layout.clusterFileText, layout.configFile); // the parts would each refuse it; say so once, before starting any

  const busy = await busyPorts(layoutPorts(layout).map((x) => x.port));
  if (busy.length > 0) {
    const who = busy.map((port) => `${port} (${layoutPorts(layout).find((x) => x.port === port)!.part.label})`).join(', ');
    throw new Error(`ports in use: ${who}; the demo needs ${settings.basePort}..${settings.basePort + BLOCK_PORTS - 1}${flags.basePort === undefined && recorded !== null ? ` (recorded in ${dir}/demo.json)` : ''}: give --base-port N for another block`);
  }
  if (settings.zookeeper !== null) {
    const problem = await zookeeperProblem(settings.zookeeper, L.start_wait_ms);
    if (problem !== null) throw new Error(`--zookeeper: ${problem}`);
  }

  const state = initialState(layout, new Date());
  const run = new DemoRun(layout, state, progs);
  say(`${recorded === null ? 'starting' : 'resuming'} the Quorate demo in ${dir} (ports ${settings.basePort}..${settings.basePort + BLOCK_PORTS - 1})`);
  // SIGHUP too: the children run in sessions of their own, so a closed terminal reaches only the demo.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (run.isStopping()) return;
      void run.stop(sig, 'stopped').then(() => process.exit(0), (e: Error) => { process.stderr.write(`quorate demo: stopping failed: ${e.message}\n`); process.exit(1); });
    });
  }
  let active: string;
  try {
    active = await run.start();
  } catch (e) {
    if (run.isStopping()) return; // a signal: its handler stops everything and exits 0
    const lines = e instanceof StartFailure && e.part !== null ? logTail(e.part.logFile) : [];
    process.stderr.write(`quorate demo: ${(e as Error).message}\n`);
    if (e instanceof StartFailure && e.part !== null) process.stderr.write(`last lines of ${e.part.logFile}:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
    await run.stop('could not start', 'failed');
    process.exit(1);
  }
  run.running();
  process.stdout.write(summaryText(layout, state, active, quorateCommand(progs.cli)));
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run a whole cluster on 127.0.0.1: three quorum servers, three journal nodes, instances of the example key-value service and their controllers; ' +
      'dead parts are started again; Ctrl-C or SIGTERM stops everything; demo.json in --dir says what runs where')
    .option('--dir <dir>', 'data, logs, cluster.yaml and demo.json (default: a new temporary directory); a directory used before resumes with its data and ports')
    .option('--base-port <n>', `the first of ${BLOCK_PORTS} ports in a row (default: the directory's, else a free block)`, parseBasePort)
    .option('--instances <n>', `instances of the example service, ${L.instances_min}..${L.instances_max} (default: the directory's, else ${L.instances_default})`, parseInstances)
    .option('--zookeeper <host:port,...>', 'elect through this ZooKeeper ensemble instead of starting the built-in quorum', parseZookeeper)
    .action((opts: DemoFlags) => runDemo(opts).catch(reportAndExit));
}
