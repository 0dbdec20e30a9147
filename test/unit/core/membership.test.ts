import { describe, expect, it } from 'vitest';
import { applyReconfig, formatMembership, observersOf, parseMemberLine, parseMembership, votersOf } from '../../../src/core/zk/membership.js';

const text = [
  'server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181',
  'server.2=10.0.0.2:2888:3888;2181',
  'server.9=10.0.0.9:2888:3888:observer;10.0.0.9:2181',
  'version=1a00000003',
].join('\n');

describe('membership text', () => {
  it('parses ZooKeeper\'s lines (role and client address optional) and writes them back in one form', () => {
    const m = parseMembership(text)!;
    expect(m.version).toBe(0x1a00000003n);
    expect(votersOf(m)).toEqual([1, 2]);
    expect(observersOf(m)).toEqual([9]);
    expect(m.members.get(2)).toEqual({ id: 2, host: '10.0.0.2', peerPort: 2888, electionPort: 3888, role: 'participant', clientHost: '0.0.0.0', clientPort: 2181 });
    expect(formatMembership(parseMembership(formatMembership(m))!)).toBe(formatMembership(m));
    expect(parseMembership('')).toBeNull();
  });

  it.each([
    ['server.1=h:2888', /is not server\.N=host:peerPort:electionPort/],
    ['server.0=h:1:2', /server id 0 .* out of range/],
    ['server.300=h:1:2', /server id 300 .* out of range/],
    ['server.1=h:70000:2', /peer port 70000 .* is not a port/],
    ['server.1=h:1:2:leader', /is not server\.N=/],
  ])('refuses %s, naming it', (line, msg) => {
    expect(() => parseMemberLine(line)).toThrow(msg);
  });

  it('refuses a duplicate id and a bad version line', () => {
    expect(() => parseMembership('server.1=h:1:2\nserver.1=h:3:4')).toThrow(/server\.1 appears twice/);
    expect(() => parseMembership('server.1=h:1:2\nversion=xyz')).toThrow(/not version=<hex>/);
  });

  it('applies -add and -remove, or -members alone', () => {
    const m = parseMembership(text)!;
    const next = applyReconfig(m, { joiningServers: 'server.3=10.0.0.3:2888:3888:participant;2181', leavingServers: '1', newMembers: '' });
    expect([...next.keys()].sort()).toEqual([2, 3, 9]);
    const whole = applyReconfig(m, { joiningServers: '', leavingServers: '', newMembers: 'server.5=h:1:2,server.6=h:3:4:observer' });
    expect([...whole.keys()]).toEqual([5, 6]);
    expect(() => applyReconfig(m, { joiningServers: 'server.5=h:1:2', leavingServers: '', newMembers: 'server.6=h:1:2' })).toThrow(/not both/);
    expect(() => applyReconfig(m, { joiningServers: '', leavingServers: '7', newMembers: '' })).toThrow(/cannot remove "7"/);
  });
});
