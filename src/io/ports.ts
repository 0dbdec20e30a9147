// Loopback port helpers: pick a free port, wait for one to open, tell a loopback host. Used by the
// tests and benchmarks that start real servers, and by tools that must know
// when a local service is listening.
import net from 'node:net';

/**
 * Ports handed out below the kernel's ephemeral range (32768-60999 by default): a port found by
 * binding port 0 is free only until someone else binds port 0 (another test file running in
 * parallel got the same port, and a test's service answered another test's requests), and
 * outgoing connections take their source ports from that range too. Each test worker (or
 * process) draws from its own slice, and never hands out a port twice.
 */
const RANGE = { from: 20_000, to: 32_000, slices: 8 } as const;
const handedOut = new Set<number>();

/** Nothing listens on `port` at 127.0.0.1 now (we could bind it). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1 (see RANGE), or one the kernel picks when the slice is used up. */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? process.pid);
  const size = Math.floor((RANGE.to - RANGE.from) / RANGE.slices);
  const base = RANGE.from + (worker % RANGE.slices) * size;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = base + Math.floor(Math.random() * size);
    if (handedOut.has(port)) continue;
    if (await portIsFree(port)) { handedOut.add(port); return port; }
  }
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

/** A host name or address that stays on this machine (traffic to it never crosses a network). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A base port in [from, to) whose `count` consecutive ports are all free now, tried `attempts` times at random; null if none. */
export async function freePortBlock(count: number, from: number, to: number, attempts: number): Promise<number | null> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const base = from + Math.floor(Math.random() * (to - from));
    const free = await Promise.all(Array.from({ length: count }, (_, i) => portIsFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  return null;
}
