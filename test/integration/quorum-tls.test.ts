// Quorum servers with mutual TLS on the peer and election ports (quorum.tls;
// certificates made by openssl in the test): the ensemble elects and
// replicates; a stranger cannot take part: plain TCP, a certificate from
// another CA, or one from the cluster's CA but not issued for a member's
// host, are all refused before a vote or a transaction is exchanged (the
// hole: naming a member id and the cluster id was enough to receive the
// whole transaction stream and forward requests as any identity).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient } from '../../src/client/index.js';
import { JuteWriter } from '../../src/proto/jute.js';
import { encodeElectionHello } from '../../src/proto/peer-codec.js';
import { PEER_PROTOCOL_VERSION } from '../../src/core/zab/messages.js';
import { silentLogger } from '../../src/io/log.js';
import { startCliProcess, type CliProcess } from '../helpers/cli-process.js';
import { issueCert, makeCa, type TestCert } from '../helpers/certs.js';
import { freePort } from '../helpers/ports.js';
import { fourLetterWord } from '../../src/client/four-letter-word.js';

const hello = (serverId: number): Buffer => {
  const w = new JuteWriter(64);
  encodeElectionHello(w, { protocolVersion: PEER_PROTOCOL_VERSION, clusterId: 'tls-test', serverId });
  return Buffer.from(w.toBuffer()); // a length-prefixed frame, as the transport sends it
};

/** Connects (plain, or TLS with `cert`), sends `data`, and resolves how the connection ended within 3 s. */
function probe(port: number, data: Buffer, cert: { cert: string; key: string; ca: string } | null): Promise<string> {
  return new Promise((resolve) => {
    const s = cert === null ? net.connect({ host: '127.0.0.1', port }) : tls.connect({ host: '127.0.0.1', port, cert: cert.cert, key: cert.key, ca: cert.ca, rejectUnauthorized: false });
    let got = 0;
    const timer = setTimeout(() => { s.destroy(); resolve(`still open after 3 s (${got} bytes received)`); }, 3000);
    s.once(cert === null ? 'connect' : 'secureConnect', () => s.write(data));
    s.on('data', (d: Buffer) => { got += d.length; });
    s.on('error', (e: Error & { code?: string }) => { clearTimeout(timer); resolve(`error ${e.code ?? e.message}`); });
    s.on('close', () => { clearTimeout(timer); resolve(`closed (${got} bytes received)`); });
  });
}

describe('quorum servers with mutual TLS between them', () => {
  let dir = '';
  const procs: CliProcess[] = [];
  let clientPorts: number[] = [];
  let peerPorts: number[] = [];
  let electionPorts: number[] = [];
  let ca = '';
  let stranger: TestCert;
  let foreign: TestCert;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-qtls-'));
    const cluster = makeCa(dir, 'cluster-ca');
    ca = fs.readFileSync(cluster.certFile, 'utf8');
    const server = issueCert(cluster, 'server', 'quorum-server', { ips: ['127.0.0.1'] });
    stranger = issueCert(cluster, 'stranger', 'not-a-member', { ips: ['127.0.0.2'] });
    foreign = issueCert(makeCa(fs.mkdtempSync(path.join(dir, 'other-')), 'other-ca'), 'foreign', 'quorum-server', { ips: ['127.0.0.1'] });
    clientPorts = [await freePort(), await freePort(), await freePort()];
    peerPorts = [await freePort(), await freePort(), await freePort()];
    electionPorts = [await freePort(), await freePort(), await freePort()];
    const cfg = path.join(dir, 'cluster.yaml');
    fs.writeFileSync(cfg, [
      'cluster: tls-test',
      'quorum:',
      '  tickMs: 100',
      `  dataDir: ${dir}/q{id}`,
      `  tls: { certFile: ${server.certFile}, keyFile: ${server.keyFile}, caFile: ${cluster.certFile} }`,
      '  fourLetterWords: [srvr, mntr]',
      '  servers:',
      ...[0, 1, 2].map((i) => `    - { id: ${i + 1}, host: 127.0.0.1, clientPort: ${clientPorts[i]}, peerPort: ${peerPorts[i]}, electionPort: ${electionPorts[i]} }`),
    ].join('\n') + '\n');
    for (let i = 0; i < 3; i++) procs.push(await startCliProcess(['quorum', '--config', cfg, '--id', String(i + 1)], clientPorts[i]));
  }, 60_000);
  afterAll(async () => {
    for (const p of procs) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('elects a leader and replicates writes over TLS', async () => {
    const end = Date.now() + 20_000;
    let modes: string[] = [];
    while (Date.now() < end) {
      modes = await Promise.all(clientPorts.map(async (p) => /^Mode: (\S+)/m.exec(await fourLetterWord('127.0.0.1', p, 'srvr', 1000))?.[1] ?? 'none'));
      if (modes.filter((m) => m === 'leader').length === 1 && modes.filter((m) => m === 'follower').length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(modes.sort()).toEqual(['follower', 'follower', 'leader']);
    const a = new ZkClient({ connectString: `127.0.0.1:${clientPorts[0]}`, sessionTimeoutMs: 6000, logger: silentLogger() });
    const b = new ZkClient({ connectString: `127.0.0.1:${clientPorts[2]}`, sessionTimeoutMs: 6000, logger: silentLogger() });
    await a.connect();
    await b.connect();
    await a.create('/over-tls', Buffer.from('yes'));
    await b.sync('/');
    expect((await b.getData('/over-tls')).data?.toString()).toBe('yes');
    await a.close();
    await b.close();
  }, 40_000);

  it('a stranger naming a member gets nothing: plain TCP, another CA, or a cluster certificate not issued for a member', async () => {
    const before = procs.map((p) => p.logs().length);
    for (const port of [electionPorts[0], peerPorts[0]]) {
      // Plain TCP: not even a TLS handshake, so no hello is read.
      expect(await probe(port, hello(2), null)).toMatch(/^(closed|error)/);
      // Another CA: the handshake fails.
      expect(await probe(port, hello(2), { cert: foreign.cert, key: foreign.key, ca })).toMatch(/^(closed \(0 bytes|error)/);
      // The cluster's CA, but issued for 127.0.0.2, which is no member's host: refused after the handshake.
      expect(await probe(port, hello(2), { cert: stranger.cert, key: stranger.key, ca })).toMatch(/^closed \(0 bytes received\)|^error/);
    }
    // The server logs each refusal as it closes the connection; the line reaches us through a pipe a moment later.
    const refusals = /election connection refused[\s\S]*quorum connection refused|quorum connection refused[\s\S]*election connection refused/;
    for (let i = 0; i < 60 && !refusals.test(procs[0].logs().slice(before[0])); i++) await new Promise((r) => setTimeout(r, 50));
    const log = procs[0].logs().slice(before[0]);
    expect(log).toMatch(/election connection refused: the caller claims id 2, but its certificate names (127\.0\.0\.2, not-a-member|not-a-member, 127\.0\.0\.2), not that server's host 127\.0\.0\.1/);
    expect(log).toMatch(/quorum connection refused: the caller's certificate names .*127\.0\.0\.2.*, none of the members' hosts/);
    // The ensemble did not notice.
    const modes = await Promise.all(clientPorts.map(async (p) => /^Mode: (\S+)/m.exec(await fourLetterWord('127.0.0.1', p, 'srvr', 1000))?.[1] ?? 'none'));
    expect(modes.sort()).toEqual(['follower', 'follower', 'leader']);
  }, 40_000);

  it('SIGHUP re-reads the certificates without a restart; the ensemble keeps serving', async () => {
    const before = procs[0].logs().length;
    process.kill(procs[0].pid, 'SIGHUP');
    for (let i = 0; i < 50 && !procs[0].logs().slice(before).includes('reloaded certificates'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(procs[0].logs().slice(before)).toMatch(/"certificate":"quorum.tls".*"msg":"certificate expires in 1 days; replace it"/);
    expect(procs[0].logs().slice(before)).toContain('reloaded certificates');
    // mntr says when the certificates end, for a dashboard's alert.
    expect(await fourLetterWord('127.0.0.1', clientPorts[0], 'mntr', 2000)).toMatch(/^quorate_tls_cert_days_left\t1$/m);
    const a = new ZkClient({ connectString: `127.0.0.1:${clientPorts[0]}`, sessionTimeoutMs: 6000, logger: silentLogger() });
    await a.connect();
    await a.create('/after-sighup', Buffer.from('ok'));
    await a.close();
  }, 30_000);
});
