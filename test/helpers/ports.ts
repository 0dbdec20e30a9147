export { freePort, waitForPort } from '../../src/io/ports.js';

/**
 * Skip a suite whose tool is missing on a developer's machine, but never in
 * CI: there the install step must have provided it, and a skip would hide a
 * broken install.
 */
export function missingTool(available: boolean): boolean {
  return !available && !process.env.CI;
}
