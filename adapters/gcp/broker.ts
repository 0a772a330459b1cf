import { randomBytes } from 'node:crypto';
import {
  type BatchPublishOptions,
  type ClientConfig,
  type Message,
  PubSub,
  type SubscriberOptions,
  type Subscription,
  type Topic,
} from '@google-cloud/pubsub';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions, INTERNALS } from '../../src/broker.ts';
import { InvalidArgumentError, SendError } from '../../src/errors.ts';
import { describeError, type Logger, silentLogger } from '../../src/log.ts';
import type {
  Capabilities,
  DeadLetterReason,
  Deliver,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Transport,
  Verdict,
} from '../../src/transport.ts';
import { checkOptionKeys, Idle, pick } from '../../src/util.ts';
import {
  deadLetterAttributes,
  fromWire,
  LIMITS,
  measure,
  parseAddress,
  projectOf,
  REPLY_KEY,
  subscriptionPath,
  toAttributes,
  topicPath,
  validate,
} from './wire.ts';

/**
 * Options of {@link PubSubBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`...) plus where it publishes and what it consumes.
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
   * with the attributes `dead_letter_reason` and `dead_letter_description`. Default: none — such
   * a message is then nacked, and only the subscription's own dead-letter policy stops it.
   */
  deadLetterTopic?: string;
  /**
   * Topic replies to this broker's `request()` come back on. Each broker instance creates its
   * own subscription on it, filtered on its own reply key, on the first `request()`, and
   * deletes it on `stop()`. A responder needs the same value (or a `replyAllowList` naming it)
   * to be allowed to reply there. Default: none — `request()` is refused.
   */
  replyTopic?: string;
  /**
   * This instance's reply key: its reply address is `projects/<p>/topics/<replyTopic>#<key>`
   * and its reply subscription `<replyTopic>-<key>`. Letters, digits, `-` and `_`.
   * Default: 16 random hex characters.
   */
  instanceId?: string;
  /**
   * Google Cloud project. Default: the project of a full `topic` name, the injected client's
   * `projectId`, or `GOOGLE_CLOUD_PROJECT` / `GCLOUD_PROJECT` / `PUBSUB_PROJECT_ID`.
   */
  projectId?: string;
  /** A ready `PubSub` client (your credentials, endpoint...). Default: `new PubSub({ projectId, ...clientConfig })`, closed on `stop()`. */
  client?: PubSub;
  /** Settings for the client cloudmom creates (ignored with `client`). Default `{}` (`PUBSUB_EMULATOR_HOST` is honoured by the client). */
  clientConfig?: ClientConfig;
  /** The client's publish batching. Default: the client's (100 messages, 1 MiB, 10 ms). */
  publishBatching?: BatchPublishOptions;
  /**
   * Subscriber settings for `start()`'s and the reply subscriptions' streams. Default: the
   * client's, with `flowControl.maxMessages` = `concurrency` and no excess messages.
   */
  subscriberOptions?: SubscriberOptions;
}

const GCP_KEYS = [
  'topic',
  'subscription',
  'deadLetterTopic',
  'replyTopic',
  'instanceId',
  'projectId',
  'client',
  'clientConfig',
  'publishBatching',
  'subscriberOptions',
] as const;

type GcpOptions = Pick<PubSubBrokerOptions, (typeof GCP_KEYS)[number]>;

/**
 * The broker on Google Cloud Pub/Sub (`@google-cloud/pubsub`, an optional peer dependency).
 *
 * - `publish` writes the body as the message data and the target, content type, correlation
 *   id and reply address as the attributes `target`, `content_type`, `correlation_id`,
 *   `reply_to` (user headers are the other attributes), through the client's batching; a
 *   `groupKey` becomes the ordering key. Over 100 attributes, a name over 256 bytes, a value
 *   over 1024 bytes or a message over 10 MB fail with a typed error before anything is sent.
 * - `start()` streams from `subscription`, at most `concurrency` messages leased at once;
 *   a message is acked after its handlers ran and their replies were accepted, nacked when a
 *   handler fails (redelivery backoff is the subscription's retry policy), and dead-lettered
 *   to `deadLetterTopic` with its reason (then acked) when it can never succeed.
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
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...GCP_KEYS], 'PubSubBroker');
    if (options === undefined)
      throw new InvalidArgumentError('PubSubBroker: options with at least `topic` are required');
    const [own, core] = pick(options, GCP_KEYS);
    const transport = new PubSubTransport(own, core.concurrency ?? 10);
    super(transport, core);
    this.#transport = transport;
    transport.logger = this[INTERNALS].logger;
  }

  /** The `PubSub` client, for what cloudmom does not cover. */
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

/** Backoff of reopening a subscription stream the client closed. */
const REOPEN_MIN_MS = 1000;
const REOPEN_MAX_MS = 60_000;

const RETRYABLE_GRPC = new Set([1, 2, 4, 8, 10, 13, 14]); // cancelled, unknown, deadline, exhausted, aborted, internal, unavailable

class PubSubTransport implements Transport {
  readonly client: PubSub;
  readonly capabilities: Capabilities;
  readonly project: string;
  readonly topicName: string;
  readonly replyAddress: string | undefined;
  logger: Logger = silentLogger;
  readonly #ownsClient: boolean;
  readonly #subscriptions: string[];
  readonly #deadLetterTopic: string | undefined;
  readonly #replyTopic: string | undefined;
  readonly #instanceId: string;
  readonly #batching: BatchPublishOptions | undefined;
  readonly #subscriberOptions: SubscriberOptions;
  readonly #concurrency: number;
  /** Topic objects by full name: unordered and ordered publishing each have their own. */
  readonly #topics = { plain: new Map<string, Topic>(), ordered: new Map<string, Topic>() };
  readonly #listeners: { sub: Subscription; onMessage: (m: Message) => void }[] = [];
  readonly #inflight = new Idle();
  /** Per ordering key, the tail of the chain of its in-flight messages. */
  readonly #chains = new Map<string, Promise<void>>();
  /** Ordering keys whose message (id) was nacked and not yet redelivered. */
  readonly #failedKeys = new Map<string, string>();
  /** Deliveries seen per message id, where Pub/Sub gives no `deliveryAttempt`. */
  readonly #seen = new Map<string, number>();
  readonly #reopenTimers = new Set<NodeJS.Timeout>();
  #replySubscription: Subscription | undefined;
  #stopping = false;
  #closed = false;

  constructor(options: GcpOptions, concurrency: number) {
    if (typeof options.topic !== 'string' || options.topic === '')
      throw new InvalidArgumentError('PubSubBroker: `topic` must be a non-empty string');
    for (const key of ['deadLetterTopic', 'replyTopic', 'projectId', 'instanceId'] as const) {
      const v = options[key];
      if (v !== undefined && (typeof v !== 'string' || v === ''))
        throw new InvalidArgumentError(`PubSubBroker: \`${key}\` must be a non-empty string`);
    }
    if (options.client !== undefined && !(options.client instanceof PubSub))
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
    this.#ownsClient = options.client === undefined;
    this.client = options.client ?? new PubSub({ projectId: project, ...options.clientConfig });
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
    this.#instanceId = options.instanceId ?? randomBytes(8).toString('hex');
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(this.#instanceId))
      throw new InvalidArgumentError(
        'PubSubBroker: `instanceId` must be 1-64 letters, digits, "-" or "_"',
      );
    this.replyAddress = this.#replyTopic && `${this.#replyTopic}#${this.#instanceId}`;
    this.#batching = options.publishBatching;
    checkOptionKeys(
      options.publishBatching,
      ['maxMessages', 'maxBytes', 'maxMilliseconds'],
      'PubSubBroker publishBatching',
    );
    this.#subscriberOptions = options.subscriberOptions ?? {};
    this.#concurrency = concurrency;
    this.capabilities = {
      name: 'pubsub',
      maxMessageBytes: LIMITS.messageBytes,
      measure,
      maxBatchMessages: LIMITS.requestMessages,
      maxBatchBytes: LIMITS.requestBytes,
      // The client batches (publishBatching); the core hands messages over at once.
      batchLingerMs: 0,
      ordering: true,
      maxDelaySeconds: 0,
      defaultReplyAllowList: this.#replyTopic ? [`${this.#replyTopic}#*`] : [],
    };
  }

  validate(message: OutgoingMessage): void {
    validate(message);
  }

  /** The client's Topic for a full name; ordered publishing gets its own Topic object. */
  #topic(name: string, ordered: boolean): Topic {
    const map = ordered ? this.#topics.ordered : this.#topics.plain;
    let t = map.get(name);
    if (!t) {
      t = this.client.topic(name, {
        ...(this.#batching ? { batching: this.#batching } : {}),
        ...(ordered ? { messageOrdering: true } : {}),
      });
      map.set(name, t);
    }
    return t;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    return Promise.all(batch.map((m) => this.#publishOne(m)));
  }

  async #publishOne(m: OutgoingMessage): Promise<SendOutcome> {
    const name =
      m.destination === undefined
        ? this.topicName
        : topicPath(this.project, parseAddress(m.destination).topic);
    if (this.#closed) return { ok: false, error: new SendError('the Pub/Sub transport is closed') };
    const ordered = m.groupKey !== undefined;
    const topic = this.#topic(name, ordered);
    try {
      const id = await topic.publishMessage({
        data: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength),
        attributes: toAttributes(m),
        ...(ordered ? { orderingKey: m.groupKey } : {}),
      });
      return { ok: true, messageId: id };
    } catch (err) {
      // After a failed ordered publish the client pauses the key until told to resume.
      if (ordered) topic.resumePublishing(m.groupKey!);
      const code = (err as { code?: unknown }).code;
      return {
        ok: false,
        error: new SendError(`Pub/Sub publish to ${name} failed: ${describeError(err)}`, {
          cause: err,
          retryable: typeof code === 'number' ? RETRYABLE_GRPC.has(code) : true,
        }),
      };
    }
  }

  async consume(deliver: Deliver): Promise<void> {
    for (const name of this.#subscriptions) this.#listen(this.client.subscription(name), deliver);
  }

  #subscriberSettings(): SubscriberOptions {
    const o = this.#subscriberOptions;
    return {
      ...o,
      flowControl: { maxMessages: this.#concurrency, allowExcessMessages: false, ...o.flowControl },
    };
  }

  #listen(sub: Subscription, deliver: Deliver): void {
    sub.setOptions(this.#subscriberSettings());
    let backoff = REOPEN_MIN_MS;
    const onMessage = (m: Message) => {
      backoff = REOPEN_MIN_MS;
      this.#onMessage(sub, m, deliver);
    };
    sub.on('message', onMessage);
    sub.on('error', (err: unknown) => {
      this.logger.error('Pub/Sub subscription stream failed', {
        subscription: sub.name,
        error: describeError(err),
      });
    });
    // The client gives up on a non-retryable stream error (subscription missing, permission
    // denied...) and closes: reopen with backoff, so a consumer outlives a late subscription.
    sub.on('close', () => {
      if (this.#stopping || this.#closed) return;
      this.logger.warn('Pub/Sub subscription stream closed; reopening', {
        subscription: sub.name,
        inMs: backoff,
      });
      const timer = setTimeout(() => {
        this.#reopenTimers.delete(timer);
        if (!this.#stopping && !this.#closed && !sub.isOpen) sub.open();
      }, backoff);
      this.#reopenTimers.add(timer);
      backoff = Math.min(backoff * 2, REOPEN_MAX_MS);
    });
    this.#listeners.push({ sub, onMessage });
  }

  #onMessage(sub: Subscription, m: Message, deliver: Deliver): void {
    if (this.#stopping) {
      m.nack();
      return;
    }
    this.#inflight.enter();
    const key = m.orderingKey || undefined;
    const run = async () => {
      if (key !== undefined) {
        const failed = this.#failedKeys.get(key);
        if (failed === m.id) this.#failedKeys.delete(key);
        else if (failed !== undefined) {
          // An earlier message of this key was nacked: Pub/Sub redelivers it and the ones
          // after it, in order. Handling this one now would overtake it.
          m.nack();
          return;
        }
      }
      const incoming = this.#incoming(m);
      let verdict: Verdict;
      try {
        verdict = await deliver(incoming);
      } catch (error) {
        verdict = { kind: 'retry', delayMs: 0, error };
      }
      if (key !== undefined && verdict.kind === 'retry') this.#failedKeys.set(key, m.id);
      await this.#settle(sub, m, incoming, verdict);
    };
    let done: Promise<void>;
    if (key !== undefined) {
      // Same ordering key: one at a time, in the order received.
      const previous = this.#chains.get(key) ?? Promise.resolve();
      done = previous.then(run);
      this.#chains.set(key, done);
      void done.finally(() => {
        if (this.#chains.get(key) !== done) return;
        // Everything received before the redelivery has been nacked: let the key flow again.
        this.#chains.delete(key);
        this.#failedKeys.delete(key);
      });
    } else {
      done = run();
    }
    void done
      .catch((err: unknown) => {
        this.logger.error('settling a Pub/Sub message failed', {
          messageId: m.id,
          error: describeError(err),
        });
      })
      .finally(() => this.#inflight.leave());
  }

  #incoming(m: Message): IncomingMessage {
    let attempt = m.deliveryAttempt;
    if (!(attempt >= 1)) {
      // No dead-letter policy on the subscription: count deliveries seen by this process.
      attempt = (this.#seen.get(m.id) ?? 0) + 1;
      this.#seen.delete(m.id);
      this.#seen.set(m.id, attempt);
      if (this.#seen.size > 10_000) this.#seen.delete(this.#seen.keys().next().value!);
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
    );
  }

  async #settle(
    sub: Subscription,
    m: Message,
    incoming: IncomingMessage,
    verdict: Verdict,
  ): Promise<void> {
    if (verdict.kind === 'ack') {
      this.#seen.delete(m.id);
      m.ack();
      return;
    }
    if (verdict.kind === 'retry') {
      // Pub/Sub cannot delay one message: redelivery backoff is the subscription's retry policy.
      m.nack();
      return;
    }
    try {
      await this.deadLetter(incoming, verdict.reason);
      this.#seen.delete(m.id);
      m.ack();
    } catch (err) {
      this.logger.error('dead-lettering failed; message nacked for redelivery', {
        subscription: sub.name,
        messageId: m.id,
        reason: verdict.reason.code,
        error: describeError(err),
      });
      m.nack();
    }
  }

  async stopConsuming(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#reopenTimers) clearTimeout(t);
    this.#reopenTimers.clear();
    await this.#inflight.wait();
    await Promise.all(
      this.#listeners
        .filter((l) => l.sub !== this.#replySubscription)
        .map(async (l) => {
          l.sub.removeListener('message', l.onMessage);
          await l.sub.close().catch((err: unknown) =>
            this.logger.warn('closing a Pub/Sub subscription failed', {
              subscription: l.sub.name,
              error: describeError(err),
            }),
          );
        }),
    );
  }

  async deadLetter(message: IncomingMessage, reason: DeadLetterReason): Promise<void> {
    if (!this.#deadLetterTopic)
      throw new SendError(
        `cannot dead-letter message ${message.messageId} (${reason.code}): the broker has no deadLetterTopic`,
      );
    const attributes = deadLetterAttributes(message, reason);
    let data = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
    let size = data.byteLength;
    for (const [k, v] of Object.entries(attributes)) size += Buffer.byteLength(k + v);
    if (size > LIMITS.messageBytes) {
      // Keep the reason; the body cannot travel (only an entrypoint can see such a message).
      attributes.dead_letter_truncated = String(data.byteLength);
      data = data.subarray(0, Math.max(0, data.byteLength - (size - LIMITS.messageBytes) - 64));
    }
    await this.#topic(this.#deadLetterTopic, false).publishMessage({ data, attributes });
  }

  async openReplyAddress(deliver: Deliver): Promise<string> {
    if (!this.#replyTopic || !this.replyAddress)
      throw new InvalidArgumentError(
        'request() needs a reply topic: give PubSubBroker the option `replyTopic`',
      );
    const short = this.#replyTopic.slice(this.#replyTopic.lastIndexOf('/') + 1);
    const name = subscriptionPath(this.project, `${short}-${this.#instanceId}`.slice(0, 255));
    const [sub] = await this.client.createSubscription(this.#replyTopic, name, {
      filter: `attributes.${REPLY_KEY} = "${this.#instanceId}"`,
      ackDeadlineSeconds: 10,
      // An instance that dies without stop() leaves a subscription that expires by itself.
      expirationPolicy: { ttl: { seconds: 24 * 3600 } },
      messageRetentionDuration: { seconds: 600 },
    });
    this.#replySubscription = sub;
    this.#listen(sub, deliver);
    this.logger.debug('reply subscription created', { subscription: name });
    return this.replyAddress;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stopping = true;
    for (const t of this.#reopenTimers) clearTimeout(t);
    this.#reopenTimers.clear();
    await this.#inflight.wait();
    this.#closed = true;
    const reply = this.#replySubscription;
    const closing = this.#listeners.map(async (l) => {
      l.sub.removeListener('message', l.onMessage);
      await l.sub.close().catch(() => {});
    });
    await Promise.all(closing);
    if (reply) {
      await reply.delete().catch((err: unknown) =>
        this.logger.warn('deleting the reply subscription failed (it expires after a day idle)', {
          subscription: reply.name,
          error: describeError(err),
        }),
      );
    }
    const topics = [...this.#topics.plain.values(), ...this.#topics.ordered.values()];
    await Promise.all(topics.map((t) => t.flush().catch(() => undefined)));
    if (this.#ownsClient) await this.client.close().catch(() => undefined);
  }
}
