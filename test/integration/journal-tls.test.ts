// Journal nodes over HTTPS with client certificates required (a cluster CA
// and certificates made by openssl in the test): a caller without a
// certificate, or with one from another CA, gets no answer at all (the
// handshake fails) and so cannot fence the writer; a writer and a reader with
// the cluster's certificates work, and so does catch-up between nodes; the
// erasing calls (format --force, purge) need an operator's certificate.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalNodeClient, type JournalTls } from '../../src/client/journal/node-client.js';
import { QuorumJournalWriter } from '../../src/client/journal/quorum-writer.js';
import { tailJournal } from '../../src/client/journal/tail.js';
import { issueCert, makeCa } from '../helpers/certs.js';
import { startJournalNodes, type JournalCluster } from '../helpers/journal-nodes.js';

describe('journal nodes with mutual TLS', () => {
  let c: JournalCluster;
  let dir = '';
  let writerTls: JournalTls;
  let operatorTls: JournalTls;
  let strangerTls: JournalTls;
  let opFiles: { certFile: string; keyFile: string };
  let nodeFiles: { certFile: string; keyFile: string };
  let clusterCa: ReturnType<typeof makeCa>;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-jtls-'));
    const ca = makeCa(dir, 'cluster-ca');
    clusterCa = ca;
    const node = issueCert(ca, 'node', 'journal-node', { ips: ['127.0.0.1'] });
    nodeFiles = node;
    const caPem = fs.readFileSync(ca.certFile, 'utf8');
    const w = issueCert(ca, 'writer', 'orders-service');
    writerTls = { cert: w.cert, key: w.key, ca: caPem };
    const op = issueCert(ca, 'operator', 'ops-admin');
    operatorTls = { cert: op.cert, key: op.key, ca: caPem };
    opFiles = op;
    const other = makeCa(fs.mkdtempSync(path.join(dir, 'other-')), 'stranger-ca');
    const s = issueCert(other, 'stranger', 'orders-service', { ips: ['127.0.0.1'] });
    strangerTls = { cert: s.cert, key: s.key, ca: caPem };
    c = await startJournalNodes(3, { journalExtra: [`  tls: { certFile: ${node.certFile}, keyFile: ${node.keyFile}, caFile: ${ca.certFile} }`, '  operators: [ops-admin]'] });
  }, 60_000);
  afterAll(async () => { await c?.stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('a writer and a reader with the cluster\'s certificates write and read; a node that was down catches up over TLS', async () => {
    const w = await QuorumJournalWriter.open('orders', { nodes: c.nodes, formatIfNew: true, tls: writerTls });
    await w.append([Buffer.from('a'), Buffer.from('b')]);
    await c.procs[2].stop();
    await w.append([Buffer.from('c')]);
    await w.close();
    await c.procs[2].restart();
    const node3 = new JournalNodeClient(c.nodes[2], 2000, { tls: writerTls });
    try {
      let committed = 0n;
      for (let i = 0; i < 50 && committed < 3n; i++) { committed = (await node3.state('orders')).committedTxid; await new Promise((r) => setTimeout(r, 100)); }
      expect(committed).toBe(3n);
    } finally { await node3.close(); }
    const seen: string[] = [];
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 3000);
    for await (const e of tailJournal('orders', 1n, { nodes: c.nodes, waitMs: 200, signal: ac.signal, tls: writerTls })) {
      seen.push(e.payload.toString());
      if (seen.length === 3) break;
    }
    clearTimeout(t);
    expect(seen).toEqual(['a', 'b', 'c']);
  }, 60_000);

  it('without a certificate, or with one from another CA, a caller gets no answer and cannot fence the writer', async () => {
    const w = await QuorumJournalWriter.open('orders', { nodes: c.nodes, tls: writerTls });
    const before = await new JournalNodeClient(c.nodes[0], 2000, { tls: writerTls }).state('orders');
    const noCert = new Client(`https://127.0.0.1:${c.nodes[0].port}`, { connect: { ca: writerTls.ca, rejectUnauthorized: true } });
    await expect(noCert.request({ method: 'POST', path: '/v1/journals/orders/new-epoch', body: JSON.stringify({ epoch: before.promisedEpoch + 1 }), headers: { 'content-type': 'application/json' } }))
      .rejects.toThrow();
    await noCert.close();
    const plain = new Client(`http://127.0.0.1:${c.nodes[0].port}`);
    await expect(plain.request({ method: 'GET', path: '/v1/health', headersTimeout: 2000 })).rejects.toThrow();
    await plain.close();
    for (const n of c.nodes) {
      const stranger = new JournalNodeClient(n, 2000, { tls: strangerTls });
      await expect(stranger.newEpoch('orders', before.promisedEpoch + 1)).rejects.toThrow(/unreachable|did not answer/);
      await stranger.close();
    }
    // The writer was never fenced: it still writes.
    await w.append([Buffer.from('d')]);
    await w.close();
  }, 60_000);

  it('format --force and purge need an operator certificate; the writer\'s is refused with the reason', async () => {
    const writer = new JournalNodeClient(c.nodes[0], 2000, { tls: writerTls });
    await expect(writer.post('orders', 'format', { force: true })).rejects.toMatchObject({ status: 403, message: 'format --force needs an operator certificate (journal.operators: ops-admin); this caller is CN=orders-service' });
    await expect(writer.post('orders', 'purge', { epoch: 99, before: '2' })).rejects.toMatchObject({ status: 403, message: expect.stringMatching(/^purge needs an operator certificate/) });
    expect((await writer.state('orders')).committedTxid).toBeGreaterThanOrEqual(3n);
    await writer.close();
    const op = new JournalNodeClient(c.nodes[0], 5000, { tls: operatorTls });
    await op.post('orders', 'format', { force: true });
    await op.close();
    // The CLI takes the cluster file's certificate: the node's own, not an operator's, so it is refused.
    const r = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', 'orders', '--force', '--node', '2']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/node 2: format --force needs an operator certificate/);
    // An operator names their own certificate.
    const ok = await c.cli(['journal', 'format', '--config', c.cfgPath, '--journal', 'orders', '--force', '--node', '2', '--tls-cert', opFiles.certFile, '--tls-key', opFiles.keyFile]);
    expect(ok.stdout).toBe('node 2: formatted orders\n');
    expect(ok.code).toBe(0);
  }, 60_000);

  it('a rotated certificate is taken on SIGHUP, without a restart, and the writer goes on', async () => {
    const fresh = issueCert(clusterCa, 'node-rotated', 'journal-node-rotated', { ips: ['127.0.0.1'] });
    fs.copyFileSync(fresh.certFile, nodeFiles.certFile);
    fs.copyFileSync(fresh.keyFile, nodeFiles.keyFile);
    const before = c.procs[0].logs().length;
    const pid = c.procs[0].pid;
    process.kill(pid, 'SIGHUP');
    for (let i = 0; i < 50 && !c.procs[0].logs().slice(before).includes('reloaded certificates'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(c.procs[0].logs().slice(before)).toContain('reloaded certificates');
    expect(c.procs[0].pid).toBe(pid);
    const cn = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: c.nodes[0].port, cert: writerTls.cert, key: writerTls.key, ca: writerTls.ca }, () => { resolve(String(s.getPeerCertificate().subject.CN)); s.destroy(); });
      s.on('error', reject);
    });
    expect(cn).toBe('journal-node-rotated');
    const w = await QuorumJournalWriter.open('orders', { nodes: c.nodes, formatIfNew: true, tls: writerTls });
    await w.append([Buffer.from('after rotation')]);
    await w.close();
  }, 60_000);
});
