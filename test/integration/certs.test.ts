// `quorate certs create` makes what a first secure cluster needs: a CA, a
// certificate per host of the cluster file (its host as a subject alternative
// name, for server and client use), operators' client certificates; keys
// 0600; existing files kept; and journal nodes run on them with an operator
// allowed format --force.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JournalNodeClient } from '../../src/client/journal/node-client.js';
import { CLI } from '../helpers/cli-process.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-certs-'));
let nodes: JournalCluster | null = null;
afterAll(async () => { await nodes?.stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });

function quorate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
    resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
  }));
}

describe('quorate certs create', () => {
  const certs = path.join(dir, 'certs');
  const cfg = path.join(dir, 'cluster.yaml');

  it('makes a CA, one certificate per host named in the cluster file and the operators\', and keeps them on a second run', async () => {
    fs.writeFileSync(cfg, [
      'cluster: certs-test',
      'journal:',
      `  dataDir: ${dir}/j-{id}`,
      '  nodes:',
      '    - { id: 1, host: 127.0.0.1, port: 18485 }',
      '    - { id: 2, host: db2.example.internal, port: 18485 }',
    ].join('\n') + '\n');
    const r = await quorate(['certs', 'create', '--config', cfg, '--dir', certs, '--operator', 'ops-admin']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`made CA: ${certs}/ca.pem`);
    expect(r.stdout).toContain(`made host 127.0.0.1: ${certs}/hosts/127.0.0.1.pem`);
    expect(r.stdout).toContain(`made host db2.example.internal: ${certs}/hosts/db2.example.internal.pem`);
    expect(r.stdout).toContain(`made operator ops-admin: ${certs}/clients/ops-admin.pem`);
    const ca = new X509Certificate(fs.readFileSync(path.join(certs, 'ca.pem')));
    expect(ca.ca).toBe(true);
    const ip = new X509Certificate(fs.readFileSync(path.join(certs, 'hosts/127.0.0.1.pem')));
    expect(ip.verify(ca.publicKey)).toBe(true);
    expect(ip.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const dns = new X509Certificate(fs.readFileSync(path.join(certs, 'hosts/db2.example.internal.pem')));
    expect(dns.checkHost('db2.example.internal')).toBe('db2.example.internal');
    const op = new X509Certificate(fs.readFileSync(path.join(certs, 'clients/ops-admin.pem')));
    expect(op.subject).toBe('CN=ops-admin');
    for (const k of ['ca.key', 'hosts/127.0.0.1.key', 'hosts/db2.example.internal.key', 'clients/ops-admin.key']) {
      expect(fs.statSync(path.join(certs, k)).mode & 0o077).toBe(0);
    }
    const again = await quorate(['certs', 'create', '--config', cfg, '--dir', certs]);
    expect(again.stdout).toContain(`kept CA: ${certs}/ca.pem`);
    expect(new X509Certificate(fs.readFileSync(path.join(certs, 'ca.pem'))).fingerprint256).toBe(ca.fingerprint256);
  }, 60_000);

  it('journal nodes run on them, and the operator certificate may format --force', async () => {
    const host = { certFile: path.join(certs, 'hosts/127.0.0.1.pem'), keyFile: path.join(certs, 'hosts/127.0.0.1.key') };
    nodes = await startJournalNodes(3, { journalExtra: [`  tls: { certFile: ${host.certFile}, keyFile: ${host.keyFile}, caFile: ${certs}/ca.pem }`, '  operators: [ops-admin]'] });
    const read = (f: string) => fs.readFileSync(f, 'utf8');
    const tls = { cert: read(host.certFile), key: read(host.keyFile), ca: read(path.join(certs, 'ca.pem')) };
    const c = new JournalNodeClient(nodes.nodes[0], 3000, { tls });
    expect((await c.health()).node).toBe(1);
    await c.close();
    const f = await quorate(['journal', 'format', '--config', nodes.cfgPath, '--journal', 'svc', '--force', '--node', '1',
      '--tls-cert', path.join(certs, 'clients/ops-admin.pem'), '--tls-key', path.join(certs, 'clients/ops-admin.key')]);
    expect(f.stdout).toBe('node 1: formatted svc\n');
  }, 60_000);

  it('refuses a bad operator name and a cluster file without hosts', async () => {
    const bad = await quorate(['certs', 'create', '--config', cfg, '--dir', certs, '--operator', 'a b']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--operator: "a b" is not a usable common name/);
    const empty = path.join(dir, 'empty.yaml');
    fs.writeFileSync(empty, 'cluster: x\n');
    const none = await quorate(['certs', 'create', '--config', empty, '--dir', certs]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/names no host/);
  }, 30_000);
});
