/**
 * Shared bits of the peer's own tests: a client on the injected connection string, fresh
 * entity names (the peer creates entities on first use), and cleanup; and, for every azure
 * test, {@link peekCount}.
 */
import { randomUUID } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, inject } from 'vitest';

/** The peer's tests rely on its on-demand entities: they run against the peer only. */
export const onPeer = inject('serviceBusIsPeer');

/** A client for this test file, closed after it. */
export function client(): ServiceBusClient {
  const c = new ServiceBusClient(inject('serviceBusConnectionString'), {
    retryOptions: { maxRetries: 1, timeoutInMs: 10_000 },
  });
  afterAll(() => c.close());
  return c;
}

/** A fresh entity name; prefixes pick settings from the peer's config (`lock2s-`, `max3-`). */
export function fresh(prefix = 'peer-'): string {
  return `${prefix}${randomUUID().slice(0, 8)}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Messages in a (non-session) queue, up to `max`: a fresh receiver peeks from the first
 * message, and a peek sees locked messages too.
 */
export async function peekCount(c: ServiceBusClient, queue: string, max: number): Promise<number> {
  const peeker = c.createReceiver(queue, { receiveMode: 'peekLock' });
  try {
    return (await peeker.peekMessages(max)).length;
  } finally {
    await peeker.close();
  }
}
