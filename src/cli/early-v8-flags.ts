// Imported first by main.ts, so that it runs before any other module of the
// `quorate` command loads: V8 settings change how the code loaded after them
// is compiled, and most of a controller's memory is the code it loads.
import { CONTROLLER_V8_FLAGS } from '../daemon/controller-flags.js';
import { applyV8Flags } from '../io/v8-flags.js';

/**
 * `quorate controller start ...`, or `quorate controller --config ...` (start is the controller
 * command's default subcommand; controller-memory.test.ts holds this to its definition).
 */
export function runsController(argv: readonly string[]): boolean {
  return argv[2] === 'controller' && (argv[3] === undefined || argv[3] === 'start' || argv[3].startsWith('-'));
}

/** The V8 flags this process set on itself (for the controller's start-up log line). */
export const earlyV8Flags: readonly string[] = runsController(process.argv) ? applyV8Flags(CONTROLLER_V8_FLAGS) : [];
