// The status page on a controller's admin port, in Debian's headless Chromium,
// with a cluster file of two services (orders and billing, two instances
// each): it shows the active instance, the quorum's leader and the journal
// nodes; a kill -9 of the active service shows up without a reload (the other
// instance active, `promoted` and `demoted` in the timeline); operator text (a
// pause reason with markup in it) reaches the DOM as text. The other service
// has its own section, gathered by this controller: its instances and roles,
// its journal, its failover (a kill -9 of its active) in its own timeline; a
// service added to the file with a configuration that does not load shows its
// error after a SIGHUP, the others still shown. The same page over TLS (admin
// API, quorum client ports and journal all TLS) with Chromium trusting only
// the test certificate's key. Set QUORATE_SCREENSHOT=docs/status-page.png to
// refresh the README's picture from the run.
import { createHash, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, openPage, type Page } from '../helpers/chromium.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { showLogsOnFailure, startHaCluster, type HaCluster } from '../helpers/ha-cluster.js';

const haveChromium = fs.existsSync(CHROMIUM);

/** A service's section of the page (service names are [a-z0-9_.-]: safe in a selector). */
const SECTION = (service: string) => `section.service[data-service="${service}"]`;
/** The instance rows the page shows for a service: id and role (active, or the phase). */
const ROWS = (service = 'orders') => `[...document.querySelectorAll('${SECTION(service)} table.instances tbody tr')].map((r) => r.dataset.instance + '=' + r.dataset.role).join(' ')`;
const ACTIVES = (service = 'orders') => `[...document.querySelectorAll('${SECTION(service)} table.instances tbody tr[data-role="active"]')].map((r) => r.dataset.instance).join(',')`;
const has = (type: string, instance: string, service = 'orders') => `document.querySelector('${SECTION(service)} .timeline li[data-type="${type}"][data-instance="${instance}"]') !== null`;

describe.skipIf(!haveChromium)('the status page', () => {
  let c: HaCluster | undefined;
  let page: Page | undefined;
  showLogsOnFailure(() => c);
  beforeAll(async () => { c = await startHaCluster(2, { extraServices: ['billing'] }); }, 120_000);
  afterAll(async () => { await page?.close(); await c?.stopAll(); });

  it('shows who is active, then a failover without a reload; the page is locked down and escapes what it shows', async () => {
    const cl = c!;
    const a = await cl.settledActive();
    const b = cl.instances.find((i) => i.id !== a)!.id;
    const served = cl.instances.find((i) => i.id === a)!;
    const base = `http://127.0.0.1:${served.adminPort}`;

    // What the browser is given: the headers that keep the page to itself.
    const html = await request(`${base}/`, { signal: AbortSignal.timeout(2000) });
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(String(html.headers['content-security-policy'])).toMatch(/script-src 'self'/);
    expect(String(html.headers['content-security-policy'])).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(html.headers['x-content-type-options']).toBe('nosniff');
    expect(html.headers['cache-control']).toBe('no-store');
    expect(await html.body.text()).not.toMatch(/<script>|<style>| on\w+=/); // no inline script or handlers
    const cluster = await request(`${base}/v1/cluster`, { signal: AbortSignal.timeout(10_000) });
    expect(cluster.statusCode).toBe(200);
    const v = (await cluster.body.json()) as { instances: { id: string; active: boolean }[]; quorumServers: { mode: string }[]; quorumLeader: string | null; journalNodes: { committedTxid: string | null }[] };
    expect(v.instances.filter((x) => x.active).map((x) => x.id)).toEqual([a]);
    expect(v.quorumServers.map((s) => s.mode)).toEqual(['standalone']);
    expect(v.quorumLeader).toBe(`127.0.0.1:${cl.quorumPorts[0]}`);
    expect(v.journalNodes.map((n) => n.committedTxid === null)).toEqual([false, false, false]);

    page = await openPage(`${base}/`);
    expect(await page.waitFor('the page shows one active', ACTIVES(), 20_000)).toBe(a);
    expect(await page.evaluate<string>(ROWS())).toMatch(new RegExp(`${b}=(watching|standby|contending)`));
    expect(await page.evaluate<string>(`document.querySelector('#quorum tbody tr').dataset.mode`)).toBe('standalone');
    expect(await page.evaluate<number>(`document.querySelectorAll('${SECTION('orders')} table.journal tbody tr').length`)).toBe(3);
    expect(await page.evaluate<string>(`document.getElementById('conn').textContent`)).toBe('live');
    // A mark in this document: gone if the page were reloaded.
    await page.evaluate(`window.quorateTestMark = 'not reloaded'`);

    await served.service.kill9();
    expect(await cl.settledActive(30_000, a)).toBe(b);
    expect(await page.waitFor('the page shows the other instance active', `(${ACTIVES()}) === '${b}' && ${ACTIVES()}`, 20_000)).toBe(b);
    await page.waitFor('the failover in the timeline', `${has('promoted', b)} && ${has('demoted', a)}`, 20_000);
    expect(await page.evaluate<string>(`document.querySelector('${SECTION('orders')} .timeline li[data-type="demoted"][data-instance="${a}"] .what').textContent`)).toMatch(/stopped being active: .*(unhealthy|not-responding|ECONNREFUSED)/);
    expect(await page.evaluate<string>('window.quorateTestMark')).toBe('not reloaded');
    // The old active's service back, as a standby: the picture shows a settled pair after a failover.
    await served.service.restart();
    await page.waitFor('the old active back, healthy, as a standby', `/${a}=watching/.test(${ROWS()}) && document.querySelector('${SECTION('orders')} tr[data-instance="${a}"] td.health').textContent === 'healthy'`, 30_000);

    // Operator text is shown as text: a pause reason with markup in it.
    const reason = '<img src=x onerror="window.quorateInjected=1"><b>db upgrade</b>';
    const paused = await request(`${base}/v1/pause`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reason, by: 'test<script>' }), signal: AbortSignal.timeout(10_000) });
    expect(paused.statusCode, await paused.body.text()).toBe(200);
    const alert = await page.waitFor<string>('the pause shown', `[...document.querySelectorAll('#alerts li')].map((l) => l.textContent).find((t) => t.includes('paused')) || ''`, 20_000);
    expect(alert).toContain(reason);
    expect(alert).toContain('test<script>');
    await page.waitFor('the pause in the timeline', `document.querySelector('${SECTION('orders')} .timeline li[data-type="paused"]') !== null`, 20_000);
    expect(await page.evaluate<number>(`document.querySelectorAll('#alerts img, #alerts b, #alerts script').length`)).toBe(0);
    expect(await page.evaluate<unknown>('window.quorateInjected')).toBeUndefined();
    const resumed = await request(`${base}/v1/resume`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(10_000) });
    expect(resumed.statusCode).toBe(200);
    await resumed.body.dump();
    // A page from elsewhere still cannot write (the admin API refuses any request with an Origin).
    const fromPage = await page.evaluate<number>(`fetch('v1/cede', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status)`);
    expect(fromPage).toBe(403);
  }, 150_000);

  it('shows every service of the cluster file, each with its instances, journal and history; a failover of the other service; a service that does not load shows why', async () => {
    const cl = c!;
    const billing = cl.others[0];
    const ba = await billing.settledActive();
    const bb = billing.instances.find((i) => i.id !== ba)!.id;
    const served = cl.instances.find((i) => i.id === 'a')!;
    const base = `http://127.0.0.1:${served.adminPort}`;

    // /v1/cluster: the own service's fields as before, and services: own first, then billing, gathered by this controller.
    const cluster = await request(`${base}/v1/cluster`, { signal: AbortSignal.timeout(10_000) });
    expect(cluster.statusCode).toBe(200);
    type Svc = { service: string; error?: string; instances: { id: string; active: boolean; reachable: boolean }[]; lock: { instance: string } | null; journalNodes: unknown[] | null };
    const v = (await cluster.body.json()) as { service: string; instances: unknown[]; services: Svc[] };
    expect(v.service).toBe('orders');
    expect(v.instances).toHaveLength(2);
    expect(v.services.map((x) => x.service)).toEqual(['orders', 'billing']);
    const vb = v.services[1];
    expect(vb.error).toBeUndefined();
    expect(vb.instances.map((x) => `${x.id}:${x.reachable}:${x.active}`).sort()).toEqual([`${ba}:true:true`, `${bb}:true:false`].sort());
    expect(vb.lock?.instance).toBe(ba);
    expect(vb.journalNodes).toHaveLength(3);
    // Another service's history through this controller; a name not in the file is refused.
    const hist = await request(`${base}/v1/history?service=billing&limit=10`, { signal: AbortSignal.timeout(10_000) });
    const hb = (await hist.body.json()) as { service: string; entries: { type: string; instance: string }[] };
    expect(hist.statusCode).toBe(200);
    expect(hb.service).toBe('billing');
    expect(hb.entries.some((e) => e.type === 'promoted' && e.instance === ba)).toBe(true);
    const bad = await request(`${base}/v1/history?service=nope%3Cb%3E`, { signal: AbortSignal.timeout(10_000) });
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: string }).error).toMatch(/^service: "nope<b>" is not a service of cluster test \(services: orders, billing\)/);

    await page?.close();
    page = await openPage(`${base}/`);
    // Both services in the DOM, this controller's first, each with its instances and roles.
    expect(await page.waitFor<string>('two service sections', `[...document.querySelectorAll('section.service')].map((x) => x.dataset.service + (x.dataset.own === 'true' ? '*' : '')).join(',')`, 20_000)).toBe('orders*,billing');
    expect(await page.waitFor('billing shows its active', ACTIVES('billing'), 20_000)).toBe(ba);
    expect(await page.evaluate<string>(ROWS('billing'))).toMatch(new RegExp(`${bb}=(watching|standby|contending)`));
    expect(await page.evaluate<string>(ROWS('orders'))).toMatch(/a=\w+ b=\w+/);
    expect(await page.evaluate<string>(`document.querySelector('${SECTION('billing')} .lock').textContent`)).toContain(`lock: ${ba} (token `);
    expect(await page.evaluate<number>(`document.querySelectorAll('${SECTION('billing')} table.journal tbody tr').length`)).toBe(3);
    await page.waitFor('billing\'s first promotion in its own timeline', has('promoted', ba, 'billing'), 20_000);
    expect(await page.evaluate<number>(`document.querySelectorAll('#quorum tbody tr').length`)).toBe(1); // the quorum once
    await page.evaluate(`window.quorateTestMark2 = 'not reloaded'`);

    // The other service's active killed: its section shows the other instance active and the failover in its timeline.
    const victim = billing.instances.find((i) => i.id === ba)!;
    await victim.service.kill9();
    expect(await billing.settledActive(30_000, ba)).toBe(bb);
    expect(await page.waitFor('billing shows the other instance active', `(${ACTIVES('billing')}) === '${bb}' && ${ACTIVES('billing')}`, 20_000)).toBe(bb);
    await page.waitFor('billing\'s failover in its timeline', `${has('promoted', bb, 'billing')} && ${has('demoted', ba, 'billing')}`, 20_000);
    // Each section shows its own service's history (both services have instances a and b): the seqs the page shows are the service's.
    const seqs = (service: string) => `fetch('v1/history?service=${service}&limit=50').then((r) => r.json()).then((h) => h.entries.map((e) => e.seq).reverse().join(',') === [...document.querySelectorAll('${SECTION(service)} .timeline li[data-seq]')].map((l) => l.dataset.seq).join(','))`;
    await page.waitFor('billing\'s timeline is billing\'s history', seqs('billing'), 20_000);
    await page.waitFor('orders\' timeline is orders\' history', seqs('orders'), 20_000);
    expect(await page.evaluate<string>(ROWS('orders'))).toMatch(/=active/);
    expect(await page.evaluate<string>('window.quorateTestMark2')).toBe('not reloaded');
    await victim.service.restart();
    await page.waitFor('billing\'s old active back as a standby', `/${ba}=watching/.test(${ROWS('billing')}) && document.querySelector('${SECTION('billing')} tr[data-instance="${ba}"] td.health').textContent === 'healthy'`, 30_000);
    const shot = process.env.QUORATE_SCREENSHOT ?? path.join(cl.dir, 'status-page.png');
    await page.screenshot(shot);
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);

    // A third service whose configuration does not load, added to the file: after a SIGHUP the page shows its error, the others still shown.
    fs.appendFileSync(cl.cfgPath, ['  - name: broken', '    instances:', '      - { id: x, host: 127.0.0.1, adminPort: 1 }', ''].join('\n'));
    process.kill(served.controller.pid, 'SIGHUP');
    const err = await page.waitFor<string>('the broken service\'s error', `(document.querySelector('${SECTION('broken')} .config-error') || {}).textContent || ''`, 20_000);
    expect(err).toMatch(/instance x has no health checks and no servicePort/);
    expect(await page.evaluate<string>(`[...document.querySelectorAll('section.service')].map((x) => x.dataset.service).join(',')`)).toBe('orders,billing,broken');
    await page.waitFor('orders and billing still shown', `${ACTIVES('orders')} !== '' && ${ACTIVES('billing')} === '${bb}'`, 20_000);
    const hist2 = await request(`${base}/v1/history?service=broken`, { signal: AbortSignal.timeout(10_000) });
    expect(hist2.statusCode).toBe(200);
    expect(((await hist2.body.json()) as { entries: unknown[] }).entries).toEqual([]);
  }, 150_000);
});

describe.skipIf(!haveChromium)('the status page over TLS', () => {
  let c: HaCluster | undefined;
  let page: Page | undefined;
  let dir = '';
  let spki = '';
  showLogsOnFailure(() => c);
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-page-tls-'));
    const ca = makeCa(dir, 'cluster-ca');
    const host = issueCert(ca, 'host', 'controller-host', { ips: ['127.0.0.1'] });
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'status-page-admin-token\n', { mode: 0o600 });
    spki = createHash('sha256').update(createPublicKey(host.cert).export({ type: 'spki', format: 'der' })).digest('base64');
    // TLS everywhere: the admin API (no client certificate asked of a browser), a quorum of three (peers and client ports), the journal nodes.
    c = await startHaCluster(2, { quorumServers: 3, tlsEverywhere: true, tls: { certFile: host.certFile, keyFile: host.keyFile, caFile: ca.certFile, tokenFile } });
  }, 120_000);
  afterAll(async () => { await page?.close(); await c?.stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('is served over https and reads the quorum and the journal over TLS', async () => {
    const cl = c!;
    const a = await cl.settledActive();
    const served = cl.instances.find((i) => i.id !== a)!;
    page = await openPage(`https://127.0.0.1:${served.adminPort}/ui`, { trustSpki: [spki] });
    expect(await page.waitFor('the page shows one active', ACTIVES(), 20_000)).toBe(a);
    expect(await page.evaluate<string>('location.protocol')).toBe('https:');
    // srvr over the quorum's TLS client ports (one leader, two followers), and each journal node's state over HTTPS.
    expect(await page.waitFor<string>('the quorum\'s modes', `[...document.querySelectorAll('#quorum tbody tr')].map((r) => r.dataset.mode).sort().join(',')`, 10_000)).toBe('follower,follower,leader');
    const leader = await page.evaluate<string>(`document.querySelector('#quorum tbody tr[data-mode="leader"]').dataset.server`);
    expect(await page.evaluate<string>(`document.getElementById('quorum-line').textContent`)).toContain(`leader ${leader}`);
    expect(await page.evaluate<string>(`[...document.querySelectorAll('${SECTION('orders')} table.journal tbody tr')].map((r) => r.cells.length).join(',')`)).toBe('5,5,5');
    await page.waitFor('the first promotion in the timeline', has('promoted', a), 20_000);
  }, 90_000);
});
