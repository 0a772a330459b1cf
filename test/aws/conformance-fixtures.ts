/**
 * Conformance fixtures for the AWS brokers, on any SQS/SNS endpoint (moto, fauxqs,
 * LocalStack): fresh queues (and topic) per test, dead letters read back from the DLQ.
 */

import type { SNSClient } from '@aws-sdk/client-sns';
import { CreateTopicCommand, DeleteTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { BrokerOptions } from 'cloudmom';
import { SnsBroker, SqsBroker } from 'cloudmom/aws';
import type { ConformanceCapabilities, Fixture } from '../conformance/suite.ts';
import {
  createQueueWithDlq,
  deleteQueues,
  drain,
  queueDepth,
  type ReadDeadLetter,
  readDeadLetter,
  uid,
} from './fixtures.ts';

/**
 * Header names SQS and SNS can carry (A-Z a-z 0-9 _ - .), awkward ones included. Not
 * `__proto__`: SQS carries it, but the AWS SDK v3 loses its value on ReceiveMessage (smithy's
 * JsonShapeDeserializer2 redefines the key as undefined before reading it); the Lambda path
 * and dead-letter copies keep it (test/aws/regressions.test.ts).
 */
export const HEADER_KEYS = [
  'x-tenant',
  'a.b.c',
  'UPPER_lower-09',
  'under_score',
  'dash-and.dot',
  '0digits',
  'constructor',
];

const CONSUMER = { waitTimeSeconds: 1, visibilityTimeoutSeconds: 5 } as const;

export function sqsFixture(sqs: SQSClient, fifo: boolean) {
  return async (): Promise<Fixture> => {
    const { queue, dlq } = await createQueueWithDlq(sqs, `cm-${uid()}`, { fifo });
    const dead: ReadDeadLetter[] = [];
    return {
      broker: (options: BrokerOptions = {}) =>
        new SqsBroker({ ...options, ...CONSUMER, client: sqs, queue: queue.url }),
      async deadLetters() {
        dead.push(...(await drain(sqs, dlq.url)).map(readDeadLetter));
        return dead;
      },
      pending: () => queueDepth(sqs, queue.url),
      async injectRaw(m) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queue.url,
            MessageBody: new TextDecoder().decode(m.body),
            MessageAttributes: {
              ...(m.contentType
                ? { content_type: { DataType: 'String', StringValue: m.contentType } }
                : {}),
              ...(m.target ? { target: { DataType: 'String', StringValue: m.target } } : {}),
            },
            ...(fifo ? { MessageGroupId: 'raw', MessageDeduplicationId: uid() } : {}),
          }),
        );
      },
      missingDestinationBroker: (options: BrokerOptions = {}) =>
        new SqsBroker({ ...options, ...CONSUMER, client: sqs, queue: `${queue.name}-missing` }),
      // allowed by the default allow-list (cloudmom-reply-*), but no such queue
      failingReplyAddress: () => `cloudmom-reply-missing-${uid()}`,
      async cleanup() {
        await deleteQueues(sqs, queue.url, dlq.url);
      },
    };
  };
}

export function snsFixture(sqs: SQSClient, sns: SNSClient) {
  return async (): Promise<Fixture> => {
    const id = uid();
    const topic = await sns.send(new CreateTopicCommand({ Name: `cm-${id}` }));
    const { queue, dlq } = await createQueueWithDlq(sqs, `cm-${id}-sub`);
    await sns.send(
      new SubscribeCommand({
        TopicArn: topic.TopicArn,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    const dead: ReadDeadLetter[] = [];
    return {
      broker: (options: BrokerOptions = {}) =>
        new SnsBroker({
          ...options,
          ...CONSUMER,
          client: sns,
          sqsClient: sqs,
          topic: topic.TopicArn!,
          queue: queue.url,
        }),
      async deadLetters() {
        dead.push(...(await drain(sqs, dlq.url)).map(readDeadLetter));
        return dead;
      },
      pending: () => queueDepth(sqs, queue.url),
      async injectRaw(m) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: queue.url,
            MessageBody: new TextDecoder().decode(m.body),
            MessageAttributes: m.contentType
              ? { content_type: { DataType: 'String', StringValue: m.contentType } }
              : {},
          }),
        );
      },
      missingDestinationBroker: (options: BrokerOptions = {}) =>
        new SnsBroker({
          ...options,
          ...CONSUMER,
          client: sns,
          sqsClient: sqs,
          topic: `${topic.TopicArn!}-missing`,
        }),
      failingReplyAddress: () => `cloudmom-reply-missing-${uid()}`,
      async cleanup() {
        await deleteQueues(sqs, queue.url, dlq.url);
        await sns.send(new DeleteTopicCommand({ TopicArn: topic.TopicArn })).catch(() => {});
      },
    };
  };
}

const COMMON = {
  injectRaw: true,
  timeScale: 2,
  lockMs: CONSUMER.visibilityTimeoutSeconds * 1000,
  missingDestination: true,
  failingReply: true,
} as const;

export const SQS_STANDARD_CAPS: ConformanceCapabilities = {
  ...COMMON,
  capabilities: new SqsBroker({ queue: 'capabilities' }).capabilities,
  orderingReason: 'a standard queue does not order (the FIFO run covers ordering)',
  headerKeys: HEADER_KEYS,
};

export const SQS_FIFO_CAPS: ConformanceCapabilities = {
  ...COMMON,
  capabilities: new SqsBroker({ queue: 'capabilities.fifo' }).capabilities,
  delayReason: 'SQS FIFO queues have no per-message delay (only a queue-wide one)',
  headerKeys: HEADER_KEYS,
};

export const SNS_CAPS: ConformanceCapabilities = {
  ...COMMON,
  capabilities: new SnsBroker({ topic: 'arn:aws:sns:us-east-1:123456789012:capabilities' })
    .capabilities,
  orderingReason:
    'a standard topic does not order (FIFO topics deliver to FIFO queues, as the SQS FIFO run)',
  delayReason: 'SNS has no per-message delay',
  // SNS also carries message_id: one attribute fewer for headers
  headerKeys: HEADER_KEYS.slice(0, 6),
};
