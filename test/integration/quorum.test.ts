// A replicated quorum of real server processes on 127.0.0.1: election, writes
// through any server, kill -9 of the leader under load (nothing acknowledged
// lost), a leader stopped past syncLimit that comes back as a follower, and a
// restart of every server.
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { isZkError, ZkClient } from '../../src/client/index.js';
import { startEnsemble, treeDigest, type Ensemble } from '../helpers/quorate-ensemble.js';
import { CLI } from '../helpers/quorate-server.js';

const ensembles: Ensemble[] = [];
afterAll(async () => {
  for (const e of ensembles) {
    for (const s of e.servers) { try { process.kill(s.pid, 'SIGCONT'); } catch { /* gone */ } }
    await e.stopAll();
  }
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(connectString: string): Promise<ZkClient> {
  const zk = new ZkClient({ connectString, sessionTimeoutMs: 10_000, requestTimeoutMs: 5000, connectTimeoutMs: 1000 });
  await zk.connect({ timeoutMs: 20_000 });
  return zk;
}

/** Creates /load/w<n> one at a time until stopped; returns the paths whose create was acknowledged. */
function writeLoad(zk: ZkClient): { stop(): Promise<string[]>; acked: () => number } {
  const acked: string[] = [];
  let running = true;
  const done = (async () => {
    for (let n = 0; running && n < 100_000; n++) {
      const path = `/load/w${n}`;
      try {
        await zk.create(path, Buffer.from(String(n)));
        acked.push(path);
      } catch (e) {
        if (!isZkError(e)) throw e;
        await sleep(20); // connection loss or a leader change: the outcome is unknown, go on with the next
      }
    }
  })();
  return { acked: () => acked.length, async stop() { running = false; await done; return acked; } };
}

async function expectAllAgree(e: Ensemble): Promise<string> {
  const digests = [];
  for (const s of e.servers) digests.push(await treeDigest(s.connectString));
  for (const d of digests) expect(d).toBe(digests[0]);
  return digests[0];
}

describe('a quorum of three', () => {
  it('elects one leader, takes writes on every server, and every server has them', async () => {
    const e = await startEnsemble(3);
    ensembles.push(e);
    const leader = await e.settled();
    expect((await e.modes()).filter((m) => m === 'follower')).toHaveLength(2);
    for (const [i, s] of e.servers.entries()) {
      const zk = await client(s.connectString);
      await zk.create(`/from${i + 1}`, Buffer.from(`server ${i + 1}`));
      await zk.close();
    }
    const digest = await expectAllAgree(e);
    for (let i = 1; i <= 3; i++) expect(digest).toContain(`/from${i} v0`);
    // The membership, where ZooKeeper's getConfig (zkCli's `config`) reads it.
    const zk = await client(e.servers[0].connectString);
    const config = (await zk.getData('/zookeeper/config')).data!.toString();
    await zk.close();
    expect(config.split('\n')).toEqual([
      ...e.servers.map((s, i) => expect.stringMatching(new RegExp(`^server\\.${i + 1}=127\\.0\\.0\\.1:\\d+:\\d+:participant;127\\.0\\.0\\.1:${s.port}$`))),
      'version=0',
    ]);
    // What an operator sees: one leader, two followers naming it, learners synced.
    const status = spawnSync(process.execPath, [CLI, 'quorum', 'status', '--server', e.connectString], { encoding: 'utf8', timeout: 20_000 });
    expect(status.status, status.stderr).toBe(0);
    const lines = status.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[leader]).toMatch(new RegExp(`leader +id ${leader + 1} +epoch 1 +zxid 0x1[0-9a-f]{8} +learners synced 2/2`));
    expect(lines.filter((l) => new RegExp(`follower +id \\d +epoch 1 +zxid 0x1[0-9a-f]{8} +leader ${leader + 1}`).test(l))).toHaveLength(2);
    await e.servers[(leader + 1) % 3].stop();
    await e.servers[(leader + 2) % 3].stop();
    // Alone, the leader steps down: no leader, exit 1, and the lone server says it is looking.
    let alone = spawnSync(process.execPath, [CLI, 'quorum', 'status', '--server', e.servers[leader].connectString], { encoding: 'utf8', timeout: 20_000 });
    for (let i = 0; i < 50 && alone.status === 0; i++) {
      await sleep(100);
      alone = spawnSync(process.execPath, [CLI, 'quorum', 'status', '--server', e.servers[leader].connectString], { encoding: 'utf8', timeout: 20_000 });
    }
    expect(alone.status).toBe(1);
    expect(alone.stdout).toMatch(/looking/);
  }, 60_000);

  it('keeps every acknowledged write through kill -9 of the leader under load', async () => {
    const e = await startEnsemble(3);
    ensembles.push(e);
    const leader = await e.settled();
    const zk = await client(e.connectString);
    await zk.create('/load');
    const load = writeLoad(zk);
    for (let i = 0; i < 100 && load.acked() < 200; i++) await sleep(50);
    const before = load.acked();
    await e.servers[leader].kill9();
    // Writes resume on the two that are left.
    for (let i = 0; i < 200 && load.acked() < before + 200; i++) await sleep(50);
    const acked = await load.stop();
    expect(acked.length).toBeGreaterThanOrEqual(before + 200);
    await zk.close();
    await e.servers[leader].restart();
    await e.settled();
    await expectAllAgree(e);
    const check = await client(e.servers[leader].connectString);
    await check.sync('/');
    const present = new Set((await check.getChildren('/load')).map((c) => `/load/${c}`));
    await check.close();
    const lost = acked.filter((p) => !present.has(p));
    expect(lost).toEqual([]);
  }, 90_000);

  it('a leader stopped past syncLimit is replaced, and comes back as a follower that agrees', async () => {
    const e = await startEnsemble(3);
    ensembles.push(e);
    const leader = await e.settled();
    const zk = await client(e.connectString);
    await zk.create('/before', Buffer.from('1'));
    process.kill(e.servers[leader].pid, 'SIGSTOP');
    // syncLimit is 5 ticks of 200 ms: well past it, the others have a new leader.
    const deadline = Date.now() + 20_000;
    let modes: string[] = [];
    while (Date.now() < deadline) {
      modes = await e.modes();
      if (modes.filter((m, i) => i !== leader && m === 'leader').length === 1) break;
      await sleep(100);
    }
    expect(modes.filter((m, i) => i !== leader && m === 'leader')).toHaveLength(1);
    await zk.create('/during', Buffer.from('2'));
    process.kill(e.servers[leader].pid, 'SIGCONT');
    await e.settled();
    expect((await e.modes())[leader]).toBe('follower');
    await zk.close();
    const digest = await expectAllAgree(e);
    expect(digest).toContain('/during v0');
  }, 90_000);

  it('comes back whole after every server restarts', async () => {
    const e = await startEnsemble(3);
    ensembles.push(e);
    await e.settled();
    const zk = await client(e.connectString);
    for (let i = 0; i < 50; i++) await zk.create(`/keep${i}`, Buffer.from(String(i)));
    await zk.setData('/keep7', Buffer.from('seven'));
    await zk.close();
    const before = await expectAllAgree(e);
    for (const s of e.servers) await s.stop();
    for (const s of e.servers) await s.restart();
    await e.settled();
    expect(await expectAllAgree(e)).toBe(before);
  }, 90_000);
});

describe('a quorum of five with an observer', () => {
  it('survives the loss of its leader; the observer serves reads and never leads', async () => {
    const e = await startEnsemble(5, { observers: 1 });
    ensembles.push(e);
    const leader = await e.settled();
    expect((await e.modes())[5]).toBe('observer');
    await e.servers[leader].kill9();
    const zk = await client(e.servers[5].connectString); // through the observer
    await zk.create('/after-loss', Buffer.from('x'));
    await zk.close();
    const modes = await e.modes();
    expect(modes[5]).toBe('observer');
    expect(modes.filter((m) => m === 'leader')).toHaveLength(1);
    await e.servers[leader].restart();
    await e.settled();
    expect(await expectAllAgree(e)).toContain('/after-loss v0');
  }, 90_000);
});

describe('a partitioned quorum (every link through a proxy the test cuts)', () => {
  async function waitModes(e: Ensemble, ok: (modes: string[]) => boolean, what: string): Promise<string[]> {
    let modes: string[] = [];
    for (let i = 0; i < 200; i++) {
      modes = await e.modes();
      if (ok(modes)) return modes;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}: modes ${modes.join(', ')}`);
  }

  async function connectFails(connectString: string): Promise<boolean> {
    const zk = new ZkClient({ connectString, sessionTimeoutMs: 10_000, connectTimeoutMs: 500, requestTimeoutMs: 2000 });
    try {
      await zk.connect({ timeoutMs: 2000 });
      await zk.close();
      return false;
    } catch {
      return true;
    }
  }

  it('the majority keeps serving; a cut-off minority, even its leader, takes no writes; healed, all agree', async () => {
    const e = await startEnsemble(3, { proxied: true });
    ensembles.push(e);
    const links = e.links!;
    let leader = await e.settled();
    // A follower alone on its side: it stops serving, the other two go on.
    const lone = [0, 1, 2].find((i) => i !== leader)!;
    links.cut([[lone], [0, 1, 2].filter((i) => i !== lone)]);
    await waitModes(e, (m) => m[lone] === 'looking', `server ${lone + 1} to stop serving`);
    const majority = await client(e.servers[leader].connectString);
    await majority.create('/while-follower-cut', Buffer.from('1'));
    expect(await connectFails(e.servers[lone].connectString)).toBe(true);
    links.heal();
    leader = await e.settled();
    // The leader alone on its side: it steps down; the two others elect one of them.
    links.cut([[leader], [0, 1, 2].filter((i) => i !== leader)]);
    const modes = await waitModes(e, (m) => m[leader] === 'looking' && m.filter((x) => x === 'leader').length === 1, 'a new leader among the majority');
    const newLeader = modes.indexOf('leader');
    expect(newLeader).not.toBe(leader);
    const w = await client(e.servers[newLeader].connectString);
    await w.create('/while-leader-cut', Buffer.from('2'));
    await w.close();
    expect(await connectFails(e.servers[leader].connectString)).toBe(true);
    await majority.close().catch(() => undefined);
    links.heal();
    await e.settled();
    const digest = await expectAllAgree(e);
    expect(digest).toContain('/while-follower-cut v0');
    expect(digest).toContain('/while-leader-cut v0');
  }, 120_000);
});
