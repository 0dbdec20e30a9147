// Apache ZooKeeper's own zkCli (ZooKeeperMain) against a ZooKeeper-compatible
// server. The assertions are on the text zkCli prints when it talks to Apache
// ZooKeeper 3.8, so a server that passes returns the same error codes, stats,
// ACLs and sequence numbers.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zkCli, zkCliBatch } from './zkcli.js';

const T = 30_000;

/** ZooKeeper's digest ACL id for user:password: user:base64(sha1("user:password")). */
export function zkDigest(user: string, password: string): string {
  return `${user}:${crypto.createHash('sha1').update(`${user}:${password}`).digest('base64')}`;
}

/** The stat block zkCli prints (`stat`, `get -s`, `ls -s`) parsed into fields. */
function parseStat(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(cZxid|ctime|mZxid|mtime|pZxid|cversion|dataVersion|aclVersion|ephemeralOwner|dataLength|numChildren) = (.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

const STAT_FIELDS = ['cZxid', 'ctime', 'mZxid', 'mtime', 'pZxid', 'cversion', 'dataVersion', 'aclVersion',
  'ephemeralOwner', 'dataLength', 'numChildren'];

export function runZkCliSuite(getConnectString: () => string): void {
  describe('zkCli (Apache ZooKeeperMain)', () => {
    const root = `/zkcli-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    let cs = '';

    beforeAll(async () => {
      cs = getConnectString();
      const r = await zkCli(cs, ['create', root, 'suite-root']);
      expect(r.stderr).toContain(`Created ${root}`);
      expect(r.code).toBe(0);
    }, T);

    afterAll(async () => {
      if (cs) await zkCli(cs, ['deleteall', root]).catch(() => undefined);
    }, T);

    it('one command per JVM: exit code and messages of create/get/ls/delete', async () => {
      const p = `${root}/single`;
      let r = await zkCli(cs, ['create', p, 'hello']);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`Created ${p}`);

      r = await zkCli(cs, ['create', p, 'again']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`Node already exists: ${p}`);

      r = await zkCli(cs, ['get', p]);
      expect(r.code).toBe(0);
      expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('hello');
      expect(r.stdout).toContain('state:SyncConnected type:None path:null');

      r = await zkCli(cs, ['ls', root]);
      expect(r.code).toBe(0);
      expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('[single]');

      r = await zkCli(cs, ['delete', p]);
      expect(r.code).toBe(0);

      r = await zkCli(cs, ['get', p]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`Node does not exist: ${p}`);
    }, T);

    it('create/ls/get/set/stat/delete with versions and stats', async () => {
      const d = `${root}/crud`;
      const r = await zkCliBatch(cs, [
        `create ${d}`, //                       0
        `create ${d}/a hello`, //               1
        `create ${d}/b`, //                     2
        `ls ${d}`, //                           3
        `get ${d}/a`, //                        4
        `stat ${d}/a`, //                       5
        `set ${d}/a world`, //                  6
        `get -s ${d}/a`, //                     7
        `set -v 7 ${d}/a nope`, //              8
        `set -v 1 ${d}/a again`, //             9
        `get ${d}/a`, //                        10
        `ls -s ${d}`, //                        11
        `delete ${d}`, //                       12 not empty
        `delete -v 5 ${d}/a`, //                13 bad version
        `delete -v 2 ${d}/a`, //                14
        `delete ${d}/b`, //                     15
        `ls ${d}`, //                           16
        `stat ${d}/a`, //                       17
        `get ${d}/missing`, //                  18
        `set ${d}/missing x`, //                19
        `create ${d}/no/parent x`, //           20
        `delete ${d}`, //                       21
        `stat ${d}`, //                         22
        `ls /`, //                              23
      ]);
      const o = r.outputs;
      expect(o[0]).toBe(`Created ${d}`);
      expect(o[1]).toBe(`Created ${d}/a`);
      expect(o[2]).toBe(`Created ${d}/b`);
      expect(o[3]).toBe('[a, b]');
      expect(o[4]).toBe('hello');

      const s1 = parseStat(o[5]);
      expect(Object.keys(s1)).toEqual(STAT_FIELDS);
      expect(s1.dataVersion).toBe('0');
      expect(s1.dataLength).toBe('5');
      expect(s1.numChildren).toBe('0');
      expect(s1.ephemeralOwner).toBe('0x0');
      expect(s1.aclVersion).toBe('0');
      expect(s1.cZxid).toMatch(/^0x[0-9a-f]+$/);
      expect(s1.mZxid).toBe(s1.cZxid);

      expect(o[6]).toBe('');
      expect(o[7].split('\n')[0]).toBe('world');
      const s2 = parseStat(o[7]);
      expect(s2.dataVersion).toBe('1');
      expect(s2.dataLength).toBe('5');
      expect(s2.cZxid).toBe(s1.cZxid);
      expect(BigInt(s2.mZxid)).toBeGreaterThan(BigInt(s1.mZxid));

      expect(o[8]).toBe(`version No is not valid : ${d}/a`);
      expect(o[9]).toBe('');
      expect(o[10]).toBe('again');

      expect(o[11].split('\n')[0]).toBe('[a, b]');
      const sd = parseStat(o[11]);
      expect(sd.numChildren).toBe('2');
      expect(sd.cversion).toBe('2');
      expect(sd.dataLength).toBe('0');

      expect(o[12]).toBe(`Node not empty: ${d}`);
      expect(o[13]).toBe(`version No is not valid : ${d}/a`);
      expect(o[14]).toBe('');
      expect(o[15]).toBe('');
      expect(o[16]).toBe('[]');
      expect(o[17]).toBe(`Node does not exist: ${d}/a`);
      expect(o[18]).toBe(`Node does not exist: ${d}/missing`);
      expect(o[19]).toBe(`Node does not exist: ${d}/missing`);
      expect(o[20]).toBe(`Node does not exist: ${d}/no/parent`);
      expect(o[21]).toBe('');
      expect(o[22]).toBe(`Node does not exist: ${d}`);
      const top = o[23].replace(/^\[|\]$/g, '').split(', ');
      expect(top).toContain(root.slice(1));
      expect(top).toContain('zookeeper');
    }, T);

    it('create -e: ephemeral owned by the session, no children, gone when the session closes', async () => {
      const d = `${root}/eph`;
      const r = await zkCliBatch(cs, [
        `create ${d}`,
        `create -e ${d}/e1 mine`,
        `stat ${d}/e1`,
        `create ${d}/e1/child`,
        `get ${d}/e1`,
        `ls ${d}`,
        `getEphemerals ${d}`,
        `stat ${d}`,
      ]);
      const o = r.outputs;
      expect(o[0]).toBe(`Created ${d}`);
      expect(o[1]).toBe(`Created ${d}/e1`);
      const st = parseStat(o[2]);
      expect(st.ephemeralOwner).toMatch(/^0x[0-9a-f]+$/);
      expect(st.ephemeralOwner).not.toBe('0x0');
      expect(o[3]).toBe(`Ephemerals cannot have children: ${d}/e1/child`);
      expect(o[4]).toBe('mine');
      expect(o[5]).toBe('[e1]');
      expect(o[6]).toBe(`[${d}/e1]`);
      expect(parseStat(o[7]).ephemeralOwner).toBe('0x0');

      // zkCliBatch ends with `quit`, which closes the session: the ephemeral must be gone for the next session.
      const after = await zkCliBatch(cs, [`ls ${d}`, `stat ${d}/e1`]);
      expect(after.outputs[0]).toBe('[]');
      expect(after.outputs[1]).toBe(`Node does not exist: ${d}/e1`);
    }, T);

    it('create -s: sequential names carry a 10-digit, increasing counter from the parent cversion', async () => {
      const d = `${root}/seq`;
      const r = await zkCliBatch(cs, [
        `create ${d}`,
        `create -s ${d}/job- a`,
        `create -s ${d}/job- b`,
        `create ${d}/plain`,
        `create -s -e ${d}/job- c`,
        `create -s ${d}/ d`,
        `ls ${d}`,
      ]);
      const o = r.outputs;
      expect(o[0]).toBe(`Created ${d}`);
      const names = [o[1], o[2], o[4], o[5]].map((line) => {
        const m = /^Created (.*)$/.exec(line);
        expect(m, line).not.toBeNull();
        return m![1];
      });
      for (const n of names) expect(n).toMatch(/\/(job-)?\d{10}$/);
      expect(names).toEqual([`${d}/job-0000000000`, `${d}/job-0000000001`, `${d}/job-0000000003`, `${d}/0000000004`]);
      expect(o[6]).toBe('[0000000004, job-0000000000, job-0000000001, job-0000000003, plain]');
    }, T);

    it('digest ACL: addauth, create with auth ACL, getAcl, other sessions get "Insufficient permission"', async () => {
      const d = `${root}/acl`;
      const digest = zkDigest('user', 'pw');
      const owner = await zkCliBatch(cs, [
        `create ${d}`,
        'addauth digest user:pw',
        `create ${d}/secret data auth:user:pw:cdrwa`,
        `getAcl ${d}/secret`,
        `get ${d}/secret`,
        `create ${d}/secret/child inner`,
        `getAcl ${d}`,
        'whoami',
      ]);
      let o = owner.outputs;
      expect(o[0]).toBe(`Created ${d}`);
      expect(o[1]).toBe('');
      expect(o[2]).toBe(`Created ${d}/secret`);
      expect(o[3]).toBe(`'digest,'${digest}\n: cdrwa`);
      expect(o[4]).toBe('data');
      expect(o[5]).toBe(`Created ${d}/secret/child`);
      expect(o[6]).toBe(`'world,'anyone\n: cdrwa`);
      expect(o[7].split('\n')).toEqual(['Auth scheme: User', 'digest: user', 'ip: 127.0.0.1']);

      // A second client without auth: every read and write of the node is refused.
      const denied = `Insufficient permission : ${d}/secret`;
      const stranger = await zkCliBatch(cs, [
        `get ${d}/secret`,
        `set ${d}/secret x`,
        `ls ${d}/secret`,
        `getAcl ${d}/secret`,
        `create ${d}/secret/other`,
        `delete ${d}/secret/child`,
        `setAcl ${d}/secret world:anyone:cdrwa`,
        `stat ${d}/secret`,
        'addauth digest user:wrong',
        `get ${d}/secret`,
      ]);
      o = stranger.outputs;
      expect(o[0]).toBe(denied);
      expect(o[1]).toBe(denied);
      expect(o[2]).toBe(denied);
      expect(o[3]).toBe(denied);
      expect(o[4]).toBe(`Insufficient permission : ${d}/secret/other`);
      expect(o[5]).toBe(`Insufficient permission : ${d}/secret/child`);
      expect(o[6]).toBe(denied);
      // stat needs no permission
      expect(parseStat(o[7]).dataLength).toBe('4');
      expect(o[9]).toBe(denied);

      // Same check in the one-command form: exit code 1.
      const single = await zkCli(cs, ['get', `${d}/secret`]);
      expect(single.code).toBe(1);
      expect(single.stderr).toContain(denied);

      // With the right credentials: open the node for reading by everyone, via setAcl.
      const admin = await zkCliBatch(cs, [
        'addauth digest user:pw',
        `setAcl ${d}/secret digest:${digest}:cdrwa,world:anyone:r`,
        `getAcl -s ${d}/secret`,
      ]);
      expect(admin.outputs[1]).toBe('');
      expect(admin.outputs[2].split('\n').slice(0, 4)).toEqual([`'digest,'${digest}`, ': cdrwa', `'world,'anyone`, ': r']);
      expect(parseStat(admin.outputs[2]).aclVersion).toBe('1');

      const reader = await zkCliBatch(cs, [`get ${d}/secret`, `set ${d}/secret nope`, `getAcl ${d}/secret`]);
      expect(reader.outputs[0]).toBe('data');
      expect(reader.outputs[1]).toBe(denied);
      // Without ADMIN permission the server masks the digest hash as "x"
      // (ZOOKEEPER-1392, CVE-2019-0201); the owner above saw the real hash.
      expect(reader.outputs[2]).toBe(`'digest,'user:x\n: cdrwa\n'world,'anyone\n: r`);
    }, T);

    it('deleteall removes a whole subtree', async () => {
      const d = `${root}/tree`;
      const r = await zkCliBatch(cs, [
        `create ${d}`,
        `create ${d}/a`,
        `create ${d}/a/b`,
        `create ${d}/a/b/c leaf`,
        `create ${d}/x`,
        `ls -R ${d}`,
        `delete ${d}/a`,
        `deleteall ${d}`,
        `stat ${d}`,
        `ls ${root}`,
      ]);
      const o = r.outputs;
      expect(o[3]).toBe(`Created ${d}/a/b/c`);
      expect(o[5].split('\n').sort()).toEqual([d, `${d}/a`, `${d}/a/b`, `${d}/a/b/c`, `${d}/x`].sort());
      expect(o[6]).toBe(`Node not empty: ${d}/a`);
      expect(o[7]).toBe('');
      expect(o[8]).toBe(`Node does not exist: ${d}`);
      expect(o[9]).not.toMatch(/\btree\b/);
    }, T);

    it('watches: get -w / ls -w fire once, addWatch (persistent recursive) keeps firing', async () => {
      const d = `${root}/watch`;
      const r = await zkCliBatch(cs, [
        `create ${d} v0`,
        `get -w ${d}`,
        `ls -w ${d}`,
        `set ${d} v1`,
        `set ${d} v2`, // the one-shot data watch is used up: no second event
        `create ${d}/kid`,
        `addWatch -m PERSISTENT_RECURSIVE ${d}`,
        `create ${d}/kid/grandkid`,
        `set ${d}/kid/grandkid g1`,
        `delete ${d}/kid/grandkid`,
        `sync ${d}`,
      ]);
      expect(r.outputs[1]).toBe('v0');
      expect(r.outputs[10]).toBe('Sync is OK');
      const ev = r.events.filter((e) => !e.includes('type:None'));
      expect(ev).toEqual([
        `WatchedEvent state:SyncConnected type:NodeDataChanged path:${d}`,
        `WatchedEvent state:SyncConnected type:NodeChildrenChanged path:${d}`,
        `WatchedEvent state:SyncConnected type:NodeCreated path:${d}/kid/grandkid`,
        `WatchedEvent state:SyncConnected type:NodeDataChanged path:${d}/kid/grandkid`,
        `WatchedEvent state:SyncConnected type:NodeDeleted path:${d}/kid/grandkid`,
      ]);
    }, T);
  });
}
