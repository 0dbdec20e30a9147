// kazoo (python3-kazoo 2.8 from Debian) recipes against a ZooKeeper-compatible
// server. Each script in test/system/kazoo/ prints "OK <name>" and exits 0,
// or prints "FAIL <name>: ..." and exits non-zero. Debian's kazoo is
// importable only by Debian's /usr/bin/python3 (ANCHORS pitfall 5), so that
// interpreter is used explicitly whatever `python3` is on PATH.
import { missingTool } from '../helpers/ports.js';
import { runBounded, type BoundedRun } from '../helpers/run-bounded.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

export const DEBIAN_PYTHON = '/usr/bin/python3';
const KAZOO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kazoo');

export function kazooAvailable(): boolean {
  return fs.existsSync(DEBIAN_PYTHON) && fs.existsSync('/usr/lib/python3/dist-packages/kazoo/client.py');
}

export type ScriptResult = BoundedRun;

/** Run one kazoo script with the connect string, killed (process group) after timeoutMs. */
export function runKazooScript(script: string, connectString: string, timeoutMs = 60_000, extraArgs: string[] = []): Promise<ScriptResult> {
  return runBounded(DEBIAN_PYTHON, ['-u', path.join(KAZOO_DIR, script), connectString, ...extraArgs], timeoutMs, {
    cwd: KAZOO_DIR,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '' },
  });
}

const SCRIPTS: Array<{ script: string; title: string }> = [
  { script: 'lock.py', title: 'Lock: two clients contend, mutual exclusion, hand-over on release and on session close' },
  { script: 'election.py', title: 'Election: one leader; leader steps down or loses its session, another is elected' },
  { script: 'watches.py', title: 'DataWatch, ChildrenWatch and raw one-shot watches see every update' },
  { script: 'transaction.py', title: 'transaction(): commit applies all ops; a failing op rolls back all, per-op errors' },
  { script: 'session.py', title: 'session expiry (second client takes the session id, then closes): LOST, ephemerals gone, new session' },
];

export function runKazooSuite(getConnectString: () => string): void {
  describe.skipIf(missingTool(kazooAvailable()))('kazoo (python3-kazoo)', () => {
    for (const { script, title } of SCRIPTS) {
      it(title, async () => {
        const name = script.replace(/\.py$/, '');
        const r = await runKazooScript(script, getConnectString(), 60_000);
        const report = `${script} exited ${r.code ?? r.signal} in ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
        expect(r.code, report).toBe(0);
        expect(r.stdout, report).toMatch(new RegExp(`^OK ${name}\\b`, 'm'));
      }, 70_000);
    }
  });
}
