// A TCP proxy on 127.0.0.1 that a test controls: it forwards to a target
// until blocked, and while blocked it cuts what it carries and takes nothing
// new, as a partition does (the ends learn of it from their own timeouts or
// from the reset).
import net from 'node:net';
import { freePort } from './ports.js';

export interface TcpProxy {
  port: number;
  block(): void;
  unblock(): void;
  /**
   * Look at each chunk a client sends before it is forwarded: 'cut' blocks the proxy at that moment
   * (the chunk is not forwarded), as if the partition began just before it; null removes the filter.
   */
  filterClientData(f: ((chunk: Buffer, fresh: boolean) => 'forward' | 'cut') | null): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  let blocked = false;
  let filter: ((chunk: Buffer, fresh: boolean) => 'forward' | 'cut') | null = null;
  const pairs = new Set<net.Socket>();
  const block = () => { blocked = true; for (const s of pairs) s.destroy(); pairs.clear(); };
  const server = net.createServer((inbound) => {
    inbound.on('error', () => undefined);
    if (blocked) { inbound.destroy(); return; }
    const outbound = net.connect({ host: '127.0.0.1', port: targetPort });
    outbound.on('error', () => undefined);
    pairs.add(inbound);
    pairs.add(outbound);
    let fresh = true;
    inbound.on('data', (chunk: Buffer) => {
      const first = fresh;
      fresh = false;
      if (filter !== null && filter(chunk, first) === 'cut') { block(); return; }
      if (!outbound.write(chunk)) { inbound.pause(); outbound.once('drain', () => inbound.resume()); }
    });
    inbound.once('end', () => outbound.end());
    outbound.pipe(inbound);
    const end = () => { inbound.destroy(); outbound.destroy(); pairs.delete(inbound); pairs.delete(outbound); };
    inbound.once('close', end);
    outbound.once('close', end);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    port,
    block,
    filterClientData(f) { filter = f; },
    unblock() { blocked = false; },
    async close() { for (const s of pairs) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
}
