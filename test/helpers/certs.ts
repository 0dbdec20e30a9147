// Test certificates made with openssl (EC P-256, two days): a CA, and
// certificates it issues with a common name and IP or DNS subject
// alternative names. Keys are written 0600, as Quorate requires of a key.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCa { dir: string; name: string; certFile: string; keyFile: string }
export interface TestCert { certFile: string; keyFile: string; cert: string; key: string }

const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', timeout: 20_000 });

export function makeCa(dir: string, name: string): TestCa {
  const certFile = path.join(dir, `${name}.pem`);
  const keyFile = path.join(dir, `${name}.key`);
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile);
  fs.chmodSync(keyFile, 0o600);
  return { dir, name, certFile, keyFile };
}

/** A certificate signed by `ca` for common name `cn`, valid for `ips` and `dns` names (both server and client use). */
export function issueCert(ca: TestCa, file: string, cn: string, san: { ips?: string[]; dns?: string[] } = {}): TestCert {
  const certFile = path.join(ca.dir, `${file}.pem`);
  const keyFile = path.join(ca.dir, `${file}.key`);
  const csr = path.join(ca.dir, `${file}.csr`);
  const ext = path.join(ca.dir, `${file}.ext`);
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', keyFile, '-out', csr);
  const names = [...(san.ips ?? []).map((i) => `IP:${i}`), ...(san.dns ?? []).map((d) => `DNS:${d}`)];
  fs.writeFileSync(ext, `${names.length > 0 ? `subjectAltName=${names.join(',')}\n` : ''}extendedKeyUsage=serverAuth,clientAuth\n`);
  ssl('x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', certFile);
  fs.chmodSync(keyFile, 0o600);
  return { certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}
