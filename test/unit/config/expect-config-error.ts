import { expect } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';

/** Run fn, which must throw a ConfigError, and return it for assertions. */
export function failure(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
