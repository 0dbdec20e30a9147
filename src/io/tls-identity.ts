// Who a verified TLS peer is: the names its certificate carries. Shared by
// the quorum's peer ports and the controller's admin API.
import type net from 'node:net';
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
