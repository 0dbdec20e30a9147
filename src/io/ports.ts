// Loopback port helpers: pick a free port, wait for one to open. Used by the
// tests and benchmarks that start real servers, and by tools that must know
// when a local service is listening.
import net from 'node:net';

/** A free TCP port on 127.0.0.1, found by binding port 0. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Wait until a TCP port accepts connections, bounded in time (and in attempts). */
export async function waitForPort(port: number, timeoutMs = 20_000, host = '127.0.0.1', gaveUp: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000 && !gaveUp(); attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${host}:${port} did not open within ${timeoutMs} ms`);
}
