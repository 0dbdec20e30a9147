// zkServer.sh's job on one host: `quorate quorum|journal|controller start
// --daemon` returns once the process answers, a second start changes
// nothing, `status` tells running / stopped / stale / not answering with LSB
// exit codes, `stop` says what it did, and a start that fails reports the
// log's last lines and leaves nothing running. Real processes on 127.0.0.1.
import { execFile, spawnSync } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt } from '../helpers/cli-process.js';
import { freePort } from '../helpers/ports.js';
import { pidAlive } from '../../src/io/process-info.js';

let dir = '';
let config = '';
const started = new Set<number>();

function quorateAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 40_000 }, (err, stdout, stderr) => {
    resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
  }));
}

function quorate(args: string[], timeoutMs = 40_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const pidOf = (name: string) => Number(fs.readFileSync(path.join(dir, 'run', `${name}.pid`), 'utf8'));
// A stopped daemon's parent exited long ago: until init reaps it, a zombie is not alive.
const alive = pidAlive;

beforeAll(async () => {
  ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-daemon-'));
  const [c1, c2, c3, p1, p2, p3, e1, e2, e3, j1, admin, svc] = await Promise.all(Array.from({ length: 12 }, () => freePort()));
  config = path.join(dir, 'cluster.yaml');
  fs.writeFileSync(config, `cluster: daemon-test
runDir: run
quorum:
  dataDir: data/quorum-{id}
  servers:
    - { id: 1, host: 127.0.0.1, clientPort: ${c1}, peerPort: ${p1}, electionPort: ${e1} }
    - { id: 2, host: 127.0.0.1, clientPort: ${c2}, peerPort: ${p2}, electionPort: ${e2} }
    - { id: 3, host: 127.0.0.1, clientPort: ${c3}, peerPort: ${p3}, electionPort: ${e3} }
journal:
  dataDir: data/journal-{id}
  nodes:
    - { id: 1, host: 127.0.0.1, port: ${j1} }
controller:
  sessionTimeoutMs: 6000
services:
  - name: orders
    hooks: { toActive: { command: "true" }, toStandby: { command: "true" } }
    instances:
      - { id: a, host: 127.0.0.1, adminPort: ${admin}, servicePort: ${svc} }
`);
});

afterAll(() => {
  for (const f of fs.existsSync(path.join(dir, 'run')) ? fs.readdirSync(path.join(dir, 'run')) : []) {
    if (f.endsWith('.pid')) started.add(Number(fs.readFileSync(path.join(dir, 'run', f), 'utf8')));
  }
  for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('daemon control on one host', () => {
  it('starts a quorum server in the background once it answers; a second start changes nothing', () => {
    const r = quorate(['quorum', 'start', '--config', config, '--id', '1', '--daemon']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^started quorum server 1 \(pid \d+\) in \d+ ms, role electing; log .*quorum-1\.log\n$/);
    const pid = pidOf('quorum-1');
    started.add(pid);
    expect(alive(pid)).toBe(true);
    const again = quorate(['quorum', 'start', '--config', config, '--id', '1', '--daemon']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`quorum server 1 is already running (pid ${pid}); nothing changed\n`);
    expect(pidOf('quorum-1')).toBe(pid);
  });

  it('status says the role once a quorum forms, as text and JSON, exit 0', () => {
    for (const id of ['2', '3']) {
      expect(quorate(['quorum', 'start', '--config', config, '--id', id, '--daemon']).code).toBe(0);
      started.add(pidOf(`quorum-${id}`));
    }
    const roles: string[] = [];
    for (const id of ['1', '2', '3']) {
      const r = quorate(['quorum', 'status', '--config', config, '--id', id, '--json', '--wait-ms', '10000']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout) as { state: string; pid: number; role: string; uptimeMs: number };
      expect(s.state).toBe('running');
      expect(s.pid).toBe(pidOf(`quorum-${id}`));
      roles.push(s.role);
    }
    // Elected by now or soon: wait for one leader through the text form.
    const deadline = Date.now() + 15_000;
    let text = '';
    while (Date.now() < deadline) {
      text = ['1', '2', '3'].map((id) => quorate(['quorum', 'status', '--config', config, '--id', id]).stdout).join('');
      if ((text.match(/role leader/g) ?? []).length === 1 && (text.match(/role follower/g) ?? []).length === 2) break;
    }
    expect(text).toMatch(/^quorum server \d: running \(pid \d+, up \d+s\), role (leader|follower), zxid 0x[0-9a-f]+$/m);
    expect((text.match(/role leader/g) ?? []).length).toBe(1);
  });

  it('a hung process is running but not answering (exit 4); a killed one leaves a stale pid file (exit 1) that start replaces', () => {
    const pid = pidOf('quorum-3');
    process.kill(pid, 'SIGSTOP');
    try {
      const r = quorate(['quorum', 'status', '--config', config, '--id', '3']);
      expect(r.code).toBe(4);
      expect(r.stdout).toContain(`quorum server 3: running (pid ${pid}`);
      expect(r.stdout).toContain('NOT ANSWERING: no answer on its client port');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    const stale = quorate(['quorum', 'status', '--config', config, '--id', '3']);
    expect(stale.code).toBe(1);
    expect(stale.stdout).toBe(`quorum server 3: stopped (stale pid file: pid ${pid} is not running)\n`);
    const r = quorate(['quorum', 'start', '--config', config, '--id', '3', '--daemon']);
    expect(r.code).toBe(0);
    expect(pidOf('quorum-3')).not.toBe(pid);
    started.add(pidOf('quorum-3'));
  });

  it('a start that fails says why with the log\'s last lines and leaves nothing running', async () => {
    // Something else holds the journal node's port.
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(config, 'utf8').replace(/^runDir: run$/m, 'runDir: run-bad'));
    const port = Number(/port: (\d+) }\ncontroller/.exec(fs.readFileSync(config, 'utf8'))![1]);
    const squatter = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    let r: ReturnType<typeof quorate>;
    try {
      r = await quorateAsync(['journal', 'start', '--config', bad, '--id', '1', '--daemon']);
    } finally {
      squatter.close();
    }
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^journal node 1 exited with code 1 before it answered; last lines of .*journal-1\.log:\n/);
    expect(r.stderr).toContain('EADDRINUSE');
    expect(fs.existsSync(path.join(dir, 'run-bad', 'journal-1.pid'))).toBe(false);
    const status = quorate(['journal', 'status', '--config', bad, '--id', '1']);
    expect(status.code).toBe(3);
  });

  it('a bad configuration is refused before anything starts (exit 2)', () => {
    const r = quorate(['quorum', 'start', '--config', config, '--id', '9', '--daemon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no server has id 9');
  });

  it('a journal node and a controller start, report status and stop', () => {
    expect(quorate(['journal', 'start', '--config', config, '--id', '1', '--daemon']).code).toBe(0);
    const j = quorate(['journal', 'status', '--config', config, '--id', '1', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ kind: 'journal', id: '1', state: 'running', role: 'serving' });
    const c = quorate(['controller', 'start', '--config', config, '--service', 'orders', '--id', 'a', '--daemon']);
    expect(c.stdout).toMatch(/^started controller orders\/a \(pid \d+\)/);
    expect(c.code).toBe(0);
    const cs = quorate(['controller', 'status', '--config', config, '--service', 'orders', '--id', 'a', '--json']);
    expect(cs.code).toBe(0);
    // No service runs behind it: the controller answers, and its service is not made active.
    expect(JSON.parse(cs.stdout)).toMatchObject({ kind: 'controller', id: 'orders:a', state: 'running' });
    expect(JSON.parse(cs.stdout).role).not.toBe('active');
    // What `quorate cluster` asks each host: several processes in one command, one JSON line each, in the order asked.
    const local = quorate(['cluster', 'local-status', '--config', config, 'controller:orders:a', 'quorum:2', 'journal:1', 'quorum:1', 'quorum:7']);
    const lines = local.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.process)).toEqual(['controller:orders:a', 'quorum:2', 'journal:1', 'quorum:1', 'quorum:7']);
    expect(lines[0]).toMatchObject({ kind: 'controller', id: 'orders:a', state: 'running', pid: pidOf('controller-orders:a'), role: JSON.parse(cs.stdout).role });
    expect(lines[1]).toMatchObject({ kind: 'quorum', id: '2', state: 'running', pid: pidOf('quorum-2') });
    expect(['leader', 'follower']).toContain(lines[1].role);
    expect(lines[2]).toMatchObject({ kind: 'journal', id: '1', state: 'running', role: 'serving' });
    expect(lines[3]).toMatchObject({ kind: 'quorum', id: '1', state: 'running', pid: pidOf('quorum-1') });
    expect(String(lines[4].error)).toContain('no server has id 7');
    expect(local.code).toBe(1); // not every one named runs
    expect(quorate(['cluster', 'local-status', '--config', config, 'quorum:1', 'journal:1']).code).toBe(0);
    const bad = quorate(['cluster', 'local-status', '--config', config, 'quorum:1', 'zookeeper:1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"zookeeper:1": expected quorum:ID, journal:ID or controller:SERVICE:INSTANCE');
    const pid = pidOf('controller-orders:a');
    const stop = quorate(['controller', 'stop', '--config', config, '--service', 'orders', '--id', 'a']);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(new RegExp(`^stopped controller orders/a \\(pid ${pid}\\) in \\d+ ms\\n$`));
    expect(alive(pid)).toBe(false);
    expect(quorate(['controller', 'status', '--config', config, '--service', 'orders', '--id', 'a']).code).toBe(3);
  });

  it('stop takes every process down; stopping a stopped one says so', () => {
    const pids = ['quorum-1', 'quorum-2', 'quorum-3', 'journal-1'].map(pidOf);
    for (const id of ['1', '2', '3']) expect(quorate(['quorum', 'stop', '--config', config, '--id', id]).code).toBe(0);
    expect(quorate(['journal', 'stop', '--config', config, '--id', '1']).code).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const again = quorate(['quorum', 'stop', '--config', config, '--id', '1']);
    expect(again).toMatchObject({ code: 0, stdout: 'quorum server 1 is not running\n' });
    expect(fs.readdirSync(path.join(dir, 'run')).filter((f) => f.endsWith('.pid'))).toEqual([]);
  });
});
