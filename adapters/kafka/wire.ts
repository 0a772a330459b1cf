/**
 * The Kafka wire mapping (ARCHITECTURE §3): how an {@link OutgoingMessage} becomes a Kafka
 * record and a record (from a consumer fetch or a Lambda event) becomes an
 * {@link IncomingMessage}, the limits, and reply addresses. Pure functions, no SDK.
 *
 * - value: the encoded body, as bytes;
 * - key: the `groupKey` (UTF-8), so the same key lands on the same partition, in order; a
 *   reply address's instance key on replies;
 * - headers (UTF-8 values): the user headers, then cloudmom's own — `target`, `content_type`,
 *   `message_id`, `correlation_id`, `reply_to`, and on a dead-letter copy
 *   `dead_letter_reason`, `dead_letter_description`, `delivery_count`.
 */
import { InvalidMessageError } from '../../src/errors.ts';
import { setOwn, utf8Length } from '../../src/publisher.ts';
import type { DeadLetterReason, IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import { asBuffer, BoundedMap, EMPTY } from '../../src/util.ts';
import * as WIRE from '../../src/wire-names.ts';

/** Defaults and limits of the mapping. */
export const LIMITS = {
  /**
   * Largest message by default, as `measure` counts it (value + key + header names and
   * values). Kafka's own default (`message.max.bytes`, 1 048 588 bytes per record batch;
   * Event Hubs 1 046 528) leaves room for the record and batch framing above it.
   */
  maxMessageBytes: 1_000_000,
  /** Records per produce call by default (one record batch per partition). */
  maxBatchMessages: 500,
  /** Topic names: 1–249 of `[a-zA-Z0-9._-]`. */
  topicName: /^[a-zA-Z0-9._-]{1,249}$/,
} as const;

/** The reply topic when none is configured. */
export const DEFAULT_REPLY_TOPIC = 'cloudmom-replies';
/** Suffix of the dead-letter topic of a topic when none is configured: `orders` → `orders.dlt`. */
export const DEAD_LETTER_SUFFIX = '.dlt';

/** Header names cloudmom reads as its own; every other header is a user header. */
const OWN: ReadonlySet<string> = new Set([
  WIRE.target,
  WIRE.contentType,
  WIRE.messageId,
  WIRE.correlationId,
  WIRE.replyTo,
  WIRE.deliveryCount,
  WIRE.deadLetterReason,
  WIRE.deadLetterDescription,
]);

/** cloudmom's own header names by length (ASCII: one byte a character). */
const OWN_BY_LENGTH: string[][] = [];
for (const n of OWN) {
  const same = OWN_BY_LENGTH[n.length] ?? [];
  same.push(n);
  OWN_BY_LENGTH[n.length] = same;
}

/** The own header name these bytes spell, without decoding them; else undefined. */
function ownName(k: Uint8Array): string | undefined {
  const names = OWN_BY_LENGTH[k.byteLength];
  if (names === undefined) return undefined;
  next: for (const n of names) {
    for (let i = 0; i < n.length; i++) if (k[i] !== n.charCodeAt(i)) continue next;
    return n;
  }
  return undefined;
}

/** True when `name` is a valid Kafka topic name. */
export function isTopicName(name: string): boolean {
  return LIMITS.topicName.test(name) && name !== '.' && name !== '..';
}

/**
 * Splits an address — a topic, or a reply address `<topic>#<key>` — into the topic and the
 * record key replies carry. Throws InvalidMessageError for a malformed one.
 *
 * @example
 * ```ts
 * parseAddress('cloudmom-replies#5f0c…'); // { topic: 'cloudmom-replies', key: '5f0c…' }
 * parseAddress('orders'); // { topic: 'orders' }
 * ```
 */
export function parseAddress(address: string): { topic: string; key?: string } {
  const i = address.indexOf('#');
  const topic = i < 0 ? address : address.slice(0, i);
  if (!isTopicName(topic))
    throw new InvalidMessageError(
      `"${address.slice(0, 300)}" is not a Kafka topic (1–249 of a-z A-Z 0-9 . _ -) or a reply address <topic>#<key>`,
    );
  if (i < 0) return { topic };
  const key = address.slice(i + 1);
  if (key === '') throw new InvalidMessageError(`reply address "${address}" has an empty key`);
  return { topic, key };
}

/** The reply address of an instance: `<topic>#<key>`. */
export function replyAddress(topic: string, key: string): string {
  return `${topic}#${key}`;
}

/**
 * Record keys that are not UTF-8 (a foreign producer's binary key), by message id: the group
 * key carries them lossily, so a dead-letter copy takes its key from here, byte for byte.
 */
const binaryKeys = new BoundedMap<string, Uint8Array>(10_000);

/** A record to produce (the shape `Producer.send` takes with the default byte serialisers). */
export interface RecordOut {
  readonly topic: string;
  readonly key?: Buffer;
  readonly value: Buffer;
  readonly headers: Map<Buffer, Buffer>;
}

const nameBuffers = new Map<string, Buffer>();
/** Header names as bytes, cached for cloudmom's own (the same few on every record). */
function nameBuffer(name: string): Buffer {
  let b = nameBuffers.get(name);
  if (b === undefined) {
    b = Buffer.from(name, 'utf8');
    if (OWN.has(name)) nameBuffers.set(name, b);
  }
  return b;
}

/**
 * Calls `f` with each of cloudmom's own headers of a message, in wire order (no array per
 * message: this runs twice a publish, to measure and to build the record).
 */
function eachOwnHeader<A>(
  m: OutgoingMessage,
  f: (k: string, v: string, acc: A) => void,
  acc: A,
): void {
  if (m.target !== '') f(WIRE.target, m.target, acc);
  f(WIRE.contentType, m.contentType, acc);
  f(WIRE.messageId, m.messageId, acc);
  if (m.correlationId !== undefined) f(WIRE.correlationId, m.correlationId, acc);
  if (m.replyTo !== undefined) f(WIRE.replyTo, m.replyTo, acc);
  const dl = m.deadLetter;
  if (dl) {
    f(WIRE.deadLetterReason, dl.code, acc);
    f(WIRE.deadLetterDescription, dl.description, acc);
    f(WIRE.deliveryCount, String(dl.deliveryCount), acc);
  }
}

const setOwnHeader = (k: string, v: string, headers: Map<Buffer, Buffer>) => {
  headers.set(nameBuffer(k), Buffer.from(v, 'utf8'));
};
const countOwnHeader = (k: string, v: string, n: { bytes: number }) => {
  n.bytes += k.length + utf8Length(v);
};

let lastAddress: string | undefined;
let lastParsed: { readonly topic: string; readonly key?: string } | undefined;
/** `parseAddress` remembering the last address (every publish to one topic parses the same one). */
function parsed(address: string): { readonly topic: string; readonly key?: string } {
  if (address !== lastAddress || lastParsed === undefined) {
    lastParsed = parseAddress(address);
    lastAddress = address;
  }
  return lastParsed;
}

/** The record key of a message: a reply address's key, else its group key. */
function keyOf(m: OutgoingMessage, defaultTopic: string): { topic: string; key?: string } {
  const { topic, key } = parsed(m.destination ?? defaultTopic);
  return { topic, key: key ?? m.groupKey };
}

/**
 * The record for a message; `defaultTopic` when the message has no destination.
 *
 * @example
 * ```ts
 * const record = toRecord(message, 'orders');
 * await producer.send({ messages: [record] });
 * ```
 */
export function toRecord(m: OutgoingMessage, defaultTopic: string): RecordOut {
  const { topic, key } = keyOf(m, defaultTopic);
  const binary = m.deadLetter ? binaryKeys.get(m.messageId) : undefined;
  const headers = new Map<Buffer, Buffer>();
  for (const k in m.headers)
    headers.set(Buffer.from(k, 'utf8'), Buffer.from(m.headers[k]!, 'utf8'));
  eachOwnHeader(m, setOwnHeader, headers);
  const value = asBuffer(m.body);
  if (binary) return { topic, key: Buffer.from(binary), value, headers };
  return key === undefined
    ? { topic, value, headers }
    : { topic, key: Buffer.from(key, 'utf8'), value, headers };
}

/**
 * Size of a message as counted against `maxMessageBytes`: value, key, and every header name
 * and value (the record framing, a few dozen bytes, is left to the limit's headroom).
 */
export function measure(m: OutgoingMessage): number {
  let n = m.body.byteLength;
  const i = m.destination === undefined ? -1 : m.destination.indexOf('#');
  const key = i >= 0 ? m.destination!.slice(i + 1) : m.groupKey;
  if (key !== undefined) n += utf8Length(key);
  for (const k in m.headers) n += utf8Length(k) + utf8Length(m.headers[k]!);
  const own = { bytes: 0 };
  eachOwnHeader(m, countOwnHeader, own);
  return n + own.bytes;
}

/** Refuses, before anything is sent, what Kafka cannot carry (a malformed destination). */
export function validate(m: OutgoingMessage, defaultTopic: string): void {
  parsed(m.destination ?? defaultTopic);
}

/**
 * A received record in the shape every source shares: a consumer fetch (`@platformatic/kafka`
 * `Message`) and a Lambda MSK / self-managed Kafka event record both map onto it.
 */
export interface WireRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** Milliseconds since the epoch; negative when the record has none. */
  readonly timestamp?: bigint | number;
  readonly key: Uint8Array | null | undefined;
  readonly value: Uint8Array | null | undefined;
  /** In wire order; a later header of the same name wins. */
  readonly headers: Iterable<
    readonly [Uint8Array | null | undefined, Uint8Array | null | undefined]
  >;
}

const strict = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8');
const NO_BYTES = new Uint8Array(0);

/**
 * The message id of a record that carries no `message_id` header (a foreign producer):
 * `<topic>/<partition>/<offset>`, unique and stable across redeliveries.
 */
export function recordId(topic: string, partition: number, offset: bigint): string {
  return `${topic}/${partition}/${offset}`;
}

/**
 * A received record as the core takes it. cloudmom's own headers must be UTF-8 (else the
 * message is poison: `undecodable`); user header values that are not UTF-8 are decoded with
 * U+FFFD replacements (the raw bytes stay in `raw`). A record key that is empty or absent
 * gives no group key; one that is not UTF-8 gives a lossy group key, and its dead-letter copy
 * still gets the original key bytes. `deliveryCount` is 1: redeliveries are counted by the source.
 *
 * @example
 * ```ts
 * const m = fromRecord({ topic: 'orders', partition: 0, offset: 5n, key: null, value, headers: [] }, raw);
 * ```
 */
export function fromRecord(
  r: WireRecord,
  raw: unknown,
  extra: { ackId?: unknown; deliveryCount?: number } = {},
): IncomingMessage {
  return decodeRecord(
    r.topic,
    r.partition,
    r.offset,
    r.timestamp,
    r.key,
    r.value,
    r.headers,
    raw,
    extra.ackId,
    extra.deliveryCount ?? 1,
  );
}

/**
 * The group key of a record key: none when it is empty or absent, a lossy one (U+FFFD
 * replacements) when it is not UTF-8 — then, given the message's id, its bytes are remembered
 * so a dead-letter copy carries the original key.
 */
export function groupKeyOf(
  recordKey: Uint8Array | null | undefined,
  messageId?: string,
): string | undefined {
  if (!recordKey || recordKey.byteLength === 0) return undefined;
  try {
    return strict.decode(recordKey);
  } catch {
    if (messageId !== undefined) binaryKeys.set(messageId, recordKey);
    return lossy.decode(recordKey);
  }
}

/** The last value of an own header that most records repeat (target, content type). */
interface Repeated {
  bytes: Uint8Array;
  text: string;
}
const lastTarget: Repeated = { bytes: NO_BYTES, text: '' };
const lastContentType: Repeated = { bytes: NO_BYTES, text: '' };

/**
 * Strict UTF-8 of a header value, the last one's text again when the bytes are the same (a
 * few bytes compared cost less than a decode and a new string). Throws as `strict.decode`.
 */
function repeated(last: Repeated, v: Uint8Array): string {
  const b = last.bytes;
  if (b.byteLength === v.byteLength) {
    let i = 0;
    while (i < b.byteLength && b[i] === v[i]) i++;
    if (i === b.byteLength) return last.text;
  }
  const text = strict.decode(v);
  if (v.byteLength <= 256) {
    // a copy (Buffer#slice would be a view): the record's bytes are a view of the whole fetch response
    last.bytes = new Uint8Array(v);
    last.text = text;
  }
  return text;
}

/** Headers of a record that has none beside cloudmom's own (shared, read-only). */
const NO_HEADERS: Readonly<Record<string, string>> = EMPTY;

/**
 * {@link fromRecord} from the record's fields (a consumer's `Message` needs no
 * {@link WireRecord} made for it). Own headers go to locals, not to a map by name: this runs
 * once per received record. `groupKey`: the record key as {@link groupKeyOf} already decoded
 * it (a source that ordered the record by it), not decoded again.
 */
export function decodeRecord(
  topic: string,
  partition: number,
  offset: bigint,
  timestamp: bigint | number | undefined,
  recordKey: Uint8Array | null | undefined,
  value: Uint8Array | null | undefined,
  entries: WireRecord['headers'],
  raw: unknown,
  ackId: unknown,
  deliveryCount: number,
  groupKey?: string,
): IncomingMessage {
  let headers: Record<string, string> | undefined;
  let target: string | undefined;
  let messageId: string | undefined;
  let contentType: string | undefined;
  let correlationId: string | undefined;
  let replyTo: string | undefined;
  let poison: DeadLetterReason | undefined;
  for (const [k, v] of entries) {
    if (!k) continue;
    let name = ownName(k);
    if (name === undefined) {
      name = lossy.decode(k);
      if (!OWN.has(name)) {
        headers ??= {};
        setOwn(headers, name, lossy.decode(v ?? NO_BYTES));
        continue;
      }
    }
    let text: string;
    try {
      const bytes = v ?? NO_BYTES;
      text =
        name === WIRE.target
          ? repeated(lastTarget, bytes)
          : name === WIRE.contentType
            ? repeated(lastContentType, bytes)
            : strict.decode(bytes);
    } catch {
      poison ??= { code: 'undecodable', description: `header "${name}" is not valid UTF-8` };
      continue;
    }
    switch (name) {
      case WIRE.target:
        target = text;
        break;
      case WIRE.messageId:
        messageId = text;
        break;
      case WIRE.contentType:
        contentType = text;
        break;
      case WIRE.correlationId:
        correlationId = text;
        break;
      case WIRE.replyTo:
        replyTo = text;
        break;
    }
  }
  if (!messageId) messageId = recordId(topic, partition, offset);
  // a key that may have been decoded lossily: decoded again, to remember its bytes
  const key =
    groupKey === undefined || groupKey.includes('\uFFFD')
      ? groupKeyOf(recordKey, messageId)
      : groupKey;
  const ts = timestamp === undefined ? -1 : Number(timestamp);
  return {
    body: value ?? NO_BYTES,
    target: target === '' ? undefined : target,
    messageId,
    contentType,
    headers: headers ?? NO_HEADERS,
    correlationId,
    replyTo,
    deliveryCount,
    publishedAt: ts >= 0 ? new Date(ts) : undefined,
    groupKey: key,
    ackId,
    source: topic,
    poison,
    raw,
  };
}

/** The dead-letter headers of a record, if it is a dead-letter copy (for tools reading a DLT). */
export function deadLetterOf(
  r: Pick<WireRecord, 'headers'>,
): (DeadLetterReason & { deliveryCount?: number }) | undefined {
  let code: string | undefined;
  let description = '';
  let count: number | undefined;
  for (const [k, v] of r.headers) {
    if (!k) continue;
    const name = lossy.decode(k);
    const value = lossy.decode(v ?? NO_BYTES);
    if (name === WIRE.deadLetterReason) code = value;
    else if (name === WIRE.deadLetterDescription) description = value;
    else if (name === WIRE.deliveryCount) count = Number(value);
  }
  if (code === undefined) return undefined;
  return {
    code: code as DeadLetterReason['code'],
    description,
    ...(count !== undefined && Number.isFinite(count) ? { deliveryCount: count } : {}),
  };
}
