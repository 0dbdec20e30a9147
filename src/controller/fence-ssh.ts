// The ssh fencing method: log in to the old active's host with a key (ssh2),
// run a command there (by default: kill whatever listens on the service's
// port), then stop the resources the target ran while active (its floating
// IP), and count it only once the port is verified closed. Unlike Hadoop's
// sshfence, which turns host key checking off, the server's host key must
// match a pinned known_hosts entry or SHA256 fingerprint: an unknown or
// changed key refuses the fence (a wrong host must never be "fenced" in the
// belief that the old active is gone). The private key is read at fencing
// time and never logged. ssh2 (about 13 MB resident once loaded) is loaded
// only by a controller configured to fence over ssh: its configuration check
// loads it at start (controller-config.ts), so a fence does not wait for it.
import type { FenceConfig, InstanceConfig } from '../config/controller-config.js';
import { verifyDown, type DownIo, type FenceOutcome } from './fencing.js';
import { shellQuote } from '../io/shell-quote.js';

export {
  checkHostKey, entryMatchesHost, hostKeyAlgorithmsFor, keyBlobType, knownHostsName, normalizeFingerprint, parseKnownHosts,
  pinFromKnownHosts, sshFingerprint, type HostKeyPin, type KnownHostEntry,
} from '../io/ssh-host-keys.js';

export type SshFenceConfig = Extract<FenceConfig, { kind: 'ssh' }>;

const OUTPUT_MAX = 8 * 1024;
/** The remote command's exit status when the fence worked but a resource did not stop. */
export const RESOURCE_STOP_FAILED = 70;

/**
 * Kills every process listening on TCP port $QUORATE_TARGET_PORT (ss from
 * iproute2, kill -9). Exit 0 when it killed them or nothing listens; non-zero
 * when it cannot see or kill them. Verification (the port closed) follows.
 */
export const DEFAULT_SSH_FENCE_COMMAND = [
  'P="$QUORATE_TARGET_PORT"',
  'command -v ss >/dev/null 2>&1 || { echo "ss (iproute2) is not installed" >&2; exit 127; }',
  'L=$(ss -Htlnp "sport = :$P") || exit $?',
  'if [ -z "$L" ]; then echo "nothing listens on port $P"; exit 0; fi',
  'PIDS=$(printf "%s\\n" "$L" | grep -o "pid=[0-9]*" | cut -d= -f2 | sort -u)',
  'if [ -z "$PIDS" ]; then echo "port $P is in use but its process is not visible to $(id -un)" >&2; exit 1; fi',
  'kill -9 $PIDS && echo "killed" $PIDS "(port $P)"',
].join('; ');

// ---- the command ------------------------------------------------------------------


/**
 * The command line sent to sshd: the target described in exported shell
 * variables (sshd usually refuses client environment variables), then the
 * command. Assumes a POSIX login shell for the user.
 */
export function remoteCommand(target: InstanceConfig, cfg: SshFenceConfig, token: string, service: string, resourceStops: readonly { name: string; command: string }[] = []): string {
  const env: [string, string][] = [
    ['QUORATE_TARGET_INSTANCE', target.id],
    ['QUORATE_TARGET_HOST', target.host],
    ['QUORATE_TARGET_PORT', target.servicePort === null ? '' : String(target.servicePort)],
    ['QUORATE_TARGET_ADMIN_PORT', String(target.adminPort)],
    ['QUORATE_FENCING_TOKEN', token],
    ['QUORATE_SERVICE', service],
  ];
  const fence = cfg.command ?? DEFAULT_SSH_FENCE_COMMAND;
  const exports = `export ${env.map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')}`;
  if (resourceStops.length === 0) return `${exports}; ${fence}`;
  // The fence command runs in a subshell (its own `exit` must not skip the resources); then each
  // resource the target ran while active is stopped there, in reverse order: its floating IP must
  // not stay up on a host that is no longer active.
  const stops = resourceStops.map((r) => `${r.command} || { echo ${shellQuote(`resource ${r.name} did not stop on ${target.host}`)} >&2; exit ${RESOURCE_STOP_FAILED}; }`);
  return `${exports}; ( ${fence} ) || exit $?; ${stops.join('; ')}; echo ${shellQuote(`stopped ${resourceStops.map((r) => r.name).join(', ')}`)}`;
}

function lastLine(s: string): string {
  return s.trim().split('\n').at(-1)?.slice(0, 200) ?? '';
}

// ---- fencing ------------------------------------------------------------------------

/**
 * Fence `target` over ssh: pinned host key, key authentication, the command's exit status 0,
 * then verifyDown (the service port closed, or the service back as standby). Never throws.
 * The timeout covers connecting, authenticating and the command; the connection is closed at it.
 */
export async function fenceBySsh(target: InstanceConfig, cfg: SshFenceConfig, token: string, service = '', resourceStops: readonly { name: string; command: string }[] = [], down?: DownIo): Promise<FenceOutcome> {
  const where = `${target.host}:${cfg.port}`;
  const who = `${cfg.user}@${where}`;
  const fail = (reason: string): FenceOutcome => ({ ok: false, reason: `ssh: ${reason}` });
  if (cfg.command === null && target.servicePort === null) {
    return fail(`no command configured and instance ${target.id} has no servicePort for the default one (kill what listens on it)`);
  }

  const command = remoteCommand(target, cfg, token, service, resourceStops);
  const { sshExec } = await import('../io/ssh-exec.js');
  const r = await sshExec(
    { host: target.host, port: cfg.port, user: cfg.user, keyFile: cfg.keyFile, knownHosts: cfg.knownHosts, fingerprint: cfg.fingerprint },
    command,
    { connectTimeoutMs: cfg.timeoutMs, totalTimeoutMs: cfg.timeoutMs, refusing: 'refusing to fence over ssh', outputBytesMax: OUTPUT_MAX },
  );
  let ran: FenceOutcome;
  if (!r.ok) ran = fail(r.reason);
  else {
    const out = lastLine(r.stderr) || lastLine(r.stdout);
    const stopped = resourceStops.length > 0 ? ` and stopped ${resourceStops.map((x) => x.name).join(', ')}` : '';
    if (r.code === 0) ran = { ok: true, detail: `ssh: ${who} ran the fence command${stopped} (exit 0${out ? `: ${out}` : ''}, ${r.ms} ms)` };
    else {
      const how = r.code !== null ? `exit ${r.code}` : r.signal !== null ? `killed by ${r.signal}` : 'no exit status';
      ran = fail(`the fence command on ${who} failed (${how}${out ? `: ${out}` : ''})`);
    }
  }
  if (!ran.ok) return ran;
  return verifyDown(target, ran.detail, down);
}
