// The logging port of the client: pino's Logger fits it; the default drops everything.

export interface ZkLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const NOOP_LOGGER: ZkLogger = { debug: noop, info: noop, warn: noop, error: noop };
