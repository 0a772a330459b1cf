/**
 * `KafkaBroker`: the core {@link Broker} over Apache Kafka (MSK, Confluent, self-managed,
 * Event Hubs' Kafka endpoint) through `@platformatic/kafka` (pure TypeScript; an optional peer
 * dependency, loaded on first use).
 *
 * Publishing: an idempotent producer with `acks=all`; `publish` resolves once the partition
 * leader and its in-sync replicas have the record. The group key is the record key (the
 * Java client's murmur2 partitioner, so Java and cloudmom producers agree on partitions).
 *
 * Consuming: one consumer group over the configured topics. Records wait in the source in
 * *lanes* — one per record key, or one per partition for records without a key — and a lane
 * hands the core one record at a time, so order holds per key (per partition for keyless
 * records) while different keys and partitions run concurrently up to the broker's
 * concurrency. Offsets are committed by watermark (the entries of a partition in offset order): a partition's
 * offset moves past a record only once it and every record before it are settled, so a crash
 * never skips an unsettled record (it redelivers the settled ones after the watermark).
 *
 * Retries: Kafka has no per-message nack. A failed record is retried *in its lane*, locally,
 * after the core's backoff: the lane (its key) waits, other keys go on, and the partition's
 * commit stays behind the record until it is settled. After `maxDeliveries` the core copies
 * it to the dead-letter topic (`<topic>.dlt`, with `dead_letter_reason`,
 * `dead_letter_description` and `delivery_count` headers) and the lane moves on. The count
 * lives in memory: a restart redelivers from the committed watermark with a count of 1.
 *
 * Replies: one shared reply topic (`cloudmom-replies`); an instance's reply address is
 * `<topic>#<instance key>` and replies carry that key as their record key. Each requester
 * reads every partition of the reply topic from the end, without a consumer group (no join,
 * no rebalance, nothing shared), and keeps the records with its key: no reply is taken by
 * another instance.
 */
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from '../../src/broker.ts';
import { type ErrorCode, InvalidArgumentError, SendError } from '../../src/errors.ts';
import { describeError, type Logger, silentLogger } from '../../src/log.ts';
import { optionalPeer } from '../../src/peer.ts';
import { PushBuffer } from '../../src/sources.ts';
import type {
  Capabilities,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Source,
  Transport,
} from '../../src/transport.ts';
import { SENT } from '../../src/transport.ts';
import { checkOptionKeys, pick, sleep } from '../../src/util.ts';
import {
  DEAD_LETTER_SUFFIX,
  DEFAULT_REPLY_TOPIC,
  decodeRecord,
  groupKeyOf,
  isTopicName,
  LIMITS,
  measure,
  replyAddress,
  toRecord,
  validate,
  type WireRecord,
} from './wire.ts';

type Sdk = typeof import('@platformatic/kafka');
type Producer = import('@platformatic/kafka').Producer;
type Consumer = import('@platformatic/kafka').Consumer;
type KafkaMessage = import('@platformatic/kafka').Message;
type MessagesStream = import('@platformatic/kafka').MessagesStream<Buffer, Buffer, Buffer, Buffer>;
type BaseOptions = import('@platformatic/kafka').BaseOptions;

/** `@platformatic/kafka`, loaded once on first use (an optional peer dependency). */
const sdk = optionalPeer<Sdk>('@platformatic/kafka', 'cloudmom/kafka');

/**
 * Connection settings of the clients the broker creates (never logged), passed to
 * `@platformatic/kafka` as they are.
 *
 * @example
 * ```ts
 * const connection: KafkaConnectionOptions = { tls: {}, sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' } };
 * ```
 */
export interface KafkaConnectionOptions {
  /** TLS (`node:tls` options; `{}` for TLS with the system CAs). Default: plaintext. */
  tls?: import('node:tls').ConnectionOptions;
  /**
   * SASL: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER` (MSK IAM: a `token`
   * function returning a signed token), `GSSAPI`. Credentials may be functions (rotation).
   */
  sasl?: {
    mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER' | 'GSSAPI';
    /** User name (PLAIN, SCRAM); Event Hubs: `$ConnectionString`. */
    username?: string | (() => string | Promise<string>);
    /** Password (PLAIN, SCRAM); Event Hubs: the connection string. */
    password?: string | (() => string | Promise<string>);
    /** Bearer token (OAUTHBEARER). */
    token?: string | (() => string | Promise<string>);
  };
  /** Milliseconds to open a connection. Default 5000. */
  connectTimeout?: number;
  /** Milliseconds a request may take. Default 5000. */
  timeout?: number;
  /** Retries of a failed operation. Default 10. */
  retries?: number;
  /** Milliseconds between retries, or a function of the attempt. Default 100 doubling to 2000. */
  retryDelay?: number | ((client: unknown, operation: string, attempt: number) => number);
  /** Milliseconds cluster metadata is cached. Default 5000. */
  metadataMaxAge?: number;
  /** Rack of this client (fetch from the closest replica where the cluster allows). */
  clientRack?: string;
}

/** Consumer group timings (classic protocol). */
export interface KafkaGroupOptions {
  /** The group drops a member silent for this long. Default 30 000 ms. */
  sessionTimeoutMs?: number;
  /** Heartbeat period. Default 3 000 ms. */
  heartbeatIntervalMs?: number;
  /** How long a rebalance waits for members to rejoin. Default 60 000 ms. */
  rebalanceTimeoutMs?: number;
}

/**
 * Options of {@link KafkaBroker}: its own, plus every core option ({@link BrokerOptions}).
 *
 * @example
 * ```ts
 * new KafkaBroker({ brokers: ['b-1.msk:9094'], topic: 'orders', groupId: 'billing', connection: { tls: {} } });
 * ```
 */
export interface KafkaBrokerOptions extends BrokerOptions {
  /** Bootstrap servers, `host:port` (an array or a comma-separated string). Required. */
  brokers: string | readonly string[];
  /** Topic `publish()` sends to, and (by default) the one `start()` consumes. Default `cloudmom`. */
  topic?: string;
  /** Topics `start()` consumes. Default `[topic]`. */
  topics?: readonly string[];
  /** Consumer group of `start()`. Default `cloudmom`. */
  groupId?: string;
  /** Client id Kafka sees (quotas, logs). Default `cloudmom`. */
  clientId?: string;
  /** TLS, SASL, timeouts and retries of the clients the broker creates. Default: plaintext; 10 retries, 100 ms doubling to 2 s between them. */
  connection?: KafkaConnectionOptions;
  /** An existing producer to publish with (you close it). Default: one the broker creates (idempotent, acks=all). */
  producer?: Producer;
  /** An existing consumer (its group id wins) for `start()` (you close it). Default: one the broker creates. */
  consumer?: Consumer;
  /** Dead-letter topic for every source topic. Default `<source topic>.dlt`. */
  deadLetterTopic?: string;
  /** Reply topic `request()` reads, shared by requesters. Default `cloudmom-replies`. */
  replyTopic?: string;
  /** Largest message (value + key + headers). Default 1 000 000 bytes (Kafka's default `message.max.bytes` is 1 048 588 per batch). */
  maxMessageBytes?: number;
  /** Compression of produced batches. Default `none`. */
  compression?: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
  /** Records held ahead of the handlers before fetching pauses. Default 1000. */
  prefetch?: number;
  /** Where a group with no committed offset starts. Default `earliest` (nothing published before the first start is skipped). */
  startFrom?: 'earliest' | 'latest';
  /** Longest a fetch waits for records (also bounds how long `stop()` waits for one). Default 500 ms. */
  maxWaitMs?: number;
  /** Consumer group timings. */
  group?: KafkaGroupOptions;
  /**
   * Records without a key are handled one at a time per partition, in partition order (as a
   * Kafka consumer does). `false`: they run concurrently, in no order. Default true.
   */
  orderKeyless?: boolean;
  /** Let the broker create missing topics on first use (the cluster's `auto.create.topics.enable` must allow it). Default false. */
  autocreateTopics?: boolean;
}

const KAFKA_KEYS = [
  'brokers',
  'topic',
  'topics',
  'groupId',
  'clientId',
  'connection',
  'producer',
  'consumer',
  'deadLetterTopic',
  'replyTopic',
  'maxMessageBytes',
  'compression',
  'prefetch',
  'startFrom',
  'maxWaitMs',
  'group',
  'autocreateTopics',
  'orderKeyless',
] as const satisfies readonly (keyof KafkaBrokerOptions)[];

type OwnOptions = Pick<KafkaBrokerOptions, (typeof KAFKA_KEYS)[number]>;

/** The native clients of a {@link KafkaBroker}. */
export interface KafkaClients {
  /** Publishes (records, replies, dead-letter copies). */
  readonly producer: Producer;
  /** The consumer group of `start()` (created on first use). */
  readonly consumer: Consumer;
}

/**
 * A broker on Apache Kafka: publish to a topic with the target in a header, consume in a
 * consumer group, reply through a shared reply topic.
 *
 * @example
 * ```ts
 * import { KafkaBroker } from 'cloudmom/kafka';
 * const broker = new KafkaBroker({ brokers: ['localhost:9092'], topic: 'orders', groupId: 'billing' });
 * broker.add('invoice', async (properties, body) => ({ ok: true }));
 * await broker.start();
 * await broker.publish({ id: 7 }, 'invoice', { groupKey: 'customer-7' });
 * ```
 */
export class KafkaBroker extends Broker {
  readonly #transport: KafkaTransport;

  constructor(options: KafkaBrokerOptions) {
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError('KafkaBroker: options must be an object');
    checkOptionKeys(options, [...KAFKA_KEYS, ...BROKER_OPTION_KEYS], 'KafkaBroker');
    const [own, core] = pick(options, KAFKA_KEYS);
    const transport = new KafkaTransport(own);
    super(transport, core);
    this.#transport = transport;
  }

  /** The producer and the consumer (created on first use). */
  override get client(): KafkaClients {
    return this.#transport.client;
  }

  /** The dead-letter topic of a source topic. */
  deadLetterTopic(topic = this.#transport.topic): string {
    return this.#transport.deadLetterTopicOf(topic);
  }
}

/**
 * Retries of a client operation (connect, metadata, produce, fetch, commit) before it fails,
 * and the backoff between them: 100 ms doubling to 2 s, about 14 s in all (an unknown topic
 * fails after that; a broker restart shorter than that goes unnoticed).
 */
const DEFAULT_RETRIES = 10;
function retryBackoff(_client: unknown, _op: string, attempt: number): number {
  return Math.min(2000, 100 * 2 ** Math.max(0, attempt - 1));
}

function positive(v: unknown, name: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new InvalidArgumentError(
      `KafkaBroker: ${name} must be an integer ≥ ${min}, got ${String(v)}`,
    );
  return v;
}

function topicOption(v: unknown, name: string): string {
  if (typeof v !== 'string' || !isTopicName(v))
    throw new InvalidArgumentError(
      `KafkaBroker: ${name} must be a Kafka topic name (1–249 of a-z A-Z 0-9 . _ -), got ${JSON.stringify(v)}`,
    );
  return v;
}

function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'errors' in err && Array.isArray(err.errors)) {
    const inner = (err.errors as unknown[]).map((e) => describeError(e)).join('; ');
    return `${describeError(err)} (${inner.slice(0, 500)})`;
  }
  return describeError(err);
}

/** Walks an error and its nested `errors` / `cause`. */
function* errorChain(err: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (!err || typeof err !== 'object' || depth > 5) return;
  const e = err as Record<string, unknown>;
  yield e;
  if (Array.isArray(e.errors)) for (const x of e.errors) yield* errorChain(x, depth + 1);
  if (e.cause) yield* errorChain(e.cause, depth + 1);
}

class KafkaTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly topic: string;
  readonly #topics: readonly string[];
  readonly #groupId: string;
  readonly #clientId: string;
  readonly #brokers: string[];
  readonly #connection: KafkaConnectionOptions;
  readonly #deadLetterTopic: string | undefined;
  readonly #replyTopic: string;
  readonly #compression: OwnOptions['compression'];
  readonly #prefetch: number;
  readonly #startFrom: 'earliest' | 'latest';
  readonly #maxWaitMs: number;
  readonly #group: Required<KafkaGroupOptions>;
  readonly #autocreate: boolean;
  readonly #orderKeyless: boolean;
  readonly #maxMessageBytes: number;
  #producer: Producer | undefined;
  readonly #ownProducer: boolean;
  #consumer: Consumer | undefined;
  readonly #ownConsumer: boolean;
  #listening = false;
  #roundRobin = 0;
  readonly #sources = new Set<KafkaGroupSource | KafkaReplySource>();
  logger: Logger = silentLogger;
  #closed = false;

  constructor(o: OwnOptions) {
    const brokers = typeof o.brokers === 'string' ? o.brokers.split(',') : o.brokers;
    if (!Array.isArray(brokers) || brokers.length === 0)
      throw new InvalidArgumentError(
        'KafkaBroker: brokers (bootstrap servers, host:port) is required',
      );
    this.#brokers = brokers.map((b) => {
      if (typeof b !== 'string' || !/^[^\s:]+:\d+$/.test(b.trim()))
        throw new InvalidArgumentError(`KafkaBroker: broker "${String(b)}" is not host:port`);
      return b.trim();
    });
    this.topic = topicOption(o.topic ?? 'cloudmom', 'topic');
    const topics = o.topics ?? [this.topic];
    if (!Array.isArray(topics) || topics.length === 0)
      throw new InvalidArgumentError('KafkaBroker: topics must be a non-empty array');
    this.#topics = topics.map((t, i) => topicOption(t, `topics[${i}]`));
    this.#groupId = nonEmpty(o.groupId ?? 'cloudmom', 'groupId');
    this.#clientId = nonEmpty(o.clientId ?? 'cloudmom', 'clientId');
    if (o.connection !== undefined && (o.connection === null || typeof o.connection !== 'object'))
      throw new InvalidArgumentError('KafkaBroker: connection must be an object');
    this.#connection = o.connection ?? {};
    this.#deadLetterTopic =
      o.deadLetterTopic === undefined
        ? undefined
        : topicOption(o.deadLetterTopic, 'deadLetterTopic');
    this.#replyTopic = topicOption(o.replyTopic ?? DEFAULT_REPLY_TOPIC, 'replyTopic');
    const compressions = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
    if (o.compression !== undefined && !compressions.includes(o.compression))
      throw new InvalidArgumentError(
        `KafkaBroker: compression must be one of ${compressions.join(', ')}`,
      );
    this.#compression = o.compression;
    this.#prefetch = positive(o.prefetch ?? 1000, 'prefetch');
    if (o.startFrom !== undefined && o.startFrom !== 'earliest' && o.startFrom !== 'latest')
      throw new InvalidArgumentError('KafkaBroker: startFrom must be "earliest" or "latest"');
    this.#startFrom = o.startFrom ?? 'earliest';
    this.#maxWaitMs = positive(o.maxWaitMs ?? 500, 'maxWaitMs', 0);
    checkOptionKeys(
      o.group,
      ['sessionTimeoutMs', 'heartbeatIntervalMs', 'rebalanceTimeoutMs'],
      'KafkaBroker group',
    );
    const session = positive(o.group?.sessionTimeoutMs ?? 30_000, 'group.sessionTimeoutMs');
    this.#group = {
      sessionTimeoutMs: session,
      heartbeatIntervalMs: positive(
        o.group?.heartbeatIntervalMs ?? Math.min(3000, Math.floor(session / 3)),
        'group.heartbeatIntervalMs',
      ),
      rebalanceTimeoutMs: positive(
        o.group?.rebalanceTimeoutMs ?? Math.max(60_000, session),
        'group.rebalanceTimeoutMs',
      ),
    };
    this.#autocreate = o.autocreateTopics ?? false;
    if (o.orderKeyless !== undefined && typeof o.orderKeyless !== 'boolean')
      throw new InvalidArgumentError('KafkaBroker: orderKeyless must be a boolean');
    this.#orderKeyless = o.orderKeyless ?? true;
    this.#maxMessageBytes = positive(
      o.maxMessageBytes ?? LIMITS.maxMessageBytes,
      'maxMessageBytes',
    );
    this.#producer = o.producer;
    this.#ownProducer = o.producer === undefined;
    this.#consumer = o.consumer;
    this.#ownConsumer = o.consumer === undefined;
    const reply = this.#replyTopic.replace(/[.]/g, '\\.');
    this.capabilities = {
      name: 'kafka',
      maxMessageBytes: this.#maxMessageBytes,
      measure,
      maxBatchMessages: LIMITS.maxBatchMessages,
      maxBatchBytes: Math.max(this.#maxMessageBytes, 1_000_000),
      batchLingerMs: 0,
      ordering: true,
      maxDelaySeconds: 0,
      nackDelay: true,
      deadLetter: 'copy',
      request: true,
      defaultReplyAllowList: [new RegExp(`^${reply}#[^#]+$`)],
    };
  }

  attach(context: { readonly logger: Logger }): void {
    this.logger = context.logger;
  }

  get client(): KafkaClients {
    const self = this;
    return {
      get producer() {
        return self.producer();
      },
      get consumer() {
        return self.groupConsumer();
      },
    };
  }

  #base(clientId = this.#clientId): BaseOptions {
    return {
      retries: DEFAULT_RETRIES,
      retryDelay: retryBackoff,
      ...(this.#connection as Partial<BaseOptions>),
      clientId,
      bootstrapBrokers: this.#brokers,
      autocreateTopics: this.#autocreate,
    };
  }

  producer(): Producer {
    if (!this.#producer) {
      const { Producer, ProduceAcks, compatibilityPartitioner } = sdk();
      const p = new Producer({
        ...this.#base(),
        idempotent: true,
        acks: ProduceAcks.ALL,
        // Keyed: murmur2 as the Java client (same key, same partition, across clients);
        // keyless: round robin.
        partitioner: (message, key) =>
          key ? compatibilityPartitioner(message, key) : this.#roundRobin++ & 0x7fffffff,
        ...(this.#compression && this.#compression !== 'none'
          ? { compression: this.#compression }
          : {}),
      });
      p.on('error', (err: unknown) =>
        this.logger.warn('kafka producer error', { error: errorText(err) }),
      );
      this.#producer = p;
    }
    return this.#producer;
  }

  groupConsumer(): Consumer {
    if (!this.#consumer) {
      const { Consumer } = sdk();
      this.#consumer = new Consumer({
        ...this.#base(),
        groupId: this.#groupId,
        autocommit: false,
        sessionTimeout: this.#group.sessionTimeoutMs,
        heartbeatInterval: this.#group.heartbeatIntervalMs,
        rebalanceTimeout: this.#group.rebalanceTimeoutMs,
        maxWaitTime: this.#maxWaitMs,
        maxBytes: 8 * 1024 * 1024,
        // Small fetches per partition keep fetching overlapped with handling (a record larger
        // than this still comes: Kafka always returns the first batch of a partition).
        maxBytesPerPartition: 256 * 1024,
        highWaterMark: Math.min(this.#prefetch, 256),
      });
    }
    if (!this.#listening) {
      // Kept for the consumer's whole life: an 'error' event without a listener would throw.
      this.#listening = true;
      this.#consumer.on('error', (err: unknown) =>
        this.logger.warn('kafka consumer error', { error: errorText(err) }),
      );
    }
    return this.#consumer;
  }

  deadLetterTopicOf(topic: string): string {
    return this.#deadLetterTopic ?? `${topic}${DEAD_LETTER_SUFFIX}`;
  }

  validate(m: OutgoingMessage): void {
    validate(m, this.topic);
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (this.#closed) throw new SendError('the kafka transport is closed');
    const messages = batch.map((m) => toRecord(m, this.topic));
    await this.producer().send({ messages });
    return batch.map(() => SENT);
  }

  async open(): Promise<readonly Source[]> {
    const source = new KafkaGroupSource(this, this.groupConsumer(), this.#topics, {
      prefetch: this.#prefetch,
      orderKeyless: this.#orderKeyless,
      startFrom: this.#startFrom,
      group: this.#group,
      maxWaitMs: this.#maxWaitMs,
    });
    await this.#started(source);
    return [source];
  }

  async openReplyAddress(): Promise<{ readonly address: string; readonly source: Source }> {
    const key = globalThis.crypto.randomUUID();
    const { Consumer } = sdk();
    const consumer = new Consumer({
      ...this.#base(`${this.#clientId}-replies`),
      groupId: `${this.#groupId}-replies-unused`,
      maxWaitTime: this.#maxWaitMs,
    });
    const source = new KafkaReplySource(this, consumer, this.#replyTopic, key, {
      prefetch: this.#prefetch,
      orderKeyless: false,
      maxWaitMs: this.#maxWaitMs,
    });
    await this.#started(source);
    return { address: replyAddress(this.#replyTopic, key), source };
  }

  /** Starts a source, tracked for close(); one that fails to start is closed and forgotten. */
  async #started(source: KafkaGroupSource | KafkaReplySource): Promise<void> {
    this.#sources.add(source);
    try {
      await source.start();
    } catch (err) {
      this.#sources.delete(source);
      await source.close().catch(() => undefined);
      throw err;
    }
  }

  deadLetterAddress(message: IncomingMessage): string {
    const source = message.source;
    return this.deadLetterTopicOf(
      source !== undefined && isTopicName(source) ? source : this.topic,
    );
  }

  isRetryable(err: unknown): boolean {
    for (const e of errorChain(err)) {
      if (e.canRetry === false && typeof e.apiId === 'string') return false;
      if (e.code === 'PLT_KFK_NETWORK' || e.code === 'PLT_KFK_TIMEOUT') return true;
      if (e.canRetry === true) return true;
    }
    return false;
  }

  errorCode(err: unknown): ErrorCode {
    for (const e of errorChain(err)) {
      if (e.apiId === 'MESSAGE_TOO_LARGE' || e.apiId === 'RECORD_LIST_TOO_LARGE')
        return 'message-too-large';
      if (e.apiId === 'UNKNOWN_TOPIC_OR_PARTITION' || e.apiId === 'UNKNOWN_TOPIC_ID')
        return 'not-found';
      // what @platformatic/kafka reports once its metadata retries for a missing topic ran out
      if (e.code === 'PLT_KFK_USER' && /^Unknown topic /.test(String(e.message)))
        return 'not-found';
    }
    return 'send-failed';
  }

  forget(source: KafkaGroupSource | KafkaReplySource): void {
    this.#sources.delete(source);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sources].map((s) => s.close()));
    const closing: Promise<unknown>[] = [];
    if (this.#ownProducer && this.#producer) closing.push(this.#producer.close());
    if (this.#ownConsumer && this.#consumer) closing.push(this.#consumer.close(true));
    for (const r of await Promise.allSettled(closing))
      if (r.status === 'rejected')
        this.logger.warn('closing a kafka client failed', { error: errorText(r.reason) });
  }
}

function nonEmpty(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.trim() === '')
    throw new InvalidArgumentError(`KafkaBroker: ${name} must be a non-empty string`);
  return v;
}

/** One received record while it is in the source's or the core's hands (its ackId). */
interface Entry {
  /** Acknowledged (or dead-lettered): the watermark may pass it. */
  settled: boolean;
  /**
   * The message of the first delivery (a redelivery hands the core a copy); made when the
   * record is first delivered, so records waiting in a lane hold only the client's record.
   */
  message: IncomingMessage | undefined;
  /** The client's record (`raw` of the message), its partition and timestamp. */
  readonly raw: unknown;
  readonly partition: number;
  readonly timestamp: WireRecord['timestamp'];
  redelivered: boolean;
  readonly offset: bigint;
  readonly pkey: string;
  /** The lane: the record's key, its partition (keyless, in order), or none (alone). */
  lane: string | undefined;
  byKey: boolean;
  /** Its partition's ownership when it was taken (stale once that ends). */
  readonly part: Owned;
  readonly leaderEpoch: number;
  deliveryCount: number;
  state: 'queued' | 'ready' | 'core' | 'waiting' | 'done';
  timer?: ReturnType<typeof setTimeout>;
}

/** A partition while a source owns it: a new one each time it is assigned. */
interface Owned {
  /** False once revoked: its entries still in the core's hands are stale. */
  owned: boolean;
  /** Highest offset taken (re-fetched records at or below it are skipped); -1 before any. */
  seen: bigint;
  /**
   * The commit watermark: the partition's entries in offset order from the first unsettled
   * one (`head`); the offset to commit is the first unsettled one's, or one past the last.
   * A flag on the entry, not a set of settled offsets: most keyed records settle out of order.
   */
  entries: Entry[];
  head: number;
}

const partitionKeys = new Map<string, string[]>();
/** `topic:partition` (one string per partition: map lookups by it need no new string). */
function partitionKey(topic: string, partition: number): string {
  let keys = partitionKeys.get(topic);
  if (!keys) {
    keys = [];
    partitionKeys.set(topic, keys);
  }
  let k = keys[partition];
  if (k === undefined) {
    k = `${topic}:${partition}`;
    keys[partition] = k;
  }
  return k;
}

/**
 * What both sources share: records in lanes (one record of a lane in the core at a time),
 * local retries after a delay, staleness after a partition is revoked, the commit watermark,
 * and flow control (a pause above `prefetch` records held).
 */
class Inbox {
  readonly #ready = new PushBuffer<IncomingMessage>();
  /** Lanes by record key, and by partition (keyless records in partition order). */
  readonly #keyLanes = new Map<string, Entry[]>();
  readonly #partitionLanes = new Map<string, Entry[]>();
  /** Records in no lane (unordered). */
  readonly #alone = new Set<Entry>();
  /** The partitions this source owns (one lookup per record for all it needs of them). */
  readonly #parts = new Map<string, Owned>();
  readonly #prefetch: number;
  readonly #orderKeyless: boolean;
  readonly #ordered: boolean;
  readonly #onCommit: (pkey: string, offset: bigint, leaderEpoch: number) => void;
  readonly #onPressure: (paused: boolean) => void;
  /** The message of an entry's record (its ackId the entry), on first delivery. */
  readonly #decode: (e: Entry) => IncomingMessage;
  #held = 0;
  #paused = false;
  #closed = false;

  constructor(
    settings: {
      readonly prefetch: number;
      readonly orderKeyless: boolean;
      readonly ordered?: boolean;
    },
    onCommit: (pkey: string, offset: bigint, leaderEpoch: number) => void,
    onPressure: (paused: boolean) => void,
    decode: (e: Entry) => IncomingMessage,
  ) {
    this.#decode = decode;
    this.#prefetch = settings.prefetch;
    this.#orderKeyless = settings.orderKeyless;
    this.#ordered = settings.ordered ?? true;
    this.#onCommit = onCommit;
    this.#onPressure = onPressure;
  }

  /** Records held (in lanes, the core's included). */
  get held(): number {
    return this.#held;
  }

  owns(pkey: string): boolean {
    return this.#parts.has(pkey);
  }

  /** Owns partitions from now (one already owned starts again: what it held is stale). */
  assign(pkeys: Iterable<string>): void {
    const list = [...pkeys];
    this.revoke(list.filter((p) => this.#parts.has(p)));
    for (const p of list) this.#parts.set(p, { owned: true, seen: -1n, entries: [], head: 0 });
  }

  /** Forgets partitions: their records still here are dropped, the core's become stale. */
  revoke(pkeys: Iterable<string>): void {
    const gone = new Set(pkeys);
    if (gone.size === 0) return;
    for (const p of gone) {
      const part = this.#parts.get(p);
      if (part) part.owned = false;
      this.#parts.delete(p);
    }
    const drop = (e: Entry) => {
      if (!gone.has(e.pkey) || (e.state !== 'queued' && e.state !== 'waiting')) return false;
      clearTimeout(e.timer);
      e.state = 'done';
      this.#held--;
      return true;
    };
    for (const lanes of [this.#keyLanes, this.#partitionLanes])
      for (const [name, lane] of [...lanes]) {
        for (let i = lane.length - 1; i >= 0; i--) if (drop(lane[i]!)) lane.splice(i, 1);
        if (lane.length === 0) lanes.delete(name);
        else if (lane[0]!.state === 'queued') this.#deliver(lane[0]!);
      }
    for (const e of [...this.#alone]) if (drop(e)) this.#alone.delete(e);
    this.#pressure();
  }

  /** Takes a fetched record. False when it was dropped (not owned, or already taken). */
  accept(
    topic: string,
    partition: number,
    offset: bigint,
    timestamp: WireRecord['timestamp'],
    key: WireRecord['key'],
    raw: unknown,
    leaderEpoch: number,
  ): boolean {
    if (this.#closed) return false;
    const pkey = partitionKey(topic, partition);
    const part = this.#parts.get(pkey);
    if (part === undefined || offset <= part.seen) return false;
    part.seen = offset;
    const e: Entry = {
      settled: false,
      message: undefined,
      raw,
      partition,
      timestamp,
      redelivered: false,
      offset,
      pkey,
      lane: undefined,
      byKey: false,
      part,
      leaderEpoch,
      deliveryCount: 1,
      state: 'queued',
    };
    // A key that is not UTF-8 gets a lossy group key: keys that decode alike share a lane
    // (as they share the core's order gate).
    const groupKey = this.#ordered ? groupKeyOf(key) : undefined;
    const lane = groupKey ?? (this.#ordered && this.#orderKeyless ? pkey : undefined);
    e.lane = lane;
    e.byKey = groupKey !== undefined;
    part.entries.push(e);
    this.#held++;
    if (lane === undefined) {
      this.#alone.add(e);
      this.#deliver(e);
    } else {
      const lanes = e.byKey ? this.#keyLanes : this.#partitionLanes;
      const queue = lanes.get(lane);
      if (queue) queue.push(e);
      else {
        lanes.set(lane, [e]);
        this.#deliver(e);
      }
    }
    this.#pressure();
    return true;
  }

  #stale(e: Entry): boolean {
    return !e.part.owned;
  }

  #deliver(e: Entry): void {
    e.state = 'ready';
    // each delivery its own object: the core tells deliveries apart by identity
    if (!e.redelivered) {
      e.redelivered = true;
      e.message = this.#decode(e);
      this.#ready.push(e.message);
    } else this.#ready.push({ ...e.message!, deliveryCount: e.deliveryCount });
  }

  async receive(max: number, signal: AbortSignal): Promise<IncomingMessage[]> {
    for (;;) {
      const got = await this.#ready.take(max, signal);
      if (got.length === 0) return got;
      const fresh: IncomingMessage[] = [];
      for (const m of got) {
        const e = m.ackId as Entry;
        if (e.state !== 'ready') continue;
        if (this.#stale(e)) this.#finish(e);
        else {
          e.state = 'core';
          fresh.push(m);
        }
      }
      if (fresh.length > 0) return fresh;
    }
  }

  ack(ids: readonly unknown[]): void {
    for (const id of ids) this.ackOne(id);
  }

  ackOne(id: unknown): void {
    const e = id as Entry;
    if (e.state === 'done') return;
    if (!this.#stale(e)) {
      const w = this.#settled(e);
      if (w !== undefined) this.#onCommit(e.pkey, w, e.leaderEpoch);
    }
    this.#finish(e);
  }

  /** Marks an entry settled; the offset to commit when its partition's watermark moved. */
  #settled(e: Entry): bigint | undefined {
    e.settled = true;
    const m = e.part;
    if (m.entries[m.head] !== e) return undefined;
    const entries = m.entries;
    let head = m.head + 1;
    while (head < entries.length && entries[head]!.settled) head++;
    if (head === entries.length) {
      // all settled: one past the last
      const w = entries[head - 1]!.offset + 1n;
      entries.length = 0;
      m.head = 0;
      return w;
    }
    const next = entries[head]!.offset;
    if (head >= 256) {
      // drop the settled prefix (amortized: at most one copy per 256 settled)
      m.entries = entries.slice(head);
      m.head = 0;
    } else m.head = head;
    return next;
  }

  nack(id: unknown, delayMs: number, failed: boolean): void {
    const e = id as Entry;
    if (e.state === 'done') return;
    if (this.#stale(e)) {
      this.#finish(e);
      return;
    }
    if (this.#closed) return; // left unsettled: the committed watermark redelivers it
    if (failed) e.deliveryCount++;
    if (delayMs <= 0) {
      this.#deliver(e);
      return;
    }
    e.state = 'waiting';
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (e.state !== 'waiting' || this.#closed) return;
      if (this.#stale(e)) this.#finish(e);
      else this.#deliver(e);
    }, delayMs);
  }

  /** Removes a record from its lane and hands the lane's next one to the core. */
  #finish(e: Entry): void {
    clearTimeout(e.timer);
    const wasHead = e.state !== 'queued';
    e.state = 'done';
    this.#held--;
    if (e.lane === undefined) this.#alone.delete(e);
    else {
      const lanes = e.byKey ? this.#keyLanes : this.#partitionLanes;
      const lane = lanes.get(e.lane);
      if (lane) {
        if (lane[0] === e) lane.shift();
        else {
          const i = lane.indexOf(e);
          if (i >= 0) lane.splice(i, 1);
        }
        if (lane.length === 0) lanes.delete(e.lane);
        else if (wasHead && lane[0]!.state === 'queued') this.#deliver(lane[0]!);
      }
    }
    this.#pressure();
  }

  #pressure(): void {
    if (!this.#paused && this.#held >= this.#prefetch) {
      this.#paused = true;
      this.#onPressure(true);
    } else if (this.#paused && this.#held <= this.#prefetch * 0.75) {
      this.#paused = false;
      this.#onPressure(false);
    }
  }

  fail(err: unknown): void {
    this.#ready.fail(err);
  }

  /** Stops: drops what is not in the core's hands (redelivered from the committed watermark). */
  close(): void {
    this.#closed = true;
    const stop = (e: Entry) => {
      clearTimeout(e.timer);
      if (e.state !== 'core') e.state = 'done';
    };
    for (const lanes of [this.#keyLanes, this.#partitionLanes])
      for (const lane of lanes.values()) for (const e of lane) stop(e);
    for (const e of this.#alone) stop(e);
    this.#ready.close();
  }
}

/**
 * Shortest time between two offset commits of a running group source: a burst of settlements
 * costs one commit request per interval, not one per round trip (a crash redelivers at most
 * what settled in the last interval, beside what was in the handlers).
 */
const COMMIT_INTERVAL_MS = 100;

/** A source over an {@link Inbox}: the core's calls go to it; `close()` runs once. */
abstract class InboxSource implements Source {
  abstract readonly name: string;
  readonly maxReceive = 100;
  readonly maxAckBatch = 500;
  protected abstract readonly inbox: Inbox;
  #closing: Promise<void> | undefined;

  receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    return this.inbox.receive(max, signal);
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    this.inbox.ack(ackIds);
  }

  /** Settling is bookkeeping here (commits follow by watermark): the lane goes on at once. */
  ackNow(ackId: unknown): void {
    this.inbox.ackOne(ackId);
  }

  async nack(ackId: unknown, delayMs: number, failed: boolean): Promise<void> {
    this.inbox.nack(ackId, delayMs, failed);
  }

  close(): Promise<void> {
    this.#closing ??= this.closeOnce();
    return this.#closing;
  }

  /** Stops fetching, commits what settled, closes the stream or the reader. */
  protected abstract closeOnce(): Promise<void>;
}

interface GroupSettings {
  readonly prefetch: number;
  readonly orderKeyless: boolean;
  readonly startFrom: 'earliest' | 'latest';
  readonly group: Required<KafkaGroupOptions>;
  readonly maxWaitMs: number;
}

/** The message of a record from the group's stream (the entry its ackId). */
function decodeFetched(e: Entry): IncomingMessage {
  const m = e.raw as KafkaMessage;
  return decodeRecord(
    m.topic,
    m.partition,
    m.offset,
    m.timestamp,
    m.key,
    m.value,
    m.headerEntries,
    m,
    e,
    1,
    e.byKey ? e.lane : undefined,
  );
}

/** A record of a fetch response, as the reply reader reads it. */
type FetchedRecord = Pick<WireRecord, 'key' | 'value' | 'headers'>;

/** The consumer group of `start()`: a stream of fetched records, committed by watermark. */
class KafkaGroupSource extends InboxSource {
  readonly name: string;
  /** Its lanes keep the order per key: the core needs no order gate of its own. */
  readonly ordersByKey = true;
  readonly #transport: KafkaTransport;
  readonly #consumer: Consumer;
  readonly #topics: readonly string[];
  readonly #settings: GroupSettings;
  protected readonly inbox: Inbox;
  #stream: MessagesStream | undefined;
  #assigned = new Set<string>();
  #member: { id: string | null; generation: number } = { id: null, generation: -1 };
  readonly #pending = new Map<
    string,
    { readonly topic: string; readonly partition: number; offset: bigint; leaderEpoch: number }
  >();
  #committing: Promise<void> | undefined;
  #lastCommit = Number.NEGATIVE_INFINITY;
  /** The next commit's turn (after the interval, or a failed commit's retry). */
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #onJoin: (p: {
    memberId: string;
    generationId?: number;
    assignments?: { topic: string; partitions: number[] }[];
  }) => void;

  constructor(
    transport: KafkaTransport,
    consumer: Consumer,
    topics: readonly string[],
    settings: GroupSettings,
  ) {
    super();
    this.#transport = transport;
    this.#consumer = consumer;
    this.#topics = topics;
    this.#settings = settings;
    this.name = `kafka:${consumer.groupId}:${topics.join(',')}`;
    this.inbox = new Inbox(
      settings,
      (pkey, offset, leaderEpoch) => this.#commitLater(pkey, offset, leaderEpoch),
      (paused) => (paused ? this.#stream?.pause() : this.#stream?.resume()),
      decodeFetched,
    );
    this.#onJoin = (p) => this.#joined(p);
  }

  async start(): Promise<void> {
    this.#consumer.on('consumer:group:join', this.#onJoin);
    await this.#consume();
  }

  async #consume(): Promise<void> {
    const s = this.#settings;
    const stream = (await this.#consumer.consume({
      topics: [...this.#topics],
      mode: 'committed',
      fallbackMode: s.startFrom,
      autocommit: false,
      sessionTimeout: s.group.sessionTimeoutMs,
      heartbeatInterval: s.group.heartbeatIntervalMs,
      rebalanceTimeout: s.group.rebalanceTimeoutMs,
      maxWaitTime: s.maxWaitMs,
    })) as MessagesStream;
    if (this.#closed) {
      await stream.close().catch(() => undefined);
      return;
    }
    this.#stream = stream;
    // The join that consume() waited for may have happened before this listener saw it.
    this.#sync(this.#consumer.assignments ?? []);
    stream.on('data', (m: KafkaMessage) => this.#take(m));
    stream.on('error', (err: unknown) => this.#streamFailed(stream, err));
    if (this.inbox.held >= s.prefetch) stream.pause();
  }

  #take(m: KafkaMessage): void {
    // A fetch that left before a rebalance may deliver a partition no longer owned: dropped.
    this.inbox.accept(m.topic, m.partition, m.offset, m.timestamp, m.key, m, m.leaderEpoch);
  }

  #streamFailed(stream: MessagesStream, err: unknown): void {
    if (this.#closed || stream !== this.#stream) return;
    this.#stream = undefined;
    this.inbox.fail(err);
    void this.#reconsume();
  }

  async #reconsume(): Promise<void> {
    for (let attempt = 1; !this.#closed; attempt++) {
      await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6)));
      if (this.#closed) return;
      try {
        await this.#consume();
        return;
      } catch (err) {
        this.#transport.logger.warn('kafka: consuming again failed; retrying', {
          source: this.name,
          attempt,
          error: errorText(err),
        });
      }
    }
  }

  #joined(p: {
    memberId: string;
    generationId?: number;
    assignments?: { topic: string; partitions: number[] }[];
  }): void {
    if (this.#closed) return;
    const generation = p.generationId ?? -1;
    const continuous = p.memberId === this.#member.id && generation === this.#member.generation + 1;
    this.#member = { id: p.memberId, generation };
    // A member that missed a generation (it was dropped from the group) may have lost its
    // partitions meanwhile: what it holds is stale even where the partition came back.
    if (!continuous && this.#assigned.size > 0) {
      this.inbox.revoke(this.#assigned);
      this.#assigned = new Set();
    }
    this.#sync(p.assignments ?? []);
    this.#flush();
  }

  #sync(assignments: readonly { topic: string; partitions: number[] }[]): void {
    const now = new Set<string>();
    for (const a of assignments)
      if (this.#topics.includes(a.topic))
        for (const p of a.partitions) now.add(partitionKey(a.topic, p));
    const revoked = [...this.#assigned].filter((k) => !now.has(k));
    const added = [...now].filter((k) => !this.#assigned.has(k));
    for (const k of revoked) this.#pending.delete(k);
    this.inbox.revoke(revoked);
    this.inbox.assign(added);
    this.#assigned = now;
    if (revoked.length > 0 || added.length > 0)
      this.#transport.logger.info('kafka partitions assigned', {
        source: this.name,
        partitions: [...now],
        revoked,
      });
  }

  #commitLater(pkey: string, offset: bigint, leaderEpoch: number): void {
    const prev = this.#pending.get(pkey);
    if (prev) {
      // not committed yet (a commit takes what is pending and clears it): moved in place
      if (prev.offset >= offset) return;
      prev.offset = offset;
      prev.leaderEpoch = leaderEpoch;
    } else {
      const i = pkey.lastIndexOf(':');
      this.#pending.set(pkey, {
        topic: pkey.slice(0, i),
        partition: Number(pkey.slice(i + 1)),
        offset,
        leaderEpoch,
      });
    }
    this.#flush();
  }

  /**
   * One commit in flight at a time, at most one per {@link COMMIT_INTERVAL_MS} while running;
   * what settles meanwhile goes in the next one. Closing commits at once.
   */
  #flush(): void {
    if (this.#committing || this.#retryTimer || this.#pending.size === 0) return;
    const wait = this.#lastCommit + COMMIT_INTERVAL_MS - performance.now();
    if (wait > 0 && !this.#closed) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#flush();
      }, wait);
      this.#retryTimer.unref?.();
      return;
    }
    const offsets = [...this.#pending.values()].filter((o) =>
      this.inbox.owns(partitionKey(o.topic, o.partition)),
    );
    this.#pending.clear();
    if (offsets.length === 0) return;
    this.#lastCommit = performance.now();
    this.#committing = this.#consumer
      .commit({ offsets })
      .catch((err: unknown) => {
        for (const o of offsets) {
          const k = partitionKey(o.topic, o.partition);
          const now = this.#pending.get(k);
          if ((!now || now.offset < o.offset) && this.inbox.owns(k)) this.#pending.set(k, o);
        }
        this.#transport.logger.warn('kafka: committing offsets failed; retrying', {
          source: this.name,
          error: errorText(err),
        });
        if (!this.#closed && !this.#retryTimer) {
          this.#retryTimer = setTimeout(() => {
            this.#retryTimer = undefined;
            this.#flush();
          }, 1000);
          this.#retryTimer.unref?.();
        }
        if (this.#closed) throw err;
      })
      .finally(() => {
        this.#committing = undefined;
        if (!this.#retryTimer) this.#flush();
      });
  }

  protected async closeOnce(): Promise<void> {
    this.#closed = true;
    this.inbox.close();
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    // The last commits: what the core settled before it closed this source.
    const deadline = Date.now() + 10_000;
    while ((this.#committing || this.#pending.size > 0) && Date.now() < deadline) {
      if (!this.#committing) this.#flush();
      await this.#committing?.catch(() => sleep(200));
    }
    this.#consumer.off('consumer:group:join', this.#onJoin);
    const stream = this.#stream;
    this.#stream = undefined;
    await stream?.close().catch(() => undefined);
    this.#transport.forget(this);
  }
}

/**
 * This instance's reply address: every partition of the shared reply topic read from its end
 * with plain fetches (no consumer group), keeping the records keyed with this instance's key.
 */
class KafkaReplySource extends InboxSource {
  readonly name: string;
  readonly #transport: KafkaTransport;
  readonly #consumer: Consumer;
  readonly #topic: string;
  readonly #key: Buffer;
  readonly #maxWaitMs: number;
  protected readonly inbox: Inbox;
  readonly #positions = new Map<number, bigint>();
  #room: (() => void)[] = [];
  #paused = false;
  #loop: Promise<void> | undefined;
  #closed = false;

  constructor(
    transport: KafkaTransport,
    consumer: Consumer,
    topic: string,
    key: string,
    settings: { prefetch: number; orderKeyless: boolean; maxWaitMs: number },
  ) {
    super();
    this.#transport = transport;
    this.#consumer = consumer;
    this.#topic = topic;
    this.#key = Buffer.from(key, 'utf8');
    this.#maxWaitMs = settings.maxWaitMs;
    this.name = `kafka:${topic}#${key}`;
    // Replies all carry this instance's key: no order among them.
    this.inbox = new Inbox(
      { ...settings, ordered: false },
      () => {},
      (paused) => {
        this.#paused = paused;
        if (!paused) this.#wake();
      },
      (e) => {
        const r = e.raw as FetchedRecord;
        return decodeRecord(
          topic,
          e.partition,
          e.offset,
          e.timestamp,
          r.key,
          r.value,
          r.headers,
          r,
          e,
          1,
        );
      },
    );
    consumer.on('error', (err: unknown) =>
      transport.logger.warn('kafka reply reader error', {
        source: this.name,
        error: errorText(err),
      }),
    );
  }

  /** Positions every partition at its end: replies to requests sent after this are seen. */
  async start(): Promise<void> {
    const { ListOffsetTimestamps } = sdk();
    const offsets = await this.#consumer.listOffsets({
      topics: [this.#topic],
      timestamp: ListOffsetTimestamps.LATEST,
    });
    const ends = offsets.get(this.#topic) ?? [];
    ends.forEach((offset, partition) => {
      this.#positions.set(partition, offset);
    });
    this.inbox.assign([...this.#positions.keys()].map((p) => partitionKey(this.#topic, p)));
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        await this.#fetchAll();
        failures = 0;
      } catch (err) {
        if (this.#closed) return;
        failures++;
        this.#transport.logger.warn('kafka: reading replies failed; retrying', {
          source: this.name,
          failures,
          error: errorText(err),
        });
        await this.#recover(err);
        await sleep(Math.min(10_000, 200 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  /** One round: a fetch per partition leader, each looping until it fails or the source closes. */
  async #fetchAll(): Promise<void> {
    const md = await this.#consumer.metadata({ topics: [this.#topic], forceUpdate: true });
    const topic = md.topics.get(this.#topic);
    if (!topic) throw new Error(`reply topic ${this.#topic} not found`);
    for (let p = 0; p < topic.partitionsCount; p++) {
      if (!this.#positions.has(p)) {
        // A partition added while running: read it from its start.
        this.#positions.set(p, 0n);
        this.inbox.assign([partitionKey(this.#topic, p)]);
      }
    }
    const byNode = new Map<number, number[]>();
    topic.partitions.forEach((info, p) => {
      const list = byNode.get(info.leader) ?? [];
      list.push(p);
      byNode.set(info.leader, list);
    });
    const stop = new AbortController();
    await Promise.all(
      [...byNode].map(([node, partitions]) =>
        this.#fetchLoop(node, topic.id, partitions, stop.signal).catch((err: unknown) => {
          stop.abort();
          throw err;
        }),
      ),
    );
  }

  async #fetchLoop(
    node: number,
    topicId: string,
    partitions: number[],
    stop: AbortSignal,
  ): Promise<void> {
    const { IS_CONTROL } = sdk();
    while (!this.#closed && !stop.aborted) {
      if (this.#paused) {
        await new Promise<void>((r) => {
          this.#room.push(r);
        });
        continue;
      }
      const response = await this.#consumer.fetch({
        node,
        topics: [
          {
            topicId,
            partitions: partitions.map((partition) => ({
              partition,
              fetchOffset: this.#positions.get(partition) ?? 0n,
              partitionMaxBytes: 1024 * 1024,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            })),
          },
        ],
        maxWaitTime: this.#maxWaitMs,
        minBytes: 1,
        maxBytes: 8 * 1024 * 1024,
      });
      if (this.#closed) return;
      for (const t of response.responses) {
        if (t.topicId !== topicId) continue;
        for (const part of t.partitions) {
          const p = part.partitionIndex;
          let position = this.#positions.get(p);
          if (position === undefined || !part.records) continue;
          for (const batch of part.records) {
            const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
            if (last < position) continue;
            if (!(batch.attributes & IS_CONTROL)) {
              for (const r of batch.records) {
                const offset = batch.firstOffset + BigInt(r.offsetDelta);
                if (offset < position || !r.key || !this.#key.equals(r.key)) continue;
                this.inbox.accept(
                  this.#topic,
                  p,
                  offset,
                  batch.firstTimestamp + r.timestampDelta,
                  r.key,
                  r,
                  batch.partitionLeaderEpoch,
                );
              }
            }
            position = last + 1n;
          }
          this.#positions.set(p, position);
        }
      }
    }
  }

  #wake(): void {
    for (const r of this.#room.splice(0)) r();
  }

  /** After a failed fetch: positions outside the log (retention, a recreated topic) move into it. */
  async #recover(err: unknown): Promise<void> {
    let outOfRange = false;
    for (const e of errorChain(err)) if (e.apiId === 'OFFSET_OUT_OF_RANGE') outOfRange = true;
    if (!outOfRange) return;
    const { ListOffsetTimestamps } = sdk();
    try {
      const [earliest, latest] = await Promise.all(
        [ListOffsetTimestamps.EARLIEST, ListOffsetTimestamps.LATEST].map((timestamp) =>
          this.#consumer.listOffsets({ topics: [this.#topic], timestamp }),
        ),
      );
      const lo = earliest!.get(this.#topic) ?? [];
      const hi = latest!.get(this.#topic) ?? [];
      for (const [p, pos] of this.#positions) {
        const min = lo[p];
        const max = hi[p];
        if (min !== undefined && pos < min) this.#positions.set(p, min);
        else if (max !== undefined && pos > max) this.#positions.set(p, max);
      }
    } catch {
      // the next round tries again
    }
  }

  protected async closeOnce(): Promise<void> {
    this.#closed = true;
    this.inbox.close();
    this.#wake();
    await this.#consumer.close(true).catch(() => undefined);
    await Promise.race([this.#loop, sleep(this.#maxWaitMs + 1000)]);
    this.#transport.forget(this);
  }
}
