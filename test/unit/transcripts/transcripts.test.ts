// Transcript tests (issue 14), in the style of etcd-io/raft's testdata/*.txt:
// each file under controller/ and zab/ is a script of inputs to one pure core
// with every effect each input caused printed after it (see datadriven.ts for
// the format, controller-driver.ts and zab-driver.ts for the commands). The
// test re-runs the script and fails, with the diff, on any difference: an
// effect added, lost, reordered or changed.
//
//   REWRITE=1 npx vitest run test/unit/transcripts
//
// rewrites the expected outputs from what the cores do now. A rewrite is not a
// fix: read every changed line of `git diff` against the rules the script
// checks (C1-C4 in controller-core.ts, ZAB in leader-role.ts and
// learner-role.ts) before committing it. A transcript that records a bug as
// expected output is worse than none.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ControllerDriver } from './controller-driver.js';
import { rewrite, type Driver } from './datadriven.js';
import { ZabDriver } from './zab-driver.js';

const here = dirname(fileURLToPath(import.meta.url));
const suites: [string, () => Driver][] = [
  ['controller', () => new ControllerDriver()],
  ['zab', () => new ZabDriver()],
];

for (const [dir, make] of suites) {
  describe(`transcripts: ${dir}`, () => {
    const files = readdirSync(join(here, dir)).filter((f) => f.endsWith('.txt')).sort();
    it('has scripts', () => { expect(files.length).toBeGreaterThan(0); });
    for (const f of files) {
      it(f, () => {
        const path = join(here, dir, f);
        const before = readFileSync(path, 'utf8');
        const after = rewrite(before, `${dir}/${f}`, make());
        if (process.env.REWRITE === '1') { if (after !== before) writeFileSync(path, after); return; }
        expect(after, `${dir}/${f} differs from what the core does now (REWRITE=1 rewrites it: read the diff first)`).toBe(before);
      });
    }
  });
}
