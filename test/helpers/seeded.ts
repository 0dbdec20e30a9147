// Randomness in a test comes from a seed that the test prints when it fails,
// so a failure can be replayed: <NAME>=<seed> npx vitest run <file>.
import { afterEach } from 'vitest';
import { Rng } from '../../src/sim/rng.js';

/** A seeded Rng for this test file, from the environment variable `envName` or a fresh seed; a failed test prints how to replay it. */
export function seededRng(envName: string): { seed: number; rng: Rng } {
  const given = process.env[envName];
  const seed = given !== undefined && given !== '' ? Number(given) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isSafeInteger(seed)) throw new Error(`${envName}=${given}: not an integer seed`);
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') process.stderr.write(`${ctx.task.name}: replay with ${envName}=${seed}\n`);
  });
  return { seed, rng: new Rng(seed) };
}
