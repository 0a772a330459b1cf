/**
 * rmqHandler fuzzed with 1,000 generated `aws:rmq` events (seeded): odd header values, bodies
 * that are and are not what their content type says, missing and empty fields, foreign keys.
 * Whatever comes in, every record ends handled, discarded or dead-lettered (by a copy
 * RabbitMQ confirmed), and the handler fails the invocation only when a handler threw.
 */
import type { RmqEvent, RmqMessage } from 'cloudmom/amqp';
import { RmqBatchError, rmqHandler } from 'cloudmom/amqp';
import { afterAll, expect, it } from 'vitest';
import { closeTestConnection, testConnection, topology } from './fixture.ts';

afterAll(() => closeTestConnection());

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

it('1,000 generated events: every record settled, no crash, failures only from handlers', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? 20261201);
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const bytes = (s: string) => ({ bytes: [...Buffer.from(s)].map((b) => (b > 127 ? b - 256 : b)) });
  const strings = ['', 'a', 'ünï ✓', '../x', '{"j":1}', 'x'.repeat(300), '\u0000', 'line\nbreak'];
  const targets = ['ok', 'ok', 'ok', 'fails', 'nobody', '', undefined];
  const headerValue = () =>
    pick<unknown>([
      bytes(pick(strings)),
      rnd() * 1e6,
      -7,
      true,
      null,
      [1, bytes('x'), { nested: bytes('y') }],
      { scale: 2, value: 314 },
      { bytes: [-1, -2, 300] },
      { bytes: 'not an array' },
      'plain string',
    ]);
  const body = (type: string | undefined) => {
    const kind = rnd();
    if (kind < 0.1) return undefined; // no data
    if (kind < 0.2) return '%%%not base64%%%';
    if (type?.startsWith('application/json'))
      return Buffer.from(rnd() < 0.8 ? JSON.stringify({ n: rnd() }) : '{broken').toString('base64');
    return Buffer.from(pick(strings)).toString('base64');
  };

  const t = await topology();
  const broker = t.broker({ logger: false, maxDeliveries: 3 });
  let handled = 0;
  broker.add('ok', () => {
    handled++;
  });
  let retriedInEvent = false;
  broker.add('fails', (p) => {
    if (p.deliveryCount < 3) retriedInEvent = true; // else: dead-lettered (maxDeliveries 3)
    throw new Error('handler failure');
  });
  const handler = rmqHandler(broker);
  let records = 0;
  let invocationsFailed = 0;
  for (let e = 0; e < 1000; e++) {
    const list: RmqMessage[] = [];
    retriedInEvent = false;
    for (let i = Math.floor(rnd() * 5); i >= 0; i--) {
      const target = pick(targets);
      const type = pick([
        undefined,
        'application/json',
        'text/plain',
        'application/octet-stream',
        'image/png',
      ]);
      const headers: Record<string, unknown> = {};
      for (let h = Math.floor(rnd() * 4); h > 0; h--)
        headers[pick(['k', 'x-custom', 'ünï', 'with space', 'traceparent'])] = headerValue();
      if (target !== undefined) headers.target = rnd() < 0.8 ? bytes(target) : target;
      const count = pick([undefined, 0, 1, 2, 5, 'NaN', -3]);
      if (count !== undefined) headers['x-delivery-count'] = count;
      const data = body(type);
      list.push({
        basicProperties:
          rnd() < 0.05
            ? null
            : { contentType: type ?? null, headers, messageId: pick([null, `m-${e}-${i}`]) },
        redelivered: rnd() < 0.3,
        ...(data === undefined ? {} : { data }),
      });
    }
    records += list.length;
    const event: RmqEvent = {
      eventSource: 'aws:rmq',
      eventSourceArn: 'arn:aws:mq:us-east-1:111122223333:broker:fuzz:b-1',
      rmqMessagesByQueue: { [`${t.queue}::/`]: list, 'other::/vhost': rnd() < 0.1 ? [] : null },
    };
    const err = await handler(event).catch((x: unknown) => x);
    // the invocation fails exactly when a handler failed below maxDeliveries
    if (retriedInEvent) {
      expect(err, `seed ${seed}, event ${e}`).toBeInstanceOf(RmqBatchError);
      invocationsFailed++;
    } else expect(err, `seed ${seed}, event ${e}`).toBeUndefined();
  }
  const s = broker.stats;
  // every record: handled (acked), discarded, dead-lettered, or retried (failing handler)
  expect(s.delivered).toBe(records);
  expect(s.acked + s.discarded + s.deadLettered + s.retried).toBeGreaterThanOrEqual(records);
  expect(handled).toBeGreaterThan(0);
  expect(invocationsFailed).toBeGreaterThan(0);
  const dead = await t.deadLetters();
  expect(dead.length).toBe(s.deadLettered);
  for (const d of dead) expect(d.headers.dead_letter_reason).toBeTypeOf('string');
  const { messageCount } = await testConnection().queueDeclare({ queue: t.queue, passive: true });
  expect(messageCount).toBe(0); // nothing was published to the inbound queue by the handler
  console.log(
    `rmqHandler fuzz (seed ${seed}): ${records} records in 1000 events; handled ${handled}, discarded ${s.discarded}, dead-lettered ${s.deadLettered}, retried ${s.retried}; ${invocationsFailed} invocations failed`,
  );
  await t.cleanup();
}, 120_000);
