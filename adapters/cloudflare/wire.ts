/**
 * The Cloudflare Queues wire mapping (ARCHITECTURE §3). A queue message has no headers or
 * attributes — only `id`, `timestamp`, `body` and `attempts` — so what other platforms carry as
 * attributes travels in a small versioned JSON envelope, sent with the queue content type
 * `json`:
 *
 * ```json
 * { "cloudmom": 1,
 *   "attributes": { "target": "orders", "message_id": "…", "content_type": "application/json",
 *                   "correlation_id": "…", "reply_to": "…", "traceparent": "…", "x-tenant": "a" },
 *   "body": { "id": 7 } }
 * ```
 *
 * - `attributes` is the flat string map SQS, SNS and Pub/Sub carry: cloudmom's own names
 *   (`WIRE`: `target`, `content_type`, `correlation_id`, `reply_to`, `message_id`, and on
 *   dead-letter copies `dead_letter_reason`, `dead_letter_description`, `delivery_count`) next to
 *   the user headers (`traceparent` among them). A bridge moving a message to another platform
 *   copies them as they are and the message keeps its meaning.
 * - The body is exactly one of: `body`, a JSON value (JSON content types whose bytes are the
 *   canonical JSON text of that value, so the bytes come back identical); `text`, the UTF-8
 *   text (text content types, and JSON that is not canonical or not valid); `base64`, the bytes
 *   (anything else, `application/octet-stream` always). base64 costs a third more than the bytes:
 *   a bytes body can be up to ~95.8 KB of the 128 KB limit (see docs/cloudflare.md for the
 *   measured alternatives, the `v8` and `bytes` content types, and why the envelope uses JSON).
 * - `cloudmom` is the envelope version. A body that is not an envelope (another producer's
 *   message, a `bytes`/`v8` message, a newer version) is poison: dead-lettered as `undecodable`,
 *   its own body kept.
 *
 * Sizes are measured on the envelope: its UTF-8 JSON length plus the ~100 bytes of internal
 * metadata Cloudflare counts (128 KB a message; 100 messages and 256 KB a `sendBatch`).
 */
import { InvalidMessageError } from '../../src/errors.ts';
import { setOwn, utf8Length } from '../../src/publisher.ts';
import type { DeadLetterReason, IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import * as WIRE from '../../src/wire-names.ts';

/** Cloudflare Queues limits (https://developers.cloudflare.com/queues/platform/limits/; 1 KB = 1000 B). */
export const LIMITS = {
  /** Bytes per message, metadata included. */
  messageBytes: 128_000,
  /** Internal metadata Cloudflare counts towards a message's size ("up to ~100 bytes"). */
  metadataBytes: 100,
  /** Messages and bytes per `sendBatch` call. */
  batchMessages: 100,
  batchBytes: 256_000,
  /** Longest `delaySeconds` when sending or retrying (12 h). */
  maxDelaySeconds: 43_200,
} as const;

/** The envelope version this adapter writes and reads. */
export const ENVELOPE_VERSION = 1;

/**
 * A cloudmom message as it travels on a Cloudflare queue (the message body, content type `json`).
 *
 * @example
 * ```ts
 * // publishing from outside cloudmom (e.g. the Queues HTTP API) a message cloudmom dispatches:
 * const envelope: Envelope = { cloudmom: 1, attributes: { target: 'orders', content_type: 'application/json' }, body: { id: 7 } };
 * ```
 */
export interface Envelope {
  readonly cloudmom: typeof ENVELOPE_VERSION;
  /** cloudmom's own attributes (`target`, `content_type`, `correlation_id`…) and the user headers; string values. */
  readonly attributes: Readonly<Record<string, string>>;
  /** A JSON value (JSON content types). */
  readonly body?: unknown;
  /** UTF-8 text. */
  readonly text?: string;
  /** Bytes, base64 (RFC 4648, with padding). */
  readonly base64?: string;
}

/** The message a Worker's `queue()` handler receives (the runtime's `Message`), as far as cloudmom reads it. */
export interface QueueMessage<Body = unknown> {
  readonly id: string;
  readonly timestamp: Date;
  readonly body: Body;
  /** 1 on the first delivery. */
  readonly attempts: number;
}

/** Attributes cloudmom reads as its own; every other attribute is a user header. */
const OWN: ReadonlySet<string> = new Set([
  WIRE.target,
  WIRE.contentType,
  WIRE.correlationId,
  WIRE.replyTo,
  WIRE.messageId,
]);

const utf8 = new TextEncoder();
/** Keeps a leading BOM (it is part of the bytes); refuses invalid UTF-8. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `text/plain; charset=utf-8` → `text/plain`. */
function mediaType(contentType: string): string {
  const i = contentType.indexOf(';');
  return (i < 0 ? contentType : contentType.slice(0, i)).trim().toLowerCase();
}

function isJsonType(media: string): boolean {
  return media === 'application/json' || media.endsWith('+json');
}

/** The attributes of a message: the user headers, then cloudmom's own names. */
export function toAttributes(m: OutgoingMessage): Record<string, string> {
  const a: Record<string, string> = {};
  for (const k of Object.keys(m.headers)) setOwn(a, k, m.headers[k]!);
  if (m.target !== '') a[WIRE.target] = m.target;
  a[WIRE.messageId] = m.messageId;
  a[WIRE.contentType] = m.contentType;
  if (m.correlationId !== undefined) a[WIRE.correlationId] = m.correlationId;
  if (m.replyTo !== undefined) a[WIRE.replyTo] = m.replyTo;
  const dl = m.deadLetter;
  if (dl) {
    a[WIRE.deadLetterReason] = dl.code;
    a[WIRE.deadLetterDescription] = bounded(dl.description, 4096);
    a[WIRE.deliveryCount] = String(dl.deliveryCount);
  }
  return a;
}

/** The envelope of an encoded message. */
export function toEnvelope(m: OutgoingMessage): Envelope {
  const attributes = toAttributes(m);
  const media = mediaType(m.contentType);
  if (media !== 'application/octet-stream') {
    const text = utf8Text(m.body);
    if (text !== undefined) {
      if (isJsonType(media)) {
        const value = canonicalJson(text);
        if (value !== NOT_CANONICAL) return { cloudmom: ENVELOPE_VERSION, attributes, body: value };
      }
      return { cloudmom: ENVELOPE_VERSION, attributes, text };
    }
  }
  return { cloudmom: ENVELOPE_VERSION, attributes, base64: toBase64(m.body) };
}

const NOT_CANONICAL: unique symbol = Symbol('not canonical JSON');

/** The value of a JSON text when `JSON.stringify` of it gives the same text back. */
function canonicalJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_CANONICAL;
  }
  return JSON.stringify(value) === text ? value : NOT_CANONICAL;
}

/** Bytes as text when they are valid UTF-8. */
function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** An envelope ready to send, with its size as Cloudflare counts it. */
export interface Encoded {
  readonly envelope: Envelope;
  /** UTF-8 bytes of the envelope's JSON text plus {@link LIMITS.metadataBytes}. */
  readonly bytes: number;
}

/** Envelopes already built for a message (by `measure`), reused by `send`. */
const built = new WeakMap<OutgoingMessage, Encoded>();

/** The envelope of a message and its size; built once per message. */
export function encode(m: OutgoingMessage): Encoded {
  let e = built.get(m);
  if (!e) {
    const envelope = toEnvelope(m);
    e = { envelope, bytes: utf8Length(JSON.stringify(envelope)) + LIMITS.metadataBytes };
    built.set(m, e);
  }
  return e;
}

/**
 * Size of a message as Cloudflare counts it: the envelope's UTF-8 JSON length plus ~100 bytes
 * of metadata. The limit is {@link LIMITS.messageBytes}.
 */
export function measure(m: OutgoingMessage): number {
  return encode(m).bytes;
}

/** Refuses, before anything is sent, a message Cloudflare Queues would refuse. */
export function validate(m: OutgoingMessage): void {
  const d = m.delaySeconds;
  if (d !== undefined && !(Number.isInteger(d) && d >= 0 && d <= LIMITS.maxDelaySeconds)) {
    throw new InvalidMessageError(
      `delaySeconds must be an integer from 0 to ${LIMITS.maxDelaySeconds} (12 h) on Cloudflare Queues, got ${String(d)}`,
    );
  }
}

function bounded(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

// ---- receiving ----

/** Extra fields of a received message that depend on how it was received. */
export interface ReceiveContext {
  /** Settlement handle, for sources that settle by id. */
  readonly ackId?: unknown;
  /** The queue it came from (`batch.queue`). */
  readonly source?: string;
  /** The native message for `properties.raw`; default the message itself. */
  readonly raw?: unknown;
}

/**
 * A received queue message as the core takes it. Never throws: a body that is not a cloudmom
 * envelope comes back with `poison` set (and its own body, to keep in the dead-letter copy).
 */
export function fromQueueMessage(m: QueueMessage, context: ReceiveContext = {}): IncomingMessage {
  const raw = context.raw ?? m;
  const base = {
    messageId: m.id,
    deliveryCount: Math.max(1, Number.isInteger(m.attempts) ? m.attempts : 1),
    publishedAt: m.timestamp instanceof Date ? m.timestamp : undefined,
    ackId: context.ackId,
    source: context.source,
    raw,
  };
  let body: unknown = m.body;
  if (typeof body === 'string') {
    // A `text` message (or the HTTP API's): an envelope if its text is one.
    try {
      body = JSON.parse(body);
    } catch {
      return poisoned(
        base,
        utf8.encode(m.body as string),
        'text/plain; charset=utf-8',
        'a text body that is not JSON',
      );
    }
    if (!isEnvelopeShaped(body))
      return poisoned(
        base,
        utf8.encode(m.body as string),
        'text/plain; charset=utf-8',
        'a text body that is not a cloudmom envelope',
      );
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const bytes =
      body instanceof ArrayBuffer
        ? new Uint8Array(body)
        : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return poisoned(
      base,
      bytes,
      'application/octet-stream',
      'a bytes body (content type bytes or v8), not a cloudmom envelope',
    );
  }
  if (!isEnvelopeShaped(body)) {
    return poisoned(
      base,
      jsonBytes(body),
      'application/json',
      'a JSON body without the cloudmom envelope',
    );
  }
  const e = body as Record<string, unknown>;
  if (e.cloudmom !== ENVELOPE_VERSION) {
    return poisoned(
      base,
      jsonBytes(body),
      'application/json',
      `cloudmom envelope version ${describe(e.cloudmom)}; this reader knows version ${ENVELOPE_VERSION}`,
    );
  }
  const attributes = e.attributes;
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    return poisoned(
      base,
      jsonBytes(body),
      'application/json',
      'the envelope has no attributes object',
    );
  }
  const a: Record<string, string> = {};
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) {
    if (typeof v !== 'string') {
      return poisoned(
        base,
        jsonBytes(body),
        'application/json',
        `envelope attribute "${bounded(k, 64)}" is not a string`,
      );
    }
    if (OWN.has(k)) a[k] = v;
    else setOwn(headers, k, v);
  }
  const message = {
    ...base,
    messageId: a[WIRE.messageId] || m.id,
    target: a[WIRE.target] === '' ? undefined : a[WIRE.target],
    contentType: a[WIRE.contentType],
    correlationId: a[WIRE.correlationId],
    replyTo: a[WIRE.replyTo],
    headers,
  };
  if (typeof e.base64 === 'string') {
    const bytes = fromBase64(e.base64);
    if (bytes === undefined) {
      return {
        ...message,
        body: utf8.encode(e.base64),
        contentType: 'text/plain; charset=utf-8',
        poison: {
          code: 'undecodable',
          description: 'the envelope\'s "base64" body is not valid base64',
        },
      };
    }
    return { ...message, body: bytes };
  }
  if (typeof e.text === 'string') return textMessage(message, e.text);
  if ('body' in e && e.body !== undefined) return textMessage(message, JSON.stringify(e.body));
  return {
    ...message,
    body: new Uint8Array(0),
    poison: {
      code: 'undecodable',
      description: 'the envelope has no body ("body", "text" or "base64")',
    },
  };
}

/** A message whose body arrived as text: `text` for codecs that read text, `body` on demand. */
function textMessage<T extends object>(
  message: T,
  text: string,
): T & { body: Uint8Array; text: string } {
  let bytes: Uint8Array | undefined;
  return {
    ...message,
    text,
    get body() {
      bytes ??= utf8.encode(text);
      return bytes;
    },
  };
}

function isEnvelopeShaped(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && 'cloudmom' in v;
}

function poisoned(
  base: Omit<IncomingMessage, 'body' | 'target' | 'headers'>,
  body: Uint8Array,
  contentType: string,
  description: string,
): IncomingMessage {
  const poison: DeadLetterReason = { code: 'undecodable', description };
  return { ...base, body, contentType, target: undefined, headers: {}, poison };
}

function jsonBytes(v: unknown): Uint8Array {
  try {
    return utf8.encode(JSON.stringify(v) ?? String(v));
  } catch {
    return utf8.encode(String(v));
  }
}

function describe(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(bounded(v, 32)) : String(v).slice(0, 32);
}

/**
 * The dead-letter fields of a message read from a dead-letter queue: the reason cloudmom wrote
 * on its copy, or `max-deliveries` for a message Cloudflare moved there itself after
 * `max_retries` (it carries no reason).
 *
 * @example
 * ```ts
 * broker.add('orders', (properties) => console.log(deadLetterInfo(properties.headers)));
 * // { code: 'handler-failed', description: 'TypeError: …', deliveryCount: 5 }
 * ```
 */
export function deadLetterInfo(headers: Readonly<Record<string, string>>): {
  code: string;
  description: string;
  deliveryCount?: number;
} {
  const code = headers[WIRE.deadLetterReason];
  if (code === undefined)
    return { code: 'max-deliveries', description: 'moved by the queue after max_retries' };
  const n = Number(headers[WIRE.deliveryCount]);
  return {
    code,
    description: headers[WIRE.deadLetterDescription] ?? '',
    ...(Number.isInteger(n) && n > 0 ? { deliveryCount: n } : {}),
  };
}

// ---- base64: workerd has Uint8Array.prototype.toBase64; Node 22 has not, but has Buffer ----

type Base64Native = { toBase64?: (this: Uint8Array) => string };
type Base64Static = { fromBase64?: (s: string) => Uint8Array };
interface NodeBuffer {
  from(data: ArrayBufferLike, offset: number, length: number): { toString(enc: 'base64'): string };
}
const nativeTo = (Uint8Array.prototype as Base64Native).toBase64;
const nativeFrom = (Uint8Array as unknown as Base64Static).fromBase64;
const NodeBuffer = (globalThis as { Buffer?: NodeBuffer }).Buffer;

/** Bytes → base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  if (nativeTo) return nativeTo.call(bytes);
  if (NodeBuffer)
    return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  return btoa(s);
}

/** base64 → bytes; undefined when it is not base64 (`atob` is strict, and faster than Buffer on Node 22). */
export function fromBase64(s: string): Uint8Array | undefined {
  try {
    if (nativeFrom) return nativeFrom(s);
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}
