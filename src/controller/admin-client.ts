// Calls to a controller's admin API from the operator's commands and from
// other controllers (graceful fencing, manual failover's cede): the URL
// (https when the cluster file configures TLS, verified against its CA), the
// bearer token, a deadline, and the JSON answer.
import http from 'node:http';
import https from 'node:https';
import type { ControllerConfig, InstanceConfig } from '../config/controller-config.js';
import { httpCall } from '../io/http-call.js';

export type AdminAccess = Pick<ControllerConfig, 'adminToken' | 'tls'>;

const tlsAgents = new WeakMap<object, https.Agent>();
const plainAgent = new http.Agent({ keepAlive: true });

/** Connections kept alive between calls (a status page's peers, a cede then a status); idle ones do not keep a process up. */
function agentFor(a: AdminAccess): http.Agent {
  if (a.tls === null) return plainAgent;
  let d = tlsAgents.get(a.tls);
  if (d === undefined) {
    // This host's certificate goes along: a controller calling another one (cede, fence) is known by it.
    d = new https.Agent({ keepAlive: true, ...(a.tls.ca === null ? {} : { ca: a.tls.ca }), cert: a.tls.cert, key: a.tls.key });
    tlsAgents.set(a.tls, d);
  }
  return d;
}

export function adminUrl(a: AdminAccess, i: InstanceConfig, path: string): string {
  return `${a.tls === null ? 'http' : 'https'}://${i.host.includes(':') ? `[${i.host}]` : i.host}:${i.adminPort}${path}`;
}

/** One admin API call; rejects when the controller cannot be reached within `timeoutMs`. */
export async function adminRequest(a: AdminAccess, i: InstanceConfig, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 2000): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await httpCall(adminUrl(a, i, path), {
    method, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs, agent: agentFor(a),
    headers: { 'content-type': 'application/json', ...(a.adminToken ? { authorization: `Bearer ${a.adminToken}` } : {}) },
  });
  const text = res.body.toString('utf8');
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { json = { error: text.slice(0, 200) }; }
  return { status: res.status, json, text };
}
