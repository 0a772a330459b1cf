/**
 * The broker's public types and options: what a handler sees, what publish, request and add
 * take, and the options every broker shares.
 */
import type { Codec } from './codec.ts';
import type { Logger } from './log.ts';
import type { StandardSchema } from './schema.ts';

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
  /**
   * When the message was published, where the platform says. Computed when first read (it
   * costs a `Date` per message otherwise), so `{ ...properties }` does not copy it; read it
   * by name, or use `JSON.stringify(properties)`, which includes it.
   */
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
 * One message of `broker.publishBatch(entries)`: its body and target, and any option of
 * `publish` beside them.
 *
 * @example
 * ```ts
 * const entries: PublishEntry[] = [
 *   { body: { id: 1 }, target: 'orders' },
 *   { body: { id: 2 }, target: 'orders', correlationId: 'c-2', groupKey: 'customer-7' },
 * ];
 * const ids = await broker.publishBatch(entries);
 * ```
 */
export interface PublishEntry extends PublishOptions {
  /** The body, as `publish` takes it. */
  body: unknown;
  /** The target, as `publish` takes it (required here). */
  target: string;
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
