// `quorate quorum status`: what each server of a quorum is (as zkServer.sh
// status says for one): mode, epoch, last zxid, leader, and on the leader how
// many learners are synced. It asks srvr (in ZooKeeper's default whitelist)
// and, where allowed, mntr (serverStatus, in four-letter-word.ts). Exit 0 when
// exactly one server leads, 1 when none or several do, 2 on bad arguments.
import { serverStatus, type ServerStatus } from '../client/four-letter-word.js';
import { parseConnectString } from '../client/path.js';
import { UsageError } from './errors.js';

export function formatStatus(rows: ServerStatus[]): string {
  return rows.map((r) => {
    const parts = [r.server.padEnd(21), r.mode.padEnd(10)];
    if (r.serverId !== null) parts.push(`id ${r.serverId}`);
    if (r.epoch !== null) parts.push(`epoch ${r.epoch}`);
    if (r.zxid !== null) parts.push(`zxid ${r.zxid}`);
    if (r.leaderId !== null && r.leaderId >= 0 && r.mode !== 'leader') parts.push(`leader ${r.leaderId}`);
    if (r.learners !== null) parts.push(`learners synced ${r.syncedFollowers ?? 0}/${r.learners}`);
    return parts.join('  ').trimEnd();
  }).join('\n') + '\n';
}

export async function quorumStatus(opts: { server: string; timeout: string; json?: boolean }): Promise<number> {
  const timeoutMs = Number(opts.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout: expected milliseconds, got "${opts.timeout}"`);
  let targets: { host: string; port: number }[];
  try {
    targets = parseConnectString(opts.server).hosts;
  } catch (e) {
    throw new UsageError(`--server: ${(e as Error).message}`);
  }
  const rows = await Promise.all(targets.map((t) => serverStatus(t.host, t.port, timeoutMs)));
  process.stdout.write(opts.json ? JSON.stringify(rows, null, 2) + '\n' : formatStatus(rows));
  const leaders = rows.filter((r) => r.mode === 'leader' || r.mode === 'standalone').length;
  return leaders === 1 ? 0 : 1;
}
