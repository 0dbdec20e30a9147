// Reads Prometheus text exposition (what prom-client writes) the way a
// scraper would, strictly enough that a malformed line fails the test: each
// sample with its name, labels and value; HELP and TYPE kept per family.
import { request } from 'undici';

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
  /** The one sample of `name` whose labels include `labels`; throws when there is none or several. */
  value(name: string, labels?: Record<string, string>): number;
  /** Every sample of `name` whose labels include `labels`. */
  all(name: string, labels?: Record<string, string>): Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;

export function parsePromText(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name, type);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2] !== undefined && m[2] !== '') {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2]);
        if (l === null) throw new Error(`bad labels in: ${line}`);
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
    const v = m[3].toLowerCase();
    const value = v === '+inf' || v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === 'nan' ? NaN : Number(m[3]);
    if (Number.isNaN(value) && v !== 'nan') throw new Error(`bad value in: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  const all = (name: string, want: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  return {
    samples, types, all,
    value(name, want = {}) {
      const found = all(name, want);
      if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(want)} (names here: ${[...new Set(samples.map((s) => s.name))].filter((n) => n.startsWith(name.split('_').slice(0, 2).join('_'))).join(', ')})`);
      return found[0].value;
    },
  };
}

/** GET http://127.0.0.1:port/metrics, parsed; the answer must be 200 with Prometheus's content type. */
export async function scrape(port: number, path = '/metrics'): Promise<Scrape> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${path} on port ${port} answered ${r.statusCode}: ${text.slice(0, 300)}`);
  const type = String(r.headers['content-type']);
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`GET ${path} on port ${port}: content type ${type}, not Prometheus text`);
  return parsePromText(text);
}
