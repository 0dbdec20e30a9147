// What the controller's core reports for the failover history: a promotion
// (with the time from racing to active), the fencing it did, a failed
// promotion, a demotion and why, cede, manual failover target, pause and
// resume — each once, with the epoch and fencing token it concerned.
import { describe, expect, it } from 'vitest';
import { Harness, OTHER_CRUMB, SID, CZ, TOKEN, active, contend, fail, ok, type ControllerEffect } from './core-harness.js';

const events = (effects: ControllerEffect[]) => effects.flatMap((e) => (e.kind === 'history' ? [e.event] : []));

describe('ControllerCore history events', () => {
  it('a promotion: fenced, then promoted with its epoch, token, previous and duration', () => {
    const h = new Harness();
    contend(h);
    const seen: ControllerEffect[] = [];
    h.at(h.now + 40);
    seen.push(...h.answer('createLock', ok({ lock: { owner: SID, czxid: CZ } })));
    seen.push(...h.answer('readBreadcrumb', ok({ breadcrumb: { data: OTHER_CRUMB, version: 3 } })));
    h.at(h.now + 100);
    seen.push(...h.answer('fence', ok({ detail: 'graceful: its controller confirmed standby' })));
    seen.push(...h.answer('newEpoch', ok({ epoch: 7 })));
    seen.push(...h.answer('writeBreadcrumb', ok()));
    h.at(h.now + 60);
    seen.push(...h.answer('toActive', ok()));
    expect(events(seen)).toEqual([
      { type: 'fenced', target: 'b', detail: 'graceful: its controller confirmed standby', token: TOKEN },
      { type: 'promoted', epoch: 7, token: TOKEN, previous: 'b', reason: 'promoted (epoch 7, token 4294967301)', durationMs: 200 },
    ]);
  });

  it('a fence that fails: fence-failed, then promotion-failed; no demotion entry (it never was active)', () => {
    const h = new Harness();
    contend(h);
    h.answer('createLock', ok({ lock: { owner: SID, czxid: CZ } }));
    h.answer('readBreadcrumb', ok({ breadcrumb: { data: OTHER_CRUMB, version: 3 } }));
    const seen = [...h.answer('fence', fail('every fencing method failed: ssh: timed out'))];
    seen.push(...h.answer('toStandby', ok()));
    seen.push(...h.answer('releaseLock', ok()));
    expect(h.phase()).toBe('standby');
    expect(events(seen)).toEqual([
      { type: 'fence-failed', target: 'b', reason: 'every fencing method failed: ssh: timed out', token: TOKEN },
      { type: 'promotion-failed', epoch: null, token: TOKEN, reason: 'fencing b: every fencing method failed: ssh: timed out' },
    ]);
  });

  it('a demotion after a failed health check says why, in the epoch it was active in', () => {
    const h = active();
    const seen = [...h.step({ kind: 'health', state: 'unhealthy', reason: 'check 1: ECONNREFUSED' })];
    seen.push(...h.answer('releaseLock', ok()));
    seen.push(...h.answer('toStandby', ok()));
    expect(h.phase()).toBe('standby');
    expect(events(seen)).toEqual([{ type: 'demoted', epoch: 7, token: TOKEN, reason: expect.stringMatching(/unhealthy.*ECONNREFUSED/), standbyConfirmed: true }]);
  });

  it('cede, a manual failover target, pause and resume are each recorded once', () => {
    const h = active();
    expect(events(h.step({ kind: 'cede', forMs: 5000 }))).toEqual([{ type: 'ceded', forMs: 5000, reason: 'asked to cede (manual failover or the next active fencing gracefully)' }]);
    expect(events(h.step({ kind: 'pause' }))).toEqual([{ type: 'paused' }]);
    expect(events(h.step({ kind: 'pause' }))).toEqual([]); // already paused: nothing new happened
    expect(events(h.step({ kind: 'resume' }))).toEqual([{ type: 'resumed' }]);
    expect(events(h.step({ kind: 'resume' }))).toEqual([]);
    expect(events(h.step({ kind: 'failoverTarget', forMs: 3000, force: true }))).toEqual([{ type: 'failover-target', forced: true }]);
  });
});
