// What one daemon on one host is, for starting it in the background,
// stopping it and asking after it: its name (pid and log file), the argv
// that runs it in the foreground, and how to tell it answers and what role it
// plays (quorum: srvr's mode; journal: /v1/health; controller: its admin API).
import path from 'node:path';
import { fourLetterWord } from '../client/four-letter-word.js';
import { JournalNodeClient } from '../client/journal/node-client.js';
import type { JournalNodeConfig } from '../config/cluster-file.js';
import type { ControllerConfig } from '../config/controller-config.js';
import type { QuorumServerConfig } from '../config/quorum-config.js';
import { adminRequest } from '../controller/admin-client.js';
import { CONTROLLER_NODE_FLAGS } from './controller-flags.js';

export type DaemonKind = 'quorum' | 'journal' | 'controller';

export const DAEMON_KINDS: readonly DaemonKind[] = ['quorum', 'journal', 'controller'];

export interface Probe {
  answering: boolean;
  /** quorum: leader, follower, observer, standalone, electing; controller: active, standby, ...; journal: serving. */
  role: string | null;
  /** Why it does not answer, or what else it said (a journal's journals, a quorum server's zxid). */
  detail: string | null;
  /** Facts a rolling restart waits on (zxid; journals' committed txids). */
  facts: Record<string, string>;
}

export interface DaemonSpec {
  kind: DaemonKind;
  /** quorum and journal: the server id; controller: service:instance. */
  id: string;
  /** Node flags the daemon's process is started with, before the command line's own. */
  nodeFlags?: readonly string[];
  /** Base name of the pid and log files. */
  name: string;
  /** How the operator reads it: "quorum server 1". */
  label: string;
  /** The foreground start, after the executable: e.g. ['quorum', 'start', '--config', F, '--id', '1']. */
  startArgs: string[];
  probe(timeoutMs: number): Promise<Probe>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

export function quorumSpec(q: QuorumServerConfig, source: { config: string } | { zooCfg: string }): DaemonSpec {
  const self = q.servers.find((s) => s.id === q.serverId);
  const host = !WILDCARDS.has(q.clientHost) ? q.clientHost : self?.host ?? '127.0.0.1';
  const startArgs = 'config' in source
    ? ['quorum', 'start', '--config', path.resolve(source.config), '--id', String(q.serverId)]
    : ['quorum', 'start', '--zoo-cfg', path.resolve(source.zooCfg)];
  return {
    kind: 'quorum', id: String(q.serverId), name: `quorum-${q.serverId}`, label: `quorum server ${q.serverId}`, startArgs,
    async probe(timeoutMs): Promise<Probe> {
      const srvr = await fourLetterWord(host, q.clientPort, 'srvr', timeoutMs);
      if (srvr === '') return { answering: false, role: null, detail: `no answer on its client port ${host}:${q.clientPort}`, facts: {} };
      if (srvr.includes('not currently serving')) return { answering: true, role: 'electing', detail: null, facts: {} };
      const mode = /^Mode: (\S+)/m.exec(srvr)?.[1] ?? 'serving';
      const zxid = /^Zxid: (0x[0-9a-f]+)/m.exec(srvr)?.[1];
      return { answering: true, role: mode, detail: zxid === undefined ? null : `zxid ${zxid}`, facts: zxid === undefined ? {} : { zxid } };
    },
  };
}

export function journalSpec(j: JournalNodeConfig, config: string): DaemonSpec {
  return {
    kind: 'journal', id: String(j.nodeId), name: `journal-${j.nodeId}`, label: `journal node ${j.nodeId}`,
    startArgs: ['journal', 'start', '--config', path.resolve(config), '--id', String(j.nodeId)],
    async probe(timeoutMs): Promise<Probe> {
      const c = new JournalNodeClient({ id: j.nodeId, host: j.host, port: j.port }, timeoutMs, { tls: j.tls });
      try {
        const { journals: names } = await c.health();
        const facts: Record<string, string> = {};
        for (const name of names) {
          const s = await c.state(name);
          facts[`committed:${name}`] = String(s.committedTxid);
          facts[`last:${name}`] = String(s.lastSegment?.endTxid ?? 0n);
        }
        return { answering: true, role: 'serving', detail: names.length === 0 ? 'no journals' : `journals ${names.join(', ')}`, facts };
      } catch (e) {
        return { answering: false, role: null, detail: (e as Error).message, facts: {} };
      } finally {
        await c.close();
      }
    },
  };
}

export function controllerSpec(cfg: ControllerConfig, config: string): DaemonSpec {
  const id = `${cfg.service}:${cfg.instance.id}`;
  return {
    kind: 'controller', id, name: `controller-${id}`, label: `controller ${cfg.service}/${cfg.instance.id}`, nodeFlags: CONTROLLER_NODE_FLAGS,
    startArgs: ['controller', 'start', '--config', path.resolve(config), '--service', cfg.service, '--id', cfg.instance.id],
    async probe(timeoutMs): Promise<Probe> {
      try {
        const r = await adminRequest(cfg, cfg.instance, 'GET', '/v1/status', undefined, timeoutMs);
        if (r.status !== 200) return { answering: false, role: null, detail: `admin API answered ${r.status}`, facts: {} };
        const role = r.json.active === true ? 'active' : String(r.json.phase ?? 'unknown');
        return { answering: true, role, detail: `health ${String(r.json.health ?? '-')}`, facts: { health: String(r.json.health ?? '') } };
      } catch (e) {
        return { answering: false, role: null, detail: `admin API: ${(e as Error & { code?: string }).code ?? (e as Error).message}`, facts: {} };
      }
    },
  };
}
