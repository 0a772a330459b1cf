/**
 * The Azure Functions (Node v4 programming model) Service Bus trigger: decode the invocation
 * (wire.ts), `dispatch()` it through the broker, and answer the host from one verdict per
 * message. It never touches the transport: replies and dead-letter copies go through the core.
 */
import { Broker } from '../../src/broker.ts';
import { dispatch, loggerOf } from '../../src/entrypoint.ts';
import { CloudmomError, InvalidArgumentError } from '../../src/errors.ts';
import { describeError, type Logger } from '../../src/log.ts';
import type { IncomingMessage, Verdict } from '../../src/transport.ts';
import { checkOptionKeys } from '../../src/util.ts';
import type { ServiceBusBroker } from './broker.ts';
import { DEAD_LETTER_TEXT_MAX, fromReceived, fromTrigger, replySessions } from './wire.ts';

export { fromTrigger } from './wire.ts';

/**
 * What the handler needs of the Functions `InvocationContext` (the real one fits). Trigger
 * metadata keys are lower-camel-cased by the Node library, recursively: `messageId`,
 * `deliveryCount`, `subject`, `applicationProperties`..., with an `…Array` suffix for
 * `cardinality: 'many'`.
 *
 * @example
 * ```ts
 * const context: FunctionContextLike = new InvocationContext({ triggerMetadata: { messageId: 'm-1', subject: 'hello' } });
 * ```
 */
export interface FunctionContextLike {
  readonly invocationId?: string;
  readonly triggerMetadata?: Record<string, unknown>;
}

/**
 * The settlement actions the SDK-type binding (`@azure/functions-extensions-servicebus`) hands
 * the function as `{ messages, actions }`.
 *
 * @example
 * ```ts
 * const actions: ServiceBusSettlementActions = context.actions; // from the SDK-type binding
 * await actions.deadletter(message, undefined, 'undecodable', 'body is not JSON');
 * ```
 */
export interface ServiceBusSettlementActions {
  /** Removes the message from the entity (done). */
  complete(message: any): Promise<void>;
  /** Gives the message back for redelivery (delivery count + 1). */
  abandon(message: any, propertiesToModify?: Uint8Array): Promise<void>;
  /** Moves the message to the dead-letter sub-queue with a reason. */
  deadletter(
    message: any,
    propertiesToModify?: Uint8Array,
    deadletterReason?: string,
    deadletterErrorDescription?: string,
  ): Promise<void>;
}

/**
 * One message decoded from a plain (non-SDK) trigger invocation: the core's message, `poison`
 * set when its body could not be re-encoded as bytes.
 *
 * @example
 * ```ts
 * const [m]: DecodedTriggerMessage[] = fromTrigger(body, context.triggerMetadata);
 * ```
 */
export type DecodedTriggerMessage = IncomingMessage;

/**
 * Options of {@link azureFunctionHandler}.
 *
 * @example
 * ```ts
 * azureFunctionHandler(broker, { cardinality: 'many', ordered: false });
 * ```
 */
export interface AzureFunctionHandlerOptions {
  /**
   * `'one'` or `'many'`, as registered on the trigger. Default: detected from the trigger
   * metadata (`messageIdArray` means many) and, with the SDK binding, from `messages`.
   */
  cardinality?: 'one' | 'many';
  /**
   * Force (true) or rule out (false) the SDK-type binding input `{ messages, actions }`.
   * Default: detected from the input's shape.
   */
  sdkBinding?: boolean;
  /**
   * Handle messages of one session (group key) in order, one after the other. Default: true
   * when a message of the invocation carries a session id.
   */
  ordered?: boolean;
}

/**
 * The function the v4 programming model calls: `(input, context) => Promise<void>`.
 *
 * @example
 * ```ts
 * const handler: AzureServiceBusFunction = azureFunctionHandler(broker);
 * app.serviceBusQueue('jobs', { connection: 'ServiceBusConnection', queueName: 'jobs', handler });
 * ```
 */
export type AzureServiceBusFunction = (
  input: unknown,
  context: FunctionContextLike,
) => Promise<void>;

const HANDLER_KEYS = ['cardinality', 'sdkBinding', 'ordered'] as const;

/**
 * The Azure Functions (Node v4 programming model) Service Bus trigger handler: turns the
 * invocation into messages for the broker's handlers, sends replies with the broker's own
 * `ServiceBusClient` (output bindings cannot carry a correlation id), and settles.
 *
 * - With the SDK-type binding (`sdkBinding: true, autoCompleteMessages: false` on the trigger,
 *   and `import '@azure/functions-extensions-servicebus'`), each message is settled on its own:
 *   completed, abandoned, or dead-lettered natively with the reason — one bad message in a
 *   batch does not bring the good ones back.
 * - With the plain binding the host settles the whole invocation: the handler throws when a
 *   message must be retried, so the host abandons every message of the invocation (the good
 *   ones of a batch are redelivered too: at-least-once, handlers must be idempotent). It cannot
 *   dead-letter: with the broker's `poisonQueue` the core sends a copy there (reason as
 *   application properties) and the invocation succeeds; without, the invocation fails and the
 *   service dead-letters the message after the entity's max delivery count
 *   (`MaxDeliveryCountExceeded`) — said once in the log.
 *
 * @example
 * ```ts
 * import { app } from '@azure/functions';
 * import { ServiceBusBroker, azureFunctionHandler } from 'cloudmom/azure';
 * const broker = new ServiceBusBroker({ connectionString: process.env.ServiceBusConnection });
 * broker.add('hello', () => 'Hi there too');
 * app.serviceBusQueue('hello', {
 *   connection: 'ServiceBusConnection',
 *   queueName: 'hello',
 *   cardinality: 'many',
 *   handler: azureFunctionHandler(broker),
 * });
 * ```
 */
export function azureFunctionHandler(
  broker: ServiceBusBroker,
  options: AzureFunctionHandlerOptions = {},
): AzureServiceBusFunction {
  if (!(broker instanceof Broker))
    throw new InvalidArgumentError('azureFunctionHandler needs a broker (a ServiceBusBroker)');
  if (typeof options === 'object' && options !== null && 'poisonQueue' in options)
    throw new InvalidArgumentError(
      'azureFunctionHandler: poisonQueue is an option of the broker now: new ServiceBusBroker({ poisonQueue })',
    );
  checkOptionKeys(options, HANDLER_KEYS, 'azureFunctionHandler');
  if (options.cardinality !== undefined && !['one', 'many'].includes(options.cardinality))
    throw new InvalidArgumentError('azureFunctionHandler: cardinality must be "one" or "many"');
  const logger = loggerOf(broker);
  const poisonQueue = (broker as { poisonQueue?: unknown }).poisonQueue;
  // Where the platform cannot dead-letter (the plain binding), the core copies when it can.
  const plainDeadLetter =
    typeof poisonQueue === 'string' || broker.capabilities.deadLetter === 'copy'
      ? 'copy'
      : 'native';
  let warnedNoPoison = false;

  return async function cloudmomServiceBusTrigger(input, context) {
    const sdk = options.sdkBinding ?? isSdkBindingInput(input);
    if (sdk) {
      if (!isSdkBindingInput(input))
        throw new InvalidArgumentError(
          'azureFunctionHandler: sdkBinding is set but the input is not { messages, actions }',
        );
      await handleSdkBinding(broker, input, logger, options);
      return;
    }
    const messages = fromTrigger(input, context?.triggerMetadata, options.cardinality);
    for (const m of messages) replySessions.note(m);
    const verdicts = await dispatch(broker, messages, {
      ordered: options.ordered ?? messages.some((m) => m.groupKey !== undefined),
      deadLetter: plainDeadLetter,
    });
    let retry = 0;
    let undeliverable = 0;
    for (const v of verdicts) {
      if (v.kind === 'retry') retry++;
      else if (v.kind === 'dead-letter') undeliverable++;
    }
    if (undeliverable > 0 && !warnedNoPoison) {
      // The core logged each dead-letter decision; this says once why they come back.
      warnedNoPoison = true;
      logger.warn(
        'the plain Service Bus binding cannot dead-letter: the invocation fails, the host ' +
          'abandons, and Service Bus dead-letters the message after its max delivery count ' +
          '(MaxDeliveryCountExceeded); set poisonQueue on the broker or use the SDK-type binding',
        { invocationId: context?.invocationId },
      );
    }
    if (retry + undeliverable > 0) {
      throw new CloudmomError(
        'transport-failed',
        `${retry + undeliverable} of ${messages.length} message(s) failed` +
          (undeliverable > 0
            ? ` (${undeliverable} to dead-letter, which this binding cannot)`
            : '') +
          '; the host abandons the invocation and Service Bus redelivers',
      );
    }
  };
}

interface SdkBindingInput {
  messages: unknown;
  actions: ServiceBusSettlementActions;
}

function isSdkBindingInput(input: unknown): input is SdkBindingInput {
  if (typeof input !== 'object' || input === null) return false;
  const { messages, actions } = input as { messages?: unknown; actions?: unknown };
  return (
    messages !== undefined &&
    typeof actions === 'object' &&
    actions !== null &&
    typeof (actions as { complete?: unknown }).complete === 'function' &&
    typeof (actions as { abandon?: unknown }).abandon === 'function' &&
    typeof (actions as { deadletter?: unknown }).deadletter === 'function'
  );
}

async function handleSdkBinding(
  broker: Broker,
  input: SdkBindingInput,
  logger: Logger,
  options: AzureFunctionHandlerOptions,
): Promise<void> {
  const all = Array.isArray(input.messages) ? input.messages : [input.messages];
  const { actions } = input;
  const natives: Record<string, any>[] = [];
  const messages: IncomingMessage[] = [];
  for (const native of all) {
    if (typeof native !== 'object' || native === null) {
      logger.error('the SDK binding handed a message that is not an object; it cannot be settled', {
        kind: typeof native,
      });
      continue;
    }
    const m = fromReceived(native as any, { ackId: native });
    replySessions.note(m);
    natives.push(native);
    messages.push(m);
  }
  const verdicts = await dispatch(broker, messages, {
    ordered: options.ordered ?? messages.some((m) => m.groupKey !== undefined),
    deadLetter: 'native',
  });
  await Promise.all(verdicts.map((v, i) => settle(actions, natives[i]!, messages[i]!, v, logger)));
}

async function settle(
  actions: ServiceBusSettlementActions,
  native: Record<string, any>,
  m: IncomingMessage,
  v: Verdict,
  logger: Logger,
): Promise<void> {
  try {
    if (v.kind === 'ack') await actions.complete(native);
    else if (v.kind === 'retry') await actions.abandon(native);
    else
      await actions.deadletter(
        native,
        undefined,
        v.reason.code,
        v.reason.description.slice(0, DEAD_LETTER_TEXT_MAX),
      );
  } catch (err) {
    logger.warn(
      'settling a Service Bus message failed; its lock will expire and it will be redelivered',
      { messageId: m.messageId, verdict: v.kind, error: describeError(err) },
    );
  }
}
