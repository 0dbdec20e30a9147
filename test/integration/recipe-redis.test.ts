// The Redis recipe (examples/redis) with the real packages: Debian's
// redis-server (three instances on 127.0.0.1, no persistence), our quorum and
// controllers, the recipe's agents and hooks, and Debian's haproxy running
// conf/haproxy.cfg rendered with this test's ports. What it proves:
//   - conf/haproxy.cfg is valid, sends writes to the active instance and
//     reads to the standbys;
//   - a replica behind its peers reports its lag (maxLagOnFailover keeps its
//     controller from racing) and to-active.sh refuses to promote it;
//   - kill -9 of the primary under writes through HAProxy: writes resume on a
//     promoted replica, never two primaries at once, the restarted old
//     primary rejoins as a replica of the new one, and with
//     min-replicas-to-write 1 and WAIT 1 no acknowledged write is lost;
//   - kill -9 of the active's controller, its Redis running: fenced by
//     fence.sh, confirmed by the role hook; quorate failover --to a standby
//     under writes (the primary lets its replicas catch up, then steps down);
//     nothing acknowledged with WAIT 1 lost either way;
//   - the window itself: with the replicas stalled (SIGSTOP, as a slow
//     network would) while the primary acknowledges more than the sockets
//     between them hold, plain asynchronous writes acknowledged by the primary
//     are lost when it is killed, and with WAIT 1 none is (nothing is
//     acknowledged while no replica receives).
// Figures (failover time, writes lost per setting) are the benchmark's
// (npm run bench -- redis-failover), not asserted here.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterFileWithLines } from '../../src/config/cluster-file.js';
import { CLI } from '../helpers/cli-process.js';
import { bytesBehind, parseInfo, parseResp, redisCall, RedisReplyError, replicationView } from '../../examples/redis/resp.js';
import { failoverRound, landedOn, lostWrites, RECIPE_DIR, renderHaproxyCfg, startRedisRecipe, startWriteLoad, waitFor, watchPrimaries, type Recipe, type RoundOptions } from '../helpers/recipe-cluster.js';

const WAIT = { replicas: 1, timeoutMs: 500 };
/** examples/redis/cluster.yaml's maxLagOnFailover (bytes), which the test's cluster file uses too. */
const MAX_LAG = 1024 * 1024;
/** Values acknowledged while the replicas are stalled: well past what the loopback sockets between primary and replica buffer (about 4 MB sent + the receiver's buffer). */
const STALL_BYTES = 32 * 1024 * 1024;

describe('the recipe\'s pure parts', () => {
  const view = (o: Partial<ReturnType<typeof replicationView>>) => ({ role: 'slave' as const, offset: 0, replid: 'x', replid2: null, master: null, syncing: false, loading: false, ...o });

  it('bytesBehind: offsets compare within a shared history, and a different history counts whole', () => {
    // b was promoted from a's history (replid2); c still replicates a.
    const c = view({ replid: 'A', offset: 900 });
    const b = view({ role: 'master', replid: 'B', replid2: 'A', offset: 1000 });
    expect(bytesBehind(c, b)).toBe(100);
    expect(bytesBehind(b, c)).toBe(0);
    // A restarted, empty Redis has a history of its own: everything the others hold is missing.
    const fresh = view({ replid: 'F', offset: 0 });
    expect(bytesBehind(fresh, b)).toBe(1000);
    expect(bytesBehind(b, fresh)).toBe(0);
    // At a cold start nobody holds anything: nobody is behind.
    expect(bytesBehind(fresh, view({ replid: 'G', offset: 0 }))).toBe(0);
  });

  it('parseResp: replies in pieces, nested arrays, errors; a bulk past the bound is refused', () => {
    const wire = Buffer.from('*3\r\n$3\r\nfoo\r\n:42\r\n*2\r\n$-1\r\n-READONLY no\r\n+OK\r\n');
    expect(parseResp(wire.subarray(0, 10), 0)).toBeNull();
    const r = parseResp(wire, 0)!;
    const [foo, n, inner] = r.value as [string, number, [null, RedisReplyError]];
    expect([foo, n, inner[0]]).toEqual(['foo', 42, null]);
    expect(inner[1]).toBeInstanceOf(RedisReplyError);
    expect(inner[1].code).toBe('READONLY');
    expect(parseResp(wire, r.next)!.value).toBe('OK');
    expect(() => parseResp(Buffer.from('$999999999\r\n'), 0)).toThrow(/bulk length/);
    expect(() => parseResp(Buffer.from('?x\r\n'), 0)).toThrow(/starting with/);
  });

  it('replicationView: INFO of a replica, with its primary and link', () => {
    const v = replicationView(parseInfo('# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\nmaster_replid:abc\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:77\r\n\r\n# Persistence\r\nloading:0\r\n'));
    expect(v).toEqual({ role: 'slave', offset: 77, replid: 'abc', replid2: null, master: { host: '10.0.0.1', port: 6379, linkUp: true }, syncing: false, loading: false });
    expect(() => replicationView(parseInfo('role:sentinel\r\n'))).toThrow(/role/);
  });

  it('the example cluster file passes the cluster file\'s checks, and the shipped haproxy.cfg renders only in its documented form', () => {
    const file = path.join(RECIPE_DIR, 'cluster.yaml');
    const { cluster } = parseClusterFileWithLines(fs.readFileSync(file, 'utf8'), file);
    const svc = cluster.services?.find((s) => s.name === 'redis');
    expect(svc?.instances.map((i) => i.id)).toEqual(['a', 'b', 'c']);
    expect(svc?.maxLagOnFailover).toBe(MAX_LAG);
    expect(() => renderHaproxyCfg('listen primary\n    bind :1\n    server a 1.2.3.4:5 check\nlisten standbys\n    bind :2\n', { primaryPort: 1, standbyPort: 2, servers: [] })).toThrow(/not "server <id>/);
  });
});

describe('Redis recipe: real redis-server, controllers and haproxy on 127.0.0.1', () => {
  let r: Recipe | undefined;

  beforeAll(async () => {
    r = await startRedisRecipe({ instances: 3, minReplicasToWrite: 1, maxLagOnFailover: MAX_LAG });
  }, 60_000);

  afterAll(async () => { await r?.stopAll(); }, 60_000);

  afterEach((ctx) => {
    if (r !== undefined && ctx.task.result?.state === 'fail') process.stderr.write(`${r.tails()}\n`);
  });

  it('conf/haproxy.cfg, rendered with these ports, is valid and sends writes to the active, reads to the standbys', async () => {
    const c = r!;
    expect(c.haproxyCheck.code, c.haproxyCheck.output).toBe(0);
    const active = await c.settledActive(30_000);
    await c.replicasFollow(active, 20_000);
    const a = c.instance(active);
    // Every connection to the primary listener lands on the active's Redis, once HAProxy's checks agree.
    await waitFor('HAProxy to send new connections to the active only', async () => {
      const seen = await Promise.all(Array.from({ length: 6 }, () => landedOn(c.primaryPort).catch(() => null)));
      return seen.every((s) => s?.tcpPort === a.redisPort && s.role === 'master') ? true : undefined;
    }, 10_000);
    expect(await redisCall('127.0.0.1', c.primaryPort, ['SET', 'through-haproxy', 'yes'], 2000)).toBe('OK');
    expect(await redisCall('127.0.0.1', a.redisPort, ['GET', 'through-haproxy'], 2000)).toBe('yes');
    // The read-only listener: standbys only, both of them in turn.
    const standbyPorts = c.instances.filter((i) => i.id !== active).map((i) => i.redisPort);
    const landed = await waitFor('HAProxy to send read connections to both standbys', async () => {
      const seen = [];
      for (let k = 0; k < 6; k++) seen.push(await landedOn(c.standbyPort).catch(() => null));
      const ports = new Set(seen.map((s) => s?.tcpPort));
      return seen.every((s) => s !== null && s.role === 'slave' && standbyPorts.includes(s.tcpPort)) && ports.size === 2 ? seen : undefined;
    }, 10_000);
    expect(new Set(landed.map((s) => s!.tcpPort))).toEqual(new Set(standbyPorts));
    // A standby refuses writes: read-only is what the recipe's fencing rests on.
    const onStandby = await redisCall('127.0.0.1', c.standbyPort, ['SET', 'x', 'y'], 2000).catch((e: Error) => e);
    expect(onStandby).toBeInstanceOf(RedisReplyError);
    expect((onStandby as RedisReplyError).code).toBe('READONLY');
  }, 60_000);

  it('a replica behind its peers reports its lag, its controller does not race, and to-active.sh refuses to promote it', async () => {
    const c = r!;
    const active = await c.settledActive(30_000);
    await c.replicasFollow(active, 20_000);
    const behind = c.instances.find((i) => i.id !== active)!;
    // Its agent restarted with a long interval: it will not point its Redis back at the active
    // for a minute, which leaves the test time to make it lag.
    await c.stopAgent(behind.id);
    await c.startAgent(behind.id, ['--interval-ms', '60000']);
    try {
      expect(await redisCall('127.0.0.1', behind.redisPort, ['REPLICAOF', '127.0.0.1', '0'], 2000)).toBe('OK');
      // Past maxLagOnFailover: 2 MiB the replica will not have.
      for (let k = 0; k < 20; k++) expect(await redisCall('127.0.0.1', c.primaryPort, ['SET', `while-behind-${k}`, 'x'.repeat(MAX_LAG / 10)], 2000)).toBe('OK');
      const health = await waitFor(`${behind.id}'s agent to report a lag`, async () => {
        const res = await fetch(`http://127.0.0.1:${behind.agentPort}/health`, { signal: AbortSignal.timeout(2000) });
        const j = (await res.json()) as { lag?: number };
        return res.status === 200 && typeof j.lag === 'number' && j.lag > 0 ? j : undefined;
      }, 10_000);
      expect(health.lag).toBeGreaterThan(2 * MAX_LAG);
      // The controller read it from the health check: not racing, and saying why.
      // Past the limit, not merely > 0: a health check taken while the writes above were
      // still arriving reports a smaller lag, under which the controller rightly races.
      const st = await waitFor(`${behind.id}'s controller to see the lag past maxLagOnFailover`, async () => {
        const x = await c.status(behind.id);
        return typeof x.lag === 'number' && x.lag > MAX_LAG ? x : undefined;
      }, 10_000);
      expect(String(st.notRacing)).toMatch(new RegExp(`behind, more than maxLagOnFailover ${MAX_LAG}`));
      // The hook refuses (the primary and the other replica both hold more), and leaves the replica a replica.
      const hook = spawnSync('sh', [path.join(RECIPE_DIR, 'to-active.sh'), '127.0.0.1', String(behind.redisPort), `http://127.0.0.1:${behind.agentPort}`], { encoding: 'utf8', timeout: 10_000 });
      expect(hook.status, hook.stderr).toBe(4);
      const others = c.instances.filter((i) => i !== behind).map((i) => i.id);
      expect(hook.stderr).toMatch(new RegExp(`refusing to promote: this Redis is \\d+ bytes behind instance (${others.join('|')})`));
      expect((await c.replication(behind.id))?.role).toBe('slave');
    } finally {
      // The usual agent back: it points the replica at the active again, which catches it up.
      await c.stopAgent(behind.id);
      await c.startAgent(behind.id);
    }
    await c.replicasFollow(active, 20_000);
    await waitFor(`${behind.id}'s lag back to 0`, async () => {
      const x = await c.status(behind.id);
      return x.lag === 0 && x.notRacing === null ? true : undefined;
    }, 10_000);
    expect(await c.actives()).toEqual([active]);
  }, 60_000);

  const round = (o: Partial<RoundOptions>): RoundOptions => ({
    wait: WAIT, minReplicasToWrite: 1, stall: null, valueBytes: 16, connections: 4, ackedBefore: 300, ackedAfter: 200, prefix: 'w', ...o,
  });

  it('kill -9 of the primary under writes through HAProxy: writes resume on a promoted replica, never two primaries, the old one rejoins as a replica, and with min-replicas-to-write 1 + WAIT 1 no acknowledged write is lost', async () => {
    const c = r!;
    const watch = watchPrimaries(c);
    try {
      const res = await failoverRound(c, round({ prefix: 'steady' }));
      const roles = await watch.stop();
      expect(res.next).not.toBe(res.old);
      // Writes resumed: acknowledged after the kill, by the new primary (the old one is dead).
      expect(res.failoverMs).toBeGreaterThan(0);
      expect(res.acked).toBeGreaterThanOrEqual(500);
      expect(res.lost).toEqual([]);
      // The old primary came back a replica from its first moment (redis.conf), then of the new
      // primary, and holds every acknowledged write.
      expect(res.restarted?.role).toBe('slave');
      expect(res.rejoined).toMatchObject({ role: 'slave', master: { port: c.instance(res.next).redisPort, linkUp: true } });
      expect(roles.samples).toBeGreaterThanOrEqual(10);
      expect(roles.overlaps).toEqual([]);
      expect(roles.maxPrimaries).toBe(1);
      expect(await c.actives()).toEqual([res.next]);
      expect(await landedOn(c.primaryPort)).toEqual({ tcpPort: c.instance(res.next).redisPort, role: 'master' });
      const written = await redisCall('127.0.0.1', c.instance(res.next).redisPort, ['DBSIZE'], 2000);
      await waitFor(`${res.old} to hold as many keys as the new primary`, async () => (await redisCall('127.0.0.1', c.instance(res.old).redisPort, ['DBSIZE'], 2000)) === written ? true : undefined, 10_000);
    } finally {
      await watch.stop();
    }
  }, 90_000);

  it('kill -9 of the active\'s controller, its Redis still running: the next active fences it with fence.sh (read-only, confirmed by its role hook), writes go on, nothing acknowledged is lost', async () => {
    const c = r!;
    const old = await c.settledActive(30_000);
    await c.replicasFollow(old, 20_000);
    const watch = watchPrimaries(c);
    const load = startWriteLoad({ port: c.primaryPort, connections: 4, prefix: 'ctl', wait: WAIT });
    try {
      await waitFor('200 acknowledged writes', async () => (load.acked.size >= 200 ? true : undefined), 15_000);
      const killedAt = performance.now();
      await c.killController(old);
      // Its lock goes with its session (3 s): then another instance is promoted.
      const next = await c.settledActive(20_000, old);
      await waitFor('a write sent after the kill acknowledged', async () => (load.firstAckSentAfter(killedAt) !== null ? true : undefined), 20_000);
      const st = await c.status(next);
      expect(String(st.lastFence)).toMatch(/shell: exit 0: fence: 127\.0\.0\.1:\d+ is now a replica of nobody; it came back standby/);
      // The fenced Redis follows the new primary (its agent), without anyone restarting it.
      await c.replicasFollow(next, 20_000);
      await c.startController(old);
      await waitFor(`${old}'s restarted controller to be a healthy standby`, async () => {
        const x = await c.status(old).catch(() => null);
        return x?.health === 'healthy' && (x.phase === 'watching' || x.phase === 'standby') ? true : undefined;
      }, 20_000);
      await load.stop();
      expect(await lostWrites(c.instance(next).redisPort, load.acked)).toEqual([]);
      const roles = await watch.stop();
      expect(roles.overlaps).toEqual([]);
      expect(await c.actives()).toEqual([next]);
    } finally {
      await load.stop();
      await watch.stop();
    }
  }, 60_000);

  it('quorate failover --to a standby under writes through HAProxy (no --force): the primary steps down, the target is promoted, nothing acknowledged is lost, the old primary follows it', async () => {
    const c = r!;
    const old = await c.settledActive(30_000);
    await c.replicasFollow(old, 20_000);
    const to = c.instances.find((i) => i.id !== old)!.id;
    const watch = watchPrimaries(c);
    const load = startWriteLoad({ port: c.primaryPort, connections: 4, prefix: 'manual', wait: WAIT });
    try {
      await waitFor('200 acknowledged writes', async () => (load.acked.size >= 200 ? true : undefined), 15_000);
      const startedAt = performance.now();
      const cli = spawnSync(process.execPath, [CLI, 'failover', '--config', c.cfgPath, '--service', 'redis', '--to', to, '--timeout', '20000'], { encoding: 'utf8', timeout: 30_000 });
      expect(cli.status, `${cli.stdout}${cli.stderr}\n${JSON.stringify(await c.status(to))}`).toBe(0);
      expect(await c.settledActive(10_000)).toBe(to);
      await waitFor('a write sent after the failover began acknowledged', async () => (load.firstAckSentAfter(startedAt) !== null ? true : undefined), 20_000);
      await c.replicasFollow(to, 20_000);
      await load.stop();
      expect(await lostWrites(c.instance(to).redisPort, load.acked)).toEqual([]);
      const roles = await watch.stop();
      expect(roles.overlaps).toEqual([]);
    } finally {
      await load.stop();
      await watch.stop();
    }
  }, 60_000);

  it('the loss window: replicas stalled while the primary acknowledges 32 MB, then kill -9: plain asynchronous writes acknowledged are lost, with WAIT 1 none is', async () => {
    const c = r!;
    const watch = watchPrimaries(c);
    try {
      const plain = await failoverRound(c, round({ prefix: 'async', wait: null, minReplicasToWrite: 0, valueBytes: 16 * 1024, ackedBefore: 100, ackedAfter: 50, stall: { bytes: STALL_BYTES, maxMs: 10_000 } }));
      expect(plain.ackedBytesInStall).toBeGreaterThanOrEqual(STALL_BYTES);
      // What the replicas never received is gone: far more than a socket's worth.
      expect(plain.lost.length * 16 * 1024).toBeGreaterThan(STALL_BYTES / 4);
      const waited = await failoverRound(c, round({ prefix: 'wait', valueBytes: 16 * 1024, ackedBefore: 100, ackedAfter: 50, stall: { bytes: STALL_BYTES, maxMs: 1500 } }));
      // WAIT 1 acknowledges nothing while no replica receives (beyond the write each connection
      // had in flight when the replicas stopped), and loses nothing acknowledged.
      expect(waited.ackedBytesInStall).toBeLessThanOrEqual(4 * (16 * 1024 + 16));
      expect(waited.lost).toEqual([]);
      const roles = await watch.stop();
      expect(roles.overlaps).toEqual([]);
    } finally {
      await watch.stop();
    }
  }, 90_000);
});
