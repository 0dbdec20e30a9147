// The real ZooKeeper clients (zkCli from Debian's zookeeper package, kazoo,
// Apache Curator 5, node-zookeeper-client) against our quorum server, with
// the very suites that pass against Apache ZooKeeper 3.8.
import { afterAll, beforeAll, describe } from 'vitest';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { runRealClientSuites } from './real-clients.js';

describe('real ZooKeeper clients vs the Quorate quorum server', () => {
  let server: QuorateServer | undefined;
  beforeAll(async () => { server = await startQuorateServer(); }, 60_000);
  afterAll(async () => { await server?.stop(); }, 20_000);
  const connect = (): string => {
    if (!server) throw new Error('the Quorate server is not running');
    return server.connectString;
  };
  runRealClientSuites(connect);
});
