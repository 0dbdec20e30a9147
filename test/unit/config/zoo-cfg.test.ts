import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failure } from './expect-config-error.js';
import { issueCert, makeCa } from '../../helpers/certs.js';
import { ConfigError } from '../../../src/config/errors.js';
import { FOUR_LETTER_WORDS } from '../../../src/config/quorum-config.js';
import { loadZooCfg, parseProperties } from '../../../src/config/zoo-cfg.js';

const SAMPLE = path.resolve(import.meta.dirname, '../../../conf/zoo.cfg');
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A directory with zoo.cfg (dataDir=<dir>/data) and, if myid is given, data/myid. */
function setup(body: string, opts: { myid?: string; files?: Record<string, string> } = {}): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'quorate-zoo-'));
  dirs.push(dir);
  mkdirSync(path.join(dir, 'data'));
  if (opts.myid !== undefined) writeFileSync(path.join(dir, 'data', 'myid'), opts.myid);
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(dir, name), text);
  const file = path.join(dir, 'zoo.cfg');
  writeFileSync(file, body.replaceAll('$DIR', dir));
  return { file, dir };
}


const ENSEMBLE = `tickTime=2000
initLimit=10
syncLimit=5
dataDir=$DIR/data
clientPort=2182
server.1=127.0.0.1:2888:3888
server.2=127.0.0.1:2889:3889;2182
server.3=127.0.0.1:2890:3890:observer;127.0.0.1:2183
`;

describe('conf/zoo.cfg', () => {
  it('loads as a standalone server without warnings', () => {
    const { quorum, warnings } = loadZooCfg(SAMPLE);
    expect(warnings).toEqual([]);
    expect(quorum).toMatchObject({ clusterId: 'default', serverId: 1, clientPort: 2181, tickMs: 2000, autopurgePurgeIntervalHours: 1, servers: [] });
    expect([...quorum.fourLetterWords].sort()).toEqual(['mntr', 'ruok', 'srvr', 'stat']);
  });
});

describe('loadZooCfg', () => {
  it('reads server.N lines and this server id from dataDir/myid', () => {
    const { dir, file } = setup(ENSEMBLE, { myid: '2\n' });
    const { quorum, warnings } = loadZooCfg(file);
    expect(warnings).toEqual([`${file}:6: server.N: 2 voting servers tolerate no more failures than 1 (a majority is 2); an odd number is usual`]);
    expect(quorum.serverId).toBe(2);
    expect(quorum.clientPort).toBe(2182);
    expect(quorum.dataDir).toBe(path.join(dir, 'data'));
    expect(quorum.dataLogDir).toBe(quorum.dataDir);
    expect(quorum.servers).toEqual([
      { id: 1, host: '127.0.0.1', peerPort: 2888, electionPort: 3888, role: 'participant' },
      { id: 2, host: '127.0.0.1', peerPort: 2889, electionPort: 3889, role: 'participant', clientPort: 2182 },
      { id: 3, host: '127.0.0.1', peerPort: 2890, electionPort: 3890, role: 'observer', clientHost: '127.0.0.1', clientPort: 2183 },
    ]);
    // Server 1 has no ;clientPort: clientPort= applies.
    expect(loadZooCfg(setup(ENSEMBLE, { myid: '1' }).file).quorum.clientPort).toBe(2182);
  });

  it('names the missing myid file', () => {
    const { dir, file } = setup(ENSEMBLE);
    const err = failure(() => loadZooCfg(file));
    expect(err.file).toBe(path.join(dir, 'data', 'myid'));
    expect(err.message).toContain(`${path.join(dir, 'data', 'myid')}: file not found`);
    expect(failure(() => loadZooCfg(setup(ENSEMBLE, { myid: 'two' }).file)).reason).toBe('expected a server id 1-254, got "two"');
    expect(failure(() => loadZooCfg(setup(ENSEMBLE, { myid: '9' }).file)).reason).toContain('no server has id 9');
  });

  it('runs one listed server standalone, with its id, without myid', () => {
    const { quorum } = loadZooCfg(setup('dataDir=$DIR/data\nserver.5=localhost:2888:3888;2185\n').file);
    expect(quorum.serverId).toBe(5);
    expect(quorum.clientPort).toBe(2185);
    const err = failure(() => loadZooCfg(setup('dataDir=$DIR/data\nstandaloneEnabled=false\nserver.5=localhost:2888:3888\n').file));
    expect(err.file).toMatch(/myid$/);
  });

  it('errs on an unknown key with its line; warns on a ZooKeeper key it does not use', () => {
    const { file } = setup('dataDir=$DIR/data\nclientPort=2181\ntickTme=2000\n');
    const err = failure(() => loadZooCfg(file));
    expect(err.message).toBe(`${file}:3: tickTme: unknown key: neither a ZooKeeper setting nor a Quorate one`);
    const ok = setup('dataDir=$DIR/data\nadmin.enableServer=false\nadmin.serverPort=8080\nglobalOutstandingLimit=1000\nsslQuorum=false\n');
    const { warnings } = loadZooCfg(ok.file);
    expect(warnings).toEqual([
      `${ok.file}:3: admin.serverPort: ignored: admin.enableServer is false`,
      `${ok.file}:4: globalOutstandingLimit: key globalOutstandingLimit is a ZooKeeper setting Quorate does not use; ignored`,
    ]);
  });

  it('refuses, with the key and its line, settings that ask for a protection or a port it does not provide (a warning would leave the operator believing they are protected)', () => {
    const cases: [string, RegExp][] = [
      ['secureClientPort=2281', /ssl.keyStore.location is missing: the PEM file with this server's private key and certificate/],
      ['sslQuorum=true', /ssl.quorum.keyStore.location is missing/],
      ['portUnification=true', /plain and TLS on one port \(portUnification\) is not provided/],
      ['quorum.auth.enableSasl=true', /SASL between quorum servers is not provided/],
      ['authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider', /auth provider .*SASLAuthenticationProvider is not provided/],
      ['sessionRequireClientSASLAuth=true', /required client authentication/],
      ['X509AuthenticationProvider.superUser=CN=admin', /asks for an identity scheme Quorate does not provide/],
      ['admin.forceHttps=true', /HTTPS on the AdminServer \(admin.forceHttps\) is not provided by Quorate/],
      ['admin.portUnification=true', /HTTPS on the AdminServer \(admin.portUnification\) is not provided/],
      ['metricsProvider.httpsPort=7443', /HTTPS on the metrics port \(metricsProvider.httpsPort\) is not provided/],
    ];
    for (const [line, re] of cases) {
      const { file } = setup(`dataDir=$DIR/data\nclientPort=2181\n${line}\n`);
      const err = failure(() => loadZooCfg(file));
      expect(err.line, line).toBe(3);
      expect(err.keyPath, line).toBe(line.split('=')[0]);
      expect(err.reason, line).toMatch(re);
    }
  });

  it('serves Prometheus with ZooKeeper\'s metricsProvider keys (port 7000 by default, bound to the client address unless httpHost says otherwise)', () => {
    const prom = 'metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n';
    const base = 'dataDir=$DIR/data\nclientPort=2181\nclientPortAddress=127.0.0.1\n';
    expect(loadZooCfg(setup(base + prom).file).quorum.metrics).toEqual({ host: '127.0.0.1', port: 7000, processMetrics: true });
    const set = loadZooCfg(setup(base + prom + 'metricsProvider.httpPort=7071\nmetricsProvider.httpHost=0.0.0.0\nmetricsProvider.exportJvmInfo=false\n').file);
    expect(set.warnings).toEqual([]);
    expect(set.quorum.metrics).toEqual({ host: '0.0.0.0', port: 7071, processMetrics: false });
    // Without the Prometheus provider ZooKeeper serves no port, and neither do we: its keys are named in a warning.
    const off = setup(base + 'metricsProvider.httpPort=7071\n');
    const loaded = loadZooCfg(off.file);
    expect(loaded.quorum.metrics).toBeNull();
    expect(loaded.warnings).toEqual([`${off.file}:4: metricsProvider.httpPort: ignored: no metricsProvider.className (org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider serves this port)`]);
    expect(loadZooCfg(setup(base + 'metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n').file).quorum.metrics).toBeNull();
    const unknown = failure(() => loadZooCfg(setup(base + 'metricsProvider.className=com.example.Statsd\n').file));
    expect(`${unknown.line} ${unknown.keyPath}: ${unknown.reason}`).toMatch(/^4 metricsProvider\.className: unknown metrics provider "com\.example\.Statsd": Quorate serves org\.apache\.zookeeper\.metrics\.prometheus\.PrometheusMetricsProvider/);
  });

  it('serves the AdminServer when admin.enableServer=true or admin.serverPort is set (ZooKeeper\'s 8080 and /commands by default), never unasked', () => {
    const base = 'dataDir=$DIR/data\nclientPort=2181\nclientPortAddress=127.0.0.1\n';
    expect(loadZooCfg(setup(base).file).quorum.admin).toBeNull();
    expect(loadZooCfg(setup(base + 'admin.enableServer=true\n').file).quorum.admin).toEqual({ host: '127.0.0.1', port: 8080, commandUrl: '/commands', idleTimeoutMs: 30_000 });
    const set = loadZooCfg(setup(base + 'admin.serverPort=9090\nadmin.serverAddress=0.0.0.0\nadmin.commandURL=/zk/commands/\nadmin.idleTimeout=5000\n').file);
    expect(set.warnings).toEqual([]);
    expect(set.quorum.admin).toEqual({ host: '0.0.0.0', port: 9090, commandUrl: '/zk/commands', idleTimeoutMs: 5000 });
    expect(loadZooCfg(setup(base + 'admin.enableServer=false\nadmin.serverPort=9090\n').file).quorum.admin).toBeNull();
    const notBool = failure(() => loadZooCfg(setup(base + 'admin.enableServer=yes\n').file));
    expect(`${notBool.line} ${notBool.keyPath}: ${notBool.reason}`).toBe('4 admin.enableServer: expected true or false, got "yes"');
  });

  it('names the key of a bad AdminServer or metrics setting', () => {
    const base = 'dataDir=$DIR/data\nclientPort=2181\n';
    const prom = 'metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n';
    const cases: [string, string][] = [
      ['admin.serverPort=80800', '3 admin.serverPort: expected a port number 1-65535, got 80800'],
      ['admin.serverPort=http', '3 admin.serverPort: expected an integer, got "http"'],
      ['admin.serverPort=2181', '3 admin.serverPort: port 2181 is also the clientPort'],
      [`${prom}metricsProvider.httpPort=0`, '4 metricsProvider.httpPort: expected a port number 1-65535, got 0'],
      [`${prom}metricsProvider.httpHost=not a host`, '4 metricsProvider.httpHost: expected a host name or IP address to bind, got "not a host"'],
      [`${prom}metricsProvider.exportJvmInfo=maybe`, '4 metricsProvider.exportJvmInfo: expected yes, no, true or false, got "maybe"'],
      ['admin.enableServer=true\nadmin.commandURL=commands', '4 admin.commandURL: expected a URL path starting with "/" (letters, digits, "._~-/", at most 200 characters), got "commands"'],
      ['admin.enableServer=true\nadmin.idleTimeout=0', '4 admin.idleTimeout: expected milliseconds 100-3600000, got 0'],
    ];
    for (const [lines, expected] of cases) {
      const err = failure(() => loadZooCfg(setup(`${base}${lines}\n`).file));
      expect(`${err.line} ${err.keyPath}: ${err.reason}`, lines).toBe(expected);
    }
    // In an ensemble, a port given outside the server line must not be one of this server's own.
    const ens = failure(() => loadZooCfg(setup(`${ENSEMBLE}admin.serverPort=2889\n`, { myid: '2' }).file));
    expect(`${ens.line} ${ens.keyPath}: ${ens.reason}`).toBe('9 admin.serverPort: port 2889 is also server 2\'s peerPort');
  });

  it('refuses plain TCP between servers on addresses other than loopback unless quorate.insecurePeers=true', () => {
    const body = 'dataDir=$DIR/data\nclientPort=2181\nserver.1=192.0.2.1:2888:3888\nserver.2=192.0.2.2:2888:3888\nserver.3=192.0.2.3:2888:3888\n';
    const err = failure(() => loadZooCfg(setup(body, { myid: '1' }).file));
    expect(err.line).toBe(3);
    expect(err.reason).toMatch(/^the quorum servers talk in plain TCP on 192\.0\.2\.1, 192\.0\.2\.2, 192\.0\.2\.3: anyone who reaches those ports and names a member can join its elections.*add quorate.insecurePeers=true to accept that$/);
    expect(loadZooCfg(setup(body + 'quorate.insecurePeers=true\n', { myid: '1' }).file).quorum.peerTls).toBeNull();
  });

  it('reads a secure zoo.cfg as ZooKeeper 3.8 does: secureClientPort and ssl.* (PEM stores), sslQuorum and ssl.quorum.*', () => {
    const d = mkdtempSync(path.join(tmpdir(), 'quorate-zootls-'));
    dirs.push(d);
    const ca = makeCa(d, 'ca');
    const srv = issueCert(ca, 'srv', 'zk1', { ips: ['127.0.0.1'] });
    const store = path.join(d, 'server-store.pem');
    writeFileSync(store, srv.key + srv.cert, { mode: 0o600 });
    const secure = [
      'secureClientPort=2281', 'serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory',
      `ssl.keyStore.location=${store}`, 'ssl.keyStore.type=PEM', `ssl.trustStore.location=${ca.certFile}`, 'ssl.trustStore.type=PEM', 'ssl.clientAuth=want',
      'ssl.enabledProtocols=TLSv1.3',
      'sslQuorum=true', `ssl.quorum.keyStore.location=${store}`, 'ssl.quorum.keyStore.type=PEM', `ssl.quorum.trustStore.location=${ca.certFile}`, 'ssl.quorum.trustStore.type=PEM',
    ].join('\n');
    const { quorum } = loadZooCfg(setup(`dataDir=$DIR/data\nclientPort=2181\n${secure}\n`).file);
    expect(quorum.secureClientPort).toBe(2281);
    expect(quorum.clientTls).toMatchObject({ clientAuth: 'want', minVersion: 'TLSv1.3', ca: readFileSync(ca.certFile, 'utf8') });
    expect(quorum.clientTls?.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(quorum.clientTls?.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(quorum.peerTls?.ca).toBe(readFileSync(ca.certFile, 'utf8'));
    const jks = failure(() => loadZooCfg(setup(`dataDir=$DIR/data\n${secure.replace('ssl.keyStore.type=PEM', 'ssl.keyStore.type=JKS')}\n`).file));
    expect(jks.keyPath).toBe('ssl.keyStore.type');
    expect(jks.reason).toMatch(/store type "JKS" is not read by Quorate: convert the store to PEM/);
    const ciphers = failure(() => loadZooCfg(setup(`dataDir=$DIR/data\n${secure}\nssl.ciphersuites=TLS_AES_128_GCM_SHA256\n`).file));
    expect(ciphers.reason).toMatch(/cipher suites in Java's names are not mapped/);
    chmodSync(store, 0o644);
    const open = failure(() => loadZooCfg(setup(`dataDir=$DIR/data\n${secure}\n`).file));
    expect(open.keyPath).toBe('ssl.keyStore.location');
    expect(open.reason).toMatch(/holds a private key and other users can read it \(mode 0644\)/);
  });

  it('honours forceSync=no, with a warning', () => {
    const { file } = setup('dataDir=$DIR/data\nforceSync=no\n');
    const { quorum, warnings } = loadZooCfg(file);
    expect(quorum.forceSync).toBe(false);
    expect(warnings).toEqual([`${file}:2: forceSync: fsync is off: acknowledged writes can be lost on power failure or an OS crash`]);
    expect(loadZooCfg(setup('dataDir=$DIR/data\nforceSync=yes\n').file).quorum.forceSync).toBe(true);
    expect(loadZooCfg(setup('dataDir=$DIR/data\nzookeeper.forceSync=no\n').file).quorum.forceSync).toBe(false);
    expect(failure(() => loadZooCfg(setup('dataDir=$DIR/data\nforceSync=maybe\n').file)).reason).toBe('expected yes, no, true or false, got "maybe"');
  });

  it('parses the four-letter-word whitelist', () => {
    const words = (line: string) => loadZooCfg(setup(`dataDir=$DIR/data\n${line}\n`).file);
    expect([...words('4lw.commands.whitelist=*').quorum.fourLetterWords].sort()).toEqual([...FOUR_LETTER_WORDS].sort());
    expect([...words('4lw.commands.whitelist= stat, ruok ,conf').quorum.fourLetterWords]).toEqual(['stat', 'ruok', 'conf']);
    expect([...words('tickTime=2000').quorum.fourLetterWords]).toEqual(['srvr']);
    expect(words('4lw.commands.whitelist=').quorum.fourLetterWords.size).toBe(0);
    const zkOnly = words('4lw.commands.whitelist=srvr,dump,wchc');
    expect([...zkOnly.quorum.fourLetterWords]).toEqual(['srvr']);
    expect(zkOnly.warnings[0]).toContain("dump, wchc: ZooKeeper's, not answered by Quorate; ignored");
    const err = failure(() => words('4lw.commands.whitelist=srvr,xyzw'));
    expect(err.line).toBe(2);
    expect(err.keyPath).toBe('4lw.commands.whitelist');
  });

  it('gives the line and key of a bad value', () => {
    const { file } = setup('# comment\n\ndataDir=$DIR/data\ntickTime=abc\nclientPort=99999\nmaxSessionTimeout=1000\nminSessionTimeout=5000\n');
    const err = failure(() => loadZooCfg(file));
    expect(err.message).toBe(`${file}:4: tickTime: expected an integer, got "abc"`);
    const rel = failure(() => loadZooCfg(setup('dataDir=$DIR/data\nclientPort=99999\nmaxSessionTimeout=1000\nminSessionTimeout=5000\n').file));
    expect(rel.issues.map((i) => `${i.line} ${i.keyPath}`)).toEqual(['2 clientPort', '4 minSessionTimeout']);
    expect(rel.issues[0].reason).toBe('expected a port number 1-65535, got 99999');
  });

  it('refuses bad server lines, duplicate ids and hierarchical quorums', () => {
    const bad = failure(() => loadZooCfg(setup('dataDir=$DIR/data\nserver.1=127.0.0.1:2888\n').file));
    expect(bad.message).toMatch(/zoo\.cfg:2: server\.1: expected host:peerPort:electionPort/);
    const dup = failure(() => loadZooCfg(setup('dataDir=$DIR/data\nserver.1=a:2888:3888\nserver.01=b:2888:3888\n', { myid: '1' }).file));
    expect(dup.line).toBe(3);
    expect(dup.reason).toContain('server id 1 is used twice');
    const group = failure(() => loadZooCfg(setup('dataDir=$DIR/data\ngroup.1=1:2:3\n').file));
    expect(group.reason).toContain('hierarchical quorums');
  });

  it('refuses a clientPort that contradicts the server line', () => {
    const err = failure(() => loadZooCfg(setup(ENSEMBLE.replace('clientPort=2182', 'clientPort=2999'), { myid: '2' }).file));
    expect(err.keyPath).toBe('clientPort');
    expect(err.line).toBe(5);
  });

  it('reads server lines from a dynamicConfigFile', () => {
    const dynamic = 'server.1=127.0.0.1:2888:3888:participant;2181\nserver.2=127.0.0.1:2889:3889:participant;2182\nserver.3=[::1]:2890:3890;[::1]:2183\nversion=100000000\n';
    const { file } = setup('dataDir=$DIR/data\ndynamicConfigFile=zoo.cfg.dynamic\nreconfigEnabled=true\n', { myid: '3', files: { 'zoo.cfg.dynamic': dynamic } });
    const { quorum } = loadZooCfg(file);
    expect(quorum.reconfigEnabled).toBe(true);
    expect(quorum.servers.map((s) => s.id)).toEqual([1, 2, 3]);
    expect(quorum.clientHost).toBe('::1');
    expect(quorum.clientPort).toBe(2183);
    expect(quorum.servers[2].host).toBe('::1');
    const both = setup('dataDir=$DIR/data\ndynamicConfigFile=d\nserver.1=a:1:2\n', { myid: '1', files: { d: dynamic } });
    expect(failure(() => loadZooCfg(both.file)).reason).toContain('must be in the dynamic config file');
  });

  it('maps the remaining keys', () => {
    const { file } = setup(`dataDir=data
dataLogDir=$DIR/log
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=-1
maxSessionTimeout=-1
tickTime=100
snapCount=5000
autopurge.snapRetainCount=1
jute.maxbuffer=4194304
skipACL=yes
DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
quorate.clusterId=prod-a
`);
    const { quorum, warnings } = loadZooCfg(file);
    expect(quorum).toMatchObject({
      dataDir: path.join(path.dirname(file), 'data'), dataLogDir: path.join(path.dirname(file), 'log'), clientHost: '127.0.0.1',
      maxClientCnxns: 0, minSessionTimeoutMs: 200, maxSessionTimeoutMs: 2000, snapCount: 5000, autopurgeSnapRetainCount: 3,
      packetBytesMax: 4194304, skipAcl: true, superDigest: 'super:D/InIHSb7yEEbrWz8b9l71RjZJU=', clusterId: 'prod-a',
    });
    expect(warnings.map((w) => w.replace(`${file}:`, ''))).toEqual([
      expect.stringMatching(/^1: dataDir: relative path data is taken from the directory/),
      '9: autopurge.snapRetainCount: 1 is below 3; using 3, as ZooKeeper does',
      '11: skipACL: ACL checks are off: every client can read, change and delete every znode',
    ]);
  });

  it('warns on a key set twice; the last wins', () => {
    const { quorum, warnings } = loadZooCfg(setup('dataDir=$DIR/data\ntickTime=1000\ntickTime=3000\n').file);
    expect(quorum.tickMs).toBe(3000);
    expect(warnings[0]).toContain(':3: tickTime: set again (first on line 2)');
  });

  it('requires dataDir and names a missing file', () => {
    expect(failure(() => loadZooCfg(setup('clientPort=2181\n').file)).keyPath).toBe('dataDir');
    expect(failure(() => loadZooCfg('/nonexistent/zoo.cfg')).message).toBe('/nonexistent/zoo.cfg: file not found');
  });
});

describe('parseProperties', () => {
  it('follows java.util.Properties', () => {
    const text = '# c\n! c\n  a = 1  \nb:2\nc 3\nd=x\\\n   y\ne=tab\\tend\nserver.1=h:1:2;3\nempty=\n';
    expect(parseProperties(text)).toEqual([
      { key: 'a', value: '1', line: 3 },
      { key: 'b', value: '2', line: 4 },
      { key: 'c', value: '3', line: 5 },
      { key: 'd', value: 'xy', line: 6 },
      { key: 'e', value: 'tab\tend', line: 8 },
      { key: 'server.1', value: 'h:1:2;3', line: 9 },
      { key: 'empty', value: '', line: 10 },
    ]);
  });
});
