// The package as a host gets it: the systemd units pass `systemd-analyze
// verify` (and a unit with a real error does not), and `npm pack` + `npm
// install -g` into a clean prefix give a working `quorate` with the units,
// the example cluster file and the built code, and nothing else.
//
// How the units are verified without installing anything on this machine:
// - `systemd-analyze verify --root=R` loads units from R/etc/systemd/system
//   and R/usr/lib/systemd/system and checks every ExecStart= executable under
//   R. R holds the units, executable stand-ins for /usr/bin/quorate and
//   /bin/sh, and the targets a service's default dependencies require
//   (sysinit.target, basic.target, shutdown.target; plus network-online.target
//   and multi-user.target, which the units name).
// - Templates are verified as instances (quorate-quorum@1.service), so %i is
//   expanded. The controller's instance is service:id, but a ':' on verify's
//   command line separates a file from its alias name, so it is given escaped:
//   quorate-controller@orders\x3aa.service, whose %i is "orders:a" all the same.
// - verify (systemd 252) does not resolve User=: no `quorate` user is needed.
// - Without --recursive-errors, verify exits 0 even on an unknown directive;
//   with --recursive-errors=no it exits non-zero when the unit itself has a
//   warning (its dependencies' warnings do not count).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const UNITS_DIR = path.join(REPO, 'systemd');
const UNIT_FILES = ['quorate-quorum@.service', 'quorate-journal@.service', 'quorate-controller@.service'];
const INSTANCES: Record<string, string> = {
  'quorate-quorum@.service': 'quorate-quorum@1.service',
  'quorate-journal@.service': 'quorate-journal@1.service',
  'quorate-controller@.service': 'quorate-controller@orders\\x3aa.service',
};
const TARGETS = ['sysinit.target', 'basic.target', 'shutdown.target', 'network-online.target', 'multi-user.target'];
const HOST_UNIT_DIRS = ['/usr/lib/systemd/system', '/lib/systemd/system'];

interface Run { status: number | null; out: string }

/** Runs to completion or SIGKILL at `timeoutMs`; stdout and stderr together. */
function run(cmd: string, args: string[], timeoutMs: number, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw r.error;
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error) return { status: null, out: `${out}\n[${cmd} killed after ${timeoutMs} ms]` };
  return { status: r.status, out };
}

const hasSystemdAnalyze = (() => {
  try { return run('systemd-analyze', ['--version'], 10_000).status === 0; } catch { return false; }
})();

const scratch: string[] = [];
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(d);
  return d;
}
afterAll(() => { for (const d of scratch) fs.rmSync(d, { recursive: true, force: true }); });

function writeExecutable(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
}

/** A scratch root for `verify --root`: the units (as given), the targets, and optionally the executables. */
function makeRoot(units: Record<string, string>, withExecutables: boolean): string {
  const root = tempDir('quorate-units-');
  const etc = path.join(root, 'etc/systemd/system');
  const lib = path.join(root, 'usr/lib/systemd/system');
  fs.mkdirSync(etc, { recursive: true });
  fs.mkdirSync(lib, { recursive: true });
  for (const [name, text] of Object.entries(units)) fs.writeFileSync(path.join(etc, name), text);
  for (const t of TARGETS) {
    const host = HOST_UNIT_DIRS.map((d) => path.join(d, t)).find((f) => fs.existsSync(f));
    // The host's own target if it has one (the package that brings systemd-analyze does), else a bare one.
    fs.writeFileSync(path.join(lib, t), host ? fs.readFileSync(host) : `[Unit]\nDescription=${t}\n`);
  }
  // Debian's merged /usr: /bin is a link to usr/bin (relative, so it resolves inside the root).
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.symlinkSync('usr/bin', path.join(root, 'bin'));
  if (withExecutables) {
    writeExecutable(path.join(root, 'usr/bin/quorate'));
    writeExecutable(path.join(root, 'usr/bin/sh'));
  }
  return root;
}

function verify(root: string, unit: string): Run {
  return run('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', `--root=${root}`, unit], 30_000, { cwd: root });
}

function unitText(file: string): string {
  return fs.readFileSync(path.join(UNITS_DIR, file), 'utf8');
}

describe.skipIf(!hasSystemdAnalyze)('systemd units: systemd-analyze verify', () => {
  let root = '';
  beforeAll(() => {
    root = makeRoot(Object.fromEntries(UNIT_FILES.map((f) => [f, unitText(f)])), true);
  });

  for (const file of UNIT_FILES) {
    it(`${INSTANCES[file]} verifies without a warning`, () => {
      const r = verify(root, INSTANCES[file]);
      expect(r.out.trim(), r.out).toBe('');
      expect(r.status, r.out).toBe(0);
    });
  }

  it('every unit runs the installed /usr/bin/quorate as the quorate user with --run-dir /run/quorate', () => {
    for (const file of UNIT_FILES) {
      const text = unitText(file);
      expect(text, file).toMatch(/^ExecStart=.*\/usr\/bin\/quorate (quorum|journal|controller) start --config \/etc\/quorate\/cluster\.yaml .*--run-dir \/run\/quorate/m);
      expect(text, file).toMatch(/^User=quorate$/m);
      expect(text, file).toMatch(/^RuntimeDirectoryPreserve=yes$/m);
      // Node's JIT needs writable-then-executable memory.
      expect(text, file).not.toMatch(/^MemoryDenyWriteExecute=(yes|true|1)/m);
    }
  });

  it('a unit with a misspelled directive fails, and the output names the directive', () => {
    const broken = unitText('quorate-quorum@.service').replace(/^ProtectSystem=strict$/m, 'ProtectSytem=strict');
    expect(broken).toMatch(/^ProtectSytem=strict$/m);
    const r = verify(makeRoot({ 'quorate-typo@.service': broken }, true), 'quorate-typo@1.service');
    expect(r.status, r.out).not.toBe(0);
    expect(r.out).toMatch(/ProtectSytem/);
  });

  it('without the stand-in for /usr/bin/quorate, verify fails naming it (the executable check is real)', () => {
    const r = verify(makeRoot({ 'quorate-quorum@.service': unitText('quorate-quorum@.service') }, false), 'quorate-quorum@1.service');
    expect(r.status, r.out).not.toBe(0);
    expect(r.out).toMatch(/\/usr\/bin\/quorate/);
  });

  it('systemd-analyze security (offline) rates every unit at most 2.0', () => {
    for (const file of UNIT_FILES) {
      const r = run('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, '--no-pager', INSTANCES[file]], 30_000, { cwd: root });
      const m = /Overall exposure level for .*: (\d+(?:\.\d+)?)/.exec(r.out);
      expect(m, r.out).not.toBeNull();
      expect(Number(m![1]), r.out).toBeLessThanOrEqual(2.0);
    }
  });
});

describe('npm pack, then npm install -g into a clean prefix', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };
  // Under `npm test`, npm hands its own run's settings down (npm_package_*, npm_lifecycle_*, the
  // prefixes...): the npm children must not inherit those. Settings from npmrc files or an operator's
  // NPM_CONFIG_* (the cache, a registry, a proxy) stay.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package_|lifecycle_|command$|config_(call|local_prefix|prefix|global_prefix|global)$)/.test(k)));
  let tgz = '';
  let entries: string[] = [];
  let prefix = '';

  beforeAll(() => {
    const main = path.join(REPO, 'dist/src/cli/main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: run "npm run build" first (npm test does)`);
    const dest = tempDir('quorate-pack-');
    // --ignore-scripts: no prepack build here; dist/ is built before the tests run.
    const r = run('npm', ['pack', '--ignore-scripts', '--pack-destination', dest, '--json', '--loglevel=error'], 120_000, { cwd: REPO, env });
    expect(r.status, r.out).toBe(0);
    tgz = path.join(dest, `${pkg.name}-${pkg.version}.tgz`);
    expect(fs.existsSync(tgz), `${tgz} missing; npm pack said:\n${r.out}`).toBe(true);
    const list = run('tar', ['tzf', tgz], 60_000);
    expect(list.status, list.out).toBe(0);
    entries = list.out.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));
  }, 180_000);

  it('the tarball holds the built CLI, the example service, the cluster file, the units, README and package.json', () => {
    for (const f of ['dist/src/cli/main.js', 'dist/examples/example-service.js', 'conf/cluster.yaml',
      'systemd/quorate-quorum@.service', 'systemd/quorate-journal@.service', 'systemd/quorate-controller@.service',
      'systemd/README.md', 'README.md', 'package.json']) {
      expect(entries, f).toContain(f);
    }
  });

  it('the tarball holds no tests, benchmarks or TypeScript sources', () => {
    const unwanted = entries.filter((e) => /^(test|bench|src|dist\/bench|dist\/test|node_modules)\//.test(e) || (e.endsWith('.ts') && !e.endsWith('.d.ts')));
    expect(unwanted).toEqual([]);
  });

  it('installs into a clean prefix; bin/quorate prints the version and lists the daemons', () => {
    prefix = tempDir('quorate-prefix-');
    const r = run('npm', ['install', '-g', '--prefix', prefix, tgz, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], 300_000, { cwd: prefix, env });
    expect(r.status, r.out).toBe(0);

    const bin = path.join(prefix, 'bin/quorate');
    expect(fs.existsSync(bin), `${bin} missing`).toBe(true);
    const version = run(bin, ['--version'], 30_000, { env });
    expect(version.status, version.out).toBe(0);
    expect(version.out.trim()).toBe(pkg.version);

    const help = run(bin, ['--help'], 30_000, { env });
    expect(help.status, help.out).toBe(0);
    for (const verb of ['quorum', 'journal', 'controller']) expect(help.out).toMatch(new RegExp(`^\\s+${verb}\\b`, 'm'));

    // Where systemd/README.md tells the operator to copy the units from: $(npm root -g)/quorate/systemd/.
    const installed = path.join(prefix, 'lib/node_modules', pkg.name);
    expect(fs.existsSync(path.join(installed, 'systemd/quorate-quorum@.service'))).toBe(true);
    // Runtime dependencies only: no test tooling.
    expect(fs.existsSync(path.join(installed, 'node_modules/commander'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'node_modules/vitest'))).toBe(false);
  }, 360_000);
});
