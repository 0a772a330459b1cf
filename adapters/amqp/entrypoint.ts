/**
 * The Lambda entrypoint for Amazon MQ for RabbitMQ (`eventSource: "aws:rmq"`). The event
 * types are our own (no `@types/aws-lambda` at run time).
 *
 * This event source has no partial batch response: an invocation either succeeds — the
 * event source acknowledges the whole batch — or fails, and the batch goes back to the queue.
 * So `rmqHandler`:
 * - runs every message of the batch through the broker (routing, handlers, replies to
 *   `reply_to` through the broker's connection);
 * - dead-letters what can never succeed — poison (no target, undecodable), a schema failure,
 *   a handler failing on its `maxDeliveries`-th delivery — by publishing a copy with the
 *   reason to the broker's dead-letter exchange (confirmed) and counting it as done;
 * - resolves when every message is done, or throws {@link RmqBatchError} when one or more
 *   must be retried: the event source then returns the **whole** batch to the queue, and the
 *   messages that had succeeded are delivered (and handled) again — at-least-once, duplicates
 *   included. Keep batches small where handlers are not idempotent.
 *
 * Delivery counts come from quorum queues' `x-delivery-count` (Amazon MQ's RabbitMQ 3.13
 * has quorum queues); on a classic queue only `redelivered` is known (count 1 or 2), so a
 * failing message is retried until the queue's own limits stop it: use a quorum queue with
 * `x-delivery-limit` above `maxDeliveries` and `x-dead-letter-exchange` = the broker's
 * dead-letter exchange (infra/amqp/definitions.json).
 */
import type { Broker } from '../../src/broker.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { checkOptionKeys } from '../../src/util.ts';
import { fromWire } from './wire.ts';

/**
 * The AMQP properties of a message in an `aws:rmq` event. String header values arrive as
 * `{ bytes: [...] }` (Java bytes, signed); numbers and booleans as themselves.
 *
 * @example
 * ```ts
 * const p: RmqBasicProperties = { contentType: 'text/plain', headers: { target: { bytes: [104, 105] } }, deliveryMode: 2 };
 * ```
 */
export interface RmqBasicProperties {
  contentType?: string | null;
  contentEncoding?: string | null;
  headers?: Record<string, unknown> | null;
  deliveryMode?: number | null;
  priority?: number | null;
  correlationId?: string | null;
  replyTo?: string | null;
  expiration?: string | null;
  messageId?: string | null;
  /** As the event writes it, e.g. `"Jan 1, 1970, 12:33:41 AM"` (UTC). */
  timestamp?: string | null;
  type?: string | null;
  userId?: string | null;
  appId?: string | null;
  clusterId?: string | null;
  bodySize?: number | null;
}

/**
 * One message of an `aws:rmq` event: properties, the redelivered flag, the body in base64.
 *
 * @example
 * ```ts
 * const m: RmqMessage = { basicProperties: { contentType: 'application/json' }, redelivered: false, data: 'eyJhIjoxfQ==' };
 * ```
 */
export interface RmqMessage {
  basicProperties?: RmqBasicProperties | null;
  redelivered?: boolean | null;
  /** The body, base64. */
  data?: string | null;
}

/**
 * The event Lambda receives from an Amazon MQ for RabbitMQ event source mapping: messages by
 * `"<queue>::<virtual host>"`.
 *
 * @example
 * ```ts
 * const event: RmqEvent = {
 *   eventSource: 'aws:rmq',
 *   eventSourceArn: 'arn:aws:mq:us-west-2:111122223333:broker:test:b-9bcfa592-423a-4942-879d-eb284b418fc8',
 *   rmqMessagesByQueue: { 'orders::/': [{ basicProperties: { headers: { target: { bytes: [111] } } }, redelivered: false, data: 'Im8i' }] },
 * };
 * ```
 */
export interface RmqEvent {
  eventSource?: string;
  eventSourceArn?: string;
  rmqMessagesByQueue?: Record<string, RmqMessage[] | null | undefined> | null;
}

/**
 * Options of {@link rmqHandler}.
 *
 * @example
 * ```ts
 * export const handler = rmqHandler(broker, { ordered: true });
 * ```
 */
export interface RmqHandlerOptions {
  /**
   * Handle messages with the same group key (`group_key` header) one at a time, in batch
   * order; a failure releases the later ones of its key. Default false.
   */
  ordered?: boolean;
}

const OPTION_KEYS = ['ordered'] as const satisfies readonly (keyof RmqHandlerOptions)[];

/**
 * Thrown by the handler when messages of the batch must be retried: Lambda reports the
 * invocation failed, and the event source returns the batch to the queue.
 *
 * @example
 * ```ts
 * try { await handler(event); } catch (e) { if (e instanceof RmqBatchError) console.log(e.failed, e.total); }
 * ```
 */
export class RmqBatchError extends Error {
  /** Messages to retry. */
  readonly failed: number;
  /** Messages in the batch. */
  readonly total: number;
  constructor(failed: number, total: number, first: unknown) {
    super(
      `${failed} of ${total} messages failed; the batch goes back to the queue (first error: ${describeError(first)})`,
      { cause: first },
    );
    this.name = 'RmqBatchError';
    this.failed = failed;
    this.total = total;
  }
}

/**
 * Turns an `aws:rmq` event into messages for the core: base64 bodies decoded, header values
 * (`{bytes: [...]}`) as text, the queue (from `"<queue>::<vhost>"`) as source. A message whose
 * body is not base64 text is marked poison (`undecodable`).
 *
 * @example
 * ```ts
 * const messages = rmqMessages(event); // one IncomingMessage per record, in event order
 * ```
 */
export function rmqMessages(event: RmqEvent): IncomingMessage[] {
  const out: IncomingMessage[] = [];
  for (const [key, list] of Object.entries(event.rmqMessagesByQueue ?? {})) {
    if (!Array.isArray(list)) continue;
    const cut = key.lastIndexOf('::');
    const queue = cut < 0 ? key : key.slice(0, cut);
    for (const record of list) out.push(fromRecord(record, queue));
  }
  return out;
}

function fromRecord(record: RmqMessage, queue: string): IncomingMessage {
  const p = record?.basicProperties ?? {};
  const data = record?.data;
  const body = typeof data === 'string' ? Buffer.from(data, 'base64') : new Uint8Array(0);
  const m = fromWire(
    {
      body,
      redelivered: record?.redelivered === true,
      contentType: p.contentType,
      correlationId: p.correlationId,
      replyTo: p.replyTo,
      messageId: p.messageId,
      timestamp: p.timestamp,
      headers: p.headers,
    },
    record,
    { fallbackId: () => globalThis.crypto.randomUUID(), source: queue },
  );
  if (typeof data !== 'string')
    return { ...m, poison: { code: 'undecodable', description: 'the record has no base64 data' } };
  return m;
}

/**
 * The Lambda handler for Amazon MQ for RabbitMQ: dispatches each message of the batch by its
 * target, sends replies and dead-letter copies through the broker's connection, and throws
 * {@link RmqBatchError} when a message must be retried (see the module comment for what
 * that means for the rest of the batch).
 *
 * @example
 * ```ts
 * import { AmqpBroker, rmqHandler } from 'cloudmom/amqp';
 * const broker = new AmqpBroker({ url: process.env.AMQP_URL, exchange: 'cloudmom' });
 * broker.add('orders', async (properties, body) => ({ accepted: body.id }));
 * export const handler = rmqHandler(broker);
 * ```
 */
export function rmqHandler(
  broker: Broker,
  options: RmqHandlerOptions = {},
): (event: RmqEvent, context?: unknown) => Promise<void> {
  checkOptionKeys(options, OPTION_KEYS, 'rmqHandler');
  const ordered = options.ordered ?? false;
  const logger = loggerOf(broker);
  return async (event) => {
    if (
      !event ||
      typeof event !== 'object' ||
      event.eventSource !== 'aws:rmq' ||
      !event.rmqMessagesByQueue
    ) {
      logger.error('rmqHandler: not an aws:rmq event', { eventSource: String(event?.eventSource) });
      throw new InvalidArgumentError(
        'rmqHandler: the event is not an Amazon MQ for RabbitMQ (aws:rmq) event',
      );
    }
    const messages = rmqMessages(event);
    if (messages.length === 0) return;
    const verdicts: Verdict[] = await dispatch(broker, messages, { ordered, deadLetter: 'copy' });
    let failed = 0;
    let first: unknown;
    for (const v of verdicts) {
      if (v.kind === 'ack') continue;
      failed++;
      first ??= v.kind === 'retry' ? v.error : new Error(`dead-letter: ${v.reason.code}`);
    }
    if (failed > 0) {
      logger.warn('rmqHandler: messages failed; the batch goes back to the queue', {
        failed,
        total: messages.length,
      });
      throw new RmqBatchError(failed, messages.length, first);
    }
  };
}
