/**
 * `queueHandler` inside workerd: the test Worker's `queue()` is `queueHandler(broker)` with
 * handlers running in the Worker; messages come through real queues (Miniflare's broker),
 * settle calls are the runtime's own `ack()` / `retry()`, and what happened is read back from
 * the Worker's endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterInfo, fromQueueMessage } from '../../adapters/cloudflare/wire.ts';
import { QUEUES, sleep, type TestWorker, testWorker, until } from './helpers.ts';

let w: TestWorker;
beforeAll(async () => {
  w = await testWorker({ bindings: { MAX_DELIVERIES: 3, RETRY_BASE_MS: 1000 } });
});
afterAll(async () => {
  await w?.dispose();
});

/** Dead-letter copies (decoded) on `dlq`. */
async function deadLetters() {
  return (await w.received(QUEUES.deadLetters)).map((raw) => {
    const m = fromQueueMessage({ ...raw, timestamp: new Date() });
    return { ...m, info: deadLetterInfo(m.headers), bodyText: new TextDecoder().decode(m.body) };
  });
}

describe('queueHandler in workerd: dispatch and settle', () => {
  it('runs the handler of the target, then acks; properties come from the envelope', async () => {
    const r = await w.publish({ n: 1 }, 'record', {
      correlationId: 'c-1',
      headers: { 'x-tenant': 'a' },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const [s] = await until('the handler', () => w.seen('record'));
    expect(s!.body).toEqual({ n: 1 });
    expect(s!.properties).toMatchObject({
      target: 'record',
      messageId: r.messageId,
      correlationId: 'c-1',
      contentType: 'application/json',
      headers: {
        'x-tenant': 'a',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
      deliveryCount: 1,
    });
    expect(Date.parse(s!.properties.publishedAt)).toBeGreaterThan(Date.now() - 60_000);
    const acks = await until('the ack', async () =>
      (await w.events()).filter((e) => e.event === 'ack' && e.attempts === 1),
    );
    expect(acks.length).toBeGreaterThanOrEqual(1);
  });

  it('a failing handler is retried with the core backoff as delaySeconds; deliveryCount = attempts', async () => {
    const t0 = Date.now();
    await w.publish({ okAt: 3 }, 'flaky');
    const seen = await until('three deliveries', async () => {
      const s = await w.seen('flaky');
      return s.length >= 3 ? s : undefined;
    });
    const elapsed = Date.now() - t0;
    expect(seen.map((s) => s.properties.deliveryCount)).toEqual([1, 2, 3]);
    // backoff 1000 ms then 2000 ms → retry({ delaySeconds: 1 }), retry({ delaySeconds: 2 })
    expect(elapsed).toBeGreaterThanOrEqual(2900);
    const retries = (await w.events()).filter((e) => e.event === 'retry');
    const mine = retries.filter((e) => e.id === retries.find((x) => x.attempts === 1)?.id);
    expect(mine.map((e) => [e.attempts, e.delaySeconds])).toEqual([
      [1, 1],
      [2, 2],
    ]);
  }, 20_000);

  it('after maxDeliveries the message is copied to the dead-letter queue with its reason, then acked', async () => {
    const r = await w.publish({ order: 7 }, 'fail');
    const d = await until('the dead letter', async () =>
      (await deadLetters()).find((x) => x.messageId === r.messageId),
    );
    expect(d.target).toBe('fail');
    expect(d.info).toEqual({
      code: 'handler-failed',
      description: expect.stringContaining('TypeError: database unreachable'),
      deliveryCount: 3,
    });
    expect(JSON.parse(d.bodyText)).toEqual({ order: 7 });
    expect((await w.seen('fail')).map((s) => s.properties.deliveryCount)).toEqual([1, 2, 3]);
  }, 20_000);

  it('a batch with one failure retries that message only — never retryAll', async () => {
    const before = (await w.events()).length;
    await w.publish({ okAt: 2 }, 'flaky', {}, { copies: 5 });
    await until('5 first deliveries', async () => {
      const ev = (await w.events()).slice(before);
      return ev.filter((e) => e.event === 'retry').length >= 5 || undefined;
    });
    await until('5 second deliveries acked', async () => {
      const ev = (await w.events()).slice(before);
      return ev.filter((e) => e.event === 'ack' && e.attempts === 2).length >= 5 || undefined;
    });
    const ev = (await w.events()).slice(before);
    expect(ev.some((e) => e.event === 'retryAll' || e.event === 'ackAll')).toBe(false);
    // mix one success into a batch with failures: acked while its neighbours retry
    const mark = (await w.events()).length;
    await Promise.all([w.publish({ okAt: 2 }, 'flaky'), w.publish({ m: 1 }, 'record')]);
    await until('both settled', async () => {
      const e2 = (await w.events()).slice(mark);
      return (
        (e2.some((e) => e.event === 'retry') && e2.filter((e) => e.event === 'ack').length >= 1) ||
        undefined
      );
    });
    expect((await w.events()).some((e) => e.event === 'retryAll')).toBe(false);
  }, 20_000);

  it('a target with no handler is discarded (acked, not dead-lettered)', async () => {
    const r = await w.publish('nobody', 'no-such-target');
    await until('the discard', async () => (await w.get('/stats')).discarded >= 1 || undefined);
    await sleep(200);
    expect((await deadLetters()).some((d) => d.messageId === r.messageId)).toBe(false);
  });

  it('a body failing the target schema is dead-lettered (schema-invalid), not retried', async () => {
    const r = await w.publish({ id: 12 }, 'typed');
    const d = await until('the dead letter', async () =>
      (await deadLetters()).find((x) => x.messageId === r.messageId),
    );
    expect(d.info.code).toBe('schema-invalid');
    expect(d.info.description).toMatch(/id/);
    expect(d.info.deliveryCount).toBe(1);
  });
});

describe('queueHandler in workerd: poison (no envelope, undecodable)', () => {
  it.each([
    ['a JSON object without envelope', { orderId: 1 }, 'json', /without the cloudmom envelope/],
    ['a text message', 'plain text', 'text', /text body that is not JSON/],
    ['a bytes message', new Uint8Array([0, 1, 0xff]), 'bytes', /bytes body/],
    ['a v8 message', { structured: true }, 'v8', /without the cloudmom envelope/],
    [
      'a newer envelope version',
      { cloudmom: 2, attributes: { target: 'record' }, body: 1 },
      'json',
      /version 2/,
    ],
  ] as const)(
    '%s → dead-lettered as undecodable on the first delivery, then acked',
    async (_n, body, contentType, why) => {
      const before = (await deadLetters()).length;
      const r = await w.sendRaw(body, contentType);
      expect(r).toEqual({ ok: true });
      const d = await until('the dead letter', async () => (await deadLetters()).slice(before)[0]);
      expect(d.info.code).toBe('undecodable');
      expect(d.info.description).toMatch(why);
      expect(d.info.deliveryCount).toBe(1);
      if (body instanceof Uint8Array) expect(Array.from(d.body)).toEqual([0, 1, 0xff]);
      else if (typeof body === 'string') expect(d.bodyText).toBe(body);
      else expect(JSON.parse(d.bodyText)).toEqual(body);
    },
  );

  it('an envelope with an undecodable JSON body is dead-lettered with its target', async () => {
    await w.sendRaw(
      {
        cloudmom: 1,
        attributes: { target: 'record', content_type: 'application/json' },
        text: '{not json',
      },
      'json',
    );
    const d = await until('the dead letter', async () =>
      (await deadLetters()).find((x) => x.bodyText === '{not json'),
    );
    expect(d.target).toBe('record');
    expect(d.info.code).toBe('undecodable');
  });

  it('an envelope without a target is dead-lettered as missing-target', async () => {
    await w.sendRaw({ cloudmom: 1, attributes: {}, body: { orphan: true } }, 'json');
    const d = await until('the dead letter', async () =>
      (await deadLetters()).find((x) => x.info.code === 'missing-target'),
    );
    expect(JSON.parse(d.bodyText)).toEqual({ orphan: true });
  });
});

describe('queueHandler in workerd: replies', () => {
  it('a reply goes through the producer binding of its reply address, before the message is acked', async () => {
    const r = await w.publish({ q: 1 }, 'echo', { replyTo: 'replies', correlationId: 'corr-9' });
    const [raw] = await until('the reply', async () =>
      (await w.received(QUEUES.replies)).filter(
        (m) => m.body?.attributes?.correlation_id === 'corr-9',
      ),
    );
    const reply = fromQueueMessage({ ...raw!, timestamp: new Date() });
    expect(reply.target).toBe('reply');
    expect(reply.text).toBe('{"q":1}');
    // order in the Worker: the reply's send resolved, then the message was acked
    const ev = await w.events();
    const echoSeen = (await w.seen('echo')).find((s) => s.properties.messageId === r.messageId);
    expect(echoSeen).toBeDefined();
    const sent = ev.findIndex((e) => e.event === 'sent' && e.queue === 'replies');
    const ackAfter = ev.findIndex((e, i) => i > sent && e.event === 'ack');
    expect(sent).toBeGreaterThan(-1);
    expect(ackAfter).toBeGreaterThan(sent);
  });

  it('without a reply address, the reply is published to add()`s replyTo target with the correlation id', async () => {
    await w.publish(21, 'ask', { correlationId: 'corr-42' });
    const [a] = await until('the answer', () => w.seen('answer'));
    expect(a!.body).toBe(42);
    expect(a!.properties.correlationId).toBe('corr-42');
  });

  it('a reply address outside the allow-list is refused: dead-lettered, handler not run', async () => {
    const r = await w.publish('x', 'echo', { replyTo: 'attacker-queue' });
    const d = await until('the dead letter', async () =>
      (await deadLetters()).find((x) => x.messageId === r.messageId),
    );
    expect(d.info.code).toBe('reply-not-allowed');
    expect((await w.seen('echo')).some((s) => s.properties.messageId === r.messageId)).toBe(false);
  });
});

describe('CloudflareQueueBroker publish in workerd', () => {
  it('sends the versioned envelope through the producer binding', async () => {
    const r = await w.publish({ id: 7 }, 'record', { headers: { 'x-a': '1' } });
    const [s] = await until('the message', async () =>
      (await w.seen('record')).filter((x) => x.properties.messageId === r.messageId),
    );
    expect(s!.body).toEqual({ id: 7 });
  });

  it('bytes bodies survive, non-UTF-8 included', async () => {
    const bytes = new Uint8Array([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0xc3, 0x28]);
    const r = await w.publish(bytes, 'record');
    const [s] = await until('the message', async () =>
      (await w.seen('record')).filter((x) => x.properties.messageId === r.messageId),
    );
    expect(s!.properties.contentType).toBe('application/octet-stream');
    expect(Array.from(Buffer.from(s!.body.base64, 'base64'))).toEqual(Array.from(bytes));
  });

  it('limits: 95.8 KB of bytes or ~127.8 KB of text fit a message; one byte more is MessageTooLargeError', async () => {
    const fits = await w.publish(new Uint8Array(95_700), 'record');
    expect(fits.error).toBeUndefined();
    const over = await w.publish(new Uint8Array(96_000), 'record');
    expect(over.error).toMatchObject({
      name: 'MessageTooLargeError',
      code: 'message-too-large',
      limit: 128_000,
    });
    const text = await w.publish('x'.repeat(127_700), 'record');
    expect(text.error).toBeUndefined();
    const textOver = await w.publish('x'.repeat(128_000), 'record');
    expect(textOver.error?.name).toBe('MessageTooLargeError');
  });

  it('publishes at once are batched within 100 messages and 256 KB per sendBatch (Miniflare refuses more)', async () => {
    const r = await w.publish('y'.repeat(3000), 'record', {}, { copies: 250 });
    expect(r.error).toBeUndefined();
    expect(r.messageIds).toHaveLength(250);
    await until('250 messages', async () => {
      const ids = new Set(r.messageIds);
      const n = (await w.seen('record')).filter((s) => ids.has(s.properties.messageId)).length;
      return n >= 250 || undefined;
    });
    const sends = (await w.events()).filter((e) => e.event === 'sent' && e.queue === 'queue');
    expect(Math.max(...sends.map((e) => e.count))).toBeLessThanOrEqual(100);
  });

  it('delaySeconds holds a message back; more than 12 h is refused', async () => {
    const t0 = Date.now();
    const r = await w.publish({ late: true }, 'record', { delaySeconds: 2 });
    await until('the delayed message', async () =>
      (await w.seen('record')).filter((x) => x.properties.messageId === r.messageId),
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    const refused = await w.publish('x', 'record', { delaySeconds: 43_201 });
    expect(refused.error).toMatchObject({ name: 'InvalidMessageError' });
  });

  it('request() is refused with a typed error; start() consumes nothing', async () => {
    expect(await w.get('/request')).toMatchObject({ error: { name: 'InvalidArgumentError' } });
    expect(await w.get('/start')).toEqual({ ok: true });
  });
});
