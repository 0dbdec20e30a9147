// Crash and disk-damage recovery of a real server process: kill -9 under a
// write load loses no acknowledged write; a torn tail is cut (and said so);
// damage followed by valid records stops the server (and `quorum verify`
// says where); snapshots with autopurge restore the exact tree.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateMode, isZkError, ZkClient, type Stat } from '../../src/client/index.js';
import { Err } from '../../src/proto/zk-constants.js';
import { crc32, encodeRecord, RECORD_HEADER_BYTES } from '../../src/io/storage-format.js';
import { CLI, startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { logLines } from '../helpers/raw-zk.js';
import { seededRng } from '../helpers/seeded.js';
import { waitUntil } from '../helpers/wait.js';

const started: QuorateServer[] = [];
async function server(cfg: Record<string, string> = {}): Promise<QuorateServer> {
  const s = await startQuorateServer({ cfg });
  started.push(s);
  return s;
}

afterAll(async () => {
  for (const s of started) {
    await s.stop();
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The kill times and the order of mixed operations: replay a failure with CRASH_SEED. */
const { rng } = seededRng('CRASH_SEED');

async function client(s: QuorateServer, timeoutMs = 30_000): Promise<ZkClient> {
  const zk = new ZkClient({ connectString: s.connectString, sessionTimeoutMs: timeoutMs, requestTimeoutMs: 10_000, connectTimeoutMs: 2000 });
  await zk.connect({ timeoutMs: 15_000 });
  return zk;
}

/** Run tasks with at most `n` in flight. */
async function pool<T>(items: T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await f(items[next++]);
  }));
}

// ---- the log format, read independently of the server (documented in src/io/storage-format.ts) ----
// Header 24 bytes ('QTXL', version, reserved); record: u32 length | u32 CRC32(zxid+payload) | i64 zxid | payload.
const LOG_HEADER = 24;
const REC_HEADER = RECORD_HEADER_BYTES;

interface LogRecord { offset: number; len: number; zxid: bigint }
function scanLog(buf: Buffer): { records: LogRecord[]; end: number } {
  const records: LogRecord[] = [];
  let pos = LOG_HEADER;
  while (pos + REC_HEADER <= buf.length) {
    const len = buf.readUInt32BE(pos);
    if (len === 0 || pos + REC_HEADER + len > buf.length) break;
    if (crc32(buf.subarray(pos + 8, pos + REC_HEADER + len)) !== buf.readUInt32BE(pos + 4)) break;
    records.push({ offset: pos, len, zxid: buf.readBigInt64BE(pos + 8) });
    pos += REC_HEADER + len;
  }
  return { records, end: pos };
}

const logDir = (s: QuorateServer) => path.join(s.dataDir, 'log');
const snapDir = (s: QuorateServer) => path.join(s.dataDir, 'snap');
const logFiles = (s: QuorateServer) => fs.readdirSync(logDir(s)).filter((f) => /^log\.[0-9a-f]{16}$/.test(f)).sort();
const snapFiles = (s: QuorateServer) => fs.readdirSync(snapDir(s)).filter((f) => /^snapshot\.[0-9a-f]{16}$/.test(f)).sort();
const newestLog = (s: QuorateServer) => path.join(logDir(s), logFiles(s).at(-1)!);

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Log lines (pino JSON) printed since `from` (an index into logs()). */
function logsSince(s: QuorateServer, from: number): string {
  return s.logs().slice(from);
}

async function restartExpectingFailure(s: QuorateServer): Promise<{ code: number | null; text: string }> {
  const from = s.logs().length;
  let err: Error | null = null;
  try {
    await s.restart();
  } catch (e) {
    err = e as Error;
  }
  if (err === null) {
    await s.stop();
    throw new Error('the server started on a damaged log');
  }
  const m = /exited with (-?\d+|null)/.exec(err.message);
  return { code: m && m[1] !== 'null' ? Number(m[1]) : null, text: logsSince(s, from) };
}

// ---- (a) kill -9 under load ----

describe('kill -9 during a write load', () => {
  it('every acknowledged write survives, over several kills', async () => {
    // A low snapCount so kills also land in snapshots and log rolls.
    const s = await server({ snapCount: '300' });
    const setup = await client(s);
    await setup.create('/crash');
    await setup.create('/crash/seq');
    await setup.create('/crash/own');
    const CLIENTS = 4;
    const WORKERS = 4;
    for (let c = 0; c < CLIENTS; c++) for (let w = 0; w < WORKERS; w++) await setup.create(`/crash/own/c${c}w${w}`, 'init');
    await setup.close();

    const ackedCreates = new Map<string, string>();
    const own = new Map<string, { acked: { data: string; version: number }; inFlight: string | null }>();
    for (let c = 0; c < CLIENTS; c++) for (let w = 0; w < WORKERS; w++) own.set(`/crash/own/c${c}w${w}`, { acked: { data: 'init', version: 0 }, inFlight: null });
    const unexpected: string[] = [];
    let totalAcked = 0;

    const ROUNDS = 3;
    for (let round = 0; round < ROUNDS; round++) {
      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => client(s)));
      let killed = false;
      // The parent's cversion (the sequence counter) must not go back after a crash: every new name sorts after every old one.
      const suffix = (p: string) => Number(p.slice(-10));
      const floor = Math.max(-1, ...[...ackedCreates.keys()].map(suffix));
      const workers: Promise<void>[] = [];
      for (let c = 0; c < CLIENTS; c++) {
        for (let w = 0; w < WORKERS; w++) {
          const zk = clients[c];
          const mine = `/crash/own/c${c}w${w}`;
          workers.push((async () => {
            for (let i = 0; i < 1_000_000; i++) {
              try {
                if (i % 2 === 0) {
                  const data = `r${round}c${c}w${w}i${i}`;
                  const p = await zk.create(`/crash/seq/r${round}c${c}w${w}-`, data, { mode: CreateMode.PERSISTENT_SEQUENTIAL });
                  if (ackedCreates.has(p)) unexpected.push(`sequential create answered an existing name ${p}`);
                  if (suffix(p) <= floor) unexpected.push(`sequence number went back after the restart: ${p}, before it ${floor}`);
                  ackedCreates.set(p, data);
                } else {
                  const st = own.get(mine)!;
                  const data = `r${round}i${i}`;
                  st.inFlight = data;
                  const stat = await zk.setData(mine, data, st.acked.version);
                  st.acked = { data, version: stat.version };
                  st.inFlight = null;
                }
                totalAcked++;
              } catch (e) {
                if (!killed) unexpected.push(`before the kill: ${(e as Error).message}`);
                else if (!isZkError(e, Err.CONNECTIONLOSS) && !isZkError(e, Err.SESSIONEXPIRED)) unexpected.push(`after the kill: ${(e as Error).message}`);
                return;
              }
            }
          })());
        }
      }
      const before = totalAcked;
      // The load is running (more than 20 writes acknowledged this round), then the kill comes after a
      // seeded random delay, so that it lands at a different point of the load in each round.
      await waitUntil(`round ${round}: more than 20 writes acknowledged before the kill`, 20_000, () => unexpected.length > 0 || totalAcked - before > 20);
      expect(unexpected).toEqual([]);
      await sleep(rng.int(1200));
      killed = true;
      await s.kill9();
      const ackedThisRound = totalAcked - before;
      // Every worker ends at its first failed call after the kill (connection loss): bounded.
      let stopped = false;
      await Promise.race([Promise.all(workers).then(() => { stopped = true; }), sleep(15_000)]);
      expect(stopped, `round ${round}: every worker stopped within 15 s after the kill`).toBe(true);
      await Promise.all(clients.map((zk) => zk.close({ timeoutMs: 200 })));
      expect(unexpected).toEqual([]);
      expect(ackedThisRound, `round ${round}: the load must have been running when the kill came`).toBeGreaterThan(20);

      // Whatever the kill left (at worst a torn tail or a stray snapshot .tmp), verify must not call it corrupt.
      const v = cli('quorum', 'verify', s.dataDir);
      expect(v.code, `round ${round}: verify after kill -9\n${v.stdout}${v.stderr}`).toBe(0);

      await s.restart();
      const check = await client(s);
      try {
        await pool([...ackedCreates], 64, async ([p, data]) => {
          let got: Buffer | null | undefined;
          try { got = (await check.getData(p)).data; } catch (e) { unexpected.push(`acknowledged create ${p}: ${(e as Error).message}`); return; }
          if (got?.toString() !== data) unexpected.push(`acknowledged create ${p}: data ${got?.toString()} instead of ${data}`);
        });
        for (const [p, st] of own) {
          const { data, stat } = await check.getData(p);
          const d = data?.toString();
          if (d === st.acked.data) {
            if (stat.version !== st.acked.version) unexpected.push(`${p}: version ${stat.version}, acknowledged ${st.acked.version}`);
          } else if (st.inFlight !== null && d === st.inFlight) {
            if (stat.version !== st.acked.version + 1) unexpected.push(`${p}: in-flight write present with version ${stat.version}`);
            st.acked = { data: d, version: stat.version }; // it made it: the next round builds on it
          } else {
            unexpected.push(`${p}: holds ${d} (v${stat.version}); acknowledged ${st.acked.data} (v${st.acked.version}), in flight ${st.inFlight}`);
          }
          st.inFlight = null;
        }
        // The sequence counter survived too: the children are exactly what was acknowledged, plus in-flight ones.
        const children = await check.getChildren('/crash/seq');
        const acked = new Set([...ackedCreates.keys()].map((p) => p.slice('/crash/seq/'.length)));
        for (const a of acked) if (!children.includes(a)) unexpected.push(`missing ${a}`);
        expect(children.length - acked.size, 'at most one unacknowledged create per worker per round').toBeLessThanOrEqual(CLIENTS * WORKERS);
        for (const ch of children) if (!acked.has(ch)) ackedCreates.set(`/crash/seq/${ch}`, (await check.getData(`/crash/seq/${ch}`)).data!.toString());
      } finally {
        await check.close();
      }
      expect(unexpected).toEqual([]);
    }
    expect(totalAcked).toBeGreaterThan(100);
    const v = cli('quorum', 'verify', s.dataDir);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  }, 120_000);
});

// ---- (b) torn tails ----

describe('a torn tail of the newest log is cut', () => {
  it('garbage, a partial record, and garbage past the preallocation: each cut at the right offset, nothing lost', async () => {
    const s = await server();
    const written = new Map<string, string>();
    const writeSome = async (tag: string, n: number) => {
      const zk = await client(s);
      try {
        if (!(await zk.exists('/t'))) await zk.create('/t');
        for (let i = 0; i < n; i++) {
          const p = `/t/${tag}-${i}`;
          await zk.create(p, `${tag}:${i}`);
          written.set(p, `${tag}:${i}`);
        }
        await zk.setData(`/t/${tag}-0`, `${tag}:updated`);
        written.set(`/t/${tag}-0`, `${tag}:updated`);
      } finally {
        await zk.close();
      }
    };
    const checkAll = async () => {
      const zk = await client(s);
      try {
        for (const [p, d] of written) expect((await zk.getData(p)).data?.toString(), p).toBe(d);
      } finally {
        await zk.close();
      }
    };
    type Damage = (file: string, end: number, last: LogRecord, buf: Buffer) => void;
    const variants: [string, Damage][] = [
      ['garbage written where the next record would go', (file, end) => {
        const fd = fs.openSync(file, 'r+');
        fs.writeSync(fd, crypto.randomBytes(200).map((b) => b | 1), 0, 200, end);
        fs.closeSync(fd);
      }],
      ['a partial record (header and half the payload)', (file, end, last, buf) => {
        const payload = Buffer.from(buf.subarray(last.offset + REC_HEADER, last.offset + REC_HEADER + last.len));
        const rec = encodeRecord(last.zxid + 1n, payload);
        const fd = fs.openSync(file, 'r+');
        fs.writeSync(fd, rec, 0, REC_HEADER + Math.floor(payload.length / 2), end);
        fs.closeSync(fd);
      }],
      ['the file cut after its last record, then a partial record appended', (file, end, last, buf) => {
        const payload = Buffer.from(buf.subarray(last.offset + REC_HEADER, last.offset + REC_HEADER + last.len));
        const rec = encodeRecord(last.zxid + 1n, payload);
        fs.truncateSync(file, end);
        fs.appendFileSync(file, rec.subarray(0, rec.length - 3));
      }],
      ['a partial record header only', (file, end, last) => {
        const rec = encodeRecord(last.zxid + 1n, Buffer.alloc(40, 7));
        fs.truncateSync(file, end);
        fs.appendFileSync(file, rec.subarray(0, 9));
      }],
      ['garbage appended after the preallocated zeros', (file) => {
        fs.appendFileSync(file, crypto.randomBytes(300).map((b) => b | 1));
      }],
    ];
    for (const [idx, [name, damage]] of variants.entries()) {
      await writeSome(`v${idx}`, 30);
      expect(await s.stop(), 'clean stop').toBe(0);
      const file = newestLog(s);
      const buf = fs.readFileSync(file);
      const { records, end } = scanLog(buf);
      expect(records.length, name).toBeGreaterThan(0);
      damage(file, end, records.at(-1)!, buf);

      const v = cli('quorum', 'verify', s.dataDir);
      expect(v.code, `${name}: verify exits 0 on a torn tail\n${v.stdout}${v.stderr}`).toBe(0);
      expect(v.stdout, name).toContain(`${file} at offset ${end}`);
      expect(v.stdout, name).toMatch(/torn tail/);

      const from = s.logs().length;
      await s.restart();
      const warn = logLines(logsSince(s, from), 40).find((l) => /torn tail/.test(String(l.msg)));
      expect(warn, `${name}: a warn line about the cut`).toBeDefined();
      expect(warn!.level).toBe(40);
      expect(warn!.file, name).toBe(file);
      expect(warn!.offset, name).toBe(end);
      expect(logLines(logsSince(s, from), 50), name).toEqual([]);
      await checkAll();
      // The cut is durable and the log appends after it: more writes, a clean restart, no new cut.
      await writeSome(`v${idx}-after`, 5);
      expect(await s.stop()).toBe(0);
      const clean = cli('quorum', 'verify', s.dataDir);
      expect(clean.code, clean.stdout).toBe(0);
      expect(clean.stdout, `${name}: after the cut, verify finds nothing`).not.toMatch(/torn tail|WARNING|ERROR/);
      const from2 = s.logs().length;
      await s.restart();
      expect(logsSince(s, from2)).not.toMatch(/torn tail/);
      await checkAll();
    }
  }, 120_000);
});

// ---- (c) corruption followed by valid records ----

describe('corruption in the middle of a log', () => {
  it('the server refuses to start, naming file and offset; verify reports it and exits 1; nothing is cut', async () => {
    const s = await server();
    const zk = await client(s);
    await zk.create('/m');
    for (let i = 0; i < 200; i++) await zk.create(`/m/n${i}`, `data-${i}`);
    await zk.close();
    expect(await s.stop()).toBe(0);

    const file = newestLog(s);
    const pristine = fs.readFileSync(file);
    const { records } = scanLog(pristine);
    expect(records.length).toBeGreaterThan(200);
    // One flipped byte in an early record, in each of its fields; valid records follow it.
    const variants: [string, number, (rec: LogRecord) => number][] = [
      ['payload', 5, (r) => r.offset + REC_HEADER + Math.floor(r.len / 2)],
      ['length field', 7, (r) => r.offset + 3],
      ['length field, high byte', 8, (r) => r.offset],
      ['checksum field', 9, (r) => r.offset + 5],
      ['zxid field', 11, (r) => r.offset + 15],
      ['first record', 0, (r) => r.offset + REC_HEADER + 1],
    ];
    for (const [name, index, where] of variants) {
      const victim = records[index];
      const buf = Buffer.from(pristine);
      buf[where(victim)] ^= 0x40;
      fs.writeFileSync(file, buf);
      const sha = crypto.createHash('sha256').update(buf).digest('hex');

      const v = cli('quorum', 'verify', s.dataDir);
      expect(v.code, `${name}: ${v.stdout}${v.stderr}`).toBe(1);
      expect(v.stdout, name).toContain(`${file} at offset ${victim.offset}`);
      expect(v.stdout, name).toMatch(/ERROR/);
      expect(v.stdout, name).toMatch(/NOT OK/);
      const vj = cli('quorum', 'verify', '--json', s.dataDir);
      expect(vj.code, name).toBe(1);
      const report = JSON.parse(vj.stdout) as { ok: boolean; problems: { severity: string; file: string; offset?: number }[] };
      expect(report.ok, name).toBe(false);
      expect(report.problems, name).toContainEqual(expect.objectContaining({ severity: 'error', file, offset: victim.offset }));

      const { code, text } = await restartExpectingFailure(s);
      expect(code, `${name}: ${text}`).not.toBe(0);
      expect(code, `${name}: ${text}`).not.toBeNull();
      expect(text, name).toContain(file);
      expect(text, name).toContain(`offset ${victim.offset}`);
      expect(s.alive(), name).toBe(false);
      // Refusing must not repair: the file is byte for byte what it was.
      expect(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), name).toBe(sha);
    }

    // With the damage undone the same directory starts and holds everything.
    fs.writeFileSync(file, pristine);
    await s.restart();
    const check = await client(s);
    try {
      for (let i = 0; i < 200; i++) expect((await check.getData(`/m/n${i}`)).data?.toString()).toBe(`data-${i}`);
    } finally {
      await check.close();
    }
  }, 90_000);
});

// ---- (d) snapshots and autopurge ----

interface NodeInfo { data: string | null; stat: Stat }
async function listing(zk: ZkClient): Promise<Map<string, NodeInfo>> {
  const out = new Map<string, NodeInfo>();
  let level = ['/'];
  while (level.length > 0) {
    const next: string[] = [];
    await pool(level, 64, async (p) => {
      const [{ data, stat }, children] = await Promise.all([zk.getData(p), zk.getChildren(p)]);
      out.set(p, { data: data === null ? null : data.toString('hex'), stat });
      for (const c of children) next.push(p === '/' ? `/${c}` : `${p}/${c}`);
    });
    level = next;
  }
  return out;
}

function diffListings(a: Map<string, NodeInfo>, b: Map<string, NodeInfo>): string[] {
  const problems: string[] = [];
  const show = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
  for (const [p, x] of a) {
    const y = b.get(p);
    if (!y) problems.push(`missing after restart: ${p}`);
    else if (show(x) !== show(y)) problems.push(`${p}: before ${show(x)} after ${show(y)}`);
  }
  for (const p of b.keys()) if (!a.has(p)) problems.push(`appeared after restart: ${p}`);
  return problems.slice(0, 20);
}

describe('snapshots with autopurge', () => {
  it('after thousands of txns with snapCount=100 the tree is exact across restarts, and at most 3 snapshots remain', async () => {
    const s = await server({ snapCount: '100', 'autopurge.purgeInterval': '1', 'autopurge.snapRetainCount': '3' });
    const zk = await client(s);
    const eph = await client(s, 40_000);
    await zk.create('/s');
    const parents = Array.from({ length: 20 }, (_, i) => `/s/p${i}`);
    for (const p of parents) await zk.create(p, `parent ${p}`);
    const ops: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 2000; i++) ops.push(() => zk.create(`${parents[i % 20]}/n${i}`, i % 11 === 0 ? null : `node ${i}`));
    await pool(ops, 50, (op) => op().then(() => undefined));
    const more: (() => Promise<unknown>)[] = [];
    const nodeOf = (j: number) => `${parents[j % 20]}/n${j}`;
    const noNodeIsFine = (e: unknown) => { if (!isZkError(e, Err.NONODE)) throw e; };
    for (let i = 0; i < 800; i++) more.push(() => zk.setData(nodeOf((i * 7) % 2000), `update ${i}`).catch(noNodeIsFine));
    for (let i = 0; i < 300; i++) more.push(() => zk.delete(nodeOf(1000 + i * 3)).catch(noNodeIsFine));
    for (let i = 0; i < 100; i++) more.push(() => zk.create(`${parents[i % 20]}/seq-`, `s${i}`, { mode: CreateMode.PERSISTENT_SEQUENTIAL }));
    for (let i = 0; i < 20; i++) more.push(() => eph.create(`/s/p${i}/eph`, 'e', { mode: CreateMode.EPHEMERAL }));
    rng.shuffle(more);
    await pool(more, 50, (op) => op().then(() => undefined));
    const before = await listing(zk);
    expect(before.size).toBeGreaterThan(1800);
    await zk.close();

    // A clean stop waits for a snapshot in flight; then a kill -9 on the restarted server changes nothing either.
    expect(await s.stop()).toBe(0);
    const snaps = snapFiles(s);
    expect(snaps.length, `snapshots: ${snaps.join(', ')}`).toBeGreaterThanOrEqual(1);
    expect(snaps.length, `snapshots: ${snaps.join(', ')}`).toBeLessThanOrEqual(3);
    expect(fs.readdirSync(snapDir(s)).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // The logs kept are the ones the oldest kept snapshot needs: together they hold every zxid after it, without a gap.
    const oldestSnap = BigInt('0x' + snaps[0].slice('snapshot.'.length));
    const zxids: bigint[] = [];
    const logs = logFiles(s);
    for (const f of logs) for (const r of scanLog(fs.readFileSync(path.join(logDir(s), f))).records) zxids.push(r.zxid);
    expect(logs.length, `log files: ${logs.join(', ')}`).toBeLessThanOrEqual(snaps.length + 2);
    expect(zxids[0] <= oldestSnap + 1n, `first logged zxid 0x${zxids[0].toString(16)}, oldest snapshot 0x${oldestSnap.toString(16)}`).toBe(true);
    for (let i = 1; i < zxids.length; i++) expect(zxids[i], `zxid after 0x${zxids[i - 1].toString(16)}`).toBe(zxids[i - 1] + 1n);
    // Each old log file holds something the snapshots do not (none is kept for nothing but the newest).
    for (const f of logs.slice(0, -1)) {
      const recs = scanLog(fs.readFileSync(path.join(logDir(s), f))).records;
      expect(recs.at(-1)!.zxid >= oldestSnap, `${f} ends at 0x${recs.at(-1)!.zxid.toString(16)}, before the oldest snapshot 0x${oldestSnap.toString(16)}`).toBe(true);
    }
    const v = cli('quorum', 'verify', s.dataDir);
    expect(v.code, v.stdout + v.stderr).toBe(0);

    await s.restart();
    const zk2 = await client(s);
    try {
      expect(diffListings(before, await listing(zk2))).toEqual([]);
    } finally {
      await zk2.close();
    }
    // Closing zk2 wrote a closeSession: the rest of the tree is unchanged. Kill -9 and compare again.
    const zk3 = await client(s);
    const before2 = await listing(zk3);
    await zk3.close({ timeoutMs: 2000 }); // resolves on the closeSession's reply: logged by then
    await s.kill9();
    await s.restart();
    const zk4 = await client(s);
    try {
      expect(diffListings(before2, await listing(zk4))).toEqual([]);
    } finally {
      await zk4.close();
    }
    expect(snapFiles(s).length).toBeLessThanOrEqual(3);

    // A damaged newest snapshot is passed over: the older one plus the logs kept for it give the same tree.
    expect(await s.stop()).toBe(0);
    const newest = path.join(snapDir(s), snapFiles(s).at(-1)!);
    const bytes = fs.readFileSync(newest);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(newest, bytes);
    const from = s.logs().length;
    await s.restart();
    expect(logLines(logsSince(s, from), 40).some((l) => /invalid snapshot/.test(String(l.msg)) && l.file === newest)).toBe(true);
    const zk5 = await client(s);
    try {
      expect(diffListings(before2, await listing(zk5))).toEqual([]);
    } finally {
      await zk5.close();
      await eph.close({ timeoutMs: 2000 });
    }
  }, 120_000);
});
