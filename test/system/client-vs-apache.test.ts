// src/client's ZkClient against a real Apache ZooKeeper 3.8 (Debian's
// package, standalone, tickTime 500 ms so that short sessions can be
// negotiated). The same suite (client-suite.ts) runs against our server.
import { missingTool } from '../helpers/ports.js';
import { afterAll, beforeAll, describe } from 'vitest';
import { apacheZkAvailable, startApacheZk, type ApacheZk } from '../helpers/apache-zk.js';
import { runClientSuite } from './client-suite.js';

const available = apacheZkAvailable();
const title = available ? 'ZkClient vs Apache ZooKeeper 3.8'
  : 'ZkClient vs Apache ZooKeeper 3.8 — SKIPPED: /usr/share/java/zookeeper.jar or /usr/bin/java missing (apt-get install zookeeper)';

describe.skipIf(missingTool(available))(title, () => {
  let zk: ApacheZk | undefined;
  beforeAll(async () => { zk = await startApacheZk({ tickTime: 500 }); }, 60_000);
  afterAll(async () => { await zk?.stop(); }, 20_000);
  runClientSuite(() => {
    if (!zk) throw new Error('Apache ZooKeeper is not running');
    return zk.connectString;
  });
});
