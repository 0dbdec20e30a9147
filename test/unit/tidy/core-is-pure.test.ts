// src/core holds pure state machines: no I/O, no clock, no randomness. The
// simulator and the replayable tests depend on it, so a slip fails here.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CORE = path.resolve(__dirname, '../../../src/core');

const FORBIDDEN: [RegExp, string][] = [
  [/from\s+['"]node:/, 'imports a node: module'],
  [/from\s+['"](fs|net|http|https|dgram|child_process|timers|crypto|os|worker_threads|perf_hooks)(\/[a-z]+)?['"]/, 'imports a Node built-in'],
  [/require\(/, 'calls require'],
  [/\bimport\(/, 'imports dynamically'],
  [/Date\.now\s*\(/, 'reads the clock (Date.now)'],
  [/new\s+Date\b/, 'reads the clock (new Date)'],
  [/\bperformance\b/, 'reads the clock (performance)'],
  [/process\.hrtime/, 'reads the clock (process.hrtime)'],
  [/Math\.random\s*\(/, 'uses randomness (Math.random)'],
  [/\bcrypto\b/, 'uses crypto'],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(/, 'sets a timer'],
  [/\bprocess\./, 'touches the process'],
];

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Remove comments and string contents so that prose about Date.now does not trip the check. */
function codeOnly(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:])\/\/.*$/gm, '$1');
}

describe('src/core is pure', () => {
  const files = tsFiles(CORE);

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(3);
  });

  for (const file of files) {
    it(`${path.relative(CORE, file)} does no I/O and reads no clock or randomness`, () => {
      const code = codeOnly(fs.readFileSync(file, 'utf8'));
      const problems = FORBIDDEN.filter(([re]) => re.test(code)).map(([, why]) => why);
      expect(problems).toEqual([]);
    });
  }

  it('the check itself catches a clock read', () => {
    const bad = codeOnly('const t = Date.now(); // fine\nimport x from "node:fs";');
    expect(FORBIDDEN.filter(([re]) => re.test(bad)).length).toBeGreaterThanOrEqual(2);
  });
});
