// Numeric benchmark options: defaults, a --quick preset, environment
// variables (BENCH_<NAME>, e.g. BENCH_SECONDS=3) and flags (--seconds 3 or
// --seconds=3), in increasing order of precedence.

export interface OptionSpec {
  /** Flag name without dashes, e.g. 'latency-ops'. */
  name: string;
  full: number;
  quick: number;
  help: string;
  integer?: boolean;
}

export class UsageError extends Error {}

export function envName(flag: string): string {
  return 'BENCH_' + flag.toUpperCase().replace(/-/g, '_');
}

export function usage(benchmark: string, specs: OptionSpec[], switches: Record<string, string>): string {
  const lines = [`usage: npm run bench -- ${benchmark} [--quick] [options]`, ''];
  for (const [k, v] of Object.entries(switches)) lines.push(`  --${k.padEnd(22)} ${v}`);
  for (const s of specs) lines.push(`  --${(s.name + ' N').padEnd(22)} ${s.help} (default ${s.full}, --quick ${s.quick}; env ${envName(s.name)})`);
  return lines.join('\n');
}

/** Parse argv into numeric options plus the boolean switches named in `switches`. */
export function parseOptions(
  argv: string[], specs: OptionSpec[], switches: Record<string, string>, env: NodeJS.ProcessEnv = process.env,
): { values: Record<string, number>; flags: Set<string> } {
  const flags = new Set<string>();
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (name in switches) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      continue;
    }
    if (!specs.some((s) => s.name === name)) throw new UsageError(`unknown option --${name}`);
    const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    given.set(name, v);
  }
  if (env.BENCH_QUICK === '1') flags.add('quick');
  const quick = flags.has('quick');
  const values: Record<string, number> = {};
  for (const s of specs) {
    const text = given.get(s.name) ?? env[envName(s.name)];
    let v = quick ? s.quick : s.full;
    if (text !== undefined && text !== '') {
      v = Number(text);
      if (!Number.isFinite(v) || v < 0 || (s.integer && !Number.isInteger(v))) {
        throw new UsageError(`--${s.name}: expected a ${s.integer ? 'non-negative integer' : 'non-negative number'}, got "${text}"`);
      }
    }
    values[s.name] = v;
  }
  return { values, flags };
}

/**
 * A benchmark's command line: its values and switches, or the exit code to return at once
 * (0 after --help, 2 after bad usage, with the usage on stderr either way).
 */
export function parseBenchArgs(
  name: string, argv: string[], specs: OptionSpec[], switches: Record<string, string>,
): { values: Record<string, number>; flags: Set<string> } | number {
  let parsed: { values: Record<string, number>; flags: Set<string> };
  try {
    parsed = parseOptions(argv, specs, switches);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${name}: ${e.message}\n${usage(name, specs, switches)}\n`);
    return 2;
  }
  if (parsed.flags.has('help')) { process.stderr.write(usage(name, specs, switches) + '\n'); return 0; }
  return parsed;
}
