/**
 * The Cloudflare Queues broker: the core plus a transport over producer bindings
 * (`env.QUEUE.send` / `sendBatch`). Workers are push-only — the runtime calls the Worker's
 * `queue()` export with batches and a Worker cannot hold a pull on a queue — so the transport
 * has no long-running sources (`start()` consumes nothing) and no reply address of its own
 * (`request()` is refused). Consumption is {@link queueHandler} in `entrypoint.ts`.
 */
import { BROKER_OPTION_KEYS, Broker, type BrokerOptions } from '../../src/broker.ts';
import { InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';
import { type Logger, silentLogger } from '../../src/log.ts';
import type {
  Capabilities,
  IncomingMessage,
  OutgoingMessage,
  SendOutcome,
  Transport,
} from '../../src/transport.ts';
import { SENT } from '../../src/transport.ts';
import { checkNonEmpty, checkOptionKeys, pick } from '../../src/util.ts';
import { encode, LIMITS, measure, validate } from './wire.ts';

/** The queue content types a producer binding accepts. cloudmom sends `json` (the envelope). */
export type QueueContentType = 'text' | 'bytes' | 'json' | 'v8';

/**
 * A producer binding (`env.MY_QUEUE`, declared under `queues.producers` in wrangler.toml), as
 * far as cloudmom uses it; the runtime's `Queue` type fits. Miniflare's `getQueueProducer()`
 * gives one to Node code too.
 *
 * @example
 * ```ts
 * export default { async fetch(req: Request, env: { QUEUE: QueueBinding }) { await env.QUEUE.send({ hi: 1 }); return new Response('ok'); } };
 * ```
 */
export interface QueueBinding {
  /** Sends one message (`contentType` default `json`; `delaySeconds` ≤ 43 200). */
  send(
    body: unknown,
    options?: { contentType?: QueueContentType; delaySeconds?: number },
  ): Promise<unknown>;
  /** Sends up to 100 messages (256 KB) in one call, all or none. */
  sendBatch(
    messages: Iterable<{ body: unknown; contentType?: QueueContentType; delaySeconds?: number }>,
    options?: { delaySeconds?: number },
  ): Promise<unknown>;
}

/**
 * Options of {@link CloudflareQueueBroker}: the core's, plus the producer bindings.
 *
 * @example
 * ```ts
 * new CloudflareQueueBroker({ queue: env.QUEUE, deadLetterQueue: env.DEAD_LETTERS, replyQueues: { 'cloudmom-replies': env.REPLIES } });
 * ```
 */
export interface CloudflareQueueBrokerOptions extends BrokerOptions {
  /** Producer binding of the broker's queue: where `publish()` sends. Required. */
  queue: QueueBinding;
  /**
   * Producer binding of the dead-letter queue, where cloudmom sends a copy (with
   * `dead_letter_reason`) of a message that can never succeed and then acknowledges it.
   * Default: none — such a message is then retried until the consumer's `max_retries` moves
   * it to the queue's `dead_letter_queue`, without a reason (logged once).
   */
  deadLetterQueue?: QueueBinding;
  /**
   * Reply addresses this Worker may answer, each with its producer binding: a handler's reply
   * to a message whose `reply_to` is `"cloudmom-replies"` goes through
   * `replyQueues['cloudmom-replies']`. Use the queue names as keys so producers and consumers
   * agree. The names are also the default `replyAllowList`. Default: none (replies go only to
   * `add()` targets, published on `queue`).
   */
  replyQueues?: Readonly<Record<string, QueueBinding>>;
  /** The queue's name, for logs and dead-letter copies (`source`). Default `"queue"`. */
  queueName?: string;
}

export const CLOUDFLARE_KEYS = ['queue', 'deadLetterQueue', 'replyQueues', 'queueName'] as const;

type OwnOptions = Pick<CloudflareQueueBrokerOptions, (typeof CLOUDFLARE_KEYS)[number]>;

const HAS_IMMEDIATE =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function' &&
  typeof (globalThis as { clearImmediate?: unknown }).clearImmediate === 'function';

/** The address dead-letter copies are sent to; no queue name can look like it. */
export const DEAD_LETTER_ADDRESS = '#dead-letter';

function isBinding(v: unknown): v is QueueBinding {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as QueueBinding).send === 'function' &&
    typeof (v as QueueBinding).sendBatch === 'function'
  );
}

/** Send failures a later attempt may not see (throttling, internal or network errors). */
const RETRYABLE =
  /too many requests|rate limit|internal error|\((?:10201|15000)\)|network|connection|timed? ?out|unavailable|overloaded|disconnected/i;

/**
 * The Cloudflare Queues transport: sends envelopes through producer bindings; nothing to
 * receive (the Worker runtime pushes batches into `queue()`).
 */
export class CloudflareQueueTransport implements Transport {
  readonly capabilities: Capabilities;
  readonly #queue: QueueBinding;
  readonly #deadLetters: QueueBinding | undefined;
  readonly #replies: ReadonlyMap<string, QueueBinding>;
  readonly queueName: string;
  #logger: Logger = silentLogger;
  #warnedNoDeadLetter = false;
  #closed = false;

  constructor(options: OwnOptions) {
    if (!isBinding(options.queue))
      throw new InvalidArgumentError(
        'CloudflareQueueBroker: `queue` must be a producer binding (env.QUEUE: send and sendBatch)',
      );
    if (options.deadLetterQueue !== undefined && !isBinding(options.deadLetterQueue))
      throw new InvalidArgumentError(
        'CloudflareQueueBroker: `deadLetterQueue` must be a producer binding',
      );
    const replies = new Map<string, QueueBinding>();
    if (options.replyQueues !== undefined) {
      if (options.replyQueues === null || typeof options.replyQueues !== 'object')
        throw new InvalidArgumentError(
          'CloudflareQueueBroker: `replyQueues` must map reply addresses to producer bindings',
        );
      for (const [name, binding] of Object.entries(options.replyQueues)) {
        if (name === '' || name === DEAD_LETTER_ADDRESS || !isBinding(binding))
          throw new InvalidArgumentError(
            `CloudflareQueueBroker: replyQueues["${name}"] must be a producer binding under a non-empty name`,
          );
        replies.set(name, binding);
      }
    }
    if (options.queueName !== undefined)
      checkNonEmpty(options.queueName, 'CloudflareQueueBroker: `queueName`');
    this.#queue = options.queue;
    this.#deadLetters = options.deadLetterQueue;
    this.#replies = replies;
    this.queueName = options.queueName ?? 'queue';
    this.capabilities = {
      name: 'cloudflare-queues',
      maxMessageBytes: LIMITS.messageBytes,
      measure,
      // The core's batcher schedules with setImmediate and clears with clearImmediate, which
      // workerd has only with nodejs_compat; without them, every publish is its own send call
      // (a batch of one is flushed at once and needs no timer).
      maxBatchMessages: HAS_IMMEDIATE ? LIMITS.batchMessages : 1,
      maxBatchBytes: LIMITS.batchBytes,
      batchLingerMs: 0,
      ordering: false,
      maxDelaySeconds: LIMITS.maxDelaySeconds,
      nackDelay: true,
      deadLetter: 'copy',
      request: false,
      defaultReplyAllowList: [...replies.keys()],
    };
  }

  /** The producer binding of the broker's queue. */
  get client(): QueueBinding {
    return this.#queue;
  }

  attach(context: { logger: Logger }): void {
    this.#logger = context.logger;
  }

  validate(message: OutgoingMessage): void {
    validate(message);
    const d = message.destination;
    if (d !== undefined && d !== DEAD_LETTER_ADDRESS && !this.#replies.has(d))
      throw new InvalidMessageError(
        `no producer binding for the address "${d}" (CloudflareQueueBroker option replyQueues)`,
      );
  }

  async send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    if (this.#closed) {
      const error = new Error('the Cloudflare Queues transport is closed (the broker stopped)');
      return batch.map(() => ({ ok: false, error }));
    }
    const destination = batch[0]?.destination;
    const binding = this.#binding(destination);
    if (!binding) {
      const error = new Error(
        destination === DEAD_LETTER_ADDRESS
          ? 'no dead-letter queue binding (CloudflareQueueBroker option deadLetterQueue)'
          : `no producer binding for the address "${destination}" (CloudflareQueueBroker option replyQueues)`,
      );
      return batch.map(() => ({ ok: false, error }));
    }
    try {
      if (batch.length === 1) {
        const m = batch[0]!;
        await binding.send(
          encode(m).envelope,
          m.delaySeconds === undefined
            ? { contentType: 'json' }
            : { contentType: 'json', delaySeconds: m.delaySeconds },
        );
      } else {
        await binding.sendBatch(
          batch.map((m) =>
            m.delaySeconds === undefined
              ? { body: encode(m).envelope, contentType: 'json' as const }
              : {
                  body: encode(m).envelope,
                  contentType: 'json' as const,
                  delaySeconds: m.delaySeconds,
                },
          ),
        );
      }
    } catch (error) {
      return batch.map(() => ({ ok: false, error }));
    }
    return batch.map(() => SENT);
  }

  deadLetterAddress(_message: IncomingMessage): string {
    if (!this.#deadLetters && !this.#warnedNoDeadLetter) {
      this.#warnedNoDeadLetter = true;
      this.#logger.warn(
        'no deadLetterQueue binding: messages that cannot succeed are retried until the queue moves them to its dead_letter_queue (without a reason)',
        { queue: this.queueName },
      );
    }
    return DEAD_LETTER_ADDRESS;
  }

  isRetryable(err: unknown): boolean {
    const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    return RETRYABLE.test(text);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #binding(destination: string | undefined): QueueBinding | undefined {
    if (destination === undefined) return this.#queue;
    if (destination === DEAD_LETTER_ADDRESS) return this.#deadLetters;
    return this.#replies.get(destination);
  }
}

/**
 * A broker on Cloudflare Queues, for Workers: `publish()` sends through the queue's producer
 * binding (auto-batched, up to 100 messages or 256 KB per `sendBatch`, 128 KB a message
 * measured on the envelope; `delaySeconds` up to 12 h); handlers run when the Worker's
 * `queue()` export — {@link queueHandler} — receives batches; replies go through the producer
 * bindings named in `replyQueues`; dead-letter copies through `deadLetterQueue`.
 *
 * Workers are push-only: `start()` consumes nothing (the runtime pushes batches), and
 * `request()` is refused (a Worker cannot wait on a reply queue).
 *
 * @example
 * ```ts
 * import { CloudflareQueueBroker, queueHandler } from 'cloudmom/cloudflare';
 * export default {
 *   async fetch(req: Request, env: Env) {
 *     await broker(env).publish(await req.json(), 'orders');
 *     return new Response('queued', { status: 202 });
 *   },
 *   queue: (batch: MessageBatch, env: Env, ctx: ExecutionContext) => queueHandler(broker(env))(batch, env, ctx),
 * };
 * ```
 */
export class CloudflareQueueBroker extends Broker {
  readonly #transport: CloudflareQueueTransport;

  constructor(options: CloudflareQueueBrokerOptions) {
    checkOptionKeys(options, [...BROKER_OPTION_KEYS, ...CLOUDFLARE_KEYS], 'CloudflareQueueBroker');
    if (options === undefined || options === null)
      throw new InvalidArgumentError('CloudflareQueueBroker: options with `queue` are required');
    const [own, core] = pick(options, CLOUDFLARE_KEYS);
    const transport = new CloudflareQueueTransport(own);
    super(transport, core);
    this.#transport = transport;
  }

  /** The producer binding of the broker's queue (`env.QUEUE`). */
  override get client(): QueueBinding {
    return this.#transport.client;
  }

  /** The queue's name (option `queueName`). */
  get queueName(): string {
    return this.#transport.queueName;
  }
}
