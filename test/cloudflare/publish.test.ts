/**
 * Publishing with CloudflareQueueBroker, inside workerd (a Worker's producer bindings) and from
 * Node (Miniflare's producer proxies): the envelope arrives on the real queue as written.
 */
import { readFileSync } from 'node:fs';
import type { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fromQueueMessage } from '../../adapters/cloudflare/wire.ts';
import { startWorker } from '../emulators/cloudflare/workerd.ts';

let mf: Miniflare;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  mf = await startWorker({
    script: readFileSync(inject('cloudflareWorkerBundle'), 'utf8'),
    queueProducers: {
      QUEUE: { queueName: 'q' },
      DEAD_LETTERS: { queueName: 'dlq' },
      REPLIES: { queueName: 'replies' },
    },
    queueConsumers: {
      q: { maxBatchSize: 100, maxBatchTimeout: 0.05 },
      dlq: { maxBatchSize: 100, maxBatchTimeout: 0.05 },
      replies: { maxBatchSize: 100, maxBatchTimeout: 0.05 },
    },
  });
});
afterAll(async () => {
  await mf?.dispose();
});

async function call(path: string, body?: unknown): Promise<any> {
  const res = await mf.dispatchFetch(
    `http://worker${path}`,
    body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) },
  );
  return res.json();
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('CloudflareQueueBroker publish inside workerd', () => {
  it('sends the envelope through the producer binding', async () => {
    const r = await call('/publish', {
      body: { id: 7 },
      target: 'orders',
      options: { correlationId: 'c-1', headers: { 'x-tenant': 'a' } },
    });
    expect(r.error).toBeUndefined();
    const got = await until('the message', async () =>
      (await call('/received')).find((m: any) => m.body?.attributes?.message_id === r.messageId),
    );
    expect(got.queue).toBe('q');
    expect(got.body).toEqual({
      cloudmom: 1,
      attributes: {
        'x-tenant': 'a',
        target: 'orders',
        message_id: r.messageId,
        content_type: 'application/json',
        correlation_id: 'c-1',
      },
      body: { id: 7 },
    });
    const incoming = fromQueueMessage({
      id: got.id,
      timestamp: new Date(),
      attempts: got.attempts,
      body: got.body,
    });
    expect(incoming).toMatchObject({
      target: 'orders',
      correlationId: 'c-1',
      headers: { 'x-tenant': 'a' },
      text: '{"id":7}',
    });
  });
});
