/**
 * The AMQP 0-9-1 wire mapping (ARCHITECTURE §3): pure functions, no I/O.
 *
 * | cloudmom | AMQP 0-9-1 (RabbitMQ) |
 * |---|---|
 * | target | routing key, and the header `target` (Lambda events carry no routing key) |
 * | correlation id | property `correlation_id` |
 * | reply to | property `reply_to` (a queue name, reached through the default exchange) |
 * | content type | property `content_type` |
 * | message id | property `message_id` |
 * | published at | property `timestamp` (seconds) |
 * | persistence | `delivery_mode` 2, always |
 * | delivery count | quorum queues' `x-delivery-count` + 1, else the header `delivery_count`, else 2 when `redelivered` |
 * | group key | header `group_key` |
 * | headers (traceparent included) | headers, as long strings |
 * | dead-letter copy | headers `dead_letter_reason`, `dead_letter_description`, `delivery_count` |
 */
import { InvalidMessageError } from '../../src/errors.ts';
import { setOwn } from '../../src/publisher.ts';
import type { IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import * as WIRE from '../../src/wire-names.ts';

/**
 * Limits of the mapping. `shortstr` fields (routing key, message id, correlation id,
 * reply to, content type, header names) hold 255 bytes; the client would cut longer ones
 * silently, so `validate` refuses them.
 */
export const LIMITS = {
  shortstrBytes: 255,
  /**
   * Default largest message: RabbitMQ 4's `max_message_size` (16 MiB; 3.x allowed 128 MiB).
   * Amazon MQ's Lambda event source takes at most 6 MB per invocation (base64 included).
   */
  messageBytes: 16 * 1024 * 1024,
  /** The frame size cloudmom asks for on connections it opens (RabbitMQ's default `frame_max`). */
  frameMax: 131_072,
} as const;

/** Headers the amqp mapping owns besides the core's reserved `WIRE` names. */
export const GROUP_KEY = 'group_key';

/**
 * Server-set headers that are not user headers: dropped from `headers` on receipt (they stay
 * on `raw`) and refused on publish (RabbitMQ interprets them).
 */
const SERVER_HEADER = /^x-(delivery-count|death|first-death-|last-death-|received-from)/;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
/** True when `s` is over `max` UTF-8 bytes; short strings (≤ 3 bytes a char) skip counting. */
const over = (s: string, max: number) => s.length > max || (s.length * 3 > max && bytes(s) > max);

/** Where a message goes: an exchange and a routing key. */
export interface Route {
  readonly exchange: string;
  readonly routingKey: string;
}

/**
 * The route of an outgoing message:
 * - a dead-letter copy goes to its `destination` (the dead-letter exchange) with the
 *   original target as routing key (empty when it had none);
 * - a message with a `destination` (a reply address: a queue name) goes to the default
 *   exchange with the queue name as routing key;
 * - anything else goes to the broker's exchange with routing key = target.
 *
 * @example
 * ```ts
 * routeOf({ target: 'orders', ... }, 'cloudmom'); // { exchange: 'cloudmom', routingKey: 'orders' }
 * routeOf({ target: 'x', destination: 'cloudmom.reply.1', ... }, 'cloudmom'); // { exchange: '', routingKey: 'cloudmom.reply.1' }
 * ```
 */
export function routeOf(m: OutgoingMessage, exchange: string): Route {
  if (m.deadLetter) return { exchange: m.destination ?? '', routingKey: m.target };
  if (m.destination !== undefined) return { exchange: '', routingKey: m.destination };
  return { exchange, routingKey: m.target };
}

/** The AMQP properties of a publish (the shape `rabbitmq-client` takes). */
export interface PublishProperties {
  readonly messageId: string;
  readonly contentType: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  /** Seconds since the epoch. */
  readonly timestamp: number;
  /** 2: persistent. */
  readonly deliveryMode: 2;
  readonly headers: Record<string, string>;
}

/**
 * The properties a message carries: persistent, its ids, content type, timestamp, and headers
 * (user headers, `target`, `group_key`, and a dead-letter copy's reason and delivery count).
 *
 * @example
 * ```ts
 * toProperties(message).headers.target; // the target, also the routing key
 * ```
 */
export function toProperties(m: OutgoingMessage, now = Date.now()): PublishProperties {
  const p: {
    -readonly [K in keyof PublishProperties]: PublishProperties[K];
  } = {
    messageId: m.messageId,
    contentType: m.contentType,
    timestamp: Math.floor(now / 1000),
    deliveryMode: 2,
    headers: headersOf(m),
  };
  if (m.correlationId !== undefined) p.correlationId = m.correlationId;
  if (m.replyTo !== undefined) p.replyTo = m.replyTo;
  return p;
}

/** The arguments of a confirmed publish: the properties, the route, and `mandatory`. */
export interface PublishEnvelope extends PublishProperties {
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: true;
}

/**
 * What `Publisher.send` takes for a message: {@link toProperties} with its route and
 * `mandatory`, built as one object of one shape (this runs once per published message).
 *
 * @param timestamp seconds since the epoch
 * @example
 * ```ts
 * await publisher.send(toEnvelope(message, routeOf(message, 'cloudmom'), Math.floor(Date.now() / 1000)), body);
 * ```
 */
export function toEnvelope(m: OutgoingMessage, route: Route, timestamp: number): PublishEnvelope {
  return {
    exchange: route.exchange,
    routingKey: route.routingKey,
    mandatory: true,
    messageId: m.messageId,
    contentType: m.contentType,
    correlationId: m.correlationId,
    replyTo: m.replyTo,
    timestamp,
    deliveryMode: 2,
    headers: headersOf(m),
  };
}

/** The headers table of a message: user headers, `target`, `group_key`, dead-letter fields. */
function headersOf(m: OutgoingMessage): Record<string, string> {
  const headers: Record<string, string> = { ...m.headers };
  if (m.target !== '') headers[WIRE.target] = m.target;
  if (m.groupKey !== undefined) headers[GROUP_KEY] = m.groupKey;
  if (m.deadLetter) {
    headers[WIRE.deadLetterReason] = m.deadLetter.code;
    headers[WIRE.deadLetterDescription] = m.deadLetter.description;
    headers[WIRE.deliveryCount] = String(m.deadLetter.deliveryCount);
  }
  return headers;
}

/**
 * Bytes of the content header frame (properties and the headers table, as the client
 * encodes them: every header a long string). It must fit in one frame (`frame_max`).
 */
export function headerFrameBytes(m: OutgoingMessage): number {
  // frame envelope 8, class/weight/body size/flags 14, delivery mode 1, timestamp 8, table length 4
  let n = 8 + 14 + 1 + 8 + 4;
  n += 1 + bytes(m.messageId) + 1 + bytes(m.contentType);
  if (m.correlationId !== undefined) n += 1 + bytes(m.correlationId);
  if (m.replyTo !== undefined) n += 1 + bytes(m.replyTo);
  const entry = (k: string, v: string) => 1 + bytes(k) + 1 + 4 + bytes(v);
  for (const k in m.headers) n += entry(k, m.headers[k]!);
  if (m.target !== '') n += entry(WIRE.target, m.target);
  if (m.groupKey !== undefined) n += entry(GROUP_KEY, m.groupKey);
  if (m.deadLetter) {
    n += entry(WIRE.deadLetterReason, m.deadLetter.code);
    n += entry(WIRE.deadLetterDescription, m.deadLetter.description);
    n += entry(WIRE.deliveryCount, String(m.deadLetter.deliveryCount));
  }
  return n;
}

/**
 * Size of a message on the wire: body plus the content header (properties and headers).
 *
 * @example
 * ```ts
 * measure(message) <= LIMITS.messageBytes;
 * ```
 */
export function measure(m: OutgoingMessage): number {
  return m.body.byteLength + headerFrameBytes(m);
}

/**
 * Refuses, before anything is sent, a message AMQP cannot carry intact: a `shortstr` field
 * (target/routing key, ids, reply to, content type, header name) over 255 bytes, a header the
 * mapping owns or RabbitMQ interprets, or properties that do not fit in one frame.
 *
 * @param frameMax the connection's frame size (properties must fit in one frame)
 * @example
 * ```ts
 * validate({ ...message, target: 'x'.repeat(300) }, 131072); // InvalidMessageError
 * ```
 */
export function validate(m: OutgoingMessage, frameMax: number = LIMITS.frameMax): void {
  const short = (what: string, v: string | undefined) => {
    if (v !== undefined && over(v, LIMITS.shortstrBytes))
      throw new InvalidMessageError(
        `AMQP carries at most ${LIMITS.shortstrBytes} bytes in ${what}; this one has ${bytes(v)}`,
      );
  };
  short('a target (the routing key)', m.target);
  short('message_id', m.messageId);
  short('correlation_id', m.correlationId);
  short('reply_to', m.replyTo);
  short('content_type', m.contentType);
  short('a reply address (a queue name)', m.deadLetter ? undefined : m.destination);
  let chars =
    m.target.length * 2 +
    m.messageId.length +
    m.contentType.length +
    (m.correlationId?.length ?? 0) +
    (m.replyTo?.length ?? 0) +
    (m.groupKey?.length ?? 0) +
    (m.deadLetter ? m.deadLetter.description.length + 80 : 0) +
    60;
  for (const k in m.headers) {
    if (k === GROUP_KEY || k === WIRE.target || k === WIRE.deliveryCount)
      throw new InvalidMessageError(`header "${k}" is reserved by cloudmom's AMQP mapping`);
    if (SERVER_HEADER.test(k))
      throw new InvalidMessageError(`header "${k}" is set by RabbitMQ, not by a publisher`);
    if (k === '__proto__')
      throw new InvalidMessageError(
        'header "__proto__" cannot be received through rabbitmq-client (its table decoder drops it)',
      );
    short(`a header name`, k);
    chars += k.length + m.headers[k]!.length + 6;
  }
  // at most 3 UTF-8 bytes per UTF-16 unit: most messages are far below one frame, uncounted
  if (64 + 3 * chars <= frameMax) return;
  const frame = headerFrameBytes(m);
  if (frame > frameMax)
    throw new InvalidMessageError(
      `the message's properties and headers take ${frame} bytes; AMQP needs them in one frame of at most ${frameMax} bytes (frame_max)`,
    );
}

/** A received delivery in the shape both sources share: `basic.deliver` and Lambda `aws:rmq` records. */
export interface WireDelivery {
  /** The body bytes. */
  readonly body: Uint8Array;
  /** The body as text, when the client delivered it as text (its bytes are `body`). */
  readonly text?: string;
  /** Undefined in Lambda events (they carry no routing key). */
  readonly routingKey?: string;
  readonly redelivered: boolean;
  readonly contentType?: string | null;
  readonly correlationId?: string | null;
  readonly replyTo?: string | null;
  readonly messageId?: string | null;
  /** Seconds since the epoch (basic.deliver), or the Lambda event's date text. */
  readonly timestamp?: number | string | null;
  readonly headers?: Readonly<Record<string, unknown>> | null;
}

/** Options of {@link fromWire}. */
export interface FromWireOptions {
  readonly ackId?: unknown;
  /** The queue it came from. */
  readonly source?: string;
  /** A message id for deliveries that carry none (foreign publishers). */
  readonly fallbackId: () => string;
}

/**
 * A received message as the core takes it. `target` is the header `target`, else the routing
 * key (foreign publishers); `deliveryCount` is the largest of quorum queues'
 * `x-delivery-count` + 1, cloudmom's own `delivery_count` header (classic queues; not on a
 * dead-letter copy, whose count is the original's) and 2 for a `redelivered` delivery.
 *
 * @example
 * ```ts
 * fromWire({ body, routingKey: 'orders', redelivered: false, headers: {} }, raw, { fallbackId: randomUUID });
 * ```
 */
export function fromWire(d: WireDelivery, raw: unknown, o: FromWireOptions): IncomingMessage {
  const h = d.headers ?? {};
  const headers: Record<string, string> = {};
  let target: string | undefined;
  let own: number | undefined;
  let groupKey: string | undefined;
  let quorum = 0;
  let deadLettered = false;
  for (const k in h) {
    const v = h[k];
    if (k === 'x-delivery-count') {
      const n = Number(v);
      if (Number.isFinite(n) && n > 0) quorum = n;
      continue;
    }
    if (SERVER_HEADER.test(k)) continue;
    const s = headerText(v);
    if (s === undefined) continue;
    if (k === WIRE.target) target = s;
    else if (k === WIRE.deliveryCount) own = Number.parseInt(s, 10);
    else if (k === GROUP_KEY) groupKey = s;
    else {
      if (k === WIRE.deadLetterReason) deadLettered = true;
      setOwn(headers, k, s); // `__proto__` too (Lambda events are parsed JSON)
    }
  }
  if (deadLettered && own !== undefined) headers[WIRE.deliveryCount] = String(own);
  if (target === undefined || target === '') target = d.routingKey || undefined;
  let deliveryCount = d.redelivered ? 2 : 1;
  if (quorum + 1 > deliveryCount) deliveryCount = quorum + 1;
  if (!deadLettered && own !== undefined && Number.isFinite(own) && own > deliveryCount)
    deliveryCount = own;
  const m: {
    -readonly [K in keyof IncomingMessage]: IncomingMessage[K];
  } = {
    body: d.body,
    target,
    messageId: d.messageId || o.fallbackId(),
    headers,
    deliveryCount,
    raw,
  };
  if (d.text !== undefined) m.text = d.text;
  if (d.contentType) m.contentType = d.contentType;
  if (d.correlationId) m.correlationId = d.correlationId;
  if (d.replyTo) m.replyTo = d.replyTo;
  const at = timestampOf(d.timestamp);
  if (at) m.publishedAt = at;
  if (groupKey !== undefined && groupKey !== '') m.groupKey = groupKey;
  if (o.ackId !== undefined) m.ackId = o.ackId;
  if (o.source !== undefined) m.source = o.source;
  return m;
}

function timestampOf(t: number | string | null | undefined): Date | undefined {
  if (t === undefined || t === null) return undefined;
  // Lambda events write it as "Jan 1, 1970, 12:33:41 AM" without a zone: UTC
  // (a formatter may put a narrow no-break space before AM/PM)
  const text = typeof t === 'string' ? t.replace(/\s+/g, ' ') : '';
  const ms = typeof t === 'number' ? t * 1000 : Date.parse(`${text} UTC`) || Date.parse(text);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

const utf8Decoder = new TextDecoder();

/**
 * A header value as text: strings as they are; bytes (a Buffer, or `{bytes: [...]}` in Lambda
 * events) as UTF-8; numbers, booleans and bigints as text; dates as ISO 8601; AMQP decimals as
 * their value; arrays and tables as JSON; null and undefined as undefined (dropped).
 *
 * @example
 * ```ts
 * headerText({ bytes: [118, 49] }); // "v1"
 * headerText(10); // "10"
 * ```
 */
export function headerText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return utf8Decoder.decode(v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
  if (typeof v === 'object') {
    const b = lambdaBytes(v);
    if (b) return utf8Decoder.decode(b);
    const d = v as { scale?: unknown; value?: unknown };
    if (typeof d.scale === 'number' && typeof d.value === 'number' && Object.keys(v).length === 2)
      return String(d.value / 10 ** d.scale);
    return JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'bigint') return String(x);
      if (x instanceof Uint8Array) return utf8Decoder.decode(x);
      if (
        x &&
        typeof x === 'object' &&
        !Array.isArray(x) &&
        (x as { type?: unknown }).type === 'Buffer'
      )
        return utf8Decoder.decode(Uint8Array.from((x as { data: number[] }).data));
      const b = x && typeof x === 'object' ? lambdaBytes(x) : undefined;
      return b ? utf8Decoder.decode(b) : x;
    });
  }
  return String(v);
}

/** `{bytes: [...]}`, the shape of a string header in Amazon MQ Lambda events. */
function lambdaBytes(v: object): Uint8Array | undefined {
  const b = (v as { bytes?: unknown }).bytes;
  if (!Array.isArray(b) || Object.keys(v).length !== 1) return undefined;
  for (const x of b) if (typeof x !== 'number') return undefined;
  // Java bytes are signed: -128..127
  return Uint8Array.from(b as number[], (x) => x & 0xff);
}

const utf8Encoder = new TextEncoder();

/**
 * The body of a `basic.deliver` as bytes and, when the client decoded it, as text.
 * `rabbitmq-client` hands a body of content type exactly `text/plain` as a string and one of
 * exactly `application/json` parsed; such a body is given back as (JSON) text, which the core
 * decodes once more.
 */
export function deliveredBody(body: unknown): { body: Uint8Array; text?: string } {
  if (body instanceof Uint8Array) return { body };
  if (typeof body === 'string') return { body: utf8Encoder.encode(body), text: body };
  const text = JSON.stringify(body) ?? 'null';
  return { body: utf8Encoder.encode(text), text };
}

/** A queue name for an instance's reply queue: `<prefix><id>`. */
export function replyQueueName(prefix: string, id: string): string {
  return `${prefix}${id}`;
}

/** A RegExp matching names that start with `prefix` (for the default reply allow-list). */
export function prefixPattern(prefix: string): RegExp {
  return new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
}

/** How a batch of acks goes on the wire: {@link DeliveryTags.ack}. */
export interface AckPlan {
  /** One basic.ack with `multiple` up to this tag (undefined: none). */
  readonly upTo: number | undefined;
  /** One basic.ack each. */
  readonly each: readonly number[];
}

/**
 * The unsettled delivery tags of one channel, so that a batch of acks goes out in as few
 * basic.ack frames as it can: one with `multiple` for the tags below which everything is
 * settled, one each for the rest. No ack waits for a slow message (no head-of-line blocking),
 * and memory is bounded by the prefetch: only unsettled tags are kept.
 *
 * @example
 * ```ts
 * const tags = new DeliveryTags();
 * for (const t of [1, 2, 3, 4]) tags.delivered(t);
 * tags.ack([1, 2, 4]); // { upTo: 2, each: [4] }: tag 3 is still in hand
 * ```
 */
export class DeliveryTags {
  /** In delivery order, which is tag order on a channel: the first is the lowest. */
  readonly #open = new Set<number>();

  /** A delivery arrived (tags grow by one per delivery on a channel). */
  delivered(tag: number): void {
    this.#open.add(tag);
  }

  /** Settled without an ack frame (nacked). */
  forget(tag: number): void {
    this.#open.delete(tag);
  }

  /**
   * Settles `tags` (delivered, not settled before) and plans their frames. The `multiple` ack
   * names the highest of `tags` below the lowest unsettled tag, so the server still holds it:
   * everything below it is either in this batch or settled already.
   */
  ack(tags: readonly number[]): AckPlan {
    const open = this.#open;
    for (const t of tags) open.delete(t);
    // everything below the lowest unsettled tag is settled; with none, every tag delivered
    const lowest = open.values().next().value;
    const floor = lowest === undefined ? Number.POSITIVE_INFINITY : lowest - 1;
    let upTo: number | undefined;
    const each: number[] = [];
    for (const t of tags) {
      if (t > floor) each.push(t);
      else if (upTo === undefined || t > upTo) upTo = t;
    }
    return { upTo, each };
  }
}
