import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Err } from '../../../src/proto/zk-constants.js';
import { ZkError } from '../../../src/client/errors.js';
import { parseConnectString, pathAndAncestors, pathProblem, toClientPath, toServerPath, validatePath } from '../../../src/client/path.js';

describe('validatePath (ZooKeeper PathUtils rules)', () => {
  it.each([
    '/', '/a', '/a/b/c', '/a.b', '/..a', '/a..', '/.a', '/a.', '/...', '/a/...', '/zookeeper', '/with space', '/é', '/日本',
    '/a-b_c:d@e', '/\u00a0',
  ])('accepts %j', (p) => {
    expect(pathProblem(p)).toBeNull();
    expect(() => validatePath(p)).not.toThrow();
  });

  it.each([
    ['', /length must be > 0/],
    ['a', /must start with \//],
    ['/a/', /must not end with \//],
    ['//', /must not end with \//],
    ['//a', /empty node name specified @1/],
    ['/a//b', /empty node name specified @3/],
    ['/.', /relative paths not allowed @1/],
    ['/..', /relative paths not allowed @2/],
    ['/a/./b', /relative paths not allowed @3/],
    ['/a/../b', /relative paths not allowed @4/],
    ['/a/..', /relative paths not allowed @4/],
    ['/a\u0000b', /null character not allowed @2/],
    ['/a\u0001', /invalid character @2/],
    ['/a\u001f', /invalid character @2/],
    ['/a\u007f', /invalid character @2/],
    ['/a\u009f', /invalid character @2/],
    ['/\ud83d\ude00', /invalid character @1/],
    ['/a\uf8ff', /invalid character @2/],
    ['/a\ufff0', /invalid character @2/],
    ['/a\uffff', /invalid character @2/],
  ])('refuses %j', (p, why) => {
    expect(pathProblem(p)).toMatch(why);
    try {
      validatePath(p);
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ZkError);
      expect((e as ZkError).code).toBe(Err.BADARGUMENTS);
      expect((e as ZkError).message).toMatch(/^BADARGUMENTS: invalid path/);
    }
  });

  it('a sequential create checks path + "1" (a trailing slash is allowed)', () => {
    expect(() => validatePath('/a/', true)).not.toThrow();
    expect(() => validatePath('/a/', false)).toThrow(ZkError);
    expect(() => validatePath('/a/.', true)).not.toThrow(); // "/a/.1"
    expect(() => validatePath('//', true)).toThrow(/empty node name/);
  });

  it('non-strings are refused', () => {
    expect(pathProblem(undefined)).toMatch(/string/);
    expect(pathProblem(42)).toMatch(/string/);
  });

  it('any path built from valid segments is valid', () => {
    const seg = fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'b', '.', '-', '_', 'Z', '9', 'é') })
      .filter((s) => s !== '.' && s !== '..');
    fc.assert(fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), (segs) => pathProblem('/' + segs.join('/')) === null));
  });
});

describe('connect string and chroot', () => {
  it('parses hosts, default port, IPv6 and chroot', () => {
    expect(parseConnectString('127.0.0.1:2181')).toEqual({ hosts: [{ host: '127.0.0.1', port: 2181 }], chroot: '' });
    expect(parseConnectString('a:1, b ,c:3/app/x')).toEqual({
      hosts: [{ host: 'a', port: 1 }, { host: 'b', port: 2181 }, { host: 'c', port: 3 }], chroot: '/app/x',
    });
    expect(parseConnectString('[::1]:2182/')).toEqual({ hosts: [{ host: '::1', port: 2182 }], chroot: '' });
  });

  it.each(['', ' ', 'a:0', 'a:99999', 'a:x', '/chroot', 'a:1/bad/', 'a:1//x'])('refuses %j', (s) => {
    expect(() => parseConnectString(s)).toThrow(ZkError);
  });

  it('maps client paths to server paths and back', () => {
    expect(toServerPath('', '/a')).toBe('/a');
    expect(toServerPath('/c', '/')).toBe('/c');
    expect(toServerPath('/c', '/a/b')).toBe('/c/a/b');
    expect(toClientPath('/c', '/c')).toBe('/');
    expect(toClientPath('/c', '/c/a')).toBe('/a');
    expect(toClientPath('/c', '/cx/a')).toBeNull();
    expect(toClientPath('/c', '/other')).toBeNull();
    fc.assert(fc.property(fc.constantFrom('', '/c', '/x/y'), fc.constantFrom('/', '/a', '/a/b', '/c'),
      (chroot, p) => toClientPath(chroot, toServerPath(chroot, p)) === p));
  });

  it('lists a path and its ancestors', () => {
    expect(pathAndAncestors('/a/b/c')).toEqual(['/a/b/c', '/a/b', '/a', '/']);
    expect(pathAndAncestors('/')).toEqual(['/']);
  });
});
