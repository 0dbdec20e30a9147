// What the demo prints once it is up: what runs where, and commands to try
// from another shell, spelled the way this shell can run them (`quorate` when
// that is on the PATH and is this install, else node and the CLI's path).
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { DEMO_SERVICE, type DemoLayout, type DemoPart } from './demo-layout.js';
import type { DemoState } from './demo-state.js';

/** How to run this CLI from a shell: `quorate` when the PATH's quorate is this one. */
export function quorateCommand(cliPath: string): string {
  const mine = realpathSync(cliPath);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'quorate');
    try { if (dir !== '' && existsSync(candidate) && realpathSync(candidate) === mine) return 'quorate'; } catch { /* unreadable: not it */ }
  }
  const rel = path.relative(process.cwd(), mine);
  return `node ${rel.startsWith('..') || path.isAbsolute(rel) ? mine : rel}`;
}

function where(p: DemoPart): string {
  if (p.kind === 'quorum') return `client ${p.client}`;
  return Object.values(p.urls)[0] ?? '';
}

export function summaryText(layout: DemoLayout, state: DemoState, active: string, cli: string): string {
  const s = layout.settings;
  const pidOf = (p: DemoPart) => state.processes.find((e) => e.kind === p.kind && e.instance === p.instance)?.pid ?? '-';
  const rows = layout.parts.map((p) => [
    p.label, where(p), `pid ${pidOf(p)}`, p.kind === 'service' ? (p.instance === active ? 'ACTIVE' : 'standby') : '', path.relative(s.dir, p.logFile),
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows.map((r) => `  ${r.map((c, i) => (i < 4 ? c.padEnd(widths[i]) : c)).join('  ')}`.trimEnd());
  const services = layout.parts.filter((p) => p.kind === 'service');
  const activeUrl = services.find((p) => p.instance === active)!.urls.service;
  const standby = services.find((p) => p.instance !== active)!;
  const cfg = layout.configFile;
  return [
    '',
    `Quorate demo is up: service ${DEMO_SERVICE} with ${s.instances} instances, ${active} active.`,
    `Data and logs: ${s.dir}   (state: ${path.join(s.dir, 'demo.json')}, cluster file: ${cfg})`,
    s.zookeeper === null ? `Quorum: the built-in one, ${layout.connectString}` : `Quorum: your ZooKeeper at ${s.zookeeper}`,
    ...table,
    '',
    'Try, from another shell:',
    '  # who is active, each instance\'s health and controller, the lock, the journal',
    `  ${cli} status --config ${cfg} --service ${DEMO_SERVICE}`,
    '  # write on the active (a standby answers 503 and names the active); read on any instance',
    `  curl -X PUT --data-binary hello ${activeUrl}/kv/greeting`,
    `  curl -i ${standby.urls.service}/kv/greeting`,
    '  # kill the active service: a standby takes over; the demo starts the killed one again, as standby',
    `  kill -9 ${pidOf(services.find((p) => p.instance === active)!)}`,
    '  # move the active role by hand',
    `  ${cli} failover --config ${cfg} --service ${DEMO_SERVICE} --to ${standby.instance}`,
    '  # the lock and the breadcrumb the controllers keep in the quorum',
    `  ${cli} zk --server ${layout.connectString} ls /quorate/${state.cluster}/${DEMO_SERVICE}`,
    ...(s.zookeeper === null ? [`  ${cli} quorum status --server ${layout.connectString}`] : []),
    '',
    `Ctrl-C stops everything; \`${cli} demo --dir ${s.dir}\` starts it again with the same data.`,
    '',
  ].join('\n');
}
