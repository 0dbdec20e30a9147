// The client port over TLS (quorum.secureClientPort with quorum.clientTls,
// as ZooKeeper's secureClientPort and ssl.*): a client with the cluster CA
// works over TLS beside the plain port; with clientAuth need a client without
// a certificate from the CA gets no handshake; a client certificate is an x509
// identity usable in ACLs (ZooKeeper's X509AuthenticationProvider: the
// subject, most specific part first); the plain port stays plain.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import { Err, Perm as Perms } from '../../src/proto/zk-constants.js';
import { silentLogger } from '../../src/io/log.js';
import { execFile } from 'node:child_process';
import { CLI, startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { issueCert, makeCa, type TestCert } from '../helpers/certs.js';
import { freePort, missingTool } from '../helpers/ports.js';
import { kazooAvailable, runKazooScript } from '../system/kazoo-suite.js';

describe('the client port over TLS', () => {
  let dir = '';
  let server: CliProcess;
  let plainPort = 0;
  let tlsPort = 0;
  let ca = '';
  let app: TestCert;
  let other: TestCert;
  let foreign: TestCert;
  let kazooApp: TestCert;
  let caFile = '';
  let serverFiles: TestCert;
  let clusterCa: ReturnType<typeof makeCa>;
  const clients: ZkClient[] = [];
  const client = async (port: number, tls: { ca: string; cert?: string; key?: string } | null) => {
    const c = new ZkClient({ connectString: `127.0.0.1:${port}`, sessionTimeoutMs: 6000, connectTimeoutMs: 2000, logger: silentLogger(), tls });
    clients.push(c);
    await c.connect();
    return c;
  };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-ctls-'));
    const cluster = makeCa(dir, 'cluster-ca');
    ca = fs.readFileSync(cluster.certFile, 'utf8');
    const srv = issueCert(cluster, 'server', 'zk-server', { ips: ['127.0.0.1'] });
    app = issueCert(cluster, 'app', 'orders-app');
    other = issueCert(cluster, 'other', 'billing-app');
    kazooApp = issueCert(cluster, 'kazoo-app', 'kazoo-app');
    caFile = cluster.certFile;
    foreign = issueCert(makeCa(fs.mkdtempSync(path.join(dir, 'x-')), 'other-ca'), 'foreign', 'orders-app');
    plainPort = await freePort();
    tlsPort = await freePort();
    const cfg = path.join(dir, 'cluster.yaml');
    fs.writeFileSync(cfg, [
      'cluster: ctls',
      'quorum:',
      `  dataDir: ${dir}/q`,
      '  clientHost: 127.0.0.1',
      `  clientPort: ${plainPort}`,
      `  secureClientPort: ${tlsPort}`,
      `  clientTls: { certFile: ${srv.certFile}, keyFile: ${srv.keyFile}, caFile: ${cluster.certFile}, clientAuth: need }`,
    ].join('\n') + '\n');
    server = await startCliProcess(['quorum', '--config', cfg, '--id', '1'], plainPort);
    serverFiles = srv;
    clusterCa = cluster;
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves the same tree over TLS and plain', async () => {
    const t = await client(tlsPort, { ca, cert: app.cert, key: app.key });
    await t.create('/over-tls', Buffer.from('tls'));
    const p = await client(plainPort, null);
    expect((await p.getData('/over-tls')).data?.toString()).toBe('tls');
  }, 30_000);

  it('quorate zk speaks TLS with --tls-ca/--tls-cert/--tls-key', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => execFile(process.execPath,
      [CLI, 'zk', '--server', `127.0.0.1:${tlsPort}`, '--tls-ca', caFile, '--tls-cert', app.certFile, '--tls-key', app.keyFile, 'get', '/over-tls'],
      { timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr })));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('tls');
    expect(r.code).toBe(0);
  }, 30_000);

  it('clientAuth need: no certificate, or one from another CA, gets no session', async () => {
    await expect(client(tlsPort, { ca })).rejects.toThrow();
    await expect(client(tlsPort, { ca, cert: foreign.cert, key: foreign.key })).rejects.toThrow();
    // A plain client on the TLS port gets nothing either.
    await expect(client(tlsPort, null)).rejects.toThrow();
  }, 30_000);

  it('the client certificate is an x509 identity for ACLs; another certificate is refused; "auth" expands to it', async () => {
    const a = await client(tlsPort, { ca, cert: app.cert, key: app.key });
    await a.create('/x509-only', Buffer.from('secret'), { acl: [{ perms: Perms.ALL, id: { scheme: 'x509', id: 'CN=orders-app' } }] });
    expect((await a.getData('/x509-only')).data?.toString()).toBe('secret');
    const b = await client(tlsPort, { ca, cert: other.cert, key: other.key });
    await expect(b.getData('/x509-only')).rejects.toMatchObject({ code: Err.NOAUTH });
    const p = await client(plainPort, null);
    await expect(p.getData('/x509-only')).rejects.toMatchObject({ code: Err.NOAUTH });
    await a.create('/auth-acl', Buffer.from('x'), { acl: [{ perms: Perms.ALL, id: { scheme: 'auth', id: '' } }] });
    expect((await a.getACL('/auth-acl')).acl).toEqual([{ perms: Perms.ALL, id: { scheme: 'x509', id: 'CN=orders-app' } }]);
    expect((await a.whoAmI()).map((c) => c.authScheme)).toContain('x509');
  }, 30_000);

  it.skipIf(missingTool(kazooAvailable()))('kazoo (python3-kazoo, use_ssl with a client certificate) works over TLS, x509 ACLs included', async () => {
    const r = await runKazooScript('tls.py', `127.0.0.1:${tlsPort}`, 60_000, [caFile, kazooApp.certFile, kazooApp.keyFile, other.certFile, other.keyFile]);
    expect(r.stdout + r.stderr).toContain('OK tls');
    expect(r.code).toBe(0);
  }, 90_000);

  it('SIGHUP takes a rotated certificate on the TLS client port without a restart', async () => {
    const fresh = issueCert(clusterCa, 'server-rotated', 'zk-server-rotated', { ips: ['127.0.0.1'] });
    fs.copyFileSync(fresh.certFile, serverFiles.certFile);
    fs.copyFileSync(fresh.keyFile, serverFiles.keyFile);
    const before = server.logs().length;
    process.kill(server.pid, 'SIGHUP');
    for (let i = 0; i < 50 && !server.logs().slice(before).includes('reloaded certificates'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(server.logs().slice(before)).toContain('reloaded certificates');
    const cn = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca, cert: app.cert, key: app.key }, () => { resolve(String(s.getPeerCertificate().subject.CN)); s.destroy(); });
      s.on('error', reject);
    });
    expect(cn).toBe('zk-server-rotated');
    const c = await client(tlsPort, { ca, cert: app.cert, key: app.key });
    expect((await c.getData('/over-tls')).data?.toString()).toBe('tls');
  }, 30_000);
});
