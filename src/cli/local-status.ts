// `quorate cluster local-status`: the status of several of the cluster file's
// processes on this host, asked in one process. `quorate cluster` runs it on
// every host at every poll (a rolling restart polls dozens of times): one
// `quorate quorum|journal|controller status` per process cost each its own
// Node start-up and configuration parse, one after another on the host.
import { InvalidArgumentError } from 'commander';
import { daemonStatus } from '../daemon/daemon-control.js';
import { parseServerId } from './daemon-verbs.js';
import { UsageError } from './errors.js';
import { controllerProcess, journalProcess, quorumProcess } from './process-specs.js';

type Named = { key: string; kind: 'quorum' | 'journal'; id: number } | { key: string; kind: 'controller'; service: string; instance: string };

const KEY_FORMS = 'quorum:ID, journal:ID or controller:SERVICE:INSTANCE';

/** `quorum:1`, `journal:2`, `controller:orders:a` (see processKey in src/cluster/remote.ts). */
export function parseProcessName(key: string): Named {
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const rest = key.slice(colon + 1);
  if (colon > 0 && (kind === 'quorum' || kind === 'journal')) {
    try { return { key, kind, id: parseServerId(rest) }; } catch (e) {
      if (e instanceof InvalidArgumentError) throw new UsageError(`"${key}": ${e.message}`);
      throw e;
    }
  }
  const at = rest.lastIndexOf(':');
  if (colon > 0 && kind === 'controller' && at > 0 && at < rest.length - 1) return { key, kind, service: rest.slice(0, at), instance: rest.slice(at + 1) };
  throw new UsageError(`"${key}": expected ${KEY_FORMS}`);
}

/**
 * Prints one JSON line per process, in the order asked: `process` (the name asked) and what
 * `quorate <kind> status --json` prints, or `process` and `error` when the cluster file does not
 * give that process. Exit 0 when every one runs and answers, 1 otherwise.
 */
export async function localStatus(config: string, keys: string[]): Promise<number> {
  const named = keys.map(parseProcessName);
  const lines = await Promise.all(named.map(async (n) => {
    try {
      const { spec, runDir } = n.kind === 'controller' ? controllerProcess({ config, service: n.service, id: n.instance })
        : n.kind === 'quorum' ? quorumProcess({ config, id: n.id }) : journalProcess({ config, id: n.id });
      const s = await daemonStatus(spec, runDir);
      return { running: s.state === 'running', line: { process: n.key, ...s, label: spec.label } };
    } catch (e) {
      return { running: false, line: { process: n.key, error: (e as Error).message } };
    }
  }));
  for (const l of lines) process.stdout.write(`${JSON.stringify(l.line)}\n`);
  return lines.every((l) => l.running) ? 0 : 1;
}
