// Where a batch's time goes on a journal node, published on
// node:diagnostics_channel only while something subscribes (bench journal
// --breakdown preloads a subscriber into each node): nothing is built or
// sent otherwise. Stamps are process.hrtime.bigint() (CLOCK_MONOTONIC, one
// clock for every process on the host), so a client and three nodes on one
// machine can be lined up.
import { channel } from 'node:diagnostics_channel';

/** One batch request on a node: received (headers parsed), body read, its journal's turn started, answered. */
export interface JournalBatchTrace {
  node: number;
  firstTxid: bigint;
  records: number;
  receivedNs: bigint;
  bodyNs: bigint;
  turnNs: bigint;
  repliedNs: bigint;
}

/** One write + fdatasync of a segment (pipelined batches taken together are one). */
export interface JournalSyncTrace {
  firstTxid: bigint;
  lastTxid: bigint;
  startNs: bigint;
  writtenNs: bigint;
  syncedNs: bigint;
  inline: boolean;
}

export const JOURNAL_TRACE_CHANNELS = { batch: 'quorate:journal:batch', sync: 'quorate:journal:sync' } as const;
export const journalBatchChannel = channel(JOURNAL_TRACE_CHANNELS.batch);
export const journalSyncChannel = channel(JOURNAL_TRACE_CHANNELS.sync);
