/**
 * `AmqpBroker`: the core broker over RabbitMQ (AMQP 0-9-1) with `rabbitmq-client`.
 *
 * - publish: to an exchange (default `cloudmom`, a topic exchange) with routing key = target,
 *   persistent, `mandatory`, and resolved only once the broker confirmed it (publisher
 *   confirms); a message no queue takes is an {@link UnroutableError}, not a silent drop.
 * - consume (`start()`): `basic.consume` on `queue` with prefetch = the broker's concurrency,
 *   into a {@link PushBuffer} the core takes from; a delivery is settled on the channel it
 *   came on — after a dropped connection, messages of the dead channel are settled nowhere
 *   (RabbitMQ redelivers them) and the consumer is set up again on a new channel.
 * - redelivery: quorum queues count deliveries (`x-delivery-count`); on a classic queue a
 *   failed message is re-published to its queue with the header `delivery_count` + 1 (once
 *   confirmed, the original is acknowledged).
 * - dead-letters: by copy. The core publishes a copy to the dead-letter exchange with
 *   `dead_letter_reason` / `dead_letter_description` / `delivery_count` headers, then acks
 *   the original. (A `basic.nack` to the queue's DLX would only record `x-death` reason
 *   `rejected`: our reason would be lost.) The queue's own `x-dead-letter-exchange` points at
 *   the same exchange, so what RabbitMQ dead-letters itself (an `x-delivery-limit` backstop,
 *   TTL) lands in the same place.
 * - request(): a per-instance reply queue `cloudmom.reply.<id>` (non-durable, expires 60 s
 *   after its last use), declared on the first request, deleted on stop().
 */
import type {
  AsyncMessage,
  Channel,
  Connection,
  ConnectionOptions,
  Publisher,
  ReturnedMessage,
} from 'rabbitmq-client';
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from '../../src/broker.ts';
import type { ErrorCode } from '../../src/errors.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
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
import { asBuffer, checkNumber, checkOptionKeys, pick, sleep } from '../../src/util.ts';
import * as WIRE from '../../src/wire-names.ts';
import {
  DeliveryTags,
  deliveredBody,
  fromWire,
  LIMITS,
  measure,
  type Route,
  routeOf,
  toEnvelope,
  validate,
} from './wire.ts';

type RabbitModule = typeof import('rabbitmq-client');
/** `rabbitmq-client`, loaded on first use (an optional peer dependency). */
export const rabbit = optionalPeer<RabbitModule>('rabbitmq-client', 'cloudmom/amqp');

/**
 * A publish that no queue took: the exchange had no binding for the routing key (a
 * `mandatory` publish returned by RabbitMQ with `NO_ROUTE`). `publish` rejects with a
 * `SendError` (not retryable) whose `cause` is this error.
 *
 * @example
 * ```ts
 * try { await broker.publish('x', 'nobody-binds-this'); }
 * catch (e) { if (e instanceof SendError && e.cause instanceof UnroutableError) console.log(e.cause.routingKey); }
 * ```
 */
export class UnroutableError extends Error {
  readonly code = 'NO_ROUTE';
  readonly exchange: string;
  readonly routingKey: string;
  constructor(exchange: string, routingKey: string, replyText?: string) {
    super(
      `no queue took the message: exchange "${exchange || '(default)'}" has no binding for routing key "${routingKey.slice(0, 255)}"${replyText ? ` (${replyText})` : ''}`,
    );
    this.name = 'UnroutableError';
    this.exchange = exchange;
    this.routingKey = routingKey;
  }
}

/**
 * Options of {@link AmqpBroker}: those of every broker (`concurrency`, `maxDeliveries`,
 * `replyAllowList`...) plus the connection and the topology.
 *
 * @example
 * ```ts
 * const options: AmqpBrokerOptions = {
 *   url: 'amqp://guest:guest@localhost:5672',
 *   exchange: 'cloudmom',        // publish() sends here, routing key = target
 *   queue: 'orders-service',     // start() consumes this queue
 *   bindings: ['orders.*'],      // routing keys bound from the exchange to the queue
 * };
 * ```
 */
export interface AmqpBrokerOptions extends BrokerOptions {
  /** AMQP URL. Default `amqp://guest:guest@localhost:5672`. Ignored with `connection`. */
  url?: string;
  /** Further options of the connection cloudmom opens (TLS, heartbeat, hosts...). cloudmom's defaults: `frameMax` 131072, `noDelay` true. */
  connectionOptions?: ConnectionOptions;
  /** An existing `rabbitmq-client` Connection to use; the broker never closes it. */
  connection?: Connection;
  /** Exchange `publish()` sends to, routing key = target. `''` is the default exchange (target = queue name). Default `cloudmom`. */
  exchange?: string;
  /** Type of `exchange` when cloudmom declares it. Default `topic`. */
  exchangeType?: 'topic' | 'direct' | 'fanout' | 'headers';
  /** Queue `start()` consumes. Default: none — the broker publishes, requests and serves entrypoints only. */
  queue?: string;
  /** Routing keys bound from `exchange` to `queue` when cloudmom declares them. Default `['#']` (every target). */
  bindings?: readonly string[];
  /** Type of the queues cloudmom declares (`queue`, the dead-letter queue). Default `quorum`. */
  queueType?: 'quorum' | 'classic';
  /** Extra arguments for `queue` when cloudmom declares it (`x-max-length`...). Default none. */
  queueArguments?: Readonly<Record<string, unknown>>;
  /**
   * Quorum queues: `x-delivery-limit`, RabbitMQ's own backstop — after this many returns it
   * dead-letters the message itself (for a consumer that crashes before settling). Keep it
   * above `maxDeliveries`. Default: none.
   */
  deliveryLimit?: number;
  /** Exchange dead-letter copies go to (a fanout exchange). Default `<exchange or "cloudmom">.dead-letter`. */
  deadLetterExchange?: string;
  /** Queue bound to the dead-letter exchange, declared with `queue`. `false`: none. Default `<queue>.dead-letter`. */
  deadLetterQueue?: string | false;
  /**
   * Declare the exchange, queue, bindings and dead-letter exchange and queue (idempotent; a
   * queue that exists with other arguments fails with PRECONDITION_FAILED). `false` when the
   * topology is provisioned (definitions.json, Terraform...). Default true.
   */
  declare?: boolean;
  /** Unacknowledged deliveries per consumer (basic.qos). Default: the broker's `concurrency`. */
  prefetch?: number;
  /** Prefix of the per-instance reply queues of `request()`. Default `cloudmom.reply.`. */
  replyQueuePrefix?: string;
  /** Largest message (body + properties) publish accepts. Default 16 MiB (RabbitMQ 4's `max_message_size`). */
  maxMessageBytes?: number;
}

const AMQP_KEYS = [
  'url',
  'connectionOptions',
  'connection',
  'exchange',
  'exchangeType',
  'queue',
  'bindings',
  'queueType',
  'queueArguments',
  'deliveryLimit',
  'deadLetterExchange',
  'deadLetterQueue',
  'declare',
  'prefetch',
  'replyQueuePrefix',
  'maxMessageBytes',
] as const satisfies readonly (keyof AmqpBrokerOptions)[];

/** How long a reply queue lives unused (its consumer gone), in ms. */
const REPLY_QUEUE_EXPIRES_MS = 60_000;
/** How long a failed message is held before it is given back (no delayed redelivery on AMQP). */
const RETRY_HOLD_MS = 1000;

/**
 * A broker on RabbitMQ (AMQP 0-9-1): publishes to an exchange with routing key = target,
 * consumes a queue, replies to `reply_to` queues, and answers `request()` through a
 * per-instance reply queue.
 *
 * @example
 * ```ts
 * import { AmqpBroker } from 'cloudmom/amqp';
 * const broker = new AmqpBroker({ url: process.env.AMQP_URL, queue: 'greeter' });
 * broker.add('hello', (properties, body) => `Hi ${body}`);
 * await broker.start();
 * const reply = await broker.request('Ada', 'hello');
 * await broker.stop();
 * ```
 */
export class AmqpBroker extends Broker {
  readonly #transport: AmqpTransport;

  constructor(options: AmqpBrokerOptions = {}) {
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...AMQP_KEYS], 'AmqpBroker');
    const [own, core] = pick(options, AMQP_KEYS);
    const transport = new AmqpTransport(own, checkNumber(core.concurrency ?? 10, 'concurrency'));
    super(transport, core);
    this.#transport = transport;
  }

  /** The `rabbitmq-client` Connection (opened on first use). */
  override get client(): Connection {
    return this.#transport.connection();
  }

  /** The exchange `publish()` sends to. */
  get exchange(): string {
    return this.#transport.exchange;
  }

  /** The queue `start()` consumes, if any. */
  get queue(): string | undefined {
    return this.#transport.queue;
  }

  /** The exchange dead-letter copies go to. */
  get deadLetterExchange(): string {
    return this.#transport.deadLetterExchange;
  }
}

/** What a delivery's ackId holds: the channel it came on and its tag. */
interface AckId {
  readonly channel: Channel;
  /** The channel's unsettled tags (acks of a run of tags go as one frame). */
  readonly tags: DeliveryTags;
  readonly tag: number;
  readonly message: AsyncMessage;
  deliveryCount: number;
  /** Settling twice would close the channel (PRECONDITION_FAILED, unknown delivery tag). */
  settled?: boolean;
}

type Settings = Pick<AmqpBrokerOptions, (typeof AMQP_KEYS)[number]>;

class AmqpTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly exchange: string;
  readonly queue: string | undefined;
  readonly deadLetterExchange: string;
  readonly #deadLetterQueue: string | undefined;
  readonly #s: Settings;
  readonly #declare: boolean;
  readonly #prefetch: number;
  readonly #frameMax: number;
  readonly #replyPrefix: string;
  #logger: Logger = silentLogger;
  #conn: Connection | undefined;
  #publisher: Publisher | undefined;
  /** Returned (unroutable) messages by message id, until their confirm is seen. */
  readonly #returned = new Map<string, ReturnedMessage[]>();
  readonly #sources = new Set<AmqpSource>();
  #replyQueue: string | undefined;
  #closed = false;

  constructor(s: Settings, concurrency: number) {
    this.#s = s;
    const str = (v: unknown, name: string, empty = false) => {
      if (v !== undefined && (typeof v !== 'string' || (!empty && v === '')))
        throw new InvalidArgumentError(
          `AmqpBroker: ${name} must be a ${empty ? '' : 'non-empty '}string`,
        );
      return v as string | undefined;
    };
    str(s.url, 'url');
    this.exchange = str(s.exchange, 'exchange', true) ?? 'cloudmom';
    this.queue = str(s.queue, 'queue');
    this.deadLetterExchange =
      str(s.deadLetterExchange, 'deadLetterExchange') ??
      `${this.exchange || 'cloudmom'}.dead-letter`;
    if (s.deadLetterQueue !== false) str(s.deadLetterQueue, 'deadLetterQueue');
    this.#deadLetterQueue =
      s.deadLetterQueue === false
        ? undefined
        : (s.deadLetterQueue ?? (this.queue ? `${this.queue}.dead-letter` : undefined));
    this.#replyPrefix = str(s.replyQueuePrefix, 'replyQueuePrefix') ?? 'cloudmom.reply.';
    if (
      s.exchangeType !== undefined &&
      !['topic', 'direct', 'fanout', 'headers'].includes(s.exchangeType)
    )
      throw new InvalidArgumentError(
        'AmqpBroker: exchangeType must be topic, direct, fanout or headers',
      );
    if (s.queueType !== undefined && s.queueType !== 'quorum' && s.queueType !== 'classic')
      throw new InvalidArgumentError('AmqpBroker: queueType must be "quorum" or "classic"');
    if (
      s.bindings !== undefined &&
      (!Array.isArray(s.bindings) || s.bindings.some((b) => typeof b !== 'string'))
    )
      throw new InvalidArgumentError('AmqpBroker: bindings must be an array of routing keys');
    if (s.deliveryLimit !== undefined) checkNumber(s.deliveryLimit, 'deliveryLimit');
    if (s.connection !== undefined && (typeof s.connection !== 'object' || s.connection === null))
      throw new InvalidArgumentError('AmqpBroker: connection must be a rabbitmq-client Connection');
    this.#declare = s.declare ?? true;
    this.#prefetch = s.prefetch === undefined ? concurrency : checkNumber(s.prefetch, 'prefetch');
    const injectedFrameMax = (s.connection as { _opt?: { frameMax?: number } } | undefined)?._opt
      ?.frameMax;
    this.#frameMax = s.connectionOptions?.frameMax ?? injectedFrameMax ?? LIMITS.frameMax;
    const maxMessageBytes =
      s.maxMessageBytes === undefined
        ? LIMITS.messageBytes
        : checkNumber(s.maxMessageBytes, 'maxMessageBytes');
    this.capabilities = {
      name: 'amqp',
      maxMessageBytes,
      measure,
      maxBatchMessages: 100,
      maxBatchBytes: Math.max(maxMessageBytes, 4 * 1024 * 1024),
      batchLingerMs: 0,
      ordering: false,
      maxDelaySeconds: 0,
      nackDelay: false,
      retryHoldMs: RETRY_HOLD_MS,
      deadLetter: 'copy',
      request: true,
      defaultReplyAllowList: [`${this.#replyPrefix}*`, 'amq.rabbitmq.reply-to*'],
    };
  }

  get client(): Connection {
    return this.connection();
  }

  attach(context: { readonly logger: Logger }): void {
    this.#logger = context.logger;
  }

  /** The connection, opened on first use. */
  connection(): Connection {
    if (!this.#conn) {
      const { Connection } = rabbit();
      const conn =
        this.#s.connection ??
        new Connection({
          url: this.#s.url ?? 'amqp://guest:guest@localhost:5672',
          frameMax: LIMITS.frameMax,
          // without it, Nagle's algorithm and delayed ACKs add ~40 ms to every request/reply
          noDelay: true,
          connectionName: 'cloudmom',
          ...this.#s.connectionOptions,
        });
      if (!this.#s.connection) {
        conn.on('error', (err: unknown) =>
          this.#logger.warn('AMQP connection error; reconnecting', { error: describeError(err) }),
        );
        conn.on('connection', () => this.#logger.info('AMQP connection (re)established'));
      }
      this.#conn = conn;
    }
    return this.#conn;
  }

  validate(m: OutgoingMessage): void {
    validate(m, this.#frameMax);
  }

  #pub(): Publisher {
    if (!this.#publisher) {
      const exchanges = [];
      if (this.#declare) {
        if (this.exchange !== '')
          exchanges.push({
            exchange: this.exchange,
            type: this.#s.exchangeType ?? 'topic',
            durable: true,
          });
        exchanges.push({ exchange: this.deadLetterExchange, type: 'fanout', durable: true });
      }
      const pub = this.connection().createPublisher({ confirm: true, maxAttempts: 1, exchanges });
      pub.on('basic.return', (msg: ReturnedMessage) => {
        const id = msg.messageId ?? '';
        const list = this.#returned.get(id);
        if (list) list.push(msg);
        else this.#returned.set(id, [msg]);
      });
      this.#publisher = pub;
    }
    return this.#publisher;
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (this.#closed) {
      const error = new Error('the AMQP transport is closed');
      return batch.map(() => ({ ok: false, error }));
    }
    const pub = this.#pub();
    const timestamp = Math.floor(Date.now() / 1000);
    const routes = new Array<Route>(batch.length);
    const sends = new Array<Promise<{ error: unknown } | undefined>>(batch.length);
    // corked, the batch's publishes leave in a few writes instead of a writev each
    const socket = socketOf(this.connection());
    socket?.cork();
    try {
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        const route = routeOf(m, this.exchange);
        routes[i] = route;
        sends[i] = pub
          .send(toEnvelope(m, route, timestamp), asBuffer(m.body))
          .then(noFailure, asFailure);
      }
    } finally {
      socket?.uncork();
    }
    const failures = await Promise.all(sends);
    // one turn for the whole batch: a return precedes its confirm and is emitted on setImmediate
    await new Promise((r) => setImmediate(r));
    return batch.map((m, i): SendOutcome => {
      const route = routes[i]!;
      const returned = this.#takeReturned(m.messageId, route.exchange, route.routingKey);
      if (returned)
        return {
          ok: false,
          error: new UnroutableError(route.exchange, route.routingKey, returned.replyText),
        };
      const f = failures[i];
      return f ? { ok: false, error: f.error } : SENT;
    });
  }

  /**
   * Publishes persistent and mandatory; resolves once confirmed, rejects with
   * {@link UnroutableError} when RabbitMQ returned it. A return precedes its confirm on the
   * channel and is emitted on the next turn (setImmediate), so one turn after the confirm
   * tells whether this message came back.
   */
  async #confirmedPublish(
    pub: Publisher,
    exchange: string,
    routingKey: string,
    properties: object,
    body: Buffer,
  ): Promise<void> {
    const id = (properties as { messageId?: string }).messageId ?? '';
    let failure: { error: unknown } | undefined;
    try {
      await pub.send({ ...properties, exchange, routingKey, mandatory: true }, body);
      await new Promise((r) => setImmediate(r));
    } catch (error) {
      failure = { error };
    }
    const returned = this.#takeReturned(id, exchange, routingKey);
    if (returned) throw new UnroutableError(exchange, routingKey, returned.replyText);
    if (failure) throw failure.error;
  }

  #takeReturned(id: string, exchange: string, routingKey: string): ReturnedMessage | undefined {
    const list = this.#returned.get(id);
    if (!list) return undefined;
    const i = list.findIndex((r) => r.exchange === exchange && r.routingKey === routingKey);
    if (i < 0) return undefined;
    const [r] = list.splice(i, 1);
    if (list.length === 0) this.#returned.delete(id);
    return r;
  }

  /** Declares the consumed queue's topology on `ch` (exchange, dead-letter exchange and queue, queue, bindings). */
  async #declareQueue(ch: Channel, queue: string): Promise<void> {
    if (!this.#declare) return;
    const type = this.#s.queueType ?? 'quorum';
    if (this.exchange !== '')
      await ch.exchangeDeclare({
        exchange: this.exchange,
        type: this.#s.exchangeType ?? 'topic',
        durable: true,
      });
    await ch.exchangeDeclare({ exchange: this.deadLetterExchange, type: 'fanout', durable: true });
    if (this.#deadLetterQueue) {
      await ch.queueDeclare({
        queue: this.#deadLetterQueue,
        durable: true,
        arguments: { 'x-queue-type': type },
      });
      await ch.queueBind({
        queue: this.#deadLetterQueue,
        exchange: this.deadLetterExchange,
        routingKey: '',
      });
    }
    const args: Record<string, unknown> = {
      'x-queue-type': type,
      'x-dead-letter-exchange': this.deadLetterExchange,
      ...this.#s.queueArguments,
    };
    if (this.#s.deliveryLimit !== undefined) args['x-delivery-limit'] = this.#s.deliveryLimit;
    await ch.queueDeclare({ queue, durable: true, arguments: args });
    if (this.exchange !== '')
      for (const routingKey of this.#s.bindings ?? ['#'])
        await ch.queueBind({ queue, exchange: this.exchange, routingKey });
  }

  async open(): Promise<readonly Source[]> {
    if (this.queue === undefined) return [];
    const queue = this.queue;
    const source = new AmqpSource(this, {
      queue,
      prefetch: this.#prefetch,
      countByHeader: (this.#s.queueType ?? 'quorum') === 'classic',
      declare: (ch) => this.#declareQueue(ch, queue),
    });
    await this.#startSource(source);
    return [source];
  }

  async openReplyAddress(): Promise<{ address: string; source: Source }> {
    const queue = `${this.#replyPrefix}${globalThis.crypto.randomUUID()}`;
    const source = new AmqpSource(this, {
      queue,
      prefetch: Math.max(this.#prefetch, 100),
      countByHeader: true,
      declare: async (ch) => {
        await ch.queueDeclare({
          queue,
          durable: false,
          arguments: { 'x-expires': REPLY_QUEUE_EXPIRES_MS, 'x-queue-type': 'classic' },
        });
      },
    });
    await this.#startSource(source);
    this.#replyQueue = queue;
    return { address: queue, source };
  }

  async #startSource(source: AmqpSource): Promise<void> {
    this.#sources.add(source);
    try {
      await source.start();
    } catch (err) {
      this.#sources.delete(source);
      await source.close();
      throw err;
    }
  }

  /** @internal for sources */
  get logger(): Logger {
    return this.#logger;
  }

  /** @internal for sources: a failed message re-published to its queue with `delivery_count`. */
  async republish(queue: string, m: AsyncMessage, deliveryCount: number): Promise<void> {
    const body = Buffer.isBuffer(m.body) ? m.body : Buffer.from(deliveredBody(m.body).body);
    const properties = {
      contentType: m.contentType,
      contentEncoding: m.contentEncoding,
      correlationId: m.correlationId,
      replyTo: m.replyTo,
      messageId: m.messageId,
      timestamp: m.timestamp,
      type: m.type,
      appId: m.appId,
      priority: m.priority,
      deliveryMode: 2,
      headers: { ...m.headers, [WIRE.deliveryCount]: String(deliveryCount) },
    };
    await this.#confirmedPublish(this.#pub(), '', queue, properties, body);
  }

  deadLetterAddress(): string {
    return this.deadLetterExchange;
  }

  isRetryable(err: unknown): boolean {
    if (err instanceof UnroutableError) return false;
    const code = (err as { code?: unknown } | null)?.code;
    return !(typeof code === 'string' && PERMANENT.has(code));
  }

  /**
   * `not-found` for a missing exchange or queue (NOT_FOUND), and for a message no queue took
   * on the default exchange (its routing key is a queue name: a reply queue that is gone);
   * else `send-failed`.
   */
  errorCode(err: unknown): ErrorCode {
    if (err instanceof UnroutableError) return err.exchange === '' ? 'not-found' : 'send-failed';
    return (err as { code?: unknown } | null)?.code === 'NOT_FOUND' ? 'not-found' : 'send-failed';
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#sources].map((s) => s.close()));
    const conn = this.#conn;
    if (!conn) return;
    if (this.#replyQueue && conn.ready) {
      await Promise.race([
        conn.queueDelete({ queue: this.#replyQueue }).catch(() => undefined),
        new Promise((r) => setTimeout(r, 2000).unref()),
      ]);
    }
    await this.#publisher?.close().catch(() => undefined);
    if (this.#s.connection) return;
    // close() waits for every channel of the connection; a stuck one must not hang stop()
    const closed = conn.close().then(
      () => true,
      () => false,
    );
    if (
      !(await Promise.race([closed, new Promise<false>((r) => setTimeout(r, 5000, false).unref())]))
    )
      conn.unsafeDestroy();
  }
}

const noFailure = (): undefined => undefined;
const asFailure = (error: unknown) => ({ error });

/** AMQP reply codes and client codes a retry of the same call will not cure. */
const PERMANENT: ReadonlySet<string> = new Set([
  'NO_ROUTE',
  'ACCESS_REFUSED',
  'NOT_FOUND',
  'PRECONDITION_FAILED',
  'NOT_ALLOWED',
  'SYNTAX_ERROR',
  'COMMAND_INVALID',
  'FRAME_ERROR',
  'INVALID_PATH',
  'NOT_IMPLEMENTED',
  'CONTENT_TOO_LARGE',
  'CLOSED',
]);

interface SourceSettings {
  readonly queue: string;
  readonly prefetch: number;
  /** Classic queues: count deliveries with our own header (re-publish on failure). */
  readonly countByHeader: boolean;
  readonly declare: (ch: Channel) => Promise<void>;
}

/**
 * A queue consumed with `basic.consume` into a PushBuffer. Each delivery is settled on its
 * own channel; after the channel died (connection dropped), settling it is a no-op — RabbitMQ
 * redelivers it — and the consumer is set up again, with backoff, on a new channel.
 */
class AmqpSource implements Source {
  readonly name: string;
  readonly maxReceive: number;
  readonly maxAckBatch: number;
  readonly #t: AmqpTransport;
  readonly #s: SourceSettings;
  readonly #buffer = new PushBuffer<IncomingMessage>();
  #channel: Channel | undefined;
  #consumerTag: string | undefined;
  #closing = false;
  readonly #stopped = new AbortController();
  #recovering: Promise<void> | undefined;

  constructor(transport: AmqpTransport, settings: SourceSettings) {
    this.#t = transport;
    this.#s = settings;
    this.name = settings.queue;
    this.maxReceive = settings.prefetch;
    this.maxAckBatch = settings.prefetch;
  }

  /** Sets up the first channel; rejects when that fails (a missing queue, refused access...). */
  async start(): Promise<void> {
    await this.#setup();
  }

  async #setup(): Promise<void> {
    const ch = await this.#t.connection().acquire({ emitErrorsFromChannel: true });
    ch.on('error', (err: unknown) =>
      this.#t.logger.warn('AMQP channel error', { queue: this.name, error: describeError(err) }),
    );
    try {
      await this.#s.declare(ch);
      await ch.basicQos({ prefetchCount: this.#s.prefetch });
      const tags = new DeliveryTags();
      const { consumerTag } = await ch.basicConsume({ queue: this.#s.queue }, (msg) =>
        this.#deliver(ch, tags, msg),
      );
      if (this.#closing) {
        await ch.close();
        return;
      }
      if (!ch.active) throw new Error('the channel closed while the consumer was set up');
      this.#channel = ch;
      this.#consumerTag = consumerTag;
      ch.once('close', () => this.#lost(ch));
      ch.once('basic.cancel', () => {
        this.#t.logger.warn(
          'consumer cancelled by the server (queue deleted?); setting it up again',
          {
            queue: this.name,
          },
        );
        void ch.close();
      });
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw err;
    }
  }

  #lost(ch: Channel): void {
    if (this.#closing || this.#channel !== ch) return;
    this.#channel = undefined;
    this.#consumerTag = undefined;
    this.#t.logger.warn('AMQP consumer channel closed; recovering', { queue: this.name });
    this.#recovering ??= this.#recover().finally(() => {
      this.#recovering = undefined;
    });
  }

  async #recover(): Promise<void> {
    for (let attempt = 1; !this.#closing; attempt++) {
      try {
        await this.#setup();
        this.#t.logger.info('AMQP consumer recovered', { queue: this.name, attempt });
        return;
      } catch (err) {
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt - 1, 7));
        this.#t.logger.warn('setting up the AMQP consumer failed; retrying', {
          queue: this.name,
          attempt,
          retryInMs: delay,
          error: describeError(err),
        });
        await sleep(delay, this.#stopped.signal);
      }
    }
  }

  #deliver(ch: Channel, tags: DeliveryTags, msg: AsyncMessage): void {
    tags.delivered(msg.deliveryTag);
    const ackId: AckId = {
      channel: ch,
      tags,
      tag: msg.deliveryTag,
      message: msg,
      deliveryCount: 1,
    };
    let m: IncomingMessage;
    try {
      const body = deliveredBody(msg.body);
      const headers = msg.headers ?? {};
      m = fromWire(
        {
          body: body.body,
          text: body.text,
          routingKey: msg.routingKey,
          redelivered: msg.redelivered,
          contentType: msg.contentType,
          correlationId: msg.correlationId,
          replyTo: msg.replyTo,
          messageId: msg.messageId,
          timestamp: msg.timestamp,
          headers,
        },
        msg,
        { fallbackId: () => globalThis.crypto.randomUUID(), source: this.name, ackId },
      );
      ackId.deliveryCount = m.deliveryCount;
    } catch (err) {
      m = {
        body: Buffer.isBuffer(msg.body) ? msg.body : new Uint8Array(0),
        target: msg.routingKey || undefined,
        messageId: msg.messageId || globalThis.crypto.randomUUID(),
        headers: {},
        deliveryCount: msg.redelivered ? 2 : 1,
        raw: msg,
        source: this.name,
        ackId,
        poison: {
          code: 'undecodable',
          description: `the delivery could not be read: ${describeError(err)}`,
        },
      };
    }
    if (!this.#buffer.push(m)) this.#nackQuietly(ackId);
  }

  async receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]> {
    for (;;) {
      const got = await this.#buffer.take(max, signal);
      if (got.length === 0) return got;
      // deliveries of a dead channel come again on the new one: drop them here
      const live = got.filter((m) => (m.ackId as AckId).channel.active);
      if (live.length > 0) return live;
    }
  }

  async ack(ackIds: readonly unknown[]): Promise<void> {
    // the ids of one channel, in a run (after a reconnect, a batch may hold two channels')
    let run: AckId[] = [];
    for (const id of ackIds) {
      const a = id as AckId;
      if (a.settled || !a.channel.active) continue; // settled, or redelivered on another channel
      a.settled = true;
      if (run.length > 0 && run[0]!.channel !== a.channel) {
        ackRun(run);
        run = [];
      }
      run.push(a);
    }
    if (run.length > 0) ackRun(run);
  }

  async nack(ackId: unknown, _delayMs: number, failed: boolean): Promise<void> {
    const id = ackId as AckId;
    if (id.settled || !id.channel.active) return;
    if (failed && this.#s.countByHeader) {
      try {
        await this.#t.republish(this.#s.queue, id.message, id.deliveryCount + 1);
      } catch (err) {
        this.#t.logger.warn('re-publishing a failed message failed; requeueing it instead', {
          queue: this.name,
          messageId: id.message.messageId,
          error: describeError(err),
        });
        id.settled = true;
        this.#nackQuietly(id);
        return;
      }
      await this.ack([id]);
      return;
    }
    id.settled = true;
    this.#nackQuietly(id);
  }

  #nackQuietly({ channel, tags, tag }: AckId): void {
    tags.forget(tag);
    if (!channel.active) return;
    try {
      channel.basicNack({ deliveryTag: tag, requeue: true });
    } catch {
      // closed meanwhile: redelivered anyway
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopped.abort();
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch?.active && this.#consumerTag)
      await ch.basicCancel({ consumerTag: this.#consumerTag }).catch(() => undefined);
    for (const m of this.#buffer.close()) this.#nackQuietly(m.ackId as AckId);
    await this.#recovering;
    await ch?.close().catch(() => undefined);
  }
}

/** Acks deliveries of one channel: a run of settled tags in one frame, the rest one each. */
function ackRun(run: readonly AckId[]): void {
  const { channel, tags } = run[0]!;
  const plan = tags.ack(run.map((a) => a.tag));
  try {
    if (plan.upTo !== undefined) channel.basicAck({ deliveryTag: plan.upTo, multiple: true });
    for (const tag of plan.each) channel.basicAck({ deliveryTag: tag });
  } catch {
    // the channel closed meanwhile: RabbitMQ redelivers the messages
  }
}

/** The connection's socket, if this rabbitmq-client version keeps it where 5.x does. */
function socketOf(conn: Connection): { cork(): void; uncork(): void } | undefined {
  const socket = (conn as unknown as { _socket?: { cork?: unknown; uncork?: unknown } })._socket;
  return typeof socket?.cork === 'function' && typeof socket.uncork === 'function'
    ? (socket as { cork(): void; uncork(): void })
    : undefined;
}
