// Round trips of the wire and disk codecs over generated inputs (fast-check):
// jute primitives, every request shape, transactions, and whole snapshots.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JuteError, JuteReader, JuteWriter } from '../../../src/proto/jute.js';
import { OpCode } from '../../../src/proto/zk-constants.js';
import { decodeRequest, encodeRequest, decodeResponse, encodeResponse, type ZkRequest, type ZkResponse } from '../../../src/proto/zk-records.js';
import { decodeLoggedTxn, deserializeTree, encodeLoggedTxn, serializeTree } from '../../../src/proto/txn-codec.js';
import type { LoggedTxn, Txn } from '../../../src/core/zk/txn.js';
import { DataTree } from '../../../src/core/zk/data-tree.js';

const long = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
/** zxids are unsigned 64-bit (an epoch may pass 2^31). */
const zxid64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const int = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const path = fc.array(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 4 }).map((p) => '/' + p.join('/'));
const data = fc.option(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), { nil: null });
const acl = fc.array(fc.record({ perms: fc.integer({ min: 0, max: 31 }), id: fc.record({ scheme: fc.constantFrom('world', 'digest', 'ip'), id: fc.string({ maxLength: 20 }) }) }), { maxLength: 3 });

describe('jute', () => {
  it('round-trips ints, longs (all 64 bits), booleans, buffers, strings and vectors', () => {
    fc.assert(fc.property(int, long, fc.boolean(), data, fc.option(fc.string(), { nil: null }), fc.array(fc.string()), (i, l, b, buf, s, v) => {
      const w = new JuteWriter(4);
      w.writeInt(i).writeLong(l).writeBool(b).writeBuffer(buf).writeString(s).writeStringVector(v);
      const r = new JuteReader(w.toBuffer());
      expect(r.readInt()).toBe(i);
      expect(r.readLong()).toBe(l);
      expect(r.readBool()).toBe(b);
      const got = r.readBuffer();
      expect(got === null ? null : Buffer.from(got)).toEqual(buf);
      expect(r.readString()).toBe(s);
      expect(r.readStringVector()).toEqual(v);
      expect(r.remaining).toBe(0);
    }));
  });

  it('keeps 64-bit values exact past 2^53 (no lossy Number)', () => {
    const w = new JuteWriter();
    const sessionId = (0xc8n << 56n) | 0x0123456789abcdn;
    w.writeLong(BigInt.asIntN(64, sessionId)).writeLong(0x1_0000_0001n);
    const r = new JuteReader(w.toBuffer());
    expect(BigInt.asUintN(64, r.readLong())).toBe(sessionId);
    expect(r.readLong()).toBe(0x1_0000_0001n);
  });

  it('refuses truncated input and lying lengths with JuteError, never reading out of bounds', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      const r = new JuteReader(Buffer.from(bytes));
      try {
        r.readInt(); r.readLong(); r.readBuffer(); r.readStringVector();
      } catch (e) {
        expect(e).toBeInstanceOf(JuteError);
      }
    }));
  });
});

const request: fc.Arbitrary<ZkRequest> = fc.oneof(
  fc.record({ type: fc.constant(OpCode.create), path, data, acl, flags: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ type: fc.constant(OpCode.createTTL), path, data, acl, flags: fc.constant(5), ttl: fc.bigInt({ min: 1n, max: 2n ** 40n - 1n }) }),
  fc.record({ type: fc.constant(OpCode.delete), path, version: int }),
  fc.record({ type: fc.constant(OpCode.getData), path, watch: fc.boolean() }),
  fc.record({ type: fc.constant(OpCode.setData), path, data, version: int }),
  fc.record({ type: fc.constant(OpCode.setACL), path, acl, version: int }),
  fc.record({ type: fc.constant(OpCode.addWatch), path, mode: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ type: fc.constant(OpCode.multi), ops: fc.array(fc.oneof(
    fc.record({ type: fc.constant(OpCode.create), path, data, acl, flags: fc.constant(0) }),
    fc.record({ type: fc.constant(OpCode.check), path, version: int }),
    fc.record({ type: fc.constant(OpCode.delete), path, version: int }),
  ), { maxLength: 5 }) }),
  fc.record({
    type: fc.constant(OpCode.setWatches2), relativeZxid: long, dataWatches: fc.array(path), existWatches: fc.array(path),
    childWatches: fc.array(path), persistentWatches: fc.array(path), persistentRecursiveWatches: fc.array(path),
  }),
) as fc.Arbitrary<ZkRequest>;

describe('ZooKeeper records', () => {
  it('every request encodes and decodes to itself', () => {
    fc.assert(fc.property(request, (req) => {
      const w = new JuteWriter();
      encodeRequest(w, req);
      const r = new JuteReader(w.toBuffer());
      const back = decodeRequest(req.type, r);
      expect(r.remaining).toBe(0);
      expect(JSON.stringify(back, big)).toBe(JSON.stringify(req, big));
    }), { numRuns: 300 });
  });

  it('multi responses round-trip, including the error results and the end marker', () => {
    const res: ZkResponse = { type: 'multi', results: [{ type: OpCode.create, path: '/a' }, { type: OpCode.error, err: -110 }, { type: OpCode.delete }] };
    const w = new JuteWriter();
    encodeResponse(w, res);
    expect(decodeResponse(OpCode.multi, new JuteReader(w.toBuffer()))).toEqual(res);
  });
});

function big(_k: string, v: unknown) {
  if (typeof v === 'bigint') return `${v}n`;
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return v;
  return v;
}

const txn: fc.Arbitrary<Txn> = fc.oneof(
  fc.record({ type: fc.constant('create' as const), path, data, acl, ephemeralOwner: long, parentCVersion: int, op: fc.constantFrom(1, 15, 19, 21) }),
  fc.record({ type: fc.constant('delete' as const), path }),
  fc.record({ type: fc.constant('setData' as const), path, data, version: int }),
  fc.record({ type: fc.constant('createSession' as const), timeoutMs: fc.nat(), passwd: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)) }),
  fc.record({ type: fc.constant('error' as const), err: int }),
);

describe('transactions and snapshots', () => {
  it('logged transactions round-trip, multi included', () => {
    const logged = fc.record({
      hdr: fc.record({ sessionId: long, cxid: int, zxid: zxid64, timeMs: fc.integer({ min: 0, max: 2 ** 45 }) }),
      txn: fc.oneof(txn, fc.array(txn, { maxLength: 4 }).map((txns) => ({ type: 'multi' as const, txns }))),
    });
    fc.assert(fc.property(logged, (t) => {
      expect(decodeLoggedTxn(encodeLoggedTxn(t as LoggedTxn))).toEqual(t);
    }), { numRuns: 300 });
  });

  it('a snapshot restores the exact tree, stats and sessions', () => {
    fc.assert(fc.property(fc.array(fc.tuple(path, data), { maxLength: 30 }), (nodes) => {
      const tree = new DataTree();
      let zxid = 0n;
      tree.apply({ sessionId: 5n, cxid: 0, zxid: ++zxid, timeMs: 1 }, { type: 'createSession', timeoutMs: 4000, passwd: Buffer.alloc(16, 7) }, []);
      for (const [p, d] of nodes) {
        // create missing parents first, like a client would
        const parts = p.split('/').slice(1);
        for (let i = 1; i <= parts.length; i++) {
          const q = '/' + parts.slice(0, i).join('/');
          if (tree.get(q)) continue;
          const parent = tree.get(q.slice(0, Math.max(1, q.lastIndexOf('/'))))!;
          tree.apply({ sessionId: 5n, cxid: 0, zxid: ++zxid, timeMs: 2 }, {
            type: 'create', path: q, data: d, acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }],
            ephemeralOwner: i === parts.length && zxid % 3n === 0n ? 5n : 0n, parentCVersion: parent.cversion + 1, op: 1,
          }, []);
        }
      }
      const back = deserializeTree(serializeTree(tree));
      expect(back.lastZxid).toBe(tree.lastZxid);
      expect([...back.sessions]).toEqual([...tree.sessions]);
      expect(back.ephemerals).toEqual(tree.ephemerals);
      const dump = (t: DataTree) => [...t.nodes.entries()].map(([p, n]) => [p, { ...n, children: [...n.children].sort() }]).sort();
      expect(dump(back)).toEqual(dump(tree));
    }), { numRuns: 100 });
  });
});
