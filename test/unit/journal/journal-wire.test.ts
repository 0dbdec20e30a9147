import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JOURNAL_LIMITS, WireError, batchChecksum, decodeBatch, encodeBatch, journalNameProblem } from '../../../src/proto/journal-wire.js';

describe('journal names', () => {
  it('accepts plain names and refuses traversal, separators and oddities, saying why', () => {
    for (const ok of ['svc', 'hdfs-nn.1', 'A_b-9']) expect(journalNameProblem(ok)).toBeNull();
    expect(journalNameProblem('')).toMatch(/empty/);
    expect(journalNameProblem('../etc')).toMatch(/starting with a letter or digit/);
    expect(journalNameProblem('a/../b')).toMatch(/use letters, digits/);
    expect(journalNameProblem('a..b')).toMatch(/contains "\.\."/);
    expect(journalNameProblem('a\\b')).toMatch(/use letters/);
    expect(journalNameProblem('x'.repeat(65))).toMatch(/65 characters/);
    expect(journalNameProblem('.hidden')).toMatch(/starting with a letter or digit/);
  });
});

describe('batch bodies', () => {
  it('round-trip any edits, empty ones included', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 50 }), (edits) => {
      const back = decodeBatch(encodeBatch(edits));
      expect(back.map((b) => Buffer.from(b).toString('hex'))).toEqual(edits.map((e) => Buffer.from(e).toString('hex')));
    }), { numRuns: 300 });
  });

  it('refuse malformed and oversize bodies, naming the problem', () => {
    const good = encodeBatch([Buffer.from('ab'), Buffer.from('c')]);
    expect(() => decodeBatch(Buffer.alloc(2))).toThrow(/too short for its count/);
    expect(() => decodeBatch(encodeBatch([]))).toThrow(/an empty batch/);
    expect(() => decodeBatch(good.subarray(0, good.length - 1))).toThrow(/ends inside edit 1/);
    expect(() => decodeBatch(Buffer.concat([good, Buffer.from([0])]))).toThrow(/1 bytes after the last edit/);
    const many = Buffer.alloc(4);
    many.writeUInt32BE(JOURNAL_LIMITS.batch_edits_max + 1);
    expect(() => decodeBatch(many)).toThrow(WireError);
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(1, 0);
    huge.writeUInt32BE(JOURNAL_LIMITS.edit_bytes_max + 1, 4);
    expect(() => decodeBatch(huge)).toThrow(/edit 0 of \d+ bytes/);
  });

  it('give a retried batch the same checksum and another batch another', () => {
    const a = [Buffer.from('x'), Buffer.from('y')];
    expect(batchChecksum(a)).toBe(batchChecksum([Buffer.from('x'), Buffer.from('y')]));
    expect(batchChecksum(a)).not.toBe(batchChecksum([Buffer.from('xy')]));
  });
});
