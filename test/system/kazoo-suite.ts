// kazoo (python3-kazoo 2.8 from Debian) recipes against a ZooKeeper-compatible
// server. Each script in test/system/kazoo/ prints "OK <name>" and exits 0,
// or prints "FAIL <name>: ..." and exits non-zero. Debian's kazoo is
// importable only by Debian's /usr/bin/python3 (ANCHORS pitfall 5), so that
// interpreter is used explicitly whatever `python3` is on PATH.
import { missingTool } from '../helpers/ports.js';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

export const DEBIAN_PYTHON = '/usr/bin/python3';
const KAZOO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kazoo');

export function kazooAvailable(): boolean {
  return fs.existsSync(DEBIAN_PYTHON) && fs.existsSync('/usr/lib/python3/dist-packages/kazoo/client.py');
}

export interface ScriptResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Run one kazoo script with the connect string, killed (process group) after timeoutMs. */
export function runKazooScript(script: string, connectString: string, timeoutMs = 60_000): Promise<ScriptResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(DEBIAN_PYTHON, ['-u', path.join(KAZOO_DIR, script), connectString], {
      cwd: KAZOO_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stdout += `\n[killed after ${timeoutMs} ms]`;
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
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
