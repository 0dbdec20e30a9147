// The README's narrated tour: scripts/demo.sh starts `quorate demo` (quorum,
// journal nodes, two instances of the example key-value service and their
// controllers), uses the quorum with `quorate zk`, writes on the active
// instance, kills it with -9 (the other takes over with the data), watches
// the demo start it again as standby, and fails over back by hand. Run with
// --once on a free block of ports; its output must show each step.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePortBlockForTest } from '../helpers/ports.js';
import { runBounded } from '../helpers/run-bounded.js';

const ROOT = path.resolve(__dirname, '../..');
/** The demo's ports: base..base+21. */
const BLOCK_PORTS = 22;

const freeBase = () => freePortBlockForTest(BLOCK_PORTS);

describe('scripts/demo.sh', () => {
  it('tours the quorum, writes on the active, survives its kill -9 with the data, gets the killed one back as standby, fails over back; exits with --once', async () => {
    const base = await freeBase();
    const r = await runBounded('bash', ['scripts/demo.sh', '--once', `--port=${base}`], 240_000, { cwd: ROOT, env: { ...process.env, QUORATE_DEMO_NO_BUILD: '1' } });
    const report = `demo exited ${r.code ?? r.signal} in ${r.ms} ms\n${r.stdout}\n${r.stderr}`;
    expect(r.code, report).toBe(0);
    expect(r.stdout).toContain(`127.0.0.1:${base},127.0.0.1:${base + 1},127.0.0.1:${base + 2}`);
    expect(r.stdout).toMatch(/leader +id \d +epoch \d+ .*learners synced 2\/2/);
    expect(r.stdout).toContain('Created /demo/item-0000000000');
    expect(r.stdout).toContain('hello from quorate');
    // Writes on the active are acknowledged with their journal txid; a standby refuses and names the active.
    const m = /== kill -9 of the active service \((a|b), pid (\d+)\)/.exec(r.stdout);
    expect(m, report).not.toBeNull();
    const [killed, pid] = [m![1], m![2]];
    const other = killed === 'a' ? 'b' : 'a';
    const before = r.stdout.slice(0, m!.index);
    expect(before).toMatch(/\{"txid":"\d+","epoch":\d+\} \[HTTP 200\]/);
    expect(before).toContain(`written on ${killed} [HTTP 200]`);
    expect(before).toMatch(/"active":"http:\/\/127\.0\.0\.1:\d+"\} \[HTTP 503\]/);
    // The other takes over and still has what was written on the killed one; it takes new writes.
    const after = r.stdout.slice(m!.index);
    expect(after).toMatch(new RegExp(`^${other}\\s+ACTIVE\\s+healthy`, 'm'));
    expect(after).toContain(`written on ${killed} [HTTP 200]`);
    expect(after).toMatch(new RegExp(`/kv/after\\n\\{"txid":"\\d+","epoch":\\d+\\} \\[HTTP 200\\]`));
    // The demo started the killed instance again; it came back standby and caught up.
    expect(after).toContain(`service ${killed} (pid ${pid}) was killed by SIGKILL; starting it again`);
    expect(after).toMatch(new RegExp(`started service ${killed} again: pid (?!${pid}\\b)\\d+`));
    expect(after).toContain(`written on ${other} after ${killed} died [HTTP 200]`);
    // The manual failover back, and exactly one active at the end.
    expect(after).toContain(`${killed} is active (epoch`);
    const tail = after.slice(after.lastIndexOf('$ quorate status'));
    expect(tail).toMatch(new RegExp(`^${killed}\\s+ACTIVE\\s+healthy`, 'm'));
    expect(tail.match(/ACTIVE/g)).toHaveLength(1);
    expect(tail).toContain(`written on ${killed} again`);
    expect(tail).toMatch(/stopped 10 processes/);
  }, 250_000);

  it('refuses a bad --port with exit 2', async () => {
    const r = await runBounded('bash', ['scripts/demo.sh', '--once', '--port=80'], 20_000, { cwd: ROOT, env: { ...process.env, QUORATE_DEMO_NO_BUILD: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port must be in 1024..60000/);
  });
});
