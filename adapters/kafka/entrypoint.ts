/**
 * `kafkaHandler`: the Lambda entrypoint for Kafka event source mappings — Amazon MSK
 * (`eventSource: "aws:kafka"`) and self-managed Apache Kafka (`"SelfManagedKafka"`).
 *
 * Lambda polls the topic itself (its own consumer group), invokes the function with a batch
 * of records grouped by `topic-partition`, and commits the batch's offsets only when the
 * invocation succeeds. What Lambda does on failure decides the design:
 *
 * - a failed invocation (the function throws) is retried **as a whole**: every record of the
 *   batch comes again, and the partitions wait, until it succeeds, or `MaximumRetryAttempts`
 *   (default -1, infinite; Lambda caps it at 10 when an on-failure destination is set) or
 *   `MaximumRecordAgeInSeconds` (default -1) runs out — then the batch is skipped and only a
 *   description of it (not the records) goes to the on-failure destination (SQS, SNS, S3);
 * - Lambda's event carries no delivery count;
 * - `ReportBatchItemFailures` exists for Kafka mappings (provisioned mode), but AWS's Lambda
 *   documentation does not show the item identifier's shape, so it is not the default here.
 *
 * So the handler settles what it can itself: poison and handler failures past `maxDeliveries`
 * are copied to the dead-letter topic (`<topic>.dlt`) by the core, replies are produced to
 * their reply address, and the invocation succeeds when every record was handled, discarded
 * or dead-lettered. When some record must be retried, the handler throws
 * {@link KafkaBatchRetryError} and Lambda retries the batch. Delivery counts and the records
 * already handled are remembered per warm container (a bounded memory), so a retried batch
 * does not run its handled records again and a record reaches `maxDeliveries` across retries
 * — unless the retry lands in another container, where counting restarts (at-least-once
 * holds; dead-lettering may take longer; set `MaximumRetryAttempts` with an on-failure
 * destination as the last resort).
 *
 * Order: one record at a time per key (the core's ordered dispatch: after a failure, later
 * records of the key are not run), and records without a key one at a time per partition.
 */
import type { Broker } from '../../src/broker.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { CloudmomError, InvalidArgumentError } from '../../src/errors.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { BoundedMap, checkOptionKeys } from '../../src/util.ts';
import { fromRecord, recordId, type WireRecord } from './wire.ts';

/**
 * One record of a Lambda Kafka event: key and value in base64, headers as a list of
 * one-entry objects whose value is the header's bytes (numbers; AWS's Java runtime types them
 * as signed bytes, so -128…127 may appear).
 *
 * @example
 * ```ts
 * const record: KafkaEventRecord = {
 *   topic: 'orders', partition: 0, offset: 15, timestamp: 1545084650987, timestampType: 'CREATE_TIME',
 *   key: 'Y3VzdG9tZXItNw==', value: 'eyJpZCI6N30=', headers: [{ target: [105, 110, 118, 111, 105, 99, 101] }],
 * };
 * ```
 */
export interface KafkaEventRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp?: number;
  timestampType?: string;
  /** Base64; absent or null for a record without a key. */
  key?: string | null;
  /** Base64; absent or null for a tombstone. */
  value?: string | null;
  headers?: Array<Record<string, number[]>>;
}

/**
 * A Lambda event from an MSK or self-managed Kafka event source mapping.
 *
 * @example
 * ```ts
 * const event: KafkaEvent = {
 *   eventSource: 'SelfManagedKafka',
 *   bootstrapServers: 'b-1.example.com:9092',
 *   records: { 'orders-0': [record] },
 * };
 * ```
 */
export interface KafkaEvent {
  eventSource: 'aws:kafka' | 'SelfManagedKafka' | (string & {});
  /** The MSK cluster (MSK only). */
  eventSourceArn?: string;
  bootstrapServers?: string;
  /** Records per `<topic>-<partition>`, in offset order. */
  records: Record<string, KafkaEventRecord[]>;
}

/**
 * A partial batch response (only with `reportBatchItemFailures: true`), in the shape
 * Powertools for AWS Lambda (Python) returns for Kafka.
 */
export interface KafkaBatchResponse {
  batchItemFailures: { itemIdentifier: { 'topic-partition': string; offset: number } }[];
}

/**
 * Options of {@link kafkaHandler}.
 *
 * @example
 * ```ts
 * export const handler = kafkaHandler(broker, { orderKeyless: false });
 * ```
 */
export interface KafkaHandlerOptions {
  /** Records without a key run one at a time per partition, in offset order. Default true. */
  orderKeyless?: boolean;
  /**
   * Answer a partial batch response listing the records to retry (as
   * `{ 'topic-partition', offset }` identifiers) instead of throwing. Needs
   * `FunctionResponseTypes: [ReportBatchItemFailures]` on the mapping (provisioned mode);
   * the identifier shape is Powertools', not confirmed by AWS's Lambda documentation — a shape
   * Lambda does not accept fails the whole batch, which is still safe. Default false.
   */
  reportBatchItemFailures?: boolean;
  /** Records remembered per container (delivery counts, handled records). Default 10 000. */
  memory?: number;
}

/**
 * Thrown by the handler when records must be retried: Lambda then retries the whole batch.
 * Carries no message content, only counts and record ids.
 *
 * @example
 * ```ts
 * try { await handler(event); } catch (e) { if (e instanceof KafkaBatchRetryError) console.log(e.retry, e.records); }
 * ```
 */
export class KafkaBatchRetryError extends CloudmomError {
  override name = 'KafkaBatchRetryError';
  /** Records to retry. */
  readonly retry: number;
  /** Their ids, `<topic>/<partition>/<offset>` (at most 20). */
  readonly records: readonly string[];
  constructor(retry: number, total: number, records: readonly string[], cause: unknown) {
    super(
      'transport-failed',
      `${retry} of ${total} Kafka records must be retried (${records.slice(0, 5).join(', ')}${retry > 5 ? ', …' : ''}); failing the invocation so Lambda retries the batch`,
      { cause, retryable: true },
    );
    this.retry = retry;
    this.records = records.slice(0, 20);
  }
}

const KEYS = ['orderKeyless', 'reportBatchItemFailures', 'memory'] as const;

interface Seen {
  count: number;
  handled: boolean;
}

interface Item {
  /** Memory key: the event source and the record id. */
  readonly id: string;
  /** `<topic>/<partition>/<offset>`. */
  readonly record: string;
  readonly topicPartition: string;
  readonly offset: number;
  readonly message: IncomingMessage;
  verdict?: Verdict;
}

const ACK: Verdict = Object.freeze({ kind: 'ack' });

/**
 * The Lambda handler for MSK / self-managed Kafka events on a broker (a `KafkaBroker`, whose
 * producer sends the replies and dead-letter copies).
 *
 * @example
 * ```ts
 * import { KafkaBroker, kafkaHandler } from 'cloudmom/kafka';
 * const broker = new KafkaBroker({ brokers: process.env.KAFKA_BROKERS!.split(','), topic: 'orders' });
 * broker.add('invoice', async (properties, body) => ({ ok: true }));
 * export const handler = kafkaHandler(broker);
 * ```
 */
export function kafkaHandler(
  broker: Broker,
  options: KafkaHandlerOptions = {},
): (event: KafkaEvent, context?: unknown) => Promise<KafkaBatchResponse | undefined> {
  checkOptionKeys(options, KEYS, 'kafkaHandler');
  const orderKeyless = options.orderKeyless ?? true;
  const partial = options.reportBatchItemFailures ?? false;
  const size = options.memory ?? 10_000;
  if (!Number.isInteger(size) || size < 1)
    throw new InvalidArgumentError('kafkaHandler: memory must be a positive integer');
  const memory = new BoundedMap<string, Seen>(size);
  const logger = loggerOf(broker);

  return async (event) => {
    const records = event?.records;
    if (!records || typeof records !== 'object') {
      logger.error('kafkaHandler: not a Kafka event (no records); nothing to do', {
        eventSource:
          typeof event?.eventSource === 'string' ? event.eventSource.slice(0, 50) : undefined,
      });
      return partial ? { batchItemFailures: [] } : undefined;
    }
    const scope = event.eventSourceArn ?? event.bootstrapServers ?? '';
    const items: Item[] = [];
    for (const [topicPartition, list] of Object.entries(records)) {
      if (!Array.isArray(list)) continue;
      for (const r of list) items.push(decode(r, topicPartition, scope, memory));
    }

    // Records handled in an earlier try of this batch (same container) are not run again.
    const keyed: Item[] = [];
    const lanes = new Map<string, Item[]>();
    for (const it of items) {
      if (memory.get(it.id)?.handled) it.verdict = ACK;
      else if (it.message.groupKey === undefined && orderKeyless) {
        const lane = lanes.get(it.topicPartition);
        if (lane) lane.push(it);
        else lanes.set(it.topicPartition, [it]);
      } else keyed.push(it);
    }
    const work: Promise<void>[] = [];
    if (keyed.length > 0)
      work.push(
        Promise.resolve(
          dispatch(
            broker,
            keyed.map((i) => i.message),
            { ordered: true },
          ),
        ).then((verdicts) => {
          verdicts.forEach((v, i) => {
            keyed[i]!.verdict = v;
          });
        }),
      );
    for (const lane of lanes.values()) work.push(runLane(broker, lane));
    await Promise.all(work);

    const failed: Item[] = [];
    let cause: unknown;
    for (const it of items) {
      const v = it.verdict ?? { kind: 'retry', delayMs: 0, error: new Error('not run') };
      const seen = memory.get(it.id);
      if (v.kind === 'ack') {
        if (it.offset >= 0)
          memory.set(it.id, { count: seen?.count ?? it.message.deliveryCount, handled: true });
      } else {
        failed.push(it);
        if (v.kind === 'retry') cause ??= v.error;
      }
    }
    logger.debug('kafka batch done', {
      eventSource: event.eventSource,
      records: items.length,
      retry: failed.length,
    });
    if (failed.length === 0) return partial ? { batchItemFailures: [] } : undefined;
    if (partial)
      return {
        batchItemFailures: failed.map((it) => ({
          itemIdentifier: { 'topic-partition': it.topicPartition, offset: it.offset },
        })),
      };
    throw new KafkaBatchRetryError(
      failed.length,
      items.length,
      failed.map((i) => i.record),
      cause,
    );
  };
}

/** Records without a key of one partition, one at a time; after a failure the rest wait. */
async function runLane(broker: Broker, lane: Item[]): Promise<void> {
  let blocked = false;
  for (const it of lane) {
    if (blocked) {
      it.verdict = {
        kind: 'retry',
        delayMs: 0,
        error: new Error('an earlier record of its partition failed'),
      };
      continue;
    }
    const [v] = await dispatch(broker, [it.message]);
    it.verdict = v;
    if (v?.kind !== 'ack') blocked = true;
  }
}

const malformed = (why: string) => ({ code: 'undecodable' as const, description: why });

/** A Lambda Kafka record as the core takes it; a record Lambda could not have sent is poison. */
function decode(
  r: KafkaEventRecord,
  topicPartition: string,
  scope: string,
  memory: BoundedMap<string, Seen>,
): Item {
  const dash = topicPartition.lastIndexOf('-');
  const topic = typeof r?.topic === 'string' ? r.topic : topicPartition.slice(0, Math.max(0, dash));
  const partition = Number.isInteger(r?.partition)
    ? r.partition
    : Number(topicPartition.slice(dash + 1)) || 0;
  const offset = Number.isSafeInteger(r?.offset) ? r.offset : -1;
  const id = recordId(topic, partition, BigInt(offset));
  const key = `${scope}|${id}`;
  // A record without an offset (Lambda always sends one) is poison; it is not remembered.
  const seen = (offset >= 0 ? memory.get(key) : undefined) ?? { count: 0, handled: false };
  if (!seen.handled) seen.count++;
  if (offset >= 0) memory.set(key, seen);
  let poison: { code: 'undecodable'; description: string } | undefined;
  let wire: WireRecord;
  try {
    if (!r || typeof r !== 'object') throw malformed('the record is not an object');
    if (offset < 0) throw malformed('the record has no offset');
    wire = {
      topic,
      partition,
      offset: BigInt(offset),
      timestamp: typeof r.timestamp === 'number' ? r.timestamp : undefined,
      key: base64(r.key, 'key'),
      value: base64(r.value, 'value'),
      headers: headers(r.headers),
    };
  } catch (err) {
    poison =
      err && typeof err === 'object' && 'code' in err
        ? (err as { code: 'undecodable'; description: string })
        : malformed(String(err));
    wire = {
      topic,
      partition,
      offset: BigInt(Math.max(offset, 0)),
      key: null,
      value: null,
      headers: [],
    };
  }
  const m = fromRecord(wire, r, { deliveryCount: seen.count });
  return {
    id: key,
    record: id,
    topicPartition: `${topic}-${partition}`,
    offset,
    message: poison ? { ...m, poison } : m,
  };
}

function base64(v: unknown, what: string): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string')
    throw malformed(
      `the record ${what} is not base64 text (a schema-registry record format other than SOURCE?)`,
    );
  return Buffer.from(v, 'base64');
}

function headers(list: unknown): [Uint8Array, Uint8Array][] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw malformed('the record headers are not a list');
  const out: [Uint8Array, Uint8Array][] = [];
  for (const h of list) {
    if (!h || typeof h !== 'object') throw malformed('a record header is not an object');
    for (const [name, bytes] of Object.entries(h as Record<string, unknown>)) {
      if (
        !Array.isArray(bytes) ||
        !bytes.every((b) => Number.isInteger(b) && b >= -128 && b <= 255)
      )
        throw malformed(`header "${name.slice(0, 100)}" is not a list of bytes`);
      out.push([Buffer.from(name, 'utf8'), Uint8Array.from(bytes as number[], (b) => b & 0xff)]);
    }
  }
  return out;
}
