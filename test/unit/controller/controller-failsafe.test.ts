// Failsafe: the quorum stops answering, and an active whose service writes to
// a journal stays active while each check shows the service active in epoch
// E and no journal majority promised past E; it is demoted once a check shows
// a newer writer, once the checks stop backing it for a third of the session,
// or once its session expires. Without failsafe nothing changes (the lease
// rule of controller-core.test.ts).
import { describe, expect, it } from 'vitest';
import { Harness, LEASE, T0, TIMEOUT, active, fail, finishDemotion, ok, standby } from './core-harness.js';

/** Checks start once the quorum's answers are a third of the session late; one every sixth of it. */
const LATE = TIMEOUT / 3;
const EVERY = TIMEOUT / 6;

const backs = (epoch = 8) => ok({ role: 'active', serviceEpoch: epoch, journalEpoch: epoch });

/** Active with failsafe on, then cut off from the quorum at T0 (no renewal is answered from here). */
function cutOff(): Harness {
  const h = active({ failsafe: true });
  h.at(T0 + 1).step({ kind: 'session', state: 'disconnected' });
  h.effects();
  return h;
}

/** Moves to `t` in ticks, answering each failsafe check with `answer` (renewals are not answered). */
function checkUntil(h: Harness, t: number, answer: () => ReturnType<typeof ok> = () => backs()): number {
  let checks = 0;
  while (h.now < t) {
    h.at(Math.min(t, h.now + 100)).tick();
    for (const id of h.openIds('failsafeCheck')) { h.answerId(id, answer(), false); checks++; }
  }
  return checks;
}

describe('ControllerCore: failsafe', () => {
  it('off by default: no journal checks, the lease rule demotes', () => {
    const h = active();
    h.at(T0 + 1).step({ kind: 'session', state: 'disconnected' });
    h.advanceTo(T0 + LEASE + 250, false);
    expect(h.openIds('failsafeCheck')).toEqual([]);
    expect(h.phase()).toBe('demoting');
  });

  it('no checks while the quorum answers', () => {
    const h = active({ failsafe: true });
    h.advanceTo(T0 + 5 * TIMEOUT);
    expect(h.openIds('failsafeCheck')).toEqual([]);
    expect(h.core.status(h.now).failsafe).toBeNull();
  });

  it('renewals unanswered while connected: checks begin once they are a third of the session late', () => {
    const h = active({ failsafe: true });
    h.advanceTo(T0 + LATE - 1, false);
    expect(h.openIds('failsafeCheck')).toEqual([]);
    h.advanceTo(T0 + LATE + 250, false);
    expect(h.openIds('failsafeCheck')).toHaveLength(1);
  });

  it('cut off from the quorum (disconnected), checks begin at once and keep it active for many sessions', () => {
    const h = cutOff();
    h.tick();
    expect(h.openIds('failsafeCheck')).toHaveLength(1);
    const checks = checkUntil(h, T0 + 5 * TIMEOUT);
    // About one check per sixth of the session.
    expect(checks).toBeGreaterThanOrEqual(Math.floor((5 * TIMEOUT - LATE) / EVERY) - 1);
    expect(h.phase()).toBe('active');
    expect(h.core.isActive(h.now)).toBe(true);
    const st = h.core.status(h.now);
    expect(st.leaseValidUntil).toBeNull();
    expect(st.failsafe?.since).toBeGreaterThanOrEqual(T0 + LEASE);
    expect(st.failsafe?.validUntil).toBeGreaterThan(h.now);
    expect(h.effects().filter((e) => e.kind === 'log' && /failsafe/.test(e.msg))).toBeDefined();
  });

  it('a check showing a newer journal epoch than the service\'s (another writer took over) demotes at once', () => {
    const h = cutOff();
    checkUntil(h, T0 + LEASE + 500);
    expect(h.phase()).toBe('active');
    h.at(h.now + EVERY).tick();
    h.answer('failsafeCheck', ok({ role: 'active', serviceEpoch: 8, journalEpoch: 10 }));
    expect(h.phase()).toBe('demoting');
    expect(h.core.isActive(h.now)).toBe(false);
    finishDemotion(h);
    expect(h.core.status(h.now).lastFailure).toMatch(/no journal check backs/);
  });

  it('the service reporting standby, or no epoch, does not back it', () => {
    for (const answer of [ok({ role: 'standby', serviceEpoch: 8, journalEpoch: 8 }), ok({ role: 'active', serviceEpoch: null, journalEpoch: 8 })]) {
      const h = cutOff();
      checkUntil(h, T0 + LEASE - 100);
      h.at(h.now + EVERY).tick();
      h.answer('failsafeCheck', answer);
      h.tick();
      expect(h.phase()).toBe('demoting');
    }
  });

  it('checks that fail (no journal majority) stop backing it a third of the session after the last good one was sent', () => {
    const h = cutOff();
    checkUntil(h, T0 + LEASE + 1000);
    const goodUntil = h.core.status(h.now).failsafe!.validUntil!;
    checkUntil(h, goodUntil - 1, () => fail('only 1 of 3 nodes answered'));
    expect(h.phase()).toBe('active');
    checkUntil(h, goodUntil + 100, () => fail('only 1 of 3 nodes answered'));
    expect(h.phase()).toBe('demoting');
  });

  it('a backing answer sent before a refuting one does not revive it', () => {
    const h = cutOff();
    checkUntil(h, T0 + LEASE - 200);
    // Two checks in flight: the first sent earlier (a check left hanging past a third of the session).
    h.at(h.now + EVERY).tick();
    const [first] = h.openIds('failsafeCheck');
    h.at(h.now + LATE + 1).tick();
    const second = h.openIds('failsafeCheck').find((id) => id !== first)!;
    expect(second).toBeDefined();
    h.answerId(second, ok({ role: 'active', serviceEpoch: 8, journalEpoch: 9 }));
    h.answerId(first, backs());
    h.tick();
    expect(h.phase()).toBe('demoting');
  });

  it('the session\'s expiry demotes even while the journal backs it (the lock is gone)', () => {
    const h = cutOff();
    checkUntil(h, T0 + LEASE + 1000);
    h.step({ kind: 'session', state: 'expired' });
    expect(h.phase()).toBe('demoting');
  });

  it('the quorum answering again ends failsafe: no more checks', () => {
    const h = cutOff();
    checkUntil(h, T0 + LEASE + 1000);
    expect(h.core.status(h.now).failsafe).not.toBeNull();
    h.step({ kind: 'session', state: 'connected', sessionId: 0x1234_5678_9abc_def0n, timeoutMs: TIMEOUT });
    h.renew();
    h.tick();
    for (const id of h.openIds('failsafeCheck')) h.answerId(id, backs(), false);
    const logs = h.effects().filter((e) => e.kind === 'log').map((e) => (e.kind === 'log' ? e.msg : ''));
    expect(logs.some((m) => /failsafe ends/.test(m))).toBe(true);
    expect(h.core.status(h.now).failsafe).toBeNull();
    h.advanceTo(h.now + 3 * TIMEOUT);
    expect(h.openIds('failsafeCheck')).toEqual([]);
    expect(h.phase()).toBe('active');
  });

  it('a standby never races on the journal alone: promotion needs the quorum', () => {
    const h = new Harness({ failsafe: true });
    standby(h);
    h.answer('createLock', fail('connection loss'));
    h.step({ kind: 'session', state: 'disconnected' });
    h.answer('readLock', fail('connection loss'));
    h.advanceTo(h.now + 3 * TIMEOUT, false);
    expect(h.phase()).toBe('standby');
    expect(h.openIds('failsafeCheck')).toEqual([]);
    expect(h.openIds('createLock')).toEqual([]);
  });
});
