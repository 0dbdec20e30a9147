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

/** What ZooKeeper's AdminServer (JettyAdminServer) needs besides ZooKeeper: Debian's Jetty 9, the servlet API, Jackson. */
export const ZK_ADMIN_JARS = [
  'jetty9-server', 'jetty9-servlet', 'jetty9-http', 'jetty9-io', 'jetty9-util', 'jetty9-security', 'servlet-api',
  'jackson-core', 'jackson-databind', 'jackson-annotations',
].map((j) => `/usr/share/java/${j}.jar`);

export function apacheAdminServerAvailable(): boolean {
  return apacheZkAvailable() && ZK_ADMIN_JARS.every((j) => fs.existsSync(j));
}

/** The JVM's arguments for a ZooKeeper server; with `admin`, its AdminServer on (classpath and the system property). */
function jvmArgs(dir: string, cfgPath: string, opts: { heapMb?: number; admin: boolean }): string[] {
  const log4j = path.join(dir, 'log4j.properties');
  fs.writeFileSync(log4j, 'log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n' +
    `log4j.appender.F.File=${path.join(dir, 'zk.log')}\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n` +
    'log4j.appender.F.layout.ConversionPattern=%d %p %c{1}: %m%n\n');
  return [
    `-Xmx${opts.heapMb ?? 512}m`,
    `-Dlog4j.configuration=file:${log4j}`,
    '-Dzookeeper.extendedTypesEnabled=true',
    `-Dzookeeper.admin.enableServer=${opts.admin}`,
    '-cp', opts.admin ? [ZK_CLASSPATH, ...ZK_ADMIN_JARS].join(':') : ZK_CLASSPATH,
    'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfgPath,
  ];
}

export interface ApacheZk {
  port: number;
  dataDir: string;
  pid: number;
  connectString: string;
  stop(): Promise<void>;
}

/** `adminPort`: its AdminServer on that port (127.0.0.1), which is off otherwise. */
export async function startApacheZk(opts: { tickTime?: number; extra?: Record<string, string>; heapMb?: number; adminPort?: number } = {}): Promise<ApacheZk> {
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
    ...(opts.adminPort === undefined ? {} : { 'admin.enableServer': 'true', 'admin.serverPort': String(opts.adminPort), 'admin.serverAddress': '127.0.0.1' }),
    ...opts.extra,
  };
  const cfgPath = path.join(dir, 'zoo.cfg');
  fs.writeFileSync(cfgPath, Object.entries(cfg).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  const child: ChildProcess = spawn('java', jvmArgs(dir, cfgPath, { heapMb: opts.heapMb, admin: opts.adminPort !== undefined }), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr = (stderr + d.toString()).slice(-4000); });
  try {
    await waitForPort(port, 30_000);
    if (opts.adminPort !== undefined) await waitForPort(opts.adminPort, 30_000);
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

export interface ApacheEnsemble {
  servers: { clientPort: number; adminPort: number; pid: number }[];
  connectString: string;
  /** The index of the server whose AdminServer says it leads, once one does and every other serves. */
  settled(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * n Apache ZooKeeper 3.8 servers on 127.0.0.1 as one ensemble (zoo.cfg with server.N lines naming
 * each client address, myid), each with its AdminServer on: the reference the AdminServer test
 * compares ours against.
 */
export async function startApacheEnsemble(n: number, opts: { tickTime?: number; heapMb?: number } = {}): Promise<ApacheEnsemble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apache-ensemble-'));
  const ports: { client: number; peer: number; election: number; admin: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), peer: await freePort(), election: await freePort(), admin: await freePort() });
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    ports.forEach((p, i) => {
      const sdir = path.join(dir, `s${i + 1}`);
      fs.mkdirSync(path.join(sdir, 'data'), { recursive: true });
      fs.writeFileSync(path.join(sdir, 'data', 'myid'), `${i + 1}\n`);
      const cfg: Record<string, string> = {
        tickTime: String(opts.tickTime ?? 200), initLimit: '20', syncLimit: '10', dataDir: path.join(sdir, 'data'),
        clientPort: String(p.client), clientPortAddress: '127.0.0.1', '4lw.commands.whitelist': '*', maxClientCnxns: '0',
        'admin.enableServer': 'true', 'admin.serverPort': String(p.admin), 'admin.serverAddress': '127.0.0.1',
      };
      ports.forEach((q, j) => { cfg[`server.${j + 1}`] = `127.0.0.1:${q.peer}:${q.election};127.0.0.1:${q.client}`; });
      const cfgPath = path.join(sdir, 'zoo.cfg');
      fs.writeFileSync(cfgPath, Object.entries(cfg).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
      children.push(spawn('java', jvmArgs(sdir, cfgPath, { heapMb: opts.heapMb ?? 256, admin: true }), { stdio: 'ignore', detached: true }));
    });
    for (const p of ports) await waitForPort(p.admin, 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    servers: ports.map((p, i) => ({ clientPort: p.client, adminPort: p.admin, pid: children[i].pid! })),
    connectString: ports.map((p) => `127.0.0.1:${p.client}`).join(','),
    async settled(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let states: string[] = [];
      while (Date.now() < deadline) {
        states = await Promise.all(ports.map(async (p) => {
          try {
            const r = (await (await fetch(`http://127.0.0.1:${p.admin}/commands/srvr`)).json()) as { server_stats?: { server_state?: string } };
            return r.server_stats?.server_state ?? 'looking';
          } catch { return 'down'; }
        }));
        if (states.filter((s) => s === 'leader').length === 1 && states.every((s) => s === 'leader' || s === 'follower')) return states.indexOf('leader');
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`the Apache ensemble did not settle within ${timeoutMs} ms: ${states.join(', ')}`);
    },
    stop,
  };
}
