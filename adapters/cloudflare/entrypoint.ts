/**
 * The Worker entrypoint: `queueHandler(broker)` is the Worker's `queue(batch, env, ctx)`
 * export. It decodes each message's envelope, hands the batch to the core in one call
 * (`dispatch`: routing, handlers, replies, dead-letter copies), and settles every message on
 * its own from the core's verdict — `ack()`, or `retry({ delaySeconds })` with the core's
 * backoff — never `retryAll()` for one failure, and it never throws (a throw from `queue()`
 * would redeliver the whole batch).
 */
import type { Broker } from '../../src/broker.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { checkOptionKeys } from '../../src/util.ts';
import { fromQueueMessage, LIMITS, type QueueMessage } from './wire.ts';

/** A message of a batch, as the Workers runtime hands it to `queue()` (its `Message`). */
export interface QueueBatchMessage<Body = unknown> extends QueueMessage<Body> {
  /** Acknowledges this message (the first settle call on a message wins). */
  ack(): void;
  /** Redelivers this message, after `delaySeconds` (default: the consumer's `retry_delay`). */
  retry(options?: { delaySeconds?: number }): void;
}

/** The batch the Workers runtime hands to `queue()` (its `MessageBatch`), as cloudmom reads it. */
export interface QueueBatch<Body = unknown> {
  /** The queue's name. */
  readonly queue: string;
  readonly messages: readonly QueueBatchMessage<Body>[];
  /** Acknowledges every message not settled on its own (cloudmom never calls it). */
  ackAll(): void;
  /** Redelivers every message not settled on its own (cloudmom never calls it). */
  retryAll(options?: { delaySeconds?: number }): void;
}

/**
 * Options of {@link queueHandler}.
 *
 * @example
 * ```ts
 * queueHandler(broker, { minRetryDelaySeconds: 5 });
 * ```
 */
export interface QueueHandlerOptions {
  /**
   * Lower bound of the delay of a retried message, in seconds (the core's backoff is in
   * milliseconds; Cloudflare's in whole seconds). Default 0: the core's backoff, rounded up.
   */
  minRetryDelaySeconds?: number;
}

const OPTION_KEYS = ['minRetryDelaySeconds'];

/**
 * The Worker's `queue()` handler for a {@link CloudflareQueueBroker}: each message of the
 * batch goes to the handlers of its target; it is acknowledged after its handlers ran and
 * their replies were sent, retried with the core's backoff when a handler threw
 * (`deliveryCount` is the message's `attempts`), and a message that can never succeed (not an
 * envelope, undecodable, failing its schema, out of retries) is copied to the
 * `deadLetterQueue` binding with its reason, then acknowledged.
 *
 * @example
 * ```ts
 * import { CloudflareQueueBroker, queueHandler } from 'cloudmom/cloudflare';
 * let broker: CloudflareQueueBroker | undefined;
 * const brokerFor = (env: Env) =>
 *   (broker ??= new CloudflareQueueBroker({ queue: env.QUEUE, deadLetterQueue: env.DEAD_LETTERS })
 *     .add('orders', async (properties, order) => { await save(order); }));
 * export default {
 *   queue: (batch: MessageBatch, env: Env, ctx: ExecutionContext) => queueHandler(brokerFor(env))(batch, env, ctx),
 * };
 * ```
 */
export function queueHandler(
  broker: Broker,
  options: QueueHandlerOptions = {},
): (batch: QueueBatch, env?: unknown, ctx?: unknown) => Promise<void> {
  checkOptionKeys(options, OPTION_KEYS, 'queueHandler');
  const minDelay = options.minRetryDelaySeconds ?? 0;
  if (!Number.isInteger(minDelay) || minDelay < 0 || minDelay > LIMITS.maxDelaySeconds)
    throw new InvalidArgumentError(
      `queueHandler: minRetryDelaySeconds must be an integer from 0 to ${LIMITS.maxDelaySeconds}`,
    );
  const logger = loggerOf(broker);

  return async function queue(batch: QueueBatch): Promise<void> {
    const list = batch?.messages;
    if (!Array.isArray(list)) {
      logger.error('queue() called without a batch of messages; nothing to settle');
      return;
    }
    const source = typeof batch.queue === 'string' ? batch.queue : undefined;
    const messages: IncomingMessage[] = new Array(list.length);
    for (let i = 0; i < list.length; i++)
      messages[i] = fromQueueMessage(list[i]!, { source, raw: list[i] });
    let verdicts: Verdict[];
    try {
      verdicts = await dispatch(broker, messages);
    } catch (err) {
      // The core answers verdicts, it does not throw; if it ever did, retry each message.
      logger.error('dispatch failed; the batch is retried message by message', {
        queue: source,
        error: describeError(err),
      });
      for (const m of list) settle(m, { kind: 'retry', delayMs: 0, error: err });
      return;
    }
    for (let i = 0; i < list.length; i++) settle(list[i]!, verdicts[i]);
  };

  function settle(m: QueueBatchMessage, v: Verdict | undefined): void {
    try {
      if (v?.kind === 'ack') m.ack();
      else if (v?.kind === 'retry') m.retry({ delaySeconds: delaySeconds(v.delayMs) });
      else {
        // `dead-letter` comes only with deadLetter: 'native', which this entrypoint never asks.
        logger.error('no usable verdict for a message; it is retried', {
          messageId: m.id,
          verdict: v?.kind,
        });
        m.retry({ delaySeconds: minDelay });
      }
    } catch (err) {
      logger.warn('settling a message failed; the runtime will redeliver it', {
        messageId: m?.id,
        error: describeError(err),
      });
    }
  }

  function delaySeconds(delayMs: number): number {
    const s = Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs / 1000) : 0;
    return Math.min(LIMITS.maxDelaySeconds, Math.max(minDelay, s));
  }
}
