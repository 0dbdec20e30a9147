// Shared fixtures for the storage tests: temp dirs, a logger that records what
// it was told, and a file seam that counts fsyncs and injects failures.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { constants } from 'node:fs';
import { basename, join } from 'node:path';
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
  /** Counts datasync calls on files (not directories). */
  fsyncs: number;
  /** Counts writes through handles opened with O_DSYNC (each one makes a batch durable). */
  durableWrites?: number;
  /** When set, the next file datasync fails with this errno code (and every one after). */
  failDatasync?: string;
  /** When set, file writes fail with this errno code. */
  failWrite?: string;
  /** When set, writes through O_DSYNC handles fail with this errno code. */
  failDurableWrite?: string;
  /** Delay added to each datasync. */
  datasyncDelayMs?: number;
  /** Delay added to each write through an O_DSYNC handle. */
  durableWriteDelayMs?: number;
  /** When set, every file operation is recorded here, in the order it started. */
  trace?: IoEvent[];
}

/** One file operation seen by faultyOpen: `file` is the name the handle was opened with. */
export interface IoEvent {
  /** 'sync' is an fsync: the log only fsyncs directories. */
  op: 'write' | 'datasync' | 'sync' | 'truncate';
  file: string;
  /** The handle was opened with O_DSYNC. */
  dsync: boolean;
  bytes: number;
  /** A write of nothing but zeros. */
  zeros: boolean;
}

export const isDsync = (flags: string | number): boolean => typeof flags === 'number' && (flags & constants.O_DSYNC) !== 0;

function errnoError(code: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected failure`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

/** An OpenFile that behaves like the real one except where `plan` says otherwise. */
export function faultyOpen(plan: FaultPlan): OpenFile {
  return async (path, flags) => {
    const fh = await openRealFile(path, flags);
    const dsync = isDsync(flags);
    const file = basename(path);
    const note = (op: IoEvent['op'], bytes = 0, zeros = false) => plan.trace?.push({ op, file, dsync, bytes, zeros });
    const wrapped: StorageFile = {
      read: (b, o, l, p) => fh.read(b, o, l, p),
      write: async (b, o, l, p) => {
        note('write', l, b.subarray(o, o + l).every((x) => x === 0));
        if (dsync) {
          plan.durableWrites = (plan.durableWrites ?? 0) + 1;
          if (plan.durableWriteDelayMs !== undefined) await new Promise((r) => setTimeout(r, plan.durableWriteDelayMs));
          if (plan.failDurableWrite !== undefined) throw errnoError(plan.failDurableWrite);
        }
        if (plan.failWrite !== undefined) throw errnoError(plan.failWrite);
        return fh.write(b, o, l, p);
      },
      datasync: async () => {
        note('datasync');
        plan.fsyncs++;
        if (plan.datasyncDelayMs !== undefined) await new Promise((r) => setTimeout(r, plan.datasyncDelayMs));
        if (plan.failDatasync !== undefined) throw errnoError(plan.failDatasync);
        return fh.datasync();
      },
      sync: () => { note('sync'); return fh.sync(); },
      truncate: (n) => { note('truncate', n); return fh.truncate(n); },
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
    return wrapped;
  };
}
