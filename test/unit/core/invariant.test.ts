// A broken invariant stops the work with its name and the state that broke it:
// thrown as InvariantViolation (the simulator reports the schedule as failed),
// and in a daemon logged at level fatal before the process exits 70.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { invariant, invariantFailed, InvariantViolation, jsonSafe, setInvariantHandler } from '../../../src/core/invariant.js';
import { exitOnInvariantViolation, INVARIANT_EXIT_CODE } from '../../../src/io/invariant-exit.js';
import { WatchTable, WatchBit } from '../../../src/core/zk/watches.js';
import { EventType } from '../../../src/proto/zk-constants.js';

afterEach(() => setInvariantHandler(null));

describe('invariant', () => {
  it('does nothing while the condition holds, and builds no state then', () => {
    const state = vi.fn(() => ({ a: 1 }));
    invariant(true, 'zab.commit-in-order', state);
    expect(state).not.toHaveBeenCalled();
  });

  it('throws an InvariantViolation with the name and a JSON-safe copy of the state', () => {
    let thrown: unknown;
    try {
      invariant(false, 'journal.write-at-promise', () => ({ epoch: 3, zxid: 0x1_0000_0005n, bytes: new Uint8Array(7), set: new Set([1n]), map: new Map([['k', 2n]]) }));
    } catch (e) { thrown = e; }
    expect(thrown).toBeInstanceOf(InvariantViolation);
    const v = thrown as InvariantViolation;
    expect(v.invariant).toBe('journal.write-at-promise');
    expect(v.state).toEqual({ epoch: 3, zxid: '4294967301n', bytes: '<7 bytes>', set: ['1n'], map: [['k', '2n']] });
    expect(JSON.parse(JSON.stringify(v.state))).toEqual(v.state);
    expect(v.message).toContain('journal.write-at-promise');
    expect(v.message).toContain('4294967301n');
  });

  it('bounds the depth and width of what it copies', () => {
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 20; i++) { const next = {}; at.x = next; at = next; }
    expect(JSON.stringify(jsonSafe(deep, 0))).toContain('[…]');
    expect((jsonSafe(Array.from({ length: 500 }, (_, i) => i), 0) as unknown[]).length).toBe(50);
  });

  it('runs the installed handler before it throws', () => {
    const seen: string[] = [];
    setInvariantHandler((v) => seen.push(v.invariant));
    expect(() => invariantFailed('zk.apply-in-zxid-order', { zxid: 5n })).toThrow(InvariantViolation);
    expect(seen).toEqual(['zk.apply-in-zxid-order']);
  });

  it('a daemon logs it at level fatal, with the name and the state, and exits 70', () => {
    const logged: { o: Record<string, unknown>; msg: string }[] = [];
    const logger = { fatal: (o: Record<string, unknown>, msg: string) => logged.push({ o, msg }) };
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => { throw new Error(`exit ${code}`); }) as never);
    try {
      exitOnInvariantViolation(logger as never);
      expect(() => invariantFailed('controller.lease-before-side-effect', { step: 'toActive', leaseSentAt: 10 })).toThrow(`exit ${INVARIANT_EXIT_CODE}`);
      expect(exit).toHaveBeenCalledWith(70);
      expect(logged).toHaveLength(1);
      expect(logged[0].msg).toContain('controller.lease-before-side-effect');
      expect(logged[0].o).toMatchObject({ invariant: 'controller.lease-before-side-effect', state: { step: 'toActive', leaseSentAt: 10 } });
    } finally {
      exit.mockRestore();
    }
  });
});

describe('one-shot watches', () => {
  it('fire once: a second change notifies nobody until the watch is armed again (and a persistent one stays)', () => {
    const t = new WatchTable();
    t.add('/a', 1, WatchBit.DATA);
    t.add('/a', 2, WatchBit.PERSISTENT);
    const out: { watcher: number }[] = [];
    t.trigger('/a', EventType.NodeDataChanged, out as never);
    expect(out.map((f) => f.watcher).sort()).toEqual([1, 2]);
    expect(t.has('/a', 1, WatchBit.DATA)).toBe(false);
    out.length = 0;
    t.trigger('/a', EventType.NodeDataChanged, out as never);
    expect(out.map((f) => f.watcher)).toEqual([2]);
    t.add('/a', 1, WatchBit.DATA);
    out.length = 0;
    t.trigger('/a', EventType.NodeDataChanged, out as never);
    expect(out.map((f) => f.watcher).sort()).toEqual([1, 2]);
  });
});
