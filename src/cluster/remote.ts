// Running the installed `quorate` on the cluster's hosts over ssh: one
// connection per host and batch of commands, each command's output and exit
// status told apart, and the per-process verbs (start, stop, restart)
// spelled as the host's own `quorate` or its systemd units expect; a host's
// processes' status is asked in one `quorate cluster local-status`.
import type { PlacedProcess, SshTarget } from '../config/cluster-placement.js';
import { shellQuote as q } from '../io/shell-quote.js';
import type { SshFailureCause } from '../io/ssh-exec.js';

export type Verb = 'start' | 'stop' | 'restart';

/** How long `start` waits on a host for one process to answer (`--wait-ms`). */
export const REMOTE_START_WAIT_MS = 30_000;
const EXIT_MARK = '@@quorate-exit';

export interface CommandResult { code: number; output: string }
export type HostResult = { ok: true; results: CommandResult[] } | { ok: false; cause: SshFailureCause; reason: string };

/** `quorum VERB --config F --id 1`, `controller VERB --config F --service S --id a`. */
function processArgs(p: PlacedProcess, verb: string, t: SshTarget): string {
  const who = p.kind === 'controller' ? `--service ${q(p.service!)} --id ${q(p.instance!)}` : `--id ${q(p.id)}`;
  return `${t.command} ${p.kind} ${verb} --config ${q(t.configPath)} ${who}`;
}

export function unitName(p: PlacedProcess): string {
  return `quorate-${p.kind}@${p.kind === 'controller' ? `${p.service}:${p.instance}` : p.id}.service`;
}

/**
 * How `quorate cluster local-status` names a process on its command line and in its answer:
 * `quorum:1`, `journal:2`, `controller:orders:a` (a controller's id is service:instance).
 */
export function processKey(p: PlacedProcess): string {
  return `${p.kind}:${p.id}`;
}

/** One command for the status of every process in `procs` (all on `t`'s host): one JSON line each. */
export function localStatusCommand(procs: PlacedProcess[], t: SshTarget): string {
  return `${t.command} cluster local-status --config ${q(t.configPath)} ${procs.map((p) => q(processKey(p))).join(' ')}`;
}

/** The shell command that carries out `verb` for `p` on its host. `t.command` is used as written (it may be `sudo -u quorate quorate`). */
export function verbCommand(p: PlacedProcess, verb: Verb, t: SshTarget): string {
  const waitForIt = `${processArgs(p, 'status', t)} --json --wait-ms ${REMOTE_START_WAIT_MS}`;
  if (t.via === 'systemd') {
    const unit = q(unitName(p));
    switch (verb) {
      case 'start': return `systemctl start ${unit} && ${waitForIt}`;
      case 'stop': return `systemctl stop ${unit}`;
      case 'restart': return `systemctl restart ${unit} && ${waitForIt}`;
    }
  }
  switch (verb) {
    case 'start': return `${processArgs(p, 'start', t)} --daemon --wait-ms ${REMOTE_START_WAIT_MS}`;
    case 'stop': return processArgs(p, 'stop', t);
    case 'restart': return `${processArgs(p, 'stop', t)} && ${processArgs(p, 'start', t)} --daemon --wait-ms ${REMOTE_START_WAIT_MS}`;
  }
}

/** Runs `commands` one after another on the host over one ssh connection; each one's exit status and output (stderr folded in). */
export async function runOnHost(t: SshTarget, commands: string[], totalTimeoutMs: number): Promise<HostResult> {
  const script = commands.map((c) => `{ ${c} ; } 2>&1 </dev/null; printf '\\n${EXIT_MARK} %d\\n' $?`).join('; ');
  // Loaded here: `quorate cluster local-status`, run on every host at every poll, needs no ssh2.
  const { sshExec } = await import('../io/ssh-exec.js');
  const r = await sshExec(
    { host: t.address, port: t.port, user: t.user, keyFile: t.keyFile, knownHosts: t.knownHosts, fingerprint: t.fingerprint },
    script,
    { connectTimeoutMs: t.connectTimeoutMs, totalTimeoutMs, refusing: 'refusing to connect', outputBytesMax: 1024 * 1024 },
  );
  if (!r.ok) return { ok: false, cause: r.cause, reason: `host ${t.host}: ${r.reason}` };
  const results: CommandResult[] = [];
  let buf: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = new RegExp(`^${EXIT_MARK} (\\d+)$`).exec(line);
    if (m) { results.push({ code: Number(m[1]), output: buf.join('\n').trim() }); buf = []; } else buf.push(line);
  }
  if (results.length < commands.length) {
    const said = (r.stderr.trim() || buf.join('\n').trim()).split('\n').slice(-3).join(' / ');
    return { ok: false, cause: 'exec', reason: `host ${t.host}: the remote shell ran ${results.length} of ${commands.length} commands (exit ${r.code ?? r.signal})${said ? `: ${said}` : ''}` };
  }
  return { ok: true, results };
}

/** The last line of a command's output, for a one-line report. */
export function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim() !== '').at(-1)?.slice(0, 300) ?? '';
}
