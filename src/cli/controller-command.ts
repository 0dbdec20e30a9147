// `quorate controller` (run the controller of one service instance) and the
// operator's `quorate status` and `quorate failover` (pause, resume and
// history: maintenance-command.ts).
import os from 'node:os';
import { Command, Option } from 'commander';
import { firstAnswering } from './maintenance-command.js';
import { loadControllerConfig, loadOtherServices, type ControllerConfig, type InstanceConfig, type ServiceConfigResult } from '../config/controller-config.js';
import { adminRequest } from '../controller/admin-client.js';
import { gatherCluster, statusJson, type ClusterView } from '../controller/cluster-view.js';
import { createLogger } from '../io/log.js';
import { exitOnInvariantViolation } from '../io/invariant-exit.js';
import { logCertificateExpiry } from '../io/tls-identity.js';
import { UsageError, reloadOnSighup, reportAndExit, stopOnSignals } from './errors.js';
import { printProcessStatus, startDaemonOrRun, stopProcess, withStartFlags, withStatusFlags, withStopFlags } from './daemon-verbs.js';
import { controllerProcess, type ControllerProcessOpts } from './process-specs.js';
import { sessionFileOf } from '../controller/session-file.js';
import { earlyV8Flags } from './early-v8-flags.js';

async function startController(opts: ControllerProcessOpts): Promise<void> {
  const { cfg, spec, runDir, chosenRunDir } = controllerProcess(opts);
  // The quorum session is kept (for a restart to re-attach) only in a run directory someone chose:
  // --run-dir (systemd's unit and --daemon give one) or the cluster file's runDir.
  const sessionFile = chosenRunDir === null ? null : sessionFileOf(chosenRunDir, cfg.service, cfg.instance.id);
  await startDaemonOrRun(spec, runDir, opts, () => runController(cfg, () => loadControllerConfig(opts.config, opts.service, opts.id), () => loadOtherServices(opts.config, opts.service), sessionFile));
}

/**
 * `stop --release`: a clean hand-off before the stop. The controller cedes (to-standby, its own
 * breadcrumb removed, the lock released: a standby elsewhere takes over without fencing it); once
 * it reports standby it is stopped, and a standby's stop closes its session.
 */
async function releaseBeforeStop(cfg: ControllerConfig, timeoutMs: number): Promise<void> {
  const i = cfg.instance;
  const st = await adminCall(cfg, i, 'GET', '/v1/status').catch((e: Error) => { throw new Error(`--release: the controller of ${i.id} does not answer (${e.message}); not stopped`); });
  const idle = (j: Record<string, unknown>) => j.phase === 'standby' || j.phase === 'watching' || j.phase === 'contending';
  if (idle(st.json)) return;
  const r = await adminCall(cfg, i, 'POST', '/v1/cede', { forMs: Math.max(timeoutMs, cfg.cedeMs) });
  if (r.status >= 300) throw new Error(`--release: ${i.id} refused to cede: ${String(r.json.error)}; not stopped`);
  const end = Date.now() + timeoutMs;
  let last: Record<string, unknown> = r.json;
  while (Date.now() < end) {
    const s = await adminCall(cfg, i, 'GET', '/v1/status').catch(() => null);
    if (s !== null) { last = s.json; if (idle(last) && last.active !== true) return; }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`--release: ${i.id} did not reach standby within ${timeoutMs} ms (${String(last.phase)}: ${String(last.lastFailure ?? '')}); not stopped`);
}

/** `rereadOthers`: the cluster file's other services, shown by the status page; read at start and at each SIGHUP. */
async function runController(cfg: ControllerConfig, reread: () => ControllerConfig, rereadOthers: () => ServiceConfigResult[], sessionFile: string | null): Promise<void> {
  const logger = createLogger({ cluster: cfg.clusterId, service: cfg.service, id: cfg.instance.id, process: 'controller' });
  exitOnInvariantViolation(logger);
  if (cfg.tls !== null) logCertificateExpiry(logger, 'controller.tls', cfg.tls.cert);
  if (cfg.journalTls !== null) logCertificateExpiry(logger, 'journal.tls', cfg.journalTls.cert);
  for (const w of cfg.warnings) logger.warn({ warning: w }, 'configuration warning');
  // Loaded here, not with the verb: `controller status` (polled over ssh by `quorate cluster`) starts with fewer modules.
  const { Controller } = await import('../controller/controller.js');
  const { AdminApi } = await import('../controller/admin-api.js');
  const controller = new Controller(cfg, logger, { sessionFile });
  await controller.prepareResources();
  let others: ServiceConfigResult[] = [];
  const loadOthers = () => {
    others = rereadOthers();
    for (const o of others) if ('error' in o) logger.warn({ service: o.service, err: o.error }, 'the status page cannot show this service: its configuration does not load');
  };
  try { loadOthers(); } catch (e) { logger.warn({ err: (e as Error).message }, 'the status page shows this service only: the other services\' configurations do not load'); }
  const api = new AdminApi(controller, () => others);
  const port = await api.listen(cfg.instance.adminPort, cfg.instance.host);
  logger.info({ adminPort: port, connectString: cfg.connectString, sessionTimeoutMs: cfg.sessionTimeoutMs, v8Flags: earlyV8Flags }, 'controller started');
  controller.start();
  stopOnSignals(logger, async () => { await controller.stop(); await api.close(); });
  reloadOnSighup(logger, () => {
    const next = reread();
    loadOthers();
    if (next.tls === null) { if (cfg.tls !== null) throw new Error('controller.tls was turned off: that needs a restart'); return; }
    api.reloadTls(next.tls, next.journalTls);
    logCertificateExpiry(logger, 'controller.tls', next.tls.cert);
  });
}

function adminCall(cfg: ControllerConfig, i: InstanceConfig, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 2000): Promise<{ status: number; json: Record<string, unknown> }> {
  return adminRequest(cfg, i, method, path, body, timeoutMs);
}

function statusText(g: ClusterView, cfg: ControllerConfig): string {
  const rows = [['INSTANCE', 'ROLE', 'HEALTH', 'PRIORITY', 'CONTROLLER', 'SESSION', 'EPOCH', 'LAST TRANSITION']];
  for (const x of g.instances) {
    const s = x.status ?? {};
    const role = !x.reachable ? 'unknown' : s.active ? (s.failsafe ? 'ACTIVE (failsafe)' : 'ACTIVE') : String(s.phase);
    const lt = s.lastTransition as { to?: string; reason?: string; at?: string } | null | undefined;
    rows.push([
      x.instance.id, role, x.reachable ? String(s.health) : '-', `${x.instance.priority}${x.instance.noFailover ? ' noFailover' : ''}`,
      x.reachable ? 'reachable' : `UNREACHABLE: ${x.error}`, x.reachable ? `${s.session}${s.sessionId ? ` ${s.sessionId}` : ''}` : '-',
      s.epoch == null ? '-' : String(s.epoch), lt ? `${lt.at} ${lt.to}: ${lt.reason}` : '-',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const out = [`service ${cfg.service} (cluster ${cfg.clusterId})`, ...rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd())];
  const lock = g.lock as { instance?: string; czxid?: string } | null;
  const crumb = g.breadcrumb as { instance?: string; epoch?: number } | null;
  out.push(`lock: ${lock ? `${lock.instance} (token ${lock.czxid})` : 'free'}   breadcrumb: ${crumb ? `${crumb.instance} (epoch ${crumb.epoch ?? '-'})` : 'none'}`);
  out.push(`quorum: ${g.quorum}`);
  if (g.journal !== null) out.push(g.journal);
  for (const x of g.instances) {
    const s = x.status ?? {};
    const m = s.maintenance as { by?: string; at?: string; until?: string | null; reason?: string | null } | null | undefined;
    if (s.paused) out.push(`WARNING: ${x.instance.id} is paused${m ? ` (maintenance by ${m.by} since ${m.at}, ${m.until ? `until ${m.until}` : 'until resumed'}${m.reason ? `: ${m.reason}` : ''})` : ''}: no automatic role changes; split-brain protection rests on fencing and the journal`);
    if (s.lastFailure && !s.active) out.push(`${x.instance.id}: last failure: ${s.lastFailure}`);
    const fs = s.failsafe as { since?: string; validUntil?: string | null } | null | undefined;
    if (fs) out.push(`${x.instance.id}: FAILSAFE since ${fs.since}: the quorum does not answer; kept active because the journal shows no newer writer (until ${fs.validUntil ?? 'the next check'})`);
    if (s.notRacing && !s.active) out.push(`${x.instance.id}: not racing for the lock: ${s.notRacing}`);
    const sf = s.scheduledFailover as { at: string; to: string | null; by: string } | null | undefined;
    if (sf && x === g.instances.find((y) => y.status?.scheduledFailover)) out.push(`switchover scheduled at ${sf.at}${sf.to ? ` to ${sf.to}` : ''} by ${sf.by} ('quorate failover --cancel' cancels it)`);
    const res = (s.resources as { name: string; agent: string | null; running: boolean | null; lastError: string | null }[] | undefined) ?? [];
    if (res.length > 0) {
      out.push(`${x.instance.id}: resources ${res.map((r) => `${r.name}${r.agent ? ` (${r.agent})` : ''} ${r.lastError ? `FAILED: ${r.lastError}` : r.running === true ? 'running' : r.running === false ? 'stopped' : 'unknown'}`).join(', ')}`);
    }
  }
  const actives = g.instances.filter((x) => x.status?.active).length;
  if (actives > 1) out.push(`WARNING: ${actives} instances say active`);
  return out.join('\n') + '\n';
}

/** `status --watch`: the table again every `everyS` seconds, in place on a terminal (patronictl list -W), appended otherwise. */
async function watchStatus(cfg: ControllerConfig, everyS: number, iterations: number): Promise<void> {
  for (let k = 0; k < iterations; k++) {
    const g = await gatherCluster(cfg);
    const head = `${new Date().toISOString()}  every ${everyS} s, Ctrl-C to stop\n`;
    process.stdout.write((process.stdout.isTTY ? '\x1b[H\x1b[2J' : k > 0 ? '\n' : '') + head + statusText(g, cfg));
    if (k + 1 < iterations) await new Promise((r) => setTimeout(r, everyS * 1000));
  }
}

const serviceOpts = (c: Command) => c.requiredOption('--config <file>', 'cluster file (YAML)').requiredOption('--service <name>', 'the managed service');

export function controllerCommands(): Command[] {
  const controller = new Command('controller').description('run the failover controller of one service instance, stop it, or show its process');
  const instanceOpts = (c: Command) => serviceOpts(c).requiredOption('--id <instance>', 'this instance\'s id in the service\'s instances');
  withStartFlags(instanceOpts(controller.command('start', { isDefault: true })
    .description('run the controller (the default verb); --daemon: in the background, returning once its admin API answers')))
    .action((opts: ControllerProcessOpts) => startController(opts).catch(reportAndExit));
  withStopFlags(instanceOpts(controller.command('stop')
    .description('stop the controller started on this host with --daemon or by systemd (SIGTERM: it leaves its service as it is; an active keeps its role and quorum session for a restart, or until the session expires and a standby takes over; --release hands off first)'))
    .option('--release', 'hand the active role off first: the service is made standby and the lock released (a standby elsewhere takes over), then the controller stops'))
    .action(async (opts: ControllerProcessOpts) => {
      try {
        const { cfg, spec, runDir } = controllerProcess(opts);
        if (opts.release) await releaseBeforeStop(cfg, opts.timeoutMs ?? 30_000);
        process.exitCode = await stopProcess(spec, runDir, opts.timeoutMs);
      } catch (e) { reportAndExit(e); }
    });
  withStatusFlags(instanceOpts(controller.command('status')
    .description('this host\'s controller process: pid, uptime, role (exit 0 running, 3 stopped, 1 stale pid file, 4 not answering)')))
    .action(async (opts: ControllerProcessOpts) => {
      try { const { spec, runDir } = controllerProcess(opts); process.exitCode = await printProcessStatus(spec, runDir, opts); } catch (e) { reportAndExit(e); }
    });

  const status = serviceOpts(new Command('status').description('who is active, each instance\'s health and controller, the lock and breadcrumb, the quorum (exit 0 when exactly one is active)'))
    .option('--json', 'print JSON')
    .option('--watch [seconds]', 'refresh in place every N seconds (default 2) until Ctrl-C')
    .addOption(new Option('--iterations <n>', 'with --watch: stop after N refreshes').hideHelp())
    .action(async (opts: { config: string; service: string; json?: boolean; watch?: string | true; iterations?: string }) => {
      try {
        const cfg = loadControllerConfig(opts.config, opts.service, null);
        if (opts.watch !== undefined) {
          const every = opts.watch === true ? 2 : Number(opts.watch);
          if (!Number.isFinite(every) || every < 0.2 || every > 3600) throw new UsageError(`--watch: "${String(opts.watch)}" is not a number of seconds from 0.2 to 3600`);
          if (opts.json) throw new UsageError('--watch shows the table; for JSON, poll status --json');
          const n = opts.iterations === undefined ? Infinity : Number(opts.iterations);
          if (!(n >= 1)) throw new UsageError(`--iterations: "${opts.iterations}" is not a positive count`);
          await watchStatus(cfg, every, n);
          return;
        }
        const g = await gatherCluster(cfg);
        if (opts.json) process.stdout.write(JSON.stringify(statusJson(cfg, g), null, 2) + '\n');
        else process.stdout.write(statusText(g, cfg));
        process.exitCode = g.instances.filter((x) => x.status?.active).length === 1 ? 0 : 1;
      } catch (e) { reportAndExit(e); }
    });

  const failover = serviceOpts(new Command('failover').description('move the active role: the active cedes, the target wins (returns once the target reports active)'))
    .option('--to <instance>', 'the target (default: the best healthy standby)')
    .option('--force', 'even to a standby further behind than maxLagOnFailover')
    .option('--timeout <ms>', 'give up after', '30000')
    .option('--at <time>', 'schedule it: the active\'s controller carries it out at this time (ISO 8601); kept in the quorum')
    .option('--cancel', 'cancel the scheduled switchover')
    .action(async (opts: { config: string; service: string; to?: string; timeout: string; force?: boolean; at?: string; cancel?: boolean }) => {
      try {
        const cfg = loadControllerConfig(opts.config, opts.service, null);
        const by = `${os.userInfo().username}@${os.hostname()}`;
        if (opts.cancel) {
          if (opts.at !== undefined) throw new UsageError('give --at or --cancel, not both');
          const r = await firstAnswering(cfg, 'POST', '/v1/cancel-failover', { by });
          const f = r.json.cancelled as { at: string; to: string | null };
          process.stdout.write(`cancelled the switchover scheduled at ${f.at}${f.to ? ` to ${f.to}` : ''}\n`);
          return;
        }
        if (opts.at !== undefined) {
          const t = Date.parse(opts.at);
          if (Number.isNaN(t)) throw new UsageError(`--at: "${opts.at}" is not a time (say 2026-12-04T02:00:00Z)`);
          const r = await firstAnswering(cfg, 'POST', '/v1/schedule-failover', { at: new Date(t).toISOString(), to: opts.to, by });
          const f = r.json.scheduled as { at: string; to: string | null };
          process.stdout.write(`switchover scheduled at ${f.at}${f.to ? ` to ${f.to}` : ' (to the best standby)'}; the active's controller carries it out; 'quorate failover --cancel' cancels it\n`);
          return;
        }
        const g = await gatherCluster(cfg);
        const candidates = g.instances.filter((x) => x.reachable && !x.status?.active && x.status?.health === 'healthy' && !x.instance.noFailover && (opts.force || !x.status?.notRacing))
          .sort((a, b) => b.instance.priority - a.instance.priority);
        const target = opts.to === undefined ? candidates[0] : g.instances.find((x) => x.instance.id === opts.to);
        if (target === undefined) throw new UsageError(opts.to === undefined ? 'no healthy standby to fail over to' : `no instance ${opts.to} in service ${cfg.service}`);
        if (!target.reachable) throw new Error(`the controller of ${target.instance.id} is unreachable: ${target.error}`);
        if (target.status?.active) { process.stdout.write(`${target.instance.id} is already active\n`); return; }
        const r = await adminCall(cfg, target.instance, 'POST', '/v1/failover', { force: opts.force === true });
        if (r.status >= 300) throw new Error(`${target.instance.id} refused: ${String(r.json.error)}`);
        const end = Date.now() + Number(opts.timeout);
        while (Date.now() < end) {
          const s = await adminCall(cfg, target.instance, 'GET', '/v1/status').catch(() => null);
          if (s?.json.active) { process.stdout.write(`${target.instance.id} is active (epoch ${String(s.json.epoch ?? '-')})\n`); return; }
          await new Promise((res) => setTimeout(res, 100));
        }
        const s = await adminCall(cfg, target.instance, 'GET', '/v1/status').catch(() => null);
        throw new Error(`${target.instance.id} did not become active within ${opts.timeout} ms (${String(s?.json.phase ?? 'unreachable')}: ${String(s?.json.lastFailure ?? '')})`);
      } catch (e) { reportAndExit(e); }
    });

  return [controller, status, failover];
}
