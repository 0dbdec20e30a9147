// The README's first command: scripts/demo.sh starts a three-server quorum,
// writes, kills the leader, writes again and restarts it. Run with --once on
// free ports; its output must show each step.
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBounded } from '../helpers/run-bounded.js';

const ROOT = path.resolve(__dirname, '../..');

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port whose client ports, peer ports (base+1000..1005), journal, service and controller ports (base+1100..1301) are all free. */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below freePort's range (20000-32000) and the kernel's ephemeral ports.
    const base = 10_000 + Math.floor(Math.random() * 8_000);
    const ports = [0, 1, 2, 1000, 1001, 1002, 1003, 1004, 1005, 1100, 1101, 1102, 1200, 1201, 1300, 1301].map((d) => base + d);
    const ok = await Promise.all(ports.map(bindable));
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free block of ports for the demo');
}

describe('scripts/demo.sh', () => {
  it('runs a quorum of three, survives the leader\'s kill -9; then two instances fail over on a kill -9 and back by hand; exits with --once', async () => {
    const base = await freeBase();
    const r = await runBounded('bash', ['scripts/demo.sh', '--once', `--port=${base}`], 170_000, { cwd: ROOT, env: { ...process.env, QUORATE_DEMO_NO_BUILD: '1' } });
    const report = `demo exited ${r.code ?? r.signal} in ${r.ms} ms\n${r.stdout}\n${r.stderr}`;
    expect(r.code, report).toBe(0);
    expect(r.stdout).toMatch(/leader +id \d +epoch 1 .*learners synced 2\/2/);
    expect(r.stdout).toContain('Created /demo/item-0000000001');
    expect(r.stdout).toMatch(/== kill -9 of the leader/);
    expect(r.stdout).toContain('written after the leader died');
    expect(r.stdout.match(/(leader|follower) +id \d +epoch 2 /g)?.length).toBeGreaterThanOrEqual(3);
    // The HA part: one active instance, the kill -9 of its service, the other takes over, a manual failover back.
    const m = /== kill -9 of the active service \((a|b)\)/.exec(r.stdout);
    expect(m, report).not.toBeNull();
    const killed = m![1];
    const other = killed === 'a' ? 'b' : 'a';
    const after = r.stdout.slice(m!.index);
    expect(after).toMatch(new RegExp(`^${other}\\s+ACTIVE\\s+healthy`, 'm'));
    expect(after).toMatch(new RegExp(`^${killed}\\s+standby\\s+unhealthy`, 'm'));
    expect(after).toContain(`${killed} is active (epoch`);
    const tail = after.slice(after.lastIndexOf('$ quorate status'));
    expect(tail).toMatch(new RegExp(`^${killed}\\s+ACTIVE\\s+healthy`, 'm'));
    expect(tail.match(/ACTIVE/g)).toHaveLength(1);
  }, 180_000);

  it('refuses a bad --port with exit 2', async () => {
    const r = await runBounded('bash', ['scripts/demo.sh', '--once', '--port=80'], 20_000, { cwd: ROOT, env: { ...process.env, QUORATE_DEMO_NO_BUILD: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port must be in 1024..60000/);
  });
});
