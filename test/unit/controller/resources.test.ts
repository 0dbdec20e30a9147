// Resources that follow the active, against Debian's real resource-agents
// (heartbeat:Dummy keeps a state file, heartbeat:IPaddr2's meta-data, agents
// that need Pacemaker's tools): meta-data read and parameters checked at
// start, OCF exit codes, start in order with roll-back, stop in reverse,
// monitors, strays stopped; and command resources.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResourceConfig } from '../../../src/config/controller-config.js';
import { OcfAgent, parseMetaData, parseOcfDuration, pacemakerToolsUsed } from '../../../src/controller/ocf-agent.js';
import { ResourceSet } from '../../../src/controller/resources.js';
import { remoteCommand } from '../../../src/controller/fence-ssh.js';

const OCF_ROOT = '/usr/lib/ocf';
const agentsMissing = !fs.existsSync(path.join(OCF_ROOT, 'resource.d/heartbeat/Dummy'));
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-res-')); dirs.push(d); return d; };

const dummy = (name: string, extra: Partial<Extract<ResourceConfig, { kind: 'ocf' }>> = {}): ResourceConfig =>
  ({ kind: 'ocf', name, provider: 'heartbeat', type: 'Dummy', params: {}, timeoutMs: null, monitorIntervalMs: null, failures: 1, ...extra });
const cmd = (name: string, c: Partial<Extract<ResourceConfig, { kind: 'command' }>>): ResourceConfig =>
  ({ kind: 'command', name, start: 'true', stop: 'true', monitor: null, timeoutMs: 5000, monitorIntervalMs: 1000, failures: 1, ...c });

describe('OCF meta-data and durations', () => {
  it('reads durations as Pacemaker writes them', () => {
    expect(parseOcfDuration('20s')).toBe(20_000);
    expect(parseOcfDuration('20')).toBe(20_000);
    expect(parseOcfDuration('1m')).toBe(60_000);
    expect(parseOcfDuration('2min')).toBe(120_000);
    expect(parseOcfDuration('500ms')).toBe(500);
    expect(parseOcfDuration('1h')).toBe(3_600_000);
    expect(parseOcfDuration('soon')).toBeNull();
  });

  it('refuses what is not a resource-agent document', () => {
    expect(() => parseMetaData('<html></html>')).toThrow(/not a <resource-agent> document/);
  });

  it.skipIf(agentsMissing)('reads IPaddr2: ip required, the monitor interval and timeouts', async () => {
    const { runCommand } = await import('../../../src/io/run-command.js');
    const r = await runCommand(`${OCF_ROOT}/resource.d/heartbeat/IPaddr2 meta-data`, { timeoutMs: 5000, env: { OCF_ROOT }, outputMax: 1 << 20 });
    const m = parseMetaData(r.stdout);
    expect(m.parameters.find((p) => p.name === 'ip')).toEqual({ name: 'ip', required: true });
    expect(m.parameters.find((p) => p.name === 'nic')?.required).toBe(false);
    expect(m.actions.get('monitor')).toEqual({ timeoutMs: 20_000, intervalMs: 10_000 });
    expect(m.actions.get('start')?.timeoutMs).toBe(20_000);
  });

  it('finds the Pacemaker tools a script calls, not those in comments', () => {
    expect(pacemakerToolsUsed('# crm_attribute is not used\nfoo=1')).toEqual([]);
    expect(pacemakerToolsUsed('x=$(crm_attribute -N $n -G)\n$HA_SBIN_DIR/crm_node -n')).toEqual(['crm_attribute', 'crm_node']);
    expect(pacemakerToolsUsed('ocf_promotion_score -v 10')).toEqual(['crm_attribute']);
  });
});

describe.skipIf(agentsMissing)('OcfAgent.validate with the real agents', () => {
  const agent = (type: string, params: Record<string, string>) => new OcfAgent({ name: 'r1', provider: 'heartbeat', type, params, timeoutMs: null }, { ocfRoot: OCF_ROOT, stateDir: tmp() });

  it('accepts the parameters the agent declares', async () => {
    await expect(agent('Dummy', { fake: 'x' }).validate()).resolves.toBeUndefined();
  });
  it('refuses an unknown parameter, naming the ones it declares', async () => {
    await expect(agent('Dummy', { fakee: 'x' }).validate()).rejects.toThrow(/resource r1 \(ocf:heartbeat:Dummy\): unknown parameter fakee; the agent declares state, fake/);
  });
  it('refuses a missing required parameter', async () => {
    await expect(agent('IPaddr2', { nic: 'lo' }).validate()).rejects.toThrow(/missing required parameter ip/);
  });
  it('refuses an agent that is not there', async () => {
    await expect(agent('NoSuchAgent', {}).validate()).rejects.toThrow(/no agent at \/usr\/lib\/ocf\/resource.d\/heartbeat\/NoSuchAgent \(is the resource-agents package installed/);
  });
  it('refuses a promotable agent (promote/demote)', async () => {
    await expect(agent('Stateful', {}).validate()).rejects.toThrow(/a promotable agent/);
  });
  it("refuses an agent that calls Pacemaker's tools when they are missing", async () => {
    await expect(agent('SysInfo', {}).validate()).rejects.toThrow(/the agent calls Pacemaker's (attrd_updater|crm_attribute).*not installed: it would half-run outside Pacemaker/);
  });
  it("runs the agent's validate-all", async () => {
    await expect(agent('IPaddr2', { ip: 'not-an-address' }).validate()).rejects.toThrow(/validate-all says \d+ \(OCF_ERR_/);
  });
});

describe.skipIf(agentsMissing)('ResourceSet', () => {
  it('starts in order, monitors, stops in reverse, and stops strays at start', async () => {
    const dir = tmp();
    const order = path.join(dir, 'order');
    const set = new ResourceSet([
      dummy('d1'),
      cmd('c2', { start: `echo start-c2 >> ${order}; touch ${dir}/c2`, stop: `echo stop-c2 >> ${order}; rm -f ${dir}/c2`, monitor: `test -e ${dir}/c2 || exit 7` }),
    ], { ocfRoot: OCF_ROOT, stateDir: path.join(dir, 'state') });
    await set.validate();
    expect(set.monitorIntervalMs(0)).toBe(10_000); // Dummy declares 10s
    expect(await set.check(0)).toEqual({ kind: 'failed', reason: 'resource d1 (ocf:heartbeat:Dummy) is not running' });
    expect(await set.startAll()).toEqual({ ok: true, detail: 'started d1, c2' });
    expect(await set.check(0)).toEqual({ kind: 'ok' });
    expect(await set.check(1)).toEqual({ kind: 'ok' });
    expect(set.status().map((s) => s.running)).toEqual([true, true]);
    // What a controller restarted while active finds: its resources running, to be stopped.
    expect(await set.stopStrays()).toEqual(['d1', 'c2']);
    expect(fs.readFileSync(order, 'utf8')).toBe('start-c2\nstop-c2\n');
    expect(await set.check(0)).toMatchObject({ kind: 'failed' });
    expect(await set.stopAll()).toEqual({ ok: true, detail: 'stopped c2, d1' }); // stopping what is stopped succeeds
  });

  it('a start that fails stops what started before it, and says why', async () => {
    const dir = tmp();
    const set = new ResourceSet([dummy('d1'), cmd('broken', { start: 'echo no disk >&2; exit 1' })], { ocfRoot: OCF_ROOT, stateDir: dir });
    await set.validate();
    const r = await set.startAll();
    expect(r).toEqual({ ok: false, reason: 'resource broken: start exit 1: no disk; stopped again: d1' });
    expect(await set.check(0)).toMatchObject({ kind: 'failed', reason: 'resource d1 (ocf:heartbeat:Dummy) is not running' });
  });

  it('a stop that fails is reported, and the other resources are still stopped', async () => {
    const dir = tmp();
    const set = new ResourceSet([dummy('d1'), cmd('stuck', { stop: 'exit 1' })], { ocfRoot: OCF_ROOT, stateDir: dir });
    await set.validate();
    expect((await set.startAll()).ok).toBe(true);
    const r = await set.stopAll();
    expect(r).toEqual({ ok: false, reason: 'resource stuck: stop exit 1' });
    expect(await set.check(0)).toMatchObject({ kind: 'failed' }); // d1 stopped all the same
  });

  it('a monitor that hangs is a timeout, not a pass', async () => {
    const set = new ResourceSet([cmd('slow', { monitor: 'sleep 5', timeoutMs: 200 })], { ocfRoot: OCF_ROOT, stateDir: tmp() });
    expect(await set.check(0)).toMatchObject({ kind: 'timeout' });
  });

  it('fencing over ssh stops the target\'s resources after the fence command, in reverse', () => {
    const set = new ResourceSet([dummy('d1', { params: { fake: "it's" } }), cmd('c2', { stop: 'stop-c2' })], { ocfRoot: OCF_ROOT, stateDir: '/run/quorate/resource-agents/kv-b' });
    const stops = set.remoteStopCommands();
    expect(stops.map((s) => s.name)).toEqual(['c2', 'd1']);
    expect(stops[1].command).toMatch(/^env .*HA_RSCTMP='\/run\/quorate\/resource-agents\/kv-b'.* OCF_RESKEY_fake='it'\\''s' '\/usr\/lib\/ocf\/resource.d\/heartbeat\/Dummy' stop$/);
    const target = { id: 'b', host: '10.0.0.2', adminPort: 8019, servicePort: 7001, priority: 0, noFailover: false, health: [], hooks: null, resources: [], fencing: [] };
    const ssh = { kind: 'ssh' as const, user: 'root', port: 22, keyFile: '/k', knownHosts: null, fingerprint: 'SHA256:x', command: 'exit 0', timeoutMs: 1000 };
    const c = remoteCommand(target, ssh, 't', 'kv', stops);
    // The fence's own `exit 0` runs in a subshell: the stops still run.
    expect(c).toMatch(/; \( exit 0 \) \|\| exit \$\?; stop-c2 \|\| \{ echo 'resource c2 did not stop on 10.0.0.2' >&2; exit 70; \}; env /);
  });
});
