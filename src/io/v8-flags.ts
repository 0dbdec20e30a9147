// V8 settings Node refuses in NODE_OPTIONS (so a systemd unit's Environment=
// cannot carry them), set from inside the process instead.
import v8 from 'node:v8';

/** `--no-turbofan` and `--turbofan=false` name the same setting; `--opt` is V8's old name for turbofan. */
const ALIASES: Record<string, string> = { opt: 'turbofan' };

function settingOf(flag: string): string {
  const name = flag.replace(/^--(no-)?/, '').split('=')[0].replace(/_/g, '-');
  return ALIASES[name] ?? name;
}

/**
 * Sets each flag unless the process was started with a value of its own for that setting (the
 * operator's flags win, as they do after the daemon's own command-line flags). Takes effect for
 * the code that runs from now on. Returns the flags it set.
 */
export function applyV8Flags(flags: readonly string[], execArgv: readonly string[] = process.execArgv): string[] {
  const own = new Set(execArgv.filter((a) => a.startsWith('--')).map(settingOf));
  const applied = flags.filter((f) => !own.has(settingOf(f)));
  for (const f of applied) v8.setFlagsFromString(f);
  return applied;
}
