// Who a verified TLS peer is: the names its certificate carries. Shared by
// the quorum's peer ports and the controller's admin API.
import type net from 'node:net';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';

/** The names a verified peer certificate carries (DNS and IP subject alternative names, and the common name), lowercased. */
export function certificateNames(s: net.Socket): Set<string> {
  const names = new Set<string>();
  if (!(s instanceof tls.TLSSocket)) return names;
  const c = s.getPeerCertificate();
  if (c === null || c === undefined || Object.keys(c).length === 0) return names;
  for (const part of (c.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|IP Address):(.+)$/.exec(part);
    if (m) names.add(m[2].trim().toLowerCase());
  }
  const cn = c.subject?.CN;
  for (const n of Array.isArray(cn) ? cn : cn === undefined ? [] : [cn]) names.add(n.toLowerCase());
  return names;
}

export interface CertificateExpiry { subject: string; notAfter: string; daysLeft: number }

/** When the first certificate of a PEM text expires; null when it does not parse. */
export function certificateExpiry(pem: string, nowMs: number): CertificateExpiry | null {
  try {
    const c = new X509Certificate(pem);
    const end = Date.parse(c.validTo);
    return { subject: c.subject.replace(/\n/g, ', '), notAfter: new Date(end).toISOString(), daysLeft: Math.floor((end - nowMs) / 86_400_000) };
  } catch {
    return null;
  }
}

/** A certificate within this many days of its end is logged as a warning at start. */
export const CERT_EXPIRY_WARN_DAYS = 30;

/** Logs a certificate's end at start: info, a warning within CERT_EXPIRY_WARN_DAYS, an error once expired. */
export function logCertificateExpiry(logger: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void }, what: string, pem: string): CertificateExpiry | null {
  const e = certificateExpiry(pem, Date.now());
  if (e === null) { logger.warn({ certificate: what }, 'certificate could not be read for its expiry'); return null; }
  const fields = { certificate: what, subject: e.subject, notAfter: e.notAfter, daysLeft: e.daysLeft };
  if (e.daysLeft < 0) logger.error(fields, 'certificate has EXPIRED: peers will refuse this process; replace it');
  else if (e.daysLeft < CERT_EXPIRY_WARN_DAYS) logger.warn(fields, `certificate expires in ${e.daysLeft} days; replace it`);
  else logger.info(fields, 'certificate');
  return e;
}

/**
 * A certificate rotation on a listening TLS server (https or tls; undici's and node's https typings
 * do not show the method): connections made from now on get the new certificate, key and CA.
 */
export function rotateServerCertificate(server: object, t: { cert: string; key: string; ca: string | null }): void {
  const s = server as { setSecureContext?: (o: object) => void };
  if (typeof s.setSecureContext !== 'function') throw new Error('rotateServerCertificate: not a TLS server');
  s.setSecureContext({ cert: t.cert, key: t.key, ...(t.ca === null ? {} : { ca: t.ca }) });
}
