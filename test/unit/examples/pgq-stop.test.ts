// pgq.sh's stop of a PostgreSQL whose postmaster was killed: pg_ctl status
// still says "running" (kill -0 passes a zombie), the zombie is reaped a moment
// later, and pg_ctl stop then finds no one to signal. That is a stopped server,
// not one that "does not stop" (a to-standby hook that failed there left the
// old primary down in CI). The script's own functions run against a fake
// pg_ctl that answers exactly so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = path.resolve(__dirname, '../../../examples/postgresql/pgq.sh');
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

/** The script's functions, without its main part (which parses arguments and a configuration). */
function functions(names: string[]): string {
  const text = fs.readFileSync(SCRIPT, 'utf8');
  return names.map((n) => {
    const start = text.search(new RegExp(`^${n}\\(\\) \\{`, 'm'));
    if (start < 0) throw new Error(`pgq.sh has no function ${n}`);
    const oneLine = text.slice(start, text.indexOf('\n', start));
    if (oneLine.trimEnd().endsWith('}')) return oneLine;
    return text.slice(start, text.indexOf('\n}\n', start) + 2);
  }).join('\n');
}

/** A pid no process has: a child that has exited and been reaped. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

/** stop_pg with `pgCtl` as pg_ctl's body and `pid` in postmaster.pid. */
function stopWith(pgCtl: string, pid: number): { code: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgq-stop-'));
  dirs.push(dir);
  const bin = path.join(dir, 'bin');
  const data = path.join(dir, 'data');
  fs.mkdirSync(bin);
  fs.mkdirSync(data);
  fs.writeFileSync(path.join(bin, 'pg_ctl'), `#!/bin/sh\n${pgCtl}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(data, 'postmaster.pid'), `${pid}\n${data}\n`);
  const body = [
    'log() { printf "log: %s\\n" "$*"; }',
    'die() { printf "die %s: %s\\n" "$1" "$2"; exit "$1"; }',
    functions(['pg', 'postmaster_pid', 'proc_state', 'running', 'stop_pg']),
    'stop_pg; echo "stop_pg returned $?"',
  ].join('\n');
  const r = spawnSync('bash', ['-c', body], { env: { ...process.env, PGQ_BINDIR: bin, PGQ_PGDATA: data, PGQ_STATE_DIR: dir }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('pgq.sh stop_pg', () => {
  // status: ok (kill -0 passed the zombie); stop: nobody left to signal.
  const PG_CTL = 'case "$1" in status) exit 0 ;; stop) echo "pg_ctl: could not send stop signal (PID: 1): No such process" >&2; exit 1 ;; esac';

  it('a postmaster that status still reports but that is gone is stopped, not "does not stop"', () => {
    const r = stopWith(PG_CTL, deadPid());
    expect(r.out).toContain('stop_pg returned 0');
    expect(r.out).not.toContain('does not stop');
    expect(r.code).toBe(0);
  });

  it('a postmaster that is there and does not stop still fails the hook', () => {
    // This test's own process stands in for a live postmaster that ignores pg_ctl.
    const r = stopWith(PG_CTL, process.pid);
    expect(r.out).toContain('stopping PostgreSQL (fast)');
    expect(r.out).toContain('does not stop');
    expect(r.code).toBe(1);
  });
});
