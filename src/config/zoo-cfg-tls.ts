// A zoo.cfg's TLS settings, read as ZooKeeper 3.8 reads them, so a secure
// zoo.cfg runs unchanged: secureClientPort with the ssl.* keys (the client
// port), and sslQuorum with the ssl.quorum.* keys (between servers). PEM
// stores only (ssl.keyStore.type=PEM: the key and the certificate chain in one
// file; ssl.trustStore.type=PEM: the CA certificates). A setting asked for
// and not provided (another store type, cipher suite names in Java's form, a
// protocol Node does not offer) is an error naming the key, never ignored.
import fs from 'node:fs';
import path from 'node:path';
import { showValue } from './errors.js';

export interface TlsEntry { key: string; value: string; line: number }
type Fail = (e: TlsEntry, reason: string) => void;

const STORE_KEYS = ['keyStore.location', 'keyStore.type', 'trustStore.location', 'trustStore.type', 'trustStore.password',
  'clientAuth', 'protocol', 'enabledProtocols', 'ciphersuites', 'hostnameVerification', 'handshakeDetectionTimeoutMillis'];

/** Whether the zoo.cfg key is one this module reads. */
export function isZooCfgTlsKey(key: string): boolean {
  if (key === 'secureClientPort' || key === 'secureClientPortAddress' || key === 'sslQuorum') return true;
  const rest = key.startsWith('ssl.quorum.') ? key.slice('ssl.quorum.'.length) : key.startsWith('ssl.') ? key.slice('ssl.'.length) : null;
  return rest !== null && STORE_KEYS.includes(rest);
}

export interface ZooCfgTls {
  secureClientPort: number | null;
  secureClientHost: string | null;
  clientTls: { cert: string; key: string; ca: string | null; clientAuth: 'none' | 'want' | 'need'; minVersion?: 'TLSv1.2' | 'TLSv1.3' } | null;
  peerTls: { cert: string; key: string; ca: string } | null;
}

const PEM_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;
const PEM_CERTS = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function readZooCfgTls(entries: ReadonlyMap<string, TlsEntry>, baseDir: string, fail: Fail): ZooCfgTls {
  const get = (k: string) => entries.get(k);
  const out: ZooCfgTls = { secureClientPort: null, secureClientHost: null, clientTls: null, peerTls: null };

  // One store set (prefix 'ssl.' or 'ssl.quorum.'): the key and certificate chain, the CA, and how clients are asked.
  const store = (prefix: string, needed: TlsEntry) => {
    for (const t of ['keyStore.type', 'trustStore.type']) {
      const e = get(prefix + t);
      if (e !== undefined && e.value.toUpperCase() !== 'PEM') fail(e, `store type ${showValue(e.value)} is not read by Quorate: convert the store to PEM (openssl pkcs12 -in store.p12 -nodes) and set ${prefix}${t}=PEM`);
    }
    const cipher = get(prefix + 'ciphersuites');
    if (cipher !== undefined) fail(cipher, 'cipher suites in Java\'s names are not mapped to OpenSSL\'s: remove the key (Node\'s defaults are TLS 1.2/1.3 with forward secrecy)');
    const read = (k: string, secret: boolean): string | null => {
      const e = get(prefix + k);
      if (e === undefined) return null;
      const p = path.resolve(baseDir, e.value);
      let text: string;
      let mode: number;
      try {
        text = fs.readFileSync(p, 'utf8');
        mode = fs.statSync(p).mode & 0o777;
      } catch (err) {
        fail(e, `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return null;
      }
      if (secret && (mode & 0o077) !== 0) { fail(e, `${p} holds a private key and other users can read it (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${p}`); return null; }
      return text;
    };
    const ks = read('keyStore.location', true);
    const ts = read('trustStore.location', false);
    if (get(prefix + 'keyStore.location') === undefined) { fail(needed, `${prefix}keyStore.location is missing: the PEM file with this server's private key and certificate`); return null; }
    if (ks === null) return null;
    const key = PEM_KEY.exec(ks)?.[0];
    const certs = ks.match(PEM_CERTS);
    if (key === undefined || certs === null) { fail(get(prefix + 'keyStore.location')!, 'expected a PEM file holding a private key and its certificate (chain)'); return null; }
    if (/ENCRYPTED/.test(key)) { fail(get(prefix + 'keyStore.location')!, 'the private key is encrypted, which Quorate does not read: store it decrypted (openssl pkey -in KEY -out KEY.plain) with mode 0600'); return null; }
    let minVersion: 'TLSv1.2' | 'TLSv1.3' | undefined;
    const protos = [get(prefix + 'enabledProtocols'), get(prefix + 'protocol')].filter((e): e is TlsEntry => e !== undefined);
    for (const e of protos) {
      const list = e.value.split(',').map((s) => s.trim()).filter(Boolean);
      const bad = list.filter((p) => p !== 'TLSv1.2' && p !== 'TLSv1.3');
      if (bad.length > 0) { fail(e, `protocol ${bad.join(', ')} is not offered (Node speaks TLSv1.2 and TLSv1.3)`); continue; }
      if (e.key.endsWith('enabledProtocols') && !list.includes('TLSv1.2')) minVersion = 'TLSv1.3';
    }
    return { cert: certs.join('\n') + '\n', key, ca: ts, minVersion };
  };

  const secure = get('secureClientPort');
  if (secure !== undefined) {
    const port = Number(secure.value);
    if (!/^\d{1,5}$/.test(secure.value) || port < 1 || port > 65535) fail(secure, `expected a port number 1-65535, got ${showValue(secure.value)}`);
    else out.secureClientPort = port;
    out.secureClientHost = get('secureClientPortAddress')?.value ?? null;
    const s = store('ssl.', secure);
    if (s !== null) {
      const authEntry = get('ssl.clientAuth');
      // ZooKeeper's default is need.
      const auth = (authEntry?.value ?? 'need').toLowerCase();
      if (auth !== 'none' && auth !== 'want' && auth !== 'need') fail(authEntry!, `expected none, want or need, got ${showValue(authEntry!.value)}`);
      else if (auth !== 'none' && s.ca === null) fail(authEntry ?? secure, `ssl.clientAuth ${auth} needs ssl.trustStore.location: the CA that signs the clients' certificates`);
      else out.clientTls = { cert: s.cert, key: s.key, ca: s.ca, clientAuth: auth, ...(s.minVersion === undefined ? {} : { minVersion: s.minVersion }) };
    }
  }
  const quorum = get('sslQuorum');
  if (quorum !== undefined && /^true$/i.test(quorum.value)) {
    const s = store('ssl.quorum.', quorum);
    if (s !== null) {
      if (s.ca === null) fail(quorum, 'sslQuorum needs ssl.quorum.trustStore.location: the CA every server\'s certificate chains to');
      else out.peerTls = { cert: s.cert, key: s.key, ca: s.ca };
    }
  } else if (quorum !== undefined && !/^false$/i.test(quorum.value)) fail(quorum, `expected true or false, got ${showValue(quorum.value)}`);
  return out;
}
