import type { PublishBatchRequestEntry, SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions, INTERNALS } from '../../src/broker.ts';
import { InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';
import type { OutgoingMessage, SendOutcome } from '../../src/transport.ts';
import { checkOptionKeys, pick } from '../../src/util.ts';
import { awsErrorName, snsSdk, toSendError } from './sdk.ts';
import { SqsTransport } from './sqs.ts';
import { measureWire, validateWire, wireAttributes, wireBody } from './wire.ts';

/**
 * SNS limit on a message and on one `PublishBatch` call (bytes): 256 KiB.
 * @example
 * ```ts
 * const fits = new TextEncoder().encode(JSON.stringify(body)).byteLength <= SNS_MAX_BYTES;
 * ```
 */
export const SNS_MAX_BYTES = 256 * 1024;

/**
 * Options of {@link SnsBroker}: those of every broker plus these.
 *
 * @example
 * ```ts
 * const broker = new SnsBroker({ topic: 'arn:aws:sns:eu-west-1:123456789012:events', queue: 'billing-events' });
 * ```
 */
export interface SnsBrokerOptions extends BrokerOptions {
  /** The topic `publish` sends to: an ARN, or a name (resolved once with the idempotent CreateTopic). Required. */
  topic: string;
  /**
   * The SQS queue subscribed to the topic that `start()` consumes (name, URL or ARN); the
   * subscription (filter policy on `target`, raw delivery) is infrastructure. Default: none
   * (a publish-only broker).
   */
  queue?: string;
  /** Dead-letter queue of `queue` (name, URL or ARN). Default: from the queue's RedrivePolicy. */
  deadLetterQueue?: string;
  /** The SNS client. Default `new SNSClient({})`, created on first use. */
  client?: SNSClient;
  /** The SQS client for the queue, replies and `request()`. Default `new SQSClient({})`, created on first use. */
  sqsClient?: SQSClient;
  /** Long-polling wait on the queue, 0–20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Visibility timeout on receive and heartbeat extension, seconds. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Prefix of the per-instance reply queues (and the default reply allow-list). Default `"cloudmom-reply-"`. */
  replyQueuePrefix?: string;
  /** Most ReceiveMessage calls in flight at once. Default `ceil(concurrency / 10)`, at most 5. */
  pollers?: number;
}

const SNS_KEYS = [
  'topic',
  'queue',
  'deadLetterQueue',
  'client',
  'sqsClient',
  'waitTimeSeconds',
  'visibilityTimeoutSeconds',
  'replyQueuePrefix',
  'pollers',
] as const;

/** SQS transport whose default destination is an SNS topic. */
class SnsTransport extends SqsTransport {
  readonly #topic: string;
  readonly #snsOption: SNSClient | undefined;
  #sns: SNSClient | undefined;
  #topicArn: Promise<string> | undefined;
  #fifoChain: Promise<void> = Promise.resolve();

  constructor(
    options: Omit<Pick<SnsBrokerOptions, (typeof SNS_KEYS)[number]>, 'sqsClient'> & {
      sqsClient?: SQSClient;
    },
  ) {
    const { topic, client, sqsClient, ...sqs } = options;
    const fifo = topic.endsWith('.fifo');
    super(
      { ...sqs, client: sqsClient },
      {
        name: 'sns',
        maxMessageBytes: SNS_MAX_BYTES,
        maxBatchBytes: SNS_MAX_BYTES,
        measure: (m) => measureWire(m, { messageId: m.destination === undefined }),
        ordering: fifo,
        maxDelaySeconds: 0,
      },
    );
    this.#topic = topic;
    this.#snsOption = client;
  }

  get sns(): SNSClient {
    if (!this.#sns) this.#sns = this.#snsOption ?? new (snsSdk().SNSClient)({});
    return this.#sns;
  }

  override validate(message: OutgoingMessage): void {
    if (message.destination !== undefined) {
      super.validate(message);
      return;
    }
    validateWire(message, 'SNS', { messageId: true });
    if (this.#topic.endsWith('.fifo') && message.groupKey === undefined)
      throw new InvalidMessageError('a FIFO topic needs a groupKey on every publish');
  }

  topicArn(): Promise<string> {
    if (this.#topic.startsWith('arn:')) return Promise.resolve(this.#topic);
    if (!this.#topicArn) {
      this.#topicArn = this.sns
        .send(new (snsSdk().CreateTopicCommand)({ Name: this.#topic }))
        .then((r) => r.TopicArn!);
      this.#topicArn.catch(() => {
        this.#topicArn = undefined;
      });
    }
    return this.#topicArn;
  }

  override send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const dest = batch[0]?.destination;
    if (dest !== undefined) return this.sendToQueue(dest, batch);
    if (!this.#topic.endsWith('.fifo')) return this.#publish(batch);
    // a FIFO topic: one PublishBatch after the other, so batches keep their order
    const next = this.#fifoChain.then(() => this.#publish(batch));
    this.#fifoChain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #publish(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    let arn: string;
    try {
      arn = await this.topicArn();
    } catch (err) {
      const error = toSendError(err, `SNS topic ${this.#topic}`);
      return batch.map(() => ({ ok: false, error }));
    }
    const sdk = snsSdk();
    const fifo = arn.endsWith('.fifo');
    const entries: PublishBatchRequestEntry[] = batch.map((m, i) => ({
      Id: String(i),
      Message: wireBody(m).text,
      MessageAttributes: Object.fromEntries(
        wireAttributes(m, { messageId: true }).map(([k, v]) => [
          k,
          { DataType: 'String', StringValue: v },
        ]),
      ),
      MessageGroupId: fifo ? m.groupKey : undefined,
      MessageDeduplicationId: fifo ? (m.deduplicationId ?? m.messageId) : undefined,
    }));
    try {
      if (entries.length === 1) {
        const { Id: _id, ...entry } = entries[0]!;
        await this.sns.send(new sdk.PublishCommand({ TopicArn: arn, ...entry }));
        return [{ ok: true, messageId: batch[0]!.messageId }];
      }
      const r = await this.sns.send(
        new sdk.PublishBatchCommand({ TopicArn: arn, PublishBatchRequestEntries: entries }),
      );
      const outcomes: SendOutcome[] = batch.map(() => ({
        ok: false,
        error: toSendError(new Error('no result for this entry'), 'SNS PublishBatch'),
      }));
      for (const s of r.Successful ?? []) {
        const i = Number(s.Id);
        if (outcomes[i]) outcomes[i] = { ok: true, messageId: batch[i]!.messageId };
      }
      for (const f of r.Failed ?? []) {
        const i = Number(f.Id);
        if (!outcomes[i]) continue;
        const cause = Object.assign(new Error(f.Message ?? f.Code ?? 'failed'), {
          name: f.Code ?? 'Error',
          $fault: f.SenderFault ? 'client' : 'server',
        });
        outcomes[i] = { ok: false, error: toSendError(cause, `SNS publish to ${arn}`) };
      }
      return outcomes;
    } catch (err) {
      if (awsErrorName(err) === 'NotFound') this.#topicArn = undefined;
      const error = toSendError(err, `SNS publish to ${arn}`);
      return batch.map(() => ({ ok: false, error }));
    }
  }
}

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
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...SNS_KEYS], 'SnsBroker');
    const [own, core] = pick(options, SNS_KEYS);
    if (typeof own.topic !== 'string' || own.topic === '')
      throw new InvalidArgumentError('SnsBroker: `topic` (an ARN or a name) is required');
    const transport = new SnsTransport(own);
    super(transport, core);
    transport.logger = this[INTERNALS].logger;
    this.#transport = transport;
  }

  /** The SNS client (injected, or created on first use). */
  override get client(): SNSClient {
    return this.#transport.sns;
  }

  /** The SQS client used for the subscribed queue, replies and dead letters. */
  get sqsClient(): SQSClient {
    return this.#transport.client;
  }

  /** The topic ARN (resolved once when a name was given). */
  topicArn(): Promise<string> {
    return this.#transport.topicArn();
  }
}
