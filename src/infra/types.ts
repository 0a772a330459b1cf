import type { Topology } from '../topology.ts';

/**
 * One file a generator writes: a path relative to the output folder and its full text.
 *
 * @example
 * ```ts
 * const file: GeneratedFile = { path: 'topics.json', content: '{}\n' };
 * ```
 */
export interface GeneratedFile {
  /** Relative path, `/`-separated (e.g. `infra/kafka/topics.json`). */
  readonly path: string;
  /** The whole file, ending in a newline; deterministic (same topology → same bytes). */
  readonly content: string;
}

/**
 * A generator: a pure, deterministic function from a topology (and the platform's own
 * options) to files. It throws `InvalidArgumentError` for a topology the platform cannot
 * provision (e.g. an ordered service where the platform cannot order), naming the fix.
 *
 * @example
 * ```ts
 * const kafka: Generator<{ partitions?: number }> = (topology, options = {}) => [];
 * ```
 */
export type Generator<Options extends object = object> = (
  topology: Topology,
  options?: Options,
) => GeneratedFile[];
