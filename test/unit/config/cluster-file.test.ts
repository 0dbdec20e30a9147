import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failure } from './expect-config-error.js';
import { loadClusterFile, loadJournalConfig, loadRunDir, parseClusterFile, parseClusterFileWithLines, readConfigText } from '../../../src/config/cluster-file.js';
import { ConfigError } from '../../../src/config/errors.js';
import { FOUR_LETTER_WORDS } from '../../../src/config/quorum-config.js';

const SAMPLE = path.resolve(import.meta.dirname, '../../../conf/cluster.yaml');
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function write(text: string, name = 'cluster.yaml'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorate-cfg-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}


const BASE = `cluster: test
quorum:
  dataDir: /tmp/q-{id}
  servers:
    - { id: 1, host: 127.0.0.1, clientPort: 2181, peerPort: 2888, electionPort: 3888 }
    - { id: 2, host: 127.0.0.1, clientPort: 2182, peerPort: 2889, electionPort: 3889 }
    - { id: 3, host: 127.0.0.1, clientPort: 2183, peerPort: 2890, electionPort: 3890, role: observer }
`;

describe('conf/cluster.yaml', () => {
  it('loads for each of its three servers', () => {
    for (const id of [1, 2, 3]) {
      const { cluster, quorum, warnings } = loadClusterFile(SAMPLE, id);
      expect(cluster.cluster).toBe('dev-local');
      expect(warnings).toEqual([]);
      expect(quorum.serverId).toBe(id);
      expect(quorum.clientPort).toBe(2180 + id);
      expect(quorum.admin).toBeNull();
      expect(quorum.metrics).toBeNull();
      expect(quorum.dataDir).toBe(`/var/lib/quorate/quorum-${id}`);
      expect(quorum.dataLogDir).toBe(quorum.dataDir);
      expect(quorum.servers.map((s) => s.id)).toEqual([1, 2, 3]);
      expect([...quorum.fourLetterWords].sort()).toEqual(['mntr', 'ruok', 'srvr', 'stat']);
      expect(quorum.forceSync).toBe(true);
      expect(quorum.minSessionTimeoutMs).toBe(4000);
      expect(quorum.maxSessionTimeoutMs).toBe(40000);
    }
  });
});

describe('loadClusterFile', () => {
  it('fills defaults the way ZooKeeper does, but with a 200 ms tick (the controller\'s lease needs syncLimit x tick well under a third of its session)', () => {
    const { quorum } = loadClusterFile(write(BASE), 1);
    expect(quorum).toMatchObject({
      clusterId: 'test', tickMs: 200, initLimitTicks: 10, syncLimitTicks: 5, minSessionTimeoutMs: 4000, maxSessionTimeoutMs: 40000,
      maxClientCnxns: 60, snapCount: 100000, autopurgeSnapRetainCount: 3, autopurgePurgeIntervalHours: 0, skipAcl: false,
      superDigest: null, forceSync: true, packetBytesMax: 1048575, standaloneEnabled: true, reconfigEnabled: false, clientHost: '0.0.0.0',
    });
    expect([...quorum.fourLetterWords]).toEqual(['srvr']);
    expect(quorum.servers[2].role).toBe('observer');
    expect(quorum.admin).toBeNull();
    expect(quorum.metrics).toBeNull();
  });

  it('runs standalone without servers, and takes relative paths from the file', () => {
    const file = write('cluster: solo\nquorum:\n  dataDir: data/{id}\n  clientPort: 2999\n  fourLetterWords: ["*"]\n');
    const { quorum } = loadClusterFile(file, 7);
    expect(quorum.servers).toEqual([]);
    expect(quorum.serverId).toBe(7);
    expect(quorum.clientPort).toBe(2999);
    expect(quorum.dataDir).toBe(path.join(path.dirname(file), 'data/7'));
    expect(quorum.fourLetterWords.size).toBe(FOUR_LETTER_WORDS.length);
  });

  it('names an unknown key with its path and line, and suggests the right one', () => {
    const file = write(BASE.replace('  dataDir', '  tikMs: 100\n  dataDir'));
    const err = failure(() => loadClusterFile(file, 1));
    expect(err.code).toBe('QUORATE_CONFIG');
    expect(err.keyPath).toBe('quorum.tikMs');
    expect(err.line).toBe(3);
    expect(err.message).toBe(`${file}:3: quorum.tikMs: unknown key; did you mean tickMs?`);
  });

  it('points ZooKeeper names at their Quorate names', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('  dataDir', '  tickTime: 2000\n  dataDir')), 1));
    expect(err.reason).toContain("zoo.cfg's tickTime is tickMs here");
  });

  it('refuses unknown top-level sections', () => {
    const err = failure(() => loadClusterFile(write(BASE + 'services: {}\n'), 1));
    expect(err.keyPath).toBe('services');
    expect(err.line).toBe(8);
  });

  it('refuses an unknown key inside a server entry', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('role: observer', 'type: observer')), 1));
    expect(err.keyPath).toBe('quorum.servers[2].type');
    expect(err.reason).toContain('role');
  });

  it('reports a wrong type with what was found', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('  dataDir', '  tickMs: "2000"\n  dataDir')), 1));
    expect(err.message).toMatch(/:3: quorum\.tickMs: expected milliseconds 10-60000, got "2000"$/);
    const b = failure(() => loadClusterFile(write(BASE.replace('  dataDir', '  forceSync: no\n  dataDir')), 1));
    expect(b.reason).toBe('expected true or false, got "no"');
  });

  it('reports a bad port', () => {
    const file = write(BASE.replace('clientPort: 2182', 'clientPort: abc'));
    const err = failure(() => loadClusterFile(file, 1));
    expect(err.keyPath).toBe('quorum.servers[1].clientPort');
    expect(err.reason).toBe('expected a port number 1-65535, got "abc"');
    expect(err.message).toBe(`${file}:6: quorum.servers[1].clientPort: expected a port number 1-65535, got "abc"`);
    const big = failure(() => loadClusterFile(write(BASE.replace('peerPort: 2888', 'peerPort: 70000')), 1));
    expect(big.message).toContain('quorum.servers[0].peerPort: expected a port number 1-65535, got 70000');
  });

  it('lists every problem, one a line', () => {
    const text = BASE.replace('cluster: test', 'cluster: Bad_Id').replace('clientPort: 2182', 'clientPort: 0').replace('  dataDir', '  bogus: 1\n  dataDir');
    const err = failure(() => loadClusterFile(write(text), 1));
    expect(err.issues.map((i) => i.keyPath).sort()).toEqual(['cluster', 'quorum.bogus', 'quorum.servers[1].clientPort']);
    expect(err.message.split('\n')).toHaveLength(3);
  });

  it('refuses duplicate server ids', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('id: 3', 'id: 2')), 1));
    expect(err.keyPath).toBe('quorum.servers[2].id');
    expect(err.reason).toContain('server id 2 is used twice');
    expect(err.line).toBe(7);
  });

  it('refuses an id that is not in the server list', () => {
    const err = failure(() => loadClusterFile(write(BASE), 4));
    expect(err.keyPath).toBe('quorum.servers');
    expect(err.reason).toContain('no server has id 4');
  });

  it('gives each server its AdminServer and metrics ports, bound to its client address unless adminHost/metricsHost say otherwise', () => {
    const text = BASE
      .replace('electionPort: 3888 }', 'electionPort: 3888, metricsPort: 7001, adminPort: 8081, clientHost: 127.0.0.1 }')
      .replace('electionPort: 3889 }', 'electionPort: 3889, metricsPort: 7002, adminPort: 8082, metricsHost: 127.0.0.2, adminHost: 127.0.0.3 }');
    const one = loadClusterFile(write(text), 1).quorum;
    expect(one.metrics).toEqual({ host: '127.0.0.1', port: 7001, processMetrics: true });
    expect(one.admin).toEqual({ host: '127.0.0.1', port: 8081, commandUrl: '/commands', idleTimeoutMs: 30_000 });
    const two = loadClusterFile(write(text), 2).quorum;
    expect(two.metrics).toEqual({ host: '127.0.0.2', port: 7002, processMetrics: true });
    expect(two.admin?.host).toBe('127.0.0.3');
    expect(two.admin?.port).toBe(8082);
    const three = loadClusterFile(write(text), 3).quorum;
    expect(three.metrics).toBeNull();
    expect(three.admin).toBeNull();
  });

  it('takes quorum-wide adminPort/metricsPort for every server, and refuses one that two servers on a host would share', () => {
    const solo = loadClusterFile(write('cluster: solo\nquorum:\n  dataDir: d\n  clientHost: 127.0.0.1\n  adminPort: 8080\n  metricsPort: 7000\n  metricsHost: 0.0.0.0\n'), 1).quorum;
    expect(solo.admin).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(solo.metrics).toMatchObject({ host: '0.0.0.0', port: 7000 });
    const err = failure(() => loadClusterFile(write(BASE.replace('quorum:\n', 'quorum:\n  metricsPort: 7000\n')), 1));
    expect(err.issues.map((i) => `${i.keyPath}: ${i.reason}`)).toContain('quorum.servers[1]: port 7000 on host 127.0.0.1 is already quorum.servers[0] (line 6): two processes on one host cannot share a port');
  });

  it('names a bad AdminServer or metrics key, and suggests the right one for a typo', () => {
    const bad = failure(() => loadClusterFile(write(BASE.replace('electionPort: 3889 }', 'electionPort: 3889, metricsPort: 70000 }')), 1));
    expect(`${bad.line} ${bad.keyPath}: ${bad.reason}`).toBe('6 quorum.servers[1].metricsPort: expected a port number 1-65535, got 70000');
    const typo = failure(() => loadClusterFile(write(BASE.replace('electionPort: 3889 }', 'electionPort: 3889, metricPort: 7000 }')), 1));
    expect(`${typo.keyPath}: ${typo.reason}`).toBe('quorum.servers[1].metricPort: unknown key; did you mean metricsPort?');
    const host = failure(() => loadClusterFile(write(BASE.replace('quorum:\n', 'quorum:\n  adminHots: 127.0.0.1\n')), 1));
    expect(`${host.keyPath}: ${host.reason}`).toBe('quorum.adminHots: unknown key; did you mean adminHost?');
    const clash = failure(() => loadClusterFile(write(BASE.replace('electionPort: 3888 }', 'electionPort: 3888, adminPort: 2888 }')), 1));
    expect(`${clash.keyPath}: ${clash.reason}`).toBe('quorum.servers[0].adminPort: port 2888 on host 127.0.0.1 is already quorum.servers[0].peerPort (line 5): two processes on one host cannot share a port');
  });

  it('refuses plain TCP between quorum servers on addresses other than loopback unless insecure: true', () => {
    const remote = BASE.replaceAll('host: 127.0.0.1', 'host: 192.0.2.7').replace('peerPort: 2889', 'peerPort: 2889').replace(/clientPort: (\d+), peerPort: (\d+), electionPort: (\d+)/g, 'clientPort: $1, peerPort: $2, electionPort: $3');
    const err = failure(() => loadClusterFile(write(remote), 1));
    expect(err.keyPath).toBe('quorum.tls');
    expect(err.reason).toMatch(/^missing: the quorum servers talk in plain TCP on 192\.0\.2\.7/);
    expect(loadClusterFile(write(remote.replace('quorum:\n', 'quorum:\n  insecure: true\n')), 1).quorum.peerTls).toBeNull();
  });

  it('refuses two servers on one address', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('electionPort: 3889', 'electionPort: 2888')), 1));
    expect(err.keyPath).toBe('quorum.servers[1].electionPort');
    expect(err.reason).toBe('port 2888 on host 127.0.0.1 is already quorum.servers[0].peerPort (line 5): two processes on one host cannot share a port');
  });

  it('refuses servers that would all take the default client port', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace(/clientPort: \d+, /g, '')), 1));
    expect(err.keyPath).toBe('quorum.servers[1]');
    expect(err.reason).toContain('port 2181 on host 127.0.0.1 is already quorum.servers[0]');
  });

  it('checks the session timeout relation and warns under 2 ticks', () => {
    const bad = BASE.replace('  dataDir', '  session: { minTimeoutMs: 50000, maxTimeoutMs: 40000 }\n  dataDir');
    expect(failure(() => loadClusterFile(write(bad), 1)).keyPath).toBe('quorum.session.minTimeoutMs');
    const low = BASE.replace('  dataDir', '  tickMs: 2000\n  session: { minTimeoutMs: 1000 }\n  dataDir');
    const { warnings } = loadClusterFile(write(low), 1);
    expect(warnings.join('\n')).toMatch(/quorum\.session\.minTimeoutMs: 1000 ms is under 2 ticks/);
  });

  it('requires dataDir and a quorum section', () => {
    expect(failure(() => loadClusterFile(write('cluster: x\nquorum: {}\n'), 1)).reason).toBe('missing; expected a directory path');
    expect(failure(() => loadClusterFile(write('cluster: x\n'), 1)).keyPath).toBe('quorum');
  });

  it('does not echo a malformed super digest', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('  dataDir', '  superDigest: "super:secret"\n  dataDir')), 1));
    expect(err.message).not.toContain('secret');
    const ok = loadClusterFile(write(BASE.replace('  dataDir', '  superDigest: "super:D/InIHSb7yEEbrWz8b9l71RjZJU="\n  dataDir')), 1);
    expect(ok.quorum.superDigest).toBe('super:D/InIHSb7yEEbrWz8b9l71RjZJU=');
  });

  it('refuses unknown four-letter words', () => {
    const err = failure(() => loadClusterFile(write(BASE.replace('  dataDir', '  fourLetterWords: [srvr, dump]\n  dataDir')), 1));
    expect(err.keyPath).toBe('quorum.fourLetterWords[1]');
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    const syntax = failure(() => loadClusterFile(write('cluster: x\nquorum:\n  dataDir: [unclosed\n'), 1));
    expect(syntax.reason).toMatch(/^invalid YAML/);
    expect(syntax.line).toBeGreaterThanOrEqual(3);
    expect(syntax.message).toMatch(/cluster\.yaml:\d+: invalid YAML \(column \d+\): /);
    const dup = failure(() => loadClusterFile(write('cluster: x\ncluster: y\n'), 1));
    expect(dup.line).toBe(2);
  });

  it('names a missing file', () => {
    const err = failure(() => loadClusterFile('/nonexistent/cluster.yaml', 1));
    expect(err.message).toBe('/nonexistent/cluster.yaml: file not found');
  });

  it('refuses an empty file and a bad --id', () => {
    expect(failure(() => parseClusterFile('', 'c.yaml')).message).toMatch(/^c\.yaml: expected a mapping/);
    expect(failure(() => loadClusterFile(write(BASE), 0)).keyPath).toBe('--id');
  });
});

describe('loadJournalConfig', () => {
  const J = 'cluster: prod\njournal:\n  dataDir: /var/lib/j-{id}\n  nodes:\n    - { id: 1, host: 127.0.0.1, port: 8485 }\n    - { id: 2, host: 127.0.0.1, port: 8486 }\n';
  it('picks the node and fills defaults', () => {
    const c = loadJournalConfig(write(J), 2);
    expect(c).toMatchObject({ clusterId: 'prod', nodeId: 2, dataDir: '/var/lib/j-2', port: 8486, requestTimeoutMs: 2000 });
    expect(c.nodes.map((n) => n.id)).toEqual([1, 2]);
  });
  it('names a missing node, a duplicate id and a bad port', () => {
    expect(failure(() => loadJournalConfig(write(J), 3)).reason).toContain('no journal node with id 3');
    expect(failure(() => loadJournalConfig(write(J.replace('id: 2', 'id: 1')), 1)).reason).toContain('listed twice');
    const bad = failure(() => loadJournalConfig(write(J.replace('port: 8486', 'port: 70000')), 1));
    expect(bad.keyPath).toBe('journal.nodes[1].port');
  });
  it('says when there is no journal section', () => {
    expect(failure(() => loadJournalConfig(write('cluster: prod\n'), 1)).keyPath).toBe('journal');
  });
  it('reads a node\'s metricsPort, suggests it for a misspelling, and refuses one another port on the host holds', () => {
    const withMetrics = J.replace('port: 8486 }', 'port: 8486, metricsPort: 9486 }');
    expect(loadJournalConfig(write(withMetrics), 2).metricsPort).toBe(9486);
    expect(loadJournalConfig(write(withMetrics), 1).metricsPort).toBeNull();
    const typo = failure(() => loadJournalConfig(write(J.replace('port: 8486 }', 'port: 8486, metricPort: 9486 }')), 2));
    expect(typo.message).toMatch(/journal\.nodes\[1\]\.metricPort: unknown key; did you mean metricsPort\?/);
    const clash = failure(() => loadJournalConfig(write(J.replace('port: 8486 }', 'port: 8486, metricsPort: 8485 }')), 2));
    expect(clash.keyPath).toBe('journal.nodes[1].metricsPort');
    expect(clash.reason).toMatch(/port 8485 on host 127\.0\.0\.1 is already journal\.nodes\[0\]\.port/);
  });
  it('refuses plain HTTP on an address other than loopback unless insecure: true is said', () => {
    const remote = J.replace('{ id: 1, host: 127.0.0.1, port: 8485 }', '{ id: 1, host: 192.0.2.10, port: 8485 }');
    const err = failure(() => loadJournalConfig(write(remote), 1));
    expect(err.keyPath).toBe('journal.tls');
    expect(err.reason).toMatch(/^missing: journal node 1 would serve plain HTTP on 192\.0\.2\.10, where anyone who reaches it can fence the writer/);
    expect(loadJournalConfig(write(remote.replace('journal:\n', 'journal:\n  insecure: true\n')), 1).insecure).toBe(true);
    // Clients (nodeId null) and the loopback node are not refused.
    expect(loadJournalConfig(write(remote), null).tls).toBeNull();
    expect(loadJournalConfig(write(remote), 2).host).toBe('127.0.0.1');
  });
  it('reads journal.tls, refusing a key other users can read', () => {
    const d = mkdtempSync(path.join(tmpdir(), 'quorate-jtls-'));
    dirs.push(d);
    for (const [f, mode] of [['c.pem', 0o644], ['k.pem', 0o644], ['ca.pem', 0o644]] as const) writeFileSync(path.join(d, f), `${f}\n`, { mode });
    const withTls = J.replace('journal:\n', `journal:\n  tls: { certFile: ${d}/c.pem, keyFile: ${d}/k.pem, caFile: ${d}/ca.pem }\n  operators: [ops]\n`);
    const err = failure(() => loadJournalConfig(write(withTls), 1));
    expect(err.keyPath).toBe('journal.tls.keyFile');
    expect(err.reason).toMatch(/can be read by other users \(mode 0644\): chmod 600/);
    chmodSync(path.join(d, 'k.pem'), 0o600);
    expect(loadJournalConfig(write(withTls), 1)).toMatchObject({ tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' }, operators: ['ops'] });
  });
});

describe('loading one file several times (a daemon, local-status)', () => {
  it('gives each caller its own data, and reads a changed file anew', () => {
    const file = write(`${BASE}runDir: /run/a\n`);
    const a = parseClusterFileWithLines(readConfigText(file), file).cluster;
    const b = parseClusterFileWithLines(readConfigText(file), file).cluster;
    expect(b).toEqual(a);
    expect(b).not.toBe(a);
    (a.quorum.servers as { host: string }[])[0].host = 'changed.example';
    expect(parseClusterFileWithLines(readConfigText(file), file).cluster.quorum.servers[0].host).toBe('127.0.0.1');
    expect(loadRunDir(file)).toBe('/run/a');
    writeFileSync(file, `${BASE}runDir: /run/b\n`);
    expect(loadRunDir(file)).toBe('/run/b');
    // A file made wrong after a good load is refused, not served from before.
    writeFileSync(file, `${BASE}runDir: [\n`);
    expect(() => loadRunDir(file)).toThrow(/invalid YAML/);
  });
});
