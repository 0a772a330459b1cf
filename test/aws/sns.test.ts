/**
 * SnsBroker beyond the conformance suite, against moto: filter policies on `target` route to
 * the right queues, envelopes (subscriptions without raw delivery) are understood by
 * `start()`, topics by name, the 256 KiB limit.
 */
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { MessageTooLargeError, type Properties } from 'cloudmom';
import { SnsBroker } from 'cloudmom/aws';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { clients, createQueueWithDlq, deleteQueues, drain, uid } from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const created: string[] = [];
const brokers: SnsBroker[] = [];
afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
});
afterAll(() => deleteQueues(sqs, ...created));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function subscribedQueue(topicArn: string, attributes: Record<string, string>) {
  const t = await createQueueWithDlq(sqs, `sn-${uid()}`);
  created.push(t.queue.url, t.dlq.url);
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: t.queue.arn,
      Attributes: attributes,
    }),
  );
  return t;
}

function make(options: ConstructorParameters<typeof SnsBroker>[0]): SnsBroker {
  const b = new SnsBroker({
    logger: false,
    waitTimeSeconds: 1,
    visibilityTimeoutSeconds: 5,
    client: sns,
    sqsClient: sqs,
    ...options,
  });
  brokers.push(b);
  return b;
}

describe('SnsBroker', () => {
  it('subscriptions filtered on target get only their targets (raw delivery)', async () => {
    const topic = (await sns.send(new CreateTopicCommand({ Name: `sn-${uid()}` }))).TopicArn!;
    const billing = await subscribedQueue(topic, {
      RawMessageDelivery: 'true',
      FilterPolicy: JSON.stringify({ target: ['invoice.created', 'invoice.paid'] }),
    });
    const shipping = await subscribedQueue(topic, {
      RawMessageDelivery: 'true',
      FilterPolicy: JSON.stringify({ target: [{ prefix: 'order.' }] }),
    });
    const pub = make({ topic });
    await Promise.all([
      pub.publish({ n: 1 }, 'invoice.created'),
      pub.publish({ n: 2 }, 'order.placed'),
      pub.publish({ n: 3 }, 'invoice.paid'),
      pub.publish({ n: 4 }, 'unrelated'),
    ]);
    const targets = async (url: string) =>
      (await drain(sqs, url, { waitTimeSeconds: 1 }))
        .map((m) => m.MessageAttributes?.target?.StringValue)
        .sort();
    expect(await targets(billing.queue.url)).toEqual(['invoice.created', 'invoice.paid']);
    expect(await targets(shipping.queue.url)).toEqual(['order.placed']);
  });

  it('start() understands SNS envelopes (a subscription without raw delivery)', async () => {
    const topic = (await sns.send(new CreateTopicCommand({ Name: `sn-${uid()}` }))).TopicArn!;
    const { queue } = await subscribedQueue(topic, {});
    const b = make({ topic, queue: queue.url });
    const seen: { body: unknown; p: Properties }[] = [];
    b.add('evt', (p, body) => {
      seen.push({ body, p });
    });
    await b.start();
    const id = await b.publish({ hello: 'envelope' }, 'evt', {
      headers: { tenant: 'a', empty: '' },
      correlationId: 'c-9',
    });
    await b.publish(new Uint8Array([0, 255, 1]), 'evt');
    for (let i = 0; i < 200 && seen.length < 2; i++) await sleep(25);
    const json = seen.find((s) => !(s.body instanceof Uint8Array))!;
    expect(json.body).toEqual({ hello: 'envelope' });
    expect(json.p.headers).toEqual({ tenant: 'a', empty: '' });
    expect(json.p.correlationId).toBe('c-9');
    expect(json.p.messageId).toBe(id);
    const bin = seen.find((s) => s.body instanceof Uint8Array)!;
    expect(Array.from(bin.body as Uint8Array)).toEqual([0, 255, 1]);
  });

  it('takes a topic by name (resolved once) and refuses messages over 256 KiB', async () => {
    const name = `sn-${uid()}`;
    const arn = (await sns.send(new CreateTopicCommand({ Name: name }))).TopicArn!;
    const { queue } = await subscribedQueue(arn, { RawMessageDelivery: 'true' });
    const b = make({ topic: name });
    expect(await b.topicArn()).toBe(arn);
    await b.publish('x'.repeat(200 * 1024), 'big');
    await expect(b.publish('x'.repeat(256 * 1024), 'big')).rejects.toBeInstanceOf(
      MessageTooLargeError,
    );
    const got = await drain(sqs, queue.url, { waitTimeSeconds: 1 });
    expect(got.map((m) => m.Body!.length)).toEqual([200 * 1024]);
  });

  it('FIFO topic → FIFO queue: groupKey becomes MessageGroupId, order kept per group', async () => {
    const topic = (
      await sns.send(
        new CreateTopicCommand({
          Name: `sn-${uid()}.fifo`,
          Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
        }),
      )
    ).TopicArn!;
    const t = await createQueueWithDlq(sqs, `sn-${uid()}`, { fifo: true });
    created.push(t.queue.url, t.dlq.url);
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: t.queue.arn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    const b = make({ topic, queue: t.queue.url });
    await expect(b.publish('x', 'seq')).rejects.toThrow(/groupKey/);
    const seen: string[] = [];
    b.add('seq', (_p, body: string) => {
      seen.push(body);
    });
    await b.start();
    const sends: Promise<string>[] = [];
    for (let i = 0; i < 10; i++)
      for (const g of ['a', 'b']) sends.push(b.publish(`${g}${i}`, 'seq', { groupKey: g }));
    await Promise.all(sends);
    for (let i = 0; i < 400 && seen.length < 20; i++) await sleep(25);
    for (const g of ['a', 'b'])
      expect(seen.filter((s) => s.startsWith(g))).toEqual(
        Array.from({ length: 10 }, (_, i) => `${g}${i}`),
      );
  });

  it('start() without a queue is refused; clients are reachable', async () => {
    const b = make({ topic: 'arn:aws:sns:us-east-1:123456789012:none' });
    expect(b.client).toBe(sns);
    expect(b.sqsClient).toBe(sqs);
    b.add('x', () => undefined);
    await expect(b.start()).rejects.toThrow(/queue/);
  });
});
