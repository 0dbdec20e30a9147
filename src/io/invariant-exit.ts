// A daemon stops on a broken invariant instead of going on wrong: the core's
// check names the invariant and the state that broke it; this logs both at
// level fatal and exits 70 (EX_SOFTWARE) at once, before any catch block on
// the way up could turn the exception into an error answer.
import { pino, type Logger } from 'pino';
import { setInvariantHandler, type InvariantViolation } from '../core/invariant.js';

export const INVARIANT_EXIT_CODE = 70;

export function exitOnInvariantViolation(logger: Logger): void {
  setInvariantHandler((v: InvariantViolation) => {
    try {
      logger.fatal({ invariant: v.invariant, state: v.state, stack: v.stack }, `invariant ${v.invariant} violated: stopping`);
      // The logger writes asynchronously: flush its destination before the exit, or the line is lost.
      const stream = (logger as unknown as Record<symbol, { flushSync?: () => void } | undefined>)[pino.symbols.streamSym];
      stream?.flushSync?.();
    } catch {
      process.stderr.write(`quorate: invariant ${v.invariant} violated: ${JSON.stringify(v.state)}\n`);
    } finally {
      process.exit(INVARIANT_EXIT_CODE);
    }
  });
}
