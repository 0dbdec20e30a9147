// Configuration errors. Every problem found in a configuration file becomes a
// ConfigIssue naming the file, the key (as the user wrote it: a YAML path such
// as `quorum.servers[1].clientPort`, or a zoo.cfg key) and, when known, the
// line. A ConfigError carries all issues found in one pass so an operator can
// fix them in one edit. The CLI prints `error.message` and exits with
// CONFIG_ERROR_EXIT_CODE.

/** Exit status of a process stopped by a configuration error. */
export const CONFIG_ERROR_EXIT_CODE = 2;

export interface ConfigIssue {
  /** The file as the user named it (path as given on the command line). */
  readonly file: string;
  /** Where in the file: `quorum.servers[1].clientPort`, `server.3`, or '' for the file as a whole. */
  readonly keyPath: string;
  /** What is wrong and what is expected, e.g. `expected a port number 1-65535, got "abc"`. */
  readonly reason: string;
  /** 1-based line, when known. */
  readonly line?: number | undefined;
}

/** `cluster.yaml:14: quorum.servers[1].clientPort: expected a port number 1-65535, got "abc"` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return issue.keyPath === '' ? `${where}: ${issue.reason}` : `${where}: ${issue.keyPath}: ${issue.reason}`;
}

export class ConfigError extends Error {
  readonly code = 'QUORATE_CONFIG' as const;
  /** File, key path, reason and line of the first issue; `issues` has them all. */
  readonly file: string;
  readonly keyPath: string;
  readonly reason: string;
  readonly line: number | undefined;
  readonly issues: readonly ConfigIssue[];

  constructor(
    file: string,
    keyPath: string,
    reason: string,
    options: { line?: number | undefined; cause?: unknown; issues?: readonly ConfigIssue[] } = {},
  ) {
    const issue: ConfigIssue = { file, keyPath, reason, line: options.line };
    const issues = options.issues !== undefined && options.issues.length > 0 ? [...options.issues] : [issue];
    super(issues.map(formatIssue).join('\n'), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConfigError';
    this.file = file;
    this.keyPath = keyPath;
    this.reason = reason;
    this.line = options.line;
    this.issues = issues;
  }

  /** One error listing every issue, one per line, in the order given. */
  static fromIssues(issues: readonly ConfigIssue[]): ConfigError {
    if (issues.length === 0) throw new Error('ConfigError.fromIssues: no issues');
    const first = issues[0];
    return new ConfigError(first.file, first.keyPath, first.reason, { line: first.line, issues });
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError || (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'QUORATE_CONFIG');
}

/** A value as it should appear after "got" in a reason: strings quoted, long values cut. */
export function showValue(value: unknown): string {
  let s: string;
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') s = JSON.stringify(value);
  else if (value === null || typeof value === 'number' || typeof value === 'boolean') s = String(value);
  else if (Array.isArray(value)) s = `a list (${safeJson(value)})`;
  else if (typeof value === 'object') s = `a mapping (${safeJson(value)})`;
  else s = String(value);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** `['quorum', 'servers', 1, 'clientPort']` → `quorum.servers[1].clientPort` */
export function formatKeyPath(keyPath: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of keyPath) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}
