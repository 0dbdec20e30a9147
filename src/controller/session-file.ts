// The controller's quorum session, kept in its run directory so that a
// restarted controller can re-attach to it (and keep the lock its session
// holds) instead of making a new one: its id and password. The password lets
// anyone who reads it act as this controller's session (take over the lock
// it holds), so the file is a secret: mode 0600, owned by us, written
// atomically (a temporary file fsynced, renamed, the directory fsynced), never
// logged. A file that is malformed, names another controller or is readable
// by others is ignored with a warning naming it (and removed): the controller
// then makes a new session, and the worst case is a failover, as without it.
import fs from 'node:fs';
import path from 'node:path';

export interface SavedSession { id: bigint; passwd: Buffer }
/** Whose session it is: a file for another cluster, service or instance is not ours to use. */
export interface SessionOwner { cluster: string; service: string; instance: string }

const FORMAT = 'quorate-controller-session/1';
/** A session file is a few hundred bytes; anything much larger is not one. */
const SESSION_FILE_BYTES_MAX = 4096;

export function sessionFileOf(runDir: string, service: string, instance: string): string {
  return path.join(runDir, `controller-${service}:${instance}.session`);
}

export type ReadOutcome =
  | { kind: 'none' }
  | { kind: 'session'; session: SavedSession }
  /** Not used: why (names the file, never its contents' secret). */
  | { kind: 'ignored'; reason: string };

/** Reads the saved session; a file that cannot be trusted or parsed is `ignored` (and removed), never fatal. */
export function readSessionFile(file: string, owner: SessionOwner): ReadOutcome {
  let st: fs.Stats;
  try { st = fs.lstatSync(file); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'ignored', reason: `${file}: ${(e as Error).message}` };
  }
  const ignore = (why: string): ReadOutcome => { removeSessionFile(file); return { kind: 'ignored', reason: `${file} ${why}: ignored and removed` }; };
  if (!st.isFile()) return { kind: 'ignored', reason: `${file} is not a regular file: ignored` };
  if ((st.mode & 0o077) !== 0) return ignore(`is readable or writable by others (mode 0${(st.mode & 0o777).toString(8)}, must be 0600): its password may have leaked`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) return ignore(`belongs to uid ${st.uid}, not to this process (uid ${process.getuid()})`);
  if (st.size > SESSION_FILE_BYTES_MAX) return ignore(`is ${st.size} bytes: not a session file`);
  let o: Record<string, unknown>;
  try { o = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>; } catch (e) {
    return ignore(`does not parse (${(e as Error).message.slice(0, 80)})`);
  }
  if (o === null || typeof o !== 'object' || o.format !== FORMAT) return ignore(`is not a ${FORMAT} file`);
  for (const k of ['cluster', 'service', 'instance'] as const) {
    if (o[k] !== owner[k]) return ignore(`is the session of ${String(o.cluster)}/${String(o.service)}/${String(o.instance)}, not of ${owner.cluster}/${owner.service}/${owner.instance}`);
  }
  if (typeof o.sessionId !== 'string' || !/^0x[0-9a-f]{1,16}$/.test(o.sessionId)) return ignore('has no valid sessionId (0x and 1-16 hex digits)');
  const id = BigInt(o.sessionId);
  if (id === 0n) return ignore('names session 0');
  if (typeof o.passwd !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(o.passwd)) return ignore('has no valid passwd (base64)');
  const passwd = Buffer.from(o.passwd, 'base64');
  if (passwd.length !== 16) return ignore(`has a passwd of ${passwd.length} bytes, not 16`);
  return { kind: 'session', session: { id, passwd } };
}

/** Writes the file atomically with mode 0600: temporary file, fsync, rename, fsync of the directory. */
export function writeSessionFile(file: string, s: SavedSession, owner: SessionOwner): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  const tmp = `${file}.tmp.${process.pid}`;
  const body = JSON.stringify({ format: FORMAT, ...owner, sessionId: `0x${s.id.toString(16)}`, passwd: s.passwd.toString('base64'), savedAt: new Date().toISOString() }) + '\n';
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    // The umask cannot widen 0600, but an inherited ACL default could: set it explicitly.
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, body);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Removes the file (and any temporary one of ours); a file that is not there is fine. */
export function removeSessionFile(file: string): void {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.tmp.${process.pid}`, { force: true });
  try { fsyncDir(path.dirname(file)); } catch { /* the directory is gone: so is the file */ }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
