import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEdit, encodeEdit, KvState, type KvEdit } from '../../../examples/kv/kv-state.js';

const base = { instance: 'a', epoch: 3, seq: 0 };

describe('KvState', () => {
  it('applies puts, deletes and the active marker in txid order', () => {
    const s = new KvState();
    s.apply(1n, encodeEdit({ op: 'active', ...base, url: 'http://h:1' }));
    s.apply(2n, encodeEdit({ op: 'put', ...base, key: 'k', value: 'v' }));
    s.apply(3n, encodeEdit({ op: 'put', ...base, key: 'j', value: 'w' }));
    s.apply(4n, encodeEdit({ op: 'del', ...base, key: 'k' }));
    s.apply(5n, encodeEdit({ op: 'tick', ...base }));
    expect([...s.data]).toEqual([['j', 'w']]);
    expect(s.activeUrl).toBe('http://h:1');
    expect(s.appliedTxid).toBe(5n);
  });

  it('refuses a gap or a repeat (the caller applies each txid once, in order)', () => {
    const s = new KvState();
    expect(() => s.apply(2n, encodeEdit({ op: 'tick', ...base }))).toThrow(/edit 2 applied after 0/);
    s.apply(1n, encodeEdit({ op: 'tick', ...base }));
    expect(() => s.apply(1n, encodeEdit({ op: 'tick', ...base }))).toThrow(/edit 1 applied after 1/);
  });

  it('applies an undecodable edit as nothing, the same on every replica, and counts it', () => {
    const s = new KvState();
    s.apply(1n, Buffer.from('not json'));
    s.apply(2n, Buffer.from(JSON.stringify({ ...base, op: 'put', key: 'k' })));
    s.apply(3n, Buffer.from(JSON.stringify({ ...base, op: 'drop-table' })));
    expect(s.undecodable).toBe(3);
    expect(s.data.size).toBe(0);
    expect(s.appliedTxid).toBe(3n);
    // The older example service's edits ({instance, epoch, seq}) are ticks.
    expect(decodeEdit(Buffer.from(JSON.stringify(base)))).toEqual({ op: 'tick', ...base });
  });

  it('a snapshot restores the same state at the same txid', () => {
    const edit = fc.oneof(
      fc.record({ op: fc.constant('put' as const), key: fc.string({ maxLength: 3 }), value: fc.string() }),
      fc.record({ op: fc.constant('del' as const), key: fc.string({ maxLength: 3 }) }),
    );
    fc.assert(fc.property(fc.array(edit, { maxLength: 50 }), (edits) => {
      const s = new KvState();
      edits.forEach((e, i) => s.apply(BigInt(i + 1), encodeEdit({ ...base, ...e } as KvEdit)));
      const t = KvState.fromSnapshot(JSON.parse(JSON.stringify(s.snapshot())));
      expect([...t.data]).toEqual([...s.data]);
      expect(t.appliedTxid).toBe(s.appliedTxid);
    }));
  });
});
