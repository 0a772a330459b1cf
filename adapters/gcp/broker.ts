import type {
  ClientConfig,
  Message,
  PubSub,
  SubscriberOptions,
  Subscription,
  Topic,
  v1,
} from '@google-cloud/pubsub';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from '../../src/broker.ts';
import {
  CloudmomError,
  type ErrorCode,
  InvalidArgumentError,
  SendError,
} from '../../src/errors.ts';
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
import { asBuffer, BoundedMap, checkNonEmpty, checkOptionKeys, pick } from '../../src/util.ts';
import {
  errorCode,
  fromWire,
  GRPC,
  grpcCode,
  isRetryable,
  LIMITS,
  measure,
  parseAddress,
  projectOf,
  replyFilter,
  subscriptionPath,
  toAttributes,
  topicPath,
  validate,
} from './wire.ts';

/**
 * Options of {@link PubSubBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`, `batch`...) plus where it publishes and what it consumes.
 *
 * @example
 * ```ts
 * const options: PubSubBrokerOptions = {
 *   projectId: 'my-project',
 *   topic: 'cloudmom',                       // publish() sends here
 *   subscription: 'cloudmom-worker',         // start() pulls from here
 *   deadLetterTopic: 'cloudmom-dead-letter', // poison and exhausted messages, with their reason
 *   replyTopic: 'cloudmom-replies',          // request() replies come back here
 * };
 * ```
 */
export interface PubSubBrokerOptions extends BrokerOptions {
  /** Topic `publish()` sends to: a name or `projects/<p>/topics/<name>`. Required. */
  topic: string;
  /**
   * Subscription(s) `start()` pulls from (names or full paths): one dispatching every target,
   * or one per target with the filter `attributes.target = "…"` (see `targetFilter`).
   * Default: none — the broker publishes, requests and serves entrypoints only.
   */
  subscription?: string | readonly string[];
  /**
   * Topic that messages cloudmom dead-letters (poison, unknown target with
   * `unknownTarget: 'dead-letter'`, handler failing `maxDeliveries` times) are published to,
   * with the attributes `dead_letter_reason`, `dead_letter_description`, `delivery_count` and
   * the original `message_id`. Default: none — such a message is then nacked, and only the
   * subscription's own dead-letter policy stops it.
   */
  deadLetterTopic?: string;
  /**
   * Topic replies to this broker's `request()` come back on. Each broker instance reads them
   * through its own subscription on it, filtered on its own reply key (see
   * `replySubscription`). A responder needs the same value (or a `replyAllowList` naming it)
   * to be allowed to reply there. Default: none — `request()` is refused.
   */
  replyTopic?: string;
  /**
   * An existing subscription on `replyTopic`, filtered on `attributes.reply_key =
   * "<instanceId>"`, that this instance reads its replies from; cloudmom neither creates nor
   * deletes it, so the requester needs only `roles/pubsub.subscriber` on that one
   * subscription (infra/gcp provisions one per requester). Needs `instanceId`. Default: none —
   * cloudmom creates `<replyTopic>-<instanceId>` on the first `request()` (reusing it if it
   * exists with that filter, e.g. after a crash) and deletes it on `stop()`.
   */
  replySubscription?: string;
  /**
   * This instance's reply key: its reply address is `projects/<p>/topics/<replyTopic>#<key>`.
   * Letters, digits, `-` and `_`, at most 64. Default: 16 random hex characters.
   */
  instanceId?: string;
  /**
   * Google Cloud project. Default: the project of a full `topic` name, the injected client's
   * `projectId`, or `GOOGLE_CLOUD_PROJECT` / `GCLOUD_PROJECT` / `PUBSUB_PROJECT_ID`.
   */
  projectId?: string;
  /**
   * A ready `PubSub` client (your credentials, endpoint...). Default: `new PubSub({ projectId,
   * ...clientConfig })`, created on first use and closed on `stop()`.
   */
  client?: PubSub;
  /** Settings for the client cloudmom creates (ignored with `client`). Default `{}` (`PUBSUB_EMULATOR_HOST` is honoured by the client). */
  clientConfig?: ClientConfig;
  /**
   * Subscriber settings for `start()`'s and the reply subscriptions' streams. Default: the
   * client's, with `flowControl.maxMessages` = `concurrency` (100 on the reply subscription)
   * and no excess messages.
   */
  subscriberOptions?: SubscriberOptions;
}

const GCP_KEYS = [
  'topic',
  'subscription',
  'deadLetterTopic',
  'replyTopic',
  'replySubscription',
  'instanceId',
  'projectId',
  'client',
  'clientConfig',
  'subscriberOptions',
] as const;

type GcpOptions = Pick<PubSubBrokerOptions, (typeof GCP_KEYS)[number]>;

/**
 * The broker on Google Cloud Pub/Sub (`@google-cloud/pubsub`, an optional peer dependency,
 * loaded on first use).
 *
 * - `publish` writes the body as the message data and the target, content type, correlation
 *   id and reply address as the attributes `target`, `content_type`, `correlation_id`,
 *   `reply_to` (user headers are the other attributes); a `groupKey` becomes the ordering key.
 *   Publishes are batched once, by cloudmom (up to 1,000 messages / 9 MiB per publish request,
 *   tuned with the core option `batch`). Over 100 attributes, a name over 256 bytes, a value
 *   over 1024 bytes or a message over 10 MB fail with a typed error before anything is sent; a
 *   topic that does not exist fails the publish with the code `not-found`.
 * - `start()` streams from `subscription`, at most `concurrency` messages leased at once;
 *   a message is acked after its handlers ran and their replies were accepted, nacked when a
 *   handler fails (after a hold of up to 1 s: Pub/Sub cannot delay one message; the
 *   subscription's retry policy sets the redelivery backoff), and dead-lettered to
 *   `deadLetterTopic` with its reason (then acked) when it can never succeed.
 * - `request()` replies come back on `replyTopic`, through a per-instance subscription
 *   filtered on this instance's reply key, so instances sharing the reply topic never take
 *   each other's replies.
 * - `broker.client` is the `PubSub` client; pass your own as `client`. The emulator and Google
 *   Cloud differ only by environment (`PUBSUB_EMULATOR_HOST`).
 *
 * @example
 * ```ts
 * import { PubSubBroker } from 'cloudmom/gcp';
 * const broker = new PubSubBroker({
 *   projectId: 'my-project',
 *   topic: 'cloudmom',
 *   subscription: 'cloudmom-worker',
 *   deadLetterTopic: 'cloudmom-dead-letter',
 *   replyTopic: 'cloudmom-replies',
 * });
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'hello');
 * await broker.stop();
 * ```
 */
export class PubSubBroker extends Broker {
  readonly #transport: PubSubTransport;

  constructor(options: PubSubBrokerOptions) {
    if (options === undefined || options === null)
      throw new InvalidArgumentError('PubSubBroker: options with at least `topic` are required');
    if (typeof options === 'object' && 'publishBatching' in options)
      throw new InvalidArgumentError(
        'PubSubBroker: `publishBatching` is gone: cloudmom batches publishes once itself; tune it with the core option `batch: { maxMessages, lingerMs }`',
      );
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...GCP_KEYS], 'PubSubBroker');
    const [own, core] = pick(options, GCP_KEYS);
    const transport = new PubSubTransport(own, core.concurrency ?? 10);
    super(transport, core);
    this.#transport = transport;
  }

  /** The `PubSub` client, for what cloudmom does not cover (created on first access). */
  override get client(): PubSub {
    return this.#transport.client;
  }

  /** The project the broker's names resolve in. */
  get projectId(): string {
    return this.#transport.project;
  }

  /** Full name of the topic `publish()` sends to. */
  get topic(): string {
    return this.#transport.topicName;
  }

  /** This instance's reply address (`projects/<p>/topics/<replyTopic>#<key>`), if it has a reply topic. */
  get replyAddress(): string | undefined {
    return this.#transport.replyAddress;
  }
}

type PubSubModule = typeof import('@google-cloud/pubsub');
type PublisherClient = v1.PublisherClient;
type PublisherConfig = ConstructorParameters<typeof v1.PublisherClient>[0];
/** `@google-cloud/pubsub`, loaded once, on first use (importing `cloudmom/gcp` never needs it). */
const pubsubSdk = optionalPeer<PubSubModule>('@google-cloud/pubsub', 'cloudmom/gcp');

/** Call options of a Publish: one request as given (see `#publishBatch`). */
const NO_BUNDLING = { isBundling: false } as const;
/** Messages one reply subscription leases at once (the core's reply budget). */
const REPLY_FLOW = 100;
/** Longest the core holds a failed message before nacking it (Pub/Sub cannot delay a nack). */
const RETRY_HOLD_MS = 1000;

function isPubSubClient(v: unknown): v is PubSub {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as PubSub).topic === 'function' &&
    typeof (v as PubSub).subscription === 'function' &&
    typeof (v as PubSub).createSubscription === 'function'
  );
}

/** The Pub/Sub transport: translates publishes, subscription streams and replies. */
class PubSubTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly project: string;
  readonly topicName: string;
  readonly replyAddress: string | undefined;
  #logger: Logger = silentLogger;
  #client: PubSub | undefined;
  readonly #clientConfig: ClientConfig | undefined;
  readonly #ownsClient: boolean;
  readonly #subscriptions: string[];
  readonly #deadLetterTopic: string | undefined;
  readonly #replyTopic: string | undefined;
  readonly #replySubscription: string | undefined;
  readonly #instanceId: string;
  readonly #subscriberOptions: SubscriberOptions;
  readonly #concurrency: number;
  /** Ordered Topic objects by full name: destinations come from messages, so bounded. */
  readonly #topics = new BoundedMap<string, Topic>(1000);
  /** The publisher API client for unordered batches, made on first publish. */
  #publisher: Promise<PublisherClient> | undefined;
  readonly #sources = new Set<SubscriptionSource>();
  #reply: { readonly sub: Subscription; readonly owned: boolean } | undefined;
  #closed = false;

  constructor(options: GcpOptions, concurrency: number) {
    checkNonEmpty(options.topic, 'PubSubBroker: `topic`');
    for (const key of [
      'deadLetterTopic',
      'replyTopic',
      'replySubscription',
      'projectId',
      'instanceId',
    ] as const) {
      if (options[key] !== undefined) checkNonEmpty(options[key], `PubSubBroker: \`${key}\``);
    }
    if (options.client !== undefined && !isPubSubClient(options.client))
      throw new InvalidArgumentError('PubSubBroker: `client` must be a PubSub client');
    if (options.client && options.clientConfig)
      throw new InvalidArgumentError('PubSubBroker: give either `client` or `clientConfig`');
    const clientProject =
      options.client && !options.client.projectId.includes('{{') ? options.client.projectId : '';
    const project =
      options.projectId ??
      projectOf(options.topic) ??
      (clientProject ||
        options.clientConfig?.projectId ||
        process.env.GOOGLE_CLOUD_PROJECT ||
        process.env.GCLOUD_PROJECT ||
        process.env.PUBSUB_PROJECT_ID);
    if (!project)
      throw new InvalidArgumentError(
        'PubSubBroker: no project: give `projectId`, a full topic name (projects/<p>/topics/<t>), or set GOOGLE_CLOUD_PROJECT',
      );
    this.project = project;
    this.#client = options.client;
    this.#ownsClient = options.client === undefined;
    this.#clientConfig = options.clientConfig;
    this.topicName = topicPath(project, options.topic);
    const subs = options.subscription;
    const list = subs === undefined ? [] : typeof subs === 'string' ? [subs] : [...subs];
    for (const s of list)
      if (typeof s !== 'string' || s === '')
        throw new InvalidArgumentError('PubSubBroker: `subscription` names must be non-empty');
    this.#subscriptions = list.map((s) => subscriptionPath(project, s));
    this.#deadLetterTopic =
      options.deadLetterTopic === undefined
        ? undefined
        : topicPath(project, options.deadLetterTopic);
    this.#replyTopic =
      options.replyTopic === undefined ? undefined : topicPath(project, options.replyTopic);
    if (options.replySubscription !== undefined && options.instanceId === undefined)
      throw new InvalidArgumentError(
        'PubSubBroker: `replySubscription` needs the `instanceId` its filter selects',
      );
    if (options.replySubscription !== undefined && options.replyTopic === undefined)
      throw new InvalidArgumentError('PubSubBroker: `replySubscription` needs `replyTopic`');
    this.#replySubscription =
      options.replySubscription === undefined
        ? undefined
        : subscriptionPath(project, options.replySubscription);
    this.#instanceId = options.instanceId ?? randomKey();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(this.#instanceId))
      throw new InvalidArgumentError(
        'PubSubBroker: `instanceId` must be 1-64 letters, digits, "-" or "_"',
      );
    this.replyAddress = this.#replyTopic && `${this.#replyTopic}#${this.#instanceId}`;
    this.#subscriberOptions = options.subscriberOptions ?? {};
    this.#concurrency = concurrency;
    this.capabilities = {
      name: 'pubsub',
      maxMessageBytes: LIMITS.messageBytes,
      measure,
      // One layer of batching: ours, one publish request per batch (see #topic).
      maxBatchMessages: LIMITS.requestMessages,
      maxBatchBytes: LIMITS.clientRequestBytes,
      batchLingerMs: 0,
      ordering: true,
      maxDelaySeconds: 0,
      nackDelay: false,
      retryHoldMs: RETRY_HOLD_MS,
      deadLetter: 'copy',
      request: this.#replyTopic !== undefined,
      defaultReplyAllowList: this.#replyTopic ? [`${this.#replyTopic}#*`] : [],
    };
  }

  /** The client, created on first use when none was given. */
  get client(): PubSub {
    this.#client ??= new (pubsubSdk().PubSub)({
      projectId: this.project,
      ...this.#clientConfig,
    });
    return this.#client;
  }

  attach(context: { readonly logger: Logger }): void {
    this.#logger = context.logger;
  }

  validate(message: OutgoingMessage): void {
    validate(message);
  }

  isRetryable(err: unknown): boolean {
    return isRetryable(err);
  }

  errorCode(err: unknown): ErrorCode {
    return errorCode(err);
  }

  /**
   * The client's ordered Topic for a full name, for messages with an ordering key: the client
   * keeps each key in order, one request at a time, and pauses a key after a failure. Its own
   * batching is a pass-through (what one `send` hands it in one turn goes out on the next
   * timer tick; the core already batched to the request limits).
   */
  #orderedTopic(name: string): Topic {
    let t = this.#topics.get(name);
    if (!t) {
      t = this.client.topic(name, {
        batching: {
          maxMessages: LIMITS.requestMessages,
          maxBytes: LIMITS.clientRequestBytes,
          maxMilliseconds: 0,
        },
        messageOrdering: true,
      });
      this.#topics.set(name, t);
    }
    return t;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (this.#closed)
      return batch.map(() => ({
        ok: false,
        error: new SendError('the Pub/Sub transport is closed'),
      }));
    const first = batch[0];
    if (!first) return [];
    const name =
      first.destination === undefined
        ? this.topicName
        : topicPath(this.project, parseAddress(first.destination).topic);
    if (!batch.some((m) => m.groupKey !== undefined)) return this.#publishBatch(name, batch);
    // Ordered messages go through the client's ordered Topic (it sends one key at a time and
    // pauses a key after a failure); the unordered rest of the batch in one request.
    const unordered: number[] = [];
    const outcomes: (SendOutcome | Promise<SendOutcome>)[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      if (m.groupKey === undefined) unordered.push(i);
      else outcomes[i] = this.#publishOrdered(name, m, m.groupKey);
    }
    if (unordered.length > 0) {
      const sent = await this.#publishBatch(
        name,
        unordered.map((i) => batch[i]!),
      );
      unordered.forEach((i, j) => {
        outcomes[i] = sent[j]!;
      });
    }
    return Promise.all(outcomes);
  }

  /**
   * Unordered messages, one `Publish` request for the whole batch (the core batched to the
   * request limits): through the API client itself, so the client's own batching, its
   * per-message promises and its deep copy of each request are not paid a second time.
   */
  async #publishBatch(name: string, batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    try {
      const publisher = await this.#publisherClient();
      const messages = batch.map((m) => ({ data: asBuffer(m.body), attributes: toAttributes(m) }));
      // as the client's own publisher calls it: gax's bundling (which would re-batch the
      // request and delay it by 10 ms) off; gax's retries of Publish stay as they are
      const [response] = await publisher.publish({ topic: name, messages }, NO_BUNDLING);
      const ids = response.messageIds ?? [];
      return batch.map((_, i) => {
        const id = ids[i];
        return id
          ? { ok: true, messageId: id }
          : { ok: false, error: new SendError('Pub/Sub returned no message id for this message') };
      });
    } catch (error) {
      return batch.map(() => ({ ok: false, error }));
    }
  }

  /** The API client for Publish, made once; one that could not be made is made again next time. */
  #publisherClient(): Promise<PublisherClient> {
    this.#publisher ??= this.client
      .getClientConfig()
      // what the client passes its own API clients (its port may be a string, which the API
      // client's typings do not allow for)
      .then((config) => new (pubsubSdk().v1.PublisherClient)(config as PublisherConfig))
      .catch((err: unknown) => {
        this.#publisher = undefined;
        throw err;
      });
    return this.#publisher;
  }

  /** One message with an ordering key, through the client's ordered Topic. */
  async #publishOrdered(name: string, m: OutgoingMessage, key: string): Promise<SendOutcome> {
    const topic = this.#orderedTopic(name);
    try {
      const id = await topic.publishMessage({
        data: asBuffer(m.body),
        attributes: toAttributes(m),
        orderingKey: key,
      });
      return { ok: true, messageId: id };
    } catch (error) {
      // After a failed ordered publish the client pauses the key until told to resume.
      topic.resumePublishing(key);
      return { ok: false, error };
    }
  }

  #subscriberSettings(maxMessages: number): SubscriberOptions {
    const o = this.#subscriberOptions;
    return {
      ...o,
      flowControl: { maxMessages, allowExcessMessages: false, ...o.flowControl },
    };
  }

  async open(): Promise<readonly Source[]> {
    return this.#subscriptions.map((name) =>
      this.#source(this.client.subscription(name), this.#concurrency),
    );
  }

  #source(sub: Subscription, maxMessages: number): SubscriptionSource {
    const settings = this.#subscriberSettings(maxMessages);
    sub.setOptions(settings);
    const source = new SubscriptionSource(sub, settings.flowControl?.maxMessages ?? maxMessages);
    this.#sources.add(source);
    return source;
  }

  deadLetterAddress(message: IncomingMessage): string {
    if (!this.#deadLetterTopic)
      throw new SendError(
        `cannot dead-letter message ${message.messageId}: the broker has no deadLetterTopic`,
      );
    return this.#deadLetterTopic;
  }

  async openReplyAddress(): Promise<{ address: string; source: Source }> {
    const replyTopic = this.#replyTopic;
    if (!replyTopic || !this.replyAddress)
      throw new InvalidArgumentError(
        'request() needs a reply topic: give PubSubBroker the option `replyTopic`',
      );
    if (this.#closed) throw new SendError('the Pub/Sub transport is closed');
    const reply = this.#replySubscription
      ? { sub: this.client.subscription(this.#replySubscription), owned: false }
      : await this.#createReplySubscription(replyTopic);
    this.#reply = reply;
    return { address: this.replyAddress, source: this.#source(reply.sub, REPLY_FLOW) };
  }

  /** Creates this instance's reply subscription, or takes it over when it exists as ours. */
  async #createReplySubscription(replyTopic: string): Promise<{ sub: Subscription; owned: true }> {
    const short = replyTopic.slice(replyTopic.lastIndexOf('/') + 1);
    const name = subscriptionPath(this.project, `${short}-${this.#instanceId}`.slice(0, 255));
    const filter = replyFilter(this.#instanceId);
    try {
      const [sub] = await this.client.createSubscription(replyTopic, name, {
        filter,
        ackDeadlineSeconds: 10,
        // An instance that dies without stop() leaves a subscription that expires by itself.
        expirationPolicy: { ttl: { seconds: 24 * 3600 } },
        messageRetentionDuration: { seconds: 600 },
      });
      this.#logger.debug('reply subscription created', { subscription: name });
      return { sub, owned: true };
    } catch (err) {
      if (grpcCode(err) !== GRPC.ALREADY_EXISTS) throw this.#replyError(name, err);
    }
    // A fixed instanceId restarted after a crash (no stop()): its subscription survived. It
    // is ours if it reads the reply topic with our filter.
    const sub = this.client.subscription(name);
    let metadata: { topic?: string | null; filter?: string | null };
    try {
      [metadata] = await sub.getMetadata();
    } catch (err) {
      throw this.#replyError(name, err);
    }
    if (metadata.topic !== replyTopic || (metadata.filter ?? '') !== filter)
      throw new InvalidArgumentError(
        `PubSubBroker: the reply subscription ${name} exists but reads ${metadata.topic ?? '?'} with the filter "${metadata.filter ?? ''}", not ${replyTopic} with "${filter}": choose another instanceId, or delete it`,
      );
    this.#logger.info(
      'reply subscription exists (an instance with this instanceId did not stop); reusing it',
      {
        subscription: name,
      },
    );
    return { sub, owned: true };
  }

  #replyError(name: string, err: unknown): CloudmomError {
    const code = errorCode(err);
    return new CloudmomError(
      code === 'not-found' ? 'not-found' : 'transport-failed',
      `Pub/Sub: opening the reply subscription ${name} failed: ${describeError(err)}`,
      { cause: err, retryable: isRetryable(err) },
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // The core closed the sources it consumed; close any it never took (idempotent).
    await Promise.all([...this.#sources].map((s) => s.close()));
    const reply = this.#reply;
    if (reply?.owned) {
      await reply.sub.delete().catch((err: unknown) =>
        this.#logger.warn('deleting the reply subscription failed (it expires after a day idle)', {
          subscription: reply.sub.name,
          error: describeError(err),
        }),
      );
    }
    const topics = [...this.#topics.values()];
    await Promise.all(topics.map((t) => t.flush().catch(() => undefined)));
    const publisher = this.#publisher;
    this.#publisher = undefined;
    if (publisher) await publisher.then((p) => p.close()).catch(() => undefined);
    if (this.#ownsClient && this.#client) await this.#client.close().catch(() => undefined);
  }
}

function randomKey(): string {
  return globalThis.crypto.randomUUID().replaceAll('-', '').slice(0, 16);
}

/**
 * One subscription's stream as a source: the client pushes messages (flow control bounds how
 * many are leased: at most what the core can hold) into a {@link PushBuffer} the core takes
 * from. The client extends the leases of what it dispensed; `ack`/`nack` are the client's
 * (batched by it). A stream error fails the next `receive` (the core logs and backs off);
 * when the client closed the stream for good (subscription missing, permission denied), the
 * next `receive` — after the core's backoff — opens it again.
 */
class SubscriptionSource implements Source {
  readonly name: string;
  readonly maxReceive: number;
  readonly maxAckBatch = 1000;
  readonly #sub: Subscription;
  #buffer = new PushBuffer<IncomingMessage>();
  /** Deliveries seen per message id, where Pub/Sub gives no `deliveryAttempt` (no dead-letter policy). */
  readonly #seen = new BoundedMap<string, number>(10_000);
  #closing: Promise<void> | undefined;
  /** Set by the client's `close` event when we did not ask for it. */
  #clientClosed = false;
  #onClientClosed: (() => void) | undefined;

  constructor(sub: Subscription, maxReceive: number) {
    this.#sub = sub;
    this.name = sub.name;
    this.maxReceive = Math.max(1, maxReceive);
    sub.on('error', this.#onError);
    sub.on('close', this.#onClose);
    sub.on('message', this.#onMessage); // opens the stream
  }

  readonly #onMessage = (m: Message): void => {
    if (!this.#buffer.push(this.#incoming(m))) m.nack();
  };

  readonly #onError = (err: unknown): void => {
    this.#buffer.fail(err);
  };

  readonly #onClose = (): void => {
    if (this.#closing) return;
    this.#clientClosed = true;
    this.#onClientClosed?.();
    // Wakes a waiting receive (a stream may end without an error event); a receive after this
    // opens the stream again with a fresh buffer.
    this.#buffer.fail(
      new CloudmomError('transport-failed', `the Pub/Sub client closed the stream of ${this.name}`),
    );
  };

  #incoming(m: Message): IncomingMessage {
    let attempt = m.deliveryAttempt;
    if (!(attempt >= 1)) {
      // No dead-letter policy on the subscription: count deliveries seen by this process.
      attempt = (this.#seen.get(m.id) ?? 0) + 1;
      this.#seen.set(m.id, attempt);
    }
    return fromWire(
      {
        id: m.id,
        data: new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength),
        attributes: m.attributes ?? {},
        publishTime: m.publishTime ? new Date(m.publishTime.getTime()) : undefined,
        orderingKey: m.orderingKey,
        deliveryAttempt: attempt,
      },
      m,
      { ackId: m, source: this.name },
    );
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    if (this.#closing) return [];
    if (!this.#sub.isOpen) {
      // The client closed the stream after a failure: wait until it finished closing (it
      // flushes its queues), then open it again. The core's backoff spaces these attempts.
      if (!this.#clientClosed) await this.#clientClose(signal);
      if (signal.aborted || this.#closing) return [];
      this.#clientClosed = false;
      // What the old stream dispensed was nacked by the client: those come again.
      this.#buffer.close();
      this.#buffer = new PushBuffer();
      this.#sub.open();
    }
    return this.#buffer.take(max, signal);
  }

  #clientClose(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#onClientClosed = undefined;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#onClientClosed = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    for (const id of ackIds) {
      const m = id as Message;
      this.#seen.delete(m.id);
      m.ack();
    }
  }

  async nack(ackId: unknown, _delayMs: number, failed: boolean): Promise<void> {
    const m = ackId as Message;
    if (!failed && !(m.deliveryAttempt >= 1)) {
      // Released unrun (an earlier message of its key failed, or stopping): not a delivery.
      const n = this.#seen.get(m.id);
      if (n !== undefined) this.#seen.set(m.id, n - 1);
    }
    m.nack();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#onClientClosed?.();
    // The client nacks what it dispensed and nobody settled (the buffer's rest included) and
    // flushes the acks queued before.
    for (const m of this.#buffer.close()) (m.ackId as Message).nack();
    try {
      await this.#sub.close();
    } finally {
      this.#sub.removeListener('message', this.#onMessage);
      this.#sub.removeListener('close', this.#onClose);
      // The error listener stays: an error emitted late must not crash the process.
    }
  }
}
