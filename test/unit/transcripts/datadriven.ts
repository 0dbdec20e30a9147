// A small data-driven test format, after cockroachdb/datadriven as etcd-io/raft
// uses it (testdata/*.txt): a script of commands, each followed by `----` and
// the output it must produce, then a blank line. Lines starting with `#`, and
// blank lines, between blocks are comments, kept as they are.
//
//   # the service reports standby
//   done queryRole ok role=standby
//   ----
//   log info "starting -> standby: service reports standby" role=starting
//   -> phase=standby isActive=false leaseUntil=none
//
// The runner re-creates the whole file from the commands and the outputs the
// core gives today; the test compares it with the file as committed, so any
// change in any effect fails with the diff. `REWRITE=1` writes the new file
// instead: a rewrite is a claim that every changed line is right, so read the
// diff line by line before committing it.

/** One command line, split into words; `key=value` words are also in `kv`. */
export interface Command {
  name: string;
  /** Every word after the name, quotes removed, in order (`k=v` words included as written). */
  words: string[];
  /** Words without `=`, in order. */
  positional: string[];
  kv: Map<string, string>;
  /** Where it is, for error messages: `file:line`. */
  where: string;
}

export interface Driver {
  /** Runs one command; returns the output lines (none: `ok` is printed). Throws on a script error. */
  run(cmd: Command): string[];
}

/** Splits a command line into words: `"..."` keeps spaces (also after `key=`). */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  const re = /([^\s"=]+=)?"((?:[^"\\]|\\.)*)"|\S+/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    if (m[2] !== undefined) out.push((m[1] ?? '') + m[2].replace(/\\(.)/g, '$1'));
    else out.push(m[0]);
  }
  return out;
}

export function parseCommand(line: string, where: string): Command {
  const words = splitWords(line);
  const [name, ...rest] = words;
  const kv = new Map<string, string>();
  const positional: string[] = [];
  for (const w of rest) {
    const i = w.indexOf('=');
    if (i > 0) {
      const k = w.slice(0, i);
      if (kv.has(k)) throw new Error(`${where}: ${k}= given twice`);
      kv.set(k, w.slice(i + 1));
    } else positional.push(w);
  }
  return { name, words: rest, positional, kv, where };
}

/**
 * Runs every command of `text` through `driver` and returns the file as it should be: the same
 * comments and commands, each followed by the output it produced now.
 */
export function rewrite(text: string, file: string, driver: Driver): string {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) { out.push(line); i++; continue; }
    const where = `${file}:${i + 1}`;
    if (lines[i + 1] !== '----') throw new Error(`${where}: a command must be followed by a line "----"`);
    let produced: string[];
    try {
      produced = driver.run(parseCommand(line, where));
    } catch (e) {
      throw new Error(`${where}: ${line}\n  ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (produced.length === 0) produced = ['ok'];
    for (const p of produced) if (p.trim() === '' || p.includes('\n')) throw new Error(`${where}: the runner printed a blank or multi-line output line: ${JSON.stringify(p)}`);
    out.push(line, '----', ...produced);
    // Skip the expected output: up to a blank line or the end.
    i += 2;
    while (i < lines.length && lines[i].trim() !== '') i++;
    // One blank line ends a block.
    if (i < lines.length) { out.push(''); i++; }
  }
  return out.join('\n') + '\n';
}

// ---- formatting shared by the drivers ------------------------------------------------------

/** A value as the transcripts print it: bigints in hex, strings quoted when they hold spaces. */
export function fmtValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (typeof v === 'string') return v === '' || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return fmtBytes(v);
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(',')}]`;
  if (typeof v === 'object') return `{${fmtFields(v as Record<string, unknown>)}}`;
  return String(v);
}

/** `k=v k=v`, every field, in the object's order. */
export function fmtFields(o: Record<string, unknown>, skip: readonly string[] = []): string {
  return Object.entries(o).filter(([k]) => !skip.includes(k)).map(([k, v]) => `${k}=${fmtValue(v)}`).join(' ');
}

/** Bytes as text when they are printable ASCII, else hex. */
export function fmtBytes(b: Uint8Array): string {
  const printable = b.length > 0 && b.every((c) => c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x3d);
  return printable ? Buffer.from(b).toString('latin1') : `hex:${Buffer.from(b).toString('hex')}`;
}

/** The inverse of fmtBytes. */
export function parseBytes(s: string): Uint8Array {
  return s.startsWith('hex:') ? Buffer.from(s.slice(4), 'hex') : Buffer.from(s, 'latin1');
}

export function need(cmd: Command, key: string): string {
  const v = cmd.kv.get(key);
  if (v === undefined) throw new Error(`${cmd.name}: ${key}= is required`);
  return v;
}

export function int(s: string, what: string): number {
  if (!/^-?\d+$/.test(s)) throw new Error(`${what}: "${s}" is not an integer`);
  return Number(s);
}

export function big(s: string, what: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(s)) throw new Error(`${what}: "${s}" is not a number (decimal or 0x hex)`);
  return BigInt(s);
}

export function bool(s: string, what: string): boolean {
  if (s === 'yes' || s === 'true') return true;
  if (s === 'no' || s === 'false') return false;
  throw new Error(`${what}: "${s}" is not yes/no`);
}

/** Fails on keys the command does not know (a typo must not be ignored). */
export function onlyKeys(cmd: Command, keys: readonly string[]): void {
  for (const k of cmd.kv.keys()) if (!keys.includes(k)) throw new Error(`${cmd.name}: unknown key ${k}= (known: ${keys.join(', ') || 'none'})`);
}
