// What `quorate demo` runs and where: one block of ports from a base port, the
// cluster file every part reads, and each part's command line, ports, URLs
// and log file. Pure: the same settings give the same layout, so a second
// start on the same directory lands on the same ports and data.
import path from 'node:path';
import YAML from 'yaml';

export type PartKind = 'quorum' | 'journal' | 'service' | 'controller';
/** The order parts start in; stopping goes the other way (controllers first, so the active is demoted while the quorum still answers). */
export const START_ORDER: readonly PartKind[] = ['quorum', 'journal', 'service', 'controller'];

export const DEMO_CLUSTER = 'quorate-demo';
export const DEMO_SERVICE = 'kv';
export const LOOPBACK = '127.0.0.1';
const QUORUM_IDS = ['1', '2', '3'] as const;
const JOURNAL_IDS = ['1', '2', '3'] as const;
const INSTANCE_IDS = ['a', 'b', 'c', 'd', 'e'] as const;

/**
 * Offsets from the base port. Quorum: client ports +0..+2, peer and election ports +3..+8 (two per
 * server); journal nodes +9..+11; service instances +12..+16; their controllers' admin APIs +17..+21.
 */
const OFFSET = { quorumClient: 0, quorumPeers: 3, journal: 9, service: 12, admin: 17 } as const;
export const BLOCK_PORTS = 22;

export interface DemoSettings {
  /** Absolute. */
  dir: string;
  basePort: number;
  instances: number;
  /** An existing ZooKeeper ensemble (host:port,...) instead of the built-in quorum; null: the built-in one. */
  zookeeper: string | null;
}

/** A part of the demo: one child process, restarted under the same identity. */
export interface DemoPart {
  kind: PartKind;
  /** "1".."3" for quorum servers and journal nodes; "a", "b", ... for a service instance and its controller. */
  instance: string;
  /** How the operator reads it: "quorum server 1", "service a". */
  label: string;
  /** Which program runs it: the quorate CLI or the example service. */
  program: 'cli' | 'service';
  args: string[];
  logFile: string;
  ports: Record<string, number>;
  urls: Record<string, string>;
  /** Quorum servers: the client address, host:port. */
  client?: string;
}

export interface DemoLayout {
  settings: DemoSettings;
  configFile: string;
  /** What the controllers elect through. */
  connectString: string;
  parts: DemoPart[];
  clusterFileText: string;
}

const url = (port: number) => `http://${LOOPBACK}:${port}`;

export function demoLayout(s: DemoSettings): DemoLayout {
  const p = s.basePort;
  const configFile = path.join(s.dir, 'cluster.yaml');
  const logFile = (kind: PartKind, id: string) => path.join(s.dir, 'logs', `${kind}-${id}.log`);
  const cli = (verb: string, ...rest: string[]) => [verb, '--config', configFile, ...rest];
  const parts: DemoPart[] = [];

  const quorum = s.zookeeper !== null ? [] : QUORUM_IDS.map((id, i) => ({
    id: Number(id), host: LOOPBACK, clientPort: p + OFFSET.quorumClient + i, peerPort: p + OFFSET.quorumPeers + 2 * i, electionPort: p + OFFSET.quorumPeers + 2 * i + 1,
  }));
  for (const q of quorum) {
    parts.push({
      kind: 'quorum', instance: String(q.id), label: `quorum server ${q.id}`, program: 'cli', args: cli('quorum', '--id', String(q.id)),
      logFile: logFile('quorum', String(q.id)), ports: { client: q.clientPort, peer: q.peerPort, election: q.electionPort }, urls: {}, client: `${LOOPBACK}:${q.clientPort}`,
    });
  }
  const connectString = s.zookeeper ?? quorum.map((q) => `${LOOPBACK}:${q.clientPort}`).join(',');

  const journal = JOURNAL_IDS.map((id, i) => ({ id: Number(id), host: LOOPBACK, port: p + OFFSET.journal + i }));
  for (const j of journal) {
    parts.push({
      kind: 'journal', instance: String(j.id), label: `journal node ${j.id}`, program: 'cli', args: cli('journal', '--id', String(j.id)),
      logFile: logFile('journal', String(j.id)), ports: { http: j.port }, urls: { journal: url(j.port) },
    });
  }
  const journalNodes = journal.map((j) => `${j.id}@${j.host}:${j.port}`).join(',');

  const instances = INSTANCE_IDS.slice(0, s.instances).map((id, i) => ({ id, servicePort: p + OFFSET.service + i, adminPort: p + OFFSET.admin + i }));
  for (const x of instances) {
    parts.push({
      kind: 'service', instance: x.id, label: `service ${x.id}`, program: 'service',
      args: ['--instance', x.id, '--port', String(x.servicePort), '--host', LOOPBACK, '--advertise', url(x.servicePort),
        '--journal-nodes', journalNodes, '--journal', DEMO_SERVICE, '--data-dir', path.join(s.dir, `service-${x.id}`)],
      logFile: logFile('service', x.id), ports: { service: x.servicePort }, urls: { service: url(x.servicePort) },
    });
  }
  for (const x of instances) {
    parts.push({
      kind: 'controller', instance: x.id, label: `controller ${x.id}`, program: 'cli', args: cli('controller', '--service', DEMO_SERVICE, '--id', x.id),
      logFile: logFile('controller', x.id), ports: { admin: x.adminPort }, urls: { admin: url(x.adminPort) },
    });
  }

  const hook = (port: number) => ({ http: `${url(port)}/role` });
  const cluster = {
    cluster: DEMO_CLUSTER,
    ...(quorum.length === 0 ? {} : {
      quorum: { tickMs: 200, dataDir: path.join(s.dir, 'quorum-{id}'), clientHost: LOOPBACK, fourLetterWords: ['srvr', 'ruok', 'stat', 'mntr', 'conf', 'cons'], servers: quorum },
    }),
    journal: { dataDir: path.join(s.dir, 'journal-{id}'), nodes: journal },
    controller: { connectString, sessionTimeoutMs: 6000, allowLoopbackWithoutToken: true },
    services: [{
      name: DEMO_SERVICE,
      journal: true,
      fencing: ['graceful', 'journal'],
      // A standby fenced gracefully (at a resume, or a manual failover) does not race for this long; the default
      // 10 s would leave the demo without an active if the new one is killed right away, as the tour does.
      cedeMs: 5000,
      // While the quorum is unreachable the active stays active as long as the journal shows no newer writer.
      failsafe: true,
      instances: instances.map((x) => ({
        id: x.id, host: LOOPBACK, adminPort: x.adminPort, servicePort: x.servicePort,
        hooks: { toActive: hook(x.servicePort), toStandby: hook(x.servicePort), role: hook(x.servicePort) },
        health: [{ http: `${url(x.servicePort)}/health`, lagField: 'lag' }],
      })),
    }],
  };
  const header = [
    '# Written by `quorate demo` (regenerated at every start of the demo on this directory).',
    `# quorate status --config ${configFile} --service ${DEMO_SERVICE}`,
    '',
  ].join('\n');
  return { settings: s, configFile, connectString, parts, clusterFileText: header + YAML.stringify(cluster, { lineWidth: 0 }) };
}

/** Every port the layout listens on (the quorum's only when the demo runs its own). */
export function layoutPorts(l: DemoLayout): { port: number; part: DemoPart }[] {
  return l.parts.flatMap((part) => Object.values(part.ports).map((port) => ({ port, part })));
}
