// A 3-server (or N) ensemble of either kind on 127.0.0.1 for the benchmarks:
// our `quorate quorum --zoo-cfg` processes or Apache ZooKeeper 3.8's
// QuorumPeerMain, configured alike (zoo.cfg with server.N lines, myid, fsync
// on, the same tickTime/initLimit/syncLimit), each server killable with -9 and
// restartable on its data.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fourLetterWord } from '../../src/client/index.js';
import { freePort } from '../../src/io/ports.js';
import { baseCfg, launch, OUR_CLI, splitFlags, writeZooCfg, zkJvmArgs, type BenchServer, type Launch, type ServerKind } from './servers.js';

export interface BenchEnsemble {
  kind: ServerKind;
  servers: BenchServer[];
  connectString: string;
  /** srvr's Mode per server ('down' when it does not answer). */
  modes(): Promise<string[]>;
  /** Waits for one leader and every live server serving; the leader's index. */
  settled(timeoutMs: number): Promise<number>;
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchEnsemble(kind: ServerKind, n: number, opts: { heapMb: number; tickTime: number }): Promise<BenchEnsemble> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-ensemble-`));
  const ports: { client: number; peer: number; election: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort(), election: await freePort() });
  const launches: Launch[] = ports.map((p, i) => {
    const dir = path.join(root, `s${i + 1}`);
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'myid'), `${i + 1}\n`);
    const cfg: Record<string, string> = { ...baseCfg(dataDir, p.client), tickTime: String(opts.tickTime), initLimit: '10', syncLimit: '5' };
    ports.forEach((q, j) => { cfg[`server.${j + 1}`] = `127.0.0.1:${q.peer}:${q.election};127.0.0.1:${q.client}`; });
    if (kind === 'zookeeper') cfg['admin.enableServer'] = 'false';
    const cfgPath = path.join(dir, 'zoo.cfg');
    writeZooCfg(cfgPath, cfg);
    if (kind === 'ours') {
      return { kind, dir, port: p.client, cmd: process.execPath, args: [...splitFlags(process.env.QUORATE_BENCH_NODE_FLAGS), OUR_CLI, 'quorum', '--zoo-cfg', cfgPath] };
    }
    const { args, logFile } = zkJvmArgs(dir, cfgPath, opts.heapMb);
    return { kind, dir, port: p.client, cmd: 'java', args, logFile };
  });
  const servers = await Promise.all(launches.map((l) => launch(l)));
  const e: BenchEnsemble = {
    kind, servers,
    connectString: servers.map((s) => s.connectString).join(','),
    async modes() {
      return Promise.all(e.servers.map(async (s) => {
        if (!s.alive()) return 'down';
        const text = await fourLetterWord('127.0.0.1', s.port, 'srvr', 1000);
        return /Mode: (\w+)/.exec(text)?.[1] ?? (text.includes('not currently serving') ? 'looking' : 'down');
      }));
    },
    async settled(timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      let modes: string[] = [];
      while (performance.now() < deadline) {
        modes = await e.modes();
        if (modes.filter((m) => m === 'leader').length === 1 && modes.every((m) => m === 'leader' || m === 'follower')) return modes.indexOf('leader');
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${kind} ensemble did not settle within ${timeoutMs} ms (modes: ${modes.join(', ')})\n${e.servers.map((s) => s.logTail().slice(-1500)).join('\n---\n')}`);
    },
    async restart(i) {
      e.servers[i] = await launch(launches[i]);
    },
    async stop() {
      for (const s of e.servers) await s.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  return e;
}
