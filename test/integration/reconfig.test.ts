// Membership changes at run time on real processes (reconfigEnabled, the super
// user): a server started outside the membership syncs, is added, the leader
// is removed and steps down, writes go on, every server agrees; refusals name
// ZooKeeper's errors (no permission, a joiner that is not running, disabled).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { isZkError, ZkClient } from '../../src/client/index.js';
import { Err } from '../../src/proto/zk-constants.js';
import { startEnsemble, treeDigest, type Ensemble } from '../helpers/quorate-ensemble.js';
import { CLI } from '../helpers/quorate-server.js';

const ensembles: Ensemble[] = [];
afterAll(async () => { for (const e of ensembles) await e.stopAll(); }, 60_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SUPER = `super:${crypto.createHash('sha1').update('super:pw').digest('base64')}`;

async function client(connectString: string, asSuper = false): Promise<ZkClient> {
  const zk = new ZkClient({ connectString, sessionTimeoutMs: 10_000, requestTimeoutMs: 10_000, connectTimeoutMs: 1000 });
  await zk.connect({ timeoutMs: 20_000 });
  if (asSuper) await zk.addAuth('digest', 'super:pw');
  return zk;
}

async function errorOf(p: Promise<unknown>): Promise<number | null> {
  try { await p; return null; } catch (e) { if (isZkError(e)) return e.code; throw e; }
}

describe('reconfig', () => {
  it('adds a server that synced outside the membership, removes the leader, and every server agrees', async () => {
    const e = await startEnsemble(3, { joiners: 1, cfg: { reconfigEnabled: 'true', 'DigestAuthenticationProvider.superDigest': SUPER } });
    ensembles.push(e);
    const leader = await e.settled();
    const members = e.servers.slice(0, 3).map((s) => s.connectString).join(',');
    const plain = await client(members);
    expect(await errorOf(plain.reconfig({ add: [e.serverLine(3)] }))).toBe(Err.NOAUTH);
    await plain.close();

    const admin = await client(members, true);
    // A server that is not running cannot join: ZooKeeper's NEWCONFIGNOQUORUM, nothing committed.
    expect(await errorOf(admin.reconfig({ add: ['server.9=127.0.0.1:1:2:participant;127.0.0.1:3'] }))).toBe(Err.NEWCONFIGNOQUORUM);
    const added = await admin.reconfig({ add: [e.serverLine(3)] });
    expect(added.config).toContain(e.serverLine(3));
    const version = /^version=([0-9a-f]+)$/m.exec(added.config)![1];
    expect(BigInt(`0x${version}`)).toBe(added.stat.mzxid);
    // A stale config id is refused.
    expect(await errorOf(admin.reconfig({ remove: [1] }, 1n))).toBe(Err.BADVERSION);
    // Remove the leader: it steps down, the others elect one of them.
    const removed = await admin.reconfig({ remove: [leader + 1] }, BigInt(`0x${version}`));
    expect(removed.config).not.toContain(`server.${leader + 1}=`);
    await admin.close();
    let modes: string[] = [];
    for (let i = 0; i < 100; i++) {
      modes = await e.modes();
      if (modes.filter((m) => m === 'leader').length === 1 && modes[leader] !== 'leader') break;
      await sleep(100);
    }
    expect(modes[leader]).not.toBe('leader');
    const w = await client(e.connectString);
    await w.create('/after-reconfig', Buffer.from('x'));
    const config = (await w.getData('/zookeeper/config')).data!.toString();
    await w.close();
    expect(config).toBe(removed.config);
    const status = spawnSync(process.execPath, [CLI, 'quorum', 'status', '--server', e.connectString], { encoding: 'utf8', timeout: 20_000 });
    expect(status.status, status.stdout + status.stderr).toBe(0);
    const digests = [];
    for (const s of e.servers) digests.push(await treeDigest(s.connectString));
    for (const d of digests) expect(d).toBe(digests[0]);
    expect(digests[0]).toContain('/after-reconfig v0');
    // Each server wrote the dynamic config file, named by the version, as ZooKeeper does.
    const removedVersion = /^version=([0-9a-f]+)$/m.exec(removed.config)![1];
    for (const s of e.servers) {
      const file = path.join(s.dataDir, `zoo.cfg.dynamic.${removedVersion}`);
      expect(fs.readFileSync(file, 'utf8').trim()).toBe(removed.config.split('\n').filter((l) => !l.startsWith('version=')).join('\n'));
    }
    // Every server restarts: the membership is the changed one (kept beside the epochs), not the configuration's.
    for (const s of e.servers) await s.stop();
    for (const s of e.servers) await s.restart();
    const after = await e.settled(30_000);
    expect(after).not.toBe(leader);
    const again = await client(e.connectString);
    expect((await again.getData('/zookeeper/config')).data!.toString()).toBe(removed.config);
    await again.close();
    // The whole membership at once, through `quorate zk reconfig -members` (the same servers, a new version).
    const lines = removed.config.split('\n').filter((l) => l.startsWith('server.'));
    const cli = spawnSync(process.execPath, [CLI, 'zk', '--server', e.connectString, '--auth', 'digest:super:pw', 'reconfig', '-members', lines.join(',')], { encoding: 'utf8', timeout: 20_000 });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^Committed new configuration:\n/);
    expect(cli.stdout).toContain(lines.join('\n'));
    expect(cli.stdout).not.toContain(`version=${removedVersion}`);
  }, 120_000);

  it('is refused when reconfigEnabled is off, through the CLI too', async () => {
    const e = await startEnsemble(3, { cfg: { 'DigestAuthenticationProvider.superDigest': SUPER } });
    ensembles.push(e);
    await e.settled();
    const r = spawnSync(process.execPath, [CLI, 'zk', '--server', e.connectString, '--auth', 'digest:super:pw', 'reconfig', '-remove', '1'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/RECONFIGDISABLED/);
  }, 60_000);
});
