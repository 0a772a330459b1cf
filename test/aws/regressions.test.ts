/**
 * Regression tests of defects found on AWS (issues 8 and 9), against moto. Each failed on
 * the adapter before the transport contract v2 (commit ee4eae6): run this file there to see.
 *
 * - issue 9.1: SNS → Lambda never dead-lettered a failing handler (deliveryCount always 1):
 *   after Lambda's retries the event was dropped, no reason recorded anywhere;
 * - issue 9.3: on a FIFO topic, replies routed by add()'s replyTo were dead-lettered
 *   (`reply-failed: a FIFO topic needs a groupKey`);
 * - issue 9.6: a header named `__proto__` disappeared from SQS dead-letter copies; and a
 *   message carrying such an attribute made every ReceiveMessage of the consumer fail (the
 *   AWS SDK v3 leaves that attribute undefined), so nothing on the queue was handled again;
 * - issue 9: a Lambda with no dead-letter queue configured said nothing: now one line at
 *   cold start;
 * - issue 8: `import { SqsBroker } from 'cloudmom/aws'` failed with ERR_MODULE_NOT_FOUND
 *   without `@middy/core`; the consumer deleted messages one DeleteMessage at a time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger, Properties } from 'cloudmom';
import { lambdaHandler, SnsBroker, SqsBroker } from 'cloudmom/aws';
import { build } from 'esbuild';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { awsClientConfig } from '../emulators/aws/moto.ts';
import { ROOT } from '../emulators/harness.ts';
import {
  clients,
  createQueue,
  createQueueWithDlq,
  deleteQueues,
  drain,
  lambdaContext,
  readDeadLetter,
  snsEnvelopeToLambdaRecord,
  toLambdaRecord,
  uid,
} from './fixtures.ts';

const endpoint = inject('awsEndpoint');
const { sqs, sns } = clients(endpoint);
const created: string[] = [];
const brokers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.allSettled(brokers.splice(0).map((b) => b.stop()));
});
afterAll(() => deleteQueues(sqs, ...created));

const ctx = lambdaContext();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger that keeps its lines. */
function recordingLogger() {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { lines, logger };
}

/** Receives exactly `n` messages from a queue, all attributes, keeping them in flight. */
async function receive(url: string, n: number): Promise<Message[]> {
  const got: Message[] = [];
  const deadline = Date.now() + 10_000;
  while (got.length < n && Date.now() < deadline) {
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, n - got.length),
        WaitTimeSeconds: 1,
        VisibilityTimeout: 30,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    got.push(...(r.Messages ?? []));
  }
  if (got.length !== n) throw new Error(`received ${got.length} of ${n} messages`);
  return got;
}

/** SNS topic with a queue subscribed without raw delivery (its bodies are SNS envelopes). */
async function snsToLambdaTopology() {
  const id = uid();
  const topic = (await sns.send(new CreateTopicCommand({ Name: `rg-${id}` }))).TopicArn!;
  const { queue, dlq } = await createQueueWithDlq(sqs, `rg-${id}-env`);
  created.push(queue.url, dlq.url);
  const sub = await sns.send(
    new SubscribeCommand({ TopicArn: topic, Protocol: 'sqs', Endpoint: queue.arn }),
  );
  /** The SNS → Lambda event for the next envelope on the queue (what SNS would invoke with). */
  const nextEvent = async () => {
    const [m] = await receive(queue.url, 1);
    return { Records: [snsEnvelopeToLambdaRecord(m!.Body!, sub.SubscriptionArn!)] };
  };
  return { topic, queue, dlq, nextEvent };
}

describe('issue 9.1: SNS → Lambda cannot lose a failing message', () => {
  it('a failing SNS record is dead-lettered at once with the reason (its attempt count is unknown)', async () => {
    const { topic, dlq, nextEvent } = await snsToLambdaTopology();
    const broker = new SnsBroker({
      logger: false,
      client: sns,
      sqsClient: sqs,
      topic,
      deadLetterQueue: dlq.url,
    });
    broker.add('charge', () => {
      throw new TypeError('card processor down');
    });
    await broker.publish({ order: 7 }, 'charge', { headers: { tenant: 'acme' } });
    const handler = lambdaHandler(broker);
    // answered: Lambda does not retry and then drop it; the copy is in the DLQ
    expect(await handler(await nextEvent(), ctx)).toBeUndefined();
    const [d] = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    expect(d).toBeDefined();
    expect(d!.target).toBe('charge');
    expect(d!.body).toEqual({ order: 7 });
    expect(d!.headers).toEqual({ tenant: 'acme' });
    expect(d!.reason.code).toBe('handler-failed');
    expect(d!.reason.description).toContain('TypeError: card processor down');
    expect(d!.reason.description).toMatch(/attempt count is unknown/);
  });

  it('when the copy cannot be sent (no dead-letter queue) the handler throws: Lambda retries, nothing is acknowledged', async () => {
    const { topic, nextEvent } = await snsToLambdaTopology();
    const { lines, logger } = recordingLogger();
    const broker = new SnsBroker({ logger, client: sns, sqsClient: sqs, topic });
    broker.add('charge', () => {
      throw new Error('down');
    });
    await broker.publish({ order: 8 }, 'charge');
    await expect(lambdaHandler(broker)(await nextEvent(), ctx)).rejects.toThrow(
      /Lambda will retry/,
    );
    expect(lines.some((l) => l.level === 'error' && /dead-lettering failed/.test(l.message))).toBe(
      true,
    );
  });

  it("snsFailure: 'retry' lets Lambda retry instead (for functions with an on-failure destination)", async () => {
    const { topic, dlq, nextEvent } = await snsToLambdaTopology();
    const broker = new SnsBroker({
      logger: false,
      client: sns,
      sqsClient: sqs,
      topic,
      deadLetterQueue: dlq.url,
    });
    broker.add('charge', () => {
      throw new Error('down');
    });
    await broker.publish({ order: 9 }, 'charge');
    await expect(
      lambdaHandler(broker, { snsFailure: 'retry' })(await nextEvent(), ctx),
    ).rejects.toThrow(/Lambda will retry/);
    expect(await drain(sqs, dlq.url, { waitTimeSeconds: 0 })).toEqual([]);
  });
});

describe('issue 9.3: replies on a FIFO topic carry the incoming group key', () => {
  it("a reply routed by add()'s replyTo on a FIFO topic reaches its target, in the incoming group", async () => {
    const topic = (
      await sns.send(
        new CreateTopicCommand({
          Name: `rg-${uid()}.fifo`,
          Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' },
        }),
      )
    ).TopicArn!;
    const { queue, dlq } = await createQueueWithDlq(sqs, `rg-${uid()}`, { fifo: true });
    created.push(queue.url, dlq.url);
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    const broker = new SnsBroker({
      logger: false,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 5,
      client: sns,
      sqsClient: sqs,
      topic,
      queue: queue.url,
    });
    brokers.push(broker);
    const answers: { body: unknown; p: Properties }[] = [];
    broker.add('ask', (_p, body: { q: number }) => ({ a: body.q * 2 }), 'answers');
    broker.add('answers', (p, body) => {
      answers.push({ body, p });
    });
    await broker.start();
    await broker.publish({ q: 21 }, 'ask', { groupKey: 'customer-1', correlationId: 'c-21' });
    for (let i = 0; i < 400 && answers.length === 0; i++) await sleep(25);
    expect(answers.map((a) => a.body)).toEqual([{ a: 42 }]);
    expect(answers[0]!.p.groupKey).toBe('customer-1');
    expect(answers[0]!.p.correlationId).toBe('c-21');
    expect(await drain(sqs, dlq.url)).toEqual([]);
  });
});

describe('issue 9.6: a header named __proto__ is data', () => {
  it('survives in the dead-letter copy of a Lambda record', async () => {
    const { queue, dlq } = await createQueueWithDlq(sqs, `rg-${uid()}`);
    created.push(queue.url, dlq.url);
    const broker = new SqsBroker({
      logger: false,
      client: sqs,
      queue: queue.url,
      unknownTarget: 'dead-letter',
    });
    await broker.publish({ n: 1 }, 'nobody', { headers: { tenant: 'acme' } });
    const [m] = await receive(queue.url, 1);
    // Lambda delivers the event as JSON: the attribute is an own property, as JSON.parse makes it
    const record = JSON.parse(
      JSON.stringify(toLambdaRecord(m!, queue.arn)).replace(
        '"messageAttributes":{',
        '"messageAttributes":{"__proto__":{"stringValue":"polluted?","stringListValues":[],"binaryListValues":[],"dataType":"String"},',
      ),
    );
    expect(Object.hasOwn(record.messageAttributes, '__proto__')).toBe(true);
    expect(await lambdaHandler(broker)({ Records: [record] }, ctx)).toEqual({
      batchItemFailures: [],
    });
    const [d] = (await drain(sqs, dlq.url, { waitTimeSeconds: 1 })).map(readDeadLetter);
    expect(d!.reason.code).toBe('unknown-target');
    expect(Object.keys(d!.headers).sort()).toEqual(['__proto__', 'tenant']);
    expect(Object.getOwnPropertyDescriptor(d!.headers, '__proto__')?.value).toBe('polluted?');
    expect(Object.getPrototypeOf(d!.headers)).toBe(Object.prototype);
  });

  it('a message with an attribute named __proto__ does not stop the consumer', async () => {
    const { queue } = await createQueueWithDlq(sqs, `rg-${uid()}`);
    created.push(queue.url);
    const attrs: Record<string, MessageAttributeValue> = {
      target: { DataType: 'String', StringValue: 'seen' },
    };
    Object.defineProperty(attrs, '__proto__', {
      value: { DataType: 'String', StringValue: 'x' },
      enumerable: true,
    });
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '"odd"',
        MessageAttributes: attrs,
      }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: '"plain"',
        MessageAttributes: { target: { DataType: 'String', StringValue: 'seen' } },
      }),
    );
    const broker = new SqsBroker({
      logger: false,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 5,
      client: sqs,
      queue: queue.url,
    });
    brokers.push(broker);
    const seen: string[] = [];
    broker.add('seen', (_p, body: string) => {
      seen.push(body);
    });
    await broker.start();
    for (let i = 0; i < 200 && seen.length < 2; i++) await sleep(25);
    expect(seen.sort()).toEqual(['odd', 'plain']);
  });
});

describe('issue 9: a Lambda with no dead-letter queue configured', () => {
  it('says so once, at cold start (lambdaHandler), and not when deadLetterQueue is set', () => {
    const without = recordingLogger();
    const broker = new SqsBroker({ logger: without.logger, client: sqs, queue: 'orders' });
    lambdaHandler(broker);
    const warns = without.lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.message).toMatch(/no deadLetterQueue/);
    expect(warns[0]!.message).toMatch(/RedrivePolicy/);
    const withDlq = recordingLogger();
    lambdaHandler(
      new SqsBroker({
        logger: withDlq.logger,
        client: sqs,
        queue: 'orders',
        deadLetterQueue: 'orders-dlq',
      }),
    );
    expect(withDlq.lines).toEqual([]);
  });
});

describe('issue 8: the consumer is the core loop over SQS primitives', () => {
  it('acknowledges with DeleteMessageBatch, not one DeleteMessage per message', async () => {
    const queue = await createQueue(sqs, `rg-${uid()}`);
    created.push(queue.url);
    const client = new SQSClient(awsClientConfig(endpoint));
    const calls: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        calls.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'countCalls' },
    );
    const broker = new SqsBroker({
      logger: false,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 5,
      concurrency: 20,
      client,
      queue: queue.url,
    });
    brokers.push(broker);
    let n = 0;
    broker.add('bulk', () => {
      n++;
    });
    await Promise.all(Array.from({ length: 30 }, (_, i) => broker.publish({ i }, 'bulk')));
    await broker.start();
    for (let i = 0; i < 400 && n < 30; i++) await sleep(25);
    await broker.stop();
    expect(n).toBe(30);
    expect(calls.filter((c) => c === 'DeleteMessageCommand')).toEqual([]);
    const batches = calls.filter((c) => c === 'DeleteMessageBatchCommand').length;
    expect(batches).toBeGreaterThanOrEqual(3);
    expect(batches).toBeLessThan(30);
    expect(await drain(sqs, queue.url)).toEqual([]);
  });

  it('cloudmom/aws imports and runs without @middy/core; .use() then says what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cloudmom-nomiddy-'));
    try {
      // Bundled with the SDK and middy left out, run where neither can be resolved.
      await build({
        entryPoints: [join(ROOT, 'adapters/aws/index.ts')],
        outfile: join(dir, 'aws.mjs'),
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node22',
        conditions: ['source'],
        external: ['@aws-sdk/*', '@middy/*'],
        logLevel: 'silent',
      });
      writeFileSync(
        join(dir, 'run.mjs'),
        `import { SqsBroker, lambdaHandler } from './aws.mjs';
const broker = new SqsBroker({ queue: 'arn:aws:sqs:us-east-1:123456789012:q', deadLetterQueue: 'dlq', logger: false });
broker.add('t', () => undefined);
const record = { messageId: 'm1', body: '1', attributes: { ApproximateReceiveCount: '1' },
  messageAttributes: { target: { stringValue: 't', dataType: 'String' } },
  eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q', awsRegion: 'us-east-1' };
const plain = await lambdaHandler(broker)({ Records: [record] }, {});
let used;
try { await lambdaHandler(broker).use({})({ Records: [record] }, {}); } catch (e) { used = e.message; }
process.stdout.write(JSON.stringify({ plain, used }));
`,
      );
      const r = spawnSync(process.execPath, [join(dir, 'run.mjs')], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env.PATH },
      });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout);
      expect(out.plain).toEqual({ batchItemFailures: [] });
      expect(out.used).toMatch(/npm install @middy\/core/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
