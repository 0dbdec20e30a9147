// Shared fixtures for the storage tests: temp dirs, a logger that records what
// it was told, and a file seam that counts fsyncs and injects failures.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../../src/io/log.js';
import { openRealFile, type OpenFile, type StorageFile } from '../../../src/io/storage-format.js';

const made: string[] = [];

export async function tempDir(prefix = 'quorate-storage-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

export interface LogLine { level: number; msg: string; [k: string]: unknown }

/** A pino logger whose lines land in `lines` (parsed). 40 = warn, 50 = error. */
export function captureLogger(): { logger: Logger; lines: LogLine[]; warns: () => LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => { lines.push(JSON.parse(s) as LogLine); } });
  return { logger, lines, warns: () => lines.filter((l) => l.level === 40) };
}

export interface FaultPlan {
  /** Counts datasync/sync calls on files (not directories). */
  fsyncs: number;
  /** When set, the next file datasync fails with this errno code (and every one after). */
  failDatasync?: string;
  /** When set, file writes fail with this errno code. */
  failWrite?: string;
  /** Delay added to each datasync. */
  datasyncDelayMs?: number;
}

function errnoError(code: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected failure`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

/** An OpenFile that behaves like the real one except where `plan` says otherwise. */
export function faultyOpen(plan: FaultPlan): OpenFile {
  return async (path, flags) => {
    const fh = await openRealFile(path, flags);
    const wrapped: StorageFile = {
      read: (b, o, l, p) => fh.read(b, o, l, p),
      write: async (b, o, l, p) => {
        if (plan.failWrite !== undefined) throw errnoError(plan.failWrite);
        return fh.write(b, o, l, p);
      },
      datasync: async () => {
        plan.fsyncs++;
        if (plan.datasyncDelayMs !== undefined) await new Promise((r) => setTimeout(r, plan.datasyncDelayMs));
        if (plan.failDatasync !== undefined) throw errnoError(plan.failDatasync);
        return fh.datasync();
      },
      sync: () => fh.sync(),
      truncate: (n) => fh.truncate(n),
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
    return wrapped;
  };
}
