// TLS on every port: the admin API (client certificates required:
// controller.tls.clientAuth need), the journal nodes, between the quorum
// servers, and the quorum's TLS client ports the controllers elect through
// (the plain ones stay for the test's own checks). On the admin API: a caller without a certificate from the cluster CA gets no answer; a
// reader's certificate reads status but cannot change roles; an operator's
// certificate changes roles without the token; the controllers, whose
// certificates name their hosts, still cede and fence each other (failover
// after kill -9 of the active service; manual failover through the CLI).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert, makeCa, type TestCert } from '../helpers/certs.js';
import { expectC4, showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';
import { CONTROLLER_V8_FLAGS } from '../../src/daemon/controller-flags.js';

const DIGEST = 'quorate-ctl:digest-password-4711';
const TOKEN = 'an-admin-token-of-32-characters!';

describe('controller admin API with client certificates', () => {
  let c: HaCluster;
  let dir = '';
  let ca = '';
  let reader: TestCert;
  let operator: TestCert;
  let keys: string[] = [];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-amtls-'));
    const cluster = makeCa(dir, 'cluster-ca');
    ca = fs.readFileSync(cluster.certFile, 'utf8');
    const host = issueCert(cluster, 'host', 'controller-host', { ips: ['127.0.0.1'] });
    reader = issueCert(cluster, 'reader', 'dash-reader');
    operator = issueCert(cluster, 'operator', 'ops-admin');
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    keys = [host.key, reader.key, operator.key, fs.readFileSync(cluster.keyFile, 'utf8')];
    // TLS on every port: the admin API (client certificates required), the journal nodes, between the three quorum servers,
    // and the quorum's client ports the controllers elect through (client certificates required there too).
    c = await startHaCluster(2, { digest: DIGEST, quorumServers: 3, tlsEverywhere: true, tls: { certFile: host.certFile, keyFile: host.keyFile, caFile: cluster.certFile, tokenFile, clientAuth: 'need', operators: ['ops-admin'], readers: ['dash-reader'] } });
  }, 90_000);
  afterAll(async () => { await c?.stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });
  showLogsOnFailure(() => c);

  const call = async (method: 'GET' | 'POST', port: number, p: string, who: TestCert | null) => {
    const agent = new Agent({ connect: { ca, ...(who === null ? {} : { cert: who.cert, key: who.key }) } });
    try {
      const r = await request(`https://127.0.0.1:${port}${p}`, { method, dispatcher: agent, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined, signal: AbortSignal.timeout(3000) });
      return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
    } finally { await agent.close(); }
  };

  it('no certificate: no answer; a reader reads but cannot pause; an operator can, without the token', async () => {
    await c.settledActive();
    // The controllers elect through the quorum's TLS client ports, not the plain ones.
    const started = JSON.parse(c.instances[0].controller.logs().split('\n').find((l) => l.includes('"controller started"'))!) as { connectString: string; v8Flags: string[] };
    // Set by the controller on itself (Node refuses them in NODE_OPTIONS).
    expect(started.v8Flags).toEqual(CONTROLLER_V8_FLAGS);
    const used = started.connectString.split(',').map((hp) => Number(hp.split(':')[1]));
    expect(used).toHaveLength(3);
    for (const p of used) expect(c.quorumPorts).not.toContain(p);
    const port = c.instances[0].adminPort;
    await expect(call('GET', port, '/v1/status', null)).rejects.toThrow();
    const st = await call('GET', port, '/v1/status', reader);
    expect(st.status).toBe(200);
    // Its certificate's end is in status (openssl made it for two days), and was logged at start.
    expect(st.json.certificates).toMatchObject({ 'controller.tls': { subject: 'CN=controller-host', daysLeft: 1 } });
    expect(c.instances[0].controller.logs()).toMatch(/"certificate":"controller.tls".*"daysLeft":1.*"msg":"certificate expires in 1 days; replace it"/);
    const denied = await call('POST', port, '/v1/pause', reader);
    expect(denied).toMatchObject({ status: 403, json: { error: 'the certificate CN=dash-reader may read status, not change roles' } });
    expect((await c.status(c.instances[0].id)).paused).toBe(false);
    const paused = await call('POST', port, '/v1/pause', operator);
    expect(paused.status).toBe(200);
    expect((await c.status(c.instances[0].id)).paused).toBe(true);
    expect((await call('POST', port, '/v1/resume', operator)).status).toBe(200);
  }, 60_000);

  it('the controllers still fence and cede each other: kill -9 of the active service fails over; manual failover works', async () => {
    const a = await c.settledActive();
    await c.instances.find((i) => i.id === a)!.service.kill9();
    const b = await c.settledActive(30_000, a);
    expect(b).not.toBe(a);
    await c.instances.find((i) => i.id === a)!.service.restart();
    const r = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', a]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await c.settledActive(30_000)).toBe(a);
    await expectC4(c);
  }, 90_000);

  it('no secret in any log line or status output of the whole run: token, digest password, private keys', async () => {
    const st = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders', '--json']);
    const texts = [
      ...c.instances.flatMap((i) => [i.controller.logs(), i.service.logs()]),
      ...c.quorumServers.map((q) => q.logs()), ...c.journal.map((j) => j.logs()),
      st.stdout, st.stderr, JSON.stringify(await c.status(c.instances[0].id)),
    ].join('\n');
    expect(texts.length).toBeGreaterThan(1000);
    expect(texts).toContain('controller started');
    const secrets = [TOKEN, DIGEST.split(':')[1], ...keys.flatMap((k) => k.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')))];
    for (const secret of secrets) expect(texts.includes(secret), `a secret appears in the logs or status: ${secret.slice(0, 6)}…`).toBe(false);
  }, 30_000);
});
