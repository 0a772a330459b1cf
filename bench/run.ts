/**
 * `npm run bench`: runs every `bench/*.bench.ts` suite (or those named on the command line,
 * e.g. `npm run bench -- core aws`), prints one table, and writes it to BENCHMARKS.md with the
 * machine and the command.
 */
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

const sections: { name: string; rows: BenchRow[]; error?: string; seconds: number }[] = [];
for (const f of files) {
  const { suite } = (await import(join(here, f))) as { suite: BenchSuite };
  process.stderr.write(`bench: ${suite.name} …\n`);
  const t0 = performance.now();
  try {
    sections.push({
      name: suite.name,
      rows: await suite.run(),
      seconds: (performance.now() - t0) / 1000,
    });
  } catch (err) {
    sections.push({
      name: suite.name,
      rows: [],
      error: err instanceof Error ? err.message : String(err),
      seconds: (performance.now() - t0) / 1000,
    });
  }
}

const NOTES = [
  'Notes on the core rows: C2 RSS growth is measured after GC around each run; it is dominated by V8 sizing its',
  'young generation and the allocator keeping pages, not by retained objects — the JS heap after GC does not',
  'grow (row "JS heap growth"), and the second, doubled run adds almost nothing. RSS varies by ±20 MB between runs.',
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
