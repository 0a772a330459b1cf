/**
 * The broker's core: the public API over a transport — publish, add, the one call of function
 * entrypoints (dispatch), stop — with the long-running side (start()'s receive loop and
 * request()'s pending table, in long-running.ts) attached by {@link Broker} and left out by
 * the function-side brokers (`cloudmom/aws/lambda`), so a function bundle does not carry it.
 * The parts live in their own modules — options and types (options.ts), publishing
 * (publisher.ts), routing and handlers (router.ts), the per-message path (per-message.ts) —
 * and this class wires them together.
 */
import type { Body } from './codec.ts';
import { CodecRegistry } from './codec.ts';
import { BrokerStoppedError, InvalidArgumentError } from './errors.ts';
import { jsonLogger, type Logger, silentLogger } from './log.ts';
import {
  type AddOptions,
  BROKER_OPTION_KEYS,
  type BrokerOptions,
  type BrokerStats,
  type Handler,
  type PublishOptions,
  type Reply,
  type RequestOptions,
} from './options.ts';
import {
  type Decide,
  OrderGate,
  RELEASED_BY_GROUP,
  retryNow,
  type SettleContext,
  sendDeadLetterCopy,
  withSlot,
} from './per-message.ts';
import { Publisher } from './publisher.ts';
import { Router } from './router.ts';
import type {
  Capabilities,
  IncomingMessage,
  OutgoingMessage,
  Transport,
  Verdict,
} from './transport.ts';
import { checkNumber, checkOneOf, checkOptionKeys, EMPTY, Idle, Semaphore } from './util.ts';

/** The options of a publish that gave none (one object for all of them). */
const NO_OPTIONS: PublishOptions = EMPTY;

/** Internal handle used by the platform entrypoints and tests; not part of the public API. */
export const INTERNALS: unique symbol = Symbol('cloudmom.internals');

/** Options of the one call an entrypoint makes (see src/entrypoint.ts). */
export interface DispatchOptions {
  /** One at a time per group key, a failure releasing the rest of its key. Default false. */
  readonly ordered?: boolean;
  /**
   * `copy` (default where the transport dead-letters by copy): the core sends the dead-letter
   * copy and answers `ack`. `native`: the core answers `dead-letter` and the entrypoint
   * settles it with the platform.
   */
  readonly deadLetter?: 'native' | 'copy';
}

/**
 * The core's parts (what its long-running side is given) and the entrypoints' one call.
 * Entrypoints never touch the transport (`transport` is for the long-running side, tests and
 * conformance).
 */
export interface BrokerInternals extends CoreParts {
  /** Decoded messages in, one verdict per message out (same order). */
  dispatch(
    messages: readonly IncomingMessage[],
    options: DispatchOptions,
  ): Verdict[] | Promise<Verdict[]>;
}

/**
 * What the core hands its long-running side (long-running.ts); also what settling a message
 * needs (its transport, publisher, logger and `stopping` signal, which aborts when stop()
 * begins).
 */
export interface CoreParts extends SettleContext {
  readonly codecs: CodecRegistry;
  readonly router: Router;
  readonly stats: BrokerStats;
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  /** One message under a handler slot: route, handlers, replies. */
  readonly decide: Decide;
  /** Messages in the core's hands, which stop() drains. */
  readonly inflight: Idle;
  /**
   * Whether stop() has begun. (Not `stopping.aborted`: an AbortSignal is an I/O object
   * in workerd, and a broker shared by a Worker's requests must not read one made in another.)
   */
  readonly stopped: () => boolean;
  /** Whether stop() has ended (publishing is refused from then on; during stop() it is not). */
  readonly closed: () => boolean;
  /** The long-running side, once {@link Broker}'s `start()` or `request()` made it; stop() stops it. */
  longRunning?: LongRunning;
}

/** `start()` and `request()`: consumers of the transport's sources, and pending requests. */
export interface LongRunning {
  /** Opens the transport's sources and consumes them (once; again after a failed start). */
  start(): Promise<void>;
  request(body: Body, target: string, options: RequestOptions): Promise<Reply>;
  /** Stops receiving; what is in hand finishes (stop() then waits for the core's in-flight). */
  stopConsumers(): Promise<void>;
  /** Fails pending requests and stops the reply address's consumer. */
  stopRequests(): Promise<void>;
}

/**
 * The broker without its long-running side: publish, add, dispatch from a function
 * entrypoint, stop. {@link Broker} (what every platform broker extends) adds `start()`,
 * `request()` and `publishBatch()`; the function-side brokers (`SqsBroker` and `SnsBroker` of
 * `cloudmom/aws/lambda`) are a `BrokerCore` and no more. Code that works on both kinds (a
 * function that registers handlers) takes a `BrokerCore`.
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws/lambda'; // a BrokerCore
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL! });
 * broker.add('hello', () => 'Hi there too');
 * export const handler = lambdaHandler(broker);
 * ```
 */
export class BrokerCore {
  readonly #transport: Transport;
  readonly #publisher: Publisher;
  readonly #router: Router;
  readonly #logger: Logger;
  /** Messages in the core's hands (loop and entrypoints): what stop() drains. */
  readonly #inflight = new Idle();
  readonly #stopSignal = new AbortController();
  /** The core's parts, for the long-running side and the entrypoints ({@link INTERNALS}). */
  readonly #internals: BrokerInternals;
  /** 0 running, 1 stopping (stop() has begun), 2 stopped. */
  #state: 0 | 1 | 2 = 0;
  #stopping: Promise<void> | undefined;
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

  /**
   * cloudmom's brokers call this with their transport (a broker of your own extends `Broker`).
   * `measure`: the wire size where the transport has no `capabilities.measure` ({@link Broker}
   * passes `defaultMeasure`).
   * @internal
   */
  protected constructor(
    transport: Transport,
    options: BrokerOptions,
    measure?: (m: OutgoingMessage) => number,
  ) {
    checkOptionKeys(options, BROKER_OPTION_KEYS, this.constructor.name);
    const stats = this.stats;
    const codecs = new CodecRegistry(options.codecs);
    const logger = options.logger === false ? silentLogger : (options.logger ?? jsonLogger());
    const concurrency = checkNumber(options.concurrency ?? 10, 'concurrency');
    const requestTimeoutMs = checkNumber(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs');
    checkOptionKeys(options.retry, ['baseDelayMs', 'maxDelayMs'], 'retry');
    const retryBaseMs = checkNumber(options.retry?.baseDelayMs ?? 1000, 'retry.baseDelayMs', 0);
    const retryMaxMs = checkNumber(options.retry?.maxDelayMs ?? 60_000, 'retry.maxDelayMs', 0);
    const unknownTarget = checkOneOf(
      options.unknownTarget ?? 'discard',
      ['discard', 'dead-letter'] as const,
      'unknownTarget',
    );
    const slots = new Semaphore(concurrency);
    const publisher = new Publisher(transport, codecs, options.batch, stats, measure);
    const router = new Router({
      codecs,
      publisher,
      logger,
      stats,
      allow: allowListMatcher(
        options.replyAllowList ?? transport.capabilities.defaultReplyAllowList,
      ),
      maxDeliveries: checkNumber(options.maxDeliveries ?? 5, 'maxDeliveries'),
      retryBaseMs,
      retryMaxMs,
      unknownTarget,
      ordering: transport.capabilities.ordering,
    });
    const handle = (m: IncomingMessage) => router.handle(m);
    this.#transport = transport;
    this.#publisher = publisher;
    this.#router = router;
    this.#logger = logger;
    this.#internals = {
      transport,
      codecs,
      publisher,
      router,
      logger,
      stats,
      concurrency,
      requestTimeoutMs,
      decide: (m) => withSlot(slots, handle, m),
      stopping: this.#stopSignal.signal,
      inflight: this.#inflight,
      stopped: () => this.#state > 0,
      closed: () => this.#state > 1,
      dispatch: (messages, opts) => this.#dispatch(messages, opts),
    };
    transport.attach?.({ logger });
  }

  /** The platform's native client (SQS, Service Bus, Pub/Sub...), for what cloudmom does not cover. */
  get client(): unknown {
    return this.#transport.client;
  }

  /** What the platform can do and its limits (ordering, delay, sizes, dead-lettering). */
  get capabilities(): Capabilities {
    return this.#transport.capabilities;
  }

  /** Most handlers running at once. */
  get concurrency(): number {
    return this.#internals.concurrency;
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
      if (this.#state > 1) throw new BrokerStoppedError('publish');
      const options: PublishOptions =
        typeof third === 'string' ? { correlationId: third } : (third ?? NO_OPTIONS);
      return this.#publisher.enqueue(this.#publisher.encode(body, target, options));
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
    this.#router.add(target, handler, replyTo);
    return this;
  }

  /**
   * Stops consuming, lets in-flight handlers finish and settles their messages, sends what is
   * still buffered, fails pending requests, then closes. Publishing afterwards is refused.
   * Calling it again (or concurrently) waits for the same stop.
   *
   * @example
   * ```ts
   * await broker.stop();
   * ```
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#state = 1;
    this.#stopSignal.abort();
    // made by Broker's start() or request(), never once stop() has begun
    const side = this.#internals.longRunning;
    await side?.stopConsumers();
    await this.#inflight.wait();
    await this.#publisher.flush();
    if (side) {
      await side.stopRequests();
      await this.#publisher.flush();
    }
    this.#state = 2;
    try {
      await this.#transport.close();
    } finally {
      this.#logger.info('broker stopped', {
        transport: this.#transport.capabilities.name,
        ...this.stats,
      });
    }
  }

  /** @internal entrypoints' access; see {@link BrokerInternals}. */
  get [INTERNALS](): BrokerInternals {
    return this.#internals;
  }

  /**
   * The entrypoint path: every message started at once (the slots bound how many run; in order
   * within a group key when `ordered`), synchronous when every message was.
   */
  #dispatch(
    messages: readonly IncomingMessage[],
    options: DispatchOptions,
  ): Verdict[] | Promise<Verdict[]> {
    const copy = (options.deadLetter ?? this.#transport.capabilities.deadLetter) === 'copy';
    const gate = options.ordered ? new OrderGate() : undefined;
    const results: Verdict[] = new Array(messages.length);
    let pending: Promise<void>[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      this.#inflight.enter();
      let r: Verdict | Promise<Verdict>;
      try {
        r = gate
          ? gate.run(m, () => this.#dispatchOne(m, copy), releasedByGroup)
          : this.#dispatchOne(m, copy);
      } catch (err) {
        r = retryNow(err);
      }
      if (r instanceof Promise) {
        const done = r.then(
          (v) => {
            results[i] = v;
            this.#inflight.leave();
          },
          (err: unknown) => {
            results[i] = retryNow(err);
            this.#inflight.leave();
          },
        );
        if (pending === undefined) pending = [done];
        else pending.push(done);
      } else {
        results[i] = r;
        this.#inflight.leave();
      }
    }
    return pending ? Promise.all(pending).then(() => results) : results;
  }

  #dispatchOne(m: IncomingMessage, copy: boolean): Verdict | Promise<Verdict> {
    const v = this.#internals.decide(m);
    if (v instanceof Promise) return v.then((x) => this.#finish(m, x, copy));
    return this.#finish(m, v, copy);
  }

  #finish(m: IncomingMessage, v: Verdict, copy: boolean): Verdict | Promise<Verdict> {
    if (v.kind !== 'dead-letter' || !copy) return v;
    return sendDeadLetterCopy(this.#internals, m, v.reason);
  }
}

const releasedByGroup = () => RELEASED_BY_GROUP;

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
