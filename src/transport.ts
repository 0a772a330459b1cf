/**
 * The transport interface: what a platform adapter implements. Users never see it; they
 * construct `SqsBroker`, `ServiceBusBroker`, ... which are the core {@link Broker} plus a
 * transport. Everything shared (routing, codecs, replies, request(), retries, dead-letter
 * decisions, batching, concurrency, draining, errors) lives in the core.
 *
 * A transport:
 * - `send(batch)`: sends already-encoded messages, answering one outcome per message, in order;
 * - `consume(deliver)` (optional): pulls messages for long-running consumers and hands each to
 *   `deliver`, then settles it by the returned {@link Verdict} (ack / retry / dead-letter);
 * - `deadLetter(msg, reason)`: moves one received message to the dead-letter destination with
 *   its reason (used by entrypoints, where the platform settles by the function's answer);
 * - `openReplyAddress(deliver)` (optional): creates this instance's reply address for
 *   `request()` and delivers what arrives there;
 * - `close()`: stops consuming and releases resources, after the core drained.
 */
export interface Transport {
  /** What the platform can do and its limits; the core and the conformance suite read it. */
  readonly capabilities: Capabilities;
  /** The native client (SQS client, ServiceBusClient, PubSub...), for `broker.client`. */
  readonly client?: unknown;
  /** Check a message the platform cannot carry; throw `InvalidMessageError` / `MessageTooLargeError`. */
  validate?(message: OutgoingMessage): void;
  /** Send encoded messages; one outcome per message, same order. Never throw for one message's fault. */
  send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]>;
  /** Start pulling; resolves once consumers run. Settle each message by `deliver`'s verdict. */
  consume?(deliver: Deliver, options: ConsumeOptions): Promise<void>;
  /** Stop pulling new messages (in-flight ones are still settled). */
  stopConsuming?(): Promise<void>;
  /** Send one received message to the dead-letter destination with its reason. */
  deadLetter(message: IncomingMessage, reason: DeadLetterReason): Promise<void>;
  /** Create this instance's reply address; deliver what arrives there. Returns the address. */
  openReplyAddress?(deliver: Deliver): Promise<string>;
  /** Release everything (reply address included). Called once, after draining. */
  close(): Promise<void>;
}

/** Per-platform facts the core and the conformance suite read. */
export interface Capabilities {
  /** Transport name in logs and errors, e.g. "sqs". */
  readonly name: string;
  /** Largest message the platform accepts, in bytes, as measured by {@link measure}. */
  readonly maxMessageBytes: number;
  /** Size of a message on the wire (body + attributes); defaults to body + header bytes. */
  measure?(message: OutgoingMessage): number;
  /** Most messages and bytes per `send` call. */
  readonly maxBatchMessages: number;
  readonly maxBatchBytes: number;
  /** How long a publish may wait for others to fill a batch (ms). 0 = next tick. */
  readonly batchLingerMs: number;
  /** Keeps order for messages with the same `groupKey`. */
  readonly ordering: boolean;
  /** Supports `delaySeconds`, and its maximum. */
  readonly maxDelaySeconds: number;
  /** Reply addresses allowed when the user configures none (the transport's own reply names). */
  readonly defaultReplyAllowList: ReadonlyArray<string | RegExp>;
}

export interface ConsumeOptions {
  /** Most messages in flight at once. */
  readonly concurrency: number;
}

/** Hands one message to the core; resolves with what to do with it. Never rejects. */
export type Deliver = (message: IncomingMessage) => Promise<Verdict>;

/** An encoded message, ready to send. */
export interface OutgoingMessage {
  readonly body: Uint8Array;
  readonly target: string;
  readonly messageId: string;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly delaySeconds?: number;
  readonly groupKey?: string;
  readonly deduplicationId?: string;
  /** Where to send: a reply address; undefined = the broker's default destination. */
  readonly destination?: string;
}

/** A received message, as the transport decoded it from the wire (body still encoded). */
export interface IncomingMessage {
  /** The encoded body. May be a getter computing it on demand from {@link text}. */
  readonly body: Uint8Array;
  /**
   * The body as the platform delivered it, when that is text (SQS, SNS, Lambda events): then
   * `body` is its UTF-8 bytes, and codecs with `decodeText` (JSON, text) decode the text
   * directly, without a bytes round trip. Undefined when the body came as bytes.
   */
  readonly text?: string;
  /** Undefined when the message carried none (it will be dead-lettered). */
  readonly target: string | undefined;
  readonly messageId: string;
  readonly contentType?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly correlationId?: string;
  readonly replyTo?: string;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly publishedAt?: Date;
  readonly groupKey?: string;
  /** The platform's native message (SQS record, ServiceBusReceivedMessage...). */
  readonly raw: unknown;
}

export type SendOutcome =
  | { readonly ok: true; readonly messageId: string }
  | { readonly ok: false; readonly error: Error };

/** What the core decided for one received message. */
export type Verdict =
  | { readonly kind: 'ack' }
  /** Leave for redelivery, after `delayMs` where the platform can delay. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: unknown }
  /** Never going to succeed: the transport calls `deadLetter(message, reason)`, then acks. */
  | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason };

/** Why a message was dead-lettered. Carried on the wire as `dead_letter_reason`/`_description`. */
export interface DeadLetterReason {
  readonly code: DeadLetterCode;
  readonly description: string;
}

export type DeadLetterCode =
  | 'handler-failed'
  | 'max-deliveries'
  | 'undecodable'
  | 'missing-target'
  | 'schema-invalid'
  | 'unknown-target'
  | 'reply-not-allowed'
  | 'reply-failed';

/** Reserved wire attribute names (ARCHITECTURE §3); user headers may not use them. */
export const WIRE = {
  target: 'target',
  correlationId: 'correlation_id',
  replyTo: 'reply_to',
  contentType: 'content_type',
  messageId: 'message_id',
  traceparent: 'traceparent',
  deadLetterReason: 'dead_letter_reason',
  deadLetterDescription: 'dead_letter_description',
} as const;

export const RESERVED_HEADERS: ReadonlySet<string> = new Set(Object.values(WIRE));
