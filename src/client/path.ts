// Client-side path checks (ZooKeeper's PathUtils.validatePath, character for
// character), the connect string, and chroot translation.
import { badArguments } from './errors.js';

/** Why `path` is not a valid znode path, or null when it is. Same rules as ZooKeeper's PathUtils. */
export function pathProblem(path: unknown): string | null {
  if (typeof path !== 'string') return 'path must be a string';
  if (path.length === 0) return 'path length must be > 0';
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with / character';
  if (path.length === 1) return null;
  if (path.charCodeAt(path.length - 1) === 0x2f) return 'path must not end with / character';
  let last = 0x2f;
  for (let i = 1; i < path.length; last = path.charCodeAt(i), i++) {
    const c = path.charCodeAt(i);
    const endsSegment = i + 1 === path.length || path.charCodeAt(i + 1) === 0x2f;
    if (c === 0) return `null character not allowed @${i}`;
    if (c === 0x2f && last === 0x2f) return `empty node name specified @${i}`;
    if (c === 0x2e && last === 0x2e) {
      if (path.charCodeAt(i - 2) === 0x2f && endsSegment) return `relative paths not allowed @${i}`;
    } else if (c === 0x2e) {
      if (path.charCodeAt(i - 1) === 0x2f && endsSegment) return `relative paths not allowed @${i}`;
    } else if ((c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0) {
      return `invalid character @${i}`;
    }
  }
  return null;
}

/** Throws ZkError BADARGUMENTS naming the rule broken. A sequential create checks `path + '1'`, as ZooKeeper does. */
export function validatePath(path: string, sequential = false): void {
  const problem = pathProblem(sequential && typeof path === 'string' ? path + '1' : path);
  if (problem !== null) throw badArguments(`invalid path ${JSON.stringify(path)}: ${problem}`);
}

export interface HostPort { host: string; port: number }

/** Parse `host:port,host:port[/chroot]`. The chroot is '' when absent (or '/'). */
export function parseConnectString(s: string): { hosts: HostPort[]; chroot: string } {
  if (typeof s !== 'string' || s.trim() === '') throw badArguments('connect string is empty');
  let hostPart = s.trim();
  let chroot = '';
  const slash = hostPart.indexOf('/');
  if (slash >= 0) {
    chroot = hostPart.slice(slash);
    hostPart = hostPart.slice(0, slash);
    if (chroot === '/') chroot = '';
    else {
      const problem = pathProblem(chroot);
      if (problem !== null) throw badArguments(`invalid chroot ${JSON.stringify(chroot)} in connect string: ${problem}`);
    }
  }
  const hosts: HostPort[] = [];
  for (const raw of hostPart.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    let host = item;
    let port = 2181;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(item) ?? /^([^:]+)(?::(\d+))?$/.exec(item);
    if (m === null) throw badArguments(`invalid server ${JSON.stringify(item)} in connect string (want host:port)`);
    host = m[1];
    if (m[2] !== undefined) port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw badArguments(`invalid port in ${JSON.stringify(item)}`);
    hosts.push({ host, port });
  }
  if (hosts.length === 0) throw badArguments(`no servers in connect string ${JSON.stringify(s)}`);
  if (hosts.length > 256) throw badArguments('more than 256 servers in connect string');
  return { hosts, chroot };
}

/** Client path -> server path. */
export function toServerPath(chroot: string, clientPath: string): string {
  if (chroot === '') return clientPath;
  return clientPath === '/' ? chroot : chroot + clientPath;
}

/** Server path -> client path, or null when the path lies outside the chroot. */
export function toClientPath(chroot: string, serverPath: string): string | null {
  if (chroot === '') return serverPath;
  if (serverPath === chroot) return '/';
  if (serverPath.startsWith(chroot) && serverPath.charCodeAt(chroot.length) === 0x2f) return serverPath.slice(chroot.length);
  return null;
}

/** '/a/b/c' -> ['/a/b/c', '/a/b', '/a', '/'] (the path, then each ancestor). */
export function pathAndAncestors(path: string): string[] {
  const out = [path];
  let p = path;
  while (p !== '/' && p.length > 0) {
    const i = p.lastIndexOf('/');
    p = i <= 0 ? '/' : p.slice(0, i);
    out.push(p);
  }
  return out;
}
