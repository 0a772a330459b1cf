/**
 * Prints the top self-time frames of a V8 `.cpuprofile` (from `node --cpu-prof`):
 * `node bench/profile/top.ts <file.cpuprofile> [count]`.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const count = Number(process.argv[3] ?? 25);
const self = new Map<string, number>();
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const ticks = new Map<number, number>();
for (const s of profile.samples) ticks.set(s, (ticks.get(s) ?? 0) + 1);
let total = 0;
for (const [id, n] of ticks) {
  const node = byId.get(id)!;
  const f = node.callFrame;
  const file = f.url.replace(/^.*\/(node_modules\/|src\/|adapters\/|bench\/)/, '$1');
  const key = `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n);
  total += n;
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
for (const [k, n] of rows) console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`);

// `LINES=<function name>`: the hottest source lines of that function (positionTicks).
const want = process.env.LINES;
if (want) {
  const lines = new Map<string, number>();
  for (const n of profile.nodes as (Node & { positionTicks?: { line: number; ticks: number }[] })[])
    if (n.callFrame.functionName === want)
      for (const p of n.positionTicks ?? [])
        lines.set(
          `${n.callFrame.url.split('/').pop()}:${p.line}`,
          (lines.get(`${n.callFrame.url.split('/').pop()}:${p.line}`) ?? 0) + p.ticks,
        );
  for (const [k, t] of [...lines.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log(`  ${String(t).padStart(6)}  ${k}`);
}

// Self time by owner: cloudmom's code, each node_modules package, Node and V8.
const owners = new Map<string, number>();
for (const [id, n] of ticks) {
  const url = byId.get(id)!.callFrame.url;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  const owner = m
    ? m[1]!
    : /\/(src|adapters)\//.test(url)
      ? 'cloudmom'
      : /\/bench\//.test(url)
        ? 'bench'
        : url.startsWith('node:')
          ? 'node'
          : url === ''
            ? byId.get(id)!.callFrame.functionName || '(native)'
            : url;
  owners.set(owner, (owners.get(owner) ?? 0) + n);
}
console.log('by owner:');
for (const [k, n] of [...owners.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12))
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`);

// `CALLERS=<function name>`: where that function's self time is called from (4 frames up).
const callersOf = process.env.CALLERS;
if (callersOf) {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
  };
  const chains = new Map<string, number>();
  for (const [id, t] of ticks) {
    if (byId.get(id)!.callFrame.functionName !== callersOf) continue;
    const chain: string[] = [];
    for (
      let p = parent.get(id);
      p !== undefined && chain.length < (Number(process.env.DEPTH) || 4);
      p = parent.get(p)
    )
      chain.push(name(p));
    const k = chain.join(' < ');
    chains.set(k, (chains.get(k) ?? 0) + t);
  }
  console.log(`callers of ${callersOf}:`);
  for (const [k, t] of [...chains.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10))
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}
