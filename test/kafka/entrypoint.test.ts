/**
 * `kafkaHandler` (Lambda, MSK / self-managed Kafka): the documented event shape, events built
 * from records consumed from the real Kafka (replies and dead letters land on the real
 * topics), retries across invocations, order, the partial batch response, and a fuzz of 1,000
 * generated events.
 */
import type { Properties } from 'cloudmom';
import {
  KafkaBatchRetryError,
  type KafkaBroker,
  type KafkaEvent,
  type KafkaEventRecord,
  kafkaHandler,
} from 'cloudmom/kafka';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  Kafka,
  type ReadRecord,
  signed,
  type Topology,
  toKafkaEvent,
  topology,
} from './fixture.ts';

const kafka = new Kafka();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(() => kafka.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function fresh(partitions = 1): Promise<Topology> {
  const t = await topology(kafka, partitions);
  cleanups.push(() => t.cleanup());
  return t;
}

function broker(t: Topology, options: Parameters<Topology['broker']>[0] = {}): KafkaBroker {
  const b = t.broker({ logger: false, maxDeliveries: 3, ...options });
  cleanups.push(() => b.stop());
  return b;
}

const toEvent = (records: ReadRecord[], eventSource = 'aws:kafka'): KafkaEvent =>
  toKafkaEvent(records, kafka.brokers, eventSource);

describe('kafkaHandler: event shapes', () => {
  it('decodes the documented MSK example event (no target: dead-lettered with its bytes)', async () => {
    const t = await fresh();
    const b = broker(t, { deadLetterTopic: t.deadLetterTopic });
    b.add('anything', () => undefined);
    // AWS's example MSK event, as documented (topic mytopic, key/value base64, one header)
    const event: KafkaEvent = {
      eventSource: 'aws:kafka',
      eventSourceArn:
        'arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2',
      bootstrapServers:
        'b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092',
      records: {
        'mytopic-0': [
          {
            topic: 'mytopic',
            partition: 0,
            offset: 15,
            timestamp: 1545084650987,
            timestampType: 'CREATE_TIME',
            key: 'abcDEFghiJKLmnoPQRstuVWXyz1234==',
            value: 'SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==',
            headers: [{ headerKey: [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101] }],
          },
        ],
      },
    };
    expect(await kafkaHandler(b)(event)).toBeUndefined();
    const [d] = await until('the dead letter', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length > 0 ? r : undefined;
    });
    expect(d!.value!.toString()).toBe('Hello, this is a test.');
    expect(d!.key!.toString('base64')).toBe(
      Buffer.from('abcDEFghiJKLmnoPQRstuVWXyz1234==', 'base64').toString('base64'),
    );
    expect(d!.headers).toMatchObject({
      headerKey: 'headerValue',
      dead_letter_reason: 'missing-target',
      message_id: 'mytopic/0/15',
      delivery_count: '1',
    });
  });

  it('handles records consumed from Kafka (self-managed shape): properties, replies to requesters', async () => {
    const t = await fresh(3);
    const requester = broker(t, { groupId: `${t.groupId}-requester` });
    const publisher = broker(t);
    await publisher.publish({ n: 1 }, 'work', {
      groupKey: 'customer-7',
      correlationId: 'c-1',
      headers: { tenant: 'acme', ünï: 'v ✓' },
    });
    const replies = Promise.all([
      requester.request({ q: 6 }, 'double'),
      requester.request({ q: 21 }, 'double'),
    ]);
    await until('3 records', async () => {
      const r = await kafka.read(t.topic);
      return r.length >= 3 ? r : undefined;
    });
    const event = toEvent(await kafka.read(t.topic), 'SelfManagedKafka');

    const fn = broker(t);
    const seen: Properties[] = [];
    fn.add('work', (p: Properties) => {
      seen.push(p);
    });
    fn.add('double', (_p: Properties, body: { q: number }) => body.q * 2);
    expect(await kafkaHandler(fn)(event)).toBeUndefined();
    expect((await replies).map((r) => r.body).sort((a, b) => a - b)).toEqual([12, 42]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      target: 'work',
      groupKey: 'customer-7',
      correlationId: 'c-1',
      headers: { tenant: 'acme', ünï: 'v ✓' },
      deliveryCount: 1,
      contentType: 'application/json',
    });
    expect(seen[0]!.publishedAt).toBeInstanceOf(Date);
  });

  it('answers a non-Kafka event without failing (nothing to retry forever)', async () => {
    const t = await fresh();
    const fn = broker(t);
    expect(
      await kafkaHandler(fn)({ eventSource: 'aws:sqs' } as unknown as KafkaEvent),
    ).toBeUndefined();
    expect(await kafkaHandler(fn, { reportBatchItemFailures: true })({} as KafkaEvent)).toEqual({
      batchItemFailures: [],
    });
  });

  it('a record Lambda could not have sent is poison: dead-lettered at once, the batch succeeds', async () => {
    const t = await fresh();
    const fn = broker(t);
    fn.add('x', () => undefined);
    const event = {
      eventSource: 'aws:kafka',
      records: {
        [`${t.topic}-0`]: [
          { topic: t.topic, partition: 0, offset: 1, value: { parsed: 'json' } },
          { topic: t.topic, partition: 0, offset: 2, value: 'eA==', headers: [{ target: 'x' }] },
          { topic: t.topic, partition: 0, offset: 3, value: 'eA==', headers: 'nope' },
        ],
      },
    } as unknown as KafkaEvent;
    expect(await kafkaHandler(fn)(event)).toBeUndefined();
    const dead = await until('three dead letters', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length >= 3 ? r : undefined;
    });
    expect(dead.map((d) => d.headers.dead_letter_reason)).toEqual([
      'undecodable',
      'undecodable',
      'undecodable',
    ]);
    expect(dead[0]!.headers.dead_letter_description).toMatch(/not base64/);
  });

  it('refuses unknown options', async () => {
    const t = await fresh();
    expect(() => kafkaHandler(broker(t), { orderKeyles: true } as never)).toThrow(/unknown option/);
  });
});

describe('kafkaHandler: failures', () => {
  async function eventOf(t: Topology, publish: (p: KafkaBroker) => Promise<unknown>, n: number) {
    const p = broker(t);
    await publish(p);
    const records = await until(`${n} records`, async () => {
      const r = await kafka.read(t.topic);
      return r.length >= n ? r : undefined;
    });
    return toEvent(records);
  }

  it('a failure fails the invocation; the retry runs only what was not handled, with deliveryCount + 1', async () => {
    const t = await fresh();
    const event = await eventOf(
      t,
      async (p) => {
        await p.publish('a', 'w', { groupKey: 'k1' });
        await p.publish('x', 'w', { groupKey: 'k2' });
        await p.publish('b', 'w', { groupKey: 'k2' });
      },
      3,
    );
    const fn = broker(t);
    const calls: string[] = [];
    fn.add('w', (p: Properties, body: string) => {
      calls.push(`${body}@${p.deliveryCount}`);
      if (body === 'x' && p.deliveryCount < 2) throw new Error('transient');
    });
    const handler = kafkaHandler(fn);
    const err = await handler(event).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KafkaBatchRetryError);
    expect((err as KafkaBatchRetryError).retry).toBe(2); // x failed, b (same key) not run
    expect((err as KafkaBatchRetryError).records).toEqual([`${t.topic}/0/1`, `${t.topic}/0/2`]);
    expect((err as KafkaBatchRetryError).message).not.toContain('transient');
    expect(await handler(event)).toBeUndefined();
    expect(calls).toEqual(['a@1', 'x@1', 'x@2', 'b@2']);
  });

  it('after maxDeliveries invocations the record is dead-lettered and the batch succeeds', async () => {
    const t = await fresh();
    const event = await eventOf(t, (p) => p.publish({ id: 7 }, 'w', { groupKey: 'k' }), 1);
    const fn = broker(t, { maxDeliveries: 3 });
    let calls = 0;
    fn.add('w', () => {
      calls++;
      throw new TypeError('database unreachable');
    });
    const handler = kafkaHandler(fn);
    await expect(handler(event)).rejects.toBeInstanceOf(KafkaBatchRetryError);
    await expect(handler(event)).rejects.toBeInstanceOf(KafkaBatchRetryError);
    expect(await handler(event)).toBeUndefined();
    expect(calls).toBe(3);
    const [d] = await until('the dead letter', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length > 0 ? r : undefined;
    });
    expect(d!.headers).toMatchObject({
      dead_letter_reason: 'handler-failed',
      delivery_count: '3',
      target: 'w',
    });
    expect(d!.key?.toString()).toBe('k');
  });

  it('records without a key go one at a time per partition: after a failure the rest wait', async () => {
    const t = await fresh();
    const event = await eventOf(
      t,
      async (p) => {
        for (const s of ['r0', 'r1', 'r2']) await p.publish(s, 'w');
      },
      3,
    );
    const fn = broker(t);
    const calls: string[] = [];
    fn.add('w', async (p: Properties, body: string) => {
      calls.push(`${body}@${p.deliveryCount}`);
      await sleep(5);
      if (body === 'r1' && p.deliveryCount === 1) throw new Error('no');
    });
    const handler = kafkaHandler(fn);
    await expect(handler(event)).rejects.toBeInstanceOf(KafkaBatchRetryError);
    expect(calls).toEqual(['r0@1', 'r1@1']);
    await handler(event);
    expect(calls).toEqual(['r0@1', 'r1@1', 'r1@2', 'r2@2']);
  });

  it('with reportBatchItemFailures, answers the records to retry instead of throwing', async () => {
    const t = await fresh();
    const event = await eventOf(
      t,
      async (p) => {
        await p.publish('ok', 'w', { groupKey: 'a' });
        await p.publish('bad', 'w', { groupKey: 'b' });
      },
      2,
    );
    const fn = broker(t);
    fn.add('w', (_p: Properties, body: string) => {
      if (body === 'bad') throw new Error('no');
    });
    const handler = kafkaHandler(fn, { reportBatchItemFailures: true });
    expect(await handler(event)).toEqual({
      batchItemFailures: [{ itemIdentifier: { 'topic-partition': `${t.topic}-0`, offset: 1 } }],
    });
  });
});

describe('kafkaHandler: fuzz', () => {
  it('1,000 generated events: resolves or asks for a retry, never anything else; every record settles', async () => {
    const t = await fresh(2);
    const fn = broker(t, { maxDeliveries: 2, deadLetterTopic: t.deadLetterTopic });
    let handled = 0;
    fn.add('fz', (_p: Properties, body: unknown) => {
      handled++;
      if (typeof body === 'string' && body.startsWith('fail')) throw new Error('fuzz failure');
    });
    const handler = kafkaHandler(fn, { memory: 100_000 });
    const bytes = fc.uint8Array({ maxLength: 24 });
    const header = fc.oneof(
      fc.record({ name: fc.constantFrom('target'), v: fc.constantFrom('fz', 'other', '') }),
      fc.record({
        name: fc.constantFrom('content_type'),
        v: fc.constantFrom('text/plain', 'application/json', 'x/y'),
      }),
      fc.record({ name: fc.string({ maxLength: 8 }), v: fc.string({ maxLength: 8 }) }),
    );
    const record = fc.record({
      partition: fc.integer({ min: 0, max: 1 }),
      key: fc.option(fc.string({ maxLength: 6 })),
      value: fc.oneof(
        fc.constantFrom('ok', 'fail-1', '"json"', '{"a":'),
        bytes.map((b) => Buffer.from(b).toString('latin1')),
      ),
      target: fc.constantFrom('fz', 'fz', 'fz', 'fz', 'other', '', null),
      contentType: fc.constantFrom('text/plain', 'text/plain', 'application/json', 'x/y', null),
      headers: fc.array(header, { maxLength: 3 }),
      badBytes: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
      shape: fc.oneof(
        { arbitrary: fc.constant('normal' as const), weight: 17 },
        { arbitrary: fc.constantFrom('object-value', 'no-offset', 'bad-headers'), weight: 3 },
      ),
    });
    let offset = 0;
    let resolved = 0;
    let retried = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 5 }), async (recs) => {
        const records: Record<string, KafkaEventRecord[]> = {};
        for (const r of recs) {
          const headers =
            r.shape === 'bad-headers'
              ? ('x' as never)
              : [
                  ...(r.target === null ? [] : [{ target: signed(Buffer.from(r.target)) }]),
                  ...(r.contentType === null
                    ? []
                    : [{ content_type: signed(Buffer.from(r.contentType)) }]),
                  ...r.headers.map((h) => ({
                    [h.name]: r.badBytes ? [0xc3, 0x28] : signed(Buffer.from(h.v)),
                  })),
                ];
          const tp = `${t.topic}-${r.partition}`;
          const list = records[tp] ?? [];
          records[tp] = list;
          list.push({
            topic: t.topic,
            partition: r.partition,
            offset: r.shape === 'no-offset' ? (undefined as never) : offset++,
            timestamp: Date.now(),
            ...(r.key !== null ? { key: Buffer.from(r.key).toString('base64') } : {}),
            value:
              r.shape === 'object-value'
                ? ({ v: 1 } as never)
                : Buffer.from(r.value).toString('base64'),
            headers,
          });
        }
        const event: KafkaEvent = { eventSource: 'SelfManagedKafka', records };
        // Lambda retries a failed batch; within maxDeliveries + 1 tries every record settles.
        for (let attempt = 0; ; attempt++) {
          try {
            const out = await handler(event);
            expect(out).toBeUndefined();
            resolved++;
            return;
          } catch (err) {
            expect(err).toBeInstanceOf(KafkaBatchRetryError);
            retried++;
            expect(attempt).toBeLessThan(3);
          }
        }
      }),
      { numRuns: 1000, seed: 20261201 },
    );
    expect(resolved).toBe(1000);
    // every dead-letter copy the core counted is on the dead-letter topic
    const dead = await until('the dead letters', async () => {
      const r = await kafka.read(t.deadLetterTopic);
      return r.length === fn.stats.deadLettered ? r : undefined;
    });
    const reasons: Record<string, number> = {};
    for (const d of dead)
      reasons[d.headers.dead_letter_reason!] = (reasons[d.headers.dead_letter_reason!] ?? 0) + 1;
    console.log('dead-letter reasons', JSON.stringify(reasons));
    console.log(
      `kafkaHandler fuzz: 1000 events (${offset} records), ${retried} retried invocations, ${handled} handler runs, stats ${JSON.stringify(fn.stats)}`,
    );
  }, 180_000);
});
