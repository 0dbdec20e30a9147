// ZooKeeper's AdminServer on our quorum servers, against Apache ZooKeeper 3.8's
// own (Debian's, with Debian's Jetty): for each command, and its aliases, the
// same keys with the same JSON types, recursively, on a standalone server and
// on the leader and a follower of an ensemble of three. Where we differ it is
// named here: monitor lists a subset of ZooKeeper's keys (ZooKeeper's has
// counters of its own request pipeline we have no equivalent of) plus
// quorate_*; environment has no java.* keys (ours is Node) and three of ours.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import { apacheAdminServerAvailable, startApacheEnsemble, startApacheZk, type ApacheEnsemble, type ApacheZk } from '../helpers/apache-zk.js';
import { freePort, missingTool } from '../helpers/ports.js';
import { startEnsemble } from '../helpers/quorate-ensemble.js';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every command we serve, under ZooKeeper's primary name and its aliases. */
const COMMANDS: [string, ...string[]][] = [
  ['ruok'], ['monitor', 'mntr'], ['stats', 'stat'], ['server_stats', 'srvr'], ['configuration', 'conf', 'config'],
  ['connections', 'cons'], ['environment', 'env', 'envi'], ['leader', 'lead'], ['voting_view'], ['watch_summary', 'wchs'],
  ['is_read_only', 'isro'], ['last_snapshot', 'lsnp'], ['dirs'],
];
const OUR_ENVIRONMENT = ['quorate.version', 'node.version', 'process.pid'];

async function command(adminPort: number, name: string): Promise<{ [k: string]: Json }> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/commands/${name}`);
  expect(r.status, name).toBe(200);
  expect(r.headers.get('content-type'), name).toMatch(/^application\/json/);
  return (await r.json()) as { [k: string]: Json };
}

/** Keys and JSON types, recursively; an array by its first element. */
function shape(v: Json): Json {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape(v[k])]));
  return typeof v;
}

/** Ours answers as ZooKeeper's: same keys and types, with the documented exceptions. */
function expectSameShape(name: string, ours: { [k: string]: Json }, theirs: { [k: string]: Json }): void {
  expect(ours.command, name).toBe(theirs.command);
  expect(ours.error, `${name}: ${String(ours.error)}`).toBe(theirs.error);
  if (name === 'monitor') {
    for (const [k, v] of Object.entries(ours)) {
      if (k.startsWith('quorate_')) continue;
      expect(Object.keys(theirs), `monitor key ${k} is ZooKeeper's`).toContain(k);
      // ZooKeeper writes every latency with a decimal point (0.0): JSON reads both as numbers.
      expect(shape(v), `monitor ${k}`).toEqual(shape(theirs[k]));
    }
    return;
  }
  if (name === 'environment') {
    const expected = Object.keys(theirs).filter((k) => !k.startsWith('java.'));
    expect(Object.keys(ours).sort()).toEqual([...expected, ...OUR_ENVIRONMENT].sort());
    for (const k of expected) expect(typeof ours[k], k).toBe(typeof theirs[k]);
    return;
  }
  expect(shape(ours), name).toEqual(shape(theirs));
}

/** The monitor keys every server of ours has, and a leader's besides. */
const MONITOR_ALL = ['version', 'server_state', 'avg_latency', 'max_latency', 'min_latency', 'packets_received', 'packets_sent',
  'num_alive_connections', 'outstanding_requests', 'znode_count', 'watch_count', 'ephemerals_count', 'approximate_data_size',
  'global_sessions', 'local_sessions', 'uptime', 'auth_failed_count', 'open_file_descriptor_count', 'max_file_descriptor_count',
  'connection_rejected', 'stale_sessions_expired'];
const MONITOR_QUORUM = ['peer_state', 'quorum_size', 'looking_count', 'commit_count', 'proposal_count'];
const MONITOR_LEADER = ['learners', 'synced_followers', 'synced_non_voting_followers', 'synced_observers', 'pending_syncs', 'leader_uptime',
  'last_proposal_size', 'min_proposal_size', 'max_proposal_size'];

describe.skipIf(missingTool(apacheAdminServerAvailable()))('the AdminServer answers as Apache ZooKeeper 3.8\'s', () => {
  describe('standalone', () => {
    let zk: ApacheZk;
    let zkAdmin: number;
    let ours: QuorateServer;
    let ourAdmin: number;
    const clients: ZkClient[] = [];

    beforeAll(async () => {
      zkAdmin = await freePort();
      ourAdmin = await freePort();
      [zk, ours] = await Promise.all([
        startApacheZk({ adminPort: zkAdmin }),
        startQuorateServer({ cfg: { 'admin.serverPort': String(ourAdmin), 'admin.serverAddress': '127.0.0.1' } }),
      ]);
      // The same activity on both: a session with a znode and a watch, kept open (cons and stats list it).
      for (const connectString of [zk.connectString, ours.connectString]) {
        const c = new ZkClient({ connectString, sessionTimeoutMs: 10_000 });
        await c.connect({ timeoutMs: 30_000 });
        await c.create('/admin-test', Buffer.from('x'));
        await c.getData('/admin-test', () => undefined);
        clients.push(c);
      }
    }, 90_000);
    afterAll(async () => {
      for (const c of clients) await c.close();
      await ours?.stop();
      await zk?.stop();
    });

    it('every command and alias: the same keys and types, "command" and "error" included', async () => {
      for (const [name, ...aliases] of COMMANDS) {
        const theirs = await command(zkAdmin, name);
        for (const n of [name, ...aliases]) expectSameShape(name, await command(ourAdmin, n), theirs);
      }
      // A session shows in both: the comparison above saw a connection's every key, not an empty list.
      expect(((await command(ourAdmin, 'cons')).connections as Json[]).length).toBeGreaterThanOrEqual(1);
      expect(((await command(zkAdmin, 'cons')).connections as Json[]).length).toBeGreaterThanOrEqual(1);
      const monitor = await command(ourAdmin, 'monitor');
      for (const k of MONITOR_ALL) expect(Object.keys(monitor), k).toContain(k);
      expect(monitor.server_state).toBe('standalone');
      expect(monitor.watch_count).toBeGreaterThanOrEqual(1);
    });

    it('refuses an unknown command with ZooKeeper\'s answer, and names ZooKeeper\'s commands it does not serve', async () => {
      expect(await command(ourAdmin, 'no_such_command')).toEqual(await command(zkAdmin, 'no_such_command'));
      expect(await command(ourAdmin, 'no_such_command')).toEqual({ command: 'no_such_command', error: 'Unknown command: no_such_command' });
      const reset = await command(ourAdmin, 'stat_reset');
      expect(reset.command).toBe('stat_reset');
      expect(reset.error).toMatch(/^Command not served by Quorate's AdminServer: stat_reset/);
    });

    it('lists its commands at /commands as ZooKeeper does (a link each), every one of them ZooKeeper\'s', async () => {
      const list = async (port: number) => {
        const text = await (await fetch(`http://127.0.0.1:${port}/commands`)).text();
        const names = [...text.matchAll(/<a href="\/commands\/([a-z_]+)">\1<\/a>\n<br\/>\n/g)].map((m) => m[1]);
        expect(names.join('').length, text).toBeGreaterThan(0);
        expect(text).toBe(names.map((n) => `<a href="/commands/${n}">${n}</a>\n<br/>\n`).join(''));
        return names;
      };
      const ourNames = await list(ourAdmin);
      expect(ourNames.sort()).toEqual(COMMANDS.map((c) => c[0]).sort());
      const theirNames = await list(zkAdmin);
      for (const n of ourNames) expect(theirNames, n).toContain(n);
    });

    it('only reads: POST refused as by ZooKeeper (405), a request body refused, no other path', async () => {
      for (const port of [ourAdmin, zkAdmin]) expect((await fetch(`http://127.0.0.1:${port}/commands/ruok`, { method: 'POST' })).status).toBe(405);
      // fetch will not send a GET with a body: written by hand.
      const raw = await rawRequest(ourAdmin, 'GET /commands/ruok HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc');
      expect(raw).toMatch(/^HTTP\/1\.1 413 /);
      expect((await fetch(`http://127.0.0.1:${ourAdmin}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${ourAdmin}/metrics`)).status).toBe(404);
    });
  });

  describe('ensemble of three', () => {
    let theirs: ApacheEnsemble;
    let ours: Awaited<ReturnType<typeof startEnsemble>>;
    const ourAdmin: number[] = [];

    beforeAll(async () => {
      for (let i = 0; i < 3; i++) ourAdmin.push(await freePort());
      [theirs, ours] = await Promise.all([
        startApacheEnsemble(3),
        startEnsemble(3, { cfg: { 'admin.serverAddress': '127.0.0.1' }, cfgFor: (i) => ({ 'admin.serverPort': String(ourAdmin[i]) }) }),
      ]);
    }, 120_000);
    afterAll(async () => {
      await ours?.stopAll();
      await theirs?.stop();
    });

    it('leader, voting_view, stats, server_stats, monitor, configuration: the same keys on the leader and on a follower', async () => {
      const [theirLeader, ourLeader] = await Promise.all([theirs.settled(), ours.settled()]);
      const zkAdmin = (role: 'leader' | 'follower') => theirs.servers[role === 'leader' ? theirLeader : (theirLeader + 1) % 3].adminPort;
      const ourPort = (role: 'leader' | 'follower') => ourAdmin[role === 'leader' ? ourLeader : (ourLeader + 1) % 3];
      // Learners sync a moment after the leader serves: wait until both leaders count two.
      for (const port of [zkAdmin('leader'), ourPort('leader')]) {
        const deadline = Date.now() + 30_000;
        while ((await command(port, 'monitor')).synced_followers !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      }
      for (const role of ['leader', 'follower'] as const) {
        for (const name of ['leader', 'voting_view', 'stats', 'server_stats', 'monitor', 'configuration', 'ruok', 'watch_summary', 'last_snapshot']) {
          expectSameShape(name, await command(ourPort(role), name), await command(zkAdmin(role), name));
        }
        const monitor = await command(ourPort(role), 'monitor');
        for (const k of [...MONITOR_ALL, ...MONITOR_QUORUM, ...(role === 'leader' ? MONITOR_LEADER : [])]) expect(Object.keys(monitor), `${role}: ${k}`).toContain(k);
        expect(monitor.server_state).toBe(role);
        expect(monitor.quorum_size).toBe(3);
        expect(monitor.peer_state).toBe(`${role === 'leader' ? 'leading' : 'following'} - broadcast`);
        const leader = await command(ourPort(role), 'leader');
        expect(leader).toEqual({ is_leader: role === 'leader', leader_id: ourLeader + 1, leader_ip: '127.0.0.1', command: 'leader', error: null });
        const view = (await command(ourPort(role), 'voting_view')).current_config as Record<string, { client_address: string }>;
        expect(Object.keys(view)).toEqual(['1', '2', '3']);
        ours.servers.forEach((s, i) => expect(view[String(i + 1)].client_address).toBe(`127.0.0.1:${s.port}`));
      }
      expect((await command(ourPort('leader'), 'monitor')).synced_followers).toBe(2);
    }, 120_000);

    it('a server without a quorum answers ZooKeeper\'s "not currently serving" where ZooKeeper does, and monitor still', async () => {
      const leader = await ours.settled();
      const last = (leader + 1) % 3;
      for (let i = 0; i < 3; i++) if (i !== last) await ours.servers[i].stop();
      const port = ourAdmin[last];
      const deadline = Date.now() + 20_000;
      let ruok = await command(port, 'ruok');
      while (ruok.error === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        ruok = await command(port, 'ruok');
      }
      expect(ruok).toEqual({ command: 'ruok', error: 'This ZooKeeper instance is not currently serving requests' });
      expect((await command(port, 'srvr')).error).toBe('This ZooKeeper instance is not currently serving requests');
      const monitor = await command(port, 'monitor');
      expect(monitor.error).toBeNull();
      expect(monitor.server_state).toBe('looking');
      expect((await command(port, 'environment')).error).toBeNull();
    }, 60_000);
  });
});

describe('the AdminServer\'s bind address', () => {
  it('listens where admin.serverAddress says, and only there', async () => {
    const port = await freePort();
    const s = await startQuorateServer({ cfg: { 'admin.serverPort': String(port), 'admin.serverAddress': '127.0.0.2' } });
    try {
      expect((await command2('127.0.0.2', port, 'ruok')).error).toBeNull();
      await expect(fetch(`http://127.0.0.1:${port}/commands/ruok`)).rejects.toThrow();
    } finally {
      await s.stop();
    }
  }, 60_000);
});

async function command2(host: string, port: number, name: string): Promise<{ [k: string]: Json }> {
  return (await (await fetch(`http://${host}:${port}/commands/${name}`)).json()) as { [k: string]: Json };
}

/** One HTTP request written by hand (fetch will not send a GET with a body); the response's first bytes. */
async function rawRequest(port: number, request: string): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(request));
    let out = '';
    s.on('data', (d) => { out += d.toString(); if (out.includes('\r\n\r\n')) { s.destroy(); resolve(out); } });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}
