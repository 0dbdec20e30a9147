// Runs Apache ZooKeeper's own command-line client (zkCli, i.e.
// org.apache.zookeeper.ZooKeeperMain from the Debian package) against any
// ZooKeeper-compatible server. Each call is one JVM (about 0.5 s), bounded by
// a timeout and killed by process group.
//
// Two forms:
//  - zkCli(connect, ['create', '/a', 'x']): the non-interactive form
//    `ZooKeeperMain -server H:P cmd args...`. The exit code is meaningful
//    (0 = success, 1 = the command failed, e.g. "Node does not exist").
//    zkCli prints results of reads on stdout and most status/error lines
//    ("Created /a", "Node does not exist: /a", "Insufficient permission : /a")
//    on stderr.
//  - zkCliBatch(connect, [cmd, cmd, ...]): without jline on the classpath,
//    ZooKeeperMain reads commands line by line from stdin, so many commands
//    share one JVM and one session. stdout and stderr go to the same file so
//    their order is kept (Java's System.out/err flush on every println), and
//    a `printwatches` command (client-side only, prints "printwatches is
//    on") separates the output of consecutive commands. The per-command exit
//    code is not available in this form. The batch ends with `quit`, which
//    closes the session (the one-command form exits without closing it, so
//    its session lingers on the server until it times out).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZK_CLASSPATH } from '../helpers/apache-zk.js';

export interface ZkCliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** log4j config that keeps the client quiet (only errors, on stderr). */
function quietLog4j(): string {
  const file = path.join(os.tmpdir(), 'quorate-zkcli-log4j-v2.properties');
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, 'log4j.rootLogger=ERROR, E\nlog4j.appender.E=org.apache.log4j.ConsoleAppender\n' +
      'log4j.appender.E.Target=System.err\nlog4j.appender.E.layout=org.apache.log4j.PatternLayout\n' +
      'log4j.appender.E.layout.ConversionPattern=log4j %p %c{1}: %m%n\n' +
      // ServiceUtils logs every exit at ERROR ("Exiting JVM with code 0").
      'log4j.logger.org.apache.zookeeper.util.ServiceUtils=OFF\n');
    fs.renameSync(tmp, file); // atomic: concurrent runs never see half a file
  }
  return file;
}

function javaArgs(connectString: string, props: string[] = []): string[] {
  return [
    '-Xmx64m', '-XX:TieredStopAtLevel=1', ...props,
    `-Dlog4j.configuration=file:${quietLog4j()}`,
    '-cp', ZK_CLASSPATH,
    'org.apache.zookeeper.ZooKeeperMain',
    '-server', connectString,
  ];
}

interface RunOpts { stdin?: string; timeoutMs: number; mergeOutput?: boolean }

function runJava(args: string[], opts: RunOpts): Promise<ZkCliResult> {
  return new Promise((resolve, reject) => {
    let outFd: number | undefined;
    let outFile: string | undefined;
    if (opts.mergeOutput) {
      outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zkcli-')), 'out.txt');
      outFd = fs.openSync(outFile, 'w+');
    }
    const child = spawn('java', args, {
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', outFd ?? 'pipe', outFd ?? 'pipe'],
      detached: true, // own process group, so the timeout can kill all of it
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, opts.timeoutMs);
    if (opts.stdin !== undefined) {
      child.stdin!.on('error', () => { /* EPIPE if the JVM died early */ });
      child.stdin!.end(opts.stdin);
    }
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (outFd !== undefined && outFile !== undefined) {
        fs.closeSync(outFd);
        stdout = fs.readFileSync(outFile, 'utf8');
        fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
      }
      if (timedOut) {
        reject(new Error(`zkCli ${args.slice(args.indexOf('-server')).join(' ')} timed out after ${opts.timeoutMs} ms\n` +
          `stdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * One zkCli command in its own JVM and session:
 * `java -cp ZK_CLASSPATH org.apache.zookeeper.ZooKeeperMain -server H:P cmd args...`.
 */
export async function zkCli(connectString: string, args: string[], timeoutMs = 20_000, props: string[] = []): Promise<ZkCliResult> {
  if (args.length === 0) throw new Error('zkCli: no command (use zkCliBatch for stdin mode)');
  return runJava([...javaArgs(connectString, props), ...args], { timeoutMs });
}

/** The JVM properties that make zkCli speak TLS with a client certificate (PEM stores), as ZooKeeper documents them. */
export function zkCliTlsProps(keyStorePem: string, trustStorePem: string): string[] {
  return [
    '-Dzookeeper.client.secure=true', '-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty',
    `-Dzookeeper.ssl.keyStore.location=${keyStorePem}`, '-Dzookeeper.ssl.keyStore.type=PEM',
    `-Dzookeeper.ssl.trustStore.location=${trustStorePem}`, '-Dzookeeper.ssl.trustStore.type=PEM',
  ];
}

const MARKER_CMD = 'printwatches';
const MARKER_RE = /^printwatches is (on|off)$/;

export interface ZkCliBatchResult {
  /** Exit code of the JVM (that of the last command). */
  code: number | null;
  /** Output (stdout and stderr interleaved) of each command, in order, without watch events. */
  outputs: string[];
  /** "WatchedEvent ..." lines seen anywhere in the run, in order. */
  events: string[];
  /** The whole merged output. */
  raw: string;
}

/**
 * Many zkCli commands in one JVM and one session, read from stdin.
 * `-waitforconnection` makes the first command wait for the session.
 * Commands must not contain newlines.
 */
export async function zkCliBatch(connectString: string, commands: string[], timeoutMs = 30_000): Promise<ZkCliBatchResult> {
  for (const c of commands) if (/[\r\n]/.test(c)) throw new Error(`zkCliBatch: newline in command ${JSON.stringify(c)}`);
  // `quit` closes the session; at end of input zkCli would just exit the JVM
  // and leave its session (and ephemerals) to expire after 30 s.
  const stdin = [MARKER_CMD, ...commands.flatMap((c) => [c, MARKER_CMD]), 'quit'].join('\n') + '\n';
  const args = [...javaArgs(connectString), '-waitforconnection', '-timeout', String(Math.min(10_000, Math.floor(timeoutMs / 2)))];
  const r = await runJava(args, { stdin, timeoutMs, mergeOutput: true });
  const events: string[] = [];
  const chunks: string[][] = [];
  let current: string[] | null = null; // null until the first marker (banner, connection event)
  for (const line of r.stdout.split('\n')) {
    if (line === 'WATCHER::') continue;
    if (line.startsWith('WatchedEvent ')) { events.push(line); continue; }
    if (MARKER_RE.test(line)) { current = []; chunks.push(current); continue; }
    if (current !== null) current.push(line);
  }
  // chunks[i] follows marker i, i.e. holds the output of commands[i]; the last marker has nothing after it.
  const outputs = commands.map((_, i) => (chunks[i] ?? []).join('\n').replace(/^\n+|\n+$/g, ''));
  if (chunks.length !== commands.length + 1) {
    throw new Error(`zkCliBatch: expected ${commands.length + 1} markers, saw ${chunks.length} (exit ${r.code})\n${r.stdout}`);
  }
  return { code: r.code, outputs, events, raw: r.stdout };
}
