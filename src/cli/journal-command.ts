// `quorate journal`: run a journal node, format a journal on the nodes, or
// show what each node holds.
import { Command } from 'commander';
import { loadJournalConfig, type JournalNodeConfig } from '../config/cluster-file.js';
import { JournalNodeClient } from '../client/journal/node-client.js';
import { createLogger } from '../io/log.js';
import { JournalNode } from '../journal/journal-node.js';
import { journalNameProblem } from '../proto/journal-wire.js';
import { UsageError, reportAndExit, stopOnSignals } from './errors.js';
import { parseServerId } from './quorum-command.js';

async function runNode(opts: { config: string; id: number }): Promise<void> {
  const config = loadJournalConfig(opts.config, opts.id);
  const logger = createLogger({ cluster: config.clusterId, id: config.nodeId, process: 'journal' });
  const node = await JournalNode.start({ config, logger });
  stopOnSignals(logger, () => node.stop());
}

function clients(config: JournalNodeConfig, only?: number): JournalNodeClient[] {
  const nodes = only === undefined ? config.nodes : config.nodes.filter((n) => n.id === only);
  if (nodes.length === 0) throw new UsageError(`no journal node ${only} in the cluster file (listed: ${config.nodes.map((n) => n.id).join(', ')})`);
  return nodes.map((n) => new JournalNodeClient(n, config.requestTimeoutMs));
}

function checkName(name: string): string {
  const problem = journalNameProblem(name);
  if (problem !== null) throw new UsageError(problem);
  return name;
}

export function journalCommand(): Command {
  const cmd = new Command('journal').description('run a journal node (the epoch-fenced edit log quorum), format a journal, or show the nodes\' state');
  cmd.command('start', { isDefault: true })
    .description('run a journal node (the default verb)')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--id <n>', 'this node\'s id in journal.nodes', parseServerId)
    .action((opts) => runNode(opts).catch(reportAndExit));
  cmd.command('format')
    .description('create an empty journal on every node (or one with --node); refuses where data exists unless --force')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--journal <name>', 'the journal (one per managed service)')
    .option('--node <n>', 'only this node (a replaced disk: it catches up from the others)', parseServerId)
    .option('--force', 'erase what the journal holds')
    .action(async (opts: { config: string; journal: string; node?: number; force?: boolean }) => {
      try {
        const config = loadJournalConfig(opts.config, null);
        const name = checkName(opts.journal);
        let failed = 0;
        for (const c of clients(config, opts.node)) {
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
  cmd.command('status')
    .description('each node\'s promised epoch, writer epoch, committed txid and last segment (exit 1 when a majority does not answer)')
    .requiredOption('--config <file>', 'cluster file (YAML) with a journal section')
    .requiredOption('--journal <name>', 'the journal')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; journal: string; json?: boolean }) => {
      try {
        const config = loadJournalConfig(opts.config, null);
        const name = checkName(opts.journal);
        const rows = await Promise.all(clients(config).map(async (c) => {
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
