// The core's settings from the configuration (controllerSettings): the one
// mapping production's Controller and the simulator both use.
import { describe, expect, it } from 'vitest';
import type { InstanceConfig } from '../../../src/config/controller-config.js';
import { controllerSettings, type SettingsConfig } from '../../../src/controller/controller-ops.js';

const hook = { kind: 'http' as const, url: 'http://x/', timeoutMs: 1000 };
const instance: InstanceConfig = {
  id: 'a', host: 'db1', adminPort: 7100, servicePort: 5432, priority: 0, noFailover: true, health: [], resources: [], fencing: [],
  hooks: { toActive: hook, toStandby: hook, role: null, preActive: hook },
};
const cfg: SettingsConfig = {
  instance, journalNodes: null, raceDelayMs: 500, promotionsPerWindow: 20, promotionWindowMs: 600_000, maxLagOnFailover: 10, failsafe: false, sessionTimeoutMs: 6000,
};

describe('controllerSettings', () => {
  it('maps the configuration, with no session to resume', () => {
    expect(controllerSettings(cfg, null)).toEqual({
      instance: 'a', address: 'db1:7100', hasJournal: false, hasPreActiveHook: true, raceDelayMs: 500, noFailover: true,
      retryBackoffMs: 1000, retryBackoffMaxMs: 30_000, promotionsPerWindow: 20, promotionWindowMs: 600_000, maxLagOnFailover: 10, failsafe: false, resume: null,
    });
  });

  it('resumes the saved session for at most the session timeout; a journal and another backoff', () => {
    const s = controllerSettings({ ...cfg, journalNodes: [], instance: { ...instance, hooks: null } }, { id: 0x42n }, { retryBackoffMs: 200, retryBackoffMaxMs: 2000 });
    expect(s).toMatchObject({ hasJournal: true, hasPreActiveHook: false, retryBackoffMs: 200, retryBackoffMaxMs: 2000, resume: { sessionId: 0x42n, waitMs: 6000 } });
  });
});
