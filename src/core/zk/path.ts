// ZooKeeper's path rules (PathUtils.validatePath): absolute, no empty
// segment, no trailing slash (except "/"), no "." or ".." segment, and none
// of the characters ZooKeeper refuses.

import { ZK_LIMITS } from '../../limits.js';

/** UTF-8 length of a string, without an encoder. */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

/** Returns null when valid, else the reason. */
export function pathProblem(path: string, sequential = false): string | null {
  if (path.length === 0) return 'path must not be empty';
  // ZooKeeper has no such bound; ours keeps child listings and transactions bounded.
  if (path.length > ZK_LIMITS.path_bytes_max || utf8Bytes(path) > ZK_LIMITS.path_bytes_max) return `path longer than ${ZK_LIMITS.path_bytes_max} bytes`;
  if (path[0] !== '/') return 'path must start with /';
  if (path.length === 1) return sequential ? 'path must not end with / (sequential create of /)' : null;
  if (path[path.length - 1] === '/' && !sequential) return 'path must not end with /';
  let last = '/';
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    const ch = path[i];
    if (c === 0) return `null character not allowed at ${i}`;
    if (ch === '/' && last === '/') return `empty node name at ${i}`;
    if (ch === '.' && last === '.') {
      if (path[i - 2] === '/' && (i + 1 === path.length || path[i + 1] === '/')) return `relative paths not allowed at ${i}`;
    } else if (ch === '.') {
      if (path[i - 1] === '/' && (i + 1 === path.length || path[i + 1] === '/')) return `relative paths not allowed at ${i}`;
    } else if ((c > 0x0000 && c <= 0x001f) || (c >= 0x007f && c <= 0x009f) || (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0 && c <= 0xffff)) {
      return `invalid character @${i}`;
    }
    last = ch;
  }
  return null;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(parent: string, child: string): string {
  return parent === '/' ? '/' + child : parent + '/' + child;
}

/** "/" and every ancestor of path, nearest first, excluding path itself. */
export function* ancestors(path: string): Generator<string> {
  let p = path;
  while (p !== '/') {
    p = parentOf(p);
    yield p;
  }
}

/** True when path is inside or equal to a system path clients may not change (/zookeeper). */
export function isSystemPath(path: string): boolean {
  return path === '/zookeeper' || path.startsWith('/zookeeper/');
}
