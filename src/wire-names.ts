/**
 * The reserved wire attribute names (ARCHITECTURE §3): what cloudmom itself writes beside a
 * message's body, on every platform. User headers may not use them (`RESERVED_HEADERS`).
 *
 * Import this module as a namespace (`import * as WIRE from './wire-names.ts'`, then
 * `WIRE.target`): a bundler resolves each `WIRE.name` to the constant itself, which a minifier
 * shortens at every use (an object's keys it cannot shorten).
 *
 * @example
 * ```ts
 * import * as WIRE from './wire-names.ts';
 * headers[WIRE.correlationId] = correlationId; // "correlation_id"
 * ```
 * @module
 */

/** The message's target. */
export const target = 'target';
/** The correlation id. */
export const correlationId = 'correlation_id';
/** The reply address. */
export const replyTo = 'reply_to';
/** The body's content type. */
export const contentType = 'content_type';
/** The message id (where the platform has no id field of its own). */
export const messageId = 'message_id';
/** The W3C trace context header. */
export const traceparent = 'traceparent';
/** The delivery count a dead-letter copy carries. */
export const deliveryCount = 'delivery_count';
/** A dead-letter copy's reason code. */
export const deadLetterReason = 'dead_letter_reason';
/** A dead-letter copy's reason text. */
export const deadLetterDescription = 'dead_letter_description';
/** A dead-letter copy's original body size, when its body was cut to fit. */
export const deadLetterTruncated = 'dead_letter_truncated';
