#!/usr/bin/env node
// The `quorate` command: one executable for every process and operator verb.
// First, before any other module loads: a controller's V8 settings.
import './early-v8-flags.js';
import { Command, CommanderError } from 'commander';
import { QUORATE_VERSION } from '../version.js';

// Each verb's module, loaded only when that verb runs: a controller must not
// carry the quorum server, the demo, the cluster tools and ssh2 in its
// memory (every module loaded stays resident: loading them all costs a
// process about 40 MB more than Node itself). Help and unknown verbs load
// them all, in this order, which is the order of the help text.
const VERBS: { names: readonly string[]; load: () => Promise<Command[]> }[] = [
  { names: ['quorum'], load: async () => [(await import('./quorum-command.js')).quorumCommand()] },
  { names: ['zk'], load: async () => [(await import('./zk-command.js')).zkCommand()] },
  { names: ['journal'], load: async () => [(await import('./journal-command.js')).journalCommand()] },
  { names: ['controller', 'status', 'failover'], load: async () => (await import('./controller-command.js')).controllerCommands() },
  { names: ['pause', 'resume', 'history'], load: async () => (await import('./maintenance-command.js')).maintenanceCommands() },
  { names: ['cluster'], load: async () => [(await import('./cluster-command.js')).clusterCommand()] },
  { names: ['certs'], load: async () => [(await import('./certs-command.js')).certsCommand()] },
  { names: ['demo'], load: async () => [(await import('../demo/demo-command.js')).demoCommand()] },
];

const program = new Command('quorate')
  .description('Quorate: a high-availability failover controller with a built-in ZooKeeper-compatible quorum')
  .version(QUORATE_VERSION)
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

const verb = process.argv[2];
const only = VERBS.find((v) => v.names.includes(verb ?? ''));
for (const v of only === undefined ? VERBS : [only]) {
  for (const c of await v.load()) {
    // A verb's module may hold more commands than the one asked for (controller, status, failover): only the asked one is added.
    if (only === undefined || c.name() === verb) program.addCommand(c);
  }
}

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
