/**
 * rmqHandler with `aws:rmq` events: the documented example event, and events built from
 * messages received from the real RabbitMQ (as Amazon MQ's event source would hand them
 * over: string headers as `{bytes}`, base64 data, the Java date text); the replies and
 * dead-letter copies it sends are read back from RabbitMQ.
 */
import { InvalidArgumentError } from 'cloudmom';
import { RmqBatchError, type RmqEvent, rmqHandler, rmqMessages } from 'cloudmom/amqp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  closeTestConnection,
  drainAsRmq as drain,
  rmqEvent,
  type Topology,
  testConnection,
  topology,
} from './fixture.ts';

/** The example event of the AWS docs (aws-lambda-events fixture `example-rabbitmq-event.json`). */
const DOCUMENTED_EVENT: RmqEvent = {
  eventSource: 'aws:rmq',
  eventSourceArn:
    'arn:aws:mq:us-west-2:112556298976:broker:test:b-9bcfa592-423a-4942-879d-eb284b418fc8',
  rmqMessagesByQueue: {
    'test::/': [
      {
        basicProperties: {
          contentType: 'text/plain',
          contentEncoding: null,
          headers: {
            header1: { bytes: [118, 97, 108, 117, 101, 49] },
            header2: { bytes: [118, 97, 108, 117, 101, 50] },
            numberInHeader: 10,
          },
          deliveryMode: 1,
          priority: 34,
          correlationId: null,
          replyTo: null,
          expiration: '60000',
          messageId: null,
          timestamp: 'Jan 1, 1970, 12:33:41 AM',
          type: null,
          userId: 'AIDACKCEVSQ6C2EXAMPLE',
          appId: null,
          clusterId: null,
          bodySize: 80,
        },
        redelivered: false,
        data: 'eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ==',
      },
    ],
  },
};

let t: Topology | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});
afterAll(() => closeTestConnection());

describe('rmqHandler', () => {
  it('decodes the documented example event: base64 data, {bytes} headers, the Java date', () => {
    const [m] = rmqMessages(DOCUMENTED_EVENT);
    expect(m).toMatchObject({
      target: undefined,
      contentType: 'text/plain',
      headers: { header1: 'value1', header2: 'value2', numberInHeader: '10' },
      deliveryCount: 1,
      publishedAt: new Date(Date.UTC(1970, 0, 1, 0, 33, 41)),
      source: 'test',
    });
    expect(Buffer.from(m!.body).toString()).toBe('{"timeout":0,"data":"CZrmf0Gw8Ov4bqLQxD4E"}');
  });

  it('dead-letters the documented event (it has no target) to the dead-letter exchange, and succeeds', async () => {
    t = await topology();
    const broker = t.broker({ logger: false });
    broker.add('anything', () => undefined);
    await rmqHandler(broker)(DOCUMENTED_EVENT);
    const [dead] = await t.deadLetters();
    expect(dead?.headers.dead_letter_reason).toBe('missing-target');
    expect(dead?.headers.header1).toBe('value1');
    expect(dead?.message.messageId).toBeTypeOf('string');
    await broker.stop();
  });

  it('handles records received from RabbitMQ: target, ids, headers, and replies to reply_to', async () => {
    t = await topology();
    const conn = testConnection();
    const replies = `${t.queue}-replies`;
    await conn.queueDeclare({ queue: replies, durable: false });
    const publisher = t.broker({ logger: false });
    await publisher.publish({ id: 7 }, 'orders', {
      correlationId: 'c-7',
      replyTo: replies,
      headers: { tenant: 'ü' },
    });
    await publisher.publish('ping', 'pings');
    const records = await drain(t.queue);
    expect(records).toHaveLength(2);

    const broker = t.broker({ logger: false, replyAllowList: [replies] });
    const seen: unknown[] = [];
    broker.add('orders', (p, body: { id: number }) => {
      seen.push({
        target: p.target,
        correlationId: p.correlationId,
        headers: p.headers,
        body,
        at: p.publishedAt instanceof Date,
      });
      return { accepted: body.id };
    });
    broker.add('pings', (_p, body) => {
      seen.push(body);
    });
    await rmqHandler(broker)(rmqEvent(t.queue, records));
    expect(seen).toEqual([
      {
        target: 'orders',
        correlationId: 'c-7',
        headers: { tenant: 'ü' },
        body: { id: 7 },
        at: true,
      },
      'ping',
    ]);
    const reply = await conn.basicGet({ queue: replies, noAck: true });
    expect(reply?.correlationId).toBe('c-7');
    expect(reply?.body).toEqual({ accepted: 7 });
    await conn.queueDelete({ queue: replies });
    await broker.stop();
    await publisher.stop();
  });

  it('a failing handler fails the invocation with RmqBatchError; the others of the batch ran', async () => {
    t = await topology();
    const publisher = t.broker({ logger: false });
    for (const n of [1, 2, 3]) await publisher.publish(n, 'work');
    const records = await drain(t.queue);
    const broker = t.broker({ logger: false });
    const ran: number[] = [];
    broker.add('work', (_p, n: number) => {
      ran.push(n);
      if (n === 2) throw new Error('two fails');
    });
    const err = await rmqHandler(broker)(rmqEvent(t.queue, records)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RmqBatchError);
    expect((err as RmqBatchError).failed).toBe(1);
    expect((err as RmqBatchError).total).toBe(3);
    expect((err as RmqBatchError).message).toContain('two fails');
    expect(ran).toEqual([1, 2, 3]);
    expect(await t.deadLetters()).toEqual([]);
    await broker.stop();
    await publisher.stop();
  });

  it('on the last delivery (quorum x-delivery-count) a failing message is dead-lettered with the reason, and the batch succeeds', async () => {
    t = await topology();
    const publisher = t.broker({ logger: false });
    await publisher.publish({ order: 9 }, 'doomed');
    const [record] = await drain(t.queue);
    record!.redelivered = true;
    record!.basicProperties!.headers = {
      ...record!.basicProperties!.headers,
      'x-delivery-count': 2,
    };
    const broker = t.broker({ logger: false, maxDeliveries: 3 });
    const counts: number[] = [];
    broker.add('doomed', (p) => {
      counts.push(p.deliveryCount);
      throw new TypeError('no stock');
    });
    await rmqHandler(broker)(rmqEvent(t.queue, [record!]));
    expect(counts).toEqual([3]);
    const [dead] = await t.deadLetters();
    expect(dead?.headers.dead_letter_reason).toBe('handler-failed');
    expect(String(dead?.headers.dead_letter_description)).toContain('TypeError: no stock');
    expect(dead?.headers.delivery_count).toBe('3');
    expect(dead?.headers.target).toBe('doomed');
    expect(dead?.body).toEqual({ order: 9 });
    await broker.stop();
    await publisher.stop();
  });

  it('orders by group key with ordered: true', async () => {
    t = await topology();
    const publisher = t.broker({ logger: false });
    for (let i = 0; i < 6; i++)
      await publisher.publish(i, 'seq', { groupKey: i % 2 ? 'odd' : 'even' });
    const records = await drain(t.queue);
    const broker = t.broker({ logger: false, concurrency: 10 });
    const seen: number[] = [];
    broker.add('seq', async (p, n: number) => {
      expect(p.groupKey).toBe(n % 2 ? 'odd' : 'even');
      await new Promise((r) => setTimeout(r, (6 - n) * 5));
      seen.push(n);
    });
    await rmqHandler(broker, { ordered: true })(rmqEvent(t.queue, records));
    expect(seen.filter((n) => n % 2 === 0)).toEqual([0, 2, 4]);
    expect(seen.filter((n) => n % 2 === 1)).toEqual([1, 3, 5]);
    await broker.stop();
    await publisher.stop();
  });

  it('refuses what is not an aws:rmq event, and unknown options', async () => {
    t = await topology();
    const broker = t.broker({ logger: false });
    const handler = rmqHandler(broker);
    await expect(handler({ Records: [] } as unknown as RmqEvent)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(() => rmqHandler(broker, { orderd: true } as never)).toThrow(InvalidArgumentError);
    await expect(handler(rmqEvent(t.queue, []))).resolves.toBeUndefined();
    await broker.stop();
  });
});
