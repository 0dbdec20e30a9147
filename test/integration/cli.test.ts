// The `quorate` executable: --help on every verb, exit codes (0 ok, 1
// failure, 2 usage or configuration), config errors that name the key, and
// the zk verbs against a running server.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';

function run(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

describe('quorate CLI', () => {
  let tmp = '';
  beforeAll(() => { ensureBuilt(); tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-cli-')); });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const verb of [[], ['quorum'], ['quorum', 'start'], ['quorum', 'verify'], ['quorum', 'dump'], ['zk']]) {
    it(`quorate ${verb.join(' ')} --help exits 0 and describes itself`, async () => {
      const r = await run([...verb, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage: quorate/);
    });
  }

  it('an unknown verb is a usage error (exit 2)', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
  });

  it('a bad cluster file stops with exit 2, naming file, line, key path and reason', async () => {
    const f = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(f, 'cluster: demo\nquorum:\n  tickMs: abc\n  bogus: 1\n  dataDir: /tmp/x\n');
    const r = await run(['quorum', '--config', f, '--id', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:3: quorum\.tickMs: .*"abc"/);
    expect(r.stderr).toMatch(/bad\.yaml:4: quorum\.bogus: unknown key/);
  });

  it('a zoo.cfg with an unknown key stops with exit 2; a known unused key is only a warning', async () => {
    const f = path.join(tmp, 'zoo.cfg');
    fs.writeFileSync(f, `tickTime=2000\ndataDir=${tmp}/d\nclientPort=2181\nfrobnicate=yes\n`);
    const r = await run(['quorum', '--zoo-cfg', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/frobnicate/);
  });

  it('--id out of range and missing --id are usage errors', async () => {
    expect((await run(['quorum', '--config', 'conf/cluster.yaml', '--id', 'zero'])).code).toBe(2);
    expect((await run(['quorum', '--config', 'conf/cluster.yaml'])).code).toBe(2);
  });

  describe('against a running server', () => {
    let server: QuorateServer | undefined;
    beforeAll(async () => { server = await startQuorateServer(); }, 30_000);
    afterAll(async () => { await server?.stop(); });
    const zk = (...a: string[]) => run(['zk', '--server', server!.connectString, ...a]);

    it('create, get -s, set -v, ls, stat, delete, deleteall in zkCli formats', async () => {
      expect((await zk('create', '/cli', 'hello')).stdout).toBe('Created /cli\n');
      const got = await zk('get', '-s', '/cli');
      expect(got.stdout).toMatch(/^hello\ncZxid = 0x[0-9a-f]+\n/);
      expect(got.stdout).toMatch(/dataVersion = 0\n/);
      expect((await zk('set', '-v', '5', '/cli', 'x')).code).toBe(1);
      expect((await zk('set', '-v', '0', '/cli', 'x')).code).toBe(0);
      await zk('create', '/cli/a', '1');
      await zk('create', '/cli/a/b', '2');
      expect((await zk('ls', '/cli')).stdout).toBe('[a]\n');
      expect((await zk('ls', '-R', '/cli')).stdout).toBe('/cli\n/cli/a\n/cli/a/b\n');
      const nonempty = await zk('delete', '/cli');
      expect(nonempty.code).toBe(1);
      expect(nonempty.stderr).toMatch(/NOTEMPTY/);
      expect((await zk('deleteall', '/cli')).code).toBe(0);
      const gone = await zk('stat', '/cli');
      expect(gone.code).toBe(1);
      expect(gone.stderr).toMatch(/Node does not exist: \/cli/);
    });

    it('ACLs: --auth digest, create with a digest ACL, getAcl, NOAUTH for others', async () => {
      const crypto = await import('node:crypto');
      const hash = crypto.createHash('sha1').update('alice:secret').digest('base64');
      expect((await zk('--auth', 'digest:alice:secret', 'create', '/sec', 'x', `digest:alice:${hash}:cdrwa`)).code).toBe(0);
      const denied = await zk('get', '/sec');
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/NOAUTH/);
      expect((await zk('--auth', 'digest:alice:secret', 'get', '/sec')).stdout).toBe('x\n');
      expect((await zk('--auth', 'digest:alice:secret', 'getAcl', '/sec')).stdout).toBe(`'digest,'alice:${hash}\n: cdrwa\n`);
    });

    it('commands on standard input share one session (addauth applies to what follows)', async () => {
      const r = await run(['zk', '--server', server!.connectString], 'create /s1 a auth::cdrwa\naddauth digest bob:pw\ncreate /s1 a auth::cdrwa\nget /s1\nwhoami\n');
      expect(r.stderr).toMatch(/INVALIDACL/);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('Created /s1\na\ndigest: bob\nip: 127.0.0.1\n');
    });

    it('verify and dump read the data dir of a stopped server', async () => {
      await server!.stop();
      const v = await run(['quorum', 'verify', server!.dataDir]);
      expect(v.code).toBe(0);
      expect(v.stdout).toMatch(/OK\n$/);
      const d = await run(['quorum', 'dump', server!.dataDir]);
      expect(d.code).toBe(0);
      expect(d.stdout).toMatch(/create \/s1/);
      expect(d.stdout).toMatch(/createSession timeout=/);
    });
  });
});
