// Apache Curator 5.4 recipes (Debian libcurator-{client,framework,recipes}-java)
// against a ZooKeeper-compatible server. CuratorSuite.java is compiled once
// with javac into a cache directory keyed by its content; each test is one
// JVM: `java CuratorSuite HOST:PORT <test>`, which prints "OK <test>" and
// exits 0, or "FAIL <test>: ..." and exits non-zero.
import { missingTool } from '../helpers/ports.js';
import { runBounded, type BoundedRun } from '../helpers/run-bounded.js';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ZK_CLASSPATH } from '../helpers/apache-zk.js';

const J = '/usr/share/java';
export const CURATOR_CLASSPATH = [
  'curator-client.jar', 'curator-framework.jar', 'curator-recipes.jar',
  'zookeeper.jar', 'zookeeper-jute.jar', 'guava.jar',
  'slf4j-api.jar', 'slf4j-simple.jar',
].map((j) => path.join(J, j));

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'curator', 'CuratorSuite.java');

export function curatorAvailable(): boolean {
  return CURATOR_CLASSPATH.every((j) => fs.existsSync(j)) && fs.existsSync('/usr/bin/javac');
}

/** Compile CuratorSuite.java unless a build of this exact source is cached; returns the classes directory. */
export function compileCuratorSuite(): string {
  const src = fs.readFileSync(SOURCE);
  const key = crypto.createHash('sha256').update(src).update(CURATOR_CLASSPATH.join(':')).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `quorate-curator-suite-${key}`);
  if (fs.existsSync(path.join(dir, 'CuratorSuite.class'))) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-curator-build-'));
  const r = spawnSync('javac', ['-nowarn', '-Xlint:none', '-encoding', 'UTF-8', '-d', tmp, '-cp', CURATOR_CLASSPATH.join(':'), SOURCE],
    { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL' });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(`javac CuratorSuite.java failed (${r.status ?? r.signal ?? r.error?.message}):\n${r.stdout}\n${r.stderr}`);
  }
  try {
    fs.renameSync(tmp, dir); // atomic publish; a concurrent build may have won the race
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'CuratorSuite.class'))) throw new Error(`could not publish the Curator build in ${dir}`);
  }
  return dir;
}

export type CuratorRun = BoundedRun;

/** `props`: more JVM properties (zkCliTlsProps for TLS, which also puts netty on the classpath). */
export function runCuratorTest(classesDir: string, connectString: string, test: string, timeoutMs = 60_000, props: string[] = []): Promise<CuratorRun> {
  const netty = props.length === 0 ? [] : ZK_CLASSPATH.split(':').filter((j) => j.includes('netty'));
  return runBounded('java', [
    '-Xmx128m', '-XX:TieredStopAtLevel=1', ...props,
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-Dorg.slf4j.simpleLogger.logFile=System.err',
    '-cp', [classesDir, ...CURATOR_CLASSPATH, ...netty].join(':'),
    'CuratorSuite', connectString, test,
  ], timeoutMs);
}

const TESTS: Array<{ test: string; title: string }> = [
  { test: 'leaderLatch', title: 'LeaderLatch: exactly one of two leads; leader closes, the other leads; leader session closes, a third leads' },
  { test: 'mutex', title: 'InterProcessMutex: mutual exclusion across two clients guarding a counter; re-entrancy' },
  { test: 'atomicLong', title: 'DistributedAtomicLong: concurrent increments from two clients add up; add, compareAndSet' },
  { test: 'curatorCache', title: 'CuratorCache (persistent recursive watch, addWatch) sees creates, changes, deletes at any depth' },
  { test: 'persistentNode', title: 'PersistentNode: ephemeral exists while running, recreated after session expiry, gone after close' },
];

export function runCuratorSuite(getConnectString: () => string): void {
  describe.skipIf(missingTool(curatorAvailable()))('Apache Curator 5.4', () => {
    let classes = '';
    beforeAll(() => { classes = compileCuratorSuite(); }, 120_000);

    for (const { test, title } of TESTS) {
      it(title, async () => {
        const r = await runCuratorTest(classes, getConnectString(), test, 60_000);
        const report = `CuratorSuite ${test} exited ${r.code ?? r.signal} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
        expect(r.code, report).toBe(0);
        expect(r.stdout, report).toMatch(new RegExp(`^OK ${test}\\b`, 'm'));
      }, 70_000);
    }
  });
}
