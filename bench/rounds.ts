/**
 * The one way every suite compares cloudmom with an anchor: interleaved rounds (A B, then
 * B A, …: each pair runs back to back, the order alternating so neither always goes first),
 * a warm-up first, GC before each run, and the row reporting the median of each side, the
 * median of the paired ratios and their spread (min–max), so a reader can tell noise from a
 * difference.
 */
import type { BenchRow } from './types.ts';

const gc = (globalThis as { gc?: () => void }).gc;

const kept = new Map<string, unknown>();

/**
 * Keeps the first object made under `key` referenced for the rest of the run, as a process that
 * holds one client or broker does; later rounds make their own. Without it the GC before a
 * round collects the previous round's client, V8 drops the optimized code made for its objects
 * ("weak objects" deopts: 207 per K2 run against 15), and every round measures cold code. Used
 * the same way on both sides of a comparison.
 */
export function keepFirst<T>(key: string, made: T): T {
  if (!kept.has(key)) kept.set(key, made);
  return made;
}

/** The figures of one side: one per round. */
export type Samples = number[];

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Runs each of `runs` once per round, interleaved (round r runs them in the given order when r
 * is even, reversed when odd), after `warmup` unrecorded runs of each, with a GC before each
 * run unless `collect` is false. Each run answers its figure (e.g. messages per second).
 */
export async function interleave<K extends string>(
  runs: Record<K, () => Promise<number> | number>,
  rounds: number,
  { warmup = 1, log, collect = true }: { warmup?: number; log?: string; collect?: boolean } = {},
): Promise<Record<K, Samples>> {
  const keys = Object.keys(runs) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, Samples>;
  for (let w = 0; w < warmup; w++) for (const k of keys) await runs[k]();
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 === 0 ? keys : [...keys].reverse()) {
      if (collect) gc?.();
      out[k].push(await runs[k]());
    }
  }
  if (log)
    process.stderr.write(
      `  ${log}: ${keys.map((k) => `${k} ${out[k].map((x) => round3(x)).join(' ')}`).join('; ')}\n`,
    );
  return out;
}

/** A goal on the ratio: `['≥', 0.9]` (throughput) or `['≤', 1.2]` (times, sizes). */
export type Goal = readonly ['≥' | '≤', number];

/**
 * A row comparing `ours` with `anchor` (same rounds, paired): medians, the median of the
 * paired ratios ours ÷ anchor, its min–max, and the goal on it if given.
 */
export function ratioRow(r: {
  id: string;
  case: string;
  unit: string;
  ours: Samples;
  anchor: Samples;
  anchorName: string;
  goal?: Goal;
  digits?: number;
}): BenchRow {
  const ratios = r.ours.map((v, i) => v / r.anchor[i]!);
  const ratio = median(ratios);
  const d = r.digits ?? 0;
  const fix = (x: number) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    id: r.id,
    case: `${r.case} (median of ${r.ours.length} interleaved rounds; ours ${spread(r.ours, d)})`,
    value: fix(median(r.ours)),
    unit: r.unit,
    anchor: `${r.anchorName} (${spread(r.anchor, d)})`,
    anchorValue: fix(median(r.anchor)),
    ratio,
    spread: `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`,
    ...(r.goal
      ? {
          goal: `${r.goal[0]} ${r.goal[1]}`,
          met: r.goal[0] === '≥' ? ratio >= r.goal[1] : ratio <= r.goal[1],
        }
      : {}),
  };
}

/** `min–max` of samples, formatted. */
export function spread(xs: readonly number[], digits = 0): string {
  const f = (x: number) =>
    x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
}

function round3(x: number): string {
  return x >= 100 ? String(Math.round(x)) : x.toPrecision(3);
}

/** Seconds since `t0` (from `performance.now()`). */
export function since(t0: number): number {
  return (performance.now() - t0) / 1000;
}
