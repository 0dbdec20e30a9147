import { freePortBlock } from '../../src/io/ports.js';

export { freePort, waitForPort } from '../../src/io/ports.js';

/** A base port whose `count` ports are all free: below freePort's range (20000-32000) and the kernel's ephemeral ports. */
export async function freePortBlockForTest(count: number): Promise<number> {
  const base = await freePortBlock(count, 10_000, 18_000, 50);
  if (base === null) throw new Error(`no free block of ${count} ports`);
  return base;
}

/**
 * Skip a suite whose tool is missing on a developer's machine, but never in
 * CI: there the install step must have provided it, and a skip would hide a
 * broken install.
 */
export function missingTool(available: boolean): boolean {
  return !available && !process.env.CI;
}
