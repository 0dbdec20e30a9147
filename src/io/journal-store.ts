// One journal's files on a journal node: the promise, the writer's epoch,
// the committed txid, the last accepted recovery, and the segments of edits
// in the transaction log's format (header, then CRC'd records keyed by txid):
// `edits_inprogress_<start>` while written, `edits_<start>_<end>` once
// finalized (renamed, the directory fsynced). apply() makes a request's
// storage operations durable, in order, before it returns. At open a torn
// tail of the in-progress segment is cut (and said so); damage anywhere else
// refuses to open, naming the file and offset.
import { fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { InlineWritePolicy } from './inline-write-policy.js';
import { journalSyncChannel } from './journal-trace.js';
import { join } from 'node:path';
import type { JournalDisk, JournalSegment, JournalStorageOp } from '../core/journal/journal-state.js';
import type { SegmentState } from '../core/journal/recovery.js';
import { writeSmallFile } from './epoch-files.js';
import type { Logger } from './log.js';
import {
  FileWindow, LOG_HEADER_BYTES, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, StorageCorruptError, StorageError, encodeRecord, fsyncDir, judgeLogScan, logFileHeader,
  readRecordAt, readTextIfExists, scanLogFile, writeFully, type StorageFile,
} from './storage-format.js';

const hex = (n: bigint) => n.toString(16).padStart(16, '0');
const inProgressName = (start: bigint) => `edits_inprogress_${hex(start)}`;
const finalizedName = (start: bigint, end: bigint) => `edits_${hex(start)}_${hex(end)}`;
const COMMITTED_WRITE_DELAY_MS = 50;
/** The segment's writer epoch sits in the log header's reserved bytes. */
/** The writer epoch: low 32 bits here, high bits (zero in files written before epochs passed 2^32) 4 bytes on. */
const HEADER_EPOCH_OFFSET = 8;
const HEADER_EPOCH_BYTES = 8;

function encodeWriterEpoch(writerEpoch: number): Buffer {
  const b = Buffer.alloc(HEADER_EPOCH_BYTES);
  b.writeUInt32BE(writerEpoch % 2 ** 32, 0);
  b.writeUInt32BE(Math.floor(writerEpoch / 2 ** 32), 4);
  return b;
}

function decodeWriterEpoch(b: Buffer): number {
  return b.readUInt32BE(4) * 2 ** 32 + b.readUInt32BE(0);
}

function segmentHeader(writerEpoch: number): Buffer {
  const h = logFileHeader();
  encodeWriterEpoch(writerEpoch).copy(h, HEADER_EPOCH_OFFSET);
  return h;
}

const NAME_RE = /^edits_(?:inprogress_([0-9a-f]{16})|([0-9a-f]{16})_([0-9a-f]{16}))$/;

interface OpenSegment { seg: JournalSegment; fh: StorageFile; pos: number }

/**
 * Where records start in a segment this process wrote: one (txid, offset) every INDEX_STEP_BYTES,
 * so a read from txid t starts near t instead of at the segment's header. Peers' catch-up reads
 * ask for the open segment's newest edits about every second; each scanned (and CRC-checked) the
 * whole segment, milliseconds of a 2-core host's CPU at 20 MB segments, taken from the batches.
 */
const INDEX_STEP_BYTES = 64 * 1024;
interface IndexEntry { txid: bigint; pos: number }

/** Told how long each write of edits took to fdatasync (seconds), for metrics. */
export type SyncObserver = (seconds: number) => void;

export class JournalStore {
  private current: OpenSegment | null = null;
  private segments: JournalSegment[] = [];
  /** Per segment start: the sparse record index of the segments appended to in this process (in txid order). */
  private readonly indexes = new Map<bigint, IndexEntry[]>();
  private readonly inline = new InlineWritePolicy();
  /** The committed txid is advisory (readers stop there): written a little later, off the request's path. */
  private committedToWrite: bigint | null = null;
  private committedWrite: Promise<void> | null = null;

  private constructor(readonly dir: string, private readonly logger: Logger, private readonly onSynced: SyncObserver | null) {}

  /** Opens (creating if needed) the journal's directory and reads back its state. */
  static async open(dir: string, logger: Logger, onSynced: SyncObserver | null = null): Promise<{ store: JournalStore; disk: JournalDisk }> {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const store = new JournalStore(dir, logger, onSynced);
    const disk = await store.load();
    return { store, disk };
  }

  private async readNumber(name: string): Promise<bigint | null> {
    const text = await readTextIfExists(join(this.dir, name));
    if (text === null) return null;
    if (!/^\d{1,20}\n?$/.test(text)) throw new StorageError(`${join(this.dir, name)} holds "${text.trim().slice(0, 40)}", not a number`, 'QUORATE_JOURNAL_FILE');
    return BigInt(text.trim());
  }

  /** The committed txid is advisory: a damaged file (an older node killed mid-write) counts as 0, said in a warning. */
  private async readCommitted(): Promise<bigint> {
    try {
      return (await this.readNumber('committed-txid')) ?? 0n;
    } catch (e) {
      this.logger.warn({ dir: this.dir, err: (e as Error).message }, 'ignoring a damaged committed-txid file (readers wait for the writer\'s next batch)');
      return 0n;
    }
  }

  private async load(): Promise<JournalDisk> {
    const files = (await readdir(this.dir)).flatMap((f) => {
      const m = NAME_RE.exec(f);
      if (m === null) return [];
      return m[1] !== undefined
        ? [{ file: f, start: BigInt(`0x${m[1]}`), end: null as bigint | null }]
        : [{ file: f, start: BigInt(`0x${m[2]}`), end: BigInt(`0x${m[3]}`) }];
    }).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let prev = 0n;
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      const path = join(this.dir, f.file);
      const inProgress = f.end === null;
      if (inProgress && i !== files.length - 1) throw new StorageCorruptError(`${path}: an in-progress segment that is not the last one`, path, 0);
      const fh = await open(path, inProgress ? 'r+' : 'r');
      let keep = false;
      try {
        const scan = await scanLogFile(fh, { file: f.file, startZxid: f.start }, prev);
        const verdict = judgeLogScan(scan, inProgress);
        if (verdict.kind === 'corrupt') throw new StorageCorruptError(`journal segment ${path} is corrupt at offset ${verdict.offset}: ${verdict.message}`, path, verdict.offset);
        const end = scan.lastZxid ?? f.start - 1n;
        if (!inProgress && end !== f.end) throw new StorageCorruptError(`journal segment ${path} ends at txid ${end}, its name says ${f.end}`, path, scan.end);
        if (verdict.kind === 'torn') {
          await fh.truncate(scan.end);
          await fh.datasync();
          this.logger.warn({ file: path, offset: verdict.offset, reason: verdict.reason }, 'cut torn tail of journal segment');
        }
        if (verdict.kind === 'blank') {
          await fh.truncate(0);
          await writeFully(fh, segmentHeader(0), 0);
          await fh.datasync();
        }
        const head = Buffer.alloc(HEADER_EPOCH_BYTES);
        if (scan.size >= LOG_HEADER_BYTES) await fh.read(head, 0, HEADER_EPOCH_BYTES, HEADER_EPOCH_OFFSET);
        const seg: JournalSegment = { startTxid: f.start, endTxid: end, inProgress, writerEpoch: decodeWriterEpoch(head) };
        this.segments.push(seg);
        if (inProgress) { this.current = { seg, fh, pos: Math.max(scan.end, LOG_HEADER_BYTES) }; keep = true; }
        if (scan.lastZxid !== null) prev = scan.lastZxid;
      } finally {
        if (!keep) await fh.close();
      }
    }
    const writerEpoch = Number((await this.readNumber('writer-epoch')) ?? 0n);
    const acceptedText = await readTextIfExists(join(this.dir, 'accepted-recovery'));
    let accepted: JournalDisk['accepted'] = null;
    if (acceptedText !== null) {
      try {
        const o = JSON.parse(acceptedText) as { start: string; end: string; inProgress: boolean; epoch: number };
        accepted = { segment: { startTxid: BigInt(o.start), endTxid: BigInt(o.end), inProgress: o.inProgress }, epoch: o.epoch };
      } catch {
        throw new StorageError(`${join(this.dir, 'accepted-recovery')} is not an accepted recovery record`, 'QUORATE_JOURNAL_FILE');
      }
    }
    return {
      promisedEpoch: Number((await this.readNumber('promised-epoch')) ?? 0n),
      lastWriterEpoch: writerEpoch,
      committedTxid: await this.readCommitted(),
      segments: this.segments.map((s) => ({ ...s })),
      accepted,
    };
  }

  /** Makes the operations durable, in order. */
  async apply(ops: readonly JournalStorageOp[]): Promise<void> {
    // Contiguous appends (several pipelined batches taken together) become one write and one fsync.
    let run: { segment: bigint; first: bigint; records: Uint8Array[] } | null = null;
    const flush = async () => {
      if (run === null) return;
      const r = run;
      run = null;
      await this.append(r.segment, r.first, r.records);
    };
    for (const op of ops) {
      if (op.kind === 'append') {
        if (run !== null && run.segment === op.segmentTxid && run.first + BigInt(run.records.length) === op.firstTxid) run.records.push(...op.records);
        else { await flush(); run = { segment: op.segmentTxid, first: op.firstTxid, records: [...op.records] }; }
        continue;
      }
      if (op.kind === 'committed') { this.noteCommitted(op.txid); continue; }
      await flush();
      switch (op.kind) {
        case 'promise': await writeSmallFile(this.dir, 'promised-epoch', `${op.epoch}\n`); break;
        case 'writerEpoch': await writeSmallFile(this.dir, 'writer-epoch', `${op.epoch}\n`); break;
        case 'startSegment': await this.startSegment(op.startTxid, op.writerEpoch); break;
        case 'finalize': await this.finalize(op.startTxid, op.endTxid); break;
        case 'truncate': await this.truncate(op.startTxid, op.endTxid); break;
        case 'accepted': await this.writeAccepted(op.segment, op.epoch); break;
        case 'purge': await this.purge(op.startTxid, op.endTxid); break;
      }
    }
    await flush();
  }

  /** Advisory (readers stop there): a crash that loses the last value only makes readers wait. */
  private noteCommitted(txid: bigint): void {
    this.committedToWrite = txid;
    if (this.committedWrite !== null) return;
    this.committedWrite = (async () => {
      await new Promise((r) => setTimeout(r, COMMITTED_WRITE_DELAY_MS));
      while (this.committedToWrite !== null) {
        const t = this.committedToWrite;
        this.committedToWrite = null;
        // Renamed into place (a crash leaves the old value or the new one); not fsynced: advisory.
        const tmp = join(this.dir, 'committed-txid.tmp');
        await writeFile(tmp, `${t}\n`, { mode: PRIVATE_FILE_MODE }).then(() => rename(tmp, join(this.dir, 'committed-txid')))
          .catch((err: Error) => this.logger.warn({ dir: this.dir, err: err.message }, 'could not write the committed txid'));
      }
      this.committedWrite = null;
    })();
  }

  private async startSegment(start: bigint, writerEpoch: number): Promise<void> {
    const existing = this.current;
    if (existing !== null && existing.seg.startTxid === start) {
      // The same (empty, or fetched-into) segment under another writer: its header says whose it is.
      await writeFully(existing.fh, encodeWriterEpoch(writerEpoch), HEADER_EPOCH_OFFSET);
      await existing.fh.datasync();
      existing.seg.writerEpoch = writerEpoch;
      return;
    }
    if (existing !== null) throw new StorageError(`journal ${this.dir}: segment ${existing.seg.startTxid} is still open`, 'QUORATE_JOURNAL_STATE');
    const path = join(this.dir, inProgressName(start));
    // Read and write: a truncate reads the records it keeps.
    const fh = await open(path, 'wx+', PRIVATE_FILE_MODE);
    await writeFully(fh, segmentHeader(writerEpoch), 0);
    await fh.datasync();
    await fsyncDir(this.dir);
    const seg: JournalSegment = { startTxid: start, endTxid: start - 1n, inProgress: true, writerEpoch };
    this.segments.push(seg);
    this.current = { seg, fh, pos: LOG_HEADER_BYTES };
  }

  private openSegment(start: bigint): OpenSegment {
    const c = this.current;
    if (c === null || c.seg.startTxid !== start) throw new StorageError(`journal ${this.dir}: segment ${start} is not the open one`, 'QUORATE_JOURNAL_STATE');
    return c;
  }

  private async append(start: bigint, first: bigint, records: Uint8Array[]): Promise<void> {
    const c = this.openSegment(start);
    const buf = Buffer.concat(records.map((r, i) => encodeRecord(first + BigInt(i), Buffer.from(r))));
    const t0 = performance.now();
    const fd = c.fh.fd;
    let synced = t0;
    const inline = fd !== undefined && this.inline.canInline(records.length, buf.length);
    if (inline) {
      this.inline.inline(() => {
        for (let done = 0; done < buf.length;) done += writeSync(fd!, buf, done, buf.length - done, c.pos + done);
        synced = performance.now();
        fdatasyncSync(fd!);
      });
    } else {
      await writeFully(c.fh, buf, c.pos);
      synced = performance.now();
      await c.fh.datasync();
      this.inline.note(performance.now() - t0);
    }
    const t1 = performance.now();
    if (journalSyncChannel.hasSubscribers) {
      const now = process.hrtime.bigint();
      const ns = (ms: number) => now - BigInt(Math.round((t1 - ms) * 1e6));
      journalSyncChannel.publish({ firstTxid: first, lastTxid: first + BigInt(records.length) - 1n, startNs: ns(t0), writtenNs: ns(synced), syncedNs: ns(t1), inline });
    }
    this.onSynced?.((t1 - synced) / 1000);
    this.noteRecordAt(start, first, c.pos);
    c.pos += buf.length;
    c.seg.endTxid = first + BigInt(records.length) - 1n;
  }

  /** Indexes the record `txid` at `pos` when the last entry is INDEX_STEP_BYTES or more before it (and always the first). */
  private noteRecordAt(start: bigint, txid: bigint, pos: number): void {
    let index = this.indexes.get(start);
    if (index === undefined) { index = []; this.indexes.set(start, index); }
    const last = index[index.length - 1];
    if (last === undefined || (pos - last.pos >= INDEX_STEP_BYTES && txid > last.txid)) index.push({ txid, pos });
  }

  /** Where to start reading segment `start` for txid `from`: a record at or before it, or the header. */
  private readStart(start: bigint, from: bigint): number {
    const index = this.indexes.get(start);
    let pos = LOG_HEADER_BYTES;
    if (index === undefined) return pos;
    let lo = 0;
    let hi = index.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (index[mid].txid <= from) { pos = index[mid].pos; lo = mid + 1; } else hi = mid - 1;
    }
    return pos;
  }

  private async finalize(start: bigint, end: bigint): Promise<void> {
    const c = this.openSegment(start);
    await c.fh.datasync();
    await c.fh.close();
    this.current = null;
    await rename(join(this.dir, inProgressName(start)), join(this.dir, finalizedName(start, end)));
    await fsyncDir(this.dir);
    c.seg.inProgress = false;
    c.seg.endTxid = end;
  }

  private async truncate(start: bigint, end: bigint): Promise<void> {
    const c = this.openSegment(start);
    const w = new FileWindow(c.fh, c.pos);
    let pos = LOG_HEADER_BYTES;
    for (;;) {
      const step = await readRecordAt(w, pos);
      if (step.kind !== 'record' || step.zxid > end) break;
      pos = step.next;
    }
    await c.fh.truncate(pos);
    await c.fh.datasync();
    const index = this.indexes.get(start);
    if (index !== undefined) while (index.length > 0 && index[index.length - 1].pos >= pos) index.pop();
    c.pos = pos;
    c.seg.endTxid = end;
  }

  private async writeAccepted(segment: SegmentState, epoch: number): Promise<void> {
    await writeSmallFile(this.dir, 'accepted-recovery', JSON.stringify({ start: segment.startTxid.toString(), end: segment.endTxid.toString(), inProgress: segment.inProgress, epoch }) + '\n');
  }

  private async purge(start: bigint, end: bigint): Promise<void> {
    const i = this.segments.findIndex((s) => s.startTxid === start && !s.inProgress);
    if (i < 0) throw new StorageError(`journal ${this.dir}: no finalized segment ${start} to purge`, 'QUORATE_JOURNAL_STATE');
    this.segments.splice(i, 1);
    this.indexes.delete(start);
    await unlink(join(this.dir, finalizedName(start, end)));
    await fsyncDir(this.dir);
  }

  /**
   * Edits with fromTxid <= txid <= toTxid, in order, read from the segment files; stops at a gap
   * (a segment copied from a peer after txids this node never had) so readers get contiguous edits.
   */
  async *read(fromTxid: bigint, toTxid: bigint): AsyncGenerator<{ txid: bigint; payload: Buffer }> {
    let expect = fromTxid;
    for (const seg of [...this.segments]) {
      if (seg.endTxid < fromTxid || seg.startTxid > toTxid) continue;
      if (seg.startTxid > expect) return;
      expect = seg.endTxid + 1n;
      const path = join(this.dir, seg.inProgress ? inProgressName(seg.startTxid) : finalizedName(seg.startTxid, seg.endTxid));
      const fh = await open(path, 'r');
      try {
        const size = (await fh.stat()).size;
        const w = new FileWindow(fh, size);
        for (let pos = this.readStart(seg.startTxid, fromTxid); pos < size;) {
          const step = await readRecordAt(w, pos);
          if (step.kind !== 'record' || step.zxid > seg.endTxid) break;
          pos = step.next;
          if (step.zxid > toTxid) return;
          if (step.zxid >= fromTxid) yield { txid: step.zxid, payload: step.payload };
        }
      } finally {
        await fh.close();
      }
    }
  }

  async close(): Promise<void> {
    while (this.committedWrite !== null) await this.committedWrite;
    await this.current?.fh.close();
    this.current = null;
  }
}

/** What `format` leaves in a journal's directory: a journal without it is not formatted. */
export interface JournalMeta { format: 1; cluster: string; journal: string; node: number; formattedAt: string }
const META_FILE = 'journal.json';

export async function readJournalMeta(dir: string): Promise<JournalMeta | null> {
  const text = await readTextIfExists(join(dir, META_FILE));
  if (text === null) return null;
  try {
    const m = JSON.parse(text) as JournalMeta;
    if (m.format !== 1 || typeof m.journal !== 'string' || typeof m.cluster !== 'string') throw new Error('fields');
    return m;
  } catch {
    throw new StorageError(`${join(dir, META_FILE)} is not a journal meta file (format 1)`, 'QUORATE_JOURNAL_FILE');
  }
}

/** Whether the directory holds any journal state (a promise or a segment). */
export async function journalDirHasData(dir: string): Promise<boolean> {
  let files: string[];
  try { files = await readdir(dir); } catch { return false; }
  return files.some((f) => NAME_RE.test(f) || f === 'promised-epoch' || f === 'writer-epoch');
}

/** Makes `dir` an empty, formatted journal; with `force`, whatever it held first goes. */
export async function formatJournalDir(dir: string, meta: JournalMeta, force: boolean): Promise<void> {
  if (force) await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await writeSmallFile(dir, META_FILE, JSON.stringify(meta) + '\n');
  await fsyncDir(join(dir, '..'));
}
