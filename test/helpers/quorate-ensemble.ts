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
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

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

/** Directed links i -> j between servers, each through a proxy the test can block: a partition. */
export interface Links {
  cut(sides: number[][]): void;
  heal(): void;
}

/**
 * `joiners`: servers started outside the membership, each with a configuration naming the members
 * and itself (as a server to be added by reconfig is started); `cfg`: more zoo.cfg keys for all;
 * `cfgFor`: for server i alone (its own HTTP ports).
 */
export async function startEnsemble(n: number, opts: { observers?: number; tickTime?: number; proxied?: boolean; joiners?: number; cfg?: Record<string, string>; cfgFor?: (i: number) => Record<string, string> | Promise<Record<string, string>> } = {}): Promise<Ensemble & { links: Links | null; serverLine(i: number): string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-ensemble-'));
  const members = n + (opts.observers ?? 0);
  const total = members + (opts.joiners ?? 0);
  const ports: { client: number; peer: number; election: number }[] = [];
  for (let i = 0; i < total; i++) ports.push({ client: await freePort(), peer: await freePort(), election: await freePort() });
  // With proxies, server i reaches server j through its own pair of proxies (peer, election), so
  // that any set of links can be cut; each server's zoo.cfg names the proxies for the others.
  const proxies = new Map<string, TcpProxy[]>();
  if (opts.proxied) {
    for (let i = 0; i < total; i++) for (let j = 0; j < total; j++) {
      if (i !== j) proxies.set(`${i}>${j}`, [await startTcpProxy(ports[j].peer), await startTcpProxy(ports[j].election)]);
    }
  }
  const linesFor = (self: number): Record<string, string> => {
    const lines: Record<string, string> = {};
    ports.forEach((p, j) => {
      if (j >= members && j !== self) return; // joiners know only themselves and the members
      const via = self === j ? null : proxies.get(`${self}>${j}`);
      const [peer, election] = via ? [via[0].port, via[1].port] : [p.peer, p.election];
      lines[`server.${j + 1}`] = `127.0.0.1:${peer}:${election}${j >= n ? ':observer' : ''};127.0.0.1:${p.client}`;
    });
    return lines;
  };
  const servers = await Promise.all(ports.map(async (p, i) => {
    const sdir = path.join(dir, `s${i + 1}`);
    fs.mkdirSync(path.join(sdir, 'data'), { recursive: true });
    fs.writeFileSync(path.join(sdir, 'data', 'myid'), `${i + 1}\n`);
    return startQuorateServer({
      dir: sdir, clientPort: p.client,
      cfg: { tickTime: String(opts.tickTime ?? 200), initLimit: '10', syncLimit: '5', ...opts.cfg, ...(await opts.cfgFor?.(i)), ...linesFor(i) },
    });
  }));
  const links: Links | null = !opts.proxied ? null : {
    cut(sides) {
      const side = new Map<number, number>();
      sides.forEach((s, k) => { for (const i of s) side.set(i, k); });
      for (const [key, ps] of proxies) {
        const [i, j] = key.split('>').map(Number);
        if ((side.get(i) ?? -1) !== (side.get(j) ?? -1)) for (const p of ps) p.block();
      }
    },
    heal() { for (const ps of proxies.values()) for (const p of ps) p.unblock(); },
  };
  const e: Ensemble & { links: Links | null; serverLine(i: number): string } = {
    servers, dir, links,
    serverLine: (i) => `server.${i + 1}=127.0.0.1:${ports[i].peer}:${ports[i].election}:participant;127.0.0.1:${ports[i].client}`,
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
      for (const ps of proxies.values()) for (const p of ps) await p.close();
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
