// Commands (health checks, hooks, fencing) run in their own process group
// and the whole group is killed at the deadline: Node's own spawn timeout
// kills only the direct child, so `sh -c "sleep 30 & sleep 30"` would leave
// its children behind (TRAPS.md, controller).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { describeCommandResult, runCommand } from '../../../src/io/run-command.js';

function alive(marker: string): number {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0; // pgrep exits 1 when nothing matches
  }
}

describe('runCommand', () => {
  it('kills the whole process group at the deadline, grandchildren included', async () => {
    const marker = `quorate-rc-test-${process.pid}-${Date.now()}`;
    // Two grandchildren with the marker on their command lines, and a shell waiting for them.
    const r = await runCommand(`sh -c 'sleep 30; : ${marker}' & sh -c 'sleep 30; : ${marker}' & wait`, { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(describeCommandResult(r)).toMatch(/timed out after \d+ ms \(process group killed\)/);
    await new Promise((res) => setTimeout(res, 100));
    expect(alive(marker)).toBe(0);
  });

  it('reports the exit code and the last line of output; a missing shell command is exit 127', async () => {
    const ok = await runCommand('echo fine', { timeoutMs: 5000 });
    expect(ok).toMatchObject({ code: 0, timedOut: false, stdout: 'fine\n' });
    const bad = await runCommand('echo first >&2; echo "no power switch" >&2; exit 3', { timeoutMs: 5000 });
    expect(describeCommandResult(bad)).toBe('exit 3: no power switch');
    const missing = await runCommand('/nonexistent/quorate-probe', { timeoutMs: 5000 });
    expect(missing.code).toBe(127);
  });

  it('passes the environment it is given', async () => {
    const r = await runCommand('printf %s "$QUORATE_ROLE/$QUORATE_FENCING_TOKEN"', { timeoutMs: 5000, env: { QUORATE_ROLE: 'active', QUORATE_FENCING_TOKEN: '4294967301' } });
    expect(r.stdout).toBe('active/4294967301');
  });
});
