// bench journal --breakdown: where a batch-1 acknowledgement's time goes.
// The writer's side comes from undici's diagnostics channels in this process,
// each node's side from the trace its preloaded subscriber
// (journal-trace-preload) wrote; all stamps are process.hrtime.bigint(), one
// monotonic clock for every process on the host. Stages are given for the node
// whose answer made the majority (the 2nd of 3) and for every node.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fs from 'node:fs';
import { round3, summarize } from './stats.js';

interface ClientStamps { port: number; first: bigint; createNs: bigint; sendNs?: bigint; bodySentNs?: bigint; headersNs?: bigint; doneNs?: bigint }
interface BatchTrace { node: number; firstTxid: string; receivedNs: string; bodyNs: string; turnNs: string; repliedNs: string }
interface SyncTrace { firstTxid: string; lastTxid: string; startNs: string; writtenNs: string; syncedNs: string; inline: boolean }
export interface AppendStamps { first: bigint; startNs: bigint; ackNs: bigint }

const FIRST_RE = /\/journal\?(?:.*&)?first=(\d+)/;

/** Records the writer's batch requests as undici sees them, until stop(). */
export function traceClient(): { requests: ClientStamps[]; stop(): void } {
  const byRequest = new WeakMap<object, ClientStamps>();
  const requests: ClientStamps[] = [];
  const on = {
    'undici:request:create': (m: unknown) => {
      const { request } = m as { request: { origin: string; path: string } };
      const f = FIRST_RE.exec(request.path);
      if (f === null) return;
      const s: ClientStamps = { port: Number(new URL(request.origin).port), first: BigInt(f[1]), createNs: process.hrtime.bigint() };
      byRequest.set(request, s);
      requests.push(s);
    },
    'undici:client:sendHeaders': (m: unknown) => { const s = byRequest.get((m as { request: object }).request); if (s) s.sendNs = process.hrtime.bigint(); },
    'undici:request:bodySent': (m: unknown) => { const s = byRequest.get((m as { request: object }).request); if (s) s.bodySentNs = process.hrtime.bigint(); },
    'undici:request:headers': (m: unknown) => { const s = byRequest.get((m as { request: object }).request); if (s) s.headersNs = process.hrtime.bigint(); },
    'undici:request:trailers': (m: unknown) => { const s = byRequest.get((m as { request: object }).request); if (s) s.doneNs = process.hrtime.bigint(); },
  };
  for (const [name, fn] of Object.entries(on)) subscribe(name, fn);
  return { requests, stop: () => { for (const [name, fn] of Object.entries(on)) unsubscribe(name, fn); } };
}

const STAGES = [
  ['writer: append() to undici request', 'startNs', 'createNs'],
  ['writer: undici queue to headers written', 'createNs', 'sendNs'],
  ['writer: body written', 'sendNs', 'bodySentNs'],
  ['loopback in + node wake-up + HTTP parse', 'bodySentNs', 'receivedNs'],
  ['node: URL, query, body read', 'receivedNs', 'bodyNs'],
  ['node: decode, checksum, wait for the journal turn', 'bodyNs', 'turnNs'],
  ['node: rules + record encoding', 'turnNs', 'syncStartNs'],
  ['node: write()', 'syncStartNs', 'writtenNs'],
  ['node: fdatasync()', 'writtenNs', 'syncedNs'],
  ['node: to the answer written', 'syncedNs', 'repliedNs'],
  ['loopback out + writer wake-up to answer headers', 'repliedNs', 'headersNs'],
  ['writer: answer body read', 'headersNs', 'doneNs'],
  ['writer: majority answer to append() resolved', 'doneNs', 'ackNs'],
] as const;

type Row = Record<(typeof STAGES)[number][1 | 2], bigint | undefined>;

/** Lines up the appends, the writer's requests and the nodes' traces (trace files by node id). */
export function breakdown(appends: AppendStamps[], requests: ClientStamps[], portToNode: Map<number, number>, traceFiles: Map<number, string>) {
  const batches = new Map<string, BatchTrace>();
  const syncs = new Map<number, SyncTrace[]>();
  for (const [node, file] of traceFiles) {
    const list: SyncTrace[] = [];
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      const r = JSON.parse(line) as { kind: string } & BatchTrace & SyncTrace;
      if (r.kind === 'batch') batches.set(`${node}:${r.firstTxid}`, r);
      else list.push(r);
    }
    syncs.set(node, list);
  }
  const syncOf = (node: number, first: bigint) => syncs.get(node)?.find((s) => BigInt(s.firstTxid) <= first && first <= BigInt(s.lastTxid));
  const byKey = new Map<string, ClientStamps>();
  for (const r of requests) byKey.set(`${portToNode.get(r.port)}:${r.first}`, r);
  const majorityRows: Row[] = [];
  const allRows: Row[] = [];
  let unmatched = 0;
  for (const a of appends) {
    const rows: Row[] = [];
    for (const node of traceFiles.keys()) {
      const c = byKey.get(`${node}:${a.first}`);
      const b = batches.get(`${node}:${a.first}`);
      const s = syncOf(node, a.first);
      if (c === undefined || b === undefined || s === undefined || c.doneNs === undefined) continue;
      rows.push({
        startNs: a.startNs, createNs: c.createNs, sendNs: c.sendNs, bodySentNs: c.bodySentNs, receivedNs: BigInt(b.receivedNs), bodyNs: BigInt(b.bodyNs),
        turnNs: BigInt(b.turnNs), syncStartNs: BigInt(s.startNs), writtenNs: BigInt(s.writtenNs), syncedNs: BigInt(s.syncedNs), repliedNs: BigInt(b.repliedNs),
        headersNs: c.headersNs, doneNs: c.doneNs, ackNs: a.ackNs,
      });
    }
    const majority = Math.floor(traceFiles.size / 2);
    if (rows.length <= majority) { unmatched++; continue; }
    rows.sort((x, y) => (x.doneNs! < y.doneNs! ? -1 : x.doneNs! > y.doneNs! ? 1 : 0));
    majorityRows.push(rows[majority]);
    allRows.push(...rows);
  }
  const stageTable = (rows: Row[]) => STAGES.map(([what, from, to]) => {
    const ms = rows.flatMap((r) => (r[from] === undefined || r[to] === undefined ? [] : [Number(r[to]! - r[from]!) / 1e6]));
    const s = summarize(ms);
    return { stage: what, p50Ms: s.p50Ms, meanMs: s.meanMs, p99Ms: s.p99Ms };
  });
  const totals = summarize(appends.map((a) => Number(a.ackNs - a.startNs) / 1e6));
  const majorityTable = stageTable(majorityRows);
  return {
    what: 'batch-1 appends, one in flight; stages of the node whose answer completed the majority, then of every node (means add up to the mean total)',
    appends: appends.length,
    matched: majorityRows.length,
    unmatched,
    ackMs: totals,
    majorityNode: majorityTable,
    sumOfMeansMs: round3(majorityTable.reduce((t, r) => t + (Number.isFinite(r.meanMs) ? r.meanMs : 0), 0)),
    everyNode: stageTable(allRows).slice(0, -1),
  };
}
