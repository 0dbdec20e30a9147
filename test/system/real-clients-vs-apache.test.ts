// The client-side compatibility suites (zkCli, kazoo, Curator,
// node-zookeeper-client) run against the real Apache ZooKeeper 3.8 from the
// Debian package, to prove the suites themselves. The same runners are meant
// to be pointed at our server: each takes a function returning the connect
// string. Every suite works under its own root znode, so they can share one
// server.
import { missingTool } from '../helpers/ports.js';
import { afterAll, beforeAll, describe } from 'vitest';
import { apacheZkAvailable, startApacheZk, type ApacheZk } from '../helpers/apache-zk.js';
import { runRealClientSuites } from './real-clients.js';

describe.skipIf(missingTool(apacheZkAvailable()))('real ZooKeeper clients vs Apache ZooKeeper 3.8', () => {
  let zk: ApacheZk | undefined;
  beforeAll(async () => { zk = await startApacheZk(); }, 60_000);
  afterAll(async () => { await zk?.stop(); }, 20_000);
  const connect = (): string => {
    if (!zk) throw new Error('Apache ZooKeeper is not running');
    return zk.connectString;
  };
  runRealClientSuites(connect);
});
