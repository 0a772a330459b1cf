/**
 * `npm run bench`: runs every `bench/*.bench.ts` suite (or those named on the command line,
 * e.g. `npm run bench -- core aws`), each in a Node process of its own, prints one table, and
 * writes it to BENCHMARKS.md with the machine and the command.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow, BenchSuite } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort((a, b) => (a === 'core.bench.ts' ? -1 : b === 'core.bench.ts' ? 1 : a.localeCompare(b)))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace('.bench.ts', '')));

type Section = { name: string; rows: BenchRow[]; error?: string; seconds: number };

/** Runs one suite here; answers its section. */
async function runSuite(f: string): Promise<Section> {
  const { suite } = (await import(join(here, f))) as { suite: BenchSuite };
  process.stderr.write(`bench: ${suite.name} …\n`);
  const t0 = performance.now();
  try {
    return { name: suite.name, rows: await suite.run(), seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    return {
      name: suite.name,
      rows: [],
      error: err instanceof Error ? err.message : String(err),
      seconds: (performance.now() - t0) / 1000,
    };
  }
}

// A child runs one suite and prints its section as the last line of its stdout.
if (process.env.BENCH_CHILD) {
  const section = await runSuite(process.env.BENCH_CHILD);
  process.stdout.write(`\n${JSON.stringify(section)}\n`);
  process.exit(0);
}

// Each suite in a Node process of its own: code the suites share (the core's router and
// receive path) would otherwise be optimized for every platform that ran before — a Lambda
// or a consumer process runs one.
const sections: Section[] = [];
for (const f of files) {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_CHILD: f },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    sections.push(JSON.parse(last) as Section);
  } catch {
    sections.push({ name: f, rows: [], error: `exited ${r.status ?? r.signal}`, seconds: 0 });
  }
}

const NOTES = [
  'How to read it: every ratio is the median of interleaved rounds (A B, B A, … after a warm-up;',
  'bench/rounds.ts) with its spread (min–max of the paired ratios) beside it, so noise can be told from',
  'a difference. Each suite runs in a Node process of its own. P1 counts CPU time of this process (no I/O);',
  'the rest wall clock. Against moto (a Python process) SQS figures are moto-bound: the client is ~97% idle.',
  '',
  '![Throughput by message size and concurrency on MemoryBroker and SqsBroker (fauxqs), and memory growth](docs/bench/curves.svg)',
  '',
  'Notes on the core rows: C2 memory is measured after GC around each run. A fresh process grows its RSS by',
  'tens of MB over its first ~100k messages while its JS heap after GC stays flat: V8 and malloc reach their',
  'working size (with `MALLOC_ARENA_MAX=1` the RSS stops there and later runs add 0). That first 100k is the',
  'warm-up row; growth is measured on the runs after it, where the doubled run must add nothing.',
  '',
  '',
].join('\n');
const fmt = (n: number | undefined) =>
  n === undefined ? '' : Number.isInteger(n) ? n.toLocaleString('en-US') : String(n);
const lines = [
  '| id | case | cloudmom | anchor | anchor figure | ratio | spread | goal | met |',
  '|---|---|---:|---|---:|---:|---:|---|:---:|',
];
for (const s of sections) {
  lines.push(`| | **${s.name}** (${s.seconds.toFixed(0)} s) | | | | | | | |`);
  if (s.error)
    lines.push(`| | failed: ${s.error.replace(/\|/g, '/').split('\n')[0]} | | | | | | | ✗ |`);
  for (const r of s.rows) {
    lines.push(
      `| ${r.id} | ${r.case} | ${r.text ?? `${fmt(r.value)} ${r.unit}`} | ${r.anchor ?? ''} | ${fmt(r.anchorValue)} | ${r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`} | ${r.spread ?? ''} | ${r.goal ?? ''} | ${r.met === undefined ? '' : r.met ? '✓' : '✗'} |`,
    );
  }
}
const table = lines.join('\n');
const cpu = cpus();
const machine = `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
const command = `npm run bench${wanted.length ? ` -- ${wanted.join(' ')}` : ''}`;
console.log(`\n${machine}\n\n${table}\n`);

if (wanted.length === 0) {
  writeFileSync(
    join(here, '..', 'BENCHMARKS.md'),
    `# Benchmarks\n\nWritten by \`${command}\` on ${new Date().toISOString().slice(0, 10)}.\n\nMachine: ${machine}.\n\n` +
      'Every anchor is measured in the same run as the figure it is compared with; each suite in `bench/` ' +
      'says how its ratio is formed (for throughputs cloudmom ÷ anchor, higher is better; for times and sizes ' +
      'cloudmom ÷ anchor, lower is better). Figures vary from run to run on this shared 2-core machine.\n\n' +
      NOTES +
      `${table}\n`,
  );
  console.log('wrote BENCHMARKS.md');
}
