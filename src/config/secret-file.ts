// Files a configuration names for their contents: tokens, passwords, TLS
// keys and certificates. A secret that other users can read protects
// nothing, so it is refused at start with its path and mode.
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.js';

/**
 * A file's text, trimmed. `secret`: the file must not be readable by other users (a token, a
 * password, a private key that anyone on the host can read protects nothing), refused at start
 * with its path and mode.
 */
export function readSecret(file: string, base: string, what: string, key: string, line: number | undefined, cfgFile: string, opts: { secret: boolean; charsMin?: number }): string {
  const p = path.resolve(base, file);
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8').trim();
    if (text === '') throw new Error('it is empty');
  } catch (e) {
    throw new ConfigError(cfgFile, key, `cannot read the ${what} from ${p}: ${(e as Error).message}`, { line });
  }
  if (opts.secret) {
    const mode = fs.statSync(p).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new ConfigError(cfgFile, key, `the ${what} in ${p} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${p}`, { line });
    }
  }
  if (opts.charsMin !== undefined && text.length < opts.charsMin) {
    throw new ConfigError(cfgFile, key, `the ${what} in ${p} has ${text.length} characters; use at least ${opts.charsMin} (for example: openssl rand -hex 24 > ${p})`, { line });
  }
  return text;
}

