// Structured logging: pino JSON, one event a line, on stderr so that a
// command's stdout stays for its output. Fields operators grep for
// (cluster, service, id, role, epoch, zxid) are set as bindings by callers.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(bindings: Record<string, unknown> = {}, level = process.env.QUORATE_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, ...bindings },
      // zxids and session ids are bigint: log them as hex strings, as ZooKeeper does.
      formatters: { log: (obj) => hexBigints(obj) },
      redact: { paths: ['password', 'passwd', '*.password', '*.passwd', 'auth', '*.auth', 'secret', '*.secret'], censor: '[redacted]' },
    },
    pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything (tests, simulator). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

function hexBigints(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'bigint') {
      out ??= { ...obj };
      out[k] = '0x' + BigInt.asUintN(64, v).toString(16);
    }
  }
  return out ?? obj;
}
