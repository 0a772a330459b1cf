/**
 * Helpers of the AWS tests (and benches): clients on the test peer, fresh queues and topics,
 * reading queues back, and Lambda events built from messages actually received from moto.
 */
import { randomUUID } from 'node:crypto';
import { SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { fromSqsMessage, type SnsRecord, type SqsRecord } from '../../adapters/aws/wire.ts';
import { CodecRegistry } from '../../src/codec.ts';
import { AWS_REGION, awsClientConfig } from '../emulators/aws/moto.ts';

export function clients(endpoint: string) {
  return {
    sqs: new SQSClient(awsClientConfig(endpoint)),
    sns: new SNSClient(awsClientConfig(endpoint)),
  };
}

/** A short unique name part. */
export const uid = () => randomUUID().slice(0, 8);

export interface TestQueue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
}

/** Creates a queue (FIFO when the name ends with .fifo) with the given attributes. */
export async function createQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string> = {},
): Promise<TestQueue> {
  const fifo = name.endsWith('.fifo');
  const r = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: { ...(fifo ? { FifoQueue: 'true' } : {}), ...attributes },
    }),
  );
  const url = r.QueueUrl!;
  const a = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { name, url, arn: a.Attributes!.QueueArn! };
}

/** A queue with its dead-letter queue (redrive after `maxReceiveCount`). */
export async function createQueueWithDlq(
  sqs: SQSClient,
  base: string,
  options: { fifo?: boolean; maxReceiveCount?: number; visibilityTimeout?: number } = {},
): Promise<{ queue: TestQueue; dlq: TestQueue }> {
  const suffix = options.fifo ? '.fifo' : '';
  const dlq = await createQueue(sqs, `${base}-dlq${suffix}`);
  const queue = await createQueue(sqs, `${base}${suffix}`, {
    VisibilityTimeout: String(options.visibilityTimeout ?? 5),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: dlq.arn,
      maxReceiveCount: options.maxReceiveCount ?? 10,
    }),
  });
  return { queue, dlq };
}

export async function deleteQueues(sqs: SQSClient, ...urls: string[]): Promise<void> {
  await Promise.allSettled(urls.map((u) => sqs.send(new DeleteQueueCommand({ QueueUrl: u }))));
}

/** Messages in a queue, visible, in flight or delayed (exact on moto and fauxqs). */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes: a = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return (
    Number(a.ApproximateNumberOfMessages ?? NaN) +
    Number(a.ApproximateNumberOfMessagesNotVisible ?? NaN) +
    Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/** Receives (and deletes) everything currently in a queue. */
export async function drain(
  sqs: SQSClient,
  url: string,
  options: { waitTimeSeconds?: number; keep?: boolean } = {},
): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: all.length === 0 ? (options.waitTimeSeconds ?? 0) : 0,
        VisibilityTimeout: options.keep ? 0 : 30,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const ms = r.Messages ?? [];
    if (ms.length === 0) return all;
    all.push(...ms);
    if (!options.keep) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: ms.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    } else return all;
  }
}

/** Receives exactly `n` messages (as Lambda's poller would), keeping them in flight. */
export async function receiveInFlight(
  client: SQSClient,
  q: TestQueue,
  n: number,
): Promise<Message[]> {
  const got: Message[] = [];
  const deadline = Date.now() + 10_000;
  while (got.length < n && Date.now() < deadline) {
    const r = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: q.url,
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

const codecs = new CodecRegistry();

/** A dead-lettered message as read back from a DLQ: target, decoded body, reason. */
export interface ReadDeadLetter {
  readonly target?: string;
  readonly body: unknown;
  readonly reason: { code: string; description: string };
  readonly messageId: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function readDeadLetter(m: Message): ReadDeadLetter {
  const incoming = fromSqsMessage(m, 'dlq');
  let body: unknown;
  try {
    body = codecs.decodeMessage(incoming);
  } catch {
    body = incoming.body;
  }
  const a = m.MessageAttributes ?? {};
  return {
    target: incoming.target,
    body,
    messageId: incoming.messageId,
    headers: incoming.headers,
    reason: {
      code: a.dead_letter_reason?.StringValue ?? 'max-deliveries',
      description: a.dead_letter_description?.StringValue ?? 'redriven by SQS (maxReceiveCount)',
    },
  };
}

/**
 * The Lambda SQS record for a message received from SQS (ReceiveMessage with all attributes),
 * in the shape the event source mapping delivers: camel-cased fields, system attributes as
 * strings, message attributes with `stringValue`/`binaryValue` (base64)/list fields/`dataType`.
 */
export function toLambdaRecord(m: Message, queueArn: string): SqsRecord {
  const messageAttributes: SqsRecord['messageAttributes'] = {};
  for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) {
    messageAttributes[k] = {
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined
        ? { binaryValue: Buffer.from(v.BinaryValue).toString('base64') }
        : {}),
      stringListValues: [],
      binaryListValues: [],
      dataType: v.DataType!,
    };
  }
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? '',
    attributes: { ...(m.Attributes ?? {}) },
    messageAttributes,
    md5OfBody: m.MD5OfBody!,
    ...(m.MD5OfMessageAttributes ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: AWS_REGION,
  };
}

/**
 * The Lambda SNS record for an SNS notification envelope received in an SQS queue subscribed
 * without raw delivery (the same JSON SNS posts; Lambda renames SigningCertURL and
 * UnsubscribeURL to ...Url).
 */
export function snsEnvelopeToLambdaRecord(body: string, subscriptionArn: string): SnsRecord {
  const e = JSON.parse(body) as Record<string, any>;
  return {
    EventSource: 'aws:sns',
    EventVersion: '1.0',
    EventSubscriptionArn: subscriptionArn,
    Sns: {
      Type: e.Type,
      MessageId: e.MessageId,
      TopicArn: e.TopicArn,
      Subject: e.Subject ?? null,
      Message: e.Message,
      Timestamp: e.Timestamp,
      SignatureVersion: e.SignatureVersion,
      Signature: e.Signature,
      SigningCertUrl: e.SigningCertURL,
      UnsubscribeUrl: e.UnsubscribeURL,
      MessageAttributes: e.MessageAttributes ?? {},
    },
  };
}

/** A Lambda context good enough for middy. */
export function lambdaContext(name = 'cloudmom-test'): any {
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${AWS_REGION}:123456789012:function:${name}`,
    memoryLimitInMB: '128',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 30_000,
    done() {},
    fail() {},
    succeed() {},
  };
}
