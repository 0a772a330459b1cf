import middy, { type MiddyfiedHandler } from '@middy/core';
import { type Broker, INTERNALS, type Outcome } from '../../src/broker.ts';
import { CloudmomError, InvalidArgumentError } from '../../src/errors.ts';
import type { IncomingMessage } from '../../src/transport.ts';
import { checkOptionKeys } from '../../src/util.ts';
import {
  AttributeReader,
  fromEnvelope,
  parseSnsEnvelope,
  snsAttributes,
  toIncoming,
} from './wire.ts';

/**
 * One message attribute of an SQS record as Lambda delivers it.
 * @example
 * ```ts
 * const target: SqsRecordAttribute = { stringValue: 'hello', stringListValues: [], binaryListValues: [], dataType: 'String' };
 * ```
 */
export interface SqsRecordAttribute {
  stringValue?: string;
  /** Base64. */
  binaryValue?: string;
  stringListValues?: string[];
  binaryListValues?: string[];
  dataType: string;
}

/**
 * An SQS record of a Lambda event (event source mapping on an SQS queue).
 *
 * @example
 * ```ts
 * const record: SqsRecord = { messageId: 'm1', body: '"hi"', attributes: { ApproximateReceiveCount: '1' },
 *   messageAttributes: { target: { stringValue: 'hello', dataType: 'String' } },
 *   eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:orders', awsRegion: 'us-east-1' };
 * ```
 */
export interface SqsRecord {
  messageId: string;
  receiptHandle?: string;
  body: string;
  /** System attributes: `ApproximateReceiveCount`, `SentTimestamp`, `MessageGroupId` (FIFO)... */
  attributes: Record<string, string | undefined>;
  messageAttributes: Record<string, SqsRecordAttribute>;
  md5OfBody?: string;
  md5OfMessageAttributes?: string;
  eventSource: 'aws:sqs';
  eventSourceARN: string;
  awsRegion: string;
}

/**
 * An SNS record of a Lambda event (the function subscribed to a topic).
 *
 * @example
 * ```ts
 * const record: SnsRecord = { EventSource: 'aws:sns', EventVersion: '1.0', EventSubscriptionArn: 'arn:...',
 *   Sns: { Type: 'Notification', MessageId: 'm1', TopicArn: 'arn:...', Message: '"hi"', Timestamp: new Date().toISOString(),
 *     MessageAttributes: { target: { Type: 'String', Value: 'hello' } } } };
 * ```
 */
export interface SnsRecord {
  EventSource: 'aws:sns';
  EventVersion: string;
  EventSubscriptionArn: string;
  Sns: {
    Type: string;
    MessageId: string;
    TopicArn: string;
    Subject?: string | null;
    Message: string;
    Timestamp: string;
    SignatureVersion?: string;
    Signature?: string;
    SigningCertUrl?: string;
    UnsubscribeUrl?: string;
    MessageAttributes?: Record<string, { Type: string; Value: string }>;
  };
}

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
 * export const handler = lambdaHandler(broker, { ordered: 'auto' });
 * ```
 */
export interface LambdaHandlerOptions {
  /**
   * Process records of one message group one after the other, a failure failing the rest of
   * its group: `'auto'` (default) does so for FIFO sources (`.fifo` ARN or a `MessageGroupId`);
   * `true` always; `false` never (all records concurrently, up to the broker's `concurrency`).
   */
  ordered?: boolean | 'auto';
}

/**
 * The Lambda entrypoint: a middy handler for SQS events, SNS events and SNS envelopes carried
 * in SQS bodies. Each record is dispatched by its `target` through the broker's handlers;
 * replies are sent before a record counts as done; the answer is a partial batch response
 * naming only the failed records. A record that can never succeed (undecodable, no target,
 * schema failure, reply address not allowed) goes to the dead-letter queue with its reason
 * (the broker's `deadLetterQueue`, else the source queue's RedrivePolicy) and counts as done.
 * An event of an unexpected shape throws, so Lambda retries it rather than dropping it.
 * SNS events (one record) throw when the record must be retried.
 *
 * @example
 * ```ts
 * import { SqsBroker, lambdaHandler } from 'cloudmom/aws';
 * const broker = new SqsBroker({ queue: process.env.QUEUE_URL! });
 * broker.add('hello', () => 'Hi there too');
 * export const handler = lambdaHandler(broker); // middy: handler.use(otherMiddleware) works
 * ```
 */
export function lambdaHandler(
  broker: Broker,
  options: LambdaHandlerOptions = {},
): MiddyfiedHandler<SqsEvent | SnsEvent, SqsBatchResponse | undefined> {
  checkOptionKeys(options, ['ordered'], 'lambdaHandler');
  const ordered = options.ordered ?? 'auto';
  if (ordered !== 'auto' && typeof ordered !== 'boolean')
    throw new InvalidArgumentError("lambdaHandler: ordered must be true, false or 'auto'");
  const internals = broker[INTERNALS];
  const snsResponse = (results: Outcome[]): undefined => {
    let failed = 0;
    let first: Exclude<Outcome, 'ack'> | undefined;
    for (const r of results) {
      if (r === 'ack') continue;
      failed++;
      first ??= r;
    }
    if (first !== undefined) {
      throw new CloudmomError(
        'transport-failed',
        `${failed} of ${results.length} SNS records failed; SNS will retry the event`,
        { cause: first.retry, retryable: true },
      );
    }
    return undefined;
  };
  // Synchronous when every record was (synchronous handlers, no replies): middy then arms no
  // early-timeout timer for the invocation.
  const handle = (
    event: SqsEvent | SnsEvent,
  ): SqsBatchResponse | undefined | Promise<SqsBatchResponse | undefined> => {
    const records = recordsOf(event);
    if (records.kind === 'sns') {
      const results = internals.processBatchNow(records.records.map(fromSnsRecord));
      return results instanceof Promise ? results.then(snsResponse) : snsResponse(results);
    }
    const list = records.records;
    let fifo = ordered === true;
    if (ordered === 'auto')
      for (const r of list)
        if (r.eventSourceARN?.endsWith('.fifo') || r.attributes?.MessageGroupId) {
          fifo = true;
          break;
        }
    const messages: IncomingMessage[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) messages[i] = fromSqsRecord(list[i]!);
    const results = internals.processBatchNow(messages, { ordered: fifo });
    return results instanceof Promise
      ? results.then((rs) => batchResponse(list, rs))
      : batchResponse(list, results);
  };
  return middy(handle) as unknown as MiddyfiedHandler<
    SqsEvent | SnsEvent,
    SqsBatchResponse | undefined
  >;
}

/** The partial batch response: the records that did not come out `'ack'`. */
function batchResponse(list: readonly SqsRecord[], results: readonly Outcome[]): SqsBatchResponse {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (let i = 0; i < results.length; i++)
    if (results[i] !== 'ack') batchItemFailures.push({ itemIdentifier: list[i]!.messageId });
  return { batchItemFailures };
}

/** Checks the event's shape; throws InvalidArgumentError for anything else (Lambda retries it). */
function recordsOf(
  event: unknown,
): { kind: 'sqs'; records: SqsRecord[] } | { kind: 'sns'; records: SnsRecord[] } {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  if (!Array.isArray(records) || records.length === 0)
    throw new InvalidArgumentError('lambdaHandler: the event has no Records (not SQS or SNS)');
  const first = records[0] as Record<string, unknown> | null;
  if (first?.eventSource === 'aws:sqs') {
    for (const r of records as Record<string, unknown>[]) {
      if (
        r?.eventSource !== 'aws:sqs' ||
        typeof r.messageId !== 'string' ||
        r.messageId === '' ||
        typeof r.body !== 'string'
      )
        throw new InvalidArgumentError(
          'lambdaHandler: an SQS event record has no messageId or body, or another source',
        );
    }
    return { kind: 'sqs', records: records as SqsRecord[] };
  }
  if (first?.EventSource === 'aws:sns') {
    for (const r of records as Record<string, unknown>[]) {
      const sns = r?.Sns as Record<string, unknown> | undefined;
      if (
        r?.EventSource !== 'aws:sns' ||
        !sns ||
        typeof sns.Message !== 'string' ||
        typeof sns.MessageId !== 'string'
      )
        throw new InvalidArgumentError('lambdaHandler: an SNS event record has no Sns.Message');
    }
    return { kind: 'sns', records: records as SnsRecord[] };
  }
  throw new InvalidArgumentError('lambdaHandler: unsupported event (expected SQS or SNS records)');
}

/** `Number(s)` of a numeric system attribute, without its cost for the usual short digit strings. */
function count(s: string | undefined): number {
  if (s === '1') return 1;
  if (typeof s !== 'string' || s.length === 0 || s.length > 15) return Number(s);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number(s);
    n = n * 10 + d;
  }
  return n;
}

/** An SQS record → the core's message; an SNS envelope in the body is unwrapped. */
export function fromSqsRecord(record: SqsRecord): IncomingMessage {
  const a = record.attributes && typeof record.attributes === 'object' ? record.attributes : {};
  const sent = count(a.SentTimestamp);
  const deliveryCount = Math.max(1, count(a.ApproximateReceiveCount) || 1);
  const publishedAt = Number.isFinite(sent) && sent > 0 ? new Date(sent) : undefined;
  const groupKey = typeof a.MessageGroupId === 'string' ? a.MessageGroupId : undefined;
  const reader = new AttributeReader();
  const attrs = record.messageAttributes as Record<string, SqsRecordAttribute | undefined>;
  if (attrs && typeof attrs === 'object') {
    for (const k in attrs) {
      const v = attrs[k];
      if (!v || typeof v !== 'object') continue;
      if (typeof v.stringValue === 'string') reader.add(k, v.stringValue);
      else if (typeof v.binaryValue === 'string') reader.add(k, v.binaryValue);
    }
  }
  if (reader.target === undefined) {
    const env = parseSnsEnvelope(record.body);
    if (env) return fromEnvelope(env, { deliveryCount, publishedAt, groupKey, raw: record });
  }
  return reader.toMessage(
    record.body,
    record.messageId,
    deliveryCount,
    publishedAt,
    groupKey,
    record,
  );
}

/** An SNS record (SNS → Lambda) → the core's message. */
export function fromSnsRecord(record: SnsRecord): IncomingMessage {
  const s = record.Sns;
  const ts = new Date(s.Timestamp);
  return toIncoming({
    text: s.Message,
    attributes: snsAttributes(s.MessageAttributes),
    messageId: s.MessageId,
    deliveryCount: 1,
    publishedAt: Number.isNaN(ts.getTime()) ? undefined : ts,
    raw: record,
  });
}
