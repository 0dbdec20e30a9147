// `quorate cluster`: the whole cluster from one shell, as ZooKeeper users'
// zk.sh loops over hosts, but in order, in parallel where order allows, with
// an unreachable host reported and the rest carried on, and a rolling
// restart that waits for each process to rejoin before touching the next.
import { placeProcesses, sshTargetFor, type PlacedProcess, type ProcessKind, type SshTarget } from '../config/cluster-placement.js';
import type { ClusterFile } from '../config/cluster-file.js';
import { lastLine, localStatusCommand, processKey, REMOTE_START_WAIT_MS, runOnHost, verbCommand, type Verb } from './remote.js';

export type RowState = 'running' | 'stopped' | 'not-answering' | 'unreachable' | 'error';

export interface ProcessRow {
  host: string;
  kind: ProcessKind;
  id: string;
  state: RowState;
  pid: number | null;
  uptimeMs: number | null;
  /** quorum: leader/follower/observer/electing; controller: active/standby/...; journal: serving. */
  role: string | null;
  detail: string | null;
  facts: Record<string, string>;
}

export const CLUSTER_OP_LIMITS = {
  status_timeout_ms: 30_000,
  /** Per process in a batch: the remote start's own wait, plus node start-up and ssh. */
  per_process_timeout_ms: REMOTE_START_WAIT_MS + 15_000,
  rejoin_timeout_ms: 60_000,
  poll_interval_ms: 500,
} as const;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const KIND_ORDER: ProcessKind[] = ['quorum', 'journal', 'controller'];

export class ClusterOps {
  readonly processes: PlacedProcess[];
  private readonly targets = new Map<string, SshTarget>();

  constructor(readonly cluster: ClusterFile, readonly file: string, private readonly say: (line: string) => void) {
    this.processes = placeProcesses(cluster);
    for (const p of this.processes) if (!this.targets.has(p.host)) this.targets.set(p.host, sshTargetFor(cluster, p.host, file));
  }

  private label(p: PlacedProcess): string { return `${p.host} ${p.kind} ${p.id}`; }

  /** One row per process; a host that cannot be reached gives `unreachable` rows with the reason. */
  async status(only?: (p: PlacedProcess) => boolean): Promise<ProcessRow[]> {
    const procs = this.processes.filter(only ?? (() => true));
    const byHost = groupBy(procs, (p) => p.host);
    const rows = new Map<PlacedProcess, ProcessRow>();
    await Promise.all([...byHost].map(async ([host, list]) => {
      const t = this.targets.get(host)!;
      const r = await runOnHost(t, [localStatusCommand(list, t)], CLUSTER_OP_LIMITS.status_timeout_ms);
      const answers = r.ok ? localStatusAnswers(r.results[0].output) : new Map<string, Record<string, unknown>>();
      for (const p of list) {
        const base = { host, kind: p.kind, id: p.id, pid: null, uptimeMs: null, role: null, facts: {} };
        if (!r.ok) { rows.set(p, { ...base, state: 'unreachable', detail: r.reason }); continue; }
        rows.set(p, rowOf(base, answers.get(processKey(p)), r.results[0]));
      }
    }));
    return procs.map((p) => rows.get(p)!);
  }

  /**
   * Carries out `verb` on `procs`: hosts in parallel, one host's processes in the given order.
   * Says one line per process; returns how many failed.
   */
  private async act(verb: Verb, procs: PlacedProcess[]): Promise<number> {
    let failed = 0;
    await Promise.all([...groupBy(procs, (p) => p.host)].map(async ([host, list]) => {
      const t = this.targets.get(host)!;
      const r = await runOnHost(t, list.map((p) => verbCommand(p, verb, t)), list.length * CLUSTER_OP_LIMITS.per_process_timeout_ms);
      list.forEach((p, i) => {
        if (!r.ok) { failed++; this.say(`${this.label(p)}: FAILED: ${r.reason}`); return; }
        const { code, output } = r.results[i];
        if (code !== 0) failed++;
        const said = t.via === 'systemd' && verb !== 'stop' ? describeJson(output) : code === 0 ? lastLine(output) : output.split('\n').slice(0, 20).join('\n    ');
        this.say(`${this.label(p)}: ${code === 0 ? '' : `FAILED (exit ${code}): `}${said || (code === 0 ? 'done' : 'no output')}`);
      });
    }));
    return failed;
  }

  /** Quorum servers, then journal nodes, then controllers; each kind waits for the one before it. */
  async start(): Promise<number> {
    let failed = 0;
    for (const kind of KIND_ORDER) failed += await this.act('start', this.processes.filter((p) => p.kind === kind));
    return failed;
  }

  /** Controllers (the active ones last, so stopping does not fail the role over), then journal nodes, then quorum servers. */
  async stop(): Promise<number> {
    const controllers = this.processes.filter((p) => p.kind === 'controller');
    const rows = controllers.length === 0 ? [] : await this.status((p) => p.kind === 'controller');
    const active = new Set(rows.filter((r) => r.role === 'active').map((r) => r.id));
    let failed = await this.act('stop', controllers.filter((p) => !active.has(p.id)));
    failed += await this.act('stop', controllers.filter((p) => active.has(p.id)));
    failed += await this.act('stop', this.processes.filter((p) => p.kind === 'journal'));
    failed += await this.act('stop', this.processes.filter((p) => p.kind === 'quorum'));
    return failed;
  }

  async restart(): Promise<number> {
    const stopFailed = await this.stop();
    if (stopFailed > 0) this.say(`${stopFailed} process(es) did not stop cleanly; starting anyway`);
    return stopFailed + await this.start();
  }

  /**
   * One process at a time, the service kept up: quorum followers then the leader, each back
   * and caught up before the next; journal nodes one by one, each caught up with what the
   * others had; controllers of standbys, then the active's after a manual failover away from
   * it. Stops at the first step that does not come back, and says why.
   */
  async rollingRestart(): Promise<void> {
    const rows = await this.status();
    const down = rows.filter((r) => r.state !== 'running');
    if (down.length > 0) {
      throw new ClusterStepError(`a rolling restart needs every process running; not running: ${down.map((r) => `${r.host} ${r.kind} ${r.id} (${r.state}${r.detail ? `: ${r.detail}` : ''})`).join('; ')}`);
    }
    const rowOf = (p: PlacedProcess) => rows.find((r) => r.kind === p.kind && r.id === p.id)!;

    const quorum = this.processes.filter((p) => p.kind === 'quorum');
    const leaders = quorum.filter((p) => ['leader', 'standalone'].includes(rowOf(p).role ?? ''));
    for (const p of [...quorum.filter((x) => !leaders.includes(x)), ...leaders]) {
      const before = await this.status((x) => x.kind === 'quorum');
      const zxids = before.map((r) => BigInt(r.facts.zxid ?? '0'));
      const target = zxids.reduce((a, b) => (b > a ? b : a), 0n);
      await this.restartOne(p, rowOf(p).role ?? '-');
      await this.waitFor(p, 'rejoined the quorum and caught up', async () => {
        const all = await this.status((x) => x.kind === 'quorum');
        const me = all.find((r) => r.id === p.id)!;
        const hasLeader = all.some((r) => r.state === 'running' && ['leader', 'standalone'].includes(r.role ?? ''));
        const ok = me.state === 'running' && ['leader', 'follower', 'observer', 'standalone'].includes(me.role ?? '') && hasLeader &&
          BigInt(me.facts.zxid ?? '0') >= target;
        return { ok, why: `${me.state}, role ${me.role ?? '-'}, zxid ${me.facts.zxid ?? '-'} (waiting for 0x${target.toString(16)}), ${hasLeader ? 'a leader exists' : 'no leader'}` };
      });
    }

    const journals = this.processes.filter((p) => p.kind === 'journal');
    for (const p of journals) {
      const others = (await this.status((x) => x.kind === 'journal')).filter((r) => r.id !== p.id);
      const need = new Map<string, bigint>();
      for (const r of others) {
        for (const [k, v] of Object.entries(r.facts)) {
          const journal = k.startsWith('committed:') ? k.slice('committed:'.length) : null;
          if (journal !== null && BigInt(v) > (need.get(journal) ?? 0n)) need.set(journal, BigInt(v));
        }
      }
      await this.restartOne(p, 'journal node');
      await this.waitFor(p, 'caught up with the other journal nodes', async () => {
        const [me] = await this.status((x) => x.kind === 'journal' && x.id === p.id);
        const behind = [...need].filter(([j, txid]) => BigInt(me.facts[`last:${j}`] ?? '0') < txid).map(([j, txid]) => `${j} at ${me.facts[`last:${j}`] ?? 'nothing'} of ${txid}`);
        return { ok: me.state === 'running' && behind.length === 0, why: me.state !== 'running' ? `${me.state}: ${me.detail ?? ''}` : `behind: ${behind.join(', ')}` };
      });
    }

    for (const svc of this.cluster.services ?? []) {
      const controllers = this.processes.filter((p) => p.kind === 'controller' && p.service === svc.name);
      const now = await this.status((x) => controllers.includes(x));
      const activeRow = now.find((r) => r.role === 'active');
      const standbys = controllers.filter((p) => p.id !== activeRow?.id);
      for (const p of standbys) {
        await this.restartOne(p, now.find((r) => r.id === p.id)?.role ?? '-');
        await this.waitForController(p, (role) => role !== 'starting' && role !== 'unknown');
      }
      if (activeRow === undefined) continue;
      const active = controllers.find((p) => p.id === activeRow.id)!;
      const healthy = (await this.status((x) => standbys.includes(x))).filter((r) => r.state === 'running' && r.facts.health === 'healthy');
      if (healthy.length > 0) {
        const to = standbys.find((p) => p.id === healthy[0].id)!;
        this.say(`${svc.name}: manual failover from ${active.instance} to ${to.instance} before restarting the active's controller`);
        const t = this.targets.get(to.host)!;
        const r = await runOnHost(t, [`${t.command} failover --config '${t.configPath.replace(/'/g, `'\\''`)}' --service '${svc.name}' --to '${to.instance}'`], 60_000);
        if (!r.ok) throw new ClusterStepError(`${svc.name}: the failover to ${to.instance} failed: ${r.reason}`);
        if (r.results[0].code !== 0) throw new ClusterStepError(`${svc.name}: the failover to ${to.instance} failed: ${lastLine(r.results[0].output)}`);
        this.say(`${svc.name}: ${lastLine(r.results[0].output)}`);
      } else {
        this.say(`${svc.name}: no healthy standby to fail over to: restarting the active's controller in place (the service will fail over or come back)`);
      }
      await this.restartOne(active, 'the active\'s controller');
      await this.waitForController(active, (role) => role !== 'starting' && role !== 'unknown');
    }
  }

  private async restartOne(p: PlacedProcess, what: string): Promise<void> {
    const t0 = Date.now();
    const failed = await this.act('restart', [p]);
    if (failed > 0) throw new ClusterStepError(`${this.label(p)} (${what}) did not restart: stopping the rolling restart here`);
    this.say(`${this.label(p)}: restarted in ${Date.now() - t0} ms`);
  }

  private async waitForController(p: PlacedProcess, good: (role: string) => boolean): Promise<void> {
    await this.waitFor(p, 'back and answering', async () => {
      const [me] = await this.status((x) => x === p);
      return { ok: me.state === 'running' && good(me.role ?? 'unknown'), why: `${me.state}, role ${me.role ?? '-'}` };
    });
  }

  private async waitFor(p: PlacedProcess, what: string, check: () => Promise<{ ok: boolean; why: string }>): Promise<void> {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < CLUSTER_OP_LIMITS.rejoin_timeout_ms) {
      const r = await check();
      if (r.ok) { this.say(`${this.label(p)}: ${what} after ${Date.now() - t0} ms`); return; }
      last = r.why;
      await sleep(CLUSTER_OP_LIMITS.poll_interval_ms);
    }
    throw new ClusterStepError(`${this.label(p)} has not ${what} within ${CLUSTER_OP_LIMITS.rejoin_timeout_ms} ms (${last}): stopping the rolling restart here`);
  }
}

export class ClusterStepError extends Error {
  readonly code = 'QUORATE_CLUSTER_STEP';
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) m.set(key(it), [...(m.get(key(it)) ?? []), it]);
  return m;
}

/** local-status's JSON lines by the process they answer for (other lines, a shell's or a profile's, are skipped). */
function localStatusAnswers(output: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (typeof j.process === 'string') out.set(j.process, j);
    } catch { /* not ours */ }
  }
  return out;
}

function rowOf(base: Omit<ProcessRow, 'state' | 'detail'>, j: Record<string, unknown> | undefined, ran: { code: number; output: string }): ProcessRow {
  if (j !== undefined && (j.state === 'running' || j.state === 'stopped' || j.state === 'not-answering')) {
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    const num = (v: unknown) => (typeof v === 'number' ? v : null);
    const facts = typeof j.facts === 'object' && j.facts !== null ? (j.facts as Record<string, string>) : {};
    return { ...base, state: j.state, pid: num(j.pid), uptimeMs: num(j.uptimeMs), role: str(j.role), detail: str(j.detail), facts };
  }
  if (j !== undefined && typeof j.error === 'string') return { ...base, state: 'error', detail: j.error };
  return { ...base, state: 'error', detail: `status exited ${ran.code}: ${lastLine(ran.output) || 'no output'}` };
}

function describeJson(output: string): string {
  const line = output.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) return lastLine(output);
  try {
    const j = JSON.parse(line) as { state: string; pid: number | null; role: string | null };
    return `${j.state} (pid ${j.pid ?? '-'}, role ${j.role ?? '-'})`;
  } catch { return lastLine(output); }
}
