import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JuteReader } from '../../../src/proto/jute.js';
import { OpCode } from '../../../src/proto/zk-constants.js';
import { decodeRequest, readRequestHeader } from '../../../src/proto/zk-records.js';
import { encodeRequestFrame, FRAME_BYTES_MAX, FrameDecoder, FrameError, patchXid } from '../../../src/client/frame.js';

function frame(body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeInt32BE(body.length, 0);
  body.copy(b, 4);
  return b;
}

describe('FrameDecoder', () => {
  it('splits a stream cut anywhere into the same frames', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((b) => frame(Buffer.from(b))));
        const d = new FrameDecoder();
        const out: Buffer[] = [];
        let off = 0;
        for (let i = 0; off < stream.length; i++) {
          const n = cuts[i % cuts.length];
          out.push(...d.push(stream.subarray(off, off + n)));
          off += n;
        }
        expect(out.map((b) => b.toString('hex'))).toEqual(bodies.map((b) => Buffer.from(b).toString('hex')));
        expect(d.buffered).toBe(0);
      },
    ));
  });

  it('returns frames inside one chunk without copying', () => {
    const chunk = Buffer.concat([frame(Buffer.from('abc')), frame(Buffer.from('de'))]);
    const [a, b] = new FrameDecoder().push(chunk);
    expect(a.buffer).toBe(chunk.buffer);
    expect([a.toString(), b.toString()]).toEqual(['abc', 'de']);
  });

  it('accepts a frame of exactly the limit and refuses one byte more or a negative length', () => {
    const ok = new FrameDecoder(10);
    expect(ok.push(frame(Buffer.alloc(10)))[0].length).toBe(10);
    const big = Buffer.alloc(4);
    big.writeInt32BE(11, 0);
    expect(() => new FrameDecoder(10).push(big)).toThrow(FrameError);
    const neg = Buffer.alloc(4);
    neg.writeInt32BE(-1, 0);
    expect(() => new FrameDecoder().push(neg)).toThrow(/outside/);
    // Split header: the check happens once all 4 bytes are in.
    const d = new FrameDecoder();
    const huge = Buffer.alloc(4);
    huge.writeInt32BE(FRAME_BYTES_MAX + 1, 0);
    expect(d.push(huge.subarray(0, 2))).toEqual([]);
    expect(() => d.push(huge.subarray(2))).toThrow(FrameError);
  });

  it('the default limit is 1 MiB plus the header allowance', () => {
    expect(FRAME_BYTES_MAX).toBe(1024 * 1024 - 1 + 1024);
  });

  it('handles empty frames', () => {
    expect(new FrameDecoder().push(Buffer.concat([frame(Buffer.alloc(0)), frame(Buffer.from('x'))])).map((b) => b.toString())).toEqual(['', 'x']);
    const d = new FrameDecoder();
    expect(d.push(Buffer.from([0, 0]))).toEqual([]);
    expect(d.push(Buffer.from([0, 0]))).toEqual([Buffer.alloc(0)]);
  });
});

describe('request frames', () => {
  it('encode length, header and body; the xid can be patched', () => {
    const f = encodeRequestFrame(0, { type: OpCode.getData, path: '/a', watch: true });
    patchXid(f, 77);
    expect(f.readInt32BE(0)).toBe(f.length - 4);
    const r = new JuteReader(f, 4);
    expect(readRequestHeader(r)).toEqual({ xid: 77, type: OpCode.getData });
    expect(decodeRequest(OpCode.getData, r)).toEqual({ type: OpCode.getData, path: '/a', watch: true });
    expect(r.remaining).toBe(0);
  });
});
