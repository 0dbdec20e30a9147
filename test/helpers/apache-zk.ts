// Runs Debian's Apache ZooKeeper 3.8 standalone on a free loopback port, for
// the tests and benchmarks that compare against the real thing or use it as
// a backend. See ANCHORS.md pitfalls 1-3.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.js';

export const ZK_CLASSPATH = [
  '/usr/share/java/zookeeper.jar',
  '/usr/share/java/zookeeper-jute.jar',
  '/usr/share/java/slf4j-api.jar',
  '/usr/share/java/slf4j-log4j12.jar',
  '/usr/share/java/log4j-1.2.jar',
  '/usr/share/java/netty-all.jar',
  // Debian's netty-all is only a manifest over the split jars; the TLS port (NettyServerCnxnFactory) needs them.
  '/usr/share/java/netty-buffer.jar',
  '/usr/share/java/netty-codec.jar',
  '/usr/share/java/netty-common.jar',
  '/usr/share/java/netty-handler.jar',
  '/usr/share/java/netty-resolver.jar',
  '/usr/share/java/netty-transport.jar',
  '/usr/share/java/netty-transport-native-epoll.jar',
  '/usr/share/java/netty-transport-native-unix-common.jar',
  '/usr/share/java/metrics-core.jar',
  '/usr/share/java/snappy-java.jar',
  '/usr/share/java/commons-cli.jar',
  '/usr/share/java/commons-io.jar',
].join(':');

export function apacheZkAvailable(): boolean {
  return fs.existsSync('/usr/share/java/zookeeper.jar') && fs.existsSync('/usr/bin/java');
}

export interface ApacheZk {
  port: number;
  dataDir: string;
  pid: number;
  connectString: string;
  stop(): Promise<void>;
}

export async function startApacheZk(opts: { tickTime?: number; extra?: Record<string, string>; heapMb?: number } = {}): Promise<ApacheZk> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apache-zk-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const cfg: Record<string, string> = {
    tickTime: String(opts.tickTime ?? 2000),
    dataDir,
    clientPort: String(port),
    clientPortAddress: '127.0.0.1',
    'admin.enableServer': 'false',
    '4lw.commands.whitelist': '*',
    maxClientCnxns: '0',
    'extendedTypesEnabled': 'true',
    ...opts.extra,
  };
  const cfgPath = path.join(dir, 'zoo.cfg');
  fs.writeFileSync(cfgPath, Object.entries(cfg).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  const log4j = path.join(dir, 'log4j.properties');
  fs.writeFileSync(log4j, 'log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n' +
    `log4j.appender.F.File=${path.join(dir, 'zk.log')}\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n` +
    'log4j.appender.F.layout.ConversionPattern=%d %p %c{1}: %m%n\n');
  const child: ChildProcess = spawn('java', [
    `-Xmx${opts.heapMb ?? 512}m`,
    `-Dlog4j.configuration=file:${log4j}`,
    '-Dzookeeper.extendedTypesEnabled=true',
    '-Dzookeeper.admin.enableServer=false',
    '-cp', ZK_CLASSPATH,
    'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfgPath,
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr = (stderr + d.toString()).slice(-4000); });
  try {
    await waitForPort(port, 30_000);
  } catch (e) {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    throw new Error(`Apache ZooKeeper did not start: ${(e as Error).message}\n${stderr}`);
  }
  return {
    port, dataDir, pid: child.pid!, connectString: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
