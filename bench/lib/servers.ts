// Launches the servers the benchmarks compare, as real processes on free
// loopback ports, each with its data dir under os.tmpdir() (the same file
// system as the fsync floor) and fsync on (forceSync=yes):
//   - ours: `node dist/src/cli/main.js quorum --zoo-cfg FILE`; extra node
//     flags from QUORATE_BENCH_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
//   - Apache ZooKeeper 3.8 (Debian), standalone, with a fixed heap; extra JVM
//     flags from QUORATE_BENCH_JVM_FLAGS. See ANCHORS.md pitfalls 1-3.
// Every child is started in its own process group and killed with its group
// on stop, on exit of the generator, and on SIGINT/SIGTERM.
import { freePort, waitForPort as waitForPortOpen } from '../../src/io/ports.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ZkClientTls } from '../../src/client/index.js';

export const OUR_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const ZK_CLASSPATH = [
  'zookeeper.jar', 'zookeeper-jute.jar', 'slf4j-api.jar', 'slf4j-log4j12.jar', 'log4j-1.2.jar',
  'netty-all.jar', 'metrics-core.jar', 'snappy-java.jar', 'commons-cli.jar', 'commons-io.jar',
  // Debian's netty-all is a manifest over the split jars, which the TLS port (NettyServerCnxnFactory) needs.
  'netty-buffer.jar', 'netty-codec.jar', 'netty-common.jar', 'netty-handler.jar', 'netty-resolver.jar', 'netty-transport.jar',
  'netty-transport-native-epoll.jar', 'netty-transport-native-unix-common.jar',
].map((j) => `/usr/share/java/${j}`).join(':');

export type ServerKind = 'ours' | 'zookeeper';
/** ours-metrics: ours with its Prometheus port on (zoo.cfg's metricsProvider.*), for what metrics cost (zk-standalone --metrics). */
export type BenchKind = ServerKind | 'ours-metrics';

export interface BenchServer {
  kind: BenchKind;
  pid: number;
  port: number;
  connectString: string;
  dir: string;
  /** With --tls: the secure client port clients use instead, and the client side of TLS. */
  secure: { connectString: string; tls: ZkClientTls } | null;
  /** ours-metrics: where its Prometheus text is. */
  metricsUrl?: string;
  /** What the process was started with, for the report. */
  describe: string;
  /** Last lines of the server's stderr (and ZooKeeper's log file). */
  logTail(): string;
  alive(): boolean;
  stop(): Promise<void>;
  /** kill -9 of the process group, keeping the data dir (to restart it). */
  kill9(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try { process.kill(-child.pid!, signal); } catch { try { child.kill(signal); } catch { /* gone */ } }
}

/** Kill every server still running (synchronous: usable from an 'exit' handler). */
export function killAllServers(): void {
  for (const c of live) killGroup(c, 'SIGKILL');
  live.clear();
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  dirs.clear();
}

let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllServers);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => { process.stderr.write(`bench: ${sig}: killing servers\n`); killAllServers(); process.exit(130); });
  }
}

async function waitForPort(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  try {
    await waitForPortOpen(port, timeoutMs, '127.0.0.1', exited);
  } catch (e) {
    throw exited() ? new Error(`server exited before opening port ${port}`) : e;
  }
}

export function writeZooCfg(file: string, cfg: Record<string, string>): void {
  fs.writeFileSync(file, Object.entries(cfg).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
}

export function splitFlags(env: string | undefined): string[] {
  return (env ?? '').split(/\s+/).filter((s) => s.length > 0);
}

/** startTimeoutMs: how long the port may take to open (default 30 s; a server replaying a large log needs more). */
export interface Launch { kind: BenchKind; dir: string; port: number; cmd: string; args: string[]; env?: NodeJS.ProcessEnv; logFile?: string; secure?: BenchServer['secure']; metricsUrl?: string; startTimeoutMs?: number }

export async function launch(l: Launch): Promise<BenchServer> {
  installExitHooks();
  dirs.add(l.dir);
  const child = spawn(l.cmd, l.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: l.env ?? process.env });
  live.add(child);
  let stderr = '';
  // BENCH_LOG_DIR=D keeps each server's whole output in D/<its dir's name>.log, for a look after the run.
  const tee = process.env.BENCH_LOG_DIR ? fs.createWriteStream(path.join(process.env.BENCH_LOG_DIR, `${path.basename(l.dir)}.log`), { flags: 'a' }) : null;
  const keep = (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8000); tee?.write(d); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const exitPromise = new Promise<void>((r) => { if (exited()) r(); else child.once('exit', () => r()); });
  const logTail = () => {
    let t = stderr;
    if (l.logFile) { try { t += fs.readFileSync(l.logFile, 'utf8').slice(-4000); } catch { /* none yet */ } }
    return t.slice(-6000);
  };
  const waitExit = (ms: number) => Promise.race([exitPromise, new Promise<void>((r) => setTimeout(r, ms).unref())]);
  const stop = async () => {
    if (!exited()) {
      // SIGTERM first so that `node --cpu-prof` can write its profile; then the whole group, hard.
      try { child.kill('SIGTERM'); } catch { /* gone */ }
      await waitExit(l.kind === 'zookeeper' ? 3000 : 8000);
      if (!exited()) killGroup(child, 'SIGKILL');
      await waitExit(5000);
    }
    live.delete(child);
    fs.rmSync(l.dir, { recursive: true, force: true });
    dirs.delete(l.dir);
  };
  try {
    await waitForPort(l.port, l.startTimeoutMs ?? 30_000, exited);
  } catch (e) {
    await new Promise((r) => setTimeout(r, 200)); // the last words of a process that just died
    await stop();
    throw new Error(`${l.kind} server did not start: ${(e as Error).message}\n${logTail()}`);
  }
  return {
    kind: l.kind, pid: child.pid!, port: l.port, connectString: `127.0.0.1:${l.port}`, dir: l.dir, secure: l.secure ?? null,
    ...(l.metricsUrl === undefined ? {} : { metricsUrl: l.metricsUrl }),
    describe: [l.cmd, ...l.args].join(' '), logTail, alive: () => !exited(), stop,
    async kill9() {
      if (!exited()) killGroup(child, 'SIGKILL');
      await waitExit(5000);
      live.delete(child);
    },
  };
}

export function baseCfg(dataDir: string, port: number): Record<string, string> {
  return {
    tickTime: '2000', dataDir, clientPort: String(port), clientPortAddress: '127.0.0.1',
    maxClientCnxns: '0', '4lw.commands.whitelist': '*', forceSync: 'yes',
  };
}

/** zoo.cfg keys for a TLS client port, and what clients then need; null: plain only. */
export type SecureSetup = ((securePort: number) => { cfg: Record<string, string>; tls: ZkClientTls }) | null;

async function secureFor(setup: SecureSetup): Promise<{ cfg: Record<string, string>; secure: BenchServer['secure'] }> {
  if (setup === null) return { cfg: {}, secure: null };
  const port = await freePort();
  const s = setup(port);
  return { cfg: s.cfg, secure: { connectString: `127.0.0.1:${port}`, tls: s.tls } };
}

/** `metrics`: with its Prometheus port on, as zoo.cfg's metricsProvider.* turn it on. */
export async function startOurServer(setup: SecureSetup = null, metrics = false): Promise<BenchServer> {
  if (!fs.existsSync(OUR_CLI)) throw new Error(`${OUR_CLI} is missing: run "npm run build"`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-quorate-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const port = await freePort();
  const cfgPath = path.join(dir, 'zoo.cfg');
  const sec = await secureFor(setup);
  const metricsPort = metrics ? await freePort() : null;
  const metricsCfg: Record<string, string> = metricsPort === null ? {} : {
    'metricsProvider.className': 'org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider',
    'metricsProvider.httpPort': String(metricsPort), 'metricsProvider.httpHost': '127.0.0.1',
  };
  writeZooCfg(cfgPath, { ...baseCfg(dataDir, port), ...sec.cfg, ...metricsCfg });
  const args = [...splitFlags(process.env.QUORATE_BENCH_NODE_FLAGS), OUR_CLI, 'quorum', '--zoo-cfg', cfgPath];
  return launch({
    kind: metrics ? 'ours-metrics' : 'ours', dir, port, cmd: process.execPath, args, secure: sec.secure,
    ...(metricsPort === null ? {} : { metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` }),
  });
}

export function apacheZkAvailable(): boolean {
  return fs.existsSync('/usr/share/java/zookeeper.jar') && fs.existsSync('/usr/bin/java');
}

export async function startApacheZk(opts: { heapMb: number; secure?: SecureSetup }): Promise<BenchServer> {
  if (!apacheZkAvailable()) throw new Error('Apache ZooKeeper is not installed (/usr/share/java/zookeeper.jar, /usr/bin/java)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-apache-zk-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const port = await freePort();
  const cfgPath = path.join(dir, 'zoo.cfg');
  const sec = await secureFor(opts.secure ?? null);
  writeZooCfg(cfgPath, { ...baseCfg(dataDir, port), 'admin.enableServer': 'false', ...sec.cfg });
  const { args, logFile } = zkJvmArgs(dir, cfgPath, opts.heapMb);
  return launch({ kind: 'zookeeper', dir, port, cmd: 'java', args, logFile, secure: sec.secure });
}

/** The JVM's arguments for a ZooKeeper server with its config at cfgPath, logging (WARN) to dir/zk.log. */
export function zkJvmArgs(dir: string, cfgPath: string, heapMb: number): { args: string[]; logFile: string } {
  const logFile = path.join(dir, 'zk.log');
  const log4j = path.join(dir, 'log4j.properties');
  fs.writeFileSync(log4j, 'log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n' +
    `log4j.appender.F.File=${logFile}\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n` +
    'log4j.appender.F.layout.ConversionPattern=%d %p %c{1}: %m%n\n');
  const args = [
    `-Xmx${heapMb}m`, ...splitFlags(process.env.QUORATE_BENCH_JVM_FLAGS),
    `-Dlog4j.configuration=file:${log4j}`, '-Dzookeeper.admin.enableServer=false', '-Dzookeeper.forceSync=yes',
    '-cp', ZK_CLASSPATH, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfgPath,
  ];
  return { args, logFile };
}

export async function startServer(kind: BenchKind, zkHeapMb: number, secure: SecureSetup = null): Promise<BenchServer> {
  return kind === 'zookeeper' ? startApacheZk({ heapMb: zkHeapMb, secure }) : startOurServer(secure, kind === 'ours-metrics');
}
