/**
 * Every error cloudmom raises is a {@link CloudmomError} with a stable {@link ErrorCode} and,
 * where one exists, the underlying `cause` (an SDK error, a codec error...).
 *
 * @example
 * ```ts
 * import { CloudmomError, MessageTooLargeError } from 'cloudmom';
 * try {
 *   await broker.publish(hugeBody, 'orders');
 * } catch (err) {
 *   if (err instanceof MessageTooLargeError) console.log(err.code, err.size, err.limit);
 *   else if (err instanceof CloudmomError) console.log(err.code, err.cause);
 * }
 * ```
 */
export type ErrorCode =
  | 'invalid-argument'
  | 'invalid-message'
  | 'message-too-large'
  | 'decode-failed'
  | 'schema-invalid'
  | 'reply-not-allowed'
  | 'request-timeout'
  | 'request-aborted'
  | 'broker-stopped'
  | 'send-failed'
  | 'not-found'
  | 'transport-failed';

/** Base class of every error raised by cloudmom. See {@link ErrorCode}. */
export class CloudmomError extends Error {
  declare readonly code: ErrorCode;
  /** True when trying the same operation again may succeed (throttling, network). */
  declare readonly retryable: boolean;
  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // a bundler that minifies renames classes: the subclasses name themselves (a field)
    this.name = new.target === CloudmomError ? 'CloudmomError' : new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * Bad options or arguments (unknown option key, empty target, bad timeout).
 * @example
 * ```ts
 * new MemoryBroker({ concurency: 5 } as any); // throws InvalidArgumentError: unknown option "concurency"
 * ```
 */
export class InvalidArgumentError extends CloudmomError {
  override name = 'InvalidArgumentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options);
  }
}

/**
 * A message the platform cannot carry: a reserved or unsupported header, too many headers,
 * a bad group key. Raised by `publish` before anything is sent.
 * @example
 * ```ts
 * await broker.publish('x', 't', { headers: { target: 'y' } }); // InvalidMessageError: reserved header
 * ```
 */
export class InvalidMessageError extends CloudmomError {
  override name = 'InvalidMessageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-message', message, options);
  }
}

/**
 * The encoded message exceeds the transport's limit. Nothing was sent.
 * @example
 * ```ts
 * catch (e) { if (e instanceof MessageTooLargeError) console.log(`${e.size} > ${e.limit}`); }
 * ```
 */
export class MessageTooLargeError extends CloudmomError {
  override name = 'MessageTooLargeError';
  declare readonly size: number;
  declare readonly limit: number;
  constructor(size: number, limit: number, where: string) {
    super(
      'message-too-large',
      `message of ${size} bytes exceeds the ${limit}-byte limit of ${where}`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/**
 * A body could not be encoded for, or decoded from, its content type.
 * @example
 * ```ts
 * await broker.publish(10n as any, 't'); // DecodeError: BigInt cannot be JSON-encoded
 * ```
 */
export class DecodeError extends CloudmomError {
  override name = 'DecodeError';

  constructor(message: string, options?: { cause?: unknown }) {
    super('decode-failed', message, options);
  }
}

/**
 * A body failed the Standard Schema registered for its target.
 * @example
 * ```ts
 * broker.add('orders', handler, { schema: z.object({ id: z.string() }) });
 * ```
 */
export class SchemaError extends CloudmomError {
  override name = 'SchemaError';
  declare readonly issues: readonly { message: string; path?: readonly unknown[] }[];
  constructor(message: string, issues: readonly { message: string; path?: readonly unknown[] }[]) {
    super('schema-invalid', message);
    this.issues = issues;
  }
}

/**
 * A reply address outside the broker's allow-list (option `replyAllowList`).
 * @example
 * ```ts
 * new MemoryBroker({ replyAllowList: ['reply.', /^results-/] });
 * ```
 */
export class ReplyNotAllowedError extends CloudmomError {
  override name = 'ReplyNotAllowedError';
  declare readonly address: string;
  constructor(address: string) {
    super('reply-not-allowed', `reply address "${address}" is not in the reply allow-list`);
    this.address = address;
  }
}

/**
 * `request()` got no reply in time.
 * @example
 * ```ts
 * try { await broker.request({ q: 1 }, 'svc', { timeoutMs: 500 }); }
 * catch (e) { if (e instanceof RequestTimeoutError) console.log(e.correlationId); }
 * ```
 */
export class RequestTimeoutError extends CloudmomError {
  override name = 'RequestTimeoutError';
  declare readonly correlationId: string;
  declare readonly timeoutMs: number;
  constructor(correlationId: string, timeoutMs: number, target: string) {
    super(
      'request-timeout',
      `no reply from "${target}" within ${timeoutMs} ms (correlation id ${correlationId})`,
    );
    this.correlationId = correlationId;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * `request()` was cancelled by its AbortSignal, or the broker stopped while it waited.
 * @example
 * ```ts
 * const ac = new AbortController(); setTimeout(() => ac.abort(), 10);
 * await broker.request('x', 'svc', { signal: ac.signal }); // RequestAbortedError
 * ```
 */
export class RequestAbortedError extends CloudmomError {
  override name = 'RequestAbortedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('request-aborted', message, options);
  }
}

/**
 * The broker was stopped; `publish`/`request` are refused.
 * @example
 * ```ts
 * await broker.stop(); await broker.publish('x', 't'); // BrokerStoppedError
 * ```
 */
export class BrokerStoppedError extends CloudmomError {
  override name = 'BrokerStoppedError';
  constructor(what: string) {
    super('broker-stopped', `${what}: the broker is stopped`);
  }
}

/**
 * The service refused or failed a send. `retryable` tells whether a retry may succeed.
 * @example
 * ```ts
 * catch (e) { if (e instanceof SendError && e.retryable) scheduleRetry(); }
 * ```
 */
export class SendError extends CloudmomError {
  override name = 'SendError';
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('send-failed', message, options);
  }
}

/**
 * A destination (queue, topic, exchange, subscription) that does not exist. Raised on use,
 * not on construction.
 *
 * @example
 * ```ts
 * try { await broker.publish('x', 't'); } catch (e) { if (e instanceof CloudmomError && e.code === 'not-found') createQueue(); }
 * ```
 */
export class NotFoundError extends CloudmomError {
  override name = 'NotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-found', message, options);
  }
}

/**
 * What became of one message of a `publishBatch` call: its id, or why it was not sent.
 * @example
 * ```ts
 * const failed = (err as PublishBatchError).results.filter((r) => !r.ok).length;
 * ```
 */
export type PublishResult =
  | { readonly ok: true; readonly messageId: string }
  | { readonly ok: false; readonly error: CloudmomError };

/**
 * Some messages of a `publishBatch` call were not sent; the others were. `results` holds each
 * entry's outcome in the order given, so exactly the failed ones can be sent again. `code`,
 * `cause` and the message are those of the first failure; `retryable` is true when every
 * failure is.
 * @example
 * ```ts
 * try {
 *   await broker.publishBatch(entries);
 * } catch (err) {
 *   if (err instanceof PublishBatchError && err.retryable)
 *     await broker.publishBatch(entries.filter((_, i) => !err.results[i]!.ok));
 * }
 * ```
 */
export class PublishBatchError extends CloudmomError {
  override name = 'PublishBatchError';
  declare readonly results: readonly PublishResult[];
  constructor(results: readonly PublishResult[]) {
    const failed = results.filter((r) => !r.ok).map((r) => r.error as CloudmomError);
    const first = failed[0];
    super(
      first?.code ?? 'send-failed',
      `${failed.length} of ${results.length} messages of the batch were not sent (the others were): ${first?.message}`,
      { cause: first, retryable: failed.every((e) => e.retryable) },
    );
    this.results = results;
  }
}
