// Real clients against our replicated quorum, connected with a multi-server
// connect string: kazoo keeps its session, its ephemeral and its writes
// through kill -9 of the leader; zkCli.sh then writes through the servers
// that are left and reads back from each.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { missingTool } from '../helpers/ports.js';
import { startEnsemble, type Ensemble } from '../helpers/quorate-ensemble.js';
import { runBounded } from '../helpers/run-bounded.js';
import { DEBIAN_PYTHON, kazooAvailable } from './kazoo-suite.js';
import { apacheZkAvailable } from '../helpers/apache-zk.js';
import { zkCli, zkCliBatch } from './zkcli.js';

const KAZOO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kazoo');
let ensemble: Ensemble | null = null;
afterAll(async () => { await ensemble?.stopAll(); }, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(missingTool(kazooAvailable() && apacheZkAvailable()))('real clients against a quorum of three', () => {
  it('kazoo keeps its session and writes through kill -9 of the leader; zkCli writes and reads after it', async () => {
    const e = await startEnsemble(3);
    ensemble = e;
    const leader = await e.settled();
    const signals = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-failover-'));
    const script = runBounded(DEBIAN_PYTHON, ['-u', path.join(KAZOO_DIR, 'failover.py'), e.connectString, signals], 60_000, {
      cwd: KAZOO_DIR, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '' },
    });
    for (let i = 0; i < 300 && !fs.existsSync(path.join(signals, 'ready')); i++) await sleep(50);
    expect(fs.existsSync(path.join(signals, 'ready'))).toBe(true);
    await sleep(300); // some writes before the kill
    await e.servers[leader].kill9();
    fs.writeFileSync(path.join(signals, 'killed'), '');
    const r = await script;
    const report = `failover.py exited ${r.code ?? r.signal} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
    expect(r.code, report).toBe(0);
    expect(r.stdout, report).toMatch(/^OK failover\b/m);
    fs.rmSync(signals, { recursive: true, force: true });

    // zkCli runs its command without waiting to be connected: when it happens to try the dead
    // server first, the command fails with ConnectionLoss, as it does against Apache ZooKeeper.
    // An operator runs it again; so does this test (a few times, bounded).
    let created = await zkCli(e.connectString, ['create', '/zkcli-after-failover', 'still-here']);
    for (let i = 0; i < 8 && created.code !== 0 && /ConnectionLoss/.test(created.stderr + created.stdout); i++) {
      created = await zkCli(e.connectString, ['create', '/zkcli-after-failover', 'still-here']);
    }
    expect(created.code, created.stderr).toBe(0);
    for (const [i, s] of e.servers.entries()) {
      if (i === leader) continue;
      const got = await zkCli(s.connectString, ['get', '/zkcli-after-failover']);
      expect(got.stdout).toContain('still-here');
    }
    // zkCli's `config` (ZooKeeper's getConfig) shows the membership.
    const other = e.servers[(leader + 1) % 3];
    const config = await zkCli(other.connectString, ['config']);
    expect(config.stdout).toMatch(/^server\.1=127\.0\.0\.1:\d+:\d+:participant;127\.0\.0\.1:\d+$/m);
    expect(config.stdout).toMatch(/^version=0$/m);
  }, 120_000);
});

describe.skipIf(missingTool(apacheZkAvailable()))('zkCli.sh reconfig against our quorum', () => {
  it('adds a joiner and removes a member through Apache ZooKeeper\'s own client', async () => {
    const { createHash } = await import('node:crypto');
    const superDigest = `super:${createHash('sha1').update('super:pw').digest('base64')}`;
    const e = await startEnsemble(3, { joiners: 1, cfg: { reconfigEnabled: 'true', 'DigestAuthenticationProvider.superDigest': superDigest } });
    const started = e;
    try {
      await e.settled();
      const members = e.servers.slice(0, 3).map((s) => s.connectString).join(',');
      const r = await zkCliBatch(members, [
        'addauth digest super:pw',
        `reconfig -add ${e.serverLine(3)}`,
        'reconfig -remove 1',
        'config',
      ], 60_000);
      expect(r.outputs[1], r.raw).toMatch(/Committed new configuration:/);
      expect(r.outputs[1]).toContain(e.serverLine(3));
      expect(r.outputs[2], r.raw).toMatch(/Committed new configuration:/);
      expect(r.outputs[3]).not.toMatch(/^server\.1=/m);
      expect(r.outputs[3]).toMatch(/^server\.4=/m);
    } finally {
      await started.stopAll();
    }
  }, 120_000);
});
