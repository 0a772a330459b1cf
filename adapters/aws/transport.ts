/**
 * The send side of the AWS transports, shared by both flavours of the brokers (those of
 * `cloudmom/aws`, broker.ts, and the function-side ones of `cloudmom/aws/lambda`, lambda.ts):
 * `send` (SendMessage/SendMessageBatch, Publish/PublishBatch), the wire checks, the
 * dead-letter address (option or RedrivePolicy), and how SDK errors read. What only `start()`,
 * `request()` and the CLI use — the queue {@link Source}, the reply queue, the dead-letter
 * reader — is the receive side (receive.ts), which the transport is given or not.
 */

import type { PublishBatchRequestEntry, SNSClient } from '@aws-sdk/client-sns';
import type { SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import {
  BrokerStoppedError,
  type ErrorCode,
  InvalidArgumentError,
  InvalidMessageError,
} from '../../src/errors.ts';
import type { Logger } from '../../src/log.ts';
import { BROKER_OPTION_KEYS, type BrokerOptions } from '../../src/options.ts';
import { failAll } from '../../src/publisher.ts';
import type {
  Capabilities,
  DeadLetters,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
} from '../../src/transport.ts';
import { BoundedMap, checkNonEmpty, checkOptionKeys, pick, setTail } from '../../src/util.ts';
import { awsErrorName, isClientFault, isNotFound, snsSdk, sqsSdk } from './sdk.ts';
import { measureWire, sqsAttributes, validateWire, wireBody } from './wire.ts';

/**
 * SQS limit on a message and on one `SendMessageBatch` call (bytes): 1 MiB.
 * @example
 * ```ts
 * if (new TextEncoder().encode(JSON.stringify(body)).byteLength > SQS_MAX_BYTES) storeInS3(body);
 * ```
 */
export const SQS_MAX_BYTES = 1024 * 1024;

/**
 * SNS limit on a message and on one `PublishBatch` call (bytes): 256 KiB.
 * @example
 * ```ts
 * const fits = new TextEncoder().encode(JSON.stringify(body)).byteLength <= SNS_MAX_BYTES;
 * ```
 */
export const SNS_MAX_BYTES = 256 * 1024;

/** Queue URLs cached per name/ARN (reply addresses come from messages: bounded). */
const MAX_CACHED_URLS = 1000;
/** Dead-letter queues cached per source queue. */
const MAX_CACHED_DLQS = 100;

/**
 * Options of {@link SqsBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`...) plus these.
 *
 * @example
 * ```ts
 * const broker = new SqsBroker({ queue: 'orders', waitTimeSeconds: 20, visibilityTimeoutSeconds: 60 });
 * ```
 */
export interface SqsBrokerOptions extends BrokerOptions {
  /** The queue `start()` consumes and `publish` sends to: a name, a URL or an ARN. Required. */
  queue: string;
  /** Queue `publish` sends to when other than `queue` (name, URL or ARN). Default: `queue`. */
  publishTo?: string;
  /**
   * Where messages that can never succeed go (name, URL or ARN). Default: the `deadLetterTargetArn`
   * of the source queue's RedrivePolicy, looked up once per queue.
   */
  deadLetterQueue?: string;
  /** The SQS client. Default: `new SQSClient({})` (region, credentials, `AWS_ENDPOINT_URL` from the environment), created on first use. */
  client?: SQSClient;
  /** Long-polling wait of each ReceiveMessage, 0–20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Visibility timeout asked on receive, and by which the messages in hand are extended (every half of it). Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Prefix of the per-instance reply queues `request()` creates (and the default reply allow-list). Default `"cloudmom-reply-"`. */
  replyQueuePrefix?: string;
  /** Most ReceiveMessage calls in flight at once per queue. Default: `ceil(concurrency / 10)`, at most 5. */
  pollers?: number;
}

/** Options only the receive side reads: those of `start()`'s long polls (`SqsReceiveFactory.keys`). */
export type ReceiveKey = 'waitTimeSeconds' | 'visibilityTimeoutSeconds' | 'pollers';

/** The SqsBroker's own options that the send side reads (written out: a spread would keep the list in every bundle). */
export const SQS_KEYS = [
  'queue',
  'publishTo',
  'deadLetterQueue',
  'client',
  'replyQueuePrefix',
] as const;

/** The options of the receive side (those `start()`'s long polls read). */
export type ReceiveOptions = Pick<SqsBrokerOptions, ReceiveKey>;

export type SqsOwnOptions = Omit<Pick<SqsBrokerOptions, (typeof SQS_KEYS)[number]>, 'queue'> & {
  queue?: string;
};

/** True for a FIFO queue (or topic) name, URL or ARN. */
export function isFifo(queue: string): boolean {
  return queue.endsWith('.fifo');
}

/** `arn:aws:sqs:region:account:name` → its parts; undefined for other strings. */
export function parseQueueArn(arn: string): { account: string; name: string } | undefined {
  const m = /^arn:[\w-]+:sqs:[\w-]*:(\d*):([\w.-]+)$/.exec(arn);
  return m ? { account: m[1]!, name: m[2]! } : undefined;
}

const isQueueUrl = (s: string) => /^https?:\/\//.test(s);

/**
 * What `start()`, `request()` and the CLI's dlq need from SQS beyond sending
 * (adapters/aws/receive.ts). The function-side brokers (`cloudmom/aws/lambda`) have none.
 */
export interface SqsReceive {
  /** The long-polling source of the transport's queue. */
  open(): Promise<readonly Source[]>;
  /** Creates this instance's reply queue and its source. */
  openReplyAddress(): Promise<{ address: string; source: Source }>;
  /** The dead-letter queue of the transport's queue. */
  openDeadLetters(): Promise<DeadLetters>;
  /** Deletes the reply queue, if one was created. */
  close(): Promise<void>;
}

/**
 * Gives a transport its receive side (`open`, `openReplyAddress`, `openDeadLetters`, and a
 * `close` that deletes the reply queue), checking the options only it reads (`keys`); `core`:
 * the broker's own options (its `concurrency` sizes the pollers).
 */
export type SqsReceiveFactory = ((
  t: SqsTransport,
  options: ReceiveOptions,
  core: BrokerOptions,
) => void) & { readonly keys: readonly ReceiveKey[] };

/**
 * The SQS transport: publish (batched by the core), dead-letter copies to the option's queue
 * or the RedrivePolicy target, and — given its receive side ({@link SqsReceive}, what
 * `start()`, `request()` and the CLI's dlq use) — a long-polling {@link Source} per queue and
 * a per-instance reply queue. Also the SQS half of the SNS transport.
 */
export class SqsTransport implements Transport {
  declare readonly capabilities: Capabilities;
  readonly #options: SqsOwnOptions;
  /** Where `publish` sends: `publishTo`, else `queue` (none on the SnsBroker's: its topic). */
  readonly #to: string | undefined;
  #client: SQSClient | undefined;
  readonly #urls = new BoundedMap<string, Promise<string>>(MAX_CACHED_URLS);
  readonly #dlqs = new BoundedMap<string, Promise<string>>(MAX_CACHED_DLQS);
  /**
   * FIFO queues: the send in flight per queue, so batches to one queue go one after the other
   * (the core's batcher sends a full batch at once, even while an earlier one is in flight).
   * An entry lives only while a send is in flight.
   */
  readonly #fifoChains = new Map<string, Promise<void>>();
  /** Prefix of the reply queues `request()` creates. */
  declare readonly replyQueuePrefix: string;
  /** Set by close() (`stop()`): sends are refused. */
  declare closed: boolean;
  /** The broker's logger, for the receive side (which gives the transport `attach`). */
  declare logger: Logger;

  /** `request`: whether the receive side will be given (adapters/aws/receive.ts: the brokers of `cloudmom/aws`). */
  constructor(options: SqsOwnOptions, request: boolean, capabilities?: Partial<Capabilities>) {
    this.#options = options;
    const prefix = options.replyQueuePrefix ?? 'cloudmom-reply-';
    if (!/^[\w-]{1,40}$/.test(prefix))
      throw new InvalidArgumentError('replyQueuePrefix takes 1 to 40 of A-Z a-z 0-9 - _');
    const publishTo = options.publishTo ?? options.queue;
    this.#to = publishTo;
    const fifo = publishTo !== undefined && isFifo(publishTo);
    this.capabilities = {
      name: 'sqs',
      maxMessageBytes: SQS_MAX_BYTES,
      measure: measureWire,
      maxBatchMessages: 10,
      maxBatchBytes: SQS_MAX_BYTES,
      batchLingerMs: 5,
      ordering: fifo,
      maxDelaySeconds: fifo ? 0 : 900,
      nackDelay: true,
      deadLetter: 'copy',
      request,
      defaultReplyAllowList: [`${prefix}*`],
      ...capabilities,
    };
    this.replyQueuePrefix = prefix;
    this.closed = false;
  }

  // Given only by the receive side (the transports of the function-side brokers have none).
  /** The long-polling source of `queue` (`start()`). */
  declare open?: () => Promise<readonly Source[]>;
  /** This instance's reply queue and its source (`request()`). */
  declare openReplyAddress?: () => Promise<{ address: string; source: Source }>;
  /** The dead-letter queue of `queue` and where its messages go back to (adapters/aws/dlq.ts). */
  declare openDeadLetters?: () => Promise<DeadLetters>;

  /** The SQS client (created on first use when none was injected). */
  get client(): SQSClient {
    if (!this.#client) this.#client = this.#options.client ?? new (sqsSdk().SQSClient)({});
    return this.#client;
  }

  /** The configured dead-letter queue, if any. */
  get deadLetterQueue(): string | undefined {
    return this.#options.deadLetterQueue;
  }

  /** Given by the receive side: the broker's logger (the send side logs nothing). */
  declare attach?: (context: { readonly logger: Logger }) => void;

  isRetryable(err: unknown): boolean {
    return !isClientFault(err);
  }

  errorCode(err: unknown): ErrorCode {
    return isNotFound(err) ? 'not-found' : 'send-failed';
  }

  validate(message: OutgoingMessage): void {
    validateWire(message, 'SQS');
    const dest = message.destination ?? this.#to;
    if (dest !== undefined && isFifo(dest)) {
      if (message.delaySeconds)
        throw new InvalidMessageError('SQS FIFO queues have no per-message delay (delaySeconds)');
      fifoId('groupKey', message.groupKey);
      fifoId('deduplicationId', message.deduplicationId);
    }
  }

  /** The URL of a queue given by name, URL or ARN; looked up once and cached (bounded). */
  queueUrl(queue: string): Promise<string> {
    if (isQueueUrl(queue)) return Promise.resolve(queue);
    return cached(this.#urls, queue, () => {
      const arn = parseQueueArn(queue);
      const input = {
        QueueName: arn?.name ?? queue,
        QueueOwnerAWSAccountId: arn?.account || undefined,
      };
      return this.client.send(new (sqsSdk().GetQueueUrlCommand)(input)).then((r) => {
        if (!r.QueueUrl) throw new Error(`no URL for queue ${queue.slice(0, 200)}`);
        return r.QueueUrl;
      });
    });
  }

  send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    // `queue` is required on an SqsBroker; the SnsBroker's transport publishes to its topic
    const dest = batch[0]?.destination ?? this.#to!;
    return this.sendToQueue(dest, batch);
  }

  /**
   * Sends encoded messages to one queue (one SendMessage, or one SendMessageBatch). Sends to a
   * FIFO queue go one call after the other, so batches cannot overtake each other.
   */
  sendToQueue(queue: string, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (this.closed) return closedOutcomes(this, batch);
    if (!isFifo(queue)) return this.#sendToQueue(queue, batch);
    const next = (this.#fifoChains.get(queue) ?? Promise.resolve()).then(() =>
      this.#sendToQueue(queue, batch),
    );
    setTail(this.#fifoChains, queue, next);
    return next;
  }

  /** One SendMessageBatch (for one message too: one call, one path, the same permission). */
  async #sendToQueue(queue: string, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    try {
      const url = await this.queueUrl(queue);
      const fifo = isFifo(url);
      const r = await this.client.send(
        new (sqsSdk().SendMessageBatchCommand)({
          QueueUrl: url,
          Entries: batch.map((m, i) => toEntry(m, String(i), fifo)),
        }),
      );
      return batchOutcomes(batch, r.Successful, r.Failed);
    } catch (error) {
      if (isNotFound(error)) this.#urls.delete(queue);
      return failAll(batch.length, error);
    }
  }

  /** The queue `start()` consumes (the option `queue`). */
  get queue(): string | undefined {
    return this.#options.queue;
  }

  /**
   * Where the core sends the dead-letter copy of `message`: the option `deadLetterQueue`, else
   * the RedrivePolicy target of the queue it came from (its `source`: the queue URL, or a
   * Lambda record's `eventSourceARN`).
   */
  async deadLetterAddress(message: IncomingMessage): Promise<string> {
    const configured = this.#options.deadLetterQueue;
    if (configured !== undefined) return configured;
    const source = message.source;
    if (source === undefined || !(isQueueUrl(source) || parseQueueArn(source)))
      throw new InvalidArgumentError(`no source queue to dead-letter to${SET_DLQ}`);
    return this.deadLetterQueueFor(source);
  }

  /** The dead-letter queue URL of a source queue, from its RedrivePolicy (cached, bounded). */
  deadLetterQueueFor(source: string): Promise<string> {
    return cached(this.#dlqs, source, async () => {
      const r = await this.client.send(
        new (sqsSdk().GetQueueAttributesCommand)({
          QueueUrl: await this.queueUrl(source),
          AttributeNames: ['RedrivePolicy'],
        }),
      );
      const arn = (
        JSON.parse(r.Attributes?.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string }
      ).deadLetterTargetArn;
      if (!arn)
        throw new InvalidArgumentError(
          `queue ${source.slice(0, 200)} has no RedrivePolicy${SET_DLQ}`,
        );
      return this.queueUrl(arn);
    });
  }

  /** Caches the URL of a queue this instance created (its reply queue). */
  knowQueue(name: string, url: Promise<string>): void {
    this.#urls.set(name, url);
  }

  /** Refuses further sends (the receive side also deletes the reply queue). */
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Throws unless `v` (option `k`) is undefined or an id a FIFO queue takes. */
function fifoId(k: string, v: string | undefined): void {
  if (v !== undefined && !/^[\x21-\x7e]{1,128}$/.test(v))
    throw new InvalidMessageError(`${k} on a FIFO queue must be 1–128 printable ASCII characters`);
}

/** Every message of a batch refused: the transport was closed (by `stop()`). */
function closedOutcomes(t: Transport, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
  return Promise.resolve(
    failAll(batch.length, new BrokerStoppedError(`${t.capabilities.name} send`)),
  );
}

const SET_DLQ = ': set the option `deadLetterQueue`';

/** The promise cached under `key`, else `make()`'s, cached until it rejects (bounded). */
function cached<T>(
  cache: BoundedMap<string, Promise<T>>,
  key: string,
  make: () => Promise<T>,
): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = make();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** SendMessageBatch / PublishBatch results → one outcome per message (the platform's errors). */
function batchOutcomes(
  batch: readonly OutgoingMessage[],
  successful: readonly { Id?: string; MessageId?: string }[] = [],
  failed: readonly { Id?: string; Code?: string; Message?: string; SenderFault?: boolean }[] = [],
): SendOutcome[] {
  // filled by Id (an Id that is not an index of the batch is ignored); an entry the service did
  // not answer gets its error last (an Error per message up front would cost a stack trace
  // each on the common all-successful path)
  const outcomes: SendOutcome[] = [];
  for (const s of successful) {
    const i = Number(s.Id);
    if (batch[i]) outcomes[i] = { ok: true, messageId: s.MessageId ?? batch[i].messageId };
  }
  for (const f of failed) {
    const i = Number(f.Id);
    if (batch[i])
      outcomes[i] = {
        ok: false,
        error: Object.assign(new Error(f.Message ?? f.Code ?? 'failed'), {
          name: f.Code ?? 'Error',
          $fault: f.SenderFault ? 'client' : 'server',
        }),
      };
  }
  return batch.map(
    (_, i) =>
      outcomes[i] ?? {
        ok: false,
        error: new Error('no result for this entry'),
      },
  );
}

function dedupId(s: string): string {
  const clean = s.replace(/[^\x21-\x7e]/g, '_');
  return clean.length > 128 ? clean.slice(0, 128) : clean;
}

/** One message as a SendMessageBatch entry (exported for bench/profile/publish-cpu.ts). */
export function toEntry(
  m: OutgoingMessage,
  id: string,
  fifo: boolean,
): SendMessageBatchRequestEntry {
  const dl = m.deadLetter !== undefined;
  return {
    Id: id,
    MessageBody: wireBody(m).text,
    MessageAttributes: sqsAttributes(m),
    DelaySeconds: !fifo && !dl && m.delaySeconds ? m.delaySeconds : undefined,
    MessageGroupId: fifo ? (m.groupKey ?? (dl ? 'dead-letters' : m.messageId)) : undefined,
    MessageDeduplicationId: fifo
      ? dedupId(dl ? `dl-${m.messageId}` : (m.deduplicationId ?? m.messageId))
      : undefined,
  };
}

/**
 * The transport and the core's options of an `SqsBroker` (either flavour): the options checked
 * (unknown keys refused, `queue` required).
 */
export function sqsParts(
  options: SqsBrokerOptions,
  receive: SqsReceiveFactory | undefined,
): [SqsTransport, BrokerOptions] {
  const [own, core, rest] = split(options, SQS_KEYS, receive, 'SqsBroker');
  checkNonEmpty(own.queue, 'SqsBroker: `queue` (a name, URL or ARN)');
  const t = new SqsTransport(own, receive !== undefined);
  receive?.(t, rest, core);
  return [t, core];
}

/** The same for an `SnsBroker` (`topic` required). */
export function snsParts(
  options: SnsBrokerOptions,
  receive: SqsReceiveFactory | undefined,
): [SnsTransport, BrokerOptions] {
  const [own, core, rest] = split(options, SNS_KEYS, receive, 'SnsBroker');
  checkNonEmpty(own.topic, 'SnsBroker: `topic` (an ARN or a name, required)');
  const t = new SnsTransport(own, receive !== undefined);
  receive?.(t, rest, core);
  return [t, core];
}

/**
 * A broker's options (unknown keys refused; without the receive side, the keys only it reads
 * too) split into its own, the core's and the receive side's.
 */
function split<O extends BrokerOptions, K extends keyof O>(
  options: O,
  keys: readonly K[],
  receive: SqsReceiveFactory | undefined,
  where: string,
): [Pick<O, K>, BrokerOptions, ReceiveOptions] {
  const receiveKeys = receive?.keys ?? [];
  checkOptionKeys(
    options,
    [...BROKER_OPTION_KEYS, ...(keys as readonly string[]), ...receiveKeys],
    where,
  );
  const [own, others] = pick(options, keys);
  const [rest, core] = pick(others as ReceiveOptions & BrokerOptions, receiveKeys);
  return [own, core, rest];
}

// ---------------------------------------------------------------- SNS

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
  /**
   * Dead-letter queue (name, URL or ARN). Default: the RedrivePolicy target of `queue`. Needed
   * for SNS events in Lambda (topic → function: there is no queue).
   */
  deadLetterQueue?: string;
  /** The SNS client. Default `new SNSClient({})`, created on first use. */
  client?: SNSClient;
  /** The SQS client for the queue, replies and `request()`. Default `new SQSClient({})`, created on first use. */
  sqsClient?: SQSClient;
  /** Long-polling wait on the queue, 0–20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Visibility timeout on receive and by which messages in hand are extended, seconds. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Prefix of the per-instance reply queues (and the default reply allow-list). Default `"cloudmom-reply-"`. */
  replyQueuePrefix?: string;
  /** Most ReceiveMessage calls in flight at once. Default `ceil(concurrency / 10)`, at most 5. */
  pollers?: number;
}

export const SNS_KEYS = [
  'topic',
  'queue',
  'deadLetterQueue',
  'client',
  'sqsClient',
  'replyQueuePrefix',
] as const;

/** The SQS transport whose default destination is an SNS topic. */
export class SnsTransport extends SqsTransport {
  readonly #topic: string;
  readonly #fifo: boolean;
  readonly #snsOption: SNSClient | undefined;
  #sns: SNSClient | undefined;
  #topicArn: Promise<string> | undefined;
  /** FIFO topic: the publish in flight, so batches keep their order (see SqsTransport). */
  #fifoChain: Promise<void> = Promise.resolve();

  constructor(
    options: Omit<Pick<SnsBrokerOptions, (typeof SNS_KEYS)[number]>, 'sqsClient'> & {
      sqsClient?: SQSClient;
    },
    request: boolean,
  ) {
    const { topic, client, sqsClient, ...sqs } = options;
    const fifo = isFifo(topic);
    super({ ...sqs, client: sqsClient }, request, {
      name: 'sns',
      maxMessageBytes: SNS_MAX_BYTES,
      maxBatchBytes: SNS_MAX_BYTES,
      measure: (m) => measureWire(m, { messageId: m.destination === undefined }),
      // a FIFO topic delivers to FIFO queues in order: replies carry the incoming group key
      ordering: fifo,
      maxDelaySeconds: 0,
    });
    this.#topic = topic;
    this.#fifo = fifo;
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
    if (this.#fifo && message.groupKey === undefined)
      throw new InvalidMessageError('a FIFO topic needs a groupKey on every publish');
  }

  topicArn(): Promise<string> {
    if (this.#topic.startsWith('arn:')) return Promise.resolve(this.#topic);
    if (!this.#topicArn) {
      const arn = this.sns
        .send(new (snsSdk().CreateTopicCommand)({ Name: this.#topic }))
        .then((r) => r.TopicArn!);
      this.#topicArn = arn;
      arn.catch(() => {
        if (this.#topicArn === arn) this.#topicArn = undefined;
      });
    }
    return this.#topicArn;
  }

  override send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const dest = batch[0]?.destination;
    if (dest !== undefined) return this.sendToQueue(dest, batch);
    if (this.closed) return closedOutcomes(this, batch);
    if (!this.#fifo) return this.#publish(batch);
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
    } catch (error) {
      return failAll(batch.length, error);
    }
    const sdk = snsSdk();
    const fifo = isFifo(arn);
    const entries: PublishBatchRequestEntry[] = batch.map((m, i) => ({
      Id: String(i),
      Message: wireBody(m).text,
      MessageAttributes: sqsAttributes(m, { messageId: true }),
      MessageGroupId: fifo ? m.groupKey : undefined,
      MessageDeduplicationId: fifo ? dedupId(m.deduplicationId ?? m.messageId) : undefined,
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
      // the message id is ours (the `message_id` attribute), not SNS's
      return batchOutcomes(
        batch,
        r.Successful?.map(({ Id }) => ({ Id })),
        r.Failed,
      );
    } catch (error) {
      if (awsErrorName(error).startsWith('NotFound')) this.#topicArn = undefined;
      return failAll(batch.length, error);
    }
  }
}
