// What a controller process loads stays resident for its whole life: the
// `quorate` command loads only the asked verb's modules, a controller loads
// ssh2 only when it fences over ssh and undici never, and the systemd unit starts a controller
// with the same Node flags as --daemon. Checked on the static import graph of
// the sources (import type and export type are erased, so they do not count).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTROLLER_NODE_FLAGS } from '../../../src/daemon/controller-flags.js';
import { controllerSpec } from '../../../src/daemon/daemon-spec.js';
import { runsController } from '../../../src/cli/early-v8-flags.js';

const SRC = path.resolve(__dirname, '../../../src');
const UNIT = path.resolve(__dirname, '../../../systemd/quorate-controller@.service');

/** The modules `file` imports at run time: relative ones as absolute .ts paths, packages by name. */
function staticImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  // import x from '...'; import { a, type B } from '...'; export { x } from '...'; export * from '...'; import '...'
  const re = /^(import|export)\s+(type\s+)?([^;]*?\s+from\s+)?'([^']+)'/gms;
  for (const m of text.matchAll(re)) {
    if (m[2] !== undefined) continue; // import type / export type: erased
    if (m[1] === 'export' && m[3] === undefined) continue;
    const spec = m[4];
    out.push(spec.startsWith('.') ? path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')) : spec);
  }
  return out;
}

function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (f.endsWith('.ts')) todo.push(...staticImports(f));
  }
  return seen;
}

describe('what a controller loads', () => {
  it('the import scan sees value imports and skips type-only ones', () => {
    const imports = staticImports(path.join(SRC, 'controller/fence-ssh.ts'));
    expect(imports).toContain(path.join(SRC, 'io/shell-quote.ts'));
    expect(imports).toContain(path.join(SRC, 'io/ssh-host-keys.ts')); // export { ... } from
    expect(imports).not.toContain(path.join(SRC, 'config/controller-config.ts')); // import type
    expect(staticImports(path.join(SRC, 'io/ssh-exec.ts'))).toContain('ssh2');
  });

  it('the quorate command loads no verb until it knows which one runs', () => {
    const fromMain = reachable(path.join(SRC, 'cli/main.ts'));
    for (const verb of ['cli/controller-command.ts', 'cli/quorum-command.ts', 'demo/demo-command.ts', 'cli/cluster-command.ts']) {
      expect(fromMain.has(path.join(SRC, verb)), verb).toBe(false);
    }
  });

  it('`quorate cluster local-status`, run over ssh on every host at every poll, loads neither ssh2 nor a daemon', () => {
    const verb = new Set([...reachable(path.join(SRC, 'cli/cluster-command.ts')), ...reachable(path.join(SRC, 'cli/local-status.ts'))]);
    expect(verb.has(path.join(SRC, 'cli/local-status.ts'))).toBe(true);
    expect(verb.has(path.join(SRC, 'daemon/daemon-control.ts'))).toBe(true); // the scan follows the graph
    expect(verb.has('ssh2')).toBe(false);
    for (const daemon of ['controller/controller.ts', 'quorum/standalone-server.ts', 'journal/journal-node.ts']) expect(verb.has(path.join(SRC, daemon)), daemon).toBe(false);
  });

  it('the controller verb does not load ssh2, undici, the quorum server or the demo', () => {
    // The verb, then what it loads once it runs a controller (status and stop load neither).
    const verb = reachable(path.join(SRC, 'cli/controller-command.ts'));
    expect(verb.has(path.join(SRC, 'controller/controller.ts'))).toBe(false);
    const fromController = new Set([...verb, ...reachable(path.join(SRC, 'controller/controller.ts')), ...reachable(path.join(SRC, 'controller/admin-api.ts'))]);
    expect(fromController.has(path.join(SRC, 'controller/health-monitor.ts'))).toBe(true); // the scan follows the graph
    expect(fromController.has(path.join(SRC, 'client/journal/journal-epoch.ts'))).toBe(true);
    expect(fromController.has('ssh2')).toBe(false);
    // undici is ~30 MB resident: the controller's HTTP calls and journal epochs go over node:http; the writer's batches over undici.
    expect(fromController.has('undici')).toBe(false);
    expect(reachable(path.join(SRC, 'client/journal/quorum-writer.ts')).has('undici')).toBe(true);
    expect(fromController.has(path.join(SRC, 'io/ssh-exec.ts'))).toBe(false);
    expect(fromController.has(path.join(SRC, 'quorum/standalone-server.ts'))).toBe(false);
    expect(fromController.has(path.join(SRC, 'demo/demo-command.ts'))).toBe(false);
  });

  it('a controller\'s V8 settings are set before the quorate command loads anything else', () => {
    const main = staticImports(path.join(SRC, 'cli/main.ts'));
    expect(main[0]).toBe(path.join(SRC, 'cli/early-v8-flags.ts'));
    // It loads only what it needs to decide: no package, no configuration.
    expect([...reachable(main[0])].sort()).toEqual([path.join(SRC, 'cli/early-v8-flags.ts'), path.join(SRC, 'daemon/controller-flags.ts'), path.join(SRC, 'io/v8-flags.ts'), 'node:v8'].sort());
  });

  it('the early check means a controller exactly when the controller command would start one', async () => {
    const { controllerCommands } = await import('../../../src/cli/controller-command.js');
    const controller = controllerCommands().find((c) => c.name() === 'controller')!;
    const subs = controller.commands.map((c) => c.name()).sort();
    // runsController's rule: a subcommand other than start is named; anything else starts one.
    expect(subs).toEqual(['start', 'status', 'stop']);
    expect((controller as unknown as { _defaultCommandName: string })._defaultCommandName).toBe('start');
    const argv = (...a: string[]) => ['node', 'quorate', ...a];
    expect(runsController(argv('controller', 'start', '--config', 'f'))).toBe(true);
    expect(runsController(argv('controller', '--config', 'f', '--service', 's', '--id', 'a'))).toBe(true);
    expect(runsController(argv('controller'))).toBe(true);
    for (const other of subs.filter((s) => s !== 'start')) expect(runsController(argv('controller', other, '--config', 'f')), other).toBe(false);
    expect(runsController(argv('status', '--config', 'f'))).toBe(false);
    expect(runsController(argv('quorum', '--config', 'f'))).toBe(false);
  });

  it('--daemon and the systemd unit start a controller with the same Node flags', () => {
    expect(CONTROLLER_NODE_FLAGS.length).toBeGreaterThan(0);
    const unit = fs.readFileSync(UNIT, 'utf8');
    const env = /^Environment=NODE_OPTIONS=(.*)$/m.exec(unit);
    expect(env?.[1]).toBe(CONTROLLER_NODE_FLAGS.join(' '));
    const spec = controllerSpec({ service: 'orders', instance: { id: 'a' } } as Parameters<typeof controllerSpec>[0], '/etc/quorate/cluster.yaml');
    expect(spec.nodeFlags).toEqual(CONTROLLER_NODE_FLAGS);
    // daemon-control puts them before the parent's own flags, which therefore win.
    expect(fs.readFileSync(path.join(SRC, 'daemon/daemon-control.ts'), 'utf8')).toMatch(/\[\.\.\.\(spec\.nodeFlags \?\? \[\]\), \.\.\.process\.execArgv,/);
  });
});
