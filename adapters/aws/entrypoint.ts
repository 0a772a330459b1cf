/**
 * The Lambda entrypoint: SQS events (partial batch response), SNS envelopes carried in SQS
 * bodies, and SNS events (topic → function). It decodes records (wire.ts), hands them to the
 * core with `dispatch()`, and answers Lambda from one verdict per record; it never touches a
 * transport. `@middy/core` is loaded only when a middleware is added (`.use()` and friends).
 */
import type { BrokerCore } from '../../src/broker-core.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import { peerMissing } from '../../src/peer.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { checkOneOf, checkOptionKeys } from '../../src/util.ts';
import { fromSqsRecord, type SnsRecord, type SqsRecord } from './wire.ts';

export type { SnsRecord, SqsRecord, SqsRecordAttribute } from './wire.ts';

/** Where a broker that takes SNS events keeps their handling (set by adapters/aws/sns-events.ts). */
export const SNS_EVENTS: unique symbol = Symbol('cloudmom.snsEvents');

/** What a failing SNS record becomes (`LambdaHandlerOptions.snsFailure`). */
export type SnsFailure = 'dead-letter' | 'retry';

/** Dispatches the records of an SNS event; throws (Lambda retries) when one failed. */
export type SnsEvents = (
  broker: BrokerCore,
  records: readonly unknown[],
  snsFailure: SnsFailure,
) => undefined | Promise<undefined>;

/**
 * A Lambda event from SQS.
 * @example
 * ```ts
 * const event: SqsEvent = { Records: [record] };
 * ```
 */
export interface SqsEvent {
  Records: SqsRecord[];
}

/**
 * A Lambda event from SNS.
 * @example
 * ```ts
 * const event: SnsEvent = { Records: [snsRecord] };
 * ```
 */
export interface SnsEvent {
  Records: SnsRecord[];
}

/**
 * The partial batch response (the event source mapping needs `ReportBatchItemFailures`).
 * @example
 * ```ts
 * const response: SqsBatchResponse = { batchItemFailures: [{ itemIdentifier: 'm1' }] };
 * ```
 */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * Options of {@link lambdaHandler}.
 *
 * @example
 * ```ts
 * export const handler = lambdaHandler(broker, { ordered: 'auto', snsFailure: 'dead-letter' });
 * ```
 */
export interface LambdaHandlerOptions {
  /**
   * Process records of one message group one after the other, a failure failing the rest of
   * its group: `'auto'` (default) does so for FIFO sources (`.fifo` ARN or a `MessageGroupId`);
   * `true` always; `false` never (all records concurrently, up to the broker's `concurrency`).
   */
  ordered?: boolean | 'auto';
  /**
   * What a failing SNS record (topic → function) becomes. SNS invokes Lambda asynchronously
   * and the event carries no attempt count, so `maxDeliveries` cannot apply; Lambda retries a
   * failed event twice (by default) and then drops it unless the function has an on-failure
   * destination.
   * - `'dead-letter'` (default): dead-lettered at once, with the handler's error as the
   *   reason, to the broker's `deadLetterQueue`; if that copy cannot be sent the handler
   *   throws (Lambda retries).
   * - `'retry'`: the handler throws and Lambda retries. Give the function an on-failure
   *   destination (or a function DLQ), or the event is lost after Lambda's last retry.
   */
  snsFailure?: 'dead-letter' | 'retry';
}

/** A middy-style middleware: what `.use()` takes (middy's `MiddlewareObj` fits). */
export interface LambdaMiddleware {
  /** Runs before the records are dispatched. */
  before?: (request: any) => unknown;
  /** Runs after the response was built. */
  after?: (request: any) => unknown;
  /** Runs when the handler threw. */
  onError?: (request: any) => unknown;
}

/**
 * What {@link lambdaHandler} returns: an async Lambda handler. `.use()`, `.before()`,
 * `.after()` and `.onError()` add middy middlewares (loading `@middy/core` then); without them
 * no middy runs.
 *
 * @example
 * ```ts
 * export const handler: LambdaHandler = lambdaHandler(broker).use(myMiddleware);
 * ```
 */
export interface LambdaHandler {
  (event: SqsEvent | SnsEvent, context?: unknown): Promise<SqsBatchResponse | undefined>;
  /** Adds middy middlewares (needs `@middy/core`). */
  use(middlewares: LambdaMiddleware | readonly LambdaMiddleware[]): LambdaHandler;
  /** Adds a middy `before` step (loads `@middy/core`). */
  before(fn: (request: any) => unknown): LambdaHandler;
  /** Adds a middy `after` step (loads `@middy/core`). */
  after(fn: (request: any) => unknown): LambdaHandler;
  /** Adds a middy `onError` step (loads `@middy/core`). */
  onError(fn: (request: any) => unknown): LambdaHandler;
}

type MiddyInstance = ((event: unknown, context: unknown) => Promise<unknown>) & {
  [K in 'use' | 'before' | 'after' | 'onError']: (x: unknown) => unknown;
};

/**
 * The Lambda entrypoint for SQS events, SNS events and SNS envelopes carried in SQS bodies.
 * Each record is dispatched by its `target` through the broker's handlers; replies are sent
 * before a record counts as done; the answer is a partial batch response naming only the
 * failed records. A record that can never succeed (undecodable, no target, schema failure,
 * reply address not allowed) is dead-lettered by the core with its reason (the broker's
 * `deadLetterQueue`, else the source queue's RedrivePolicy target) and counts as done. An
 * event of an unexpected shape throws, so Lambda retries it rather than dropping it. A failing
 * SNS record is dead-lettered at once (see {@link LambdaHandlerOptions.snsFailure}).
 *
 * Without `deadLetterQueue` on the broker it logs one warning at cold start (a queue with no
 * RedrivePolicy cannot take dead letters: such records fail on every delivery).
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL!, deadLetterQueue: process.env.DLQ_URL });
 * broker.add('hello', () => 'Hi there too');
 * export const handler = lambdaHandler(broker); // handler.use(middyMiddleware) works with @middy/core
 * ```
 */
export function lambdaHandler(
  broker: BrokerCore,
  options: LambdaHandlerOptions = {},
): LambdaHandler {
  checkOptionKeys(options, ['ordered', 'snsFailure'], 'lambdaHandler');
  const ordered = checkOneOf(
    options.ordered ?? 'auto',
    [true, false, 'auto'] as const,
    'lambdaHandler: ordered',
  );
  const snsFailure = checkOneOf(
    options.snsFailure ?? 'dead-letter',
    ['dead-letter', 'retry'] as const,
    'lambdaHandler: snsFailure',
  );
  const logger = loggerOf(broker);
  if ((broker as { deadLetterQueue?: unknown }).deadLetterQueue === undefined) {
    logger.warn(
      'lambdaHandler: no deadLetterQueue: without a RedrivePolicy on the source queue (or for SNS events) dead letters fail every delivery',
      { broker: broker.constructor.name },
    );
  }

  // Synchronous when every record was (synchronous handlers, no replies): no promise per record.
  const handle = (
    event: SqsEvent | SnsEvent,
  ): SqsBatchResponse | undefined | Promise<SqsBatchResponse | undefined> => {
    const list = sqsRecordsOf(event);
    if (list === undefined) return snsOf(broker)(broker, (event as SnsEvent).Records, snsFailure);
    let fifo = ordered === true;
    const messages: IncomingMessage[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      checkSqsRecord(r);
      if (
        ordered === 'auto' &&
        !fifo &&
        (r.eventSourceARN?.endsWith('.fifo') || r.attributes?.MessageGroupId)
      )
        fifo = true;
      messages[i] = fromSqsRecord(r);
    }
    const results = dispatch(broker, messages, { ordered: fifo });
    return results instanceof Promise
      ? results.then((rs) => batchResponse(list, rs))
      : batchResponse(list, results);
  };

  /** Middy with every middleware added so far, once loaded (undefined: no `.use()` yet). */
  let middyfied: Promise<MiddyInstance> | undefined;

  // not an async function: without middy an invocation is handle()'s own promise (an async
  // wrapper adds a promise and a turn per event: P1 ran 4% slower with it)
  const handler = ((event: SqsEvent | SnsEvent, context?: unknown) => {
    if (middyfied) return middyfied.then((m) => m(event, context));
    try {
      return Promise.resolve(handle(event));
    } catch (err) {
      return Promise.reject(err);
    }
  }) as LambdaHandler;

  /** Loads middy once (a dynamic import: bundlers include it when it is installed). */
  const withMiddy = (kind: keyof LambdaMiddleware | 'use', arg: unknown): LambdaHandler => {
    // each addition chains on the last, so an invocation waits for those added before it
    middyfied = (middyfied ?? loadMiddy().then((middy) => middy(handle))).then((m) => {
      m[kind](arg);
      return m;
    });
    middyfied.catch((err: unknown) =>
      logger.error('lambdaHandler: @middy/core cannot be loaded', {
        error: describeError(err),
      }),
    );
    return handler;
  };
  for (const kind of ['use', 'before', 'after', 'onError'] as const)
    handler[kind] = (arg: never) => withMiddy(kind, arg);
  return handler;
}

function loadMiddy(): Promise<(handler: unknown) => MiddyInstance> {
  return import('@middy/core').then(
    (mod) => (mod as unknown as { default: (handler: unknown) => MiddyInstance }).default,
    (cause: unknown) => {
      throw peerMissing('.use()', '@middy/core', cause);
    },
  );
}

/** The partial batch response: the records that did not come out `ack`. */
function batchResponse(list: readonly SqsRecord[], results: readonly Verdict[]): SqsBatchResponse {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (let i = 0; i < results.length; i++)
    if (results[i]!.kind !== 'ack') batchItemFailures.push({ itemIdentifier: list[i]!.messageId });
  return { batchItemFailures };
}

const refused = (what: string) => new InvalidArgumentError(`lambdaHandler: ${what}`);

/**
 * Throws unless `r` is an SQS record with a messageId and a body (Lambda retries the event):
 * what an event whose first record is not SNS's must be.
 */
function checkSqsRecord(r: SqsRecord | null | undefined): void {
  if (
    r?.eventSource !== 'aws:sqs' ||
    typeof r.messageId !== 'string' ||
    r.messageId === '' ||
    typeof r.body !== 'string'
  )
    throw refused('not an SQS or SNS event, or an SQS record lacks messageId or body');
}

/**
 * The records of an SQS event, or undefined for an SNS event; throws InvalidArgumentError for
 * an event without records (Lambda retries it). SQS records are checked by the caller as it
 * decodes them ({@link checkSqsRecord}: a record of another source is refused there), SNS
 * records by the broker's SNS handling: one pass.
 */
function sqsRecordsOf(event: unknown): SqsRecord[] | undefined {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records) || records.length === 0) throw refused('the event has no Records');
  return (records[0] as { EventSource?: unknown } | null)?.EventSource === 'aws:sns'
    ? undefined
    : records;
}

/** The broker's SNS-event handling (the SqsBroker of cloudmom/aws/lambda has none: smaller bundle). */
function snsOf(broker: BrokerCore): SnsEvents {
  const sns = (broker as { [SNS_EVENTS]?: SnsEvents })[SNS_EVENTS];
  if (!sns)
    throw refused(
      `${broker.constructor.name} takes no SNS events: use an SnsBroker or cloudmom/aws`,
    );
  return sns;
}
