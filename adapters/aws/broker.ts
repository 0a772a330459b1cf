/**
 * The AWS brokers of `cloudmom/aws`: {@link SqsBroker} and {@link SnsBroker} are the core
 * broker plus a transport that only translates — its send side (transport.ts) and its receive
 * side (receive.ts: one {@link Source} per queue, the per-instance reply queue). The loop,
 * concurrency, per-key order, ack batching, lock extension timers, backoff and the
 * dead-letter copy are the core's. The function-side brokers of `cloudmom/aws/lambda`
 * (lambda.ts) are the same without the receive side and the core's long-running side.
 */
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { Broker } from '../../src/broker.ts';
import { sqsReceive } from './receive.ts';
import { takeSnsEvents } from './sns-events.ts';
import {
  type SnsBrokerOptions,
  type SnsTransport,
  type SqsBrokerOptions,
  type SqsTransport,
  snsParts,
  sqsParts,
} from './transport.ts';

export {
  isFifo,
  parseQueueArn,
  SNS_MAX_BYTES,
  type SnsBrokerOptions,
  SQS_MAX_BYTES,
  type SqsBrokerOptions,
  SqsTransport,
} from './transport.ts';

/**
 * A broker on Amazon SQS: publish to a queue (auto-batched, up to 10 messages or 1 MiB per
 * call), consume it with `start()` (long polling, bounded concurrency, visibility extension,
 * delete after success and reply, retry by visibility change, dead-letter by copy with the
 * reason), `request()` over a per-instance reply queue. Standard and FIFO queues (`groupKey` →
 * `MessageGroupId`). For Lambda, pass it to `lambdaHandler`.
 *
 * @example
 * ```ts
 * import { SqsBroker } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: 'orders' });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * await broker.publish('Hello World!', 'hello');
 * ```
 */
export class SqsBroker extends Broker {
  readonly #transport: SqsTransport;

  constructor(options: SqsBrokerOptions) {
    const [transport, core] = sqsParts(options, sqsReceive);
    super(transport, core);
    this.#transport = transport;
    takeSnsEvents(this);
  }

  /** The SQS client (injected, or created on first use). */
  override get client(): SQSClient {
    return this.#transport.client;
  }

  /** The `deadLetterQueue` option (undefined: the source queue's RedrivePolicy target). */
  get deadLetterQueue(): string | undefined {
    return this.#transport.deadLetterQueue;
  }

  /** URL of a queue given by name, URL or ARN (cached). */
  queueUrl(queue: string): Promise<string> {
    return this.#transport.queueUrl(queue);
  }
}

// ---------------------------------------------------------------- SNS

/**
 * A broker on Amazon SNS: `publish` sends to a topic (auto-batched, 256 KiB per message and per
 * PublishBatch) with the `target` attribute that subscriptions filter on; `start()` consumes
 * the SQS queue subscribed to the topic (raw delivery, or SNS envelopes, both understood);
 * replies and `request()` go over SQS reply queues.
 *
 * @example
 * ```ts
 * import { SnsBroker } from 'cloudmom/aws';
 * const broker = new SnsBroker({ topic: 'arn:aws:sns:eu-west-1:123456789012:events', queue: 'billing-events' });
 * broker.add('invoice.created', (properties, body) => console.log(body.id));
 * await broker.start();
 * await broker.publish({ id: 7 }, 'invoice.created');
 * ```
 */
export class SnsBroker extends Broker {
  readonly #transport: SnsTransport;

  constructor(options: SnsBrokerOptions) {
    const [transport, core] = snsParts(options, sqsReceive);
    super(transport, core);
    this.#transport = transport;
    takeSnsEvents(this);
  }

  /** The SNS client (injected, or created on first use). */
  override get client(): SNSClient {
    return this.#transport.sns;
  }

  /** The SQS client used for the subscribed queue, replies and dead letters. */
  get sqsClient(): SQSClient {
    return this.#transport.client;
  }

  /** The `deadLetterQueue` option (undefined: the subscribed queue's RedrivePolicy target). */
  get deadLetterQueue(): string | undefined {
    return this.#transport.deadLetterQueue;
  }

  /** The topic ARN (resolved once when a name was given). */
  topicArn(): Promise<string> {
    return this.#transport.topicArn();
  }
}
