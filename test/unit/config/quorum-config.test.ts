import { describe, expect, it } from 'vitest';
import { failure } from './expect-config-error.js';
import { ConfigError, formatIssue } from '../../../src/config/errors.js';
import { buildQuorumConfig, QUORUM_CONFIG_BOUNDS, type ConfigSource, type QuorumServer } from '../../../src/config/quorum-config.js';
import { ZK_DEFAULTS, ZK_LIMITS } from '../../../src/limits.js';

const source: ConfigSource = {
  file: 'test.cfg',
  locate: (field) => ({ keyPath: field }),
  locateServer: (i, field) => ({ keyPath: field === null ? `servers[${i}]` : `servers[${i}].${field}` }),
  locateServers: () => ({ keyPath: 'servers' }),
};
const server = (id: number, extra: Partial<QuorumServer> = {}): QuorumServer =>
  ({ id, host: 'h' + id, peerPort: 2888, electionPort: 3888, role: 'participant', ...extra });


describe('buildQuorumConfig', () => {
  it('takes its defaults from ZK_DEFAULTS and ZK_LIMITS', () => {
    const { quorum, warnings } = buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', tickMs: 500 }, source);
    expect(warnings).toEqual([]);
    expect(quorum.minSessionTimeoutMs).toBe(500 * ZK_DEFAULTS.min_session_timeout_ticks);
    expect(quorum.maxSessionTimeoutMs).toBe(500 * ZK_DEFAULTS.max_session_timeout_ticks);
    expect(quorum.clientPort).toBe(ZK_DEFAULTS.client_port);
    expect(quorum.packetBytesMax).toBe(ZK_LIMITS.packet_bytes_max);
    expect(quorum.maxClientCnxns).toBe(ZK_LIMITS.connections_per_ip_max);
    expect(quorum.dataLogDir).toBe('/d');
  });

  it('keeps packetBytesMax within what the server limits can hold', () => {
    const B = QUORUM_CONFIG_BOUNDS;
    expect(2 * (B.packet_bytes_max + ZK_LIMITS.packet_header_bytes_extra)).toBeLessThanOrEqual(ZK_LIMITS.unsent_reply_bytes_max);
    expect(B.packet_bytes_max + ZK_LIMITS.packet_header_bytes_extra).toBeLessThanOrEqual(ZK_LIMITS.group_commit_bytes_max);
    const err = failure(() => buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', packetBytesMax: B.packet_bytes_max + 1 }, source));
    expect(err.keyPath).toBe('packetBytesMax');
  });

  it('takes the client address of this server from its entry', () => {
    const servers = [server(1, { clientPort: 3001 }), server(2, { clientPort: 3002, clientHost: '10.0.0.2' }), server(3)];
    const { quorum } = buildQuorumConfig({ clusterId: 'c', serverId: 2, dataDir: '/d', clientPort: 2181, servers }, source);
    expect(quorum.clientPort).toBe(3002);
    expect(quorum.clientHost).toBe('10.0.0.2');
  });

  it('sorts servers by id and refuses an all-observer ensemble', () => {
    const { quorum } = buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', servers: [server(3), server(1), server(2)] }, source);
    expect(quorum.servers.map((s) => s.id)).toEqual([1, 2, 3]);
    const err = failure(() => buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', servers: [server(1, { role: 'observer' })] }, source));
    expect(err.reason).toContain('at least one must be a participant');
  });

  it('refuses a port used twice by one server, and standalone port clashes', () => {
    const err = failure(() => buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', servers: [server(1, { electionPort: 2888 })] }, source));
    expect(formatIssue(err.issues[0])).toBe("test.cfg: servers[0].electionPort: port 2888 is also this server's peerPort");
    const solo = failure(() => buildQuorumConfig({ clusterId: 'c', serverId: 1, dataDir: '/d', clientPort: 8080, adminPort: 8080 }, source));
    expect(solo.keyPath).toBe('adminPort');
  });

  it('reports every problem at once', () => {
    const err = failure(() => buildQuorumConfig(
      { clusterId: '-x', serverId: 300, dataDir: '', tickMs: 1, fourLetterWords: ['nope'], superDigest: 'bad', servers: [server(1), server(1)] },
      source,
    ));
    expect(err.issues.map((i) => i.keyPath)).toEqual(['clusterId', 'serverId', 'tickMs', 'dataDir', 'superDigest', 'fourLetterWords', 'servers[1].id']);
    expect(err.message.split('\n')).toHaveLength(7);
  });

  it('warns about an even number of voters, fsync off and ACLs off', () => {
    const { warnings } = buildQuorumConfig(
      { clusterId: 'c', serverId: 1, dataDir: '/d', forceSync: false, skipAcl: true, servers: [server(1), server(2), server(3), server(4)] },
      source,
    );
    expect(warnings).toEqual([
      'test.cfg: servers: 4 voting servers tolerate no more failures than 3 (a majority is 3); an odd number is usual',
      'test.cfg: forceSync: fsync is off: acknowledged writes can be lost on power failure or an OS crash',
      'test.cfg: skipAcl: ACL checks are off: every client can read, change and delete every znode',
    ]);
  });
});
