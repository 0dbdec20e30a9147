// Read-only inspection of a data dir, for `quorate quorum dump|verify DIR`.
// Nothing here writes, truncates, removes or locks: it must be safe to run
// against a damaged directory (to decide what to do) and beside a running
// server. It reaches its verdicts through the same scanner and judgeLogScan()
// the server uses at start, so "verify says torn tail" means "start will cut".
import { join } from 'node:path';
import { readMeta, type DataDirMeta } from './data-dir.js';
import { listSnapshots, readSnapshotFile } from './snapshot-store.js';
import { hexZxid, judgeLogScan, listLogFiles, openRealFile, scanLogFile, type LogFileEntry, type LogVerdict } from './storage-format.js';

export interface StorageProblem {
  /** error: the server will refuse to start; warning: it will start, after the repair or fallback described. */
  severity: 'error' | 'warning';
  file: string;
  offset?: number;
  message: string;
}

export interface LogFileReport {
  file: string;
  path: string;
  size: number;
  startZxid: bigint;
  records: number;
  firstZxid: bigint | null;
  lastZxid: bigint | null;
  /** Offset just past the last valid record. */
  end: number;
  verdict: LogVerdict['kind'];
}

export interface SnapshotReport {
  file: string;
  path: string;
  zxid: bigint;
  size: number;
  valid: boolean;
  problem?: string;
  /** From the caller's describeSnapshot, in dump only. */
  description?: string;
}

export interface DataDirReport {
  dir: string;
  logDir: string;
  snapDir: string;
  meta: DataDirMeta | null;
  logs: LogFileReport[];
  snapshots: SnapshotReport[];
  problems: StorageProblem[];
  /** Last valid zxid in the log, and zxid of the newest snapshot that validates. */
  lastLogZxid: bigint | null;
  latestValidSnapshotZxid: bigint | null;
  /** No problem of severity error. */
  ok: boolean;
}

export interface DumpedRecord { file: string; offset: number; zxid: bigint; size: number; description: string }

export interface InspectOptions {
  /** zoo.cfg dataLogDir, if the log is not under `dir`. */
  dataLogDir?: string;
}

export interface DumpOptions extends InspectOptions {
  /** Renders one transaction payload (the server core's decoder); defaults to its size. */
  describe?: (payload: Buffer) => string;
  describeSnapshot?: (payload: Buffer) => string;
  /** Streams records instead of collecting them (for large logs); `records` is then empty. */
  onRecord?: (record: DumpedRecord) => void;
}

/** Checks every log record and snapshot; reports problems with file and offset. Never modifies anything. */
export function verifyDataDir(dir: string, opts: InspectOptions = {}): Promise<DataDirReport> {
  return inspect(dir, opts, null, null);
}

/** verifyDataDir plus every log record (zxid, offset, size, description). Never modifies anything. */
export async function dumpDataDir(dir: string, opts: DumpOptions = {}): Promise<DataDirReport & { records: DumpedRecord[] }> {
  const records: DumpedRecord[] = [];
  const describe = opts.describe ?? ((p: Buffer) => `${p.length} bytes`);
  const sink = opts.onRecord ?? ((r: DumpedRecord) => records.push(r));
  const report = await inspect(dir, opts, (file, zxid, payload, offset) => {
    let description: string;
    try { description = describe(payload); } catch (err) { description = `(cannot decode: ${(err as Error).message})`; }
    sink({ file, offset, zxid, size: payload.length, description });
  }, opts.describeSnapshot ?? null);
  return { ...report, records };
}

type RecordSink = (file: string, zxid: bigint, payload: Buffer, offset: number) => void;

async function inspect(dir: string, opts: InspectOptions, onRecord: RecordSink | null,
  describeSnapshot: ((payload: Buffer) => string) | null): Promise<DataDirReport> {
  const logDir = join(opts.dataLogDir ?? dir, 'log');
  const snapDir = join(dir, 'snap');
  const problems: StorageProblem[] = [];
  let meta: DataDirMeta | null = null;
  try {
    meta = await readMeta(dir);
    if (meta === null) problems.push({ severity: 'warning', file: join(dir, 'quorate-meta.json'), message: 'no meta file: the server will only adopt this dir if it holds no data' });
  } catch (err) {
    problems.push({ severity: 'error', file: dir, message: (err as Error).message });
  }
  const logs = await inspectLogs(logDir, problems, onRecord);
  const snapshots = await inspectSnapshots(snapDir, problems, describeSnapshot);
  const lastLog = [...logs].reverse().find((l) => l.lastZxid !== null);
  const newestValid = [...snapshots].reverse().find((s) => s.valid);
  return {
    dir, logDir, snapDir, meta, logs, snapshots, problems,
    lastLogZxid: lastLog?.lastZxid ?? null,
    latestValidSnapshotZxid: newestValid?.zxid ?? null,
    ok: problems.every((p) => p.severity !== 'error'),
  };
}

async function inspectLogs(logDir: string, problems: StorageProblem[], onRecord: RecordSink | null): Promise<LogFileReport[]> {
  let entries: LogFileEntry[];
  try {
    entries = await listLogFiles(logDir);
  } catch (err) {
    problems.push({ severity: 'warning', file: logDir, message: `cannot list the log directory: ${(err as Error).message}` });
    return [];
  }
  const out: LogFileReport[] = [];
  let prev = 0n;
  for (let i = 0; i < entries.length; i++) {
    const path = join(logDir, entries[i].file);
    const fh = await openRealFile(path, 'r');
    try {
      const scan = await scanLogFile(fh, entries[i], prev, onRecord === null ? undefined : (z, p, o) => onRecord(path, z, p, o));
      const verdict = judgeLogScan(scan, i === entries.length - 1);
      out.push({ file: entries[i].file, path, size: scan.size, startZxid: entries[i].startZxid, records: scan.records,
        firstZxid: scan.firstZxid, lastZxid: scan.lastZxid, end: scan.end, verdict: verdict.kind });
      if (scan.lastZxid !== null) prev = scan.lastZxid;
      if (verdict.kind === 'corrupt') {
        problems.push({ severity: 'error', file: path, offset: verdict.offset, message: `corrupt: ${verdict.message}; the server will refuse to start` });
      } else if (verdict.kind === 'torn') {
        problems.push({ severity: 'warning', file: path, offset: verdict.offset,
          message: `torn tail (${verdict.reason}): the server will cut ${scan.size - verdict.offset} bytes at offset ${verdict.offset} when it starts` });
      } else if (verdict.kind === 'blank' || (scan.records === 0 && i === entries.length - 1)) {
        problems.push({ severity: 'warning', file: path, message: 'holds no records: the server will remove it when it starts' });
      }
    } finally {
      await fh.close();
    }
  }
  return out;
}

async function inspectSnapshots(snapDir: string, problems: StorageProblem[],
  describeSnapshot: ((payload: Buffer) => string) | null): Promise<SnapshotReport[]> {
  let infos;
  try {
    infos = await listSnapshots(snapDir);
  } catch (err) {
    problems.push({ severity: 'warning', file: snapDir, message: `cannot list the snapshot directory: ${(err as Error).message}` });
    return [];
  }
  const out: SnapshotReport[] = [];
  for (const info of infos) {
    const r = await readSnapshotFile(info);
    const rep: SnapshotReport = { file: info.file, path: info.path, zxid: info.zxid, size: info.size, valid: r.ok };
    if (r.ok && describeSnapshot !== null) {
      try { rep.description = describeSnapshot(r.payload); } catch (err) { rep.description = `(cannot decode: ${(err as Error).message})`; }
    }
    if (!r.ok) rep.problem = r.problem;
    out.push(rep);
  }
  const anyValid = out.some((s) => s.valid);
  for (const s of out) {
    if (s.valid) continue;
    problems.push(anyValid
      ? { severity: 'warning', file: s.path, message: `invalid snapshot (${s.problem}): the server will pass over it` }
      : { severity: 'error', file: s.path, message: `invalid snapshot (${s.problem}) and no valid one: the server will refuse to start` });
  }
  return out;
}

/** The report with bigints as 0x-hex strings, ready for JSON.stringify (zxids are printed as ZooKeeper does). */
export function reportToJson(value: unknown): unknown {
  if (typeof value === 'bigint') return '0x' + hexZxid(value);
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(reportToJson);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reportToJson(v)]));
  }
  return value;
}
