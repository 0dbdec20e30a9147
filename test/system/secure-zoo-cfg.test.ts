// One secure zoo.cfg (secureClientPort, NettyServerCnxnFactory, PEM key and
// trust stores, ssl.clientAuth=need), run unchanged but for its ports and
// dataDir on our server and on Debian's Apache ZooKeeper 3.8 in the same
// test; kazoo over TLS with a client certificate passes the same script on
// both (x509 ACLs named as ZooKeeper names them).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apacheZkAvailable, startApacheZk, type ApacheZk } from '../helpers/apache-zk.js';
import { startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { issueCert, makeCa, type TestCert } from '../helpers/certs.js';
import { freePort, missingTool, waitForPort } from '../helpers/ports.js';
import { kazooAvailable, runKazooScript } from './kazoo-suite.js';
import { zkCli, zkCliTlsProps } from './zkcli.js';
import { compileCuratorSuite, curatorAvailable, runCuratorTest } from './curator-suite.js';

describe.skipIf(missingTool(apacheZkAvailable() && kazooAvailable()))('a secure zoo.cfg on our server and on Apache ZooKeeper 3.8', () => {
  let dir = '';
  let apache: ApacheZk | null = null;
  let ours: CliProcess | null = null;
  let apacheSecure = 0;
  let oursSecure = 0;
  let caFile = '';
  let app: TestCert;
  let other: TestCert;
  let appStore = '';
  let otherStore = '';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-securecfg-'));
    const ca = makeCa(dir, 'ca');
    caFile = ca.certFile;
    const srv = issueCert(ca, 'server', 'zk-server', { ips: ['127.0.0.1'], dns: ['localhost'] });
    app = issueCert(ca, 'kazoo-app', 'kazoo-app');
    other = issueCert(ca, 'other', 'billing-app');
    const store = path.join(dir, 'server-store.pem');
    fs.writeFileSync(store, srv.key + srv.cert, { mode: 0o600 });
    appStore = path.join(dir, 'app-store.pem');
    fs.writeFileSync(appStore, app.key + app.cert, { mode: 0o600 });
    otherStore = path.join(dir, 'other-store.pem');
    fs.writeFileSync(otherStore, other.key + other.cert, { mode: 0o600 });
    const secure = (port: number): Record<string, string> => ({
      secureClientPort: String(port),
      serverCnxnFactory: 'org.apache.zookeeper.server.NettyServerCnxnFactory',
      'ssl.keyStore.location': store, 'ssl.keyStore.type': 'PEM',
      'ssl.trustStore.location': ca.certFile, 'ssl.trustStore.type': 'PEM',
      'ssl.clientAuth': 'need',
    });
    apacheSecure = await freePort();
    apache = await startApacheZk({ extra: secure(apacheSecure) });
    await waitForPort(apacheSecure, 30_000);
    oursSecure = await freePort();
    const plain = await freePort();
    const zooCfg = path.join(dir, 'zoo.cfg');
    fs.writeFileSync(zooCfg, Object.entries({ tickTime: '2000', dataDir: path.join(dir, 'data'), clientPort: String(plain), clientPortAddress: '127.0.0.1', ...secure(oursSecure) })
      .map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    ours = await startCliProcess(['quorum', '--zoo-cfg', zooCfg], plain);
    await waitForPort(oursSecure, 10_000);
  }, 120_000);
  afterAll(async () => {
    await ours?.stop();
    await apache?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const which of ['Apache ZooKeeper 3.8', 'Quorate'] as const) {
    it(`kazoo over TLS with a client certificate, x509 ACLs: ${which}`, async () => {
      const port = which === 'Quorate' ? oursSecure : apacheSecure;
      const r = await runKazooScript('tls.py', `127.0.0.1:${port}`, 90_000, [caFile, app.certFile, app.keyFile, other.certFile, other.keyFile]);
      expect(r.stdout + r.stderr).toContain('OK tls');
      expect(r.code).toBe(0);
    }, 120_000);
  }

  for (const which of ['Apache ZooKeeper 3.8', 'Quorate'] as const) {
    it(`zkCli over TLS (ClientCnxnSocketNetty, PEM stores), an x509 ACL, another certificate refused: ${which}`, async () => {
      const hp = `127.0.0.1:${which === 'Quorate' ? oursSecure : apacheSecure}`;
      const asApp = zkCliTlsProps(appStore, caFile);
      const c = await zkCli(hp, ['create', '/zkcli-tls', 'over-tls', 'x509:CN=kazoo-app:cdrwa'], 60_000, asApp);
      expect(c.stdout + c.stderr).toContain('Created /zkcli-tls');
      const g = await zkCli(hp, ['get', '/zkcli-tls'], 60_000, asApp);
      expect(g.stdout).toContain('over-tls');
      const denied = await zkCli(hp, ['get', '/zkcli-tls'], 60_000, zkCliTlsProps(otherStore, caFile));
      expect(denied.stdout + denied.stderr).toMatch(/Insufficient permission|NoAuth/);
    }, 120_000);
  }

  for (const which of ['Apache ZooKeeper 3.8', 'Quorate'] as const) {
    it.skipIf(missingTool(curatorAvailable()))(`Curator over TLS: InterProcessMutex and CuratorCache: ${which}`, async () => {
      const hp = `127.0.0.1:${which === 'Quorate' ? oursSecure : apacheSecure}`;
      const classes = compileCuratorSuite();
      for (const test of ['mutex', 'curatorCache']) {
        const r = await runCuratorTest(classes, hp, test, 60_000, zkCliTlsProps(appStore, caFile));
        expect(r.stdout, `${test}: ${r.stdout}\n${r.stderr.slice(-2000)}`).toMatch(new RegExp(`^OK ${test}\\b`, 'm'));
      }
    }, 150_000);
  }
});
