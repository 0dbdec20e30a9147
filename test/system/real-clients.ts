// All four real-client suites (zkCli, kazoo, Curator, node-zookeeper-client)
// against one server, whichever it is: each suite works under its own root.
import { runCuratorSuite } from './curator-suite.js';
import { runKazooSuite } from './kazoo-suite.js';
import { runNodeZkClientSuite } from './node-zk-client-suite.js';
import { runZkCliSuite } from './zkcli-suite.js';

export function runRealClientSuites(connect: () => string): void {
  runZkCliSuite(connect);
  runKazooSuite(connect);
  runCuratorSuite(connect);
  runNodeZkClientSuite(connect);
}
