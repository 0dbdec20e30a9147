// `npm run bench -- NAME [options]`: runs one benchmark. Each prints one JSON
// document on stdout and its progress on stderr. An unknown or missing name
// lists the benchmarks and exits 2.
const BENCHMARKS: Record<string, { description: string; load: () => Promise<{ main(argv: string[]): Promise<number> }> }> = {
  'zk-standalone': {
    description: 'ours vs Apache ZooKeeper 3.8 standalone (fsync on): latency, throughput, memory',
    load: () => import('./zk-standalone.js'),
  },
  'zk-memory': {
    description: 'ours vs Apache ZooKeeper 3.8, one at a time: RSS holding 1M znodes of 100 B, snapshot time and size, start from the snapshot',
    load: () => import('./zk-memory.js'),
  },
  failover: {
    description: '2 instances with defaults: kill -9 of the active service / controller until the other is active (p50/p99), controller memory and idle CPU',
    load: () => import('./failover.js'),
  },
  journal: {
    description: '3 journal nodes and one writer: acknowledgement latency and throughput at batch 1/16/256, against the fsync floor',
    load: () => import('./journal.js'),
  },
  'vip-failover': {
    description: 'a heartbeat:IPaddr2 floating IP on 3 lab hosts: kill -9 of the active service to the first write through the address (p50/max)',
    load: () => import('./vip-failover.js'),
  },
  'zk-ensemble': {
    description: 'our 3-server quorum vs a 3-server Apache ZooKeeper 3.8 ensemble: latency, throughput, recovery after kill -9 of the leader',
    load: () => import('./zk-ensemble.js'),
  },
  'redis-failover': {
    description: 'the Redis recipe (3 redis-server, haproxy): kill -9 of the primary to the first write acknowledged through HAProxy, writes lost with and without WAIT',
    load: () => import('./redis-failover.js'),
  },
  'postgresql-failover': {
    description: 'the PostgreSQL recipe, 3 real servers: kill -9 of the primary to the first write acknowledged through the client path (p50/max), writes lost, async vs synchronous',
    load: () => import('./postgresql-failover.js'),
  },
};

function list(): string {
  return ['benchmarks:', ...Object.entries(BENCHMARKS).map(([n, b]) => `  ${n.padEnd(16)} ${b.description}`),
    '', 'usage: npm run bench -- NAME [--quick] [--help]'].join('\n');
}

const [name, ...rest] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHMARKS[name];
if (bench === undefined) {
  process.stderr.write(`${name === undefined ? 'no benchmark named' : `unknown benchmark "${name}"`}\n${list()}\n`);
  process.exit(2);
}
const code = await bench.load().then((m) => m.main(rest));
process.exit(code);
