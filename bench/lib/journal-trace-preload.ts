// Preloaded into a journal node by `bench journal --breakdown`
// (node --import): keeps the node's batch and fsync trace records in memory
// and writes them, one JSON line each, to $QUORATE_JOURNAL_TRACE_FILE when
// the node exits. Nothing is written on the request path.
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { JOURNAL_TRACE_CHANNELS, type JournalBatchTrace, type JournalSyncTrace } from '../../src/io/journal-trace.js';

const RECORDS_MAX = 500_000;
const file = process.env.QUORATE_JOURNAL_TRACE_FILE;
if (file === undefined || file === '') throw new Error('journal-trace-preload: set QUORATE_JOURNAL_TRACE_FILE');
const records: { kind: string; r: JournalBatchTrace | JournalSyncTrace }[] = [];
// Kept as they come (the sync record is published before the node answers: no work here).
const keep = (kind: string) => (m: unknown) => { if (records.length < RECORDS_MAX) records.push({ kind, r: m as JournalBatchTrace | JournalSyncTrace }); };
subscribe(JOURNAL_TRACE_CHANNELS.batch, keep('batch'));
subscribe(JOURNAL_TRACE_CHANNELS.sync, keep('sync'));
process.on('exit', () => {
  const text = records.map(({ kind, r }) => JSON.stringify({ kind, ...r }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  writeFileSync(file, text.join('\n') + '\n');
});
