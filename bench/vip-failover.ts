// vip-failover: the key-value example service on three lab hosts (network
// namespaces, each with its own address and sshd), its floating IP a
// heartbeat:IPaddr2 resource (Debian's resource-agents) that follows the
// active. Each round: a client writing through the floating address only
// (PUT /kv/<key>, a keep-alive connection, retried every few ms), kill -9 of
// the active service, and ms until the client's first acknowledged write
// after the kill; then where the address is (exactly one host, the new
// active's) and the killed service restarted (it comes back standby). Needs
// root and `ip netns`.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { createLab, labUnavailable, type Lab } from '../test/helpers/lab.js';
import { deploy, PORTS, type Deployment, type Instance } from '../test/nemesis/deploy.js';
import { parseBenchArgs, type OptionSpec } from './lib/options.js';
import { summarize } from './lib/stats.js';

const SPECS: OptionSpec[] = [
  { name: 'rounds', full: 10, quick: 3, integer: true, help: 'kill -9 of the active service' },
  { name: 'budget-seconds', full: 600, quick: 240, help: 'give up past this wall time' },
];
const SWITCHES = { quick: 'short run (also BENCH_QUICK=1)', help: 'this text' };

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, f: () => Promise<T | null>): Promise<T> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const v = await f().catch(() => null);
    if (v !== null) return v;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

async function answers(url: string): Promise<boolean> {
  try {
    const r = await request(url, { headersTimeout: 500, bodyTimeout: 500 });
    await r.body.dump();
    return r.statusCode === 200;
  } catch { return false; }
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs('vip-failover', argv, SPECS, SWITCHES);
  if (typeof parsed === 'number') return parsed;
  const o = parsed.values;
  const why = labUnavailable();
  if (why !== null) { process.stderr.write(`vip-failover needs the lab: ${why}\n`); return 1; }
  const deadline = performance.now() + o['budget-seconds'] * 1000;
  let lab: Lab | null = null;
  try {
    lab = await createLab({ hosts: 3, name: 'vip-bench' });
    const bin = await lab.installQuorate();
    const vip = `198.18.${lab.slot}.100`;
    const d: Deployment = await deploy(lab, bin, {
      hosts: 3, instances: 3, sessionTimeoutMs: 5000, logDir: path.join(lab.dir, 'logs'), failsafe: false, serviceListenAll: true,
      fencing: `[graceful, { ssh: { user: root, keyFile: ${lab.sshKeyFile}, knownHosts: ${lab.knownHostsFile}, timeoutMs: 10000 } }, journal]`,
      serviceLines: ['    resources:', `      - { name: vip, ocf: "heartbeat:IPaddr2", params: { ip: ${vip}, cidr_netmask: 24, arp_count: 3 }, monitorIntervalMs: 1000 }`],
    });
    await d.start();
    log(`lab up: hosts ${d.hosts.map((h) => h.address).join(', ')}, floating ${vip}`);
    const theActive = async (): Promise<Instance | null> => {
      const a: Instance[] = [];
      for (const i of d.instances) if (await answers(`${i.adminUrl}/active`)) a.push(i);
      return a.length === 1 ? a[0] : null;
    };
    const holders = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const h of d.hosts) {
        const r = await lab!.exec(h, ['ip', '-4', '-o', 'addr', 'show'], { timeoutMs: 5000 });
        if (r.stdout.includes(` ${vip}/`)) out.push(h.address);
      }
      return out;
    };
    const client = new Agent({ keepAliveTimeout: 60_000, connect: { timeout: 500 } });
    let n = 0;
    const put = async (): Promise<boolean> => {
      try {
        const r = await request(`http://${vip}:${PORTS.service}/kv/k${++n}`, { method: 'PUT', body: `v${n}`, dispatcher: client, headersTimeout: 1000, bodyTimeout: 1000 });
        await r.body.dump();
        return r.statusCode === 200;
      } catch { return false; }
    };
    const samples: number[] = [];
    const wrongHolders: string[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      if (performance.now() > deadline) throw new Error(`over the budget of ${o['budget-seconds']} s after ${round - 1} rounds`);
      const active = await until('one active', 30_000, theActive);
      await until('a write through the floating address', 10_000, async () => ((await put()) ? true : null));
      const k = performance.now();
      await active.service.kill9();
      await until('a write after the kill', 60_000, async () => ((await put()) ? true : null));
      const ms = performance.now() - k;
      samples.push(ms);
      const next = await until('a new active', 10_000, theActive);
      const where = await holders();
      if (where.length !== 1 || where[0] !== next.host.address) wrongHolders.push(`round ${round}: ${vip} on [${where.join(', ')}], active ${next.id} on ${next.host.address}`);
      log(`round ${round}: kill -9 of ${active.id} -> first write through ${vip} after ${ms.toFixed(0)} ms (now on ${next.id})`);
      await active.service.start();
      await until(`${active.id} standby again`, 30_000, async () => ((await answers(`${active.adminUrl}/standby`)) ? true : null));
      await sleep(1000);
    }
    await client.close();
    const s = summarize(samples);
    process.stdout.write(JSON.stringify({
      benchmark: 'vip-failover',
      setup: '3 lab hosts, the key-value example service, heartbeat:IPaddr2 floating IP (monitor 1 s), controller session 5 s, health check every 200 ms',
      rounds: samples.length,
      killToFirstWriteThroughVipMs: { p50: Math.round(s.p50Ms), max: Math.round(s.maxMs), all: samples.map((x) => Math.round(x)) },
      addressOnExactlyTheActiveHost: wrongHolders.length === 0, wrongHolders,
    }, null, 2) + '\n');
    return wrongHolders.length === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`vip-failover: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await lab?.teardown();
  }
}
