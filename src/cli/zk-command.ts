// `quorate zk`: zkCli's verbs over our client, against our quorum or any
// ZooKeeper. With a verb it runs one command; with none it reads commands
// from standard input, one a line, in one session (so addauth applies to
// what follows, as in zkCli).
import { Command } from 'commander';
import readline from 'node:readline';
import { ZkClient, ZkError, isZkError, type ZkClientTls } from '../client/index.js';
import { readFileSync } from 'node:fs';
import { AddWatchMode, CreateMode, Err } from '../proto/zk-constants.js';
import { UsageError, exitCodeFor } from './errors.js';
import { formatAcl, formatStat, parseAcl } from './zk-format.js';

interface ZkGlobalOptions { server: string; timeout: string; auth?: string[]; tlsCa?: string; tlsCert?: string; tlsKey?: string }

type Verb = { usage: string; help: string; run: (zk: ZkClient, args: string[], out: (s: string) => void) => Promise<void> };

/** Take the flags a zkCli verb accepts (e.g. -s -e, or -v N) off the front of args. */
function flags(args: string[], boolFlags: string, valueFlags = ''): { on: Set<string>; values: Map<string, string>; rest: string[] } {
  const on = new Set<string>();
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (/^-[a-zA-Z]$/.test(a) && boolFlags.includes(a[1])) on.add(a[1]);
    else if (/^-[a-zA-Z]$/.test(a) && valueFlags.includes(a[1])) {
      if (i + 1 >= args.length) throw new UsageError(`${a} needs a value`);
      values.set(a[1], args[++i]);
    } else if (/^-[a-zA-Z]$/.test(a)) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  return { on, values, rest };
}

function need(rest: string[], n: number, usage: string): void {
  if (rest.length < n) throw new UsageError(`usage: ${usage}`);
}

function intArg(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new UsageError(`${what}: expected an integer, got "${text}"`);
  return n;
}

const VERBS: Record<string, Verb> = {
  ls: {
    usage: 'ls [-s] [-R] path', help: 'list children (-s with stat, -R recursively)',
    async run(zk, args, out) {
      const { on, rest } = flags(args, 'swR');
      need(rest, 1, this.usage);
      if (on.has('R')) {
        const walk = async (p: string): Promise<void> => {
          out(p);
          for (const c of (await zk.getChildren(p)).sort()) await walk(p === '/' ? `/${c}` : `${p}/${c}`);
        };
        return walk(rest[0]);
      }
      const { children, stat } = await zk.getChildren2(rest[0]);
      out(`[${children.sort().join(', ')}]`);
      if (on.has('s')) out(formatStat(stat));
    },
  },
  stat: {
    usage: 'stat path', help: 'print a znode\'s stat',
    async run(zk, args, out) {
      const { rest } = flags(args, 'w');
      need(rest, 1, this.usage);
      const s = await zk.exists(rest[0]);
      if (!s) throw zkErr(Err.NONODE, rest[0]);
      out(formatStat(s));
    },
  },
  get: {
    usage: 'get [-s] path', help: 'print a znode\'s data (-s with stat)',
    async run(zk, args, out) {
      const { on, rest } = flags(args, 'sw');
      need(rest, 1, this.usage);
      const { data, stat } = await zk.getData(rest[0]);
      out(data === null ? 'null' : data.toString('utf8'));
      if (on.has('s')) out(formatStat(stat));
    },
  },
  create: {
    usage: 'create [-e] [-s] [-c] [-t ttl] path [data] [acl]', help: 'create a znode (-e ephemeral, -s sequential, -c container, -t TTL ms)',
    async run(zk, args, out) {
      const { on, values, rest } = flags(args, 'esc', 't');
      need(rest, 1, this.usage);
      const ttl = values.has('t') ? intArg(values.get('t')!, '-t') : undefined;
      if (on.has('e') && (on.has('c') || ttl !== undefined)) throw new UsageError('-e cannot be combined with -c or -t');
      const mode = on.has('c') ? CreateMode.CONTAINER
        : ttl !== undefined ? (on.has('s') ? CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL : CreateMode.PERSISTENT_WITH_TTL)
          : on.has('e') ? (on.has('s') ? CreateMode.EPHEMERAL_SEQUENTIAL : CreateMode.EPHEMERAL)
            : on.has('s') ? CreateMode.PERSISTENT_SEQUENTIAL : CreateMode.PERSISTENT;
      const acl = rest[2] !== undefined ? parseAcl(rest[2]) : undefined;
      const created = await zk.create(rest[0], rest[1] ?? null, { mode, acl, ttlMs: ttl });
      out(`Created ${created}`);
      if (on.has('e')) out('(the ephemeral node goes away when this command ends: its session closes)');
    },
  },
  set: {
    usage: 'set [-s] [-v version] path data', help: 'set a znode\'s data, optionally only at a version',
    async run(zk, args, out) {
      const { on, values, rest } = flags(args, 's', 'v');
      need(rest, 2, this.usage);
      const stat = await zk.setData(rest[0], rest[1], values.has('v') ? intArg(values.get('v')!, '-v') : -1);
      if (on.has('s')) out(formatStat(stat));
    },
  },
  delete: {
    usage: 'delete [-v version] path', help: 'delete a znode without children',
    async run(zk, args) {
      const { values, rest } = flags(args, '', 'v');
      need(rest, 1, this.usage);
      await zk.delete(rest[0], values.has('v') ? intArg(values.get('v')!, '-v') : -1);
    },
  },
  deleteall: {
    usage: 'deleteall path', help: 'delete a znode and everything below it',
    async run(zk, args) {
      const { rest } = flags(args, '', 'b');
      need(rest, 1, this.usage);
      const remove = async (p: string): Promise<void> => {
        let children: string[] = [];
        try { children = await zk.getChildren(p); } catch (e) { if (isZkError(e, Err.NONODE)) return; throw e; }
        for (const c of children) await remove(p === '/' ? `/${c}` : `${p}/${c}`);
        if (p === '/') return;
        try { await zk.delete(p); } catch (e) { if (!isZkError(e, Err.NONODE)) throw e; }
      };
      await remove(rest[0]);
    },
  },
  getAcl: {
    usage: 'getAcl [-s] path', help: 'print a znode\'s ACL',
    async run(zk, args, out) {
      const { on, rest } = flags(args, 's');
      need(rest, 1, this.usage);
      const { acl, stat } = await zk.getACL(rest[0]);
      out(formatAcl(acl));
      if (on.has('s')) out(formatStat(stat));
    },
  },
  setAcl: {
    usage: 'setAcl [-s] [-v version] [-R] path acl', help: 'set a znode\'s ACL (scheme:id:perms,...)',
    async run(zk, args, out) {
      const { on, values, rest } = flags(args, 'sR', 'v');
      need(rest, 2, this.usage);
      const acl = parseAcl(rest[1]);
      const version = values.has('v') ? intArg(values.get('v')!, '-v') : -1;
      const apply = async (p: string): Promise<void> => {
        const stat = await zk.setACL(p, acl, p === rest[0] ? version : -1);
        if (on.has('s') && p === rest[0]) out(formatStat(stat));
        if (on.has('R')) for (const c of await zk.getChildren(p)) await apply(p === '/' ? `/${c}` : `${p}/${c}`);
      };
      await apply(rest[0]);
    },
  },
  addauth: {
    usage: 'addauth scheme auth', help: 'add an identity to this session (digest user:password)',
    async run(zk, args) {
      need(args, 2, this.usage);
      await zk.addAuth(args[0], args[1]);
    },
  },
  sync: {
    usage: 'sync path', help: 'wait until this server has every write committed before now',
    async run(zk, args, out) { need(args, 1, this.usage); await zk.sync(args[0]); out(`Sync is OK`); },
  },
  reconfig: {
    usage: 'reconfig [-add server.N=host:peer:election[:role][;client],...] [-remove N,...] [-members server.N=...,...] [-v fromConfigId]',
    help: 'change the quorum\'s membership (super user, reconfigEnabled=true)',
    async run(zk, args, out) {
      // zkCli's spelling: -add, -remove, -members, -v, each followed by its value.
      const values = new Map<string, string>();
      for (let i = 0; i < args.length; i++) {
        const k = /^-(add|remove|members|v)$/.exec(args[i])?.[1];
        if (k === undefined || i + 1 >= args.length) throw new UsageError(`usage: ${this.usage}`);
        values.set(k, args[++i]);
      }
      const list = (k: string) => values.get(k)?.split(',').map((x) => x.trim()).filter((x) => x !== '');
      const remove = list('remove')?.map((x) => intArg(x, '-remove'));
      if (values.size === 0 || (values.has('members') && (values.has('add') || values.has('remove')))) throw new UsageError(`usage: ${this.usage}`);
      const from = values.has('v') ? BigInt(`0x${values.get('v')!.replace(/^0x/, '')}`) : -1n;
      const r = await zk.reconfig({ add: list('add'), remove, members: list('members') }, from);
      out('Committed new configuration:');
      out(r.config);
    },
  },
  whoami: {
    usage: 'whoami', help: 'print this session\'s identities',
    async run(zk, _args, out) { for (const c of await zk.whoAmI()) out(`${c.authScheme}: ${c.user}`); },
  },
  getEphemerals: {
    usage: 'getEphemerals [path]', help: 'list this session\'s ephemeral znodes',
    async run(zk, args, out) { out(`[${(await zk.getEphemerals(args[0] ?? '/')).join(', ')}]`); },
  },
  getAllChildrenNumber: {
    usage: 'getAllChildrenNumber path', help: 'count every znode below path',
    async run(zk, args, out) { need(args, 1, this.usage); out(String(await zk.getAllChildrenNumber(args[0]))); },
  },
  watch: {
    usage: 'watch [-R] path', help: 'print events on path (persistent; -R recursive) until interrupted',
    async run(zk, args, out) {
      const { on, rest } = flags(args, 'R');
      need(rest, 1, this.usage);
      await new Promise<void>((resolve) => {
        zk.addWatch(rest[0], on.has('R') ? AddWatchMode.PERSISTENT_RECURSIVE : AddWatchMode.PERSISTENT, (ev) => out(`WatchedEvent type:${ev.type} path:${ev.path}`)).catch(() => resolve());
        process.once('SIGINT', () => resolve());
        zk.on('state', (s) => { if (s === 'expired' || s === 'closed') resolve(); });
      });
    },
  },
};

function zkErr(code: number, path: string): ZkError {
  return new ZkError(code, path);
}

/** zkCli's wording for the errors operators see most, keeping the code name for scripts. */
function describeError(e: unknown): string {
  if (!isZkError(e)) return (e as Error).message ?? String(e);
  const p = e.path ?? '';
  switch (e.code) {
    case Err.NONODE: return `Node does not exist: ${p} (NONODE)`;
    case Err.NODEEXISTS: return `Node already exists: ${p} (NODEEXISTS)`;
    case Err.NOAUTH: return `Insufficient permission: ${p} (NOAUTH)`;
    case Err.BADVERSION: return `version No is not valid: ${p} (BADVERSION)`;
    case Err.NOTEMPTY: return `Node not empty: ${p} (NOTEMPTY)`;
    default: return e.message;
  }
}

async function runLine(zk: ZkClient, words: string[], out: (s: string) => void): Promise<void> {
  const [verb, ...args] = words;
  const v = VERBS[verb];
  if (!v) throw new UsageError(`unknown command "${verb}"; commands: ${Object.keys(VERBS).join(', ')}`);
  await v.run(zk, args, out);
}

/** Split a command line like a shell would for simple quoting ("a b" and 'a b'). */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

/** --tls-ca (and a client certificate with --tls-cert/--tls-key) speaks to a secureClientPort. */
function clientTlsOf(g: ZkGlobalOptions): ZkClientTls | null {
  if (g.tlsCa === undefined) {
    if (g.tlsCert !== undefined || g.tlsKey !== undefined) throw new UsageError('--tls-cert and --tls-key need --tls-ca (the CA the servers\' certificates chain to)');
    return null;
  }
  if ((g.tlsCert === undefined) !== (g.tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const read = (f: string, what: string) => { try { return readFileSync(f, 'utf8'); } catch (e) { throw new UsageError(`${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); } };
  return { ca: read(g.tlsCa, '--tls-ca'), ...(g.tlsCert === undefined ? {} : { cert: read(g.tlsCert, '--tls-cert'), key: read(g.tlsKey!, '--tls-key') }) };
}

async function withClient(g: ZkGlobalOptions, fn: (zk: ZkClient) => Promise<void>): Promise<void> {
  const timeoutMs = Number(g.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout: expected milliseconds, got "${g.timeout}"`);
  const zk = new ZkClient({ connectString: g.server, sessionTimeoutMs: Math.max(4000, timeoutMs), requestTimeoutMs: timeoutMs, tls: clientTlsOf(g) });
  try {
    await zk.connect({ timeoutMs });
    for (const a of g.auth ?? []) {
      const colon = a.indexOf(':');
      if (colon < 0) throw new UsageError(`--auth: expected scheme:credentials, e.g. digest:user:password, got "${a}"`);
      await zk.addAuth(a.slice(0, colon), a.slice(colon + 1));
    }
    await fn(zk);
  } finally {
    await zk.close({ timeoutMs: 2000 }).catch(() => undefined);
  }
}

export function zkCommand(): Command {
  const cmd = new Command('zk')
    .description('zkCli-style commands against our quorum or any ZooKeeper ensemble')
    .requiredOption('--server <host:port,...>', 'servers to connect to (optionally with /chroot)')
    .option('--timeout <ms>', 'connect and request timeout', '10000')
    .option('--auth <scheme:credentials>', 'add an identity first, e.g. digest:user:password (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--tls-ca <file>', 'speak TLS (to a secureClientPort), trusting this CA (PEM)')
    .option('--tls-cert <file>', 'a client certificate (PEM), when the server asks for one; its subject is an x509 identity')
    .option('--tls-key <file>', 'its key')
    .argument('[command...]', `one of: ${Object.keys(VERBS).join(', ')}; none reads commands from standard input`)
    .passThroughOptions()
    .allowUnknownOption()
    .addHelpText('after', '\nCommands:\n' + Object.values(VERBS).map((v) => `  ${v.usage.padEnd(48)} ${v.help}`).join('\n'))
    .action(async (words: string[], g: ZkGlobalOptions) => {
      const out = (s: string) => process.stdout.write(s + '\n');
      try {
        await withClient(g, async (zk) => {
          if (words.length > 0) return runLine(zk, words, out);
          const rl = readline.createInterface({ input: process.stdin, terminal: false });
          let failed = 0;
          for await (const line of rl) {
            const w = splitWords(line);
            if (w.length === 0 || w[0].startsWith('#')) continue;
            try { await runLine(zk, w, out); } catch (e) { failed++; process.stderr.write(`${describeError(e)}\n`); }
          }
          if (failed > 0) process.exitCode = 1;
        });
      } catch (e) {
        process.stderr.write(`${describeError(e)}\n`);
        process.exitCode = exitCodeFor(e);
      }
    });
  return cmd;
}
