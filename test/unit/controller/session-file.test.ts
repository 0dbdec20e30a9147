// The controller's session file: a secret (0600, ours), written atomically;
// anything it cannot trust is ignored (and removed) with a reason naming the
// file and never its password.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readSessionFile, removeSessionFile, sessionFileOf, writeSessionFile } from '../../../src/controller/session-file.js';

const owner = { cluster: 'c1', service: 'orders', instance: 'a' };
const session = { id: 0x1234_5678_9abc_def0n, passwd: Buffer.from('0123456789abcdef') };
const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-sess-')); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

describe('the controller session file', () => {
  it('round-trips the id (above 2^53, exactly) and password, mode 0600, no temporary file left', () => {
    const f = sessionFileOf(path.join(tmp(), 'run'), 'orders', 'a');
    expect(readSessionFile(f, owner)).toEqual({ kind: 'none' });
    writeSessionFile(f, session, owner);
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(f))).toEqual([path.basename(f)]);
    const r = readSessionFile(f, owner);
    expect(r).toEqual({ kind: 'session', session });
    writeSessionFile(f, { id: 5n, passwd: Buffer.alloc(16, 7) }, owner);
    expect(readSessionFile(f, owner)).toEqual({ kind: 'session', session: { id: 5n, passwd: Buffer.alloc(16, 7) } });
    removeSessionFile(f);
    expect(fs.existsSync(f)).toBe(false);
    removeSessionFile(f); // twice is fine
  });

  it('readable by others: ignored and removed (its password may have leaked); the reason never shows the password', () => {
    const f = sessionFileOf(tmp(), 'orders', 'a');
    writeSessionFile(f, session, owner);
    fs.chmodSync(f, 0o644);
    const r = readSessionFile(f, owner);
    expect(r.kind).toBe('ignored');
    expect(r.kind === 'ignored' && r.reason).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is readable or writable by others \\(mode 0644`));
    expect(JSON.stringify(r)).not.toContain(session.passwd.toString('base64'));
    expect(fs.existsSync(f)).toBe(false);
  });

  const bad: [string, (o: Record<string, unknown>) => unknown, RegExp][] = [
    ['not JSON', () => '{', /does not parse/],
    ['another instance\'s', (o) => ({ ...o, instance: 'b' }), /is the session of c1\/orders\/b, not of c1\/orders\/a/],
    ['another cluster\'s', (o) => ({ ...o, cluster: 'c2' }), /not of c1\/orders\/a/],
    ['a bad session id', (o) => ({ ...o, sessionId: '12' }), /no valid sessionId/],
    ['session 0', (o) => ({ ...o, sessionId: '0x0' }), /names session 0/],
    ['a short password', (o) => ({ ...o, passwd: Buffer.alloc(8).toString('base64') }), /passwd of 8 bytes/],
    ['another format', (o) => ({ ...o, format: 'x' }), /is not a quorate-controller-session\/1 file/],
  ];
  for (const [what, edit, reason] of bad) {
    it(`${what}: ignored and removed, with a reason`, () => {
      const f = sessionFileOf(tmp(), 'orders', 'a');
      writeSessionFile(f, session, owner);
      const o = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
      const next = edit(o);
      fs.writeFileSync(f, typeof next === 'string' ? next : JSON.stringify(next), { mode: 0o600 });
      const r = readSessionFile(f, owner);
      expect(r.kind).toBe('ignored');
      expect(r.kind === 'ignored' && r.reason).toMatch(reason);
      expect(fs.existsSync(f)).toBe(false);
    });
  }
});
