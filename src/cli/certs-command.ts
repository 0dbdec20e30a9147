// `quorate certs create`: a cluster CA and a certificate for every host the
// cluster file names (quorum servers, journal nodes, controllers), each with
// its host as a subject alternative name and usable as server and client, plus
// client certificates for operators; in the manner of `cockroach cert`. Made
// with the openssl command (EC P-256); keys are written 0600, existing files
// are kept unless --force.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { Command } from 'commander';
import { parseClusterFile, readConfigText } from '../config/cluster-file.js';
import { placeProcesses } from '../config/cluster-placement.js';
import { UsageError, reportAndExit } from './errors.js';

const CN_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function openssl(args: string[], what: string): void {
  try {
    execFileSync('openssl', args, { stdio: 'pipe', timeout: 30_000 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new Error('the openssl command is not installed (Debian: apt-get install openssl)');
    throw new Error(`openssl failed making ${what}: ${err.stderr?.toString().trim().split('\n').slice(-2).join(' / ') ?? err.message}`);
  }
}

interface Made { file: string; made: boolean }

export function makeCa(dir: string, cluster: string, days: number, force: boolean): Made {
  const cert = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'ca.key');
  if (!force && fs.existsSync(cert) && fs.existsSync(key)) return { file: cert, made: false };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', String(days * 10),
    '-subj', `/CN=Quorate ${cluster} CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', key, '-out', cert], 'the CA');
  fs.chmodSync(key, 0o600);
  return { file: cert, made: true };
}

export function issue(dir: string, sub: string, name: string, cn: string, san: string | null, usage: string, days: number, force: boolean): Made {
  fs.mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
  const base = path.join(dir, sub, name);
  const cert = `${base}.pem`;
  if (!force && fs.existsSync(cert) && fs.existsSync(`${base}.key`)) return { file: cert, made: false };
  const ext = `${base}.ext`;
  fs.writeFileSync(ext, `${san === null ? '' : `subjectAltName=${san}\n`}extendedKeyUsage=${usage}\nkeyUsage=critical,digitalSignature,keyAgreement\n`);
  try {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${base}.key`, '-out', `${base}.csr`], `the key of ${name}`);
    fs.chmodSync(`${base}.key`, 0o600);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial',
      '-days', String(days), '-extfile', ext, '-out', cert], `the certificate of ${name}`);
  } finally {
    fs.rmSync(ext, { force: true });
    fs.rmSync(`${base}.csr`, { force: true });
  }
  return { file: cert, made: true };
}

export function certsCommand(): Command {
  const cmd = new Command('certs').description('make a cluster CA and certificates for every host of a cluster file, and for operators (with openssl)');
  cmd.command('create')
    .description('the CA (if missing), a server+client certificate per host named in the cluster file, and a client certificate per --operator')
    .requiredOption('--config <file>', 'cluster file (YAML)')
    .requiredOption('--dir <dir>', 'where to write them: ca.pem, ca.key, hosts/<host>.pem|key, clients/<name>.pem|key')
    .option('--operator <cn...>', 'client certificates for these operators (their CN goes in journal.operators)')
    .option('--days <n>', 'validity of host and client certificates in days (the CA: ten times as long)', '365')
    .option('--force', 'replace what exists (a new CA invalidates every certificate it signed)')
    .action((opts: { config: string; dir: string; operator?: string[]; days: string; force?: boolean }) => {
      try {
        const days = Number(opts.days);
        if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError(`--days: expected 1-3650, got "${opts.days}"`);
        for (const cn of opts.operator ?? []) if (!CN_PATTERN.test(cn)) throw new UsageError(`--operator: "${cn}" is not a usable common name (letters, digits, . _ @ -)`);
        const cluster = parseClusterFile(readConfigText(opts.config), opts.config);
        const hosts = [...new Set(placeProcesses(cluster).map((p) => p.host))];
        if (hosts.length === 0) throw new UsageError(`${opts.config} names no host (no quorum servers, journal nodes or service instances)`);
        fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
        const out: string[] = [];
        const say = (what: string, m: Made) => out.push(`${m.made ? 'made' : 'kept'} ${what}: ${m.file}`);
        say('CA', makeCa(opts.dir, cluster.cluster, days, opts.force === true));
        for (const h of hosts) say(`host ${h}`, issue(opts.dir, 'hosts', h, h, `${isIP(h) === 0 ? 'DNS' : 'IP'}:${h}`, 'serverAuth,clientAuth', days, opts.force === true));
        for (const cn of opts.operator ?? []) say(`operator ${cn}`, issue(opts.dir, 'clients', cn, cn, null, 'clientAuth', days, opts.force === true));
        out.push('', 'On each host, copy ca.pem and that host\'s hosts/<host>.pem and .key to the same paths (say /etc/quorate/tls/ca.pem, host.pem, host.key, the key 0600),',
          'and name them in quorum.tls, journal.tls and controller.tls. ca.key signs new certificates: keep it off the hosts.');
        process.stdout.write(out.join('\n') + '\n');
      } catch (e) { reportAndExit(e); }
    });
  return cmd;
}
