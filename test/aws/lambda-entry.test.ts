/**
 * The function-side entry `cloudmom/aws/lambda` against moto: a Lambda event dispatched through
 * its SqsBroker (replies, a publish from a handler, a dead-letter copy to the RedrivePolicy
 * target), its SnsBroker publishing and taking SNS events (its SqsBroker refuses them),
 * start()/request()/publishBatch() refused with the typed error, the
 * receive-only options refused; and its bundle (esbuild, as a Lambda is bundled) carrying none
 * of the receive loop, request(), publishBatch() or the SQS receive side, which the `cloudmom/aws`
 * bundle does.
 */
import { join } from 'node:path';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { InvalidArgumentError } from 'cloudmom';
import { SqsBroker as ConsumerSqsBroker } from 'cloudmom/aws';
import { lambdaHandler, SnsBroker, SqsBroker, type SqsEvent } from 'cloudmom/aws/lambda';
import { build } from 'esbuild';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { cacheDir, ROOT } from '../emulators/harness.ts';
import {
  clients,
  createQueue,
  createQueueWithDlq,
  deleteQueues,
  drain,
  lambdaContext,
  readDeadLetter,
  receiveInFlight,
  type TestQueue,
  toLambdaRecord,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const created: string[] = [];
afterAll(() => deleteQueues(sqs, ...created));

async function eventOf(q: TestQueue, n: number): Promise<SqsEvent> {
  return { Records: (await receiveInFlight(sqs, q, n)).map((m) => toLambdaRecord(m, q.arn)) };
}

describe('cloudmom/aws/lambda on moto', () => {
  it('dispatches an SQS event: replies, a publish from a handler and a dead-letter copy arrive', async () => {
    const { queue, dlq } = await createQueueWithDlq(sqs, `le-${uid()}`);
    const reply = await createQueue(sqs, `cloudmom-reply-${uid()}`);
    const out = await createQueue(sqs, `le-out-${uid()}`);
    created.push(queue.url, dlq.url, reply.url, out.url);
    const broker = new SqsBroker({ logger: false, client: sqs, queue: queue.url });
    const forwarder = new SqsBroker({ logger: false, client: sqs, queue: out.url });
    broker.add('hello', (p, body) => ({ greeting: `Hi ${body}`, corr: p.correlationId }));
    broker.add('forward', async (_p, body) => {
      await forwarder.publish(body, 'forwarded');
    });
    await broker.publish('Ann', 'hello', { correlationId: 'corr-1', replyTo: reply.name });
    await broker.publish({ n: 7 }, 'forward');
    // a body that cannot be decoded: dead-lettered by copy to the RedrivePolicy target
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '{not json',
        MessageAttributes: {
          target: { DataType: 'String', StringValue: 'hello' },
          content_type: { DataType: 'String', StringValue: 'application/json' },
        },
      }),
    );

    const handler = lambdaHandler(broker);
    const res = await handler(await eventOf(queue, 3), lambdaContext());
    expect(res).toEqual({ batchItemFailures: [] });

    const [r] = await drain(sqs, reply.url, { waitTimeSeconds: 1 });
    expect(r?.MessageAttributes?.target?.StringValue).toBe('reply');
    expect(r?.MessageAttributes?.correlation_id?.StringValue).toBe('corr-1');
    expect(JSON.parse(r!.Body!)).toEqual({ greeting: 'Hi Ann', corr: 'corr-1' });

    const [f] = await drain(sqs, out.url, { waitTimeSeconds: 1 });
    expect(f?.MessageAttributes?.target?.StringValue).toBe('forwarded');
    expect(JSON.parse(f!.Body!)).toEqual({ n: 7 });

    const [d] = await drain(sqs, dlq.url, { waitTimeSeconds: 1 });
    expect(d).toBeDefined();
    expect(readDeadLetter(d!).reason.code).toBe('undecodable');
    await broker.stop();
  });

  it('has no start(), request() or publishBatch(): a compile error in TypeScript, absent at run time', async () => {
    const broker = new SqsBroker({ logger: false, client: sqs, queue: `le-${uid()}` });
    // @ts-expect-error not on the function-side broker (import SqsBroker from 'cloudmom/aws')
    expect(broker.start).toBeUndefined();
    // @ts-expect-error as above
    expect(broker.request).toBeUndefined();
    // @ts-expect-error as above
    expect(broker.publishBatch).toBeUndefined();
    expect(broker).not.toBeInstanceOf(ConsumerSqsBroker);
    expect(broker.capabilities.request).toBe(false);
    // the same options work on the broker of cloudmom/aws, which does start
    const q = await createQueue(sqs, `le-start-${uid()}`);
    created.push(q.url);
    const consumer = new ConsumerSqsBroker({ logger: false, client: sqs, queue: q.url });
    await expect(consumer.start()).resolves.toBeUndefined();
    await consumer.stop();
    // stop() on a broker that never started resolves
    await expect(broker.stop()).resolves.toBeUndefined();
  });

  it('refuses the options only start() reads', () => {
    for (const key of ['waitTimeSeconds', 'visibilityTimeoutSeconds', 'pollers'])
      expect(() => new SqsBroker({ queue: 'q', [key]: 1 } as never), key).toThrowError(
        new RegExp(`unknown option "${key}"`),
      );
    expect(() => new SnsBroker({ topic: 't', pollers: 1 } as never)).toThrowError(
      InvalidArgumentError,
    );
  });

  it('takes SNS events on its SnsBroker; its SqsBroker refuses them naming SnsBroker', async () => {
    const record = {
      EventSource: 'aws:sns',
      EventVersion: '1.0',
      EventSubscriptionArn: 'arn:aws:sns:us-east-1:123456789012:t:sub',
      Sns: {
        Type: 'Notification',
        MessageId: 'sns-1',
        TopicArn: 'arn:aws:sns:us-east-1:123456789012:t',
        Message: '{"n":5}',
        Timestamp: new Date().toISOString(),
        MessageAttributes: { target: { Type: 'String', Value: 'counted' } },
      },
    } as const;
    const seen: unknown[] = [];
    const snsBroker = new SnsBroker({ logger: false, client: sns, sqsClient: sqs, topic: 't' });
    snsBroker.add('counted', (p, body) => {
      seen.push([p.messageId, body]);
    });
    expect(await lambdaHandler(snsBroker)({ Records: [record] }, lambdaContext())).toBeUndefined();
    expect(seen).toEqual([['sns-1', { n: 5 }]]);
    const sqsBroker = new SqsBroker({ logger: false, client: sqs, queue: 'q' });
    sqsBroker.add('counted', () => undefined);
    const refused = lambdaHandler(sqsBroker)({ Records: [record] }, lambdaContext());
    await expect(refused).rejects.toThrow(InvalidArgumentError);
    await expect(refused).rejects.toThrow(/SqsBroker takes no SNS events.*use an SnsBroker/);
    // the SqsBroker of cloudmom/aws takes them, as before
    const consumer = new ConsumerSqsBroker({ logger: false, client: sqs, queue: 'q' });
    consumer.add('counted', (_p, body) => {
      seen.push(body);
    });
    expect(await lambdaHandler(consumer)({ Records: [record] }, lambdaContext())).toBeUndefined();
    expect(seen).toHaveLength(2);
    await Promise.all([snsBroker.stop(), sqsBroker.stop(), consumer.stop()]);
  });

  it('publishes to an SNS topic from the function-side SnsBroker; start() is refused', async () => {
    const q = await createQueue(sqs, `le-sub-${uid()}`);
    created.push(q.url);
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `le-${uid()}` }));
    await sns.send(
      new SubscribeCommand({
        TopicArn,
        Protocol: 'sqs',
        Endpoint: q.arn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    const broker = new SnsBroker({ logger: false, client: sns, sqsClient: sqs, topic: TopicArn! });
    await broker.publish({ id: 3 }, 'invoice.created');
    const [m] = await drain(sqs, q.url, { waitTimeSeconds: 2 });
    expect(m?.MessageAttributes?.target?.StringValue).toBe('invoice.created');
    expect(JSON.parse(m!.Body!)).toEqual({ id: 3 });
    // @ts-expect-error no receive loop on the function-side broker
    expect(broker.start).toBeUndefined();
    await broker.stop();
  });
});

/** The inputs (repository-relative) with code in an esbuild bundle of a typical Lambda on `entry`. */
async function bundleInputs(entry: string): Promise<string[]> {
  const dir = cacheDir('lambda-entry-test');
  const result = await build({
    stdin: {
      contents: `import { SqsBroker, lambdaHandler } from ${JSON.stringify(entry)};
const broker = new SqsBroker({ queue: process.env.QUEUE ?? 'orders' });
broker.add('orders', (_p, body) => ({ ok: body.id }));
export const handler = lambdaHandler(broker);
`,
      resolveDir: ROOT,
      loader: 'ts',
    },
    outfile: join(dir, 'bundle.mjs'),
    write: false,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    conditions: ['source'],
    external: ['@aws-sdk/*'],
    metafile: true,
    logLevel: 'silent',
  });
  // what is in the output (an imported module whose code was all dropped counts 0 bytes)
  const [out] = Object.values(result.metafile.outputs);
  return Object.entries(out!.inputs).flatMap(([file, i]) => (i.bytesInOutput > 0 ? [file] : []));
}

/** What only a long-running process uses. */
const LONG_RUNNING = [
  'src/receiver.ts',
  'src/requests.ts',
  'src/long-running.ts',
  'src/publish-batch.ts',
  'adapters/aws/receive.ts',
  'adapters/aws/dlq.ts',
];

describe('the bundle of a Lambda', () => {
  it('on cloudmom/aws/lambda carries no receive loop, request() or SQS receive side', async () => {
    const inputs = await bundleInputs('cloudmom/aws/lambda');
    expect(inputs).toContain('adapters/aws/entrypoint.ts');
    expect(inputs).toContain('src/router.ts');
    for (const file of LONG_RUNNING) expect(inputs, file).not.toContain(file);
    // SNS events come only with the brokers that take them (its SnsBroker)
    expect(inputs).not.toContain('adapters/aws/sns-events.ts');
  });

  it('on cloudmom/aws carries them (what the check above would catch)', async () => {
    const inputs = await bundleInputs('cloudmom/aws');
    for (const file of [...LONG_RUNNING.slice(0, 5), 'adapters/aws/sns-events.ts'])
      expect(inputs, file).toContain(file);
  });
});
