// Fencing's verdicts, apart from its I/O: what a kill method's raw outcome
// counts for (fenceVerdict: a shell command's exit 0, an http answer below 300,
// each only once the target is seen down), what the looks at the target say
// (downVerdict: port closed, or back as standby; not down by the deadline), the
// down check's loop on an injected clock and probe (verifyDown), and the
// method chain of fenceInstance over injected evidence (the first method that
// counts wins; journal as the last resort). The simulator supplies the same
// evidence (src/sim/controller-sim.ts), so these rules decide there too.
import { describe, expect, it } from 'vitest';
import type { FenceConfig, InstanceConfig } from '../../../src/config/controller-config.js';
import {
  downVerdict, FENCE_VERIFY_MS, fenceInstance, fenceVerdict, verifyDown,
  type DownIo, type DownObservation, type FenceEvidence, type KillMethod,
} from '../../../src/controller/fencing.js';
import type { CommandResult } from '../../../src/io/run-command.js';

const SHELL: KillMethod = { kind: 'shell', command: 'kill-it', timeoutMs: 1000 };
const HTTP: KillMethod = { kind: 'http', url: 'http://pdu/off', timeoutMs: 1000 };
const exited = (code: number | null, more: Partial<CommandResult> = {}): FenceEvidence => ({
  kind: 'command', result: { code, signal: null, timedOut: false, spawnError: null, stdout: '', stderr: '', ms: 5, ...more },
});
const target = (fencing: FenceConfig[], servicePort: number | null = 7000): InstanceConfig => ({
  id: 'b', host: 'host-b', adminPort: 1, servicePort, priority: 0, noFailover: false, health: [], hooks: null, resources: [], fencing,
});
const OPEN_ACTIVE: DownObservation = { portOpen: true, role: 'active' };
const CLOSED: DownObservation = { portOpen: false, role: null };

/** A clock that moves only when slept on, and a probe answering from a script (its last answer repeated). */
function fakeDown(answers: DownObservation[]): DownIo & { looks: number } {
  let t = 0;
  const io = {
    looks: 0,
    now: () => t,
    sleep: async (ms: number) => { t += ms; },
    probeDown: async () => answers[Math.min(io.looks++, answers.length - 1)],
  };
  return io;
}

describe('fenceVerdict', () => {
  it('a shell command counts, once verified, only when it exited 0', () => {
    expect(fenceVerdict(SHELL, exited(0))).toEqual({ ok: 'verify', what: 'shell: exit 0' });
    expect(fenceVerdict(SHELL, exited(1, { stderr: 'no such host' }))).toEqual({ ok: false, reason: 'shell: exit 1: no such host' });
    expect(fenceVerdict(SHELL, exited(null, { signal: 'SIGKILL' }))).toEqual({ ok: false, reason: 'shell: killed by SIGKILL' });
    expect(fenceVerdict(SHELL, exited(null, { timedOut: true, signal: 'SIGKILL', ms: 1000 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/^shell: timed out after 1000 ms/) });
    expect(fenceVerdict(SHELL, exited(null, { spawnError: 'EAGAIN' }))).toEqual({ ok: false, reason: 'shell: could not start: EAGAIN' });
    expect(fenceVerdict(SHELL, { kind: 'http-answer', status: 200 }).ok).toBe(false);
  });

  it('an http request counts, once verified, only when answered below 300', () => {
    expect(fenceVerdict(HTTP, { kind: 'http-answer', status: 200 })).toEqual({ ok: 'verify', what: 'http: 200' });
    expect(fenceVerdict(HTTP, { kind: 'http-answer', status: 204 })).toEqual({ ok: 'verify', what: 'http: 204' });
    expect(fenceVerdict(HTTP, { kind: 'http-answer', status: 302 })).toEqual({ ok: false, reason: 'http: POST http://pdu/off answered 302' });
    expect(fenceVerdict(HTTP, { kind: 'http-answer', status: 503 })).toEqual({ ok: false, reason: 'http: POST http://pdu/off answered 503' });
    expect(fenceVerdict(HTTP, { kind: 'http-error', error: 'ECONNREFUSED' })).toEqual({ ok: false, reason: 'http: POST http://pdu/off: ECONNREFUSED' });
    expect(fenceVerdict(HTTP, exited(0)).ok).toBe(false);
  });
});

describe('downVerdict', () => {
  it('without a servicePort there is nothing to check: it counts, said unverified', () => {
    expect(downVerdict(target([], null), 'shell: exit 0', [], false)).toEqual({ ok: true, detail: 'shell: exit 0 (not verified: no servicePort configured)' });
  });

  it('down once the port was seen closed or the service said standby; undecided before the deadline, not down after it', () => {
    const t = target([]);
    expect(downVerdict(t, 'k', [], false)).toBeNull();
    expect(downVerdict(t, 'k', [OPEN_ACTIVE], false)).toBeNull();
    expect(downVerdict(t, 'k', [OPEN_ACTIVE, { portOpen: true, role: null }], false)).toBeNull();
    expect(downVerdict(t, 'k', [OPEN_ACTIVE, CLOSED], false)).toEqual({ ok: true, detail: 'k; port 7000 is closed' });
    expect(downVerdict(t, 'k', [OPEN_ACTIVE, CLOSED], true)).toEqual({ ok: true, detail: 'k; port 7000 is closed' });
    expect(downVerdict(t, 'k', [{ portOpen: true, role: 'standby' }], false)).toEqual({ ok: true, detail: 'k; it came back standby' });
    expect(downVerdict(t, 'k', [OPEN_ACTIVE], true)).toEqual({ ok: false, reason: 'k, but host-b:7000 still accepts connections and does not say standby' });
    expect(downVerdict(t, 'k', [{ portOpen: true, role: null }], true)?.ok).toBe(false);
  });
});

describe('verifyDown', () => {
  it('looks every 100 ms until the port closes', async () => {
    const io = fakeDown([OPEN_ACTIVE, OPEN_ACTIVE, CLOSED]);
    expect(await verifyDown(target([]), 'shell: exit 0', io)).toEqual({ ok: true, detail: 'shell: exit 0; port 7000 is closed' });
    expect(io.looks).toBe(3);
    expect(io.now()).toBe(200);
  });

  it('gives up at its deadline while the service still accepts and says active', async () => {
    const io = fakeDown([OPEN_ACTIVE]);
    const r = await verifyDown(target([]), 'shell: exit 0', io);
    expect(r.ok).toBe(false);
    expect(io.looks).toBe(FENCE_VERIFY_MS / 100);
  });

  it('never looks without a servicePort', async () => {
    const io = fakeDown([OPEN_ACTIVE]);
    expect((await verifyDown(target([], null), 'x', io)).ok).toBe(true);
    expect(io.looks).toBe(0);
  });
});

describe('fenceInstance over injected evidence', () => {
  const crumb = { instance: 'b', address: 'host-b:1', epoch: 1, token: '1' };
  const fence = (t: InstanceConfig, evidence: FenceEvidence[], down: DownIo, hasJournal = false) => {
    const tried: [string, boolean][] = [];
    let k = 0;
    return fenceInstance({
      service: 's', target: t, crumb, token: '2', admin: { adminToken: null, tls: null }, hasJournal,
      run: async () => evidence[k++], down, onAttempt: (m, ok) => tried.push([m, ok]),
    }).then((r) => ({ r, tried }));
  };

  it('a kill that exits 0 counts once the target is seen down', async () => {
    const { r, tried } = await fence(target([SHELL]), [exited(0)], fakeDown([OPEN_ACTIVE, CLOSED]));
    expect(r).toEqual({ ok: true, detail: 'shell: exit 0; port 7000 is closed' });
    expect(tried).toEqual([['shell', true]]);
  });

  it('a kill that exits 0 while the target stays up and active does not count: the next method is tried', async () => {
    const io = fakeDown([OPEN_ACTIVE]);
    const { r, tried } = await fence(target([SHELL, { kind: 'journal', timeoutMs: 0 }]), [exited(0)], io, true);
    expect(r.ok).toBe(true);
    expect(r.ok && r.detail).toMatch(/^fenced by the journal epoch only \(shell: exit 0, but host-b:7000 still accepts/);
    expect(tried).toEqual([['shell', false], ['journal', true]]);
    expect(io.looks).toBe(FENCE_VERIFY_MS / 100);
  });

  it('a kill that fails is not verified and does not count, even with the target down', async () => {
    const io = fakeDown([CLOSED]);
    const { r } = await fence(target([SHELL, HTTP]), [exited(1), { kind: 'http-error', error: 'The operation was aborted due to timeout' }], io);
    expect(r).toEqual({ ok: false, reason: 'every fencing method failed: shell: exit 1; http: POST http://pdu/off: The operation was aborted due to timeout' });
    expect(io.looks).toBe(0);
  });

  it('the first method that counts wins', async () => {
    const { r, tried } = await fence(target([HTTP, SHELL]), [{ kind: 'http-answer', status: 500 }, exited(0)], fakeDown([{ portOpen: true, role: 'standby' }]));
    expect(r).toEqual({ ok: true, detail: 'shell: exit 0; it came back standby' });
    expect(tried).toEqual([['http', false], ['shell', true]]);
  });
});
