// A floating IP that follows the active, on three lab hosts: the key-value
// example service with Pacemaker's own IPaddr2 agent (Debian's
// resource-agents) as a resource of the service. The address is held by the
// active's host alone (read with `ip addr` inside each host's namespace); a
// client writing through the address keeps writing after kill -9 of the
// active service (the address moves, with gratuitous ARP, and the client's
// next connection lands on the new active); the old host gives it up; the
// address deleted by hand fails its monitor and the role moves. A
// misconfigured agent refuses the controller's start, naming the parameter.
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli-process.js';
import { createLab, labUnavailable, type Lab, type LabHost } from '../helpers/lab.js';
import { deploy, PORTS, type Deployment, type Instance } from '../nemesis/deploy.js';

const IPADDR2 = '/usr/lib/ocf/resource.d/heartbeat/IPaddr2';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let lab: Lab;
let d: Deployment;
let vip = '';
let bin = '';
let logDir = '';

async function waitUntil<T>(what: string, timeoutMs: number, f: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; Date.now() < end && i < timeoutMs / 100; i++) {
    try { const v = await f(); if (v) return v; last = v; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function isActive(i: Instance): Promise<boolean> {
  try {
    const r = await request(`${i.adminUrl}/active`, { headersTimeout: 500, bodyTimeout: 500 });
    await r.body.dump();
    return r.statusCode === 200;
  } catch { return false; }
}

async function theActive(): Promise<Instance | null> {
  const a: Instance[] = [];
  for (const i of d.instances) if (await isActive(i)) a.push(i);
  return a.length === 1 ? a[0] : null;
}

/** The hosts whose namespace holds the floating address. */
async function holders(): Promise<string[]> {
  const out: string[] = [];
  for (const h of d.hosts) {
    const r = await lab.exec(h, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 });
    if (r.stdout.split('\n').some((l) => l.includes(` ${vip}/`))) out.push(h.name);
  }
  return out;
}

const hostOf = (i: Instance): LabHost => i.host;

describe.skipIf(labUnavailable() !== null || !fs.existsSync(IPADDR2))('a floating IP (heartbeat:IPaddr2) follows the active across lab hosts', () => {
  beforeAll(async () => {
    ensureBuilt();
    lab = await createLab({ hosts: 3, name: 'vip' });
    bin = await lab.installQuorate();
    vip = `198.18.${lab.slot}.100`;
    logDir = path.join(lab.dir, 'logs');
    d = await deploy(lab, bin, {
      hosts: 3, instances: 3, sessionTimeoutMs: 5000, logDir, failsafe: false, serviceListenAll: true,
      // With its controller dead, only its host can stop the old active's address: ssh goes there.
      fencing: `[graceful, { ssh: { user: root, keyFile: ${lab.sshKeyFile}, knownHosts: ${lab.knownHostsFile}, timeoutMs: 10000 } }, journal]`,
      serviceLines: [
        '    resources:',
        `      - { name: vip, ocf: "heartbeat:IPaddr2", params: { ip: ${vip}, cidr_netmask: 24, arp_count: 3 }, monitorIntervalMs: 1000 }`,
      ],
    });
    await d.start();
  }, 180_000);

  afterAll(async () => {
    await lab?.teardown();
  }, 60_000);

  it('the address answers on the active host only; kill -9 of the active service moves it; writes through it go on; the old host gives it up', async () => {
    const first = await waitUntil('one active', 30_000, theActive);
    expect(await waitUntil('the address on the active host', 15_000, async () => { const x = await holders(); return x.length === 1 ? x : null; })).toEqual([hostOf(first).name]);

    // A client that knows only the floating address, keeping its connection open between writes.
    const client = new Agent({ keepAliveTimeout: 60_000, connect: { timeout: 1000 } });
    let n = 0;
    const put = async (): Promise<boolean> => {
      try {
        const r = await request(`http://${vip}:${PORTS.service}/kv/k${++n}`, { method: 'PUT', body: `v${n}`, dispatcher: client, headersTimeout: 1500, bodyTimeout: 1500 });
        await r.body.dump();
        return r.statusCode === 200;
      } catch { return false; }
    };
    expect(await waitUntil('a write through the floating address', 10_000, put)).toBe(true);

    await first.service.kill9();
    const killedAt = Date.now();
    // Writes resume through the same address, on a new connection to the new active.
    await waitUntil('a write through the floating address after the kill', 45_000, put);
    const resumedMs = Date.now() - killedAt;
    const second = await waitUntil('a new active', 10_000, theActive);
    expect(second.id).not.toBe(first.id);
    expect(await holders()).toEqual([hostOf(second).name]);
    const role = await request(`http://${vip}:${PORTS.service}/role`, { headersTimeout: 1500, bodyTimeout: 1500 });
    expect(((await role.body.json()) as { role: string }).role).toBe('active');
    console.log(`vip: kill -9 of ${first.id} to the first write through ${vip} on ${second.id}: ${resumedMs} ms`);

    // The old instance comes back standby, and its host does not take the address back.
    await first.service.start();
    await sleep(3000);
    expect(await holders()).toEqual([hostOf(second).name]);
    expect(await isActive(first)).toBe(false);
    await client.close();
  }, 120_000);

  it('kill -9 of the active\'s controller: the next active fences its host over ssh, which stops the address there, before taking it', async () => {
    const old = await waitUntil('one active', 30_000, theActive);
    expect(await holders()).toEqual([hostOf(old).name]);
    await old.controller.kill9();
    // Its service still runs and its address is still up: nothing on that host stops them now.
    const next = await waitUntil('a new active', 45_000, async () => { const a = await theActive(); return a !== null && a.id !== old.id ? a : null; });
    expect(await waitUntil('the address on the new active host only', 10_000, async () => { const x = await holders(); return x.length === 1 && x[0] === hostOf(next).name ? x : null; })).toEqual([hostOf(next).name]);
    const st = await request(`${next.adminUrl}/v1/status`, { headersTimeout: 1500, bodyTimeout: 1500 });
    const status = (await st.body.json()) as { lastFence: string | null };
    expect(status.lastFence).toMatch(/^ssh: root@.* ran the fence command and stopped vip \(exit 0.*\); port 7001 is closed$/);
    const put = await request(`http://${vip}:${PORTS.service}/kv/after-fence`, { method: 'PUT', body: 'x', headersTimeout: 3000, bodyTimeout: 3000 });
    expect(put.statusCode).toBe(200);
    // Its controller back: it finds nothing of the address to stop, and stays standby.
    await old.service.start().catch(() => undefined); // the fence killed it
    await old.controller.start();
    await sleep(2000);
    expect(await holders()).toEqual([hostOf(next).name]);
    expect(await isActive(old)).toBe(false);
  }, 120_000);

  it('the address removed by hand from the active host: its monitor fails, and the role (with the address) moves', async () => {
    const old = await waitUntil('one active', 30_000, theActive);
    const shown = await lab.exec(hostOf(old), ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 });
    const line = shown.stdout.split('\n').find((l) => l.includes(` ${vip}/`));
    expect(line).toBeDefined();
    const dev = line!.split(/\s+/)[1];
    const del = await lab.exec(hostOf(old), ['ip', 'addr', 'del', `${vip}/24`, 'dev', dev], { timeoutMs: 5000 });
    expect(del.code).toBe(0);
    const next = await waitUntil('another active', 30_000, async () => { const a = await theActive(); return a !== null && a.id !== old.id ? a : null; });
    expect(await waitUntil('the address on the new active host', 10_000, async () => { const x = await holders(); return x.length === 1 ? x : null; })).toEqual([hostOf(next).name]);
    const st = await request(`${old.adminUrl}/v1/status`, { headersTimeout: 1500, bodyTimeout: 1500 });
    const status = (await st.body.json()) as { lastFailure: string | null };
    expect(status.lastFailure).toMatch(/resource vip \(ocf:heartbeat:IPaddr2\) is not running/);
  }, 90_000);

  it('a controller whose agent parameters are wrong refuses to start, naming the parameter', async () => {
    const bad = path.join(lab.dir, 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(d.cfgPath, 'utf8').replace('cidr_netmask: 24', 'netmask: 24'));
    const node = process.execPath;
    const main = fs.realpathSync(bin);
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(node, [main, 'controller', 'start', '--config', bad, '--service', 'kv', '--id', 'a'], { timeout: 30_000 }, (err, _out, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr });
      });
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/resource vip \(ocf:heartbeat:IPaddr2\): unknown parameter netmask; the agent declares ip, nic, cidr_netmask/);
  }, 60_000);
});
