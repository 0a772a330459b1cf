/**
 * The Pub/Sub wire mapping (ARCHITECTURE §3): what cloudmom writes into a Pub/Sub message's
 * attributes and reads back, the platform's limits, and reply addresses.
 */
import { InvalidArgumentError, InvalidMessageError } from '../../src/errors.ts';
import {
  type DeadLetterReason,
  type IncomingMessage,
  type OutgoingMessage,
  WIRE,
} from '../../src/transport.ts';

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
} as const;

/**
 * Attribute carrying the instance part of a reply address (`<topic>#<key>`): each requester's
 * reply subscription filters on it, so replies on a shared reply topic reach only their
 * requester. Reserved by the gcp adapter, as the names of {@link WIRE} are by the core.
 *
 * @example
 * ```ts
 * // the filter of an instance's reply subscription
 * const filter = `attributes.${REPLY_KEY} = "${instanceId}"`;
 * ```
 */
export const REPLY_KEY = 'reply_key';

/** Own attribute names a header could also use (traceparent travels as a header). */
const RESERVED: Readonly<Record<string, true>> = {
  [WIRE.target]: true,
  [WIRE.contentType]: true,
  [WIRE.correlationId]: true,
  [WIRE.replyTo]: true,
  [REPLY_KEY]: true,
};

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

/** The attributes a message carries on Pub/Sub. */
export function toAttributes(m: OutgoingMessage): Record<string, string> {
  const a: Record<string, string> = { ...m.headers };
  a[WIRE.target] = m.target;
  a[WIRE.contentType] = m.contentType;
  if (m.correlationId !== undefined) a[WIRE.correlationId] = m.correlationId;
  if (m.replyTo !== undefined) a[WIRE.replyTo] = m.replyTo;
  const key = replyKey(m);
  if (key !== undefined) a[REPLY_KEY] = key;
  return a;
}

/** cloudmom's own attributes of a message (names and values), without building an object. */
function ownAttributes(m: OutgoingMessage): [string, string][] {
  const own: [string, string][] = [
    [WIRE.target, m.target],
    [WIRE.contentType, m.contentType],
  ];
  if (m.correlationId !== undefined) own.push([WIRE.correlationId, m.correlationId]);
  if (m.replyTo !== undefined) own.push([WIRE.replyTo, m.replyTo]);
  const key = replyKey(m);
  if (key !== undefined) own.push([REPLY_KEY, key]);
  return own;
}

/** Size of a message as Pub/Sub counts it: data, attribute names and values, ordering key. */
export function measure(m: OutgoingMessage): number {
  let n = m.body.byteLength;
  for (const k in m.headers) n += bytes(k) + bytes(m.headers[k]!);
  for (const [k, v] of ownAttributes(m)) n += bytes(k) + bytes(v);
  if (m.groupKey !== undefined) n += bytes(m.groupKey);
  return n;
}

/** Refuses, before anything is sent, a message Pub/Sub would refuse. */
export function validate(m: OutgoingMessage): void {
  for (const k of Object.keys(m.headers)) {
    if (k === REPLY_KEY)
      throw new InvalidMessageError(`header "${k}" is reserved by cloudmom's Pub/Sub mapping`);
  }
  const own = ownAttributes(m);
  let count = own.length;
  for (const k in m.headers) if (!(k in RESERVED)) count++;
  if (count > LIMITS.attributes) {
    throw new InvalidMessageError(
      `a Pub/Sub message carries at most ${LIMITS.attributes} attributes; this one needs ${count} (headers plus cloudmom's own)`,
    );
  }
  const entries: [string, string][] = [...Object.entries(m.headers), ...own];
  for (const [k, v] of entries) {
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
  }
  if (m.groupKey !== undefined && bytes(m.groupKey) > LIMITS.orderingKeyBytes)
    throw new InvalidMessageError(
      `groupKey (Pub/Sub ordering key) of ${bytes(m.groupKey)} bytes exceeds ${LIMITS.orderingKeyBytes}`,
    );
}

/** A received Pub/Sub message in the shape every source (pull, push, CloudEvent) shares. */
export interface WireMessage {
  readonly id: string;
  readonly data: Uint8Array;
  readonly attributes: Readonly<Record<string, string>>;
  readonly publishTime?: Date;
  readonly orderingKey?: string;
  /** 1 on first delivery; Pub/Sub sets it only with a dead-letter policy. */
  readonly deliveryAttempt: number;
}

/** A received message as the core takes it. */
export function fromWire(w: WireMessage, raw: unknown): IncomingMessage {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(w.attributes)) if (!OWN.has(k)) headers[k] = v;
  const a = w.attributes;
  return {
    body: w.data,
    target: a[WIRE.target] === '' ? undefined : a[WIRE.target],
    messageId: w.id,
    contentType: a[WIRE.contentType],
    headers,
    correlationId: a[WIRE.correlationId],
    replyTo: a[WIRE.replyTo],
    deliveryCount: Math.max(w.deliveryAttempt || 1, 1),
    publishedAt: w.publishTime,
    groupKey: w.orderingKey === '' ? undefined : w.orderingKey,
    raw,
  };
}

/**
 * The attributes of a dead-lettered message: its own (as received, or rebuilt), plus
 * `dead_letter_reason`, `dead_letter_description` and the original `message_id`, within
 * Pub/Sub's limits (user headers are dropped last-first if the count would exceed 100).
 */
export function deadLetterAttributes(
  m: IncomingMessage,
  reason: DeadLetterReason,
): Record<string, string> {
  const own: Record<string, string> = {};
  if (m.target !== undefined) own[WIRE.target] = m.target;
  if (m.contentType !== undefined) own[WIRE.contentType] = m.contentType;
  if (m.correlationId !== undefined) own[WIRE.correlationId] = m.correlationId;
  if (m.replyTo !== undefined) own[WIRE.replyTo] = m.replyTo;
  own[WIRE.deadLetterReason] = reason.code;
  own[WIRE.deadLetterDescription] = truncateUtf8(reason.description, LIMITS.attributeValueBytes);
  own[WIRE.messageId] = m.messageId;
  const out: Record<string, string> = {};
  let room = LIMITS.attributes - Object.keys(own).length;
  for (const [k, v] of Object.entries(m.headers)) {
    if (room <= 0) break;
    if (k in own || bytes(k) > LIMITS.attributeKeyBytes || /^goog/i.test(k)) continue;
    out[k] = truncateUtf8(v, LIMITS.attributeValueBytes);
    room--;
  }
  for (const [k, v] of Object.entries(own)) out[k] = truncateUtf8(v, LIMITS.attributeValueBytes);
  return out;
}

/** Cuts a string to at most `max` UTF-8 bytes, on a character boundary. */
export function truncateUtf8(s: string, max: number): string {
  if (bytes(s) <= max) return s;
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
