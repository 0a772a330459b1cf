/**
 * The Service Bus wire mapping (ARCHITECTURE §3): pure functions, no I/O.
 *
 * | cloudmom | Service Bus |
 * |---|---|
 * | target | `subject` |
 * | correlation id | `correlationId` |
 * | reply to | `replyTo` |
 * | content type | `contentType` |
 * | message id | `messageId` (the deduplication id when one is given) |
 * | group key | `sessionId` |
 * | delay | `scheduledEnqueueTimeUtc` |
 * | headers (traceparent included) | application properties (strings) |
 * | dead-letter copy's reason | application properties `dead_letter_reason`, `dead_letter_description`, `delivery_count` |
 *
 * Two escapes, both for what a consumer other than the SDK would otherwise corrupt:
 * - the Azure Functions worker `JSON.parse`s every string of the plain binding's trigger
 *   metadata (`"1e3"` arrives as `1000`, `"null"` as `null`, a 20-digit id rounded). An id,
 *   correlation id, reply address or target that such a parse would not give back exactly
 *   also travels as an application property under its reserved cloudmom name (`message_id`,
 *   `correlation_id`, `reply_to`, `target`), which the binding hands over untouched;
 * - rhea (the AMQP library under `@azure/service-bus`) decodes application properties into a
 *   plain object, where a property named `__proto__` vanishes: a header of that name (and only
 *   one matching `%*__proto__`) travels with one more leading `%`.
 */
import type { ServiceBusMessage, ServiceBusReceivedMessage } from '@azure/service-bus';
import { describeError } from '../../src/log.ts';
import { setOwn, utf8Length } from '../../src/publisher.ts';
import type { IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import { asBuffer, BoundedMap } from '../../src/util.ts';
import * as WIRE from '../../src/wire-names.ts';

/**
 * Largest message on the Standard tier: 256 KB, properties included.
 *
 * @example
 * ```ts
 * new ServiceBusBroker({ connectionString, maxMessageBytes: 4 * STANDARD_MAX_MESSAGE_BYTES }); // Premium
 * ```
 */
export const STANDARD_MAX_MESSAGE_BYTES = 256 * 1024;
/** Largest size of all properties of one message (Standard and Premium). */
export const PROPERTIES_LIMIT_BYTES = 64 * 1024;

/**
 * True when the properties of `m` are surely within {@link PROPERTIES_LIMIT_BYTES}, counted
 * cheaply (3 bytes per UTF-16 unit at most); false means: count them ({@link propertiesSize}).
 */
export function surelySmallProperties(m: OutgoingMessage): boolean {
  let units =
    m.target.length +
    m.contentType.length +
    (m.deduplicationId ?? m.messageId).length +
    (m.correlationId?.length ?? 0) +
    (m.replyTo?.length ?? 0) +
    (m.groupKey?.length ?? 0);
  for (const k in m.headers) units += k.length + m.headers[k]!.length;
  return units * 3 + 64 + (m.deadLetter ? DEAD_LETTER_TEXT_MAX * 3 : 0) < PROPERTIES_LIMIT_BYTES;
}
/** Longest `DeadLetterReason` / `DeadLetterErrorDescription` Service Bus keeps (characters). */
export const DEAD_LETTER_TEXT_MAX = 4096;

const utf8 = new TextEncoder();
const byteLength = (s: string | undefined) => (s === undefined ? 0 : utf8Length(s));

/** The native fields that get a lossless copy when the Functions worker would alter them. */
const COPIED = [WIRE.messageId, WIRE.correlationId, WIRE.replyTo, WIRE.target] as const;

/**
 * Builds the `ServiceBusMessage` for an encoded message. The body is a Buffer so the SDK
 * sends it as one AMQP data section, untouched (a non-Buffer body would be JSON-encoded).
 *
 * @example
 * ```ts
 * const native = toServiceBusMessage({ body: new Uint8Array([1]), target: 't', messageId: 'm', contentType: 'application/octet-stream', headers: {} });
 * native.subject; // "t"
 * ```
 */
export function toServiceBusMessage(m: OutgoingMessage): ServiceBusMessage {
  const messageId = m.deduplicationId ?? m.messageId;
  // One object shape for the common case (the SDK's checks on it stay monomorphic).
  const native: ServiceBusMessage = {
    body: asBuffer(m.body),
    messageId,
    contentType: m.contentType,
    subject: m.target,
  };
  if (m.target === '') delete native.subject;
  if (m.correlationId !== undefined) native.correlationId = m.correlationId;
  if (m.replyTo !== undefined) native.replyTo = m.replyTo;
  if (m.groupKey !== undefined) native.sessionId = m.groupKey;
  if (m.delaySeconds !== undefined && m.delaySeconds > 0)
    native.scheduledEnqueueTimeUtc = new Date(Date.now() + m.delaySeconds * 1000);
  let props: Record<string, string> | undefined;
  for (const k in m.headers) {
    props ??= {};
    props[wireName(k)] = m.headers[k]!;
  }
  const copies = idCopies(messageId, m);
  if (copies !== undefined) props = props ? Object.assign(props, copies) : copies;
  const dl = m.deadLetter;
  if (dl) {
    props ??= {};
    props[WIRE.deadLetterReason] = dl.code;
    props[WIRE.deadLetterDescription] = dl.description.slice(0, DEAD_LETTER_TEXT_MAX);
    props[WIRE.deliveryCount] = String(dl.deliveryCount);
  }
  if (props !== undefined) native.applicationProperties = props;
  return native;
}

/** The reserved-name copies of the id fields the Functions worker would alter (usually none). */
function idCopies(messageId: string, m: OutgoingMessage): Record<string, string> | undefined {
  let out = withCopy(undefined, WIRE.messageId, messageId);
  out = withCopy(out, WIRE.correlationId, m.correlationId);
  out = withCopy(out, WIRE.replyTo, m.replyTo);
  return withCopy(out, WIRE.target, m.target);
}

/** `out` with `name: v` added when the worker would alter `v` (made on the first copy). */
function withCopy(
  out: Record<string, string> | undefined,
  name: (typeof COPIED)[number],
  v: string | undefined,
): Record<string, string> | undefined {
  if (v === undefined || v === '' || !workerAlters(v)) return out;
  out ??= {};
  out[name] = v;
  return out;
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const NOT_JSON: unique symbol = Symbol('not JSON');

/**
 * True when the Functions worker's `JSON.parse` of trigger metadata would not give `s` back:
 * it parses as JSON, and turning the result back into a string (`String(1000)`) is not `s`.
 * `"null"` counts as altered (a `null` may also mean "absent" in `…Array` metadata).
 *
 * @example
 * ```ts
 * workerAlters('42');      // false: 42 → "42"
 * workerAlters('1e3');     // true: 1000 → "1000"
 * workerAlters('a1b2');    // false: not JSON
 * ```
 */
export function workerAlters(s: string): boolean {
  const v = parseLikeWorker(s);
  if (v === NOT_JSON) return false;
  if (v === null || (typeof v !== 'number' && typeof v !== 'boolean')) return true;
  return String(v) !== s;
}

/** `JSON.parse(s)`, or NOT_JSON; without throwing for the usual ids (UUIDs, names). */
function parseLikeWorker(s: string): unknown {
  const c = s.charCodeAt(0);
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    // most ids that start like a number (UUIDs) hold a letter no number has: no regex for them
    if (!numberChars(s)) return NOT_JSON;
    const t = trimEndJson(s);
    return JSON_NUMBER.test(t) ? Number(t) : NOT_JSON;
  }
  if (c === 0x74 || c === 0x66 || c === 0x6e) {
    const t = trimEndJson(s);
    return t === 'true' ? true : t === 'false' ? false : t === 'null' ? null : NOT_JSON;
  }
  if (c === 0x22 || c === 0x5b || c === 0x7b || isJsonSpace(c)) {
    try {
      return JSON.parse(s);
    } catch {
      return NOT_JSON;
    }
  }
  return NOT_JSON;
}

/** True when every character may appear in a JSON number or the whitespace after it. */
function numberChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e))
      if (c !== 0x65 && c !== 0x45 && !isJsonSpace(c)) return false;
  }
  return true;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function trimEndJson(s: string): string {
  return isJsonSpace(s.charCodeAt(s.length - 1)) ? s.replace(/[ \t\n\r]+$/, '') : s;
}

/** The application property name of a header (see the module doc: `__proto__`). */
function wireName(k: string): string {
  return k.endsWith('__proto__') && /^%*__proto__$/.test(k) ? `%${k}` : k;
}

/** The header name of an application property: {@link wireName} undone. */
function headerName(k: string): string {
  return k.endsWith('__proto__') && /^%+__proto__$/.test(k) ? k.slice(1) : k;
}

/**
 * Bytes of all properties: application properties plus the system ones cloudmom sets.
 *
 * @example
 * ```ts
 * propertiesSize(message) <= PROPERTIES_LIMIT_BYTES; // Service Bus takes it
 * ```
 */
export function propertiesSize(m: OutgoingMessage): number {
  let n = 0;
  for (const k in m.headers) n += byteLength(k) + byteLength(m.headers[k]);
  n += byteLength(m.target) + byteLength(m.correlationId) + byteLength(m.replyTo);
  n += byteLength(m.contentType) + byteLength(m.deduplicationId ?? m.messageId);
  n += byteLength(m.groupKey);
  if (m.deadLetter) n += 64 + byteLength(m.deadLetter.description.slice(0, DEAD_LETTER_TEXT_MAX));
  return n;
}

/**
 * Size of a message as Service Bus counts it in a `createMessageBatch` batch (body,
 * properties and their AMQP encoding), calibrated against the SDK's own accounting: a fixed
 * part, each system string with its length prefix, each application property with its two,
 * the schedule annotation. Never less than what a message adds to a batch, a few percent more;
 * the batch itself (its envelope, which repeats the first message's properties) is left to the
 * batch limit. A message measured at the limit fits the link when sent alone.
 *
 * @example
 * ```ts
 * measureServiceBus(message) <= 256 * 1024; // fits the Standard tier
 * ```
 */
export function measureServiceBus(m: OutgoingMessage): number {
  let n = m.body.byteLength + 60;
  n += str(m.deduplicationId ?? m.messageId) + str(m.contentType) + str(m.target);
  if (m.correlationId !== undefined) n += str(m.correlationId) + 1;
  if (m.replyTo !== undefined) n += str(m.replyTo) + 1;
  if (m.groupKey !== undefined) n += str(m.groupKey) + 1;
  if (m.delaySeconds) n += 48;
  let props = 0;
  for (const k in m.headers) props += str(k) + str(m.headers[k]!);
  const copies = idCopies(m.deduplicationId ?? m.messageId, m);
  if (copies !== undefined) for (const k in copies) props += str(k) + str(copies[k]!);
  const dl = m.deadLetter;
  if (dl) {
    props += str(WIRE.deadLetterReason) + str(dl.code) + str(WIRE.deliveryCount) + 16;
    props += str(WIRE.deadLetterDescription) + str(dl.description.slice(0, DEAD_LETTER_TEXT_MAX));
  }
  return props === 0 ? n : n + 16 + props;
}

/** An AMQP string: its UTF-8 bytes and length prefix (str8 up to 255 bytes, else str32), rounded up. */
function str(s: string): number {
  const n = utf8Length(s);
  return n + (n < 256 ? 4 : 7);
}

/** The raw body bytes of a received message, whatever shape the SDK or extension gave it. */
export function bodyBytes(native: {
  body?: unknown;
  _rawAmqpMessage?: { body?: unknown };
}): Uint8Array {
  const raw = native._rawAmqpMessage?.body;
  const section = dataSection(raw);
  if (section) return section;
  return toBytes(native.body);
}

function dataSection(v: unknown): Uint8Array | undefined {
  if (typeof v === 'object' && v !== null && 'typecode' in v && 'content' in v) {
    const { typecode, content } = v as { typecode: unknown; content: unknown };
    if (typecode === 0x75 && content instanceof Uint8Array) return content;
  }
  return undefined;
}

/**
 * Re-encodes a body as bytes: bytes as they are, strings as UTF-8, data sections unwrapped,
 * anything else (a value the Functions worker parsed from JSON) back to JSON. Throws on a
 * value JSON cannot encode (BigInt, cycles).
 */
export function toBytes(body: unknown): Uint8Array {
  if (body === undefined || body === null)
    return body === null ? utf8.encode('null') : new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  const section = dataSection(body);
  if (section) return section;
  if (typeof body === 'string') return utf8.encode(body);
  const text = JSON.stringify(body);
  if (text === undefined) throw new TypeError(`a ${typeof body} body cannot be encoded`);
  return utf8.encode(text);
}

/**
 * Application properties as cloudmom headers: strings kept, numbers and booleans written as
 * text, dates as ISO 8601, null and undefined dropped, anything else as JSON. Every name is
 * kept as an own property (`__proto__` included, see the module doc); the reserved-name
 * copies of id fields are left out when `native` says what they copy.
 */
export function headersFromProperties(
  props: unknown,
  copies?: Readonly<Partial<Record<(typeof COPIED)[number], unknown>>>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof props !== 'object' || props === null || Array.isArray(props)) return headers;
  for (const k of Object.keys(props)) {
    const v = (props as Record<string, unknown>)[k];
    if (v === undefined || v === null) continue;
    if (copies !== undefined && k in copies && (copies as Record<string, unknown>)[k] === v)
      continue;
    let s: string;
    if (typeof v === 'string') s = v;
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
      s = String(v);
    else if (v instanceof Date) s = Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
    else {
      try {
        s = JSON.stringify(v) ?? String(v);
      } catch {
        s = String(v);
      }
    }
    setOwn(headers, headerName(k), s);
  }
  return headers;
}

/**
 * Turns a message received by `@azure/service-bus` (or handed by the SDK-type binding) into
 * the core's form. Never throws: a body that cannot be read as bytes (an AMQP value JSON
 * cannot encode) is marked `poison` (undecodable) with an empty body.
 *
 * @example
 * ```ts
 * const m = fromReceived(received, { ackId: received, source: 'orders' });
 * m.deliveryCount; // the AMQP header's count + 1
 * ```
 */
export function fromReceived(
  native: ServiceBusReceivedMessage,
  at: { readonly ackId?: unknown; readonly source?: string } = {},
): IncomingMessage {
  const count = native.deliveryCount;
  const enqueued = native.enqueuedTimeUtc as unknown;
  let body: Uint8Array;
  let poison: IncomingMessage['poison'];
  try {
    body = bodyBytes(native);
  } catch (err) {
    body = new Uint8Array(0);
    poison = { code: 'undecodable', description: describeError(err) };
  }
  const messageId = idString(native.messageId);
  const correlationId = idString(native.correlationId);
  const target = text(native.subject);
  const replyTo = text(native.replyTo);
  return {
    body,
    target,
    messageId: messageId ?? text(native.lockToken) ?? globalThis.crypto.randomUUID(),
    contentType: text(native.contentType),
    headers:
      native.applicationProperties === undefined
        ? {}
        : headersFromProperties(native.applicationProperties, {
            [WIRE.messageId]: messageId,
            [WIRE.correlationId]: correlationId,
            [WIRE.replyTo]: replyTo,
            [WIRE.target]: target,
          }),
    correlationId,
    replyTo,
    // The AMQP header counts earlier attempts (0 first); the JS SDK exposes it raw.
    deliveryCount: (Number.isInteger(count) && count! >= 0 ? count! : 0) + 1,
    publishedAt:
      enqueued instanceof Date && !Number.isNaN(enqueued.getTime()) ? enqueued : undefined,
    groupKey: text(native.sessionId),
    ackId: at.ackId,
    source: at.source,
    poison,
    raw: native,
  };
}

const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** A message or correlation id as the SDK gives it (string, number, Buffer...) as a string. */
function idString(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('hex') : String(v);
}

/**
 * Turns a plain Service Bus trigger invocation (the body or bodies, and
 * `context.triggerMetadata`) into the core's messages, in order. Pure; never throws: a body
 * that cannot be re-encoded as bytes is marked `poison` (undecodable).
 *
 * The Functions host hands the body as a string (the worker JSON-parses it when it can) or,
 * with `dataType: 'binary'`, as bytes; it is re-encoded: bytes as they are, strings as UTF-8 (a
 * string under a JSON content type is a parsed JSON string, written back as JSON), other values
 * as JSON. String metadata arrives JSON-parsed too: the ids are read from their lossless copy
 * when the sender made one (see the module doc), else turned back into strings. Application
 * property names arrive with their first letter lower-cased by the host.
 *
 * @example
 * ```ts
 * const [m] = fromTrigger({ n: 1 }, { messageId: 'm-1', subject: 'sum', contentType: 'application/json', deliveryCount: 1 });
 * m.target; // "sum"
 * ```
 */
export function fromTrigger(
  input: unknown,
  metadata: Record<string, unknown> | undefined,
  cardinality?: 'one' | 'many',
): IncomingMessage[] {
  const md = typeof metadata === 'object' && metadata !== null ? metadata : {};
  const many = cardinality ? cardinality === 'many' : Array.isArray(md.messageIdArray);
  if (!many) return [decodeTriggered(input, (key) => md[key])];
  const bodies = Array.isArray(input) ? input : [input];
  return bodies.map((body, i) =>
    decodeTriggered(body, (key) => {
      const arr = md[`${key}Array`];
      return Array.isArray(arr) ? arr[i] : undefined;
    }),
  );
}

function decodeTriggered(body: unknown, get: (key: string) => unknown): IncomingMessage {
  const props = get('applicationProperties') ?? get('userProperties');
  const propsObj =
    typeof props === 'object' && props !== null && !Array.isArray(props)
      ? (props as Record<string, unknown>)
      : {};
  // An id field: its copy when the sender made one that matches, else the metadata value.
  const field = (key: string, copy: string | undefined) => {
    const v = get(key);
    const c = copy === undefined ? undefined : propsObj[copy];
    if (typeof c === 'string' && c !== '' && sameAfterWorkerParse(c, v)) return c;
    return metadataString(v);
  };
  const contentType = metadataString(get('contentType'));
  let bytes: Uint8Array;
  let poison: IncomingMessage['poison'];
  try {
    bytes =
      typeof body === 'string' && contentType !== undefined && isJson(contentType)
        ? toBytes(JSON.stringify(body))
        : toBytes(body);
  } catch (err) {
    bytes = new Uint8Array(0);
    poison = { code: 'undecodable', description: describeError(err) };
  }
  const messageId = field('messageId', WIRE.messageId);
  const correlationId = field('correlationId', WIRE.correlationId);
  const replyTo = field('replyTo', WIRE.replyTo);
  const target = field('subject', WIRE.target) ?? field('label', WIRE.target);
  const count = Number(get('deliveryCount'));
  const enqueued = get('enqueuedTimeUtc');
  const publishedAt =
    enqueued instanceof Date
      ? enqueued
      : typeof enqueued === 'string' || typeof enqueued === 'number'
        ? new Date(enqueued)
        : undefined;
  return {
    body: bytes,
    target,
    messageId: messageId ?? globalThis.crypto.randomUUID(),
    contentType,
    headers: headersFromProperties(props, {
      [WIRE.messageId]: messageId,
      [WIRE.correlationId]: correlationId,
      [WIRE.replyTo]: replyTo,
      [WIRE.target]: target,
    }),
    correlationId,
    replyTo,
    deliveryCount: Number.isInteger(count) && count >= 1 ? count : 1,
    publishedAt: publishedAt && !Number.isNaN(publishedAt.getTime()) ? publishedAt : undefined,
    groupKey: metadataString(get('sessionId')),
    poison,
    raw: { body, metadata: rawMetadata(get) },
  };
}

/**
 * A string the worker JSON-parsed, turned back: exact for everything a cloudmom sender does
 * not copy (see {@link workerAlters}); `null` means absent, and objects are not ids.
 */
function metadataString(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** True when the worker, parsing `copy`, would have produced `value`. */
function sameAfterWorkerParse(copy: string, value: unknown): boolean {
  if (copy === value) return true;
  const parsed = parseLikeWorker(copy);
  if (parsed === NOT_JSON) return false;
  if (parsed === value) return true;
  if (typeof parsed === 'object' && parsed !== null && typeof value === 'object' && value !== null)
    return JSON.stringify(parsed) === JSON.stringify(value);
  return false;
}

const RAW_KEYS = [
  'messageId',
  'deliveryCount',
  'subject',
  'correlationId',
  'replyTo',
  'replyToSessionId',
  'contentType',
  'sessionId',
  'lockToken',
  'sequenceNumber',
  'enqueuedTimeUtc',
  'applicationProperties',
];

function rawMetadata(get: (key: string) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of RAW_KEYS) {
    const v = get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function isJson(contentType: string): boolean {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base.endsWith('+json');
}

/**
 * Reply sessions requests asked for (`replyToSessionId`), by reply address and correlation
 * id: whoever decodes a received message notes it, and the reply sent for it goes into that
 * session. Process-wide (an entrypoint decodes, the broker's transport sends) and bounded.
 *
 * @example
 * ```ts
 * replySessions.note(message);                        // on receipt
 * replySessions.lookup('replies', 'corr-1');          // "requester-7", when sending the reply
 * ```
 */
export const replySessions = {
  map: new BoundedMap<string, string>(10_000),
  /** Notes the reply session `message` asks for, if any. */
  note(message: IncomingMessage): void {
    if (message.replyTo === undefined) return;
    const session = replyToSessionIdOf(message.raw);
    if (session === undefined) return;
    this.map.set(`${message.replyTo}\n${message.correlationId ?? message.messageId}`, session);
  },
  /** The session a reply to `address` with `correlationId` goes into, if its request asked. */
  lookup(address: string, correlationId: string): string | undefined {
    return this.map.get(`${address}\n${correlationId}`);
  },
};

/** The `replyToSessionId` of a received message (SDK message, or plain-binding metadata). */
function replyToSessionIdOf(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as { replyToSessionId?: unknown; metadata?: { replyToSessionId?: unknown } };
  const v = r.replyToSessionId ?? r.metadata?.replyToSessionId;
  return metadataString(v);
}
