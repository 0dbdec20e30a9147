// What travels between journal writers/readers and journal nodes, checked at
// the edge: journal names (they become directory names: no traversal, no
// surprises), and a batch of edits as a binary body (a count, then each edit
// with its length) with bounds on edits and bytes, and the checksum that
// makes a retried batch recognisable. Errors name what was wrong.
import { z } from 'zod';
import { crc32 } from '../io/storage-format.js';

export const JOURNAL_LIMITS = {
  /** Bytes of one batch body. */
  batch_bytes_max: 16 * 1024 * 1024,
  /** Edits in one batch. */
  batch_edits_max: 100_000,
  /** Bytes of one edit. */
  edit_bytes_max: 4 * 1024 * 1024,
  journal_name_chars_max: 64,
} as const;

export class WireError extends Error {}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A journal's name: letters, digits, `_`, `.`, `-`, starting with a letter or digit, at most 64 chars, no `..`. */
export function journalNameProblem(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a journal name is empty';
  if (name.length > JOURNAL_LIMITS.journal_name_chars_max) return `journal name of ${name.length} characters (at most ${JOURNAL_LIMITS.journal_name_chars_max})`;
  if (!NAME_RE.test(name)) return `journal name ${JSON.stringify(name)}: use letters, digits, "_", "." and "-", starting with a letter or digit`;
  if (name.includes('..')) return `journal name ${JSON.stringify(name)} contains ".."`;
  return null;
}

/** The body of a batch: u32 count, then per edit u32 length and its bytes. */
export function encodeBatch(edits: readonly Uint8Array[]): Buffer {
  let bytes = 4;
  for (const e of edits) bytes += 4 + e.length;
  const out = Buffer.alloc(bytes);
  out.writeUInt32BE(edits.length, 0);
  let at = 4;
  for (const e of edits) {
    out.writeUInt32BE(e.length, at);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

/** `allowEmpty`: an answer to a read may hold no edits; a batch to write may not. */
export function decodeBatch(body: Buffer, allowEmpty = false): Buffer[] {
  if (body.length > JOURNAL_LIMITS.batch_bytes_max) throw new WireError(`batch of ${body.length} bytes (at most ${JOURNAL_LIMITS.batch_bytes_max})`);
  if (body.length < 4) throw new WireError(`batch body of ${body.length} bytes: too short for its count`);
  const n = body.readUInt32BE(0);
  if (n === 0 && !allowEmpty) throw new WireError('an empty batch');
  if (n > JOURNAL_LIMITS.batch_edits_max) throw new WireError(`batch of ${n} edits (at most ${JOURNAL_LIMITS.batch_edits_max})`);
  const edits: Buffer[] = [];
  let at = 4;
  for (let i = 0; i < n; i++) {
    if (at + 4 > body.length) throw new WireError(`batch body ends inside edit ${i}'s length`);
    const len = body.readUInt32BE(at);
    if (len > JOURNAL_LIMITS.edit_bytes_max) throw new WireError(`edit ${i} of ${len} bytes (at most ${JOURNAL_LIMITS.edit_bytes_max})`);
    if (at + 4 + len > body.length) throw new WireError(`batch body ends inside edit ${i} (${len} bytes)`);
    edits.push(body.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== body.length) throw new WireError(`${body.length - at} bytes after the last edit`);
  return edits;
}

/** The batch's checksum (CRC32 of its body, hex): with the epoch and first txid, what makes a retry recognisable. */
export function batchChecksum(edits: readonly Uint8Array[]): string {
  return checksumOfBody(encodeBatch(edits));
}

/** The same checksum, of a batch already encoded (the body as sent). */
export function checksumOfBody(body: Uint8Array): string {
  return crc32(body).toString(16).padStart(8, '0');
}

// ---- the HTTP API's paths and JSON bodies (both ends validate with these) ----

/** `/v1/journals/<name>/<operation>`; GET `/v1/journals/<name>` is its state. */
export const JOURNAL_API_PREFIX = '/v1/journals';
export const JSON_BODY_BYTES_MAX = 64 * 1024;

const epoch = z.number({ error: 'expected an epoch (a whole number)' }).int({ error: 'expected an epoch (a whole number)' }).min(0, { error: 'expected an epoch >= 0' }).max(Number.MAX_SAFE_INTEGER, { error: 'expected an epoch below 2^53' });
/** Transaction ids travel as decimal strings (JSON numbers lose precision past 2^53). */
const txid = z.string({ error: 'expected a txid as a decimal string' }).regex(/^\d{1,19}$/, { error: 'expected a txid as a decimal string' }).transform((s) => BigInt(s));
const nodeId = z.number({ error: 'expected a node id' }).int({ error: 'expected a node id' }).min(1).max(255);
const segmentState = z.strictObject({ start: txid, end: txid, inProgress: z.boolean(), writerEpoch: epoch.optional() });
const journalSegment = z.strictObject({ start: txid, end: txid, inProgress: z.boolean(), writerEpoch: epoch });

export const JournalBodies = {
  format: z.strictObject({ force: z.boolean({ error: 'expected true or false' }).optional() }),
  'new-epoch': z.strictObject({ epoch }),
  'start-segment': z.strictObject({ epoch, txid }),
  'finalize-segment': z.strictObject({ epoch, start: txid, end: txid }),
  'prepare-recovery': z.strictObject({ epoch, segment: txid }),
  'accept-recovery': z.strictObject({ epoch, segment: segmentState, fromNode: nodeId }),
  commit: z.strictObject({ epoch, committed: txid }),
  purge: z.strictObject({ epoch, before: txid }),
} as const;
export type JournalPostOp = keyof typeof JournalBodies;

/** The query of POST .../journal (the body is the batch). */
export const JournalBatchQuery = z.strictObject({
  epoch: z.string().regex(/^\d{1,16}$/, { error: 'expected an epoch' }).transform(Number).pipe(epoch),
  segment: txid,
  first: txid,
  committed: txid,
  checksum: z.string().regex(/^[0-9a-f]{8}$/, { error: 'expected 8 hex digits' }),
});

/** GET .../edits (committed edits, for readers) and GET .../segment-edits (any, for peers). */
export const EditsQuery = z.strictObject({
  from: txid,
  max: z.string().regex(/^\d{1,7}$/, { error: 'expected a count' }).transform(Number).optional(),
  wait: z.string().regex(/^\d{1,6}$/, { error: 'expected milliseconds' }).transform(Number).optional(),
});
export const SegmentEditsQuery = z.strictObject({ start: txid, from: txid, to: txid, max: EditsQuery.shape.max });

export const JournalStateAnswer = z.object({
  journal: z.string(),
  node: nodeId,
  promisedEpoch: epoch,
  lastWriterEpoch: epoch,
  committedTxid: txid,
  firstTxid: txid.nullable(),
  lastSegment: journalSegment.nullable(),
});
export const ManifestAnswer = JournalStateAnswer.extend({ segments: z.array(journalSegment) });
export const NewEpochAnswer = z.object({ lastSegmentTxid: txid.nullable() });
export const PrepareRecoveryAnswerBody = z.object({ segment: segmentState.nullable(), acceptedInEpoch: epoch.nullable(), lastWriterEpoch: epoch, committedTxid: txid });
export const ErrorAnswer = z.object({ error: z.string(), status: z.number() });

/** Response headers of the edits endpoints. */
export const EDITS_HEADERS = { first: 'x-first-txid', committed: 'x-committed-txid', writerEpoch: 'x-writer-epoch' } as const;

/** A segment as the JSON bodies write it. */
export function segmentToJson(s: { startTxid: bigint; endTxid: bigint; inProgress: boolean; writerEpoch?: number }): Record<string, unknown> {
  const o: Record<string, unknown> = { start: String(s.startTxid), end: String(s.endTxid), inProgress: s.inProgress };
  if (s.writerEpoch !== undefined) o.writerEpoch = s.writerEpoch;
  return o;
}
export function segmentFromJson<T extends { start: bigint; end: bigint; inProgress: boolean; writerEpoch?: number }>(s: T): { startTxid: bigint; endTxid: bigint; inProgress: boolean; writerEpoch: T['writerEpoch'] } {
  return { startTxid: s.start, endTxid: s.end, inProgress: s.inProgress, writerEpoch: s.writerEpoch };
}

/** JSON with bigints written as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/** A zod failure as one line naming the field. */
export function describeZodError(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${(i as { keys: string[] }).keys.join(', ')}` : i.message}`).join('; ');
}
