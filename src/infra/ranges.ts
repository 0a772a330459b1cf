import { InvalidArgumentError } from '../errors.ts';

/**
 * A generator option that must be an integer in `[min, max]`, or `fallback` when unset.
 *
 * @example
 * ```ts
 * integerOption(undefined, 6, 1, 100, 'generateKafka: partitions'); // 6
 * ```
 */
export function integerOption(
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  at: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(
      `${at}: ${String(value)} must be an integer from ${min} to ${max}`,
    );
  return value;
}
