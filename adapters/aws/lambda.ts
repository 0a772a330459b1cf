/**
 * cloudmom in an AWS Lambda function: {@link lambdaHandler} with function-side
 * {@link SqsBroker} and {@link SnsBroker} — `add()` handlers, dispatch of SQS and SNS events
 * (replies and dead-letter copies included), `publish()` — without what only a long-running
 * process uses: the receive loop of `start()`, `request()` and its reply queue, the
 * dead-letter reader of the CLI. That keeps the function's bundle small (the same code as
 * `cloudmom/aws` for everything it does keep). They have no `start()`, `request()` or
 * `publishBatch()` (in TypeScript, calling one is a compile error): import the brokers of
 * `cloudmom/aws` for those. Their type is `BrokerCore`, what every broker has.
 *
 * Handlers, replies and `lambdaHandler` are those of `cloudmom/aws`, and so are the options
 * but the three only `start()` reads (`waitTimeSeconds`, `visibilityTimeoutSeconds`,
 * `pollers`): switching is a change of the import path. One difference: SNS events (topic →
 * function) need the {@link SnsBroker} here; the {@link SqsBroker} takes SQS events (SNS
 * envelopes in SQS bodies included) and refuses SNS events with an `InvalidArgumentError`,
 * so an SQS function's bundle carries no SNS-event code.
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws/lambda';
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL! });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * export const handler = lambdaHandler(broker);
 * ```
 * @module
 */
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { BrokerCore } from '../../src/broker-core.ts';
import { takeSnsEvents } from './sns-events.ts';
import {
  type SnsBrokerOptions as AwsSnsBrokerOptions,
  type SqsBrokerOptions as AwsSqsBrokerOptions,
  type SnsTransport,
  type SqsTransport,
  snsParts,
  sqsParts,
} from './transport.ts';

export {
  type LambdaHandler,
  type LambdaHandlerOptions,
  type LambdaMiddleware,
  lambdaHandler,
  type SnsEvent,
  type SnsRecord,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
  type SqsRecordAttribute,
} from './entrypoint.ts';
export { SNS_MAX_BYTES, SQS_MAX_BYTES } from './transport.ts';

/**
 * Options of the function-side {@link SqsBroker}: those of the `SqsBroker` of `cloudmom/aws`
 * but the ones only `start()`'s long polls read (`waitTimeSeconds`,
 * `visibilityTimeoutSeconds`, `pollers`), which are refused.
 *
 * @example
 * ```ts
 * const options: SqsBrokerOptions = { queue: process.env.QUEUE_URL!, deadLetterQueue: process.env.DLQ_URL };
 * ```
 */
export type SqsBrokerOptions = Omit<
  AwsSqsBrokerOptions,
  'waitTimeSeconds' | 'visibilityTimeoutSeconds' | 'pollers'
>;

/**
 * Options of the function-side {@link SnsBroker}: those of the `SnsBroker` of `cloudmom/aws`
 * but the ones only `start()`'s long polls read, which are refused.
 *
 * @example
 * ```ts
 * const options: SnsBrokerOptions = { topic: process.env.TOPIC_ARN!, deadLetterQueue: process.env.DLQ_URL };
 * ```
 */
export type SnsBrokerOptions = Omit<
  AwsSnsBrokerOptions,
  'waitTimeSeconds' | 'visibilityTimeoutSeconds' | 'pollers'
>;

/**
 * An SQS broker for a Lambda function: the `SqsBroker` of `cloudmom/aws` (same options,
 * same publish, handlers, replies and dead-letter copies) without `start()`, `request()` and
 * `publishBatch()` (those are on the `SqsBroker` of `cloudmom/aws`). Pass it to
 * {@link lambdaHandler} for SQS events (SNS envelopes in SQS bodies included); SNS events
 * (topic → function) need the {@link SnsBroker}.
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws/lambda';
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL!, deadLetterQueue: process.env.DLQ_URL });
 * broker.add('orders', async (properties, order) => ({ accepted: order.id }));
 * export const handler = lambdaHandler(broker);
 * ```
 */
export class SqsBroker extends BrokerCore {
  readonly #transport: SqsTransport;

  constructor(options: SqsBrokerOptions) {
    const [transport, core] = sqsParts(options, undefined);
    super(transport, core);
    this.#transport = transport;
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

/**
 * An SNS broker for a Lambda function: the `SnsBroker` of `cloudmom/aws` (publish to the
 * topic, SNS events dispatched, replies over SQS) without `start()`, `request()` and
 * `publishBatch()` (those are on the `SnsBroker` of `cloudmom/aws`).
 *
 * @example
 * ```ts
 * import { SnsBroker, lambdaHandler } from 'cloudmom/aws/lambda';
 * const broker = new SnsBroker({ topic: process.env.TOPIC_ARN!, deadLetterQueue: process.env.DLQ_URL });
 * broker.add('invoice.created', async (properties, invoice) => { await broker.publish(invoice, 'invoice.mailed'); });
 * export const handler = lambdaHandler(broker);
 * ```
 */
export class SnsBroker extends BrokerCore {
  readonly #transport: SnsTransport;

  constructor(options: SnsBrokerOptions) {
    const [transport, core] = snsParts(options, undefined);
    super(transport, core);
    this.#transport = transport;
    takeSnsEvents(this);
  }

  /** The SNS client (injected, or created on first use). */
  override get client(): SNSClient {
    return this.#transport.sns;
  }

  /** The SQS client used for replies and dead letters. */
  get sqsClient(): SQSClient {
    return this.#transport.client;
  }

  /** The `deadLetterQueue` option. */
  get deadLetterQueue(): string | undefined {
    return this.#transport.deadLetterQueue;
  }

  /** The topic ARN (resolved once when a name was given). */
  topicArn(): Promise<string> {
    return this.#transport.topicArn();
  }
}
