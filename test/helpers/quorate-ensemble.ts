// A quorum of our servers as real processes on 127.0.0.1, configured the way a
// ZooKeeper ensemble is (zoo.cfg with server.N lines, myid in dataDir), each on
// free ports; plus what the tests ask of it: who leads (srvr), a digest of
// every server's tree.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fourLetterWord, ZkClient } from '../../src/client/index.js';
import { freePort } from './ports.js';
import { startQuorateServer, type QuorateServer } from './quorate-server.js';

export interface Ensemble {
  servers: QuorateServer[];
  dir: string;
  connectString: string;
  /** The mode `srvr` reports per server ('leader', 'follower', 'observer', 'looking' or 'down'). */
  modes(): Promise<string[]>;
  /** Waits until exactly one server leads and every other live one serves; returns the leader's index. */
  settled(timeoutMs?: number): Promise<number>;
  stopAll(): Promise<void>;
}

export async function startEnsemble(n: number, opts: { observers?: number; tickTime?: number } = {}): Promise<Ensemble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-ensemble-'));
  const total = n + (opts.observers ?? 0);
  const ports = [];
  for (let i = 0; i < total; i++) ports.push({ client: await freePort(), peer: await freePort(), election: await freePort() });
  const lines: Record<string, string> = {};
  ports.forEach((p, i) => {
    lines[`server.${i + 1}`] = `127.0.0.1:${p.peer}:${p.election}${i >= n ? ':observer' : ''};127.0.0.1:${p.client}`;
  });
  const servers = await Promise.all(ports.map(async (p, i) => {
    const sdir = path.join(dir, `s${i + 1}`);
    fs.mkdirSync(path.join(sdir, 'data'), { recursive: true });
    fs.writeFileSync(path.join(sdir, 'data', 'myid'), `${i + 1}\n`);
    return startQuorateServer({
      dir: sdir, clientPort: p.client,
      cfg: { tickTime: String(opts.tickTime ?? 200), initLimit: '10', syncLimit: '5', ...lines },
    });
  }));
  const e: Ensemble = {
    servers, dir,
    connectString: servers.map((s) => s.connectString).join(','),
    async modes() {
      return Promise.all(servers.map(async (s) => {
        if (!s.alive()) return 'down';
        const text = await fourLetterWord('127.0.0.1', s.port, 'srvr');
        return /Mode: (\w+)/.exec(text)?.[1] ?? (text.includes('not currently serving') ? 'looking' : 'down');
      }));
    },
    async settled(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last: string[] = [];
      while (Date.now() < deadline) {
        last = await e.modes();
        const leaders = last.filter((m) => m === 'leader').length;
        if (leaders === 1 && last.every((m) => m !== 'looking')) return last.indexOf('leader');
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the ensemble did not settle within ${timeoutMs} ms: modes ${last.join(', ')}`);
    },
    async stopAll() {
      for (const s of servers) await s.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return e;
}

/** Every znode's path, data and version under /, as one sorted text: equal on servers with equal trees. */
export async function treeDigest(connectString: string): Promise<string> {
  const zk = new ZkClient({ connectString, sessionTimeoutMs: 10_000, requestTimeoutMs: 10_000 });
  await zk.connect({ timeoutMs: 10_000 });
  try {
    await zk.sync('/');
    const out: string[] = [];
    const walk = async (p: string): Promise<void> => {
      const { data, stat } = await zk.getData(p);
      out.push(`${p} v${stat.version} ${data?.toString('base64') ?? '-'}`);
      const kids = (await zk.getChildren(p)).sort();
      for (const k of kids) if (!(p === '/' && k === 'zookeeper')) await walk(p === '/' ? `/${k}` : `${p}/${k}`);
    };
    await walk('/');
    return out.join('\n');
  } finally {
    await zk.close();
  }
}
