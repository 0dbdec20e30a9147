// A controller's V8 settings are set from inside it, unless it was started with its own.
import v8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyV8Flags } from '../../../src/io/v8-flags.js';

describe('applyV8Flags', () => {
  afterEach(() => { vi.restoreAllMocks(); });

  it('sets each flag the process was not started with, in order', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    expect(applyV8Flags(['--no-turbofan', '--optimize-for-size'], ['--max-semi-space-size=1', '--enable-source-maps'])).toEqual(['--no-turbofan', '--optimize-for-size']);
    expect(set.mock.calls).toEqual([['--no-turbofan'], ['--optimize-for-size']]);
  });

  it('keeps the value the process was started with, under any spelling of the setting', () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    expect(applyV8Flags(['--no-turbofan'], ['--turbofan'])).toEqual([]);
    expect(applyV8Flags(['--no-turbofan'], ['--opt'])).toEqual([]); // V8's old name
    expect(applyV8Flags(['--no-maglev', '--optimize-for-size'], ['--maglev=true'])).toEqual(['--optimize-for-size']);
    expect(applyV8Flags(['--optimize-for-size'], ['--no-optimize_for_size'])).toEqual([]);
    expect(set.mock.calls).toEqual([['--optimize-for-size']]);
  });
});
