// `quorate cluster` on three lab hosts (network namespaces on a bridge, each
// with its own address and sshd; the tarball installed once): start brings
// up a quorum of three, three journal nodes and two controllers beside the
// example service; status (table and JSON) tells the truth; a rolling
// restart under a write load fails no write and never has two actives; a
// host off the network shows unreachable while the rest go on; stop leaves
// nothing running; a changed host key is refused.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import { tailJournal } from '../../src/client/journal/tail.js';
import { silentLogger } from '../../src/io/log.js';
import { CLI, ensureBuilt } from '../helpers/cli-process.js';
import { checkC4 } from '../helpers/ha-cluster.js';
import { createLab, labUnavailable, type Lab, type LabHost } from '../helpers/lab.js';

let lab: Lab;
let cfg = '';
let h: LabHost[] = [];
const journalNodes = () => h.map((x, i) => ({ id: i + 1, host: x.address, port: 8485 }));

function cluster(args: string[], timeoutMs = 180_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'cluster', ...args, '--config', cfg], { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

interface Row { host: string; kind: string; id: string; state: string; pid: number | null; role: string | null; detail: string | null }
async function rows(): Promise<{ code: number; rows: Row[] }> {
  const r = await cluster(['status', '--json']);
  try {
    return { code: r.code, rows: JSON.parse(r.stdout) as Row[] };
  } catch {
    throw new Error(`cluster status --json printed no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

async function serviceRole(host: LabHost): Promise<{ role: string; written: number } | null> {
  try {
    const r = await request(`http://${host.address}:7001/role`, { headersTimeout: 500, bodyTimeout: 500 });
    return (await r.body.json()) as { role: string; written: number };
  } catch { return null; }
}

async function waitUntil<T>(what: string, timeoutMs: number, f: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try { const v = await f(); if (v) return v; last = v; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

describe.skipIf(labUnavailable() !== null)('quorate cluster on a three-host lab', () => {
  beforeAll(async () => {
    ensureBuilt();
    lab = await createLab({ hosts: 3, name: 'cluster' });
    h = lab.hosts;
    const bin = await lab.installQuorate();
    // <prefix>/lib/node_modules/quorate/dist/src/cli/main.js -> dist/examples/example-service.js
    const example = path.resolve(path.dirname(fs.realpathSync(bin)), '../../examples/example-service.js');
    const dir = lab.dir;
    fs.writeFileSync(path.join(dir, 'admin-token'), 'lab-admin-token-0123456789abcdef\n', { mode: 0o600 });
    cfg = path.join(dir, 'cluster.yaml');
    const hook = (x: LabHost) => `{ http: "http://${x.address}:7001/role" }`;
    fs.writeFileSync(cfg, [
      'cluster: lab',
      `runDir: ${dir}/run`,
      'quorum:',
      `  dataDir: ${dir}/data/quorum-{id}`,
      '  insecure: true',
      '  servers:',
      ...h.map((x, i) => `    - { id: ${i + 1}, host: ${x.address}, clientPort: 2181 }`),
      'journal:',
      `  dataDir: ${dir}/data/journal-{id}`,
      '  requestTimeoutMs: 1000',
      '  catchUpIntervalMs: 300',
      // The lab's own network: plain HTTP accepted knowingly (TLS on every port is tested on its own).
      '  insecure: true',
      '  nodes:',
      ...journalNodes().map((n) => `    - { id: ${n.id}, host: ${n.host}, port: ${n.port} }`),
      'controller:',
      '  sessionTimeoutMs: 6000',
      `  adminTokenFile: ${dir}/admin-token`,
      'services:',
      '  - name: orders',
      '    journal: true',
      '    fencing: [graceful, journal]',
      '    cedeMs: 3000',
      '    instances:',
      ...[0, 1].flatMap((i) => [
        `      - id: ${'ab'[i]}`,
        `        host: ${h[i].address}`,
        '        adminPort: 8019',
        '        servicePort: 7001',
        `        health: [ { http: "http://${h[i].address}:7001/health", timeoutMs: 500 } ]`,
        `        hooks: { toActive: ${hook(h[i])}, toStandby: ${hook(h[i])}, role: ${hook(h[i])} }`,
      ]),
      'ssh:',
      `  user: ${lab.sshUser}`,
      `  keyFile: ${lab.sshKeyFile}`,
      `  knownHosts: ${lab.knownHostsFile}`,
      `  command: ${bin}`,
      `  configPath: ${cfg}`,
      '  connectTimeoutMs: 3000',
    ].join('\n') + '\n');
    // The managed service itself is not the cluster's to start: it runs beside each controller.
    const nodes = journalNodes().map((n) => `${n.id}@${n.host}:${n.port}`).join(',');
    for (const i of [0, 1]) {
      lab.spawn(h[i], [process.execPath, example, '--instance', 'ab'[i], '--host', h[i].address, '--port', '7001', '--journal-nodes', nodes, '--journal', 'orders', '--write-every-ms', '20'],
        { logFile: path.join(dir, `service-${'ab'[i]}.log`) });
    }
    await waitUntil('the example services answer', 15_000, async () => (await serviceRole(h[0])) !== null && (await serviceRole(h[1])) !== null);
  }, 240_000);

  afterAll(async () => { await lab?.teardown(); }, 60_000);

  it('start brings up 3 quorum servers, 3 journal nodes and 2 controllers, in order, and reports each', async () => {
    const t0 = Date.now();
    const r = await cluster(['start']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    expect(lines.slice(0, 3).every((l) => / quorum \d: started quorum server \d \(pid \d+\)/.test(l))).toBe(true);
    expect(lines.slice(3, 6).every((l) => / journal \d: started journal node \d \(pid \d+\)/.test(l))).toBe(true);
    expect(lines.slice(6).every((l) => / controller orders:[ab]: started controller orders\/[ab] \(pid \d+\)/.test(l))).toBe(true);
    console.log(`cluster start on 3 hosts, 8 processes: ${Date.now() - t0} ms`);
  }, 200_000);

  it('status tells the truth: every process running, one quorum leader, one active instance', async () => {
    const settled = await waitUntil('a leader and an active instance', 60_000, async () => {
      const s = await rows();
      const roles = s.rows.map((x) => x.role);
      return s.code === 0 && roles.filter((x) => x === 'leader').length === 1 && roles.filter((x) => x === 'active').length === 1 ? s : null;
    });
    expect(settled.rows.map((x) => `${x.host} ${x.kind} ${x.id} ${x.state}`)).toEqual([
      ...h.map((x, i) => `${x.address} quorum ${i + 1} running`),
      ...h.map((x, i) => `${x.address} journal ${i + 1} running`),
      `${h[0].address} controller orders:a running`, `${h[1].address} controller orders:b running`,
    ]);
    for (const x of settled.rows) expect(x.pid).toBeGreaterThan(0);
    // The pids are the real processes, in the right host's namespace.
    for (const x of settled.rows) expect(lab.pidsOn(h.find((y) => y.address === x.host)!)).toContain(x.pid);
    expect(settled.rows.filter((x) => x.kind === 'quorum').map((x) => x.role).sort()).toEqual(['follower', 'follower', 'leader']);
    const active = settled.rows.find((x) => x.role === 'active')!;
    const svc = await serviceRole(h.find((y) => y.address === active.host)!);
    expect(svc?.role).toBe('active');
    const table = await cluster(['status']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^HOST\s+KIND\s+ID\s+STATE\s+PID\s+UPTIME\s+ROLE\s+NOTE$/);
    expect(table.stdout).toMatch(new RegExp(`^${active.host.replace(/\./g, '\\.')}\\s+controller\\s+${active.id}\\s+running\\s+${active.pid}\\s+\\S+\\s+active`, 'm'));
  }, 120_000);

  it('restart --rolling under a write load: no write fails, never two actives', async () => {
    const zk = new ZkClient({ connectString: h.map((x) => `${x.address}:2181`).join(','), sessionTimeoutMs: 10_000, logger: silentLogger() });
    await zk.connect();
    await zk.create('/load', Buffer.alloc(0)).catch(() => undefined);
    let stop = false;
    const load = { attempted: 0, acknowledged: 0, failed: 0, retried: 0, stallMaxMs: 0 };
    const writer = (async () => {
      let lastAck = Date.now();
      for (let n = 0; !stop && n < 1_000_000; n++) {
        load.attempted++;
        const give = Date.now() + 15_000;
        let done = false;
        for (let attempt = 0; !done && Date.now() < give; attempt++) {
          try {
            await zk.create(`/load/w-${n}`, Buffer.from(String(n)));
            done = true;
          } catch (e) {
            // A retried create whose first try was applied before the connection went.
            if (attempt > 0 && (e as { codeName?: string }).codeName === 'NODEEXISTS') { done = true; break; }
            load.retried++;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        if (done) { load.acknowledged++; load.stallMaxMs = Math.max(load.stallMaxMs, Date.now() - lastAck); lastAck = Date.now(); } else load.failed++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // Who is active, every 100 ms, from the services themselves; and the longest time the service wrote nothing.
    const roles = { samples: 0, twoActive: 0, noActiveMaxMs: 0, serviceStallMaxMs: 0 };
    const watcher = (async () => {
      let lastActive = Date.now();
      let lastWritten = -1;
      let lastWriteAt = Date.now();
      while (!stop) {
        const [a, b] = await Promise.all([serviceRole(h[0]), serviceRole(h[1])]);
        roles.samples++;
        const actives = [a, b].filter((x) => x?.role === 'active').length;
        if (actives > 1) roles.twoActive++;
        if (actives === 1) lastActive = Date.now(); else roles.noActiveMaxMs = Math.max(roles.noActiveMaxMs, Date.now() - lastActive);
        const written = (a?.written ?? 0) + (b?.written ?? 0);
        if (written !== lastWritten) { lastWritten = written; lastWriteAt = Date.now(); } else roles.serviceStallMaxMs = Math.max(roles.serviceStallMaxMs, Date.now() - lastWriteAt);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    const r = await cluster(['restart', '--rolling'], 400_000);
    const ms = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all([writer, watcher]);
    await zk.close();
    console.log(`rolling restart: ${ms} ms\n${r.stdout}${r.stderr}\nzk writes ${JSON.stringify(load)}\nservice ${JSON.stringify(roles)}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/manual failover from [ab] to [ab]/);
    expect(r.stdout).toMatch(/rolling restart done in \d+ ms/);
    // Quorum followers first, the leader last; then journal nodes; then controllers, the active's last.
    const restarted = [...r.stdout.matchAll(/^(\S+) (quorum|journal|controller) (\S+): restarted/gm)].map((m) => `${m[2]} ${m[3]}`);
    expect(restarted).toHaveLength(8);
    expect(restarted.slice(0, 3).every((x) => x.startsWith('quorum'))).toBe(true);
    expect(restarted.slice(3, 6).every((x) => x.startsWith('journal'))).toBe(true);
    expect(load.acknowledged).toBeGreaterThan(50);
    expect(load.failed).toBe(0);
    expect(roles.samples).toBeGreaterThan(20);
    expect(roles.twoActive).toBe(0);
    // Every process is back, and the journal never had two writers' edits accepted out of order (C4).
    const after = await waitUntil('everything running after the rolling restart', 30_000, async () => { const s = await rows(); return s.code === 0 ? s : null; });
    expect(after.rows.filter((x) => x.role === 'active')).toHaveLength(1);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    const history: { txid: bigint; instance: string; epoch: number; seq: number }[] = [];
    try {
      for await (const e of tailJournal('orders', 1n, { nodes: journalNodes(), waitMs: 300, signal: ac.signal })) {
        history.push({ txid: e.txid, ...(JSON.parse(e.payload.toString()) as { instance: string; epoch: number; seq: number }) });
      }
    } finally { clearTimeout(timer); }
    expect(history.length).toBeGreaterThan(50);
    expect(checkC4(history)).toEqual([]);
  }, 500_000);

  it('a host off the network shows unreachable with the cause; the others are reported as they are', async () => {
    await lab.disconnect(h[2]);
    try {
      const t0 = Date.now();
      const s = await rows();
      expect(s.code).toBe(1);
      const off = s.rows.filter((x) => x.host === h[2].address);
      expect(off.map((x) => `${x.kind} ${x.id} ${x.state}`)).toEqual(['quorum 3 unreachable', 'journal 3 unreachable']);
      for (const x of off) expect(x.detail).toMatch(new RegExp(`^host ${h[2].address.replace(/\./g, '\\.')}: (timed out after 3000 ms while connecting|connecting to .*: host unreachable)`));
      expect(s.rows.filter((x) => x.host !== h[2].address).every((x) => x.state === 'running')).toBe(true);
      expect(Date.now() - t0).toBeLessThan(25_000);
    } finally {
      await lab.reconnect(h[2]);
    }
  }, 60_000);

  it('stop takes everything down (the active controller last) and leaves nothing running', async () => {
    const before = await rows();
    const pids = before.rows.map((x) => x.pid).filter((p): p is number => p !== null);
    expect(pids).toHaveLength(8);
    const r = await cluster(['stop']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    const active = before.rows.find((x) => x.role === 'active')!;
    expect(lines[1]).toContain(`controller ${active.id}: stopped`);
    expect(lines.slice(2, 5).every((l) => / journal \d: stopped/.test(l))).toBe(true);
    expect(lines.slice(5).every((l) => / quorum \d: stopped/.test(l))).toBe(true);
    const alive = h.flatMap((x) => lab.pidsOn(x)).filter((p) => pids.includes(p));
    expect(alive).toEqual([]);
    const s = await rows();
    expect(s.code).toBe(1);
    expect(s.rows.every((x) => x.state === 'stopped')).toBe(true);
  }, 120_000);

  it('an ssh failure names the host and the cause: connection refused, authentication', async () => {
    const stranger = path.join(lab.dir, 'stranger_ed25519');
    const kg = await lab.exec(h[0], ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', stranger], { timeoutMs: 10_000 });
    expect(kg.code).toBe(0);
    const variant = path.join(lab.dir, 'cluster-bad-ssh.yaml');
    fs.writeFileSync(variant, fs.readFileSync(cfg, 'utf8') + `  hosts:\n    - { host: ${h[1].address}, keyFile: ${stranger} }\n    - { host: ${h[2].address}, port: 2222, fingerprint: "${h[2].fingerprint}" }\n`);
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'cluster', 'status', '--json', '--config', variant], { timeout: 60_000 }, (err, stdout) => resolve({ code: err === null ? 0 : Number(err.code), stdout }));
    });
    expect(r.code).toBe(1);
    const got = JSON.parse(r.stdout) as Row[];
    for (const x of got.filter((y) => y.host === h[1].address)) {
      expect(x.state).toBe('unreachable');
      expect(x.detail).toBe(`host ${h[1].address}: authentication as root@${h[1].address}:22 with the key ${stranger} failed (the server refused the key)`);
    }
    for (const x of got.filter((y) => y.host === h[2].address)) {
      expect(x.state).toBe('unreachable');
      expect(x.detail).toBe(`host ${h[2].address}: connecting to root@${h[2].address}:2222: connection refused (is sshd running there, on port 2222?)`);
    }
    expect(got.filter((y) => y.host === h[0].address).every((y) => y.state === 'stopped')).toBe(true);
  }, 90_000);

  it('a changed host key is refused, never accepted', async () => {
    const fp = await lab.changeHostKey(h[1]);
    const s = await rows();
    const refused = s.rows.filter((x) => x.host === h[1].address);
    expect(refused.length).toBeGreaterThan(0);
    for (const x of refused) {
      expect(x.state).toBe('unreachable');
      expect(x.detail).toContain(`host ${h[1].address}: host key of ${h[1].address}:22 does not match the pinned known_hosts entry (got ssh-ed25519 ${fp}`);
      expect(x.detail).toContain('refusing to connect');
    }
    const start = await cluster(['start']);
    expect(start.code).toBe(1);
    expect(start.stdout).toMatch(new RegExp(`^${h[1].address.replace(/\./g, '\\.')} quorum 2: FAILED: host .*does not match the pinned known_hosts entry`, 'm'));
    // The other hosts' processes were started regardless: stop them again.
    expect((await cluster(['stop'])).code).toBe(1);
  }, 180_000);
});
