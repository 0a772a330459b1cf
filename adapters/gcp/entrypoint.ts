/**
 * Function entrypoints: Cloud Functions (2nd gen) CloudEvents from an Eventarc Pub/Sub
 * trigger, and raw Pub/Sub push requests (Cloud Run, any HTTP server). Both decode the
 * platform's envelope into one message (marking what can never be handled as poison), hand
 * it to the core with `dispatch()`, and turn the verdict into the platform's answer. They
 * never touch the transport: routing, handlers, replies and the dead-letter copy are the
 * core's. The event types are our own (no `@google-cloud/functions-framework` import at run
 * time, and no Pub/Sub client until a reply or a dead letter is sent).
 */
import type { IncomingMessage as HttpRequest, ServerResponse } from 'node:http';
import type { Broker } from '../../src/broker.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { SendError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import type { DeadLetterReason, IncomingMessage, Verdict } from '../../src/transport.ts';
import { checkNumber, checkOptionKeys } from '../../src/util.ts';
import { fromWire, LIMITS, setOwn } from './wire.ts';

/**
 * The CloudEvent type of a message published to a Pub/Sub topic.
 *
 * @example
 * ```ts
 * if (event.type === MESSAGE_PUBLISHED) await handle(event);
 * ```
 */
export const MESSAGE_PUBLISHED = 'google.cloud.pubsub.topic.v1.messagePublished';

/**
 * A Pub/Sub message as push deliveries and CloudEvents carry it (JSON: base64 `data`). Push
 * requests repeat the ids in snake_case (`message_id`, `publish_time`); both are read.
 *
 * @example
 * ```ts
 * const message: PubSubPushMessage = { data: 'IkhlbGxvIg==', attributes: { target: 'hello' }, messageId: '1', publishTime: '2026-01-01T00:00:00Z' };
 * ```
 */
export interface PubSubPushMessage {
  data?: string;
  attributes?: Record<string, string>;
  messageId?: string;
  message_id?: string;
  publishTime?: string;
  publish_time?: string;
  orderingKey?: string;
}

/**
 * The body of a Pub/Sub push request (wrapped payload), and the `data` of a
 * `messagePublished` CloudEvent.
 *
 * @example
 * ```ts
 * const envelope: PubSubPushEnvelope = {
 *   message: { data: 'IkhlbGxvIg==', attributes: { target: 'hello' }, messageId: '1' },
 *   subscription: 'projects/p/subscriptions/s',
 *   deliveryAttempt: 1,
 * };
 * ```
 */
export interface PubSubPushEnvelope {
  message: PubSubPushMessage;
  subscription?: string;
  /** Set by Pub/Sub only when the subscription has a dead-letter policy. */
  deliveryAttempt?: number;
}

/**
 * The CloudEvent a Cloud Functions (2nd gen) Pub/Sub trigger receives, as the
 * functions-framework hands it to a `cloudEvent` function.
 *
 * @example
 * ```ts
 * functions.cloudEvent('handle', (event: PubSubCloudEvent) => console.log(event.data?.message.messageId));
 * ```
 */
export interface PubSubCloudEvent {
  id?: string;
  source?: string;
  type?: string;
  specversion?: string;
  time?: string;
  data?: PubSubPushEnvelope | string | Uint8Array;
  [extension: string]: unknown;
}

/**
 * Options of {@link cloudEventHandler}.
 *
 * @example
 * ```ts
 * functions.cloudEvent('cloudmom', cloudEventHandler(broker, { maxDataBytes: 1_000_000 }));
 * ```
 */
export interface CloudEventHandlerOptions {
  /**
   * Largest decoded message data accepted, in bytes; larger data is dead-lettered with the
   * reason `undecodable`. Default: Pub/Sub's 10 MB.
   */
  maxDataBytes?: number;
}

/**
 * Options of {@link pushHandler}.
 *
 * @example
 * ```ts
 * http.createServer(pushHandler(broker, { maxRequestBytes: 16 * 1024 * 1024 })).listen(8080);
 * ```
 */
export interface PushHandlerOptions {
  /** Largest decoded message data accepted; larger is dead-lettered. Default: Pub/Sub's 10 MB. */
  maxDataBytes?: number;
  /**
   * Largest request body read, in bytes; a larger request is answered 413 (Pub/Sub then
   * redelivers it until the subscription's dead-letter policy takes it). Default 16 MiB
   * (a 10 MB message is about 13.4 MB in base64).
   */
  maxRequestBytes?: number;
}

// A plain character-class loop: a grouped pattern overflows V8's regexp stack on 10 MB data.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const utf8 = new TextEncoder();

/** Strict base64 (padding required, as Pub/Sub writes it); undefined when it is not. */
function decodeBase64(s: string): Uint8Array | undefined {
  const compact = s.includes('\n') || s.includes('\r') ? s.replace(/[\r\n]/g, '') : s;
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) return undefined;
  const b = Buffer.from(compact, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

const randomUUID = (): string => globalThis.crypto.randomUUID();

/**
 * A message standing for an envelope that is not a usable Pub/Sub message, poison with
 * `reason`: the core dead-letters it (body: what was received, as far as it could be read).
 */
function poison(
  body: Uint8Array,
  id: string | undefined,
  raw: unknown,
  reason: DeadLetterReason,
): IncomingMessage {
  return {
    body,
    target: undefined,
    messageId: id ?? `invalid-${randomUUID()}`,
    headers: {},
    deliveryCount: 1,
    poison: reason,
    raw,
  };
}

const undecodable = (description: string): DeadLetterReason => ({
  code: 'undecodable',
  description,
});

/**
 * Decodes a push envelope (or a CloudEvent's data) into a message for the core; what can
 * never be handled comes back with `poison` set (the core dead-letters it). Never throws.
 */
export function parseEnvelope(
  envelope: unknown,
  raw: unknown,
  maxDataBytes: number = LIMITS.messageBytes,
): IncomingMessage {
  try {
    return parse(envelope, raw, maxDataBytes);
  } catch (err) {
    return poison(
      new Uint8Array(0),
      undefined,
      raw,
      undecodable(`the envelope cannot be read: ${describeError(err)}`),
    );
  }
}

function parse(envelope: unknown, raw: unknown, maxDataBytes: number): IncomingMessage {
  const bad = (description: string, body: Uint8Array, id?: string) =>
    poison(body, id, raw, undecodable(description));
  const asJson = (v: unknown) => {
    try {
      return utf8.encode(JSON.stringify(v) ?? String(v));
    } catch {
      return utf8.encode(String(v));
    }
  };
  if (!isRecord(envelope) || !isRecord(envelope.message))
    return bad('not a Pub/Sub push envelope: no `message` object', asJson(envelope));
  const m = envelope.message;
  const rawId = m.messageId ?? m.message_id;
  const id = typeof rawId === 'string' && rawId !== '' ? rawId : undefined;
  const data = m.data ?? '';
  if (typeof data !== 'string')
    return bad('`message.data` is not a base64 string', asJson(envelope), id);
  if (id === undefined) return bad('the message has no `messageId`', asJson(envelope));
  const attributes: Record<string, string> = {};
  if (m.attributes !== undefined && m.attributes !== null) {
    if (!isRecord(m.attributes))
      return bad('`message.attributes` is not an object', utf8.encode(data), id);
    for (const [k, v] of Object.entries(m.attributes)) {
      if (typeof v !== 'string')
        return bad('an attribute value is not a string', utf8.encode(data), id);
      setOwn(attributes, k, v);
    }
  }
  // Base64 grows 4/3: refuse before decoding what cannot fit.
  if (Math.floor((data.length * 3) / 4) - 2 > maxDataBytes)
    return bad(
      `message data of about ${Math.floor((data.length * 3) / 4)} bytes exceeds the ${maxDataBytes}-byte limit`,
      new Uint8Array(0),
      id,
    );
  const body = decodeBase64(data);
  const rawAttempt = envelope.deliveryAttempt;
  const attempt =
    typeof rawAttempt === 'number' && Number.isInteger(rawAttempt) && rawAttempt >= 1
      ? rawAttempt
      : typeof rawAttempt === 'string' && /^[1-9]\d{0,8}$/.test(rawAttempt)
        ? Number(rawAttempt)
        : 1;
  const rawTime = m.publishTime ?? m.publish_time;
  const time = typeof rawTime === 'string' ? new Date(rawTime) : undefined;
  const orderingKey = typeof m.orderingKey === 'string' ? m.orderingKey : undefined;
  const tooLarge = body !== undefined && body.byteLength > maxDataBytes;
  return fromWire(
    {
      id,
      data: tooLarge ? new Uint8Array(0) : (body ?? utf8.encode(data)),
      attributes,
      publishTime: time && !Number.isNaN(time.getTime()) ? time : undefined,
      orderingKey,
      deliveryAttempt: attempt,
    },
    raw,
    body === undefined
      ? { poison: undecodable('`message.data` is not valid base64') }
      : tooLarge
        ? {
            poison: undecodable(
              `message data of ${body.byteLength} bytes exceeds the ${maxDataBytes}-byte limit`,
            ),
          }
        : {},
  );
}

/** The one verdict for one message (the core dead-letters poison by copy and answers `ack`). */
async function verdictOf(broker: Broker, message: IncomingMessage): Promise<Verdict> {
  try {
    const [verdict] = await dispatch(broker, [message]);
    return verdict ?? { kind: 'retry', delayMs: 0, error: new SendError('no verdict') };
  } catch (error) {
    return { kind: 'retry', delayMs: 0, error };
  }
}

function checkMaxBytes(v: unknown, name: string, fallback: number): number {
  return v === undefined ? fallback : checkNumber(v, name);
}

/**
 * A Cloud Functions (2nd gen) CloudEvent function for a Pub/Sub trigger
 * (`google.cloud.pubsub.topic.v1.messagePublished`): decodes `data.message` (base64 data,
 * attributes, messageId, publishTime, orderingKey), dispatches it by its `target` attribute,
 * and resolves once the handlers ran and their replies were published. It rejects when the
 * message must be retried (a handler failed): the framework answers 500 and Pub/Sub
 * redelivers — **only if retries are enabled on the trigger** (`--retry`, or
 * `retry_policy = "RETRY_POLICY_RETRY"` in Terraform); otherwise the event is dropped.
 * A message that can never succeed (undecodable, no target, reply not allowed...) is
 * published by the core to the broker's dead-letter topic with its reason, and the function
 * resolves (it rejects when that publish failed, so the message comes again).
 * `deliveryCount` is the event's `deliveryAttempt` where present, else 1.
 *
 * @example
 * ```ts
 * import * as functions from '@google-cloud/functions-framework';
 * import { PubSubBroker, cloudEventHandler } from 'cloudmom/gcp';
 * const broker = new PubSubBroker({ topic: 'cloudmom', deadLetterTopic: 'cloudmom-dead-letter', replyTopic: 'cloudmom-replies' });
 * broker.add('hello', () => 'Hi there too');
 * functions.cloudEvent('cloudmom', cloudEventHandler(broker));
 * ```
 */
export function cloudEventHandler(
  broker: Broker,
  options: CloudEventHandlerOptions = {},
): (event: PubSubCloudEvent) => Promise<void> {
  checkOptionKeys(options, ['maxDataBytes'], 'cloudEventHandler');
  const maxDataBytes = checkMaxBytes(options.maxDataBytes, 'maxDataBytes', LIMITS.messageBytes);
  return async (event: PubSubCloudEvent) => {
    let data: unknown = isRecord(event) ? event.data : undefined;
    if (typeof data === 'string' || data instanceof Uint8Array) {
      try {
        data = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
      } catch {
        // left as is: parseEnvelope dead-letters it
      }
    }
    if (isRecord(event) && event.type !== undefined && event.type !== MESSAGE_PUBLISHED) {
      loggerOf(broker).warn('CloudEvent of an unexpected type; reading it as Pub/Sub', {
        type: String(event.type).slice(0, 200),
        id: typeof event.id === 'string' ? event.id.slice(0, 200) : undefined,
      });
    }
    const verdict = await verdictOf(broker, parseEnvelope(data, event, maxDataBytes));
    if (verdict.kind !== 'ack') {
      const error = verdict.kind === 'retry' ? verdict.error : undefined;
      // The handler's own error: the framework logs it and answers 500.
      throw error instanceof Error
        ? error
        : new SendError(`message left for redelivery: ${describeError(error)}`, {
            cause: error,
            retryable: true,
          });
    }
  };
}

/**
 * An HTTP handler for Pub/Sub push subscriptions (wrapped payload): Cloud Run, the
 * functions-framework's `http` functions, Express or plain `node:http`. It answers 204 when
 * the message is done (handled and replied, discarded, or dead-lettered with its reason) and
 * 500 when a handler failed, so Pub/Sub redelivers with the subscription's backoff and, with
 * a dead-letter policy, the push request's `deliveryAttempt` becomes `deliveryCount`. A body
 * that is not a push envelope is dead-lettered whole (204); 405 for a method other than
 * POST, 413 over `maxRequestBytes`. Uses `req.rawBody` or an already parsed `req.body` when a
 * framework read the body first.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { PubSubBroker, pushHandler } from 'cloudmom/gcp';
 * const broker = new PubSubBroker({ topic: 'cloudmom', deadLetterTopic: 'cloudmom-dead-letter' });
 * broker.add('audit', (p, body) => console.log(body));
 * createServer(pushHandler(broker)).listen(Number(process.env.PORT ?? 8080));
 * ```
 */
export function pushHandler(
  broker: Broker,
  options: PushHandlerOptions = {},
): (req: HttpRequest, res: ServerResponse) => Promise<void> {
  checkOptionKeys(options, ['maxDataBytes', 'maxRequestBytes'], 'pushHandler');
  const maxDataBytes = checkMaxBytes(options.maxDataBytes, 'maxDataBytes', LIMITS.messageBytes);
  const maxRequestBytes = checkMaxBytes(
    options.maxRequestBytes,
    'maxRequestBytes',
    16 * 1024 * 1024,
  );
  return async (req, res) => {
    const answer = (status: number, text = '') => {
      if (res.headersSent) return;
      res.statusCode = status;
      if (text) res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(text);
    };
    try {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        return answer(405, 'POST a Pub/Sub push request');
      }
      const body = await readBody(req, maxRequestBytes);
      if (body === 'too-large') return answer(413, 'request too large');
      let envelope: unknown = body;
      if (body instanceof Uint8Array) {
        try {
          envelope = JSON.parse(Buffer.from(body).toString('utf8'));
        } catch {
          envelope = undefined;
        }
      }
      const message =
        envelope === undefined && body instanceof Uint8Array
          ? poison(body, undefined, undefined, undecodable('the push request body is not JSON'))
          : parseEnvelope(envelope, envelope, maxDataBytes);
      const verdict = await verdictOf(broker, message);
      if (verdict.kind !== 'ack') return answer(500, 'handler failed; redeliver');
      return answer(204);
    } catch (err) {
      loggerOf(broker).error('push request failed', { error: describeError(err) });
      return answer(500, 'internal error; redeliver');
    }
  };
}

/** The request body as bytes, or a parsed object a framework left in `req.body`. */
async function readBody(
  req: HttpRequest & { rawBody?: unknown; body?: unknown },
  max: number,
): Promise<Uint8Array | Record<string, unknown> | 'too-large'> {
  if (req.rawBody instanceof Uint8Array)
    return req.rawBody.byteLength > max ? 'too-large' : req.rawBody;
  if (isRecord(req.body)) return req.body;
  if (typeof req.body === 'string') return utf8.encode(req.body);
  if (req.body instanceof Uint8Array) return req.body;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return 'too-large';
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.byteLength;
    if (size > max) {
      req.resume();
      return 'too-large';
    }
    chunks.push(b);
  }
  const all = Buffer.concat(chunks);
  return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
}
