/**
 * The SQS/SNS wire mapping (ARCHITECTURE §3), shared by the brokers and the Lambda entrypoint.
 *
 * - Attributes (all `String`): `target`, `content_type`, `correlation_id`, `reply_to`, the user
 *   headers (`traceparent` among them), and on SNS `message_id`. At most 10 per message.
 * - Bodies travel as text. SQS and SNS take only non-empty, XML-safe Unicode text, so a body
 *   that is not (invalid UTF-8, control characters, empty) is marked with the attribute
 *   `body_encoding`: `base64` (the body is the base64 of the bytes) or `empty` (an empty body;
 *   a placeholder travels). Plain text and JSON travel as they are.
 * - Empty header values (which SQS and SNS refuse) travel as the attribute `empty_headers`,
 *   the comma-separated names of the headers whose value is `""`.
 * - Dead-letter copies (`OutgoingMessage.deadLetter`, built by the core) carry `message_id`,
 *   `dead_letter_reason`, `dead_letter_description` and, where there is room,
 *   `delivery_count`. When the user headers would pass 10 attributes, or one of them cannot
 *   travel as an attribute of its own (a name SQS refuses, a value with characters SQS
 *   refuses, or `__proto__`, which the AWS SDK v3 drops on receive), they are all packed as
 *   JSON into `dead_letter_headers`.
 * - A body that is an SNS notification envelope (subscription without raw delivery) is
 *   unwrapped: payload from `Message`, attributes from `MessageAttributes`.
 * - Received messages (SDK `Message`, Lambda SQS and SNS records) decode to the core's
 *   `IncomingMessage` with `ackId` (the receipt handle) and `source` (the queue URL, or the
 *   record's `eventSourceARN` / subscription ARN); what can never be read is marked `poison`.
 */
import type { Message } from '@aws-sdk/client-sqs';
import { utf8 } from '../../src/codec.ts';
import { InvalidMessageError } from '../../src/errors.ts';
import { cut } from '../../src/log.ts';
import { setOwn as put } from '../../src/publisher.ts';
import type { DeadLetterReason, IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import { RESERVED_HEADERS } from '../../src/transport.ts';
import { EMPTY } from '../../src/util.ts';
import * as WIRE from '../../src/wire-names.ts';

/** The headers of a message received without any (replaced on the first one). */
const NO_HEADERS = EMPTY as Record<string, string>;

/** Most message attributes SQS (and SNS → SQS) carries. */
export const MAX_ATTRIBUTES = 10;
/** Attribute marking a body that is not plain text: `base64` or `empty`. */
export const BODY_ENCODING = 'body_encoding';
/** Attribute listing headers whose value is the empty string. */
export const EMPTY_HEADERS = 'empty_headers';
/** Attribute packing user headers of a dead-lettered copy that did not fit. */
export const DEAD_LETTER_HEADERS = 'dead_letter_headers';
/** Placeholder body of an empty message (SQS and SNS refuse empty bodies). */
const EMPTY_PLACEHOLDER = '-';

/** Names the adapter uses on the wire besides the core's reserved ones. */
export const AWS_RESERVED: ReadonlySet<string> = new Set([
  ...RESERVED_HEADERS,
  BODY_ENCODING,
  EMPTY_HEADERS,
  DEAD_LETTER_HEADERS,
]);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const looseUtf8 = /* @__PURE__ */ new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * SQS/SNS bodies and string attributes take the XML 1.0 Char production: tab, LF, CR,
 * U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF. In well-formed UTF-16 (no lone surrogates:
 * astral characters are pairs) what is left outside it are these code units, found by a scan
 * without the `u` flag (code units, not code points: several times faster on long texts).
 * Global, for `replace`; `search` (which ignores `lastIndex`) tests with it.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const NOT_XML_SAFE = /[\0-\x08\v\f\x0e-\x1f\ufffe\uffff]/g;

/** Not in the es2023 lib typings; Node ≥ 20 has them. */
type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/** True when `s` can travel as an SQS/SNS string (body or attribute value). */
export function xmlSafe(s: string): boolean {
  return (s as WellFormed).isWellFormed() && s.search(NOT_XML_SAFE) < 0;
}

/** Replaces what SQS/SNS cannot carry with U+FFFD (for texts we write: reasons), cut at `max`. */
export function sanitize(s: string, max = Infinity): string {
  return cut((s as WellFormed).toWellFormed().replace(NOT_XML_SAFE, '\ufffd'), max);
}

/** A body as it travels: the text and its `body_encoding`, if any. */
export interface WireBody {
  readonly text: string;
  readonly encoding?: 'base64' | 'empty';
}

/** Bytes → wire text: as is when it is non-empty XML-safe UTF-8, else base64 or the empty marker. */
export function encodeBody(bytes: Uint8Array): WireBody {
  if (bytes.byteLength === 0) return { text: EMPTY_PLACEHOLDER, encoding: 'empty' };
  try {
    const text = strictUtf8.decode(bytes);
    if (xmlSafe(text)) return { text };
  } catch {
    // not UTF-8: base64
  }
  return { text: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
}

/** Wire text → bytes, by its `body_encoding`. */
export function decodeBody(text: string, encoding: string | undefined): Uint8Array {
  return encoding === 'empty'
    ? new Uint8Array(0)
    : encoding === 'base64'
      ? new Uint8Array(Buffer.from(text, 'base64'))
      : utf8.encode(text);
}

const bodyCache = new WeakMap<OutgoingMessage, WireBody>();

/** {@link encodeBody}, computed once per outgoing message. */
export function wireBody(m: OutgoingMessage): WireBody {
  let b = bodyCache.get(m);
  if (!b) {
    b = encodeBody(m.body);
    bodyCache.set(m, b);
  }
  return b;
}

/** The message's own fields that travel as attributes, in wire order (`message_id` follows). */
const FIELDS = [
  [WIRE.target, 'target'],
  [WIRE.contentType, 'contentType'],
  [WIRE.correlationId, 'correlationId'],
  [WIRE.replyTo, 'replyTo'],
] as const;

/** The string attributes of an outgoing message (a dead-letter copy too), in wire order. */
export function wireAttributes(
  m: OutgoingMessage,
  options: { messageId?: boolean } = {},
): [string, string][] {
  if (m.deadLetter) return deadLetterAttributes(m, m.deadLetter);
  const attrs: [string, string][] = [];
  for (const [name, field] of FIELDS) {
    const v = m[field];
    if (v !== undefined) attrs.push([name, v]);
  }
  if (options.messageId) attrs.push([WIRE.messageId, m.messageId]);
  const encoding = wireBody(m).encoding;
  if (encoding) attrs.push([BODY_ENCODING, encoding]);
  pushHeaders(attrs, m.headers);
  return attrs;
}

function pushHeaders(attrs: [string, string][], headers: Readonly<Record<string, string>>): void {
  const empty: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (v === '') empty.push(k);
    else attrs.push([k, v]);
  }
  if (empty.length > 0) attrs.push([EMPTY_HEADERS, empty.join(',')]);
}

/**
 * The attributes of a dead-letter copy: the original's own, the reason, the user headers —
 * as attributes when each can be one and all fit, else packed as JSON into
 * `dead_letter_headers` — and the delivery count where there is room (at most 10 in all).
 * The target may be empty (a message that carried none).
 */
function deadLetterAttributes(
  m: OutgoingMessage,
  reason: NonNullable<OutgoingMessage['deadLetter']>,
): [string, string][] {
  const out: [string, string][] = [];
  // what the original carried travels whole (it came off SQS/SNS, so it is carriable already);
  // an empty field is left out, but content_type and message_id always travel ("-" if empty)
  for (const [name, field] of [...FIELDS, [WIRE.messageId, 'messageId'] as const]) {
    const v = sanitize(m[field] ?? '');
    if (v || field === 'contentType' || field === 'messageId') out.push([name, v || '-']);
  }
  const encoding = wireBody(m).encoding;
  if (encoding) out.push([BODY_ENCODING, encoding]);
  out.push(
    [WIRE.deadLetterReason, reason.code],
    [WIRE.deadLetterDescription, sanitize(reason.description, 4096) || '-'],
  );
  // A null-prototype object: a header named "__proto__" is data like any other.
  const user: Record<string, string> = Object.create(null);
  let direct = true;
  for (const k of Object.keys(m.headers)) {
    const v = m.headers[k]!;
    if (k === WIRE.deadLetterTruncated) {
      out.push([k, sanitize(v, 32)]);
      continue;
    }
    user[k] = v;
    if (!carriableHeader(k, v)) direct = false;
  }
  // (no user headers: nothing to push, and out has room for it)
  const attrs: [string, string][] = [];
  if (direct) pushHeaders(attrs, user);
  if (direct && out.length + attrs.length <= MAX_ATTRIBUTES) out.push(...attrs);
  // JSON escapes control characters and lone surrogates; sanitize only replaces what is left
  else out.push([DEAD_LETTER_HEADERS, sanitize(JSON.stringify(user), 200_000)]);
  if (out.length < MAX_ATTRIBUTES) out.push([WIRE.deliveryCount, String(reason.deliveryCount)]);
  return out;
}

/** A received header that can travel as an attribute of its own on a dead-letter copy. */
function carriableHeader(k: string, v: string): boolean {
  // the AWS SDK v3 drops an attribute named "__proto__" on receive
  return k !== '__proto__' && headerProblem(k, '') === undefined && xmlSafe(v);
}

/**
 * SQS `MessageAttributes` of an outgoing message. Every name is an own property (`__proto__`
 * too: defined, not assigned, which would set the prototype).
 */
export function sqsAttributes(
  m: OutgoingMessage,
  options: { messageId?: boolean } = {},
): Record<string, { DataType: 'String'; StringValue: string }> {
  const out: Record<string, { DataType: 'String'; StringValue: string }> = {};
  for (const [k, v] of wireAttributes(m, options)) {
    put(out, k, { DataType: 'String', StringValue: v });
  }
  return out;
}

/**
 * SQS/SNS attribute names: 1–256 of A-Z, a-z, 0-9, `_`, `-`, `.`; no leading, trailing or
 * doubled `.`; no `AWS.` or `Amazon.` prefix (any case).
 */
const NAME = /^(?!\.|.*(\.\.|\.$)|(aws|amazon)\.)[\w.-]{1,256}$/i;

/** Why `name` is not a valid SQS/SNS attribute name, or undefined when it is. */
export function attributeNameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : NAME_RULE;
}

const NAME_RULE =
  'names take 1-256 of A-Za-z0-9_-. (no leading, trailing or double "."; "AWS."/"Amazon." are reserved)';

/** Why a user header's name cannot travel as an attribute, or undefined when it can. */
function headerProblem(k: string, where: string): string | undefined {
  if (k === WIRE.traceparent) return undefined;
  if (AWS_RESERVED.has(k)) return `is reserved by cloudmom on ${where}`;
  if (!NAME.test(k)) return `cannot travel on ${where}: ${NAME_RULE}`;
  return undefined;
}

/**
 * Checks that SQS/SNS can carry the message: header names, values, the attribute count.
 * Throws InvalidMessageError naming the problem.
 */
export function validateWire(
  m: OutgoingMessage,
  where: string,
  options: { messageId?: boolean } = {},
): void {
  for (const k of Object.keys(m.headers)) {
    const problem = headerProblem(k, where);
    if (problem) throw new InvalidMessageError(`header "${k}" ${problem}`);
  }
  // the values of the fields and headers, as they travel
  const attrs = wireAttributes(m, options);
  for (const [k, v] of attrs)
    if (!xmlSafe(v))
      throw new InvalidMessageError(
        `attribute "${k}" has characters ${where} cannot carry (control, lone surrogate)`,
      );
  const count = attrs.length;
  if (count > MAX_ATTRIBUTES) {
    throw new InvalidMessageError(
      `${count} attributes (fields and headers): ${where} carries at most ${MAX_ATTRIBUTES}`,
    );
  }
}

/** Wire size as SQS/SNS count it: body text plus each attribute's name, type and value. */
export function measureWire(m: OutgoingMessage, options: { messageId?: boolean } = {}): number {
  let n = Buffer.byteLength(wireBody(m).text);
  for (const [k, v] of wireAttributes(m, options))
    n += Buffer.byteLength(k) + Buffer.byteLength(v) + 6; // 6 = "String"
  return n;
}

/** Attributes as received, reduced to strings (Binary as base64, Number as text). */
export type ReceivedAttributes = Record<string, string>;

/** The pieces of a received message the adapters read off the wire. */
export interface WireIn {
  readonly text: string;
  readonly attributes: ReceivedAttributes;
  readonly messageId: string;
  readonly deliveryCount: number;
  readonly publishedAt?: Date;
  readonly groupKey?: string;
  readonly raw: unknown;
  /** Receipt handle (long-running consumer). */
  readonly ackId?: string;
  /** Queue URL or ARN it was received from. */
  readonly source?: string;
}

/** Builds the core's IncomingMessage from what came off the wire (envelopes already unwrapped). */
export function toIncoming(w: WireIn): IncomingMessage {
  const m = new ReceivedMessage(
    w.text,
    w.messageId,
    w.deliveryCount,
    w.publishedAt,
    w.groupKey,
    w.raw,
    w.ackId,
    w.source,
  );
  const a = w.attributes;
  for (const k in a) m.add(k, a[k]!);
  return m.done();
}

/**
 * A received SQS/SNS message, filled in one received attribute at a time ({@link add}) and
 * then {@link done}: one object per message, no reader beside it. Plain text (no
 * `body_encoding`) stays text — the core's JSON and text codecs decode it directly — and
 * `body`, its UTF-8, is made only if something asks for it (custom codecs, dead letters).
 */
class ReceivedMessage implements IncomingMessage {
  declare text: string | undefined;
  target: string | undefined = undefined;
  declare messageId: string;
  contentType: string | undefined = undefined;
  headers: Record<string, string> = NO_HEADERS;
  correlationId: string | undefined = undefined;
  replyTo: string | undefined = undefined;
  declare readonly deliveryCount: number;
  declare readonly groupKey: string | undefined;
  declare readonly raw: unknown;
  declare readonly ackId: string | undefined;
  declare readonly source: string | undefined;
  poison: DeadLetterReason | undefined = undefined;
  #publishedAt: Date | string | undefined;
  #encoding: string | undefined = undefined;
  #body: Uint8Array | undefined = undefined;

  constructor(
    text: string,
    messageId: string,
    deliveryCount: number,
    publishedAt: Date | string | undefined,
    groupKey: string | undefined,
    raw: unknown,
    ackId: string | undefined,
    source: string | undefined,
  ) {
    this.text = text;
    this.messageId = messageId;
    this.deliveryCount = deliveryCount;
    this.#publishedAt = publishedAt;
    this.groupKey = groupKey;
    this.raw = raw;
    this.ackId = ackId;
    this.source = source;
  }

  /** One received attribute (a string) into the core's fields. */
  add(k: string, v: string): void {
    // a switch for the usual fields: each a store of its own (one table and a keyed store made
    // P1, the Lambda dispatch, 3% slower)
    switch (k) {
      case WIRE.target:
        this.target = v;
        return;
      case WIRE.contentType:
        this.contentType = v;
        return;
      case WIRE.correlationId:
        this.correlationId = v;
        return;
      case WIRE.replyTo:
        this.replyTo = v;
        return;
      case WIRE.messageId:
        this.messageId = v;
        return;
    }
    if (k === BODY_ENCODING) this.#encoding = v;
    else if (k === EMPTY_HEADERS) {
      for (const name of v.split(',')) if (name) put(this.#headers(), name, '');
    } else if (k === DEAD_LETTER_HEADERS) unpackHeaders(v, this.#headers());
    else if (!DEAD_LETTER_ONLY.has(k)) put(this.#headers(), k, v);
  }

  /** The headers, to write into (the shared empty object replaced on first use). */
  #headers(): Record<string, string> {
    if (this.headers === NO_HEADERS) this.headers = {};
    return this.headers;
  }

  /** After the last attribute: a `body_encoding` decodes the text into bytes (or poisons it). */
  done(): this {
    const e = this.#encoding;
    if (e === undefined) return this;
    this.#body = decodeBody(this.text!, e);
    this.text = undefined;
    if (e !== 'base64' && e !== 'empty')
      this.poison = {
        code: 'undecodable',
        description: `unknown ${BODY_ENCODING} "${cut(e, 40)}"`,
      };
    return this;
  }

  /** Made on first use: from the `SentTimestamp` text a Lambda record carries, or a Date. */
  get publishedAt(): Date | undefined {
    const p = this.#publishedAt;
    if (typeof p !== 'string') return p;
    const d = sentAt(p);
    this.#publishedAt = d;
    return d;
  }

  get body(): Uint8Array {
    if (this.#body === undefined) this.#body = utf8.encode(this.text ?? '');
    return this.#body;
  }
}

/** What a dead-letter copy carries about itself: not headers of the message. */
const DEAD_LETTER_ONLY: ReadonlySet<string> = /* @__PURE__ */ new Set([
  WIRE.deadLetterReason,
  WIRE.deadLetterDescription,
  WIRE.deadLetterTruncated,
  WIRE.deliveryCount,
]);

function unpackHeaders(packed: string, into: Record<string, string>): void {
  try {
    const extra = JSON.parse(packed) as Record<string, unknown>;
    for (const [k, v] of Object.entries(extra)) if (typeof v === 'string') put(into, k, v);
  } catch {
    // not ours: leave the attribute out
  }
}

/** An SNS notification as found in an SQS body (subscription without raw delivery). */
export interface SnsEnvelope {
  readonly Type: string;
  readonly MessageId: string;
  readonly TopicArn: string;
  readonly Message: string;
  readonly Timestamp?: string;
  readonly MessageAttributes?: Record<string, { Type?: string; Value?: string }>;
}

/** Parses `text` as an SNS notification envelope; undefined when it is not one. */
export function parseSnsEnvelope(text: string): SnsEnvelope | undefined {
  if (text.charCodeAt(0) !== 123 /* { */ || !text.includes('"TopicArn"')) return undefined;
  let e: Record<string, unknown> | null;
  try {
    e = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (
    e?.Type !== 'Notification' ||
    typeof e.Message !== 'string' ||
    typeof e.TopicArn !== 'string' ||
    typeof e.MessageId !== 'string'
  )
    return undefined;
  return e as unknown as SnsEnvelope;
}

/** SNS-style attributes (`{Type, Value}`), their string values, into a received message. */
function addSnsAttributes(
  m: ReceivedMessage,
  attrs: Record<string, { Type?: string; Value?: string }> | undefined,
): void {
  // for-in reads nothing from undefined, null or a primitive's characters (not objects)
  for (const k in attrs) {
    const v = attrs[k];
    if (v && typeof v === 'object' && typeof v.Value === 'string') m.add(k, v.Value);
  }
}

/**
 * Unwraps an SNS envelope found in an SQS body into the message it carries; `base`: the SQS
 * message as read (its delivery count, send time, group key, raw message, receipt and source).
 */
function fromEnvelope(env: SnsEnvelope, base: ReceivedMessage): IncomingMessage {
  const ts = env.Timestamp ? new Date(env.Timestamp) : undefined;
  const m = new ReceivedMessage(
    env.Message,
    env.MessageId,
    base.deliveryCount,
    ts && !Number.isNaN(ts.getTime()) ? ts : base.publishedAt,
    base.groupKey,
    base.raw,
    base.ackId,
    base.source,
  );
  addSnsAttributes(m, env.MessageAttributes);
  return m.done();
}

/** UTF-8 text of bytes, lossy (for logs of foreign bodies; never of bodies by default). */
export function lossyText(bytes: Uint8Array): string {
  return looseUtf8.decode(bytes);
}

// ---- received messages: SDK messages and Lambda records ----

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

/** `v` if it is a string (a field of a record that may be malformed), else undefined. */
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The Date of a `SentTimestamp` (milliseconds as text), if it is one. */
function sentAt(s: string | undefined): Date | undefined {
  const sent = Number(s);
  return Number.isFinite(sent) && sent > 0 ? new Date(sent) : undefined;
}

/** A message read off SQS: the one its body's SNS envelope carries, when it has no target and one. */
function unwrapped(m: ReceivedMessage, body: string): IncomingMessage {
  const env = m.target === undefined ? parseSnsEnvelope(body) : undefined;
  return env ? fromEnvelope(env, m) : m.done();
}

/**
 * An SQS message as ReceiveMessage returns it (all attributes asked) → the core's message,
 * SNS envelopes unwrapped; `ackId` is its receipt handle, `source` the queue URL.
 */
export function fromSqsMessage(m: Message, source: string): IncomingMessage {
  const a = m.Attributes ?? {};
  const deliveryCount = Math.max(1, Number(a.ApproximateReceiveCount) || 1);
  const publishedAt = a.SentTimestamp; // the Date is made when read
  const groupKey = a.MessageGroupId;
  const text = m.Body ?? '';
  const ackId = m.ReceiptHandle;
  const out = new ReceivedMessage(
    text,
    m.MessageId ?? '',
    deliveryCount,
    publishedAt,
    groupKey,
    m,
    ackId,
    source,
  );
  const attrs = m.MessageAttributes;
  if (attrs) {
    for (const k in attrs) {
      // the SDK leaves an attribute it could not read (one named "__proto__") undefined
      const v = attrs[k];
      if (!v) continue;
      if (v.StringValue !== undefined) out.add(k, v.StringValue);
      else if (v.BinaryValue !== undefined)
        out.add(k, Buffer.from(v.BinaryValue).toString('base64'));
    }
  }
  return unwrapped(out, text);
}

/**
 * An SQS record of a Lambda event → the core's message; an SNS envelope in the body is
 * unwrapped. `source` is the record's `eventSourceARN` (where dead letters are looked up).
 */
export function fromSqsRecord(record: SqsRecord): IncomingMessage {
  const a = record.attributes ?? {};
  const deliveryCount = Math.max(1, Number(a.ApproximateReceiveCount) || 1);
  // the Date is made if something reads it (a handler, a log line): most never do
  const publishedAt = str(a.SentTimestamp);
  const groupKey = str(a.MessageGroupId);
  const source = str(record.eventSourceARN);
  const out = new ReceivedMessage(
    record.body,
    record.messageId,
    deliveryCount,
    publishedAt,
    groupKey,
    record,
    undefined,
    source,
  );
  const attrs = record.messageAttributes as Record<string, SqsRecordAttribute | undefined>;
  // for-in reads nothing from undefined, null or a primitive's characters (not objects)
  for (const k in attrs) {
    const v = attrs[k];
    if (!v || typeof v !== 'object') continue;
    if (typeof v.stringValue === 'string') out.add(k, v.stringValue);
    else if (typeof v.binaryValue === 'string') out.add(k, v.binaryValue);
  }
  return unwrapped(out, record.body);
}

/**
 * An SNS record (topic → Lambda) → the core's message. SNS invokes Lambda asynchronously and
 * the event carries no attempt count: `deliveryCount` is 1 on every attempt. `source` is the
 * subscription ARN (not a queue: dead letters need the broker's `deadLetterQueue`).
 */
export function fromSnsRecord(record: SnsRecord): IncomingMessage {
  const s = record.Sns;
  const ts = new Date(s.Timestamp);
  const m = new ReceivedMessage(
    s.Message,
    s.MessageId,
    1,
    Number.isNaN(ts.getTime()) ? undefined : ts,
    undefined,
    record,
    undefined,
    str(record.EventSubscriptionArn) ?? s.TopicArn,
  );
  addSnsAttributes(m, s.MessageAttributes);
  return m.done();
}

/** The same message marked as never to be handled again (the core dead-letters it with `reason`). */
export function withPoison(m: IncomingMessage, reason: DeadLetterReason): IncomingMessage {
  return {
    body: m.body,
    text: m.text,
    target: m.target,
    messageId: m.messageId,
    contentType: m.contentType,
    headers: m.headers,
    correlationId: m.correlationId,
    replyTo: m.replyTo,
    deliveryCount: m.deliveryCount,
    publishedAt: m.publishedAt,
    groupKey: m.groupKey,
    ackId: m.ackId,
    source: m.source,
    poison: reason,
    raw: m.raw,
  };
}
