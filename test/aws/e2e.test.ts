/**
 * End to end on the deployed topology: serverless.yml packaged and deployed into moto, the
 * PACKAGED handler (the bundle in the zip osls built, unzipped per function and imported with
 * the environment moto holds for that function) driven the way Lambda's SQS poller drives it:
 * receive from the queue (all attributes), build the event with the real SQS record shape,
 * invoke, delete what succeeded, leave the failures for redelivery.
 *
 * Where moto differs from AWS (and what this test does about it):
 * - moto's CloudFormation skips `AWS::SNS::Subscription` and `AWS::SQS::QueuePolicy`: the
 *   subscriptions are created here through the SDK from the template's own properties
 *   (filter policy, raw delivery); queue policies are not enforced by moto anyway and are
 *   asserted on the template by iac.test.ts.
 * - with an enabled event source mapping, moto invokes the function on every SendMessage —
 *   in Docker, absent here — and leaves the message with one receive counted. The mappings
 *   are disabled after deploy, and this test plays the poller.
 * - failed records become visible again at once (ChangeMessageVisibility 0) rather than after
 *   the 90 s visibility timeout, to keep the test short.
 */

import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SqsBatchResponse, SqsEvent } from 'cloudmom/aws';
import { SnsBroker, SqsBroker } from 'cloudmom/aws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  deployExamples,
  extractZip,
  packageExamples,
  REGION,
  stackNames,
  uniqueStage,
} from '../../infra/aws/stack.ts';
import { awsClientConfig, MOTO_ACCOUNT_ID } from '../emulators/aws/moto.ts';
import { cacheDir } from '../emulators/harness.ts';
import { toLambdaRecord } from './fixtures.ts';

type LambdaFn = (event: SqsEvent, context: unknown) => Promise<SqsBatchResponse | undefined>;

const endpoint = inject('awsEndpoint');
const stage = uniqueStage('e2e');
// The names the generated serverless.yml gives the stage: the topology's (awsNames).
const names = stackNames(stage);
const replies = names.replies!;
const dir = join(cacheDir('aws-e2e'), stage);
const sqs = new SQSClient(awsClientConfig(endpoint));
const sns = new SNSClient(awsClientConfig(endpoint));
const lambda = new LambdaClient(awsClientConfig(endpoint));
const topicArn = `arn:aws:sns:${REGION}:${MOTO_ACCOUNT_ID}:${names.topic}`;

interface Fn {
  readonly name: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly dlqUrl: string;
  readonly env: Record<string, string>;
  handler: LambdaFn;
}
const fns: Record<'greeter' | 'worker', Fn> = {} as never;
let repliesUrl: string;
/** The reply queue's URL as CloudFormation gave it to the functions (the real AWS host). */
let repliesCfnUrl: string;
let requester: SqsBroker;
let publisher: SnsBroker;

async function queueUrl(name: string): Promise<string> {
  return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
}

async function queueArn(url: string): Promise<string> {
  const r = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return r.Attributes!.QueueArn!;
}

/** Receives until `count` messages arrived (or `timeoutMs` passed), with every attribute. */
async function poll(url: string, count: number, timeoutMs = 8000): Promise<Message[]> {
  const got: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count && Date.now() < deadline) {
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    got.push(...(r.Messages ?? []));
  }
  return got;
}

/** Nothing (more) arrives on `url` within `ms`. */
async function expectEmpty(url: string, ms = 1000): Promise<void> {
  const extra = await poll(url, 1, ms);
  expect(extra.map((m) => m.Body)).toEqual([]);
}

function lambdaContext(fn: string) {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${MOTO_ACCOUNT_ID}:function:${fn}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn}`,
    logStreamName: `2026/01/01/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, 10_000 - (Date.now() - started)),
  };
}

/**
 * What Lambda's poller does with one batch: invoke with the event (as JSON on the wire),
 * delete the records not reported failed, and (shortcut) make the failed ones visible again.
 */
async function invoke(fn: Fn, messages: Message[]): Promise<SqsBatchResponse> {
  const event: SqsEvent = JSON.parse(
    JSON.stringify({ Records: messages.map((m) => toLambdaRecord(m, fn.queueArn)) }),
  );
  const response = await fn.handler(event, lambdaContext(fn.name));
  expect(response).toBeDefined();
  const failed = new Set(response!.batchItemFailures.map((f) => f.itemIdentifier));
  const done = messages.filter((m) => !failed.has(m.MessageId!));
  const retry = messages.filter((m) => failed.has(m.MessageId!));
  if (done.length > 0) {
    const r = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: fn.queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    expect(r.Failed ?? []).toEqual([]);
  }
  if (retry.length > 0) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: fn.queueUrl,
        Entries: retry.map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle!,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
  return response!;
}

const attr = (m: Message, name: string) => m.MessageAttributes?.[name]?.StringValue;

/** Reads the reply queue until a message with `correlationId` shows up. */
async function replyFor(correlationId: string): Promise<Message> {
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline) {
    for (const m of await poll(repliesUrl, 1, 1000)) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: repliesUrl,
          Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle! }],
        }),
      );
      if (attr(m, 'correlation_id') === correlationId) return m;
    }
  }
  throw new Error(`no reply with correlation id ${correlationId}`);
}

/** Imports the packaged bundle as a fresh Lambda instance of `fn` would: its own copy, its env. */
async function loadPackagedHandler(zip: string, fn: string, env: Record<string, string>) {
  const taskDir = join(dir, 'task', fn); // the function's /var/task
  mkdirSync(taskDir, { recursive: true });
  extractZip(zip, taskDir);
  const saved = { ...process.env };
  Object.assign(process.env, env, {
    // The deployed level is warn (dead letters are logged); keep the test output quiet.
    CLOUDMOM_LOG_LEVEL: 'error',
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
  try {
    const mod = await import(pathToFileURL(join(taskDir, 'examples/aws/dist/handler.mjs')).href);
    expect(typeof mod.handler).toBe('function');
    return mod.handler as LambdaFn;
  } finally {
    for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
  }
}

beforeAll(async () => {
  const packaged = await packageExamples(stage, join(dir, 'package'));
  await deployExamples(stage, join(dir, 'package'), endpoint);

  // moto would run the functions in Docker on each SendMessage: this test is the poller.
  for (const { queue: q } of Object.values(names.services)) {
    const arn = await queueArn(await queueUrl(q));
    const { EventSourceMappings = [] } = await lambda.send(
      new ListEventSourceMappingsCommand({ EventSourceArn: arn }),
    );
    expect(EventSourceMappings.length).toBe(1);
    await lambda.send(
      new UpdateEventSourceMappingCommand({ UUID: EventSourceMappings[0]!.UUID!, Enabled: false }),
    );
  }

  // moto's CloudFormation skipped the subscriptions: create them from the template.
  for (const [id, r] of Object.entries(packaged.template.Resources)) {
    if (r.Type !== 'AWS::SNS::Subscription') continue;
    const p = r.Properties;
    const queueId: string = p.Endpoint['Fn::GetAtt'][0];
    const queueName: string = packaged.template.Resources[queueId].Properties.QueueName;
    expect(p.TopicArn.Ref, id).toBe('EventsTopic');
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: p.Protocol,
        Endpoint: await queueArn(await queueUrl(queueName)),
        Attributes: {
          RawMessageDelivery: String(p.RawMessageDelivery),
          FilterPolicyScope: p.FilterPolicyScope,
          FilterPolicy: JSON.stringify(p.FilterPolicy),
        },
        ReturnSubscriptionArn: true,
      }),
    );
  }

  for (const key of ['greeter', 'worker'] as const) {
    const n = names.services[key]!;
    const name = n.function;
    const c = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    const env = c.Environment?.Variables ?? {};
    const url = await queueUrl(n.queue);
    fns[key] = {
      name,
      queueUrl: url,
      queueArn: await queueArn(url),
      dlqUrl: await queueUrl(n.deadLetter),
      env,
      handler: await loadPackagedHandler(packaged.zip, name, env),
    };
  }
  repliesUrl = await queueUrl(replies);
  repliesCfnUrl = fns.greeter.env.CLOUDMOM_REPLY_ALLOW_LIST!.split(',')[1]!;

  requester = new SqsBroker({ queue: fns.greeter.queueUrl, client: sqs, logger: false });
  publisher = new SnsBroker({ topic: topicArn, client: sns, sqsClient: sqs, logger: false });
}, 240_000);

afterAll(async () => {
  await requester?.stop().catch(() => {});
  await publisher?.stop().catch(() => {});
  sqs.destroy();
  sns.destroy();
  lambda.destroy();
  rmSync(dir, { recursive: true, force: true });
  rmSync(`${join(dir, 'package')}.home`, { recursive: true, force: true });
});

describe('end to end on the deployed stack (moto)', () => {
  it('SNS → filtered queue → packaged greeter: the reply carries the correlation id', async () => {
    const correlationId = `hello-${randomUUID()}`;
    await publisher.publish('Hello World!', 'hello', { correlationId, replyTo: replies });
    await publisher.publish({ event: 'login' }, 'audit');

    // The filter policy routed each message to its queue only, raw (attributes, no envelope).
    const [hello, ...moreHello] = await poll(fns.greeter.queueUrl, 2, 2000);
    expect(moreHello).toEqual([]);
    expect(attr(hello!, 'target')).toBe('hello');
    expect(attr(hello!, 'correlation_id')).toBe(correlationId);
    expect(attr(hello!, 'reply_to')).toBe(replies);
    expect(hello!.Body).toBe('Hello World!');
    expect(attr(hello!, 'content_type')).toMatch(/^text\/plain/);
    const audit = await poll(fns.worker.queueUrl, 1);
    expect(audit.map((m) => attr(m, 'target'))).toEqual(['audit']);

    expect(await invoke(fns.greeter, [hello!])).toEqual({ batchItemFailures: [] });
    expect(await invoke(fns.worker, audit)).toEqual({ batchItemFailures: [] });

    const reply = await replyFor(correlationId);
    expect(reply.Body).toBe('Hi there too');
    expect(attr(reply, 'target')).toBe('reply');
    expect(attr(reply, 'content_type')).toMatch(/^text\/plain/);
    await expectEmpty(fns.greeter.queueUrl);
    await expectEmpty(fns.worker.queueUrl);
  });

  it('SqsBroker → greeter queue: sum answers on the reply queue URL CloudFormation gave', async () => {
    const correlationId = `sum-${randomUUID()}`;
    await requester.publish({ numbers: [1, 2, 3, 4] }, 'sum', {
      correlationId,
      replyTo: repliesCfnUrl,
    });
    const batch = await poll(fns.greeter.queueUrl, 1);
    expect(batch.length).toBe(1);
    expect(Number(batch[0]!.Attributes?.ApproximateReceiveCount)).toBe(1);
    expect(await invoke(fns.greeter, batch)).toEqual({ batchItemFailures: [] });
    const reply = await replyFor(correlationId);
    expect(JSON.parse(reply.Body!)).toEqual({ sum: 10 });
  });

  it('refuses a reply address outside the allow-list: dead-lettered with the reason', async () => {
    const correlationId = `evil-${randomUUID()}`;
    // The worker queue exists and is reachable, but is not a reply address.
    await requester.publish('Hello', 'hello', {
      correlationId,
      replyTo: names.services.worker!.queue,
    });
    const batch = await poll(fns.greeter.queueUrl, 1);
    expect(await invoke(fns.greeter, batch)).toEqual({ batchItemFailures: [] });
    const [dead] = await poll(fns.greeter.dlqUrl, 1);
    expect(attr(dead!, 'correlation_id')).toBe(correlationId);
    expect(attr(dead!, 'dead_letter_reason')).toBe('reply-not-allowed');
    await expectEmpty(fns.worker.queueUrl);
  });

  it('dead-letters bad input at once with its reason; the good record in the batch is answered', async () => {
    const correlationId = `good-${randomUUID()}`;
    const s = (v: string) => ({ DataType: 'String', StringValue: v });
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: fns.greeter.queueUrl,
        Entries: [
          {
            Id: 'no-target',
            MessageBody: '{"a":1}',
            MessageAttributes: { correlation_id: s('bad-1') },
          },
          {
            Id: 'not-json',
            MessageBody: '{not json',
            MessageAttributes: {
              target: s('sum'),
              content_type: s('application/json'),
              correlation_id: s('bad-2'),
            },
          },
          {
            Id: 'unknown',
            MessageBody: '1',
            MessageAttributes: { target: s('nobody-handles-this'), correlation_id: s('bad-3') },
          },
        ],
      }),
    );
    await requester.publish({ numbers: [2, 3] }, 'sum', { correlationId, replyTo: replies });
    const batch = await poll(fns.greeter.queueUrl, 4);
    expect(batch.length).toBe(4);
    expect(await invoke(fns.greeter, batch)).toEqual({ batchItemFailures: [] });

    const dead = await poll(fns.greeter.dlqUrl, 3);
    const reasons = Object.fromEntries(
      dead.map((m) => [attr(m, 'correlation_id'), attr(m, 'dead_letter_reason')]),
    );
    expect(reasons).toEqual({
      'bad-1': 'missing-target',
      'bad-2': 'undecodable',
      'bad-3': 'unknown-target',
    });
    expect(dead.every((m) => (attr(m, 'dead_letter_description') ?? '').length > 0)).toBe(true);
    expect(JSON.parse((await replyFor(correlationId)).Body!)).toEqual({ sum: 5 });
    await expectEmpty(fns.greeter.queueUrl);
  });

  it('retries only the failing record (real receive counts), then dead-letters it on delivery 5', async () => {
    await publisher.publish({ job: 1 }, 'flaky', { correlationId: 'flaky-1' });
    await publisher.publish({ event: 'ok' }, 'audit', { correlationId: 'audit-1' });

    // Delivery 1: a mixed batch; only the flaky record is reported failed.
    const first = await poll(fns.worker.queueUrl, 2);
    expect(first.length).toBe(2);
    const flaky = first.find((m) => attr(m, 'target') === 'flaky')!;
    expect(await invoke(fns.worker, first)).toEqual({
      batchItemFailures: [{ itemIdentifier: flaky.MessageId }],
    });

    // Deliveries 2..5: moto counts the receives; the function dead-letters on the 5th.
    for (let delivery = 2; delivery <= 5; delivery++) {
      const batch = await poll(fns.worker.queueUrl, 1);
      expect(batch.map((m) => m.MessageId)).toEqual([flaky.MessageId]);
      expect(Number(batch[0]!.Attributes?.ApproximateReceiveCount)).toBe(delivery);
      const expected = delivery < 5 ? [{ itemIdentifier: flaky.MessageId }] : [];
      expect(await invoke(fns.worker, batch)).toEqual({ batchItemFailures: expected });
    }

    const [dead, ...more] = await poll(fns.worker.dlqUrl, 1);
    expect(more).toEqual([]);
    expect(attr(dead!, 'correlation_id')).toBe('flaky-1');
    expect(attr(dead!, 'target')).toBe('flaky');
    expect(attr(dead!, 'dead_letter_reason')).toBe('handler-failed');
    expect(attr(dead!, 'dead_letter_description')).toMatch(/downstream service unavailable/);
    expect(JSON.parse(dead!.Body!)).toEqual({ job: 1 });
    await expectEmpty(fns.worker.queueUrl);
  });
});
