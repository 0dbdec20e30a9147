// Prometheus text over HTTP, one way for every process: a daemon with an HTTP
// API of its own answers GET /metrics through sendMetrics (the controller's
// admin API); one without (a journal node, whose API port may demand client
// certificates) serves its registry on a port of its own with serveMetrics.
// That port is read-only and reads no request body: every other path and
// method is refused with the reason, and slow or idle callers are cut off.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './log.js';

export const METRICS_PATH = '/metrics';

/** A scraper needs a handful of connections; more only hold sockets open on a port anyone may reach. */
const METRICS_CONNECTIONS_MAX = 32;
const METRICS_HEADERS_TIMEOUT_MS = 5_000;
const METRICS_REQUEST_TIMEOUT_MS = 10_000;
const METRICS_KEEP_ALIVE_TIMEOUT_MS = 30_000;

/** Answers a GET or HEAD with the registry's text (a collector that throws answers 500 with its message). */
export async function sendMetrics(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let text: string;
  try {
    text = await registry.metrics();
  } catch (e) {
    sendText(res, 500, `collecting the metrics failed: ${(e as Error).message}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : text);
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics on `host:port` (port 0: any free one). Rejects with the
 * address and the reason when the port cannot be taken (in use, not allowed).
 */
export function serveMetrics(registry: Registry, host: string, port: number, logger: Logger): Promise<MetricsServer> {
  const server: Server = createServer({ headersTimeout: METRICS_HEADERS_TIMEOUT_MS, requestTimeout: METRICS_REQUEST_TIMEOUT_MS, keepAliveTimeout: METRICS_KEEP_ALIVE_TIMEOUT_MS }, (req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendText(res, 405, `method ${req.method} is not allowed: this port only answers GET ${METRICS_PATH}\n`);
      return;
    }
    if (path !== METRICS_PATH) { sendText(res, 404, `no such endpoint: ${path.slice(0, 200)} (this port only answers GET ${METRICS_PATH})\n`); return; }
    void sendMetrics(registry, req, res);
  });
  server.maxConnections = METRICS_CONNECTIONS_MAX;
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EACCES' ? 'not allowed to bind it' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
      reject(new Error(`cannot serve metrics on ${host}:${port}: ${why}`));
    });
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      // Past the bind, an error (say, out of file descriptors) is the metrics port's alone: the daemon goes on.
      server.on('error', (e) => logger.warn({ err: e.message, host, port }, 'metrics port error'));
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => {
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
