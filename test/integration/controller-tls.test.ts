// The admin API over TLS (a CA and a certificate for 127.0.0.1 made with
// openssl by the test): the controllers fence and cede each other over
// https, the CLI's status and failover work, /active answers over https with
// the CA, a plain HTTP request gets nothing, write endpoints need the token,
// and /metrics, a read, does not.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkC4, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';

function makeCerts(dir: string): { certFile: string; keyFile: string; caFile: string; tokenFile: string } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=quorate-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('key.pem'), '-out', f('req.csr'));
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', f('req.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('cert.pem'));
  fs.writeFileSync(f('token'), 'secret-admin-token\n', { mode: 0o600 });
  fs.chmodSync(f('key.pem'), 0o600);
  return { certFile: f('cert.pem'), keyFile: f('key.pem'), caFile: f('ca.pem'), tokenFile: f('token') };
}

describe('controller admin API over TLS', () => {
  let c: HaCluster;
  let tls: ReturnType<typeof makeCerts>;
  beforeAll(async () => {
    tls = makeCerts(fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-tls-')));
    c = await startHaCluster(2, { tls });
  }, 90_000);
  afterAll(async () => { await c?.stopAll(); });

  it('status, failover and fencing work over https; plain http and a missing token are refused', async () => {
    const a = await c.settledActive();
    const s = await c.cli(['status', '--config', c.cfgPath, '--service', 'orders']);
    expect(s.code, s.stdout + s.stderr).toBe(0);
    expect(s.stdout).toMatch(new RegExp(`^${a}\\s+ACTIVE`, 'm'));
    const inst = c.instances.find((i) => i.id === a)!;
    const agent = new Agent({ connect: { ca: fs.readFileSync(tls.caFile, 'utf8') } });
    const ok = await request(`https://127.0.0.1:${inst.adminPort}/active`, { dispatcher: agent });
    await ok.body.dump();
    expect(ok.statusCode).toBe(200);
    await expect(request(`http://127.0.0.1:${inst.adminPort}/active`, { signal: AbortSignal.timeout(2000) }).then(async (r) => { await r.body.dump(); return r.statusCode; })).rejects.toThrow();
    const denied = await request(`https://127.0.0.1:${inst.adminPort}/v1/pause`, { method: 'POST', dispatcher: agent });
    expect(denied.statusCode).toBe(401);
    await denied.body.dump();
    // Metrics are a read, like /v1/status: no token needed.
    const metrics = await request(`https://127.0.0.1:${inst.adminPort}/metrics`, { dispatcher: agent });
    expect(metrics.statusCode).toBe(200);
    expect(await metrics.body.text()).toMatch(new RegExp(`^quorate_controller_active\\{service="orders",instance="${a}"\\} 1$`, 'm'));
    // Manual failover: the target asks the active to cede over https.
    const to = c.instances.find((i) => i.id !== a)!.id;
    const f = await c.cli(['failover', '--config', c.cfgPath, '--service', 'orders', '--to', to]);
    expect(f.code, f.stdout + f.stderr).toBe(0);
    // Automatic failover: graceful fencing of the old active over https.
    await c.instances.find((i) => i.id === to)!.service.kill9();
    expect(await c.settledActive(30_000, to)).toBe(a);
    expect(checkC4(await c.journalHistory())).toEqual([]);
    await agent.close();
  }, 60_000);
});
