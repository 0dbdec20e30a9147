// How check outcomes become the service's health (TRAPS: a refused
// connection or an exited process is unhealthy at once; only timeouts need
// several in a row; every check must pass).
import { describe, expect, it } from 'vitest';
import { HealthAggregator, HealthFolder } from '../../../src/core/controller/health.js';

describe('HealthAggregator', () => {
  it('is initializing until every check has answered, then healthy when all pass', () => {
    const h = new HealthAggregator([3, 3]);
    expect(h.state().state).toBe('initializing');
    h.record(0, { kind: 'ok' });
    expect(h.state().state).toBe('initializing');
    h.record(1, { kind: 'ok' });
    expect(h.state()).toEqual({ state: 'healthy', reason: 'every check passes' });
  });

  it('a failure (refused, exited, wrong answer) is unhealthy at once, naming the check', () => {
    const h = new HealthAggregator([3, 3]);
    h.record(0, { kind: 'ok' });
    h.record(1, { kind: 'failed', reason: 'connect to 127.0.0.1:7001: ECONNREFUSED' });
    expect(h.state()).toEqual({ state: 'unhealthy', reason: 'check 2: connect to 127.0.0.1:7001: ECONNREFUSED' });
    h.record(1, { kind: 'ok' });
    expect(h.state().state).toBe('healthy');
  });

  it('timeouts count only `failures` in a row: then not-responding; one answer resets the count', () => {
    const h = new HealthAggregator([3]);
    h.record(0, { kind: 'ok' });
    h.record(0, { kind: 'timeout', reason: 'no answer within 1000 ms' });
    h.record(0, { kind: 'timeout', reason: 'no answer within 1000 ms' });
    expect(h.state().state).toBe('healthy');
    h.record(0, { kind: 'timeout', reason: 'no answer within 1000 ms' });
    expect(h.state()).toEqual({ state: 'not-responding', reason: 'check 1: 3 timeouts in a row (no answer within 1000 ms)' });
    h.record(0, { kind: 'ok' });
    expect(h.state().state).toBe('healthy');
    h.record(0, { kind: 'timeout', reason: 't' });
    h.record(0, { kind: 'timeout', reason: 't' });
    expect(h.state().state).toBe('healthy');
  });

  it('an outright failure outranks a check that is timing out', () => {
    const h = new HealthAggregator([1, 1]);
    h.record(0, { kind: 'timeout', reason: 'slow' });
    h.record(1, { kind: 'failed', reason: 'exit 1' });
    expect(h.state().state).toBe('unhealthy');
    h.record(1, { kind: 'ok' });
    expect(h.state().state).toBe('not-responding');
  });
});

describe('HealthFolder (the health monitor\'s fold, and the simulator\'s)', () => {
  it('reports a change when the state or only its reason changes, and nothing when neither does', () => {
    const f = new HealthFolder([2]);
    expect(f.current).toEqual({ state: 'initializing', reason: 'not started' });
    expect(f.fold(0, { kind: 'ok' })).toEqual({ state: 'healthy', reason: 'every check passes' });
    expect(f.fold(0, { kind: 'ok' })).toBeNull();
    expect(f.fold(0, { kind: 'failed', reason: 'ECONNREFUSED' })).toEqual({ state: 'unhealthy', reason: 'check 1: ECONNREFUSED' });
    expect(f.fold(0, { kind: 'failed', reason: 'ECONNREFUSED' })).toBeNull();
    // Same state, another reason: reported.
    expect(f.fold(0, { kind: 'failed', reason: 'exit 1' })).toEqual({ state: 'unhealthy', reason: 'check 1: exit 1' });
    expect(f.fold(0, { kind: 'timeout', reason: 't' })).toEqual({ state: 'healthy', reason: 'every check passes' });
    expect(f.fold(0, { kind: 'timeout', reason: 't' })).toEqual({ state: 'not-responding', reason: 'check 1: 2 timeouts in a row (t)' });
    expect(f.fold(0, { kind: 'timeout', reason: 't' })).toEqual({ state: 'not-responding', reason: 'check 1: 3 timeouts in a row (t)' });
    expect(f.current).toEqual({ state: 'not-responding', reason: 'check 1: 3 timeouts in a row (t)' });
  });
});
