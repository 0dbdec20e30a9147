// Asks a ZooKeeper-protocol server a four-letter word (srvr, mntr, ruok...)
// and returns its whole answer; '' when it cannot be reached in time.
import net from 'node:net';

/** The largest answer read (a `cons` on a busy server is long; more is cut). */
export const FOUR_LETTER_ANSWER_BYTES_MAX = 4 * 1024 * 1024;

export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const s = net.connect({ host, port }, () => s.write(word));
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
