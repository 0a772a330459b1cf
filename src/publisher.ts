/**
 * The publish path: encode a body (codec, headers, limits), measure it on the transport's
 * wire, batch it per destination, and wrap the platform's errors once.
 */
import { Batcher, type Slotted } from './batcher.ts';
import { type Body, BYTES_TYPE, type CodecRegistry } from './codec.ts';
import { CloudmomError, InvalidMessageError, MessageTooLargeError, SendError } from './errors.ts';
import { describeError } from './log.ts';
import type { BrokerOptions, PublishOptions } from './options.ts';
import {
  type DeadLetterReason,
  type IncomingMessage,
  type OutgoingMessage,
  RESERVED_HEADERS,
  type SendOutcome,
  type Transport,
} from './transport.ts';
import { checkNonEmpty, checkNumber, checkOptionKeys, EMPTY } from './util.ts';
import * as WIRE from './wire-names.ts';

/** Web Crypto's UUID: no `node:crypto` import, so loading the core stays cheap (cold starts, edge runtimes). */
export const randomUUID = (): string => {
  webCrypto ??= globalThis.crypto; // read once: the global's getter costs a fifth of a UUID
  return webCrypto.randomUUID();
};
let webCrypto: { randomUUID(): string } | undefined;

/** The headers of a message published without any (one frozen object for all of them). */
const NO_HEADERS = EMPTY as Record<string, string>;

/** Publish options that must be non-empty strings when given. */
const STRING_OPTIONS = [
  'correlationId',
  'replyTo',
  'groupKey',
  'deduplicationId',
  'traceparent',
] as const;

export const PUBLISH_KEYS = [...STRING_OPTIONS, 'contentType', 'headers', 'delaySeconds'];

/** An encoded message and its wire size. */
export interface Encoded {
  readonly message: OutgoingMessage;
  readonly size: number;
}

export class Publisher {
  readonly #transport: Transport;
  readonly #codecs: CodecRegistry;
  readonly #batcher: Batcher;
  readonly #stats: { published: number };
  readonly #measure: ((m: OutgoingMessage) => number) | undefined;

  /**
   * `measure`: the wire size when the transport has no `capabilities.measure` ({@link Broker}
   * passes {@link defaultMeasure}; the function-side brokers' transports all measure).
   */
  constructor(
    transport: Transport,
    codecs: CodecRegistry,
    batch: BrokerOptions['batch'],
    stats: { published: number },
    measure?: (m: OutgoingMessage) => number,
  ) {
    this.#transport = transport;
    this.#measure = measure;
    this.#stats = stats;
    this.#codecs = codecs;
    const caps = transport.capabilities;
    checkOptionKeys(batch, ['maxMessages', 'lingerMs'], 'batch');
    this.#batcher = new Batcher((messages) => this.#send(messages), {
      maxMessages: Math.min(
        checkNumber(batch?.maxMessages ?? caps.maxBatchMessages, 'batch.maxMessages'),
        caps.maxBatchMessages,
      ),
      maxBytes: caps.maxBatchBytes,
      lingerMs: batch?.lingerMs ?? caps.batchLingerMs,
    });
  }

  /** Encodes a publish; throws a typed error for anything the platform could not carry. */
  encode(
    body: Body,
    target: string,
    options: PublishOptions,
    destination?: string,
    keys: readonly string[] = PUBLISH_KEYS,
  ): Encoded {
    checkNonEmpty(target, 'publish: target', InvalidMessageError);
    const caps = this.#transport.capabilities;
    let headers = NO_HEADERS;
    // a publish without options (the shared empty object) has nothing to check
    if (options !== EMPTY) {
      checkOptionKeys(options, keys, 'publish');
      const given = options.headers;
      if (given !== undefined) {
        if (given === null || typeof given !== 'object')
          throw new InvalidMessageError('headers must be an object of strings');
        headers = {};
        for (const k of Object.keys(given)) {
          const v = given[k];
          if (k === '') throw new InvalidMessageError('header names must not be empty');
          if (RESERVED_HEADERS.has(k))
            throw new InvalidMessageError(`header "${k}" is reserved by cloudmom`);
          if (typeof v !== 'string')
            throw new InvalidMessageError(`header "${k}" must be a string, got ${typeof v}`);
          setOwn(headers, k, v);
        }
      }
      if (options.delaySeconds !== undefined) {
        const d = options.delaySeconds;
        if (!Number.isInteger(d) || d < 0 || d > caps.maxDelaySeconds) {
          throw new InvalidMessageError(
            `delaySeconds must be an integer from 0 to ${caps.maxDelaySeconds} on ${caps.name}, got ${d}`,
          );
        }
      }
      for (const key of STRING_OPTIONS)
        if (options[key] !== undefined) checkNonEmpty(options[key], key, InvalidMessageError);
      if (options.traceparent !== undefined) {
        if (headers === NO_HEADERS) headers = {};
        headers.traceparent = options.traceparent;
      }
    }
    const codec = this.#codecs.forBody(body, options.contentType);
    const message: OutgoingMessage = {
      body: codec.encode(body),
      target,
      messageId: randomUUID(),
      contentType: options.contentType ?? codec.contentType,
      headers,
      correlationId: options.correlationId,
      replyTo: options.replyTo,
      delaySeconds: options.delaySeconds,
      groupKey: options.groupKey,
      deduplicationId: options.deduplicationId,
      destination,
    };
    const size = this.measure(message);
    if (size > caps.maxMessageBytes)
      throw new MessageTooLargeError(size, caps.maxMessageBytes, caps.name);
    this.#transport.validate?.(message);
    return { message, size };
  }

  /** Wire size of a message on this transport. */
  measure(message: OutgoingMessage): number {
    return (this.#transport.capabilities.measure ?? this.#measure!)(message);
  }

  /** Queues an encoded message; resolves with its id once the service accepted it. */
  enqueue({ message, size }: Encoded): Promise<string> {
    this.#stats.published++;
    return this.#batcher.add(message, size);
  }

  /** Queues encoded messages together; each outcome is told to `waiter` by its index. */
  enqueueAll(encoded: readonly Encoded[], waiter: Slotted): void {
    this.#stats.published += encoded.length;
    this.#batcher.addAll(encoded, waiter);
  }

  /**
   * Builds the dead-letter copy of a received message (the one place it is built) for
   * `destination`, and queues it. The body is cut to fit the platform's limit when the
   * original was larger (only an entrypoint can see such a message); the original size
   * travels as `dead_letter_truncated`.
   */
  deadLetter(
    message: IncomingMessage,
    reason: DeadLetterReason,
    destination: string,
  ): Promise<string> {
    const headers: Record<string, string> = {};
    for (const k of Object.keys(message.headers))
      if (!RESERVED_HEADERS.has(k) || k === WIRE.traceparent)
        setOwn(headers, k, message.headers[k]!);
    const body = message.body;
    let out: OutgoingMessage = {
      body,
      target: message.target ?? '',
      messageId: message.messageId,
      contentType: message.contentType ?? BYTES_TYPE,
      headers,
      correlationId: message.correlationId,
      replyTo: message.replyTo,
      groupKey: message.groupKey,
      destination,
      deadLetter: { ...reason, deliveryCount: message.deliveryCount },
    };
    let size = this.measure(out);
    const over = size - this.#transport.capabilities.maxMessageBytes;
    if (over > 0) {
      out = {
        ...out,
        body: body.subarray(0, Math.max(0, body.byteLength - over - 64)),
        headers: { ...headers, [WIRE.deadLetterTruncated]: String(body.byteLength) },
      };
      size = this.measure(out);
    }
    return this.enqueue({ message: out, size });
  }

  /** Sends what is buffered and waits for every send to settle. */
  flush(): Promise<void> {
    return this.#batcher.flush();
  }

  /**
   * One send call; the platform's errors wrapped here, once. Keeps nothing of `batch` past the
   * call (its size and destination: one for the whole batch), so the transport decides how long
   * the messages live.
   */
  #send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]> {
    const n = batch.length;
    const destination = batch[0]?.destination;
    const failed = (err: unknown) => failAll(n, this.wrap(err, destination));
    try {
      return this.#transport.send(batch).then((outcomes) => {
        for (let i = 0; i < outcomes.length; i++) {
          const o = outcomes[i]!;
          if (!o.ok) outcomes[i] = { ok: false, error: this.wrap(o.error, destination) };
        }
        return outcomes;
      }, failed);
    } catch (err) {
      return Promise.resolve(failed(err));
    }
  }

  /** Wraps a platform error once: typed, coded, retryable as the transport says. */
  wrap(err: unknown, destination: string | undefined): CloudmomError {
    if (err instanceof CloudmomError) return err;
    const t = this.#transport;
    const code = t.errorCode?.(err) ?? 'send-failed';
    const where = destination === undefined ? '' : ` to ${destination.slice(0, 200)}`;
    const text = `${t.capabilities.name} send${where} failed: ${describeError(err)}`;
    let retryable: boolean;
    try {
      retryable = t.isRetryable(err);
    } catch {
      retryable = false;
    }
    return code === 'send-failed'
      ? new SendError(text, { cause: err, retryable })
      : new CloudmomError(code, text, { cause: err, retryable });
  }
}

/** The same failed outcome for each of `n` messages. */
export function failAll(n: number, error: unknown): SendOutcome[] {
  return Array.from({ length: n }, () => ({ ok: false, error }));
}

/**
 * Sets a header as an own property, whatever its name: headers are data, and `__proto__` is a
 * name a platform can carry (plain assignment would set the object's prototype instead).
 */
export function setOwn<T>(o: Record<string, T>, k: string, v: T): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Default wire size: body plus attribute names and values, as SQS counts. */
export function defaultMeasure(m: OutgoingMessage): number {
  let n = m.body.byteLength + utf8Length(m.target) + m.contentType.length + 30;
  for (const k in m.headers) n += utf8Length(k) + utf8Length(m.headers[k]!);
  if (m.correlationId) n += utf8Length(m.correlationId) + 14;
  if (m.replyTo) n += utf8Length(m.replyTo) + 14;
  if (m.deadLetter) n += utf8Length(m.deadLetter.description) + 64;
  return n;
}

/**
 * Node's native UTF-8 length (Buffer.byteLength), where there is one; a pure call, so a bundle
 * that never measures this way leaves it out.
 */
const nativeLength = /* @__PURE__ */ (() =>
  (globalThis as { Buffer?: { byteLength(s: string, e: 'utf8'): number } }).Buffer?.byteLength)();

/** Bytes of a string in UTF-8, without encoding it (lone surrogates count as U+FFFD). */
export function utf8Length(s: string): number {
  // the native count is faster beyond a few characters (a UUID: 22 ns against 68)
  if (s.length > 12 && nativeLength !== undefined) return nativeLength(s, 'utf8');
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 UTF-16 units, 4 bytes
      i++;
    } else n += 2;
  }
  return n;
}
