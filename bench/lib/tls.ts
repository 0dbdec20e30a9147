// TLS for the benchmarks: a CA, a server certificate for 127.0.0.1 and a
// client certificate (made by the same code as `quorate certs`), the zoo.cfg
// keys that turn on a secure client port with client certificates required
// (the same for our server and for ZooKeeper), and the client's side.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ZkClientTls } from '../../src/client/index.js';
import { issue, makeCa } from '../../src/cli/certs-command.js';

export interface BenchTls { dir: string; serverStore: string; caFile: string; client: ZkClientTls }

export function makeBenchTls(): BenchTls {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tls-'));
  makeCa(dir, 'bench', 2, true);
  const server = issue(dir, 'hosts', '127.0.0.1', '127.0.0.1', 'IP:127.0.0.1', 'serverAuth,clientAuth', 2, true);
  const client = issue(dir, 'clients', 'bench-client', 'bench-client', null, 'clientAuth', 2, true);
  const read = (f: string) => fs.readFileSync(f, 'utf8');
  const serverStore = path.join(dir, 'server-store.pem');
  fs.writeFileSync(serverStore, read(server.file.replace(/\.pem$/, '.key')) + read(server.file), { mode: 0o600 });
  const caFile = path.join(dir, 'ca.pem');
  return { dir, serverStore, caFile, client: { ca: read(caFile), cert: read(client.file), key: read(client.file.replace(/\.pem$/, '.key')) } };
}

/** ZooKeeper's own keys for a TLS client port with client certificates required. */
export function secureZooCfg(t: BenchTls, securePort: number): Record<string, string> {
  return {
    secureClientPort: String(securePort), secureClientPortAddress: '127.0.0.1',
    serverCnxnFactory: 'org.apache.zookeeper.server.NettyServerCnxnFactory',
    'ssl.keyStore.location': t.serverStore, 'ssl.keyStore.type': 'PEM',
    'ssl.trustStore.location': t.caFile, 'ssl.trustStore.type': 'PEM', 'ssl.clientAuth': 'need',
  };
}
