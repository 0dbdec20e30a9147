// DataTree.apply replayed over a fuzzy snapshot meets nodes captured before or
// after the transaction at hand: each branch that only replay reaches.
import { describe, expect, it } from 'vitest';
import { DataTree } from '../../../src/core/zk/data-tree.js';
import type { Txn } from '../../../src/core/zk/txn.js';
import { OPEN_ACL_UNSAFE } from '../../../src/core/zk/acl.js';

function tree() {
  const t = new DataTree();
  let zxid = 0n;
  const apply = (txn: Txn, sessionId = 0n, at?: bigint) => {
    const z = at ?? ++zxid;
    if (z > zxid) zxid = z;
    return { zxid: z, r: t.apply({ sessionId, cxid: 0, zxid: z, timeMs: Number(z) }, txn, []) };
  };
  const create = (path: string, parentCVersion: number, owner = 0n, data: string | null = null): Txn =>
    ({ type: 'create', path, data: data === null ? null : Buffer.from(data), acl: OPEN_ACL_UNSAFE, ephemeralOwner: owner, parentCVersion, op: 1 });
  return { t, apply, create };
}

describe('DataTree replay over a fuzzy snapshot', () => {
  it('a create of a path that exists creates nothing but still raises the parent cversion and pzxid (setCversionPzxid)', () => {
    const { t, apply, create } = tree();
    apply(create('/p', 1));
    apply(create('/p/a', 1, 0n, 'kept'));
    // Replayed: the parent was captured before this create, the node after it.
    const { zxid } = apply(create('/p/a', 5, 0n, 'replayed'), 0n, 10n);
    expect(t.get('/p')).toMatchObject({ cversion: 5, pzxid: zxid });
    expect(t.get('/p/a')!.data?.toString()).toBe('kept');
    expect(t.get('/p')!.children).toEqual(new Set(['a']));
    // Not lower: a parent captured after the create keeps its own.
    apply(create('/p/a', 3, 0n, 'again'), 0n, 11n);
    expect(t.get('/p')).toMatchObject({ cversion: 5, pzxid: 10n });
  });

  it('a delete of a missing path still moves the parent pzxid, never back', () => {
    const { t, apply, create } = tree();
    apply(create('/p', 1));
    const { r } = apply({ type: 'delete', path: '/p/gone' }, 0n, 9n);
    expect(r.err).not.toBe(0);
    expect(t.get('/p')!.pzxid).toBe(9n);
    apply({ type: 'delete', path: '/p/gone' }, 0n, 4n);
    expect(t.get('/p')!.pzxid).toBe(9n);
    expect(t.get('/p')!.cversion).toBe(0);
  });

  it('a delete of a node captured with children (a later incarnation) drops them all, with their indexes', () => {
    const { t, apply, create } = tree();
    apply({ type: 'createSession', timeoutMs: 5000, passwd: Buffer.alloc(16) }, 7n);
    apply(create('/p', 1, 0n, 'xx'));
    apply(create('/p/q', 1, 0n, 'yyy'));
    apply(create('/p/q/e', 1, 7n, 'z'), 7n);
    const before = t.dataBytes;
    apply({ type: 'delete', path: '/p' });
    expect([...t.nodes.keys()].filter((p) => p.startsWith('/p'))).toEqual([]);
    expect(t.ephemerals.has(7n)).toBe(false);
    expect(t.dataBytes).toBe(before - 6);
    expect(t.get('/')!.children.has('p')).toBe(false);
  });

  it('gone ephemerals: a replayed closeSession deletes them (moving pzxid); a replayed delete forgets them', () => {
    const { t, apply, create } = tree();
    apply(create('/p', 1));
    apply(create('/q', 2));
    t.loadGoneEphemeral('/p/e', 7n);
    t.loadGoneEphemeral('/q/e', 7n);
    t.loadGoneEphemeral('/q/f', 8n);
    // /q/e was deleted explicitly, then re-created by another owner: closing 7 must not delete it again.
    apply({ type: 'delete', path: '/q/e' }, 0n, 20n);
    apply(create('/q/e', 1, 0n, 'other'), 0n, 21n);
    const { zxid } = apply({ type: 'closeSession' }, 7n, 22n);
    expect(t.get('/p')!.pzxid).toBe(zxid);
    expect(t.get('/q/e')!.data?.toString()).toBe('other');
    expect(t.goneEphemeralCount).toBe(1);
    apply({ type: 'closeSession' }, 8n, 23n);
    expect(t.get('/q')!.pzxid).toBe(23n);
    expect(t.goneEphemeralCount).toBe(0);
  });

  it('setData, setACL and check on a missing node change nothing', () => {
    const { t, apply } = tree();
    const before = JSON.stringify([...t.nodes.keys()]);
    expect(apply({ type: 'setData', path: '/nope', data: Buffer.from('x'), version: 1 }).r.err).not.toBe(0);
    expect(apply({ type: 'setACL', path: '/nope', acl: OPEN_ACL_UNSAFE, version: 1 }).r.err).not.toBe(0);
    expect(apply({ type: 'check', path: '/nope', version: 1 }).r.err).not.toBe(0);
    expect(JSON.stringify([...t.nodes.keys()])).toBe(before);
    expect(t.dataBytes).toBe(0);
  });
});
