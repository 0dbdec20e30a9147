// httpCall: one deadline over the whole exchange (a server that sends its
// headers and then stalls the body is timed out, not waited on), a cap on
// the answer's size, the system's code for a refused connection, and one
// retry on a fresh connection when a kept-alive one turns out closed.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpCall, HttpCallError } from '../../../src/io/http-call.js';

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    (s as http.Server).closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function serve(s: net.Server): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`;
}

describe('httpCall', () => {
  it('returns the status, headers and whole body; sends the body with its length', async () => {
    let got = '';
    const url = await serve(http.createServer((q, res) => {
      q.on('data', (c: Buffer) => { got += c.toString(); });
      q.on('end', () => { res.setHeader('x-seen', String(q.headers['content-length'])); res.end(`echo:${got}`); });
    }));
    const r = await httpCall(`${url}/x`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' }, timeoutMs: 2000 });
    expect(r.status).toBe(200);
    expect(r.headers['x-seen']).toBe('5');
    expect(r.body.toString()).toBe('echo:hello');
  });

  it('times out a server that sends its headers and then stalls the body, at the deadline', async () => {
    const url = await serve(http.createServer((_q, res) => { res.writeHead(200, { 'content-length': '100' }); res.write('part'); }));
    const t0 = performance.now();
    const e = await httpCall(url, { method: 'GET', timeoutMs: 300 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HttpCallError);
    expect((e as HttpCallError).timedOut).toBe(true);
    expect((e as HttpCallError).message).toBe('no answer within 300 ms');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('refuses an answer larger than the cap, declared or streamed', async () => {
    const declared = await serve(http.createServer((_q, res) => { res.writeHead(200, { 'content-length': '5000' }); res.end('x'.repeat(5000)); }));
    await expect(httpCall(declared, { method: 'GET', timeoutMs: 2000, maxBodyBytes: 1000 })).rejects.toThrow('the answer is 5000 bytes, more than the 1000 taken');
    const chunked = await serve(http.createServer((_q, res) => { res.write('y'.repeat(800)); res.end('y'.repeat(800)); }));
    await expect(httpCall(chunked, { method: 'GET', timeoutMs: 2000, maxBodyBytes: 1000 })).rejects.toThrow('the answer is more than the 1000 bytes taken');
  });

  it('names a refused connection by its code, and does not retry it', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const e = await httpCall(`http://127.0.0.1:${port}/`, { method: 'GET', timeoutMs: 2000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HttpCallError);
    expect((e as HttpCallError).code).toBe('ECONNREFUSED');
    expect((e as HttpCallError).timedOut).toBe(false);
  });

  it('a kept-alive connection the server drops as it is reused is retried once on a new connection', async () => {
    // A raw server: the first connection answers once and is then reset when the next request comes on it.
    let connections = 0;
    const url = await serve(net.createServer((sock) => {
      const n = ++connections;
      let requests = 0;
      sock.on('data', () => {
        requests++;
        if (n === 1 && requests === 2) { sock.resetAndDestroy(); return; }
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
      });
      sock.on('error', () => undefined);
    }));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await httpCall(url, { method: 'GET', timeoutMs: 2000, agent })).body.toString()).toBe('ok');
      expect((await httpCall(url, { method: 'GET', timeoutMs: 2000, agent })).body.toString()).toBe('ok');
      expect(connections).toBe(2);
    } finally { agent.destroy(); }
  });
});
