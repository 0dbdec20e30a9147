// What travels between journal writers/readers and journal nodes, checked at
// the edge: journal names (they become directory names: no traversal, no
// surprises), and a batch of edits as a binary body (a count, then each edit
// with its length) with bounds on edits and bytes, and the checksum that
// makes a retried batch recognisable. Errors name what was wrong.
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

export function decodeBatch(body: Buffer): Buffer[] {
  if (body.length > JOURNAL_LIMITS.batch_bytes_max) throw new WireError(`batch of ${body.length} bytes (at most ${JOURNAL_LIMITS.batch_bytes_max})`);
  if (body.length < 4) throw new WireError(`batch body of ${body.length} bytes: too short for its count`);
  const n = body.readUInt32BE(0);
  if (n === 0) throw new WireError('an empty batch');
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
  return crc32(encodeBatch(edits)).toString(16).padStart(8, '0');
}
