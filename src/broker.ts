import { Batcher } from './batcher.ts';
import { type Body, type Codec, CodecRegistry } from './codec.ts';
import {
  BrokerStoppedError,
  CloudmomError,
  InvalidArgumentError,
  InvalidMessageError,
  MessageTooLargeError,
  RequestAbortedError,
  RequestTimeoutError,
} from './errors.ts';
import { describeError, jsonLogger, type Logger, silentLogger } from './log.ts';
import { type StandardSchema, validateBody } from './schema.ts';
import {
  type DeadLetterReason,
  type IncomingMessage,
  type OutgoingMessage,
  RESERVED_HEADERS,
  type Transport,
  type Verdict,
} from './transport.ts';
import { checkOptionKeys, Idle, positiveInt, Semaphore } from './util.ts';

/** Web Crypto's UUID: no `node:crypto` import, so loading the core stays cheap (cold starts, edge runtimes). */
const randomUUID = (): string => globalThis.crypto.randomUUID();

/**
 * What a handler sees of a message, besides its body.
 *
 * @example
 * ```ts
 * broker.add('greet', (properties, body) => {
 *   console.log(properties.target, properties.correlationId, properties.deliveryCount);
 *   return `Hi ${body}`;
 * });
 * ```
 */
export interface Properties {
  readonly target: string;
  readonly messageId: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly contentType: string;
  /** User headers (attributes / application properties), string values. */
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly publishedAt?: Date;
  readonly groupKey?: string;
  /** The platform's native message: an escape hatch. */
  readonly raw: unknown;
}

/**
 * A message handler. Its return value, if not `undefined`, is sent back as a reply carrying
 * the incoming correlation id. Throwing leaves the message for redelivery.
 *
 * @example
 * ```ts
 * const handler: Handler = async (properties, body) => 'Hi there too';
 * ```
 */
export type Handler = (properties: Properties, body: any) => unknown;

/** A reply as `request()` resolves it. */
export interface Reply {
  readonly properties: Properties;
  readonly body: any;
}

/**
 * Options of `publish` (the object form of its third argument).
 *
 * @example
 * ```ts
 * await broker.publish({ id: 1 }, 'orders', { correlationId: 'c-1', headers: { tenant: 'a' }, groupKey: 'customer-7' });
 * ```
 */
export interface PublishOptions {
  /** Correlates replies with requests. Default: none (a reply then uses the message id). */
  correlationId?: string;
  /** Address where the handler's reply goes (a queue, topic...). Default: none. */
  replyTo?: string;
  /** Picks the codec. Default: by body kind (bytes, string, JSON). */
  contentType?: string;
  /** User headers; names `target`, `correlation_id`, `reply_to`, `content_type`, `message_id`, `traceparent`, `dead_letter_*` are reserved. */
  headers?: Record<string, string>;
  /** Delivery delay in seconds, up to the transport's maximum. Default 0. */
  delaySeconds?: number;
  /** Messages with the same group key are delivered in order (where the platform orders). */
  groupKey?: string;
  /** Deduplication id where the platform dedupes (SQS FIFO). Default: the message id. */
  deduplicationId?: string;
  /** W3C trace context to carry. */
  traceparent?: string;
}

/**
 * Options of `request()`: those of publish (but `replyTo`/`correlationId`, which request sets)
 * plus a timeout and a signal.
 */
export interface RequestOptions extends Omit<PublishOptions, 'replyTo' | 'correlationId'> {
  /** Milliseconds to wait for the reply. Default: the broker's `requestTimeoutMs` (30 000). */
  timeoutMs?: number;
  /** Cancels the wait. */
  signal?: AbortSignal;
}

/**
 * Options of `add()` (the object form of its third argument).
 *
 * @example
 * ```ts
 * broker.add('orders', handle, { replyTo: 'order-results', schema: OrderSchema });
 * ```
 */
export interface AddOptions {
  /** Target that replies are published to when the message carries no reply address. */
  replyTo?: string;
  /** Standard Schema the decoded body must satisfy; failures are dead-lettered. */
  schema?: StandardSchema;
  /** Codec for this target's bodies, whatever their content type says. */
  codec?: Codec;
}

/** Retry backoff for failed handlers: `min(maxDelayMs, baseDelayMs * 2^(deliveryCount-1))`. */
export interface RetryOptions {
  /** Default 1000. */
  baseDelayMs?: number;
  /** Default 60 000. */
  maxDelayMs?: number;
}

/**
 * Options every broker takes (each adapter adds its own).
 *
 * @example
 * ```ts
 * new MemoryBroker({ concurrency: 50, maxDeliveries: 3, unknownTarget: 'dead-letter', replyAllowList: ['reply.'] });
 * ```
 */
export interface BrokerOptions {
  /** Handlers running at once. Default 10. */
  concurrency?: number;
  /** On the delivery with this count a failing handler dead-letters the message. Default 5. */
  maxDeliveries?: number;
  /** Backoff between redeliveries where the platform can delay. */
  retry?: RetryOptions;
  /** A message for a target with no handler: `discard` (default, as the seed) or `dead-letter`. */
  unknownTarget?: 'discard' | 'dead-letter';
  /**
   * Reply addresses allowed: strings match exactly, or as a prefix when they end with `*`;
   * RegExps test; or a function. Default: the transport's own reply names.
   */
  replyAllowList?: ReadonlyArray<string | RegExp> | ((address: string) => boolean);
  /** Default `request()` timeout. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Extra codecs, by content type. */
  codecs?: readonly Codec[];
  /** Logger, or `false` for none. Default: JSON lines on stderr at `CLOUDMOM_LOG_LEVEL` (warn). */
  logger?: Logger | false;
  /** Overrides of the transport's batching: most messages per send, linger in ms. */
  batch?: { maxMessages?: number; lingerMs?: number };
}

export const BROKER_OPTION_KEYS = [
  'concurrency',
  'maxDeliveries',
  'retry',
  'unknownTarget',
  'replyAllowList',
  'requestTimeoutMs',
  'codecs',
  'logger',
  'batch',
] as const satisfies readonly (keyof BrokerOptions)[];

interface Route {
  readonly handlers: { handler: Handler; replyTo: string | undefined }[];
  schema?: StandardSchema;
  codec?: Codec;
}

interface PendingRequest {
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

/** Counters, for logs and tests. */
export interface BrokerStats {
  published: number;
  delivered: number;
  acked: number;
  retried: number;
  deadLettered: number;
  discarded: number;
  repliesSent: number;
}

/** Internal handle used by the platform entrypoints; not part of the public API. */
export const INTERNALS: unique symbol = Symbol('cloudmom.internals');

export interface BrokerInternals {
  readonly transport: Transport;
  readonly logger: Logger;
  /** Runs one received message through the core; dead-letters via the transport when needed. */
  process(message: IncomingMessage): Promise<'ack' | { retry: unknown; delayMs: number }>;
  /** Runs a batch: concurrent, but in order within a group key; a failure fails the rest of its group. */
  processBatch(
    messages: readonly IncomingMessage[],
    options?: { ordered?: boolean },
  ): Promise<('ack' | { retry: unknown; delayMs: number })[]>;
  /**
   * {@link processBatch}, answering the results themselves (no promise) when every message was
   * done synchronously; may throw where `processBatch` would reject.
   */
  processBatchNow(
    messages: readonly IncomingMessage[],
    options?: { ordered?: boolean },
  ): Outcome[] | Promise<Outcome[]>;
}

/** What the core answers an entrypoint for one message: done, or leave it for redelivery. */
export type Outcome = 'ack' | { retry: unknown; delayMs: number };

/**
 * The broker: publish bodies to targets, add handlers per target, reply by returning a value.
 * Construct a platform's broker (`MemoryBroker`, `SqsBroker`, `ServiceBusBroker`,
 * `PubSubBroker`...); all share this behaviour.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * broker.add('hello', (properties, body) => 'Hi there too');
 * await broker.start();
 * const reply = await broker.request('Hello World!', 'hello');
 * console.log(reply.body); // "Hi there too"
 * await broker.stop();
 * ```
 */
export class Broker {
  readonly #transport: Transport;
  readonly #codecs: CodecRegistry;
  readonly #routes = new Map<string, Route>();
  readonly #pending = new Map<string, PendingRequest>();
  readonly #batcher: Batcher;
  readonly #slots: Semaphore;
  readonly #inflight = new Idle();
  readonly #unknownSeen = new Set<string>();
  readonly #allow: (address: string) => boolean;
  readonly #logger: Logger;
  readonly #concurrency: number;
  readonly #maxDeliveries: number;
  readonly #retryBase: number;
  readonly #retryMax: number;
  readonly #unknownTarget: 'discard' | 'dead-letter';
  readonly #requestTimeoutMs: number;
  #state: 'idle' | 'started' | 'stopping' | 'stopped' = 'idle';
  #replyAddress: Promise<string> | undefined;
  /** Counters since construction. */
  readonly stats: BrokerStats = {
    published: 0,
    delivered: 0,
    acked: 0,
    retried: 0,
    deadLettered: 0,
    discarded: 0,
    repliesSent: 0,
  };

  /** Platform brokers call this with their transport; users construct the subclasses. */
  protected constructor(transport: Transport, options: BrokerOptions = {}) {
    checkOptionKeys(options, BROKER_OPTION_KEYS, this.constructor.name);
    this.#transport = transport;
    this.#codecs = new CodecRegistry(options.codecs);
    this.#logger = options.logger === false ? silentLogger : (options.logger ?? jsonLogger());
    this.#concurrency = positiveInt(options.concurrency ?? 10, 'concurrency');
    this.#maxDeliveries = positiveInt(options.maxDeliveries ?? 5, 'maxDeliveries');
    this.#retryBase = options.retry?.baseDelayMs ?? 1000;
    this.#retryMax = options.retry?.maxDelayMs ?? 60_000;
    this.#unknownTarget = options.unknownTarget ?? 'discard';
    if (this.#unknownTarget !== 'discard' && this.#unknownTarget !== 'dead-letter') {
      throw new InvalidArgumentError(`unknownTarget must be "discard" or "dead-letter"`);
    }
    this.#requestTimeoutMs = positiveInt(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs');
    this.#allow = allowListMatcher(
      options.replyAllowList ?? transport.capabilities.defaultReplyAllowList,
    );
    this.#slots = new Semaphore(this.#concurrency);
    const caps = transport.capabilities;
    this.#batcher = new Batcher((batch) => transport.send(batch), {
      maxMessages: Math.min(
        positiveInt(options.batch?.maxMessages ?? caps.maxBatchMessages, 'batch.maxMessages'),
        caps.maxBatchMessages,
      ),
      maxBytes: caps.maxBatchBytes,
      lingerMs: options.batch?.lingerMs ?? caps.batchLingerMs,
    });
  }

  /** The platform's native client (SQS, Service Bus, Pub/Sub...), for what cloudmom does not cover. */
  get client(): unknown {
    return this.#transport.client;
  }

  /** Most handlers running at once. */
  get concurrency(): number {
    return this.#concurrency;
  }

  /**
   * Publishes a body to a target. Resolves to the message id once the service accepted it.
   *
   * @example
   * ```ts
   * await broker.publish('Hello World!', 'example');                 // seed form
   * await broker.publish({ n: 1 }, 'example', 'corr-1');              // with a correlation id
   * await broker.publish(bytes, 'example', { replyTo: 'reply.abc' }); // with options
   * ```
   */
  publish(body: Body, target?: string, correlationId?: string): Promise<string>;
  publish(body: Body, target: string, options: PublishOptions): Promise<string>;
  publish(body: Body, target = '', third?: string | PublishOptions): Promise<string> {
    try {
      if (this.#state === 'stopped') throw new BrokerStoppedError('publish');
      const options: PublishOptions =
        typeof third === 'string' ? { correlationId: third } : (third ?? {});
      return this.#enqueue(this.#encode(body, target, options, undefined));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Adds a handler for a target. Several handlers on one target run in the order added.
   * `replyTo` (seed form) is the target replies are published to when the message carries no
   * reply address.
   *
   * @example
   * ```ts
   * broker.add('example', async (properties, body) => 'Hi there too');
   * broker.add('orders', handleOrder, 'order-results');
   * broker.add('orders', handleOrder, { schema: OrderSchema });
   * ```
   */
  add(target: string, handler: Handler, replyTo?: string | AddOptions): this {
    if (typeof target !== 'string' || target === '')
      throw new InvalidArgumentError('add: target must be a non-empty string');
    if (typeof handler !== 'function')
      throw new InvalidArgumentError('add: handler must be a function');
    const options: AddOptions = typeof replyTo === 'string' ? { replyTo } : (replyTo ?? {});
    checkOptionKeys(options, ['replyTo', 'schema', 'codec'], 'add');
    let route = this.#routes.get(target);
    if (!route) {
      route = { handlers: [] };
      this.#routes.set(target, route);
    }
    route.handlers.push({ handler, replyTo: options.replyTo });
    if (options.schema) route.schema = options.schema;
    if (options.codec) route.codec = options.codec;
    return this;
  }

  /**
   * Publishes a request and resolves with the correlated reply. Replies come back to this
   * instance's own reply address, so concurrent requests and several instances stay apart.
   *
   * @example
   * ```ts
   * const { body } = await broker.request({ city: 'Prague' }, 'geocode', { timeoutMs: 5000 });
   * ```
   */
  async request(body: Body, target: string, options: RequestOptions = {}): Promise<Reply> {
    if (this.#state === 'stopped' || this.#state === 'stopping')
      throw new BrokerStoppedError('request');
    const { timeoutMs = this.#requestTimeoutMs, signal, ...publishOptions } = options;
    positiveInt(timeoutMs, 'timeoutMs');
    if (signal?.aborted)
      throw new RequestAbortedError('request aborted before it was sent', { cause: signal.reason });
    const replyTo = await this.#ensureReplyAddress();
    const correlationId = randomUUID();
    const outgoing = this.#encode(
      body,
      target,
      { ...publishOptions, correlationId, replyTo },
      undefined,
    );
    return new Promise<Reply>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(correlationId);
      };
      const timer = setTimeout(() => {
        done();
        reject(new RequestTimeoutError(correlationId, timeoutMs, target));
      }, timeoutMs);
      const onAbort = () => {
        done();
        reject(new RequestAbortedError('request aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(correlationId, {
        resolve: (r) => {
          done();
          resolve(r);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      this.#enqueue(outgoing).catch((err: unknown) => {
        done();
        reject(err);
      });
    });
  }

  /**
   * Starts long-running consumption (containers, CLIs). Function entrypoints do not need it.
   *
   * @example
   * ```ts
   * await broker.start(); process.on('SIGTERM', () => broker.stop());
   * ```
   */
  async start(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping')
      throw new BrokerStoppedError('start');
    if (this.#state === 'started') return;
    this.#state = 'started';
    if (this.#transport.consume) {
      await this.#transport.consume((m) => this.#deliver(m), { concurrency: this.#concurrency });
    }
    this.#logger.info('broker started', {
      transport: this.#transport.capabilities.name,
      targets: [...this.#routes.keys()],
    });
  }

  /**
   * Stops consuming, lets in-flight handlers finish and settles their messages, sends what is
   * still buffered, fails pending requests, then closes. Publishing afterwards is refused.
   *
   * @example
   * ```ts
   * await broker.stop();
   * ```
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    await this.#transport.stopConsuming?.();
    await this.#inflight.wait();
    await this.#batcher.flush();
    for (const p of [...this.#pending.values()])
      p.reject(new RequestAbortedError('the broker stopped before a reply came'));
    this.#state = 'stopped';
    await this.#transport.close();
    this.#logger.info('broker stopped', {
      transport: this.#transport.capabilities.name,
      ...this.stats,
    });
  }

  /** @internal entrypoints' access; see {@link BrokerInternals}. */
  get [INTERNALS](): BrokerInternals {
    return {
      transport: this.#transport,
      logger: this.#logger,
      process: (m) => {
        try {
          return Promise.resolve(this.#processNow(m));
        } catch (err) {
          return Promise.reject(err);
        }
      },
      processBatch: (ms, o) => {
        try {
          return Promise.resolve(this.#processBatchNow(ms, o?.ordered ?? false));
        } catch (err) {
          return Promise.reject(err);
        }
      },
      processBatchNow: (ms, o) => this.#processBatchNow(ms, o?.ordered ?? false),
    };
  }

  // ---- publishing ----

  #encode(
    body: Body,
    target: string,
    options: PublishOptions,
    destination: string | undefined,
  ): Encoded {
    if (typeof target !== 'string' || target === '')
      throw new InvalidMessageError('publish: target must be a non-empty string');
    checkOptionKeys(
      options,
      [
        'correlationId',
        'replyTo',
        'contentType',
        'headers',
        'delaySeconds',
        'groupKey',
        'deduplicationId',
        'traceparent',
      ],
      'publish',
    );
    const caps = this.#transport.capabilities;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) {
      if (k === '') throw new InvalidMessageError('header names must not be empty');
      if (RESERVED_HEADERS.has(k))
        throw new InvalidMessageError(`header "${k}" is reserved by cloudmom`);
      if (typeof v !== 'string')
        throw new InvalidMessageError(`header "${k}" must be a string, got ${typeof v}`);
      headers[k] = v;
    }
    if (options.traceparent !== undefined) headers.traceparent = options.traceparent;
    if (options.delaySeconds !== undefined) {
      const d = options.delaySeconds;
      if (!Number.isInteger(d) || d < 0 || d > caps.maxDelaySeconds) {
        throw new InvalidMessageError(
          `delaySeconds must be an integer from 0 to ${caps.maxDelaySeconds} on ${caps.name}, got ${d}`,
        );
      }
    }
    for (const key of ['correlationId', 'replyTo', 'groupKey', 'deduplicationId'] as const) {
      const v = options[key];
      if (v !== undefined && (typeof v !== 'string' || v === ''))
        throw new InvalidMessageError(`${key} must be a non-empty string`);
    }
    const codec = this.#codecs.forBody(body, options.contentType);
    const message: OutgoingMessage = {
      body: codec.encode(body),
      target,
      messageId: randomUUID(),
      contentType: options.contentType ?? codec.contentType,
      headers,
      correlationId: options.correlationId,
      replyTo: options.replyTo,
      delaySeconds: options.delaySeconds,
      groupKey: options.groupKey,
      deduplicationId: options.deduplicationId,
      destination,
    };
    const size = caps.measure ? caps.measure(message) : defaultMeasure(message);
    if (size > caps.maxMessageBytes)
      throw new MessageTooLargeError(size, caps.maxMessageBytes, caps.name);
    this.#transport.validate?.(message);
    return { message, size };
  }

  #enqueue({ message, size }: Encoded): Promise<string> {
    const id = this.#batcher.add(message, size);
    this.stats.published++;
    return id;
  }

  // ---- receiving ----
  //
  // Each step answers a value when it finished synchronously and a promise only when it had
  // to wait (a busy slot, an async handler, a schema, replies, dead-lettering): a batch of
  // synchronous handlers runs without a promise, a timer or a closure per message.

  /** Pull path: the transport settles by the verdict. Never rejects. */
  #deliver(message: IncomingMessage): Promise<Verdict> {
    try {
      const v = this.#deliverNow(message);
      return v instanceof Promise ? v : Promise.resolve(v);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Takes a slot (waiting if none is free) and decides; synchronous when it can be. */
  #deliverNow(message: IncomingMessage): Verdict | Promise<Verdict> {
    this.#inflight.enter();
    if (!this.#slots.tryAcquire()) return this.#deliverQueued(message);
    let v: Verdict | Promise<Verdict>;
    try {
      v = this.#decide(message, false);
    } catch (err) {
      this.#slots.release();
      this.#inflight.leave();
      throw err;
    }
    if (v instanceof Promise) return v.then(this.#settled, this.#settleFailed);
    this.#slots.release();
    this.#inflight.leave();
    return v;
  }

  /** Releases the slot and the in-flight count of a message decided asynchronously. */
  readonly #settled = (v: Verdict): Verdict => {
    this.#slots.release();
    this.#inflight.leave();
    return v;
  };
  readonly #settleFailed = (err: unknown): never => {
    this.#slots.release();
    this.#inflight.leave();
    throw err;
  };

  async #deliverQueued(message: IncomingMessage): Promise<Verdict> {
    // the in-flight count was entered by #deliverNow
    try {
      await this.#slots.acquire();
    } catch (err) {
      this.#inflight.leave();
      throw err;
    }
    try {
      return await this.#decide(message, false);
    } finally {
      this.#slots.release();
      this.#inflight.leave();
    }
  }

  /** What arrives on this instance's reply address. */
  async #deliverReply(message: IncomingMessage): Promise<Verdict> {
    this.#inflight.enter();
    try {
      const pending =
        message.correlationId === undefined ? undefined : this.#pending.get(message.correlationId);
      if (pending) {
        try {
          const body = this.#codecs.decodeMessage(message);
          pending.resolve({ properties: toProperties(message, 'reply'), body });
        } catch (err) {
          pending.reject(err instanceof Error ? err : new Error(String(err)));
        }
        this.stats.acked++;
        return ACK;
      }
      await this.#slots.acquire();
      try {
        return await this.#decide(message, true);
      } finally {
        this.#slots.release();
      }
    } finally {
      this.#inflight.leave();
    }
  }

  /** Entrypoint path: dead-letters through the transport itself. */
  #processNow(message: IncomingMessage): Outcome | Promise<Outcome> {
    const v = this.#deliverNow(message);
    return v instanceof Promise
      ? v.then((verdict) => this.#outcome(message, verdict))
      : this.#outcome(message, v);
  }

  #outcome(message: IncomingMessage, verdict: Verdict): Outcome | Promise<Outcome> {
    if (verdict.kind === 'ack') return 'ack';
    if (verdict.kind === 'retry') return { retry: verdict.error, delayMs: verdict.delayMs };
    return this.#deadLetterNow(message, verdict.reason);
  }

  async #deadLetterNow(message: IncomingMessage, reason: DeadLetterReason): Promise<Outcome> {
    try {
      await this.#transport.deadLetter(message, reason);
      return 'ack';
    } catch (err) {
      this.#logger.error('dead-lettering failed; leaving the message for redelivery', {
        messageId: message.messageId,
        reason: reason.code,
        error: describeError(err),
      });
      return { retry: err, delayMs: 0 };
    }
  }

  /**
   * Runs a batch. Unordered: every message is started at once and the slots bound how many
   * run (the rest wait for one, in order); a message whose handler is synchronous is done
   * before the next starts. Ordered: one after the other within a group key.
   */
  #processBatchNow(
    messages: readonly IncomingMessage[],
    ordered: boolean,
  ): Outcome[] | Promise<Outcome[]> {
    const results: Outcome[] = new Array(messages.length);
    if (ordered) return this.#processOrdered(messages, results);
    let pending: Promise<void>[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const r = this.#processNow(messages[i]!);
      if (!(r instanceof Promise)) {
        results[i] = r;
        continue;
      }
      const done = r.then((x) => {
        results[i] = x;
      });
      if (pending === undefined) pending = [done];
      else pending.push(done);
    }
    return pending ? Promise.all(pending).then(() => results) : results;
  }

  /**
   * Ordered: a message waits for the earlier ones of its group key (and fails for retry, unrun,
   * once one of them failed); groups, and messages without a key, run side by side. Synchronous
   * while no message of a group had to wait.
   */
  #processOrdered(
    messages: readonly IncomingMessage[],
    results: Outcome[],
  ): Outcome[] | Promise<Outcome[]> {
    /** Groups whose latest message is still running: the promise of its end. */
    const tails = new Map<string, Promise<void>>();
    const failed = new Set<string>();
    const pending: Promise<void>[] = [];
    const settle = (i: number, key: string, r: Outcome) => {
      results[i] = r;
      if (r !== 'ack') failed.add(key);
    };
    const step = (i: number, key: string): void | Promise<void> => {
      if (failed.has(key)) {
        results[i] = { retry: new Error('an earlier message of its group failed'), delayMs: 0 };
        return;
      }
      const r = this.#processNow(messages[i]!);
      if (!(r instanceof Promise)) return settle(i, key, r);
      return r.then((x) => settle(i, key, x));
    };
    for (let i = 0; i < messages.length; i++) {
      const key = messages[i]!.groupKey;
      if (key === undefined) {
        const r = this.#processNow(messages[i]!);
        if (!(r instanceof Promise)) results[i] = r;
        else
          pending.push(
            r.then((x) => {
              results[i] = x;
            }),
          );
        continue;
      }
      const tail = tails.get(key);
      const next = tail ? tail.then(() => step(i, key)) : step(i, key);
      if (next instanceof Promise) tails.set(key, next);
    }
    if (tails.size === 0 && pending.length === 0) return results;
    return Promise.all([...tails.values(), ...pending]).then(() => results);
  }

  #decide(message: IncomingMessage, onReplyAddress: boolean): Verdict | Promise<Verdict> {
    this.stats.delivered++;
    const v = this.#decideInner(message, onReplyAddress);
    return v instanceof Promise
      ? v.then((verdict) => this.#count(message, verdict))
      : this.#count(message, v);
  }

  /** Stats and the dead-letter log line of a decided message. */
  #count(message: IncomingMessage, verdict: Verdict): Verdict {
    if (verdict.kind === 'ack') this.stats.acked++;
    else if (verdict.kind === 'retry') this.stats.retried++;
    else {
      this.stats.deadLettered++;
      this.#logger.warn('message dead-lettered', {
        messageId: message.messageId,
        target: message.target,
        reason: verdict.reason.code,
        description: verdict.reason.description,
        deliveryCount: message.deliveryCount,
      });
    }
    return verdict;
  }

  #decideInner(message: IncomingMessage, onReplyAddress: boolean): Verdict | Promise<Verdict> {
    const target = onReplyAddress ? 'reply' : message.target;
    if (target === undefined || target === '')
      return deadLetter('missing-target', 'the message carries no target');
    const route = this.#routes.get(target);
    if (!route) {
      if (this.#unknownTarget === 'dead-letter')
        return deadLetter('unknown-target', `no handler for target "${target}"`);
      this.stats.discarded++;
      if (!this.#unknownSeen.has(target)) {
        this.#unknownSeen.add(target);
        this.#logger.warn('no handler for target; message discarded (logged once per target)', {
          target,
          messageId: message.messageId,
        });
      }
      return ACK;
    }
    if (message.replyTo !== undefined && !this.#allow(message.replyTo)) {
      return deadLetter(
        'reply-not-allowed',
        `reply address "${message.replyTo}" is not in the reply allow-list`,
      );
    }
    let body: unknown;
    try {
      body = this.#codecs.decodeMessage(message, route.codec);
    } catch (err) {
      return deadLetter('undecodable', describeError(err));
    }
    if (route.schema) return this.#validated(message, target, route, route.schema, body);
    return this.#run(message, target, route, body);
  }

  async #validated(
    message: IncomingMessage,
    target: string,
    route: Route,
    schema: StandardSchema,
    decoded: unknown,
  ): Promise<Verdict> {
    let body: unknown;
    try {
      body = await validateBody(schema, decoded);
    } catch (err) {
      return deadLetter('schema-invalid', describeError(err));
    }
    return this.#run(message, target, route, body);
  }

  /** Runs the route's handlers in order; synchronous until a handler answers a promise. */
  #run(
    message: IncomingMessage,
    target: string,
    route: Route,
    body: unknown,
  ): Verdict | Promise<Verdict> {
    const properties = toProperties(message, target);
    const handlers = route.handlers;
    let replies: PendingReply[] | undefined;
    for (let i = 0; i < handlers.length; i++) {
      const { handler, replyTo } = handlers[i]!;
      let value: unknown;
      try {
        value = handler(properties, body);
      } catch (err) {
        return this.#failed(message, 'handler-failed', err);
      }
      if (isThenable(value))
        return this.#runAsync(message, properties, body, route, i, value, replies ?? []);
      if (value === undefined) continue;
      if (replies === undefined) replies = [{ value, replyTo }];
      else replies.push({ value, replyTo });
    }
    return replies === undefined ? ACK : this.#replied(message, replies);
  }

  /** {@link #run} from handler `i`, whose answer `first` is a promise, on. */
  async #runAsync(
    message: IncomingMessage,
    properties: Properties,
    body: unknown,
    route: Route,
    i: number,
    first: PromiseLike<unknown>,
    replies: PendingReply[],
  ): Promise<Verdict> {
    const handlers = route.handlers;
    try {
      let value = await first;
      for (;;) {
        if (value !== undefined) replies.push({ value, replyTo: handlers[i]!.replyTo });
        if (++i >= handlers.length) break;
        value = await handlers[i]!.handler(properties, body);
      }
    } catch (err) {
      return this.#failed(message, 'handler-failed', err);
    }
    return replies.length === 0 ? ACK : this.#replied(message, replies);
  }

  /** Sends the replies; the message counts as done once they are accepted. */
  async #replied(message: IncomingMessage, replies: readonly PendingReply[]): Promise<Verdict> {
    try {
      await this.#sendReplies(message, replies);
    } catch (err) {
      if (err instanceof CloudmomError && !err.retryable && err.code !== 'send-failed') {
        return deadLetter('reply-failed', describeError(err));
      }
      return this.#failed(message, 'reply-failed', err);
    }
    return ACK;
  }

  #failed(
    message: IncomingMessage,
    code: 'handler-failed' | 'reply-failed',
    err: unknown,
  ): Verdict {
    const description = describeError(err);
    if (message.deliveryCount >= this.#maxDeliveries) {
      return deadLetter(
        code,
        `${description} (delivery ${message.deliveryCount} of ${this.#maxDeliveries})`,
      );
    }
    this.#logger.info('handler failed; message left for redelivery', {
      messageId: message.messageId,
      target: message.target,
      deliveryCount: message.deliveryCount,
      error: description,
    });
    const delayMs = Math.min(this.#retryMax, this.#retryBase * 2 ** (message.deliveryCount - 1));
    return { kind: 'retry', delayMs, error: err };
  }

  async #sendReplies(
    message: IncomingMessage,
    replies: readonly { value: unknown; replyTo: string | undefined }[],
  ): Promise<void> {
    if (replies.length === 0) return;
    const correlationId = message.correlationId ?? message.messageId;
    const sends: Promise<string>[] = [];
    for (const { value, replyTo } of replies) {
      if (message.replyTo !== undefined) {
        sends.push(this.#enqueue(this.#encode(value, 'reply', { correlationId }, message.replyTo)));
      } else if (replyTo !== undefined) {
        sends.push(this.#enqueue(this.#encode(value, replyTo, { correlationId }, undefined)));
      } else {
        this.#logger.info('handler returned a value but there is no reply address; reply dropped', {
          target: message.target,
          messageId: message.messageId,
        });
      }
    }
    await Promise.all(sends);
    this.stats.repliesSent += sends.length;
  }

  #ensureReplyAddress(): Promise<string> {
    if (!this.#replyAddress) {
      const open = this.#transport.openReplyAddress;
      if (!open) {
        return Promise.reject(
          new InvalidArgumentError(
            `request() is not supported by the ${this.#transport.capabilities.name} transport`,
          ),
        );
      }
      this.#replyAddress = open.call(this.#transport, (m) => this.#deliverReply(m));
      this.#replyAddress.catch(() => {
        this.#replyAddress = undefined;
      });
    }
    return this.#replyAddress;
  }
}

/** The one ack verdict (verdicts are read-only). */
const ACK: Verdict = Object.freeze({ kind: 'ack' });

interface PendingReply {
  readonly value: unknown;
  readonly replyTo: string | undefined;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

function deadLetter(code: DeadLetterReason['code'], description: string): Verdict {
  return { kind: 'dead-letter', reason: { code, description } };
}

function toProperties(m: IncomingMessage, target: string): Properties {
  return {
    target,
    messageId: m.messageId,
    correlationId: m.correlationId,
    replyTo: m.replyTo,
    contentType: m.contentType ?? 'application/json',
    headers: m.headers,
    deliveryCount: m.deliveryCount,
    publishedAt: m.publishedAt,
    groupKey: m.groupKey,
    raw: m.raw,
  };
}

/** An encoded message and its wire size. */
interface Encoded {
  readonly message: OutgoingMessage;
  readonly size: number;
}

/** Default wire size: body plus attribute names and values, as SQS counts. */
export function defaultMeasure(m: OutgoingMessage): number {
  let n = m.body.byteLength + utf8Length(m.target) + m.contentType.length + 30;
  for (const k in m.headers) n += utf8Length(k) + utf8Length(m.headers[k]!);
  if (m.correlationId) n += utf8Length(m.correlationId) + 14;
  if (m.replyTo) n += utf8Length(m.replyTo) + 14;
  return n;
}

/** Bytes of a string in UTF-8, without encoding it (lone surrogates count as U+FFFD). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}

/** Builds the reply allow-list predicate. */
export function allowListMatcher(
  list: NonNullable<BrokerOptions['replyAllowList']>,
): (address: string) => boolean {
  if (typeof list === 'function') return list;
  if (!Array.isArray(list))
    throw new InvalidArgumentError('replyAllowList must be an array or a function');
  return (address) =>
    list.some((entry) =>
      typeof entry === 'string'
        ? entry.endsWith('*')
          ? address.startsWith(entry.slice(0, -1))
          : address === entry
        : entry.test(address),
    );
}
