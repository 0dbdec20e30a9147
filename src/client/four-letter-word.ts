// Asks a ZooKeeper-protocol server a four-letter word (srvr, mntr, ruok...)
// and returns its whole answer; '' when it cannot be reached in time. Over
// TLS too (a secure client port), with the client protocol's TLS settings.
// serverStatus reads srvr (and mntr where allowed) into what a server is:
// `quorate quorum status` and the controller's cluster view show it.
import net from 'node:net';
import tls from 'node:tls';
import type { ZkClientTls } from './connection.js';

/** The largest answer read (a `cons` on a busy server is long; more is cut). */
export const FOUR_LETTER_ANSWER_BYTES_MAX = 4 * 1024 * 1024;

export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 2000, secure: ZkClientTls | null = null): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const s: net.Socket = secure === null
      ? net.connect({ host, port }, () => s.write(word))
      : tls.connect({
        host, port, ca: secure.ca, ...(secure.cert === undefined ? {} : { cert: secure.cert, key: secure.key }), rejectUnauthorized: true,
        ...(net.isIP(host) === 0 ? { servername: host } : {}),
      }, () => s.write(word));
    const done = () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('utf8')); };
    const timer = setTimeout(() => { s.destroy(); }, timeoutMs);
    s.on('data', (d: Buffer) => {
      if (bytes >= FOUR_LETTER_ANSWER_BYTES_MAX) return;
      chunks.push(d);
      bytes += d.length;
    });
    s.on('close', done);
    s.on('error', () => undefined);
  });
}

/** mntr's `key<TAB>value` lines as a map. */
export function parseMntr(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) m.set(line.slice(0, tab), line.slice(tab + 1).trim());
  }
  return m;
}

/** What one server of a quorum is, as srvr (and mntr, where allowed) say. */
export interface ServerStatus {
  server: string;
  /** leader, follower, standalone, observer; looking (electing), unreachable, srvr-not-allowed, unknown. */
  mode: string;
  zxid: string | null;
  epoch: number | null;
  serverId: number | null;
  leaderId: number | null;
  syncedFollowers: number | null;
  learners: number | null;
}

/** srvr, then mntr unless `mntr: false` (a server whose whitelist has srvr alone would answer it with a refusal). */
export async function serverStatus(host: string, port: number, timeoutMs: number, opts: { tls?: ZkClientTls | null; mntr?: boolean } = {}): Promise<ServerStatus> {
  const server = `${host}:${port}`;
  const secure = opts.tls ?? null;
  const srvr = await fourLetterWord(host, port, 'srvr', timeoutMs, secure);
  const base: ServerStatus = { server, mode: 'unreachable', zxid: null, epoch: null, serverId: null, leaderId: null, syncedFollowers: null, learners: null };
  if (srvr === '') return base;
  if (srvr.includes('not currently serving')) return { ...base, mode: 'looking' };
  const mode = /^Mode: (\S+)/m.exec(srvr)?.[1] ?? (srvr.includes('is not executed because it is not in the whitelist') ? 'srvr-not-allowed' : 'unknown');
  const zxid = /^Zxid: (0x[0-9a-f]+)/m.exec(srvr)?.[1] ?? null;
  const st: ServerStatus = { ...base, mode, zxid, epoch: zxid === null ? null : Number(BigInt(zxid) >> 32n) };
  if (opts.mntr === false) return st;
  const mntr = parseMntr(await fourLetterWord(host, port, 'mntr', timeoutMs, secure));
  const num = (k: string) => (mntr.has(k) ? Number(mntr.get(k)) : null);
  st.serverId = num('quorate_server_id');
  st.leaderId = num('quorate_leader_id');
  if (mntr.has('quorate_epoch')) st.epoch = num('quorate_epoch');
  st.syncedFollowers = num('zk_synced_followers');
  st.learners = num('zk_learners');
  return st;
}
