/**
 * The one call a function entrypoint makes (Lambda, Azure Functions, Cloud Functions, Workers,
 * push HTTP): decoded messages in, one verdict per message out. The entrypoint decodes the
 * platform's event into messages (marking what can never be handled with `poison`), calls
 * {@link dispatch}, and answers the runtime from the verdicts (partial batch response, settle
 * calls, HTTP status). It never touches a transport: routing, handlers, replies and the
 * dead-letter copy happen in the core.
 */
import { type BrokerCore, type DispatchOptions, INTERNALS } from './broker-core.ts';
import type { Logger } from './log.ts';
import type { IncomingMessage, Verdict } from './transport.ts';

export type { DispatchOptions } from './broker-core.ts';

/**
 * Runs decoded messages through the broker: route, handlers, replies, dead-letter copy.
 * Answers one verdict per message, in order — synchronously (an array, no promise) when every
 * message was done synchronously, so `await` it or check with `instanceof Promise`.
 *
 * - `ack`: done (handled and replied, discarded, or dead-lettered by copy);
 * - `retry`: leave it for redelivery (`delayMs` where the platform can delay);
 * - `dead-letter`: only with `deadLetter: 'native'`: settle it with the platform, with the reason.
 *
 * @example
 * ```ts
 * const verdicts = await dispatch(broker, event.Records.map(fromRecord), { ordered: true });
 * return { batchItemFailures: verdicts.flatMap((v, i) => (v.kind === 'ack' ? [] : [{ itemIdentifier: ids[i] }])) };
 * ```
 */
export function dispatch(
  broker: BrokerCore,
  messages: readonly IncomingMessage[],
  options: DispatchOptions = {},
): Verdict[] | Promise<Verdict[]> {
  return broker[INTERNALS].dispatch(messages, options);
}

/**
 * The broker's logger, for an entrypoint's own log lines (never message content).
 *
 * @example
 * ```ts
 * loggerOf(broker).warn('event of an unexpected type', { type });
 * ```
 */
export function loggerOf(broker: BrokerCore): Logger {
  return broker[INTERNALS].logger;
}
