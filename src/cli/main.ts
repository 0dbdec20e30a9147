#!/usr/bin/env node
// The `quorate` command: one executable for every process and operator verb.
import { Command, CommanderError } from 'commander';
import { QUORATE_VERSION } from '../version.js';
import { certsCommand } from './certs-command.js';
import { clusterCommand } from './cluster-command.js';
import { controllerCommands } from './controller-command.js';
import { maintenanceCommands } from './maintenance-command.js';
import { demoCommand } from '../demo/demo-command.js';
import { journalCommand } from './journal-command.js';
import { quorumCommand } from './quorum-command.js';
import { zkCommand } from './zk-command.js';

const program = new Command('quorate')
  .description('Quorate: a high-availability failover controller with a built-in ZooKeeper-compatible quorum')
  .version(QUORATE_VERSION)
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

program.addCommand(quorumCommand());
program.addCommand(zkCommand());
program.addCommand(journalCommand());
for (const c of controllerCommands()) program.addCommand(c);
for (const c of maintenanceCommands()) program.addCommand(c);
program.addCommand(clusterCommand());
program.addCommand(certsCommand());
program.addCommand(demoCommand());

// Every verb reports usage mistakes through the catch below (exit 2), not by exiting itself.
const overrideAll = (c: Command): void => { c.exitOverride(); c.commands.forEach(overrideAll); };
overrideAll(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; usage mistakes exit 2.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  throw e;
}
