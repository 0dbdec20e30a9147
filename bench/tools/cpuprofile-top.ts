// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): the functions with the
// most self time, and the most inclusive time, as a table on stdout.
//   node dist/bench/tools/cpuprofile-top.js FILE.cpuprofile [N]
// To profile our server during a benchmark:
//   QUORATE_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- zk-standalone --ours-only
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const file = f.url.replace(/^file:\/\//, '');
  const short = file.includes('/dist/') ? file.slice(file.indexOf('/dist/') + 6) : file.includes('node_modules/') ? file.slice(file.lastIndexOf('node_modules/') + 13) : path.basename(file);
  return `${name} ${short}:${f.lineNumber + 1}`;
}

function main(): void {
  const [file, nText] = process.argv.slice(2);
  if (!file) { process.stderr.write('usage: node dist/bench/tools/cpuprofile-top.js FILE.cpuprofile [N]\n'); process.exit(2); }
  const n = Number(nText ?? 25);
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  // Self time per node from the samples and their time deltas (microseconds).
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue; // recursion counts once
      seen.add(l);
      incl.set(l, (incl.get(l) ?? 0) + us);
    }
  }
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1).padStart(5)}%`;
  const out: string[] = [];
  out.push(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (${pct(busy, total).trim()} of the thread)`);
  out.push('', `top ${n} by self time (% of busy time):`);
  for (const [l, us] of [...self].filter(([l]) => l !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, n)) out.push(`  ${pct(us, busy)}  ${l}`);
  out.push('', `top ${n} by inclusive time (% of busy time):`);
  for (const [l, us] of [...incl].filter(([l]) => l !== '(idle)' && l !== '(root)').sort((a, b) => b[1] - a[1]).slice(0, n)) out.push(`  ${pct(us, busy)}  ${l}`);
  process.stdout.write(out.join('\n') + '\n');
}

main();
