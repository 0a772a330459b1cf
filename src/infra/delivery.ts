/**
 * Helpers the Azure and Google Cloud generators share: option checks and the platform's own
 * delivery limit derived from the topology's `maxDeliveries`.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { ServiceSpec } from '../topology.ts';

/** The default of `deliveryMargin`: deliveries the platform allows beyond `maxDeliveries`. */
export const DEFAULT_DELIVERY_MARGIN = 5;

/**
 * The platform's own delivery limit for a service: `maxDeliveries + margin`, within what the
 * platform allows, and never below `maxDeliveries` — so cloudmom, which dead-letters at
 * `maxDeliveries` with the handler's error as reason, always acts first; the platform's limit
 * only catches deliveries whose handler never answered (a crashed or timed-out instance).
 */
export function platformDeliveries(
  service: ServiceSpec,
  margin: number,
  min: number,
  max: number,
): number {
  return Math.min(max, Math.max(min, service.maxDeliveries + margin));
}

/** `value` unless it is missing; throws naming `at` when it is not a non-empty string matching `pattern`. */
export function stringOption(
  value: unknown,
  fallback: string,
  pattern: RegExp,
  at: string,
  rule: string,
): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !pattern.test(value))
    throw new InvalidArgumentError(`${at}: ${JSON.stringify(value)} must be ${rule}`);
  return value;
}
