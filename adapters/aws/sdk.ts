/**
 * The AWS SDK v3 clients, loaded on first use (synchronously, through `require`), so that a
 * Lambda which never sends (no replies, no dead letters) does not pay for loading them at
 * cold start. Both are optional peer dependencies of cloudmom. And how their errors read:
 * the core wraps them once, through the transport's `isRetryable` / `errorCode`.
 */
import { optionalPeer } from '../../src/peer.ts';

type SqsModule = typeof import('@aws-sdk/client-sqs');
type SnsModule = typeof import('@aws-sdk/client-sns');

/** `@aws-sdk/client-sqs`, loaded once. */
export const sqsSdk = /* @__PURE__ */ optionalPeer<SqsModule>(
  '@aws-sdk/client-sqs',
  'cloudmom/aws',
);

/** `@aws-sdk/client-sns`, loaded once. */
export const snsSdk = /* @__PURE__ */ optionalPeer<SnsModule>(
  '@aws-sdk/client-sns',
  'cloudmom/aws',
);

/** The AWS error name (`QueueDoesNotExist`, `InvalidParameterValue`...) of an SDK error. */
export function awsErrorName(err: unknown): string {
  const e = (typeof err === 'object' ? err : null) as { name?: unknown; Code?: unknown } | null;
  return typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : 'Error';
}

/** True when the service says the fault is the caller's: retrying the same call will not help. */
export function isClientFault(err: unknown): boolean {
  const e = err as { $fault?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  if (e == null || awsErrorName(err).includes('Throttl')) return false;
  if (e.$fault === 'client') return true;
  const status = e.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500 && status !== 429;
}

/** True when the queue or topic an SDK error is about does not exist. */
export function isNotFound(err: unknown): boolean {
  return /QueueDoesNotExist|NonExistentQueue|^NotFound(Exception)?$/.test(awsErrorName(err));
}
