/**
 * lambdaHandler against moto: every event is built from messages actually received from moto
 * (ReceiveMessage with all attributes, mapped to the Lambda record shape by
 * `toLambdaRecord`), replies and dead letters are read back from moto.
 */

import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { ChangeMessageVisibilityCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { BrokerOptions } from 'cloudmom';
import { lambdaHandler, SnsBroker, SqsBroker, type SqsEvent } from 'cloudmom/aws';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import {
  clients,
  createQueue,
  createQueueWithDlq,
  deleteQueues,
  drain,
  lambdaContext,
  readDeadLetter,
  receiveInFlight,
  snsEnvelopeToLambdaRecord,
  type TestQueue,
  toLambdaRecord,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const created: string[] = [];
afterAll(() => deleteQueues(sqs, ...created));

const OPTS: BrokerOptions = { logger: false, maxDeliveries: 3 };

async function topology(fifo = false) {
  const t = await createQueueWithDlq(sqs, `lh-${uid()}`, { fifo, visibilityTimeout: 30 });
  const reply = await createQueue(sqs, `cloudmom-reply-${uid()}`);
  created.push(t.queue.url, t.dlq.url, reply.url);
  return { ...t, reply };
}

const receive = receiveInFlight;

async function eventOf(q: TestQueue, n: number): Promise<SqsEvent> {
  return { Records: (await receive(sqs, q, n)).map((m) => toLambdaRecord(m, q.arn)) };
}

const ctx = lambdaContext();

describe('lambdaHandler on SQS events', () => {
  it('dispatches by target and sends the reply, with the correlation id, before answering', async () => {
    const { queue, reply } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    broker.add('hello', (p, body) => ({ greeting: `Hi ${body}`, n: p.deliveryCount }));
    await broker.publish('Ann', 'hello', { correlationId: 'corr-1', replyTo: reply.name });
    const handler = lambdaHandler(broker);
    const res = await handler(await eventOf(queue, 1), ctx);
    expect(res).toEqual({ batchItemFailures: [] });
    // the reply is already in the reply queue when the handler has answered
    const [r] = await drain(sqs, reply.url);
    expect(r).toBeDefined();
    expect(r!.MessageAttributes?.target?.StringValue).toBe('reply');
    expect(r!.MessageAttributes?.correlation_id?.StringValue).toBe('corr-1');
    expect(JSON.parse(r!.Body!)).toEqual({ greeting: 'Hi Ann', n: 1 });
  });

  it('answers with only the failed records; deliveryCount comes from ApproximateReceiveCount', async () => {
    const { queue } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    const counts: number[] = [];
    broker.add('maybe', (p, body: { i: number; fail: boolean }) => {
      counts.push(p.deliveryCount);
      if (body.fail) throw new Error(`item ${body.i} fails`);
    });
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) => broker.publish({ i, fail: i % 2 === 1 }, 'maybe')),
    );
    const event = await eventOf(queue, 5);
    const failing = event.Records.filter((r) => JSON.parse(r.body).fail).map((r) => r.messageId);
    const handler = lambdaHandler(broker);
    const res = await handler(event, ctx);
    expect(res!.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(failing.sort());
    expect(counts).toEqual([1, 1, 1, 1, 1]);
    // redelivery: make the failed ones visible again, as Lambda's poller would see them
    for (const r of event.Records.filter((x) => failing.includes(x.messageId)))
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queue.url,
          ReceiptHandle: r.receiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    const again = await eventOf(queue, 2);
    expect(again.Records.map((r) => r.attributes.ApproximateReceiveCount)).toEqual(['2', '2']);
    counts.length = 0;
    await handler(again, ctx);
    expect(counts).toEqual([2, 2]);
  });

  it('dead-letters what can never succeed (to the RedrivePolicy DLQ) and counts it done', async () => {
    const { queue, dlq } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    const seen: unknown[] = [];
    broker.add('typed', (_p, b) => seen.push(b), { schema: z.object({ id: z.string() }) });
    broker.add('guarded', (_p, b) => seen.push(b));
    await broker.publish({ id: 'ok' }, 'typed');
    await broker.publish({ id: 7 }, 'typed');
    await broker.publish('x', 'guarded', { replyTo: 'attacker-queue' });
    const raw = (body: string, attrs: Record<string, string>) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: queue.url,
          MessageBody: body,
          MessageAttributes: Object.fromEntries(
            Object.entries(attrs).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
          ),
        }),
      );
    await raw('{"no":"target"}', { content_type: 'application/json' });
    await raw('{not json', { target: 'typed', content_type: 'application/json' });
    const res = await lambdaHandler(broker)(await eventOf(queue, 5), ctx);
    expect(res).toEqual({ batchItemFailures: [] });
    expect(seen).toEqual([{ id: 'ok' }]);
    const dead = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    expect(dead.map((d) => d.reason.code).sort()).toEqual([
      'missing-target',
      'reply-not-allowed',
      'schema-invalid',
      'undecodable',
    ]);
    expect(dead.find((d) => d.reason.code === 'schema-invalid')!.body).toEqual({ id: 7 });
    expect(dead.every((d) => d.reason.description.length > 0)).toBe(true);
  });

  it('dead-letters a failing record on its last delivery (maxDeliveries) instead of failing it', async () => {
    const { queue, dlq } = await topology();
    const broker = new SqsBroker({
      ...OPTS,
      maxDeliveries: 2,
      client: sqs,
      queue: queue.url,
      deadLetterQueue: dlq.name, // from the option this time, by name
    });
    broker.add('fails', () => {
      throw new TypeError('database unreachable');
    });
    await broker.publish({ n: 1 }, 'fails');
    const handler = lambdaHandler(broker);
    const first = await eventOf(queue, 1);
    expect((await handler(first, ctx))!.batchItemFailures).toHaveLength(1);
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.url,
        ReceiptHandle: first.Records[0]!.receiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const second = await eventOf(queue, 1);
    expect(second.Records[0]!.attributes.ApproximateReceiveCount).toBe('2');
    expect(await handler(second, ctx)).toEqual({ batchItemFailures: [] });
    const [d] = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    expect(d!.reason.code).toBe('handler-failed');
    expect(d!.reason.description).toContain('TypeError: database unreachable');
    expect(d!.body).toEqual({ n: 1 });
  });

  it('FIFO: the first failure in a group fails the rest of that group, other groups go on', async () => {
    const { queue } = await topology(true);
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    const handled: string[] = [];
    broker.add('step', async (_p, b: { id: string }) => {
      await new Promise((r) => setTimeout(r, 5));
      if (b.id === 'a2') throw new Error('a2 fails');
      handled.push(b.id);
    });
    for (const id of ['a1', 'b1', 'a2', 'b2', 'a3', 'b3'])
      await broker.publish({ id }, 'step', { groupKey: id[0]! });
    const event = await eventOf(queue, 6);
    expect(event.Records.every((r) => r.eventSourceARN.endsWith('.fifo'))).toBe(true);
    const res = await lambdaHandler(broker)(event, ctx);
    const idOf = (messageId: string) =>
      JSON.parse(event.Records.find((r) => r.messageId === messageId)!.body).id;
    expect(res!.batchItemFailures.map((f) => idOf(f.itemIdentifier)).sort()).toEqual(['a2', 'a3']);
    expect(handled.filter((h) => h.startsWith('a'))).toEqual(['a1']);
    expect(handled.filter((h) => h.startsWith('b'))).toEqual(['b1', 'b2', 'b3']);
  });

  it('an event of an unexpected shape is rejected, never answered as a success', async () => {
    const { queue } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    broker.add('t', () => undefined);
    const handler = lambdaHandler(broker);
    await expect(handler({} as never, ctx)).rejects.toThrow(/no Records/);
    await expect(handler({ Records: [] } as never, ctx)).rejects.toThrow(/no Records/);
    await expect(
      handler({ Records: [{ eventSource: 'aws:kinesis' }] } as never, ctx),
    ).rejects.toThrow(/not an SQS or SNS event/);
    await broker.publish('x', 't');
    const event = await eventOf(queue, 1);
    const broken = { Records: [{ ...event.Records[0]!, messageId: '' }] };
    await expect(handler(broken, ctx)).rejects.toThrow(/messageId/);
  });

  it('keeps no state between warm invocations', async () => {
    const { queue } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    broker.add('w', (_p, b: { fail: boolean }) => {
      if (b.fail) throw new Error('no');
    });
    await broker.publish({ fail: true }, 'w');
    const failing = await eventOf(queue, 1);
    await broker.publish({ fail: false }, 'w');
    const passing = await eventOf(queue, 1);
    const handler = lambdaHandler(broker);
    expect((await handler(failing, ctx))!.batchItemFailures).toHaveLength(1);
    expect(await handler(passing, ctx)).toEqual({ batchItemFailures: [] });
    expect((await handler(failing, ctx))!.batchItemFailures).toEqual([
      { itemIdentifier: failing.Records[0]!.messageId },
    ]);
  });

  it('is a middy handler: more middlewares can be used', async () => {
    const { queue } = await topology();
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: queue.url });
    broker.add('m', () => undefined);
    const calls: string[] = [];
    const handler = lambdaHandler(broker).use({
      before: () => {
        calls.push('before');
      },
      after: (request) => {
        calls.push(`after:${JSON.stringify(request.response)}`);
      },
    });
    await broker.publish('x', 'm');
    await handler(await eventOf(queue, 1), ctx);
    expect(calls).toEqual(['before', 'after:{"batchItemFailures":[]}']);
  });

  it('rejects unknown options', () => {
    const broker = new SqsBroker({ ...OPTS, client: sqs, queue: 'q' });
    expect(() => lambdaHandler(broker, { order: true } as never)).toThrow(/unknown option/);
  });
});

describe('lambdaHandler on SNS', () => {
  async function snsTopology() {
    const id = uid();
    const topic = await sns.send(new CreateTopicCommand({ Name: `lh-${id}` }));
    // a queue subscribed WITHOUT raw delivery: its bodies are the SNS envelopes SNS posts
    const { queue, dlq } = await createQueueWithDlq(sqs, `lh-${id}-env`);
    const reply = await createQueue(sqs, `cloudmom-reply-${id}`);
    created.push(queue.url, dlq.url, reply.url);
    const sub = await sns.send(
      new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: queue.arn }),
    );
    const broker = new SnsBroker({
      ...OPTS,
      client: sns,
      sqsClient: sqs,
      topic: topic.TopicArn!,
      queue: queue.url,
      deadLetterQueue: dlq.url,
    });
    return {
      topic: topic.TopicArn!,
      queue,
      dlq,
      reply,
      broker,
      subscription: sub.SubscriptionArn!,
    };
  }

  it('an SNS envelope carried in an SQS body is unwrapped and dispatched', async () => {
    const { queue, reply, broker } = await snsTopology();
    const seen: unknown[] = [];
    broker.add('event', (p, b) => {
      seen.push({ b, h: p.headers, c: p.correlationId });
      return 'ack!';
    });
    await broker.publish({ k: 1 }, 'event', {
      headers: { tenant: 't1' },
      correlationId: 'c-sns',
      replyTo: reply.name,
    });
    const event = await eventOf(queue, 1);
    expect(JSON.parse(event.Records[0]!.body).Type).toBe('Notification');
    expect(await lambdaHandler(broker)(event, ctx)).toEqual({ batchItemFailures: [] });
    expect(seen).toEqual([{ b: { k: 1 }, h: { tenant: 't1' }, c: 'c-sns' }]);
    const [r] = await drain(sqs, reply.url, { waitTimeSeconds: 1 });
    expect(r!.MessageAttributes?.correlation_id?.StringValue).toBe('c-sns');
  });

  it("an SNS event (topic → Lambda) is dispatched; with snsFailure: 'retry' a failure throws so Lambda retries", async () => {
    const { queue, broker, subscription } = await snsTopology();
    const seen: unknown[] = [];
    broker.add('ok', (_p, b) => seen.push(b));
    broker.add('bad', () => {
      throw new Error('bad');
    });
    await broker.publish('fine', 'ok');
    await broker.publish('worse', 'bad');
    const envelopes = await receive(sqs, queue, 2);
    const records = envelopes.map((m) => snsEnvelopeToLambdaRecord(m.Body!, subscription));
    const okRecord = records.find((r) => r.Sns.MessageAttributes?.target?.Value === 'ok')!;
    const badRecord = records.find((r) => r.Sns.MessageAttributes?.target?.Value === 'bad')!;
    const handler = lambdaHandler(broker, { snsFailure: 'retry' });
    expect(await handler({ Records: [okRecord] }, ctx)).toBeUndefined();
    expect(seen).toEqual(['fine']);
    await expect(handler({ Records: [badRecord] }, ctx)).rejects.toThrow(/Lambda will retry/);
  });

  it('an undecodable SNS record is dead-lettered to the configured DLQ', async () => {
    const { queue, dlq, broker, subscription } = await snsTopology();
    broker.add('json', () => undefined);
    const liar = new SnsBroker({
      logger: false,
      client: sns,
      sqsClient: sqs,
      topic: (await broker.topicArn()) as string,
      codecs: [
        {
          contentType: 'application/json',
          encode: (s) => new TextEncoder().encode(String(s)),
          decode: (b) => b,
        },
      ],
    });
    await liar.publish('{broken', 'json', { contentType: 'application/json' });
    const [m] = await receive(sqs, queue, 1);
    const res = await lambdaHandler(broker)(
      { Records: [snsEnvelopeToLambdaRecord(m!.Body!, subscription)] },
      ctx,
    );
    expect(res).toBeUndefined();
    const [d] = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    expect(d!.reason.code).toBe('undecodable');
    expect(d!.target).toBe('json');
  });
});
