/**
 * The transport contract (v2): what a platform adapter implements. Users never see it; they
 * construct `SqsBroker`, `ServiceBusBroker`, ... which are the core {@link Broker} plus a
 * transport. A transport only *translates*; the core owns everything shared: the receive
 * loop, the concurrency bound, per-key order, in-flight counting and draining, one
 * receive-failure backoff, ack batching, lock extension timers, the dead-letter copy, and
 * wrapping errors once.
 *
 * ```text
 * Transport                      Source (one per queue / subscription / reply address)
 *   capabilities                   receive(max, signal) → messages    (pull, or a stream's buffer)
 *   send(batch) → outcomes         ack(ackIds)                        (batched by the core)
 *   open() → sources               nack(ackId, delayMs, failed)       (retry / give back)
 *   openReplyAddress()             deadLetter?(ackId, reason)         (native dead-lettering)
 *   deadLetterAddress?(message)    extend?(ackIds)                    (lock heartbeat)
 *   openDeadLetters?() (CLI dlq)   close()
 *   isRetryable(err), errorCode
 *   close()
 * ```
 *
 * The delivery models map onto it so:
 * - pull (SQS ReceiveMessage, Service Bus receiveMessages): `receive` is the pull call;
 * - streaming with flow control (Pub/Sub streaming pull, AMQP basic.consume with prefetch,
 *   Kafka fetch): the SDK's callbacks fill a {@link PushBuffer} bounded by the flow control
 *   (`maxMessages`, prefetch = the broker's concurrency) and `receive` takes from it;
 * - batches pushed by a function runtime (Lambda, Azure Functions `many`, Cloudflare
 *   `queue()`, push HTTP): no source; the entrypoint decodes the event and calls
 *   `dispatch()` (src/entrypoint.ts), then answers the runtime from one verdict per message;
 * - a log with cumulative commits (Kafka): `ack` marks offsets settled; the transport commits
 *   the watermark ({@link OffsetTracker}): an offset only once every earlier one of its
 *   partition is settled.
 */
import type { ErrorCode } from './errors.ts';
import type { Logger } from './log.ts';
import * as WIRE from './wire-names.ts';

/**
 * What a platform implements (see the module comment): send, sources, reply and dead-letter
 * addresses, error classification.
 *
 * @example
 * ```ts
 * class MyTransport implements Transport { capabilities = {...}; async send(batch) {...}; isRetryable() { return false; }; async close() {} }
 * class MyBroker extends Broker { constructor(o: BrokerOptions) { super(new MyTransport(), o); } }
 * ```
 */
export interface Transport {
  /** What the platform can do and its limits; the core and the conformance suite read it. */
  readonly capabilities: Capabilities;
  /** The native client (SQS client, ServiceBusClient, PubSub...), for `broker.client`. */
  readonly client?: unknown;
  /** Check a message the platform cannot carry; throw `InvalidMessageError` / `MessageTooLargeError`. */
  validate?(message: OutgoingMessage): void;
  /**
   * Sends encoded messages, all for one destination (`batch[0].destination`; undefined = the
   * broker's default destination). One outcome per message, in order. An outcome's error (or
   * a rejection, which fails the whole batch) is the platform's own error: the core wraps it
   * once, by {@link errorCode} and {@link isRetryable}.
   */
  send(batch: readonly OutgoingMessage[]): Promise<SendOutcome[]>;
  /** The long-running sources `start()` consumes (none: nothing to consume). Called once per start. */
  open?(): Promise<readonly Source[]>;
  /** Creates this instance's reply address for `request()`, and the source reading it. */
  openReplyAddress?(): Promise<{ readonly address: string; readonly source: Source }>;
  /**
   * Where the dead-letter copy of `message` goes (platforms that dead-letter by copy). The
   * core builds the copy (`OutgoingMessage.deadLetter` set) and sends it with {@link send}.
   */
  deadLetterAddress?(message: IncomingMessage): string | Promise<string>;
  /** True when the same call may succeed later (throttling, network, unavailable). */
  isRetryable(err: unknown): boolean;
  /** The code of a platform error, for the one wrap (`send-failed` unless said otherwise). */
  errorCode?(err: unknown): ErrorCode;
  /**
   * Opens the dead-letter destination of the broker's own queue or subscription (what the
   * `cloudmom dlq` commands read and redrive), and says where its messages came from.
   * Optional: without it, `dlq` is not supported on the platform.
   */
  openDeadLetters?(): Promise<DeadLetters>;
  /** Called once by the Broker constructor with what the transport may use (its logger). */
  attach?(context: { readonly logger: Logger }): void;
  /** Releases everything (reply address included). Called once, after draining. */
  close(): Promise<void>;
}

/**
 * A message source. The core calls `receive` only while it has room (never more than `max`
 * messages), settles every message it received exactly once, and calls `close` once.
 */
export interface Source {
  /** For logs: queue URL, subscription name... (never a secret). */
  readonly name: string;
  /** Most messages one `receive` returns (SQS 10). */
  readonly maxReceive: number;
  /** `receive` calls the core may have in flight at once (SQS long polls). Default 1. */
  readonly parallelReceives?: number;
  /**
   * Waits for up to `max` messages; resolves `[]` when it waited long enough (a long poll
   * ended) or `signal` aborted. Rejects on failure: the core logs and backs off.
   */
  receive(max: number, signal: AbortSignal): Promise<readonly IncomingMessage[]>;
  /** Most ackIds per `ack` call (SQS DeleteMessageBatch: 10). Default 1. */
  readonly maxAckBatch?: number;
  /** Acknowledges messages (by their `ackId`). Acking twice is harmless. */
  ack(ackIds: readonly unknown[]): Promise<void>;
  /**
   * Acknowledges one message at once, synchronously, where acking is bookkeeping in this
   * process (a log's commit watermark, committed later by the source). When present the core
   * calls it instead of batching into `ack`, so what waits on the settlement (the next record
   * of a key) goes on in the same turn.
   */
  ackNow?(ackId: unknown): void;
  /**
   * True when the source itself keeps order per group key: it hands the core at most one
   * message of a key at a time, the next only once that one is acked (a failed one keeps its
   * place until it comes back or is dead-lettered). The core then keeps no order of its own for
   * it (no order gate per message). Default false.
   */
  readonly ordersByKey?: boolean;
  /**
   * Gives a message back: redelivered after `delayMs` where the platform can delay (else as
   * soon as it redelivers). `failed` is false when the core releases a message it never ran
   * (an earlier one of its group key failed, or it is stopping).
   */
  nack(ackId: unknown, delayMs: number, failed: boolean): Promise<void>;
  /** Native dead-lettering with the reason (Service Bus sub-queue, RabbitMQ DLX). */
  deadLetter?(ackId: unknown, reason: DeadLetterReason): Promise<void>;
  /** Extends the lock of messages still in the core's hands (every `extendEveryMs`). */
  extend?(ackIds: readonly unknown[]): Promise<void>;
  readonly extendEveryMs?: number;
  /** Stops receiving: a pending `receive` resolves. Unsettled messages are settled before. */
  close(): Promise<void>;
}

/**
 * A dead-letter destination opened by {@link Transport.openDeadLetters}: its messages as a
 * {@link Source} (`receive` resolves `[]` soon once it is empty; `ack` deletes, `nack` gives
 * back), where they came from, and what the platform recorded about each.
 *
 * @example
 * ```ts
 * const dl = await transport.openDeadLetters!();
 * for (const m of await dl.source.receive(10, signal)) console.log(m.messageId, dl.reason(m)?.code, '→', dl.origin);
 * ```
 */
export interface DeadLetters {
  readonly source: Source;
  /** The destination (for {@link Transport.send}) the dead letters are redriven to. */
  readonly origin: string;
  /**
   * The reason recorded with a dead letter (undefined when the platform moved it without one),
   * and the original body size when the copy's body was cut to fit (`dead_letter_truncated`).
   */
  reason(
    message: IncomingMessage,
  ): (DeadLetterReason & { readonly truncatedFrom?: number }) | undefined;
  /** An id unique to this dead-letter copy: the deduplication id of its redrive (SQS FIFO). */
  copyId?(message: IncomingMessage): string;
  /** Header names the platform adds on dead-lettering (dropped on redrive with `dead_letter_*`). */
  readonly markers?: readonly string[];
  /** About how many dead letters there are, where the platform says (a progress total). */
  count?(): Promise<number | undefined>;
  /** Releases what `source` holds (closes its link). */
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
  /** Supports `delaySeconds`, and its maximum (0: none). */
  readonly maxDelaySeconds: number;
  /**
   * Whether `nack` can delay a redelivery. When false the core holds a failed message for
   * `min(backoff, retryHoldMs)` (cut short by `stop()`) before it nacks.
   */
  readonly nackDelay: boolean;
  /** See {@link nackDelay}. Default 0. */
  readonly retryHoldMs?: number;
  /**
   * `native`: sources dead-letter with {@link Source.deadLetter}; `copy`: the core sends a copy
   * to {@link Transport.deadLetterAddress} and acks the original.
   */
  readonly deadLetter: 'native' | 'copy';
  /** `request()` works (the transport has `openReplyAddress`). */
  readonly request: boolean;
  /** Reply addresses allowed when the user configures none (the transport's own reply names). */
  readonly defaultReplyAllowList: ReadonlyArray<string | RegExp>;
}

/** An encoded message, ready to send. */
export interface OutgoingMessage {
  readonly body: Uint8Array;
  /** Empty only on a dead-letter copy of a message that carried none. */
  readonly target: string;
  readonly messageId: string;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly delaySeconds?: number;
  readonly groupKey?: string;
  readonly deduplicationId?: string;
  /** Where to send: a reply or dead-letter address; undefined = the broker's default destination. */
  readonly destination?: string;
  /**
   * Set on a dead-letter copy: why, and how often the original was delivered. The wire
   * carries it as `dead_letter_reason` / `dead_letter_description` (and the delivery count
   * where the platform has room). `messageId` is the original's.
   */
  readonly deadLetter?: DeadLetterReason & { readonly deliveryCount: number };
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
  /** Settlement handle, opaque to the core (receipt handle, lock, delivery tag, offset). */
  readonly ackId?: unknown;
  /** Where it was received from (queue URL/ARN, subscription), for the dead-letter address. */
  readonly source?: string;
  /** Set by the decoder when the message can never be handled: the core dead-letters it. */
  readonly poison?: DeadLetterReason;
  /** The platform's native message (SQS record, ServiceBusReceivedMessage...). */
  readonly raw: unknown;
}

/**
 * The result of sending one message: its id, or the platform's error. A transport whose
 * platform keeps the id the core gave the message answers {@link SENT} (no id: the message's
 * own `messageId`), one shared object instead of one per message.
 */
export type SendOutcome =
  | { readonly ok: true; readonly messageId?: string }
  | { readonly ok: false; readonly error: unknown };

/**
 * The outcome of a message sent under its own `messageId`.
 * @example
 * ```ts
 * async send(batch) { await client.sendAll(batch.map(toNative)); return batch.map(() => SENT); }
 * ```
 */
export const SENT: SendOutcome = /* @__PURE__ */ Object.freeze({ ok: true });

/**
 * What the core decided for one received message — the one result type of the receive path.
 * An entrypoint sees `dead-letter` only when it settles natively (the core copies otherwise,
 * and answers `ack`, or `retry` when the copy could not be sent).
 */
export type Verdict =
  | { readonly kind: 'ack' }
  /** Leave for redelivery, after `delayMs` where the platform can delay. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: unknown }
  /** Never going to succeed: dead-letter it with the reason. */
  | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason };

/** Why a message was dead-lettered. Carried on the wire as `dead_letter_reason`/`_description`. */
export interface DeadLetterReason {
  readonly code: DeadLetterCode;
  readonly description: string;
}

/** Why, in one word, a message went to the dead-letter destination (`dead_letter_reason`). */
export type DeadLetterCode =
  | 'handler-failed'
  | 'max-deliveries'
  | 'undecodable'
  | 'missing-target'
  | 'schema-invalid'
  | 'unknown-target'
  | 'reply-not-allowed'
  | 'reply-failed'
  | 'too-large';

/** Reserved wire attribute names (ARCHITECTURE §3); user headers may not use them. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  WIRE.target,
  WIRE.correlationId,
  WIRE.replyTo,
  WIRE.contentType,
  WIRE.messageId,
  WIRE.traceparent,
  WIRE.deliveryCount,
  WIRE.deadLetterReason,
  WIRE.deadLetterDescription,
  WIRE.deadLetterTruncated,
]);
