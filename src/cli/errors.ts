// How the CLI ends: 0 success, 1 a runtime failure, 2 bad usage or configuration.
import { isConfigError } from '../config/errors.js';

export class UsageError extends Error {
  readonly code = 'QUORATE_USAGE';
}

export function exitCodeFor(err: unknown): number {
  if (isConfigError(err) || err instanceof UsageError) return 2;
  return 1;
}

/** Print an error the way an operator reads it: one line, what was wrong, no stack unless asked. */
export function reportAndExit(err: unknown): never {
  const e = err as { message?: string; code?: string; stack?: string };
  const code = e?.code ? ` [${e.code}]` : '';
  process.stderr.write(`quorate: ${e?.message ?? String(err)}${code}\n`);
  if (process.env.QUORATE_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  process.exit(exitCodeFor(err));
}

/**
 * SIGHUP re-reads what can change without a restart (certificates: a rotation). A failed reload
 * keeps what runs and says why; reloads never overlap.
 */
export function reloadOnSighup(logger: { info(o: object, msg: string): void; error(o: object, msg: string): void }, reload: () => Promise<void> | void): void {
  let running = false;
  process.on('SIGHUP', () => {
    if (running) return;
    running = true;
    Promise.resolve().then(reload).then(
      () => logger.info({ signal: 'SIGHUP' }, 'reloaded certificates'),
      (e: Error) => logger.error({ signal: 'SIGHUP', err: e.message }, 'reload failed; still running with what it had'),
    ).finally(() => { running = false; });
  });
}

/** SIGTERM/SIGINT stop a long-running process once: exit 0 when `stop` resolves, 1 when it fails. */
export function stopOnSignals(logger: { info(o: object, msg: string): void }, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
