// Scrapes a Prometheus text endpoint and parses it strictly (text format
// 0.0.4): every sample belongs to a family with a TYPE line, names and labels
// are well formed, values are numbers. A malformed line fails the test.

export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Scrape {
  text: string;
  contentType: string;
  types: Map<string, string>;
  helps: Map<string, string>;
  samples: Sample[];
  /** The value of the sample with this name and these labels (exactly); undefined when absent. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;

/** The family a sample belongs to: summaries' and histograms' _sum, _count, _bucket, counters' _total, or the name itself. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_sum', '_count', '_bucket', '_total', '_created']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

export function parsePrometheus(text: string, contentType = ''): Scrape {
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.trim() === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type, ...rest] = line.slice(7).split(' ');
      if (!NAME.test(name) || !['counter', 'gauge', 'summary', 'histogram', 'untyped'].includes(type) || rest.length > 0) throw new Error(`bad TYPE ${where}`);
      if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith('# HELP ')) {
      const sp = line.indexOf(' ', 7);
      helps.set(line.slice(7, sp < 0 ? undefined : sp), sp < 0 ? '' : line.slice(sp + 1));
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`bad sample ${where}`);
    const [, name, labelText, valueText] = m;
    if (familyOf(name, types) === undefined) throw new Error(`sample without a TYPE line before it, ${where}`);
    const labels: Record<string, string> = {};
    if (labelText !== undefined && labelText !== '') {
      for (const part of labelText.match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const lm = LABEL.exec(part);
        if (lm === null) throw new Error(`bad label ${part} ${where}`);
        labels[lm[1]] = lm[2];
      }
    }
    const value = /^[+-]?Inf$/.test(valueText) ? (valueText.startsWith('-') ? -Infinity : Infinity) : /^NaN$/i.test(valueText) ? NaN : Number(valueText);
    if (Number.isNaN(value) && !/^NaN$/i.test(valueText)) throw new Error(`bad value ${where}`);
    samples.push({ name, labels, value });
  }
  const same = (a: Record<string, string>, b: Record<string, string>) => Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
  return {
    text, contentType, types, helps, samples,
    value: (name, labels = {}) => samples.find((s) => s.name === name && same(s.labels, labels))?.value,
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
  return parsePrometheus(await r.text(), r.headers.get('content-type') ?? '');
}
