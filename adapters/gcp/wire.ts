/**
 * The Pub/Sub wire mapping (ARCHITECTURE §3), pure functions: what cloudmom writes into a
 * Pub/Sub message's attributes and reads back (dead-letter copies included), the platform's
 * limits, reply addresses, and what a gRPC error means for the core (retryable, its code).
 */
import { type ErrorCode, InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';
import type { DeadLetterReason, IncomingMessage, OutgoingMessage } from '../../src/transport.ts';
import * as WIRE from '../../src/wire-names.ts';

/** Pub/Sub limits (https://cloud.google.com/pubsub/quotas#resource_limits). */
export const LIMITS = {
  /** Bytes per message: data + attribute names and values + ordering key. */
  messageBytes: 10_000_000,
  attributes: 100,
  attributeKeyBytes: 256,
  attributeValueBytes: 1024,
  orderingKeyBytes: 1024,
  /** Messages and bytes per publish request. */
  requestMessages: 1000,
  requestBytes: 10_000_000,
  /** Bytes per publish request the Node client sends at most (its `BATCH_LIMITS`: 9 MiB). */
  clientRequestBytes: 9 * 1024 * 1024,
} as const;

/**
 * Attribute carrying the instance part of a reply address (`<topic>#<key>`): each requester's
 * reply subscription filters on it, so replies on a shared reply topic reach only their
 * requester. Reserved by the gcp adapter, as the core reserves its own attribute names.
 *
 * @example
 * ```ts
 * // the filter of an instance's reply subscription
 * const filter = `attributes.${REPLY_KEY} = "${instanceId}"`;
 * ```
 */
export const REPLY_KEY = 'reply_key';

/** Attributes cloudmom reads as its own; every other attribute is a user header. */
const OWN: ReadonlySet<string> = new Set([
  WIRE.target,
  WIRE.contentType,
  WIRE.correlationId,
  WIRE.replyTo,
  REPLY_KEY,
]);

/** UTF-8 length without encoding (hot: runs for every attribute of every publish). */
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
/** True when `s` is over `max` UTF-8 bytes; short strings (≤ 3 bytes a char) skip counting. */
const over = (s: string, max: number) => s.length > max || (s.length * 3 > max && bytes(s) > max);

/**
 * Sets `record[name] = value` so that every name is data: `__proto__` becomes an own property
 * (a plain assignment would set the prototype and lose the header).
 */
export function setOwn(record: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__')
    Object.defineProperty(record, name, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else record[name] = value;
}

/** `projects/<p>/topics/<name>` for a short or full topic name. */
export function topicPath(project: string, name: string): string {
  if (name.startsWith('projects/')) return name;
  return `projects/${project}/topics/${name}`;
}

/** `projects/<p>/subscriptions/<name>` for a short or full subscription name. */
export function subscriptionPath(project: string, name: string): string {
  if (name.startsWith('projects/')) return name;
  return `projects/${project}/subscriptions/${name}`;
}

/** The project of a full resource name, if it is one. */
export function projectOf(name: string): string | undefined {
  const m = /^projects\/([^/]+)\//.exec(name);
  return m?.[1];
}

/**
 * Splits a reply address `projects/<p>/topics/<t>#<key>` into the topic and the key; an
 * address without `#` is a plain topic (replies carry no key).
 */
export function parseAddress(address: string): { topic: string; key?: string } {
  const i = address.indexOf('#');
  if (i < 0) return { topic: address };
  return { topic: address.slice(0, i), key: address.slice(i + 1) };
}

/** The reply key of a message's destination (`<topic>#<key>`), if any. */
function replyKey(m: OutgoingMessage): string | undefined {
  return m.destination === undefined ? undefined : parseAddress(m.destination).key;
}

/**
 * The attributes a message carries on Pub/Sub: its headers, then cloudmom's own. A
 * dead-letter copy (`m.deadLetter`) is fitted into Pub/Sub's limits instead, see
 * {@link deadLetterAttributes}.
 */
export function toAttributes(m: OutgoingMessage): Record<string, string> {
  if (m.deadLetter) return deadLetterAttributes(m);
  // Spreading defines own properties: a `__proto__` header stays a header.
  const a: Record<string, string> = { ...m.headers };
  if (m.target !== '') a[WIRE.target] = m.target;
  a[WIRE.contentType] = m.contentType;
  if (m.correlationId !== undefined) a[WIRE.correlationId] = m.correlationId;
  if (m.replyTo !== undefined) a[WIRE.replyTo] = m.replyTo;
  const key = replyKey(m);
  if (key !== undefined) a[REPLY_KEY] = key;
  return a;
}

/**
 * The attributes of a dead-letter copy: the original's own (target — none when it had none —,
 * content type, correlation id, reply address), `dead_letter_reason`,
 * `dead_letter_description`, `delivery_count` and the original `message_id`, then as many
 * user headers as fit Pub/Sub's limits (100 attributes; names Pub/Sub refuses are skipped;
 * values cut to 1024 bytes). A copy is never refused for its attributes.
 */
export function deadLetterAttributes(m: OutgoingMessage): Record<string, string> {
  const dl = m.deadLetter;
  const own: [string, string][] = [];
  if (m.target !== '') own.push([WIRE.target, m.target]);
  own.push([WIRE.contentType, m.contentType]);
  if (m.correlationId !== undefined) own.push([WIRE.correlationId, m.correlationId]);
  if (m.replyTo !== undefined) own.push([WIRE.replyTo, m.replyTo]);
  if (dl) {
    own.push([WIRE.deadLetterReason, dl.code]);
    own.push([WIRE.deadLetterDescription, dl.description]);
    own.push([WIRE.deliveryCount, String(dl.deliveryCount)]);
  }
  own.push([WIRE.messageId, m.messageId]);
  const ownNames = new Set(own.map(([k]) => k));
  const out: Record<string, string> = {};
  let room = LIMITS.attributes - own.length;
  for (const k of Object.keys(m.headers)) {
    if (room <= 0) break;
    if (ownNames.has(k) || k === REPLY_KEY || !attributeNameAllowed(k)) continue;
    setOwn(out, k, truncateUtf8(m.headers[k]!, LIMITS.attributeValueBytes));
    room--;
  }
  for (const [k, v] of own) out[k] = truncateUtf8(v, LIMITS.attributeValueBytes);
  return out;
}

/** True when Pub/Sub accepts `name` as an attribute name (not empty, ≤ 256 bytes, no `goog` prefix). */
function attributeNameAllowed(name: string): boolean {
  return (
    name !== '' &&
    !over(name, LIMITS.attributeKeyBytes) &&
    !(name.length >= 4 && name.slice(0, 4).toLowerCase() === 'goog')
  );
}

/** cloudmom's own attributes of a message (names and values), without building an object. */
function ownAttributes(m: OutgoingMessage): [string, string][] {
  const own: [string, string][] = [[WIRE.contentType, m.contentType]];
  if (m.target !== '') own.push([WIRE.target, m.target]);
  if (m.correlationId !== undefined) own.push([WIRE.correlationId, m.correlationId]);
  if (m.replyTo !== undefined) own.push([WIRE.replyTo, m.replyTo]);
  const key = replyKey(m);
  if (key !== undefined) own.push([REPLY_KEY, key]);
  return own;
}

/** Size of a message as Pub/Sub counts it: data, attribute names and values, ordering key. */
export function measure(m: OutgoingMessage): number {
  let n = m.body.byteLength;
  if (m.groupKey !== undefined) n += bytes(m.groupKey);
  if (m.deadLetter) {
    const a = deadLetterAttributes(m);
    for (const k of Object.keys(a)) n += bytes(k) + bytes(a[k]!);
    return n;
  }
  for (const k in m.headers) n += bytes(k) + bytes(m.headers[k]!);
  for (const [k, v] of ownAttributes(m)) n += bytes(k) + bytes(v);
  return n;
}

/** Refuses, before anything is sent, a message Pub/Sub would refuse. */
export function validate(m: OutgoingMessage): void {
  const names = Object.keys(m.headers);
  for (const k of names) {
    if (k === REPLY_KEY)
      throw new InvalidMessageError(`header "${k}" is reserved by cloudmom's Pub/Sub mapping`);
  }
  const own = ownAttributes(m);
  const count = own.length + names.length;
  if (count > LIMITS.attributes) {
    throw new InvalidMessageError(
      `a Pub/Sub message carries at most ${LIMITS.attributes} attributes; this one needs ${count} (headers plus cloudmom's own)`,
    );
  }
  const check = (k: string, v: string) => {
    if (k.length >= 4 && k.slice(0, 4).toLowerCase() === 'goog')
      throw new InvalidMessageError(`Pub/Sub attribute names must not start with "goog": "${k}"`);
    if (over(k, LIMITS.attributeKeyBytes))
      throw new InvalidMessageError(
        `Pub/Sub attribute name of ${bytes(k)} bytes exceeds ${LIMITS.attributeKeyBytes}: "${k.slice(0, 40)}…"`,
      );
    if (over(v, LIMITS.attributeValueBytes))
      throw new InvalidMessageError(
        `Pub/Sub attribute "${k.slice(0, 64)}" has a value of ${bytes(v)} bytes; the limit is ${LIMITS.attributeValueBytes}`,
      );
  };
  for (const k of names) check(k, m.headers[k]!);
  for (const [k, v] of own) check(k, v);
  if (m.groupKey !== undefined && bytes(m.groupKey) > LIMITS.orderingKeyBytes)
    throw new InvalidMessageError(
      `groupKey (Pub/Sub ordering key) of ${bytes(m.groupKey)} bytes exceeds ${LIMITS.orderingKeyBytes}`,
    );
}

/** A received Pub/Sub message in the shape every source (streaming pull, push, CloudEvent) shares. */
export interface WireMessage {
  readonly id: string;
  readonly data: Uint8Array;
  readonly attributes: Readonly<Record<string, string>>;
  readonly publishTime?: Date;
  readonly orderingKey?: string;
  /** 1 on first delivery; Pub/Sub sets it only with a dead-letter policy. */
  readonly deliveryAttempt: number;
}

/** Where a received message came from and how it is settled (streaming pull only). */
export interface Receipt {
  /** The settle handle (the client's `Message`). */
  readonly ackId?: unknown;
  /** The subscription's full name. */
  readonly source?: string;
  /** Why the message can never be handled (set by an entrypoint's decoder). */
  readonly poison?: DeadLetterReason;
}

/** A received message as the core takes it. Never throws. */
export function fromWire(w: WireMessage, raw: unknown, receipt: Receipt = {}): IncomingMessage {
  const a = w.attributes;
  const headers: Record<string, string> = {};
  for (const k of Object.keys(a)) if (!OWN.has(k)) setOwn(headers, k, a[k]!);
  const target = a[WIRE.target];
  return {
    body: w.data,
    target: target === '' ? undefined : target,
    messageId: w.id,
    contentType: a[WIRE.contentType],
    headers,
    correlationId: a[WIRE.correlationId],
    replyTo: a[WIRE.replyTo],
    deliveryCount: Math.max(w.deliveryAttempt || 1, 1),
    publishedAt: w.publishTime,
    groupKey: w.orderingKey === '' ? undefined : w.orderingKey,
    ackId: receipt.ackId,
    source: receipt.source,
    poison: receipt.poison,
    raw,
  };
}

/** Cuts a string to at most `max` UTF-8 bytes, on a character boundary. */
export function truncateUtf8(s: string, max: number): string {
  if (!over(s, max)) return s;
  let out = '';
  let n = 0;
  for (const ch of s) {
    const b = bytes(ch);
    if (n + b > max - 3) break;
    out += ch;
    n += b;
  }
  return `${out}…`;
}

/** gRPC status codes the adapter reads. */
export const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const RETRYABLE: ReadonlySet<number> = new Set([
  GRPC.CANCELLED,
  GRPC.UNKNOWN,
  GRPC.DEADLINE_EXCEEDED,
  GRPC.RESOURCE_EXHAUSTED,
  GRPC.ABORTED,
  GRPC.INTERNAL,
  GRPC.UNAVAILABLE,
]);

/** The gRPC status code of a client error, if it has one. */
export function grpcCode(err: unknown): number | undefined {
  const code =
    err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/**
 * True when the same call may succeed later: throttling, network, unavailable, deadline —
 * and errors without a gRPC status (a connection that failed before answering).
 */
export function isRetryable(err: unknown): boolean {
  const code = grpcCode(err);
  return code === undefined || RETRYABLE.has(code);
}

/** The core's code for a client error: a topic or subscription that does not exist is `not-found`. */
export function errorCode(err: unknown): ErrorCode {
  return grpcCode(err) === GRPC.NOT_FOUND ? 'not-found' : 'send-failed';
}

/**
 * A subscription filter that selects the given targets (`attributes.target = "a" OR …`), for
 * deployments that route one target (or a few) per subscription. Filters are fixed when the
 * subscription is created and limited to 256 bytes.
 *
 * @example
 * ```ts
 * import { targetFilter } from 'cloudmom/gcp';
 * await pubsub.createSubscription('orders', 'orders-billing', { filter: targetFilter('billing') });
 * // filter: attributes.target = "billing"
 * ```
 */
export function targetFilter(...targets: string[]): string {
  if (targets.length === 0)
    throw new InvalidArgumentError('targetFilter: name at least one target');
  const filter = targets
    .map((t) => {
      if (typeof t !== 'string' || t === '' || /["\\]/.test(t))
        throw new InvalidArgumentError(
          `targetFilter: target must be a non-empty string without quotes or backslashes, got ${JSON.stringify(t)}`,
        );
      return `attributes.${WIRE.target} = "${t}"`;
    })
    .join(' OR ');
  if (bytes(filter) > 256)
    throw new InvalidArgumentError(
      `targetFilter: the filter is ${bytes(filter)} bytes; Pub/Sub allows 256`,
    );
  return filter;
}

/** The filter of an instance's reply subscription: `attributes.reply_key = "<instanceId>"`. */
export function replyFilter(instanceId: string): string {
  return `attributes.${REPLY_KEY} = "${instanceId}"`;
}
