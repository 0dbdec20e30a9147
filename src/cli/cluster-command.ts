// `quorate cluster start|stop|status|restart [--rolling]`: every process the
// cluster file places on a host, over ssh (host keys pinned), from one shell.
import { Command } from 'commander';
import { parseClusterFileWithLines, readConfigText } from '../config/cluster-file.js';
import { ConfigError } from '../config/errors.js';
import { ClusterOps, ClusterStepError, type ProcessRow } from '../cluster/cluster-ops.js';
import { formatDuration } from '../daemon/daemon-control.js';
import { reportAndExit } from './errors.js';

function load(file: string): ClusterOps {
  const { cluster, lineOf } = parseClusterFileWithLines(readConfigText(file), file);
  if (cluster.ssh === undefined) {
    throw new ConfigError(file, 'ssh', 'missing; quorate cluster reaches the hosts over ssh: give ssh.user, ssh.keyFile and ssh.knownHosts (see conf/cluster.yaml)', { line: lineOf([]) });
  }
  return new ClusterOps(cluster, file, (line) => process.stdout.write(`${line}\n`));
}

export function formatRows(rows: ProcessRow[]): string {
  const table = [['HOST', 'KIND', 'ID', 'STATE', 'PID', 'UPTIME', 'ROLE', 'NOTE']];
  for (const r of rows) {
    table.push([r.host, r.kind, r.id, r.state, r.pid === null ? '-' : String(r.pid), r.uptimeMs === null ? '-' : formatDuration(r.uptimeMs),
      r.role ?? '-', r.state === 'running' ? '' : (r.detail ?? '')]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

export function clusterCommand(): Command {
  const cmd = new Command('cluster').description('start, stop, restart and check every process of the cluster file on its host, over ssh');
  const withConfig = (c: Command) => c.requiredOption('--config <file>', 'cluster file (YAML) with an ssh section');
  withConfig(cmd.command('status').description('one row per process: host, kind, id, state, pid, uptime, role (exit 0 only when every process runs)'))
    .option('--json', 'print the rows as a JSON array')
    .action(async (opts: { config: string; json?: boolean }) => {
      try {
        const rows = await load(opts.config).status();
        process.stdout.write(opts.json ? JSON.stringify(rows.map(({ facts: _f, ...r }) => r), null, 2) + '\n' : formatRows(rows));
        process.exitCode = rows.every((r) => r.state === 'running') ? 0 : 1;
      } catch (e) { reportAndExit(e); }
    });
  cmd.command('local-status')
    .description(`this host's processes of the cluster file, one JSON line each: what \`quorate cluster status\` runs on each host over ssh (exit 0 when each one runs)`)
    .requiredOption('--config <file>', 'cluster file (YAML)')
    .argument('<process...>', 'quorum:ID, journal:ID or controller:SERVICE:INSTANCE')
    .action(async (procs: string[], opts: { config: string }) => {
      try { process.exitCode = await (await import('./local-status.js')).localStatus(opts.config, procs); } catch (e) { reportAndExit(e); }
    });
  withConfig(cmd.command('start').description('quorum servers, then journal nodes, then controllers; hosts in parallel; each waited for until it answers'))
    .action(async (opts: { config: string }) => {
      try { process.exitCode = (await load(opts.config).start()) === 0 ? 0 : 1; } catch (e) { reportAndExit(e); }
    });
  withConfig(cmd.command('stop').description('controllers (the active ones last), then journal nodes, then quorum servers'))
    .action(async (opts: { config: string }) => {
      try { process.exitCode = (await load(opts.config).stop()) === 0 ? 0 : 1; } catch (e) { reportAndExit(e); }
    });
  withConfig(cmd.command('restart').description('stop then start everything; --rolling: one process at a time, the service kept up'))
    .option('--rolling', 'quorum followers then the leader, journal nodes one by one, standbys\' controllers then the active\'s (after a failover away from it); each back and caught up before the next')
    .action(async (opts: { config: string; rolling?: boolean }) => {
      try {
        const ops = load(opts.config);
        if (!opts.rolling) { process.exitCode = (await ops.restart()) === 0 ? 0 : 1; return; }
        const t0 = Date.now();
        try {
          await ops.rollingRestart();
          process.stdout.write(`rolling restart done in ${Date.now() - t0} ms\n`);
        } catch (e) {
          if (!(e instanceof ClusterStepError)) throw e;
          process.stderr.write(`quorate: rolling restart stopped: ${e.message}\n`);
          process.exitCode = 1;
        }
      } catch (e) { reportAndExit(e); }
    });
  return cmd;
}
