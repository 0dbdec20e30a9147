// `quorate journal`: run a journal node, format a journal on the nodes, or
// show what each node holds.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { loadJournalConfig, type JournalNodeConfig } from '../config/cluster-file.js';
import { JournalNodeClient } from '../client/journal/node-client.js';
import { createLogger } from '../io/log.js';
import { exitOnInvariantViolation } from '../io/invariant-exit.js';
import { logCertificateExpiry } from '../io/tls-identity.js';
import { journalNameProblem } from '../proto/journal-wire.js';
import { UsageError, reloadOnSighup, reportAndExit, stopOnSignals } from './errors.js';
import { parseServerId, printProcessStatus, startDaemonOrRun, stopProcess, withStartFlags, withStatusFlags, withStopFlags } from './daemon-verbs.js';
import { journalProcess, type JournalProcessOpts } from './process-specs.js';

async function startNode(opts: JournalProcessOpts): Promise<void> {
  const { config, spec, runDir } = journalProcess(opts);
  await startDaemonOrRun(spec, runDir, opts, () => runNode(config, () => loadJournalConfig(opts.config, config.nodeId)));
}

async function runNode(config: JournalNodeConfig, reread: () => JournalNodeConfig): Promise<void> {
  const logger = createLogger({ cluster: config.clusterId, id: config.nodeId, process: 'journal' });
  exitOnInvariantViolation(logger);
  if (config.tls !== null) logCertificateExpiry(logger, 'journal.tls', config.tls.cert);
  // Loaded here, not with the verb: `journal status` (polled over ssh by `quorate cluster`) starts with fewer modules.
  const { JournalNode } = await import('../journal/journal-node.js');
  const node = await JournalNode.start({ config, logger });
  stopOnSignals(logger, () => node.stop());
  reloadOnSighup(logger, async () => {
    const next = reread().tls;
    await node.reloadTls(next);
    if (next !== null) logCertificateExpiry(logger, 'journal.tls', next.cert);
  });
}

interface IdentityOpts { tlsCert?: string; tlsKey?: string }

/** This host's certificate from the cluster file, or the caller's own (an operator's, for format --force). */
function clients(config: JournalNodeConfig, only: number | undefined, id: IdentityOpts): JournalNodeClient[] {
  const nodes = only === undefined ? config.nodes : config.nodes.filter((n) => n.id === only);
  if (nodes.length === 0) throw new UsageError(`no journal node ${only} in the cluster file (listed: ${config.nodes.map((n) => n.id).join(', ')})`);
  if ((id.tlsCert === undefined) !== (id.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  let tls = config.tls;
  if (id.tlsCert !== undefined) {
    if (tls === null) throw new UsageError('--tls-cert: the journal nodes do not use TLS (no journal.tls in the cluster file)');
    const read = (f: string) => { try { return readFileSync(f, 'utf8'); } catch (e) { throw new UsageError(`cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); } };
    tls = { ...tls, cert: read(id.tlsCert), key: read(id.tlsKey!) };
  }
  return nodes.map((n) => new JournalNodeClient(n, config.requestTimeoutMs, { tls }));
}

const withIdentity = (c: Command) => c
  .option('--tls-cert <file>', 'a client certificate of your own (PEM) instead of this host\'s from journal.tls: an operator\'s, for format --force')
  .option('--tls-key <file>', 'its key');

function checkName(name: string): string {
  const problem = journalNameProblem(name);
  if (problem !== null) throw new UsageError(problem);
  return name;
}

export function journalCommand(): Command {
  const cmd = new Command('journal').description('run a journal node (the epoch-fenced edit log quorum), format a journal, or show the nodes\' state');
  withStartFlags(cmd.command('start', { isDefault: true })
    .description('run a journal node (the default verb); --daemon: in the background, returning once it answers')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--id <n>', 'this node\'s id in journal.nodes', parseServerId))
    .action((opts: JournalProcessOpts) => startNode(opts).catch(reportAndExit));
  withStopFlags(cmd.command('stop')
    .description('stop the journal node started on this host with --daemon or by systemd (SIGTERM, then SIGKILL after the timeout)')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--id <n>', 'this node\'s id in journal.nodes', parseServerId))
    .action(async (opts: JournalProcessOpts) => {
      try { const { spec, runDir } = journalProcess(opts); process.exitCode = await stopProcess(spec, runDir, opts.timeoutMs); } catch (e) { reportAndExit(e); }
    });
  withIdentity(cmd.command('format'))
    .description('create an empty journal on every node (or one with --node); refuses where data exists unless --force')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--journal <name>', 'the journal (one per managed service)')
    .option('--node <n>', 'only this node (a replaced disk: it catches up from the others)', parseServerId)
    .option('--force', 'erase what the journal holds')
    .action(async (opts: { config: string; journal: string; node?: number; force?: boolean } & IdentityOpts) => {
      try {
        const config = loadJournalConfig(opts.config, null);
        const name = checkName(opts.journal);
        let failed = 0;
        for (const c of clients(config, opts.node, opts)) {
          try {
            await c.post(name, 'format', { force: !!opts.force });
            process.stdout.write(`node ${c.node.id}: formatted ${name}\n`);
          } catch (e) {
            failed++;
            process.stdout.write(`node ${c.node.id}: ${(e as Error).message}\n`);
          } finally { await c.close(); }
        }
        process.exitCode = failed > 0 ? 1 : 0;
      } catch (e) { reportAndExit(e); }
    });
  withIdentity(withStatusFlags(cmd.command('status')
    .description('with --journal: each node\'s promised epoch, writer epoch, committed txid and last segment (exit 1 when a majority does not answer); ' +
      'with --id: this host\'s journal node process (pid, uptime; exit 0 running, 3 stopped, 1 stale pid file, 4 not answering)')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .option('--journal <name>', 'the journal')
    .option('--id <n>', 'the journal node process on this host', parseServerId)))
    .action(async (opts: JournalProcessOpts & { journal?: string } & IdentityOpts) => {
      try {
        if (opts.journal === undefined) {
          if (opts.id === undefined) throw new UsageError('give --journal NAME (the journal on every node) or --id N (the node process on this host)');
          const { spec, runDir } = journalProcess(opts);
          process.exitCode = await printProcessStatus(spec, runDir, opts);
          return;
        }
        const config = loadJournalConfig(opts.config, null);
        const name = checkName(opts.journal);
        const rows = await Promise.all(clients(config, undefined, opts).map(async (c) => {
          try {
            const s = await c.state(name);
            return { node: c.node.id, address: `${c.node.host}:${c.node.port}`, ok: true, ...s };
          } catch (e) {
            return { node: c.node.id, address: `${c.node.host}:${c.node.port}`, ok: false, error: (e as Error).message };
          } finally { await c.close(); }
        }));
        const answered = rows.filter((r) => r.ok).length;
        if (opts.json) {
          process.stdout.write(JSON.stringify({ journal: name, nodes: rows }, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
        } else {
          const table = [['NODE', 'ADDRESS', 'PROMISED', 'WRITER', 'COMMITTED', 'LAST SEGMENT', 'NOTE']];
          for (const r of rows) {
            if ('promisedEpoch' in r) {
              const seg = r.lastSegment ? `${r.lastSegment.startTxid}-${r.lastSegment.endTxid}${r.lastSegment.inProgress ? ' (open)' : ''}` : '-';
              table.push([String(r.node), r.address, String(r.promisedEpoch), String(r.lastWriterEpoch), String(r.committedTxid), seg, '']);
            } else table.push([String(r.node), r.address, '-', '-', '-', '-', 'error' in r ? String(r.error) : '']);
          }
          const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
          process.stdout.write(table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n');
        }
        process.exitCode = answered > rows.length / 2 ? 0 : 1;
      } catch (e) { reportAndExit(e); }
    });
  return cmd;
}
