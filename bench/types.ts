/**
 * One benchmark row. `npm run bench` (bench/run.ts) runs every `bench/<name>.bench.ts` module's
 * exported `suite`, prints one table and writes it to BENCHMARKS.md.
 */
export interface BenchRow {
  /** Benchmark id from the issue, e.g. "P1". */
  readonly id: string;
  /** What was measured, e.g. "Lambda SQS dispatch, 10-record batches". */
  readonly case: string;
  /** The measured figure of cloudmom, e.g. 182000, with its unit, e.g. "records/s". */
  readonly value: number;
  readonly unit: string;
  /** Shown instead of value and unit when set (rows listing several figures). */
  readonly text?: string;
  /** The anchor measured in the same run, its figure, and cloudmom/anchor (higher = better for cloudmom when `higherIsBetter`). */
  readonly anchor?: string;
  readonly anchorValue?: number;
  readonly ratio?: number;
  /** The ratio's spread over the rounds, e.g. "0.84–0.93" (bench/rounds.ts). */
  readonly spread?: string;
  /** The goal as text, e.g. "≥ 0.9", and whether it was met. */
  readonly goal?: string;
  readonly met?: boolean;
}

export interface BenchSuite {
  readonly name: string;
  /** Starts whatever peer it needs itself (use test/emulators) and stops it before returning. */
  run(): Promise<BenchRow[]>;
}
