// `quorate quorum`: run a quorum server, or inspect a data directory.
import { Command } from 'commander';
import type { QuorumServerConfig } from '../config/quorum-config.js';
import { dumpDataDir, reportToJson, verifyDataDir, type DataDirReport } from '../io/data-dir-inspect.js';
import { createLogger } from '../io/log.js';
import { exitOnInvariantViolation } from '../io/invariant-exit.js';
import { logCertificateExpiry } from '../io/tls-identity.js';
import { decodeLoggedTxn, describeTxn, deserializeTree } from '../proto/txn-codec.js';
import { quorumStatus } from './quorum-status.js';
import { reloadOnSighup, reportAndExit, stopOnSignals } from './errors.js';
import { parseServerId, printProcessStatus, startDaemonOrRun, stopProcess, withStartFlags, withStatusFlags, withStopFlags } from './daemon-verbs.js';
import { loadQuorumConfig, quorumProcess, type QuorumProcessOpts } from './process-specs.js';

async function startCommand(opts: QuorumProcessOpts): Promise<void> {
  const { quorum, warnings, spec, runDir } = quorumProcess(opts);
  await startDaemonOrRun(spec, runDir, opts, () => runServer(quorum, warnings, () => loadQuorumConfig(opts).quorum));
}

async function runServer(quorum: QuorumServerConfig, warnings: string[], reread: () => QuorumServerConfig): Promise<void> {
  const logger = createLogger({ cluster: quorum.clusterId, id: quorum.serverId, process: 'quorum' });
  exitOnInvariantViolation(logger);
  if (quorum.peerTls !== null) logCertificateExpiry(logger, 'quorum.tls', quorum.peerTls.cert);
  for (const w of warnings) logger.warn({ warning: w }, 'configuration warning');
  // The server's modules load here, not with the verb: `quorum status` (which `quorate cluster`
  // runs over ssh at every poll) starts with fewer modules to load.
  const { QuorumServer } = await import('../quorum/quorum-server.js');
  const { StandaloneServer } = await import('../quorum/standalone-server.js');
  // One server (or none listed) runs standalone, as ZooKeeper with standaloneEnabled; more form a quorum.
  const server = quorum.servers.length > 1 ? await QuorumServer.start({ config: quorum, logger }) : await StandaloneServer.start({ config: quorum, logger });
  stopOnSignals(logger, () => server.stop());
  reloadOnSighup(logger, () => {
    const next = reread();
    server.reloadClientTls(next.clientTls);
    if (next.clientTls !== null) logCertificateExpiry(logger, 'quorum.clientTls', next.clientTls.cert);
    if (!(server instanceof QuorumServer)) return;
    server.reloadPeerTls(next.peerTls);
    if (next.peerTls !== null) logCertificateExpiry(logger, 'quorum.tls', next.peerTls.cert);
  });
  server.on('storage-failure', (err: { code?: string }) => {
    // A failed fsync is fatal: exit so that the supervisor restarts us and we recover from disk.
    // A full disk is not: stay up, refuse service and say so, instead of crash-looping.
    if (err.code !== 'QUORATE_DISK_FULL') setTimeout(() => process.exit(1), 100);
  });
}

function printReport(r: DataDirReport, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(reportToJson(r), null, 2) + '\n');
    return;
  }
  const hex = (z: bigint | null) => (z === null ? '-' : '0x' + z.toString(16));
  const out: string[] = [];
  out.push(`data dir ${r.dir}${r.meta ? ` (cluster ${r.meta.clusterId}, server ${r.meta.serverId}, format ${r.meta.format})` : ' (no meta file)'}`);
  for (const s of r.snapshots) out.push(`snapshot ${s.file}  zxid ${hex(s.zxid)}  ${s.size} bytes  ${s.valid ? 'ok' : 'INVALID: ' + s.problem}${s.description ? '  ' + s.description : ''}`);
  for (const l of r.logs) out.push(`log ${l.file}  ${l.records} records  zxid ${hex(l.firstZxid)}..${hex(l.lastZxid)}  ${l.verdict}`);
  for (const p of r.problems) out.push(`${p.severity.toUpperCase()}: ${p.file}${p.offset !== undefined ? ` at offset ${p.offset}` : ''}: ${p.message}`);
  out.push(r.ok ? 'OK' : 'NOT OK: the server will refuse to start on this directory');
  process.stdout.write(out.join('\n') + '\n');
}

export function quorumCommand(): Command {
  const cmd = new Command('quorum').description('run a coordination quorum server (ZooKeeper-compatible), or inspect its data directory');
  const identity = (c: Command) => c
    .option('--config <file>', 'cluster file (YAML)')
    .option('--id <n>', 'this server\'s id in the cluster file', parseServerId)
    .option('--zoo-cfg <file>', 'a ZooKeeper zoo.cfg instead of a cluster file (myid read from dataDir)');
  withStartFlags(identity(cmd.command('start', { isDefault: true })
    .description('run a quorum server (the default verb); --daemon: in the background, returning once it answers')))
    .action((opts: QuorumProcessOpts) => startCommand(opts).catch(reportAndExit));
  withStopFlags(identity(cmd.command('stop')
    .description('stop the quorum server started on this host with --daemon or by systemd (SIGTERM, then SIGKILL after the timeout)')))
    .action(async (opts: QuorumProcessOpts) => {
      try { const { spec, runDir } = quorumProcess(opts); process.exitCode = await stopProcess(spec, runDir, opts.timeoutMs); } catch (e) { reportAndExit(e); }
    });
  withStatusFlags(identity(cmd.command('status')
    .description('with --config/--id: this host\'s server process (pid, uptime, mode; exit 0 running, 3 stopped, 1 stale pid file, 4 not answering); ' +
      'with --server: what each server is: mode, epoch, zxid, leader, learners synced (exit 0 when exactly one leads)')
    .option('--server <host:port,...>', 'the servers\' client addresses, as a connect string')
    .option('--timeout <ms>', 'per server', '2000')))
    .action(async (opts: QuorumProcessOpts & { server?: string; timeout: string }) => {
      try {
        if (opts.server !== undefined) {
          process.exitCode = await quorumStatus({ server: opts.server, timeout: opts.timeout, json: opts.json });
          return;
        }
        const { spec, runDir } = quorumProcess(opts);
        process.exitCode = await printProcessStatus(spec, runDir, opts);
      } catch (e) { reportAndExit(e); }
    });
  cmd.command('verify')
    .description('check every log record and snapshot in a data directory; changes nothing; exit 1 when the server would refuse to start')
    .argument('<dir>', 'data directory')
    .option('--data-log-dir <dir>', 'where the transaction log is, if not under the data dir')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { dataLogDir?: string; json?: boolean }) => {
      try {
        const r = await verifyDataDir(dir, { dataLogDir: opts.dataLogDir });
        printReport(r, !!opts.json);
        process.exitCode = r.ok ? 0 : 1;
      } catch (e) { reportAndExit(e); }
    });
  cmd.command('dump')
    .description('print every transaction and snapshot in a data directory; changes nothing')
    .argument('<dir>', 'data directory')
    .option('--data-log-dir <dir>', 'where the transaction log is, if not under the data dir')
    .option('--json', 'print JSON')
    .action(async (dir: string, opts: { dataLogDir?: string; json?: boolean }) => {
      try {
        const r = await dumpDataDir(dir, {
          dataLogDir: opts.dataLogDir,
          describe: (p) => { try { return describeTxn(decodeLoggedTxn(p)); } catch (e) { return `UNDECODABLE: ${(e as Error).message}`; } },
          describeSnapshot: (p) => { try { const t = deserializeTree(p); return `${t.nodes.size} znodes, ${t.sessions.size} sessions`; } catch (e) { return `UNDECODABLE: ${(e as Error).message}`; } },
          onRecord: opts.json ? undefined : (rec) => process.stdout.write(`${rec.file}@${rec.offset}  ${rec.description}\n`),
        });
        printReport(r, !!opts.json);
        process.exitCode = r.ok ? 0 : 1;
      } catch (e) { reportAndExit(e); }
    });
  return cmd;
}
