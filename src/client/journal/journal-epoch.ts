// Taking and reading a journal's epoch on a majority of its nodes, without
// writing: the controller's journal fencing (an epoch promised by a majority
// fences every earlier writer) and its failsafe check; the writer's open
// formats a new journal the same way. Over node:http (the controller loads no
// undici); the simulator passes its own node clients.
import { JournalNodeClient, JournalNodeError, type JournalNodeAddress, type JournalTls } from './node-client.js';

export class JournalFencedError extends Error {
  readonly code = 'QUORATE_JOURNAL_FENCED';
}

/** What taking or reading an epoch asks of each journal node (a JournalNodeClient; the simulator's nodes). */
export type EpochNodeClient = Pick<JournalNodeClient, 'post' | 'newEpoch'> & { state(journal: string): Promise<{ promisedEpoch: number }> };

/** Formats `journal` on every node when no node has it (nothing can have been written); never over data. */
export async function formatIfNew(journal: string, clients: readonly EpochNodeClient[]): Promise<void> {
  const answers = await Promise.allSettled(clients.map((c) => c.state(journal)));
  const notFormatted = answers.filter((a) => a.status === 'rejected' && a.reason instanceof JournalNodeError && a.reason.status === 404).length;
  if (notFormatted !== answers.length) return;
  await Promise.all(clients.map((c) => c.post(journal, 'format', {})));
}

/** The newest epoch a majority of the journal's nodes answered with (any newer writer's epoch is among them). */
export async function promisedOnMajority(journal: string, clients: readonly EpochNodeClient[]): Promise<number> {
  const majority = Math.floor(clients.length / 2) + 1;
  const states = await Promise.allSettled(clients.map((c) => c.state(journal)));
  const ok = states.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (ok.length < majority) throw new JournalFencedError(`journal ${journal}: only ${ok.length} of ${clients.length} nodes answered (${reasons(states)})`);
  return Math.max(...ok.map((s) => s.promisedEpoch));
}

/** Reads the newest epoch promised on a majority of `journal`'s nodes, without taking one (the controller's failsafe check). */
export async function readPromisedEpoch(journal: string, nodes: readonly JournalNodeAddress[], timeoutMs: number, tls: JournalTls | null = null): Promise<number> {
  const clients = nodes.map((n) => new JournalNodeClient(n, timeoutMs, { tls }));
  try {
    return await promisedOnMajority(journal, clients);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/**
 * Takes a new epoch on a majority of the journal's nodes without writing: from then on every
 * earlier writer is fenced (the controller's journal fencing, before the service is promoted).
 */
export async function takeJournalEpoch(journal: string, nodes: readonly JournalNodeAddress[], timeoutMs: number, tls: JournalTls | null = null): Promise<number> {
  const clients = nodes.map((n) => new JournalNodeClient(n, timeoutMs, { tls }));
  const inFlight: Promise<unknown>[] = [];
  try {
    return await takeEpochOn(journal, clients, inFlight);
  } finally {
    // The clients go once every request has answered or timed out (timeoutMs bounds each).
    void Promise.allSettled(inFlight).then(() => Promise.all(clients.map((c) => c.close())));
  }
}

/** The values of `ps` that fulfilled: as soon as `enough` have, else once every one has settled. */
function fulfilledOfMajority<T>(ps: readonly Promise<T>[], enough: number): Promise<T[]> {
  return new Promise((resolve) => {
    const values: T[] = [];
    let settled = 0;
    const one = () => { if (++settled === ps.length || values.length >= enough) resolve(values.slice()); };
    for (const p of ps) p.then((v) => { values.push(v); one(); }, one);
  });
}

/**
 * takeJournalEpoch over given node clients (the daemon's and the simulator's): the newest epoch a
 * majority promised, plus one, granted by a majority. One round of state answers both questions: is
 * the journal new, and which epoch is next. A majority's answers are enough for the epoch (any
 * majority that promised one overlaps them); a slow node is not waited for, unless too few answered,
 * when the journal may be new: it is formatted only when every node says so. A majority's promise is
 * the fence: the slowest node finishes in the background (its request is put in `inFlight`).
 */
export async function takeEpochOn(journal: string, clients: readonly EpochNodeClient[], inFlight: Promise<unknown>[] = []): Promise<number> {
  const majority = Math.floor(clients.length / 2) + 1;
  const asked = clients.map((c) => c.state(journal));
  inFlight.push(...asked);
  let ok: { promisedEpoch: number }[] = await fulfilledOfMajority(asked, majority);
  if (ok.length < majority) {
    const states = await Promise.allSettled(asked);
    const notFormatted = states.filter((x) => x.status === 'rejected' && x.reason instanceof JournalNodeError && x.reason.status === 404).length;
    if (notFormatted !== states.length) throw new JournalFencedError(`journal ${journal}: only ${ok.length} of ${clients.length} nodes answered (${reasons(states)})`);
    await Promise.all(clients.map((c) => c.post(journal, 'format', {})));
    ok = await Promise.all(clients.map((c) => c.state(journal)));
  }
  const epoch = Math.max(...ok.map((x) => x.promisedEpoch)) + 1;
  const granted = clients.map((c) => c.newEpoch(journal, epoch));
  inFlight.push(...granted);
  const yes = (await fulfilledOfMajority(granted, majority)).length;
  if (yes < majority) throw new JournalFencedError(`journal ${journal}: epoch ${epoch} granted by ${yes} of ${clients.length} nodes (${reasons(await Promise.allSettled(granted))})`);
  return epoch;
}

function reasons(rs: PromiseSettledResult<unknown>[]): string {
  return rs.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : [])).join('; ') || 'no errors';
}
