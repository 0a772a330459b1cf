/**
 * Where dead letters go, by configuration, inside workerd: cloudmom's copy (with its reason)
 * through the `deadLetterQueue` binding, or — when the consumer's `max_retries` runs out first,
 * or no binding is configured — the queue's own `dead_letter_queue`, without a reason.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { deadLetterInfo, fromQueueMessage } from '../../adapters/cloudflare/wire.ts';
import { QUEUES, type TestWorker, testWorker, until } from './helpers.ts';

const workers: TestWorker[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
});

async function deadLetters(w: TestWorker, queue: string) {
  return (await w.received(queue)).map((raw) => {
    const m = fromQueueMessage({ ...raw, timestamp: new Date() });
    return { raw, message: m, info: deadLetterInfo(m.headers) };
  });
}

describe('dead letters by configuration', () => {
  it('max_retries below maxDeliveries: the queue moves the message to its dead_letter_queue, without a reason', async () => {
    const w = await testWorker({
      bindings: { MAX_DELIVERIES: 5, RETRY_BASE_MS: 1000 },
      consumer: { maxRetries: 1 },
    });
    workers.push(w);
    const r = await w.publish({ order: 1 }, 'fail');
    const [d] = await until('the native dead letter', () => deadLetters(w, QUEUES.native));
    expect(d!.message.messageId).toBe(r.messageId);
    expect(d!.message.target).toBe('fail');
    expect(d!.info.code).toBe('max-deliveries'); // no dead_letter_reason: the queue moved it
    expect(d!.raw.attempts).toBe(1); // attempts start again on the dead-letter queue
    expect((await w.seen('fail')).map((s) => s.properties.deliveryCount)).toEqual([1, 2]);
    expect(await deadLetters(w, QUEUES.deadLetters)).toEqual([]);
  }, 20_000);

  it('no deadLetterQueue binding: poison is retried until max_retries moves it, with a warning once', async () => {
    const w = await testWorker({ noDeadLetters: true, consumer: { maxRetries: 2 } });
    workers.push(w);
    await w.sendRaw({ not: 'an envelope' }, 'json');
    await w.sendRaw('neither', 'text');
    const natives = await until('two native dead letters', async () => {
      const d = await deadLetters(w, QUEUES.native);
      return d.length >= 2 ? d : undefined;
    });
    expect(natives.map((d) => d.raw.body).sort()).toEqual(
      ['neither', { not: 'an envelope' }].sort(),
    );
    const logs: { level: string; message: string }[] = await w.get('/logs');
    expect(logs.filter((l) => l.message.startsWith('no deadLetterQueue binding'))).toHaveLength(1);
    const retries = (await w.events()).filter((e) => e.event === 'retry');
    expect(retries).toHaveLength(6); // 2 messages × 3 attempts, each retried (the last one moves it)
  }, 20_000);

  it('a reply to an allowed address without a binding dead-letters the message as reply-failed', async () => {
    const w = await testWorker({ bindings: { EXTRA_ALLOWED: ['replies-unbound'] } });
    workers.push(w);
    const r = await w.publish('q', 'echo', { replyTo: 'replies-unbound' });
    const d = await until('the dead letter', async () =>
      (await deadLetters(w, QUEUES.deadLetters)).find((x) => x.message.messageId === r.messageId),
    );
    expect(d.info.code).toBe('reply-failed');
    expect(d.info.description).toMatch(/no producer binding for the address "replies-unbound"/);
    expect((await w.get('/stats')).repliesSent).toBe(0);
  });
});
