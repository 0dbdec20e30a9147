// `npm run mutants`: plants each deliberate bug of list.ts in a scratch copy of
// the tree (never the working tree), runs the unit tests named for it and a
// bounded simulator run, and prints which were caught and by what. Exit 1 if
// any mutant survives or its `find` text no longer occurs exactly once (the
// list must not rot silently), 2 on bad arguments.
//
//   npm run mutants                 every mutant
//   npm run mutants -- --list       the list, with why each bug matters
//   npm run mutants -- --only ID    one (repeatable, or comma-separated)
//   npm run mutants -- --json       the table as JSON
//
// The scratch copy: src/, test/, package.json, tsconfig.json and
// vitest.config.ts copied, node_modules linked, and dist/src copied from this
// tree's build (`npm run mutants` builds first). For each mutant the mutated
// source is written there and transpiled alone into the copied dist (the
// simulator runs dist; vitest reads src), then both are restored.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { MUTANTS, type Mutant } from './list.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const STEP_TIMEOUT_MS = 240_000;

interface Outcome { id: string; file: string; status: 'caught' | 'SURVIVED' | 'ROTTED'; by: string[]; seconds: number }

function usage(msg: string): never {
  process.stderr.write(`mutants: ${msg}\nusage: npm run mutants -- [--list] [--only ID[,ID...]] [--json] [--keep]\n`);
  process.exit(2);
}

function occurrences(text: string, find: string): number {
  let n = 0;
  for (let i = text.indexOf(find); i >= 0; i = text.indexOf(find, i + 1)) n++;
  return n;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const keep = (b: Buffer) => { out += b.toString(); if (out.length > 4_000_000) out = out.slice(-2_000_000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, timedOut }); });
  });
}

function copyInto(scratch: string, rel: string): void {
  fs.cpSync(path.join(ROOT, rel), path.join(scratch, rel), { recursive: true });
}

function makeScratch(): string {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'quorate-mutants-'));
  for (const rel of ['src', 'test', 'package.json', 'tsconfig.json', 'vitest.config.ts']) copyInto(scratch, rel);
  fs.mkdirSync(path.join(scratch, 'dist'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist/src'), path.join(scratch, 'dist/src'), { recursive: true });
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(scratch, 'node_modules'));
  return scratch;
}

function transpile(source: string, file: string): string {
  const r = ts.transpileModule(source, {
    fileName: file,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, sourceMap: false },
  });
  if (r.diagnostics !== undefined && r.diagnostics.length > 0) {
    throw new Error(`${file}: ${r.diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')}`);
  }
  return r.outputText;
}

/** The first failing test's name in vitest's JSON report. */
function firstFailure(reportPath: string): string | null {
  try {
    const r = JSON.parse(fs.readFileSync(reportPath, 'utf8')) as { testResults: { name: string; assertionResults: { status: string; fullName: string }[]; message?: string; status: string }[] };
    for (const f of r.testResults) {
      const t = f.assertionResults.find((a) => a.status === 'failed');
      if (t !== undefined) return `${path.relative(process.cwd(), f.name).replace(/^.*?test\//, 'test/')}: ${t.fullName}`;
      if (f.status === 'failed') return `${f.name.replace(/^.*?test\//, 'test/')}: ${f.message?.split('\n')[0] ?? 'failed to run'}`;
    }
  } catch { /* no report */ }
  return null;
}

async function runMutant(scratch: string, m: Mutant, log: (s: string) => void): Promise<Outcome> {
  const t0 = performance.now();
  const done = (status: Outcome['status'], by: string[]): Outcome => ({ id: m.id, file: m.file, status, by, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)) });
  const srcPath = path.join(scratch, m.file);
  const distPath = path.join(scratch, 'dist', m.file.replace(/\.ts$/, '.js'));
  const original = fs.readFileSync(srcPath, 'utf8');
  const n = occurrences(original, m.find);
  if (n !== 1) return done('ROTTED', [`find text occurs ${n} times in ${m.file}`]);
  const mutated = original.replace(m.find, () => m.replace);
  const originalJs = fs.readFileSync(distPath, 'utf8');
  const by: string[] = [];
  try {
    fs.writeFileSync(srcPath, mutated);
    fs.writeFileSync(distPath, transpile(mutated, m.file));
    if (m.tests.length > 0) {
      const report = path.join(scratch, `vitest-${m.id}.json`);
      const r = await run(process.execPath, [path.join(scratch, 'node_modules/vitest/vitest.mjs'), 'run', ...m.tests, '--bail', '1', '--reporter=json', `--outputFile=${report}`], scratch, STEP_TIMEOUT_MS);
      if (r.timedOut) by.push(`unit tests: timed out after ${STEP_TIMEOUT_MS / 1000} s`);
      else if (r.code !== 0) by.push(`unit: ${firstFailure(report) ?? `exit ${r.code}`}`);
      log(`  ${m.id}: unit tests ${r.code === 0 ? 'passed' : 'failed'}`);
    }
    for (const args of m.sim) {
      const r = await run(process.execPath, ['dist/src/sim/main.js', ...args, '--json'], scratch, STEP_TIMEOUT_MS);
      if (r.timedOut) { by.push(`sim ${args.join(' ')}: timed out after ${STEP_TIMEOUT_MS / 1000} s`); continue; }
      if (r.code === 0) { log(`  ${m.id}: sim ${args.join(' ')} passed`); continue; }
      let what = `exit ${r.code}`;
      try {
        const j = JSON.parse(r.out.slice(r.out.indexOf('{\n  "runs"'))) as { failedSeeds: { seed: number; violations: string[] }[] };
        const f = j.failedSeeds[0];
        if (f !== undefined) what = `${j.failedSeeds.length} seed(s) failed, first ${f.seed}: ${f.violations[0].split('\n')[0].slice(0, 160)}`;
      } catch { what += `: ${r.out.split('\n').find((l) => l.includes('FAILED') || l.includes('Error')) ?? ''}`.slice(0, 200); }
      by.push(`sim ${args.join(' ')}: ${what}`);
      log(`  ${m.id}: sim ${args.join(' ')} failed`);
    }
  } finally {
    fs.writeFileSync(srcPath, original);
    fs.writeFileSync(distPath, originalJs);
  }
  return done(by.length > 0 ? 'caught' : 'SURVIVED', by);
}

async function main(argv: string[]): Promise<number> {
  const only = new Set<string>();
  let list = false;
  let json = false;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--list') list = true;
    else if (a === '--json') json = true;
    else if (a === '--keep') keep = true;
    else if (a === '--only') { const v = argv[++i]; if (v === undefined) usage('--only needs an id'); for (const id of v.split(',')) only.add(id); }
    else if (a === '-h' || a === '--help') { process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n'); return 0; }
    else usage(`unknown argument "${a}"`);
  }
  const ids = new Set(MUTANTS.map((m) => m.id));
  if (ids.size !== MUTANTS.length) usage('two mutants share an id');
  for (const id of only) if (!ids.has(id)) usage(`no mutant "${id}" (see --list)`);
  const chosen = MUTANTS.filter((m) => only.size === 0 || only.has(m.id));
  if (list) {
    for (const m of chosen) process.stdout.write(`${m.id}\n  ${m.file}: ${m.why}\n  - ${m.find.replace(/\n\s*/g, ' ')}\n  + ${m.replace.replace(/\n\s*/g, ' ')}\n`);
    return 0;
  }
  if (!fs.existsSync(path.join(ROOT, 'dist/src/sim/main.js'))) usage('dist/ is missing: run `npm run build` (npm run mutants builds first)');
  const t0 = performance.now();
  const scratch = makeScratch();
  const log = (s: string) => { if (!json) process.stderr.write(s + '\n'); };
  log(`mutants: ${chosen.length} in ${scratch}`);
  const outcomes: Outcome[] = [];
  try {
    for (const m of chosen) {
      log(`${m.id} (${m.file})`);
      outcomes.push(await runMutant(scratch, m, log));
    }
  } finally {
    if (!keep) fs.rmSync(scratch, { recursive: true, force: true });
  }
  const seconds = Number(((performance.now() - t0) / 1000).toFixed(1));
  const caught = outcomes.filter((o) => o.status === 'caught').length;
  if (json) {
    process.stdout.write(JSON.stringify({ mutants: outcomes.length, caught, seconds, loadAverage: os.loadavg(), outcomes }, null, 2) + '\n');
  } else {
    const w = Math.max(...outcomes.map((o) => o.id.length));
    const lines = [`${'mutant'.padEnd(w)}  status    time   caught by`];
    for (const o of outcomes) {
      lines.push(`${o.id.padEnd(w)}  ${o.status.padEnd(8)}  ${String(o.seconds).padStart(5)}s  ${o.by[0] ?? '-'}`);
      for (const b of o.by.slice(1)) lines.push(`${''.padEnd(w + 27)}${b}`);
    }
    lines.push(`${caught} of ${outcomes.length} caught in ${seconds} s (load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return caught === outcomes.length ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => { process.stderr.write(`mutants: ${e.stack ?? e.message}\n`); process.exitCode = 1; });
