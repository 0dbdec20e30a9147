// The controller tests' C4 check (test/helpers/ha-cluster.ts) on hand-made
// journal histories: it must fail on nothing, pass on a good history, and
// report each kind of history that breaks it, or the integration tests that
// lean on it could pass on anything.
import { describe, expect, it } from 'vitest';
import { checkC4 } from '../helpers/ha-cluster.js';

type Edit = { txid: bigint; instance: string; epoch: number; seq: number };

/** One edit per [instance, epoch, seq], txids 1, 2, ... in the order given. */
const history = (...edits: [string, number, number][]): Edit[] =>
  edits.map(([instance, epoch, seq], k) => ({ txid: BigInt(k + 1), instance, epoch, seq }));

/** A writer's edits seq from..to in one epoch. */
const run = (instance: string, epoch: number, from: number, to: number): [string, number, number][] =>
  Array.from({ length: to - from + 1 }, (_, k) => [instance, epoch, from + k]);

describe('checkC4', () => {
  it('reports an empty history: C4 cannot be checked on nothing', () => {
    const problems = checkC4([]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/no edits/);
  });

  it('passes a good history: one writer per epoch, epochs going up, each writer\'s edits in sequence', () => {
    expect(checkC4(history(...run('a', 1, 0, 5)))).toEqual([]);
    // a, then b after a failover, then a again: each promotion a new epoch, its seq from 0.
    expect(checkC4(history(...run('a', 1, 0, 5), ...run('b', 2, 0, 3), ...run('a', 4, 0, 2)))).toEqual([]);
    // The first epoch read may start past seq 0 (older segments purged).
    expect(checkC4(history(...run('a', 3, 17, 20), ...run('b', 5, 0, 1)))).toEqual([]);
  });

  it('reports a lost acknowledged write: a gap in one writer\'s sequence with later edits of it in the journal', () => {
    // a's seq 3 was acknowledged before 4 and 5 were (its writer assigns txids in seq order and is fenced
    // for good at its first failed append), yet the journal holds 0-2 and 4-5.
    const problems = checkC4(history(...run('a', 1, 0, 2), ...run('a', 1, 4, 5), ...run('b', 2, 0, 1)));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/epoch 1: a's edit seq 4 \(txid 4\) follows seq 2 \(txid 3\): seq 3 lost/);
    expect(checkC4(history(['a', 1, 0], ['a', 1, 4]))[0]).toMatch(/seq 1\.\.3 lost/);
  });

  it('reports a repeated or reordered edit of one writer', () => {
    expect(checkC4(history(['a', 1, 0], ['a', 1, 1], ['a', 1, 1]))).toEqual([expect.stringMatching(/seq 1 \(txid 3\) after seq 1 \(txid 2\): repeated or out of order/)]);
    expect(checkC4(history(['a', 1, 0], ['a', 1, 2], ['a', 1, 1]))).toHaveLength(2);
  });

  it('reports two writers in one epoch, and an older epoch written after a newer one', () => {
    expect(checkC4(history(['a', 1, 0], ['b', 1, 0]))).toEqual(['epoch 1 has writes from a and b']);
    const back = checkC4(history(...run('a', 1, 0, 1), ...run('b', 2, 0, 1), ['a', 1, 2]));
    expect(back).toEqual(['txid 5: a wrote in epoch 1 after epoch 2 had writes']);
  });
});
