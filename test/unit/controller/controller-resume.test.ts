// ControllerCore: a controller restart that moves nothing (issue 15). A
// restarted controller given its previous run's session (settings.resume)
// resumes the active role without any hook only when it proves the role is
// still its own: the old session re-attached, a lease renewed before the lock
// is read (C2), the lock's ephemeralOwner is that session, the breadcrumb
// names this instance with this lock's token, the service reports active in
// the breadcrumb's epoch, and it is healthy (C3). Anything less starts as
// after a crash: a service found active is demoted, a lock of the old session
// is released, never trusted (C1).
import { describe, expect, it } from 'vitest';
import type { Breadcrumb } from '../../../src/core/controller/controller-core.js';
import { SID, SID2, OTHER, CZ, TOKEN, TIMEOUT, LEASE, T0, ok, fail, Harness, finishDemotion } from './core-harness.js';

/** The breadcrumb our promotion under lock CZ wrote (epoch 7). */
const CRUMB: Breadcrumb = { instance: 'a', address: 'a.example:8019', epoch: 7, token: TOKEN };

function restarted(): Harness {
  return new Harness({ resume: { sessionId: SID, waitMs: TIMEOUT } });
}

/** The happy path up to (not including) the breadcrumb read: role active, re-attached, lease, lock ours, healthy. */
function provenLock(h: Harness, epoch: number | null = 7): void {
  h.tick();
  expect(h.names()).toEqual(['queryRole']);
  h.answer('queryRole', ok({ role: 'active', serviceEpoch: epoch }));
  expect(h.phase()).toBe('starting');
  expect(h.names()).toEqual([]);
  h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
  // The lock is read only after a lease renewal (a sync through the leader) came back.
  expect(h.names()).toEqual([]);
  h.renew();
  expect(h.ops()).toEqual([{ type: 'readLock', watch: true }]);
  h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
  expect(h.names()).toEqual([]); // waits for the first health check
  h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
}

const hooks = (h: Harness) => h.effects().flatMap((e) => (e.kind === 'run' && e.what.type === 'hook' ? [e.what.hook] : []));

describe('ControllerCore: a restart that moves nothing', () => {
  it('re-attached session, lock ours, breadcrumb ours, service active in its epoch, healthy → active with no hook and no new epoch', () => {
    const h = restarted();
    provenLock(h);
    expect(h.ops()).toEqual([{ type: 'readBreadcrumb' }]);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    expect(h.ops()).toEqual([{ type: 'adoptActive', epoch: 7, token: TOKEN }]);
    const out = h.answer('adoptActive', ok());
    expect(h.phase()).toBe('active');
    expect(h.core.isActive(h.now)).toBe(true);
    expect(h.core.currentEpoch).toBe(7);
    const st = h.core.status(h.now);
    expect(st.lockCzxid).toBe(TOKEN);
    expect(st.lastTransition).toMatchObject({ to: 'active', reason: expect.stringMatching(/^resumed after a restart/) });
    expect(out.filter((e) => e.kind === 'history')).toEqual([{ kind: 'history', event: { type: 'resumed-after-restart', epoch: 7, token: TOKEN, reason: expect.any(String) } }]);
    // Then as any active: the lock read again with a watch, renewals, no hook ever.
    expect(h.ops()).toEqual([{ type: 'readLock', watch: true }]);
    h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
    h.advanceTo(T0 + 5 * TIMEOUT);
    expect(h.phase()).toBe('active');
    expect(hooks(h)).toEqual([]);
  });

  it('a later demotion of a resumed active is recorded and runs to-standby as usual', () => {
    const h = restarted();
    provenLock(h);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    h.answer('adoptActive', ok());
    h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
    h.step({ kind: 'cede', forMs: 1000 });
    expect(h.ops()).toEqual([{ type: 'hook', hook: 'toStandby', epoch: 7, token: TOKEN, previous: null }]);
  });

  it('the order of the proof does not matter: the session may re-attach before the role answer', () => {
    const h = restarted();
    h.tick();
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.renew();
    h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
    expect(h.names()).toEqual(['queryRole']);
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    expect(h.names()).toEqual(['readLock']);
    h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    h.answer('adoptActive', ok());
    expect(h.phase()).toBe('active');
  });

  it('keepsSessionOnExit: an active (or one still proving) keeps its session; a standby does not', () => {
    const h = restarted();
    expect(h.core.keepsSessionOnExit()).toBe(true); // still deciding
    const plain = new Harness();
    plain.tick();
    plain.answer('queryRole', ok({ role: 'standby' }));
    expect(plain.core.keepsSessionOnExit()).toBe(false);
    provenLock(h);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    h.answer('adoptActive', ok());
    expect(h.core.keepsSessionOnExit()).toBe(true);
  });
});

describe('ControllerCore: a restart that cannot prove the role is its own starts as after a crash (C1-C3)', () => {
  it('the old session expired (a new one is made): the active service is demoted; the old lock is not trusted', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'expired' });
    expect(h.phase()).toBe('demoting');
    expect(h.ops()).toEqual([{ type: 'hook', hook: 'toStandby', epoch: null, token: null, previous: null }]);
    expect(h.core.status(h.now).lastTransition).toBeNull();
    finishDemotion(h);
    expect(h.phase()).toBe('standby');
    // The new session: a plain standby, racing once healthy with a lease.
    h.step({ kind: 'session', state: 'connected', sessionId: SID2, timeoutMs: TIMEOUT });
    h.renew();
    h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
    expect(h.names()).toEqual(['createLock']);
  });

  it('a new session id instead of the old one: the same', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'connected', sessionId: SID2, timeoutMs: TIMEOUT });
    expect(h.phase()).toBe('demoting');
    expect(h.names()).toEqual(['toStandby']);
  });

  it('the lock is held by another session (ours expired and someone else took it): demoted, nothing released', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.renew();
    h.answer('readLock', ok({ lock: { owner: OTHER, czxid: CZ + 1n } }));
    expect(h.phase()).toBe('demoting');
    expect(h.core.status(h.now).lockCzxid).toBeNull();
    expect(h.names()).toEqual(['toStandby']);
  });

  it('no lock at all: demoted', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.renew();
    h.answer('readLock', ok({ lock: null }));
    expect(h.names()).toEqual(['toStandby']);
  });

  const badCrumbs: [string, Breadcrumb | null, number | null][] = [
    ['no breadcrumb', null, 7],
    ['a breadcrumb naming another instance', { ...CRUMB, instance: 'b' }, 7],
    ['a breadcrumb with an older lock\'s token (the promotion under this lock stopped before it)', { ...CRUMB, token: '4294967000' }, 7],
    ['a service writing in an older epoch than the breadcrumb\'s', CRUMB, 6],
    ['a service whose role answer names no epoch (with a journal)', CRUMB, null],
  ];
  for (const [what, crumb, epoch] of badCrumbs) {
    it(`${what}: to-standby, then the lock (ours) released, never active`, () => {
      const h = restarted();
      provenLock(h, epoch);
      h.answer('readBreadcrumb', ok({ breadcrumb: { data: crumb, version: 4 } }));
      expect(h.phase()).toBe('demoting');
      expect(h.ops()).toEqual([{ type: 'hook', hook: 'toStandby', epoch: null, token: TOKEN, previous: null }]);
      h.answer('toStandby', ok());
      expect(h.names()).toEqual(['releaseLock']);
      h.answer('releaseLock', ok());
      // A plain standby now: a new race goes through the whole promotion (fencing, a new epoch).
      expect(h.core.status(h.now).lockCzxid).toBeNull();
      expect(h.names()).toEqual(['createLock']);
      expect(h.core.isActive(h.now)).toBe(false);
    });
  }

  it('a service writing in a later epoch than the breadcrumb\'s (it took its own writer epoch when promoted) is resumed', () => {
    const h = restarted();
    provenLock(h, 9);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    h.answer('adoptActive', ok());
    expect(h.phase()).toBe('active');
    expect(h.core.currentEpoch).toBe(7);
  });

  it('without a journal the service need not name an epoch', () => {
    const h = new Harness({ hasJournal: false, resume: { sessionId: SID, waitMs: TIMEOUT } });
    provenLock(h, null);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: { ...CRUMB, epoch: null }, version: 4 } }));
    h.answer('adoptActive', ok());
    expect(h.phase()).toBe('active');
  });

  it('C3: an unhealthy service is not resumed: demoted, its lock released', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.renew();
    h.answer('readLock', ok({ lock: { owner: SID, czxid: CZ } }));
    h.step({ kind: 'health', state: 'unhealthy', reason: 'ECONNREFUSED' });
    expect(h.phase()).toBe('demoting');
    expect(h.names()).toEqual(['toStandby']);
  });

  it('C2: no lease (renewals unanswered): the lock is never read; at the wait\'s end the service is demoted', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
    h.advanceTo(T0 + TIMEOUT - 1, false);
    expect(h.names()).toEqual([]);
    expect(h.phase()).toBe('starting');
    h.advanceTo(T0 + TIMEOUT, false);
    expect(h.phase()).toBe('demoting');
    expect(h.names()).toEqual(['toStandby']);
  });

  it('C2: the lease lapsing before adoption stops it (checked before the step and after it)', () => {
    const h = restarted();
    provenLock(h);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    expect(h.names()).toEqual(['adoptActive']);
    h.at(h.now + LEASE + 1);
    h.tick();
    h.answer('adoptActive', ok());
    expect(h.phase()).toBe('demoting');
    expect(h.core.isActive(h.now)).toBe(false);
  });

  it('the old session expiring mid-proof: the step in flight answers first (never two steps at once), then demotion', () => {
    const h = restarted();
    provenLock(h);
    expect(h.names()).toEqual(['readBreadcrumb']);
    h.step({ kind: 'session', state: 'expired' });
    expect(h.names()).toEqual([]);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    expect(h.phase()).toBe('demoting');
    expect(h.names()).toEqual(['toStandby']);
  });

  it('a service that reports standby: no hook; the lock the re-attached session still holds is released before any race', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'standby', serviceEpoch: null }));
    expect(h.phase()).toBe('starting'); // until the old session's fate is known
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    expect(h.phase()).toBe('standby');
    h.renew();
    h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
    expect(h.names()).toEqual(['releaseLock']);
    expect(h.core.keepsSessionOnExit()).toBe(false);
    h.answer('releaseLock', ok());
    expect(h.names()).toEqual(['createLock']);
    expect(hooks(h)).toEqual([]);
  });

  it('the quorum unreachable for the whole wait: demoted as today; if the old session re-attaches later, its lock is released, not used', () => {
    const h = restarted();
    h.tick();
    h.answer('queryRole', ok({ role: 'active', serviceEpoch: 7 }));
    h.step({ kind: 'health', state: 'healthy', reason: 'HTTP 200' });
    h.advanceTo(T0 + TIMEOUT, false);
    expect(h.names()).toEqual(['toStandby']);
    h.answer('toStandby', ok());
    h.answer('releaseLock', fail('not connected to the quorum'));
    h.tick();
    expect(h.phase()).toBe('standby');
    h.step({ kind: 'session', state: 'connected', sessionId: SID, timeoutMs: TIMEOUT });
    h.renew();
    expect(h.names()).toEqual(['releaseLock']);
    h.answer('releaseLock', ok());
    expect(h.names()).toEqual(['createLock']);
    expect(h.phase()).toBe('contending');
  });

  it('a failed adoption (a resource would not start) demotes', () => {
    const h = restarted();
    provenLock(h);
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: CRUMB, version: 4 } }));
    h.answer('adoptActive', fail('resource vip: start failed'));
    expect(h.phase()).toBe('demoting');
    expect(h.names()).toEqual(['toStandby']);
  });

  it('a session id of 0 is refused at construction', () => {
    expect(() => new Harness({ resume: { sessionId: 0n, waitMs: TIMEOUT } })).toThrow(/session id 0/);
  });
});
