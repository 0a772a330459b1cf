/**
 * The router: what happens to one received message, in order — route it by target, decode
 * (and validate) its body, run the target's handlers, send their replies — answering one
 * {@link Verdict}. Synchronous until something has to wait (an async handler, a schema,
 * replies), so a batch of synchronous handlers costs no promise per message.
 */
import type { Codec, CodecRegistry } from './codec.ts';
import { CloudmomError, InvalidArgumentError } from './errors.ts';
import { cut, describeError, errorKind, type Logger } from './log.ts';
import type { AddOptions, BrokerStats, Handler, Properties } from './options.ts';
import type { Publisher } from './publisher.ts';
import { type StandardSchema, validateBody } from './schema.ts';
import type { DeadLetterReason, IncomingMessage, Verdict } from './transport.ts';
import { BoundedMap, checkNonEmpty, checkOptionKeys } from './util.ts';

interface Route {
  readonly handlers: { handler: Handler; replyTo: string | undefined }[];
  schema?: StandardSchema;
  codec?: Codec;
}

interface PendingReply {
  readonly value: unknown;
  readonly replyTo: string | undefined;
}

export interface RouterSettings {
  readonly codecs: CodecRegistry;
  readonly publisher: Publisher;
  readonly logger: Logger;
  readonly stats: BrokerStats;
  readonly allow: (address: string) => boolean;
  readonly maxDeliveries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly unknownTarget: 'discard' | 'dead-letter';
  /** The platform orders by group key: replies carry the incoming one. */
  readonly ordering: boolean;
}

/** The one ack verdict (verdicts are read-only). */
export const ACK: Verdict = Object.freeze({ kind: 'ack' });

export class Router {
  readonly #routes = new Map<string, Route>();
  /** Unknown targets already logged: bounded, keyed by a bounded prefix of the target. */
  readonly #unknownSeen = new BoundedMap<string, true>(1000);
  readonly #s: RouterSettings;

  constructor(settings: RouterSettings) {
    this.#s = settings;
  }

  /** Targets with handlers. */
  targets(): string[] {
    return [...this.#routes.keys()];
  }

  add(target: string, handler: Handler, replyTo?: string | AddOptions): void {
    checkNonEmpty(target, 'add: target');
    if (typeof handler !== 'function')
      throw new InvalidArgumentError('add: handler must be a function');
    const options: AddOptions = typeof replyTo === 'string' ? { replyTo } : (replyTo ?? {});
    checkOptionKeys(options, ['replyTo', 'schema', 'codec'], 'add');
    if (options.replyTo !== undefined) checkNonEmpty(options.replyTo, 'add: replyTo');
    let route = this.#routes.get(target);
    if (!route) {
      route = { handlers: [] };
      this.#routes.set(target, route);
    }
    route.handlers.push({ handler, replyTo: options.replyTo });
    if (options.schema) route.schema = options.schema;
    if (options.codec) route.codec = options.codec;
  }

  /**
   * Routes, runs and replies: the verdict for one message. `target` overrides the message's
   * own (`"reply"` on a reply address).
   */
  handle(message: IncomingMessage, target = message.target): Verdict | Promise<Verdict> {
    this.#s.stats.delivered++;
    const v = this.#route(message, target);
    return v instanceof Promise ? v.then((x) => this.#count(message, x)) : this.#count(message, v);
  }

  /** Stats and the dead-letter log line of a decided message. */
  #count(message: IncomingMessage, verdict: Verdict): Verdict {
    const stats = this.#s.stats;
    if (verdict.kind === 'ack') stats.acked++;
    else if (verdict.kind === 'retry') stats.retried++;
    else {
      stats.deadLettered++;
      this.#s.logger.warn('message dead-lettered', {
        ...about(message),
        reason: verdict.reason.code,
      });
    }
    return verdict;
  }

  #route(message: IncomingMessage, target: string | undefined): Verdict | Promise<Verdict> {
    if (message.poison) return { kind: 'dead-letter', reason: message.poison };
    if (!target) return deadLetter('missing-target', 'the message carries no target');
    const route = this.#routes.get(target);
    if (!route) {
      const t = cut(target, 200);
      if (this.#s.unknownTarget === 'dead-letter')
        return deadLetter('unknown-target', `no handler for target "${t}"`);
      this.#s.stats.discarded++;
      if (!this.#unknownSeen.get(t)) {
        this.#unknownSeen.set(t, true);
        this.#s.logger.warn('no handler for target; message discarded (logged once per target)', {
          target: t,
          messageId: message.messageId,
        });
      }
      return ACK;
    }
    if (message.replyTo !== undefined && !this.#s.allow(message.replyTo)) {
      return deadLetter(
        'reply-not-allowed',
        `reply address "${clip(message.replyTo)}" is not in the reply allow-list`,
      );
    }
    let body: unknown;
    try {
      body = this.#s.codecs.decodeMessage(message, route.codec);
    } catch (err) {
      return deadLetter('undecodable', describeError(err));
    }
    if (route.schema)
      return validateBody(route.schema, body).then(
        (valid) => this.#run(message, target, route, valid),
        (err: unknown) => deadLetter('schema-invalid', describeError(err)),
      );
    return this.#run(message, target, route, body);
  }

  /** Runs the route's handlers in order; synchronous until a handler answers a promise. */
  #run(
    message: IncomingMessage,
    target: string,
    route: Route,
    body: unknown,
  ): Verdict | Promise<Verdict> {
    const properties = new MessageProperties(message, target);
    const handlers = route.handlers;
    let replies: PendingReply[] | undefined;
    for (let i = 0; i < handlers.length; i++) {
      const { handler, replyTo } = handlers[i]!;
      let value: unknown;
      try {
        value = handler(properties, body);
      } catch (err) {
        return this.#failed(message, 'handler-failed', err);
      }
      if (isThenable(value))
        return this.#runAsync(message, properties, body, route, i, value, replies ?? []);
      if (value === undefined) continue;
      replies ??= [];
      replies.push({ value, replyTo });
    }
    return replies === undefined ? ACK : this.#replied(message, replies);
  }

  /** {@link #run} from handler `i`, whose answer `first` is a promise, on. */
  async #runAsync(
    message: IncomingMessage,
    properties: Properties,
    body: unknown,
    route: Route,
    i: number,
    first: PromiseLike<unknown>,
    replies: PendingReply[],
  ): Promise<Verdict> {
    const handlers = route.handlers;
    try {
      let value = await first;
      for (;;) {
        if (value !== undefined) replies.push({ value, replyTo: handlers[i]!.replyTo });
        if (++i >= handlers.length) break;
        value = await handlers[i]!.handler(properties, body);
      }
    } catch (err) {
      return this.#failed(message, 'handler-failed', err);
    }
    return replies.length === 0 ? ACK : this.#replied(message, replies);
  }

  /** A handler or reply failure: retry with backoff, or dead-letter on the last delivery. */
  #failed(
    message: IncomingMessage,
    code: 'handler-failed' | 'reply-failed',
    err: unknown,
  ): Verdict {
    const s = this.#s;
    const description = describeError(err);
    if (message.deliveryCount >= s.maxDeliveries) {
      return deadLetter(
        code,
        `${description} (delivery ${message.deliveryCount} of ${s.maxDeliveries})`,
      );
    }
    s.logger.info('handler failed; message left for redelivery', {
      ...about(message),
      error: errorKind(err),
    });
    const exp = Math.min(30, Math.max(0, message.deliveryCount - 1));
    const delayMs = Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** exp);
    return { kind: 'retry', delayMs, error: err };
  }

  /**
   * Sends the replies; the message counts as done once every one was accepted. Every reply is
   * encoded first (one that cannot be encoded fails the message before anything is sent), then
   * all are sent and waited for.
   */
  async #replied(message: IncomingMessage, replies: readonly PendingReply[]): Promise<Verdict> {
    const { publisher, logger, stats } = this.#s;
    // a reply carries the correlation id and, where the platform orders, the incoming group key
    const options = {
      correlationId: message.correlationId ?? message.messageId,
      groupKey: this.#s.ordering ? message.groupKey : undefined,
    };
    try {
      const encoded = [];
      for (const { value, replyTo } of replies) {
        // the message's own reply address first (target "reply"), else the route's replyTo
        const to = message.replyTo !== undefined ? 'reply' : replyTo;
        if (to !== undefined) encoded.push(publisher.encode(value, to, options, message.replyTo));
        else logger.info('reply dropped: the message has no reply address', about(message));
      }
      const results = await Promise.allSettled(encoded.map((e) => publisher.enqueue(e)));
      for (const r of results) if (r.status === 'rejected') throw r.reason;
      stats.repliesSent += encoded.length;
    } catch (err) {
      if (err instanceof CloudmomError && !err.retryable && err.code !== 'send-failed')
        return deadLetter('reply-failed', describeError(err));
      return this.#failed(message, 'reply-failed', err);
    }
    return ACK;
  }
}

/** A target or address for a log line or reason: bounded, whatever the message said. */
function clip(s: string | undefined): string | undefined {
  return s === undefined ? s : cut(s, 200);
}

/** What a log line says of a message: its id, bounded target and delivery count (no content). */
function about(m: IncomingMessage): Record<string, unknown> {
  return { messageId: m.messageId, target: clip(m.target), deliveryCount: m.deliveryCount };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

export function deadLetter(code: DeadLetterReason['code'], description: string): Verdict {
  return { kind: 'dead-letter', reason: { code, description } };
}

/**
 * What a handler sees. `publishedAt` is a getter, read from the message on first use (SQS
 * makes the Date only when asked: most handlers never read it, and it was the largest cost of
 * a Lambda dispatch after JSON.parse); JSON and `console.log` show it like the other fields,
 * but `{ ...properties }` does not copy it.
 */
export class MessageProperties implements Properties {
  // assigned in the constructor, in this order (what toJSON spreads)
  declare readonly target: string;
  declare readonly messageId: string;
  declare readonly correlationId: string | undefined;
  declare readonly replyTo: string | undefined;
  declare readonly contentType: string;
  declare readonly headers: Readonly<Record<string, string>>;
  declare readonly deliveryCount: number;
  declare readonly groupKey: string | undefined;
  declare readonly raw: unknown;
  readonly #m: IncomingMessage;
  constructor(m: IncomingMessage, target: string) {
    this.target = target;
    this.messageId = m.messageId;
    this.correlationId = m.correlationId;
    this.replyTo = m.replyTo;
    this.contentType = m.contentType ?? 'application/json';
    this.headers = m.headers;
    this.deliveryCount = m.deliveryCount;
    this.groupKey = m.groupKey;
    this.raw = m.raw;
    this.#m = m;
  }
  get publishedAt(): Date | undefined {
    return this.#m.publishedAt;
  }
  /** The properties as a plain object (JSON, logs), `publishedAt` included. */
  toJSON(): Properties {
    return { ...this, publishedAt: this.publishedAt };
  }
  /** `console.log(properties)` shows `publishedAt` too (Node's inspection hook). */
  [Symbol.for('nodejs.util.inspect.custom')](): Properties {
    return this.toJSON();
  }
}
