// src/client's ZkClient against our own quorum server (a real process), with
// the very suite that passes against Apache ZooKeeper 3.8.
import { afterAll, beforeAll, describe } from 'vitest';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { runClientSuite } from './client-suite.js';

describe('ZkClient vs the Quorate quorum server', () => {
  let server: QuorateServer | undefined;
  beforeAll(async () => { server = await startQuorateServer({ cfg: { tickTime: '500' } }); }, 60_000);
  afterAll(async () => { await server?.stop(); }, 20_000);
  runClientSuite(() => {
    if (!server) throw new Error('the Quorate server is not running');
    return server.connectString;
  });
});
