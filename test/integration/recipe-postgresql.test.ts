// The PostgreSQL streaming-replication recipe (examples/postgresql) with the
// real packages: three PostgreSQL 15 servers, their sidecars and controllers,
// a quorum server, all on 127.0.0.1. The cycle, twice: writes through the
// client path (libpq multi-host, target_session_attrs=read-write), kill -9 of
// the primary's postmaster, writes continue on a promoted standby, the old
// primary rejoins as a standby of the new one: through pg_rewind, or, when its
// to-standby found no active in time and its WAL did not pass the fork point
// (PostgreSQL refuses to stream otherwise), by streaming after a plain start. First with
// asynchronous replication (acknowledged writes may be lost: counted, and
// only among those the dead primary acknowledged), then with
// synchronous_standby_names = 'ANY 1 (a, b, c)' and synchronous_commit = on
// (none may be lost). Then the old primary's whole host goes down, and its
// PostgreSQL comes back by hand as a primary: its sidecar rewinds it into a
// standby of the new primary.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { failoverRound, PG_BIN, postgresMissing, run, startPgCluster, type PgCluster } from '../helpers/recipe-postgresql.js';
import { missingTool } from '../helpers/ports.js';

const missing = postgresMissing();
let c: PgCluster | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`[recipe-postgresql] ${m}\n`);

describe.skipIf(missing !== null && missingTool(false))('PostgreSQL recipe: kill -9 of the primary, promotion, pg_rewind rejoin (real servers)', () => {
  beforeAll(async () => {
    if (missing !== null) throw new Error(missing);
    c = await startPgCluster({ synchronous: false });
  }, 90_000);

  afterAll(async () => { await c?.stopAll(); }, 60_000);

  afterEach((ctx) => {
    if (c !== undefined && ctx.task.result?.state === 'fail') process.stderr.write(`${c.dump()}\n`);
  });

  it('asynchronous replication: writes resume on the promoted standby, one primary at a time, the old primary rejoins (pg_rewind); only writes the dead primary acknowledged can be lost', async () => {
    const r = await failoverRound(c!, 1, { synchronous: false, log });
    log(`async: ${JSON.stringify({ ...r, lost: r.lost.length, rejoinLines: undefined })}`);
    expect(r.newPrimary).not.toBe(r.oldPrimary);
    expect(r.ackedBeforeKill).toBeGreaterThan(0);
    expect(r.ackedByNew).toBeGreaterThan(0);
    // The sampler behind maxPrimariesSeen saw the new primary: it sampled the span when two could be.
    expect(Number.isNaN(r.promotedMs)).toBe(false);
    expect(r.maxPrimariesSeen).toBe(1);
    expect(r.lostAckedByNew).toEqual([]);
    // What async replication can lose is bounded by what the dead primary acknowledged.
    expect(r.lost.length).toBeLessThanOrEqual(r.ackedBeforeKill + r.ackedByOldAfterKill);
    // The way back is pg_rewind, or (no active found in time, WAL not past the fork) plain streaming.
    expect(r.rejoinPath, `the old primary's pgq.log after the kill:\n${r.rejoinLines.join('\n')}`).not.toBeNull();
    expect(r.standbysCaughtUp).toBe(true);
    expect(r.historyConflicts).toEqual([]);
    // Settled again: one primary, both standbys streaming from it, the old one on the new timeline.
    expect(await c!.settled(20_000)).toBe(r.newPrimary);
    const old = await c!.state(r.oldPrimary);
    const now = await c!.state(r.newPrimary);
    expect(old?.timeline).toBe(now?.timeline);
  }, 180_000);

  it('synchronous replication (ANY 1, synchronous_commit on): no acknowledged write is lost', async () => {
    await c!.setSynchronous(true);
    const r = await failoverRound(c!, 2, { synchronous: true, log });
    log(`sync: ${JSON.stringify({ ...r, lost: r.lost.length, rejoinLines: undefined })}`);
    expect(r.newPrimary).not.toBe(r.oldPrimary);
    expect(r.ackedBeforeKill).toBeGreaterThan(0);
    expect(r.ackedByNew).toBeGreaterThan(0);
    expect(r.maxPrimariesSeen).toBe(1);
    expect(r.lost).toEqual([]);
    // The way back is pg_rewind, or (no active found in time, WAL not past the fork) plain streaming.
    expect(r.rejoinPath, `the old primary's pgq.log after the kill:\n${r.rejoinLines.join('\n')}`).not.toBeNull();
    expect(r.standbysCaughtUp).toBe(true);
    expect(r.historyConflicts).toEqual([]);
    expect(await c!.settled(20_000)).toBe(r.newPrimary);
  }, 180_000);

  it('the old primary\'s host goes down (controller, sidecar, postmaster killed); PostgreSQL comes back first, by hand, as a primary: its sidecar rewinds it into a standby of the new primary, failing its health check meanwhile', async () => {
    const old = await c!.settled(20_000);
    const n = c!.node(old);
    const logFrom = c!.pgqLog(old).length;
    await c!.kill9(old, 'controller');
    await c!.kill9(old, 'sidecar');
    const pid = c!.killPostmaster(old);
    // Through the dead controller's session expiry; fenced by its closed port.
    let next: string | undefined;
    const end1 = Date.now() + 30_000;
    for (let i = 0; i < 1000 && Date.now() < end1 && next === undefined; i++) {
      const a = await c!.actives();
      if (a.length === 1 && a[0] !== old && (await c!.primaries()).join() === a[0]) next = a[0];
      else await sleep(100);
    }
    expect(next).toBeDefined();
    // The host is back: PostgreSQL first, as a careless boot script starts it (its own pg_ctl, no standby.signal).
    expect(fs.existsSync(path.join(n.dataDir, 'standby.signal'))).toBe(false);
    // PostgreSQL's lock-file check takes the killed postmaster for alive until init has reaped it.
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await sleep(100);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    await run(`${PG_BIN}/pg_ctl`, ['start', '-D', n.dataDir, '-w', '-s', '-o', `-c config_file=${n.pgConf}`, '-l', path.join(n.stateDir, 'postgresql.log')], { asPostgres: true });
    expect((await c!.primaries()).sort()).toEqual([old, next!].sort());
    await c!.start(old, 'sidecar');
    // Until the sidecar stops it, the health check its controller will read says what is wrong.
    let health = '';
    for (let i = 0; i < 200 && !/second primary/.test(health); i++) {
      const h = await fetch(`http://127.0.0.1:${n.sidecarPort}/health`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
      health = h === null ? '' : `${h.status} ${await h.text()}`;
      if (!(await c!.primaries()).includes(old)) break;
    }
    expect(health).toMatch(/^503 .*a second primary/);
    await c!.start(old, 'controller');
    let back = false;
    const end2 = Date.now() + 40_000;
    for (let i = 0; i < 1000 && Date.now() < end2 && !back; i++) {
      const s = await c!.state(old);
      back = s !== null && s.inRecovery && s.receiverStatus === 'streaming' && s.senderPort === c!.node(next!).pgPort;
      if (!back) await sleep(100);
    }
    const said = c!.pgqLog(old).slice(logFrom);
    log(`${old} restarted by hand as a primary, then:\n${said}`);
    expect(back).toBe(true);
    expect(said).toMatch(new RegExp(`pg_rewind from ${next} done`));
    expect(await c!.actives()).toEqual([next]);
    expect(await c!.settled(20_000)).toBe(next);
    expect(c!.historyConflicts()).toEqual([]);
  }, 150_000);
});
