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
 */
import type { ServiceBusMessage } from '@azure/service-bus';
import type { OutgoingMessage } from '../../src/transport.ts';

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

const utf8 = new TextEncoder();
const byteLength = (s: string | undefined) => (s === undefined ? 0 : Buffer.byteLength(s, 'utf8'));

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
  const native: ServiceBusMessage = {
    body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength),
    messageId: m.deduplicationId ?? m.messageId,
    contentType: m.contentType,
    subject: m.target,
  };
  if (m.correlationId !== undefined) native.correlationId = m.correlationId;
  if (m.replyTo !== undefined) native.replyTo = m.replyTo;
  if (m.groupKey !== undefined) native.sessionId = m.groupKey;
  if (m.delaySeconds !== undefined && m.delaySeconds > 0)
    native.scheduledEnqueueTimeUtc = new Date(Date.now() + m.delaySeconds * 1000);
  if (Object.keys(m.headers).length > 0) native.applicationProperties = { ...m.headers };
  return native;
}

/** Bytes of all properties: application properties plus the system ones cloudmom sets. */
export function propertiesSize(m: OutgoingMessage): number {
  let n = 0;
  for (const [k, v] of Object.entries(m.headers)) n += byteLength(k) + byteLength(v);
  n += byteLength(m.target) + byteLength(m.correlationId) + byteLength(m.replyTo);
  n += byteLength(m.contentType) + byteLength(m.deduplicationId ?? m.messageId);
  n += byteLength(m.groupKey);
  return n;
}

/**
 * Size of a message as Service Bus counts it (body + properties), with the AMQP encoding
 * overhead, measured against `createMessageBatch` (a fixed part, per application property and
 * per optional system property). Slightly conservative: a message measured at the limit fits
 * the link.
 *
 * @example
 * ```ts
 * measureServiceBus(message) <= 256 * 1024; // fits the Standard tier
 * ```
 */
export function measureServiceBus(m: OutgoingMessage): number {
  // Application properties count about twice their bytes in the SDK's batch accounting.
  let headers = Object.keys(m.headers).length > 0 ? 24 : 0;
  for (const [k, v] of Object.entries(m.headers)) headers += 12 + byteLength(k) + byteLength(v);
  let optional = 0;
  for (const v of [m.correlationId, m.replyTo, m.groupKey]) if (v !== undefined) optional++;
  if (m.delaySeconds) optional++;
  return m.body.byteLength + propertiesSize(m) + 192 + headers + 48 * optional;
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
 * text, dates as ISO 8601, null and undefined dropped, anything else as JSON.
 */
export function headersFromProperties(props: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  if (typeof props !== 'object' || props === null || Array.isArray(props)) return headers;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'string') headers[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
      headers[k] = String(v);
    else if (v instanceof Date)
      headers[k] = Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
    else {
      try {
        headers[k] = JSON.stringify(v) ?? String(v);
      } catch {
        headers[k] = String(v);
      }
    }
  }
  return headers;
}
