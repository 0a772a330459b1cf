import { randomUUID } from 'node:crypto';
import { INTERNALS } from '../../src/broker.ts';
import { CloudmomError, InvalidArgumentError, SendError } from '../../src/errors.ts';
import { describeError } from '../../src/log.ts';
import type { DeadLetterReason, IncomingMessage } from '../../src/transport.ts';
import { checkOptionKeys } from '../../src/util.ts';
import { fromReceived, type ServiceBusBroker, ServiceBusTransport } from './broker.ts';
import { headersFromProperties, toBytes } from './wire.ts';

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
  complete(message: any): Promise<void>;
  abandon(message: any, propertiesToModify?: Uint8Array): Promise<void>;
  deadletter(
    message: any,
    propertiesToModify?: Uint8Array,
    deadletterReason?: string,
    deadletterErrorDescription?: string,
  ): Promise<void>;
}

/**
 * Options of {@link azureFunctionHandler}.
 *
 * @example
 * ```ts
 * azureFunctionHandler(broker, { poisonQueue: 'poison', ordered: false });
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
   * Without the SDK binding the function cannot dead-letter a message itself. When set,
   * messages the core dead-letters are sent to this queue with `dead_letter_reason` and
   * `dead_letter_description` application properties and the invocation succeeds. Default:
   * none — the invocation fails, the host abandons, and the service dead-letters the message
   * after the entity's max delivery count (reason `MaxDeliveryCountExceeded`).
   */
  poisonQueue?: string;
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

const HANDLER_KEYS = ['cardinality', 'sdkBinding', 'poisonQueue', 'ordered'] as const;

/**
 * The Azure Functions (Node v4 programming model) Service Bus trigger handler: turns the
 * invocation into messages for the broker's handlers, sends replies with the broker's own
 * `ServiceBusClient` (output bindings cannot carry a correlation id), and settles.
 *
 * - With the SDK-type binding (`sdkBinding: true, autoCompleteMessages: false` on the trigger,
 *   and `import '@azure/functions-extensions-servicebus'`), each message is settled on its own:
 *   completed, abandoned, or dead-lettered with the reason — one bad message in a batch does not
 *   bring the good ones back.
 * - With the plain binding the host settles the whole invocation: the handler throws when a
 *   message must be retried, so the host abandons every message of the invocation (the good
 *   ones of a batch are redelivered too: at-least-once, handlers must be idempotent).
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
  checkOptionKeys(options, HANDLER_KEYS, 'azureFunctionHandler');
  const internals = broker[INTERNALS];
  const transport = internals.transport;
  if (!(transport instanceof ServiceBusTransport))
    throw new InvalidArgumentError('azureFunctionHandler needs a ServiceBusBroker');
  if (options.cardinality !== undefined && !['one', 'many'].includes(options.cardinality))
    throw new InvalidArgumentError('azureFunctionHandler: cardinality must be "one" or "many"');
  if (
    options.poisonQueue !== undefined &&
    (typeof options.poisonQueue !== 'string' || options.poisonQueue === '')
  )
    throw new InvalidArgumentError('azureFunctionHandler: poisonQueue must be a non-empty string');
  const logger = internals.logger;

  return async function cloudmomServiceBusTrigger(input, context) {
    const sdk = options.sdkBinding ?? isSdkBindingInput(input);
    if (sdk) {
      if (!isSdkBindingInput(input))
        throw new InvalidArgumentError(
          'azureFunctionHandler: sdkBinding is set but the input is not { messages, actions }',
        );
      await handleSdkBinding(input, transport, internals, options);
      return;
    }
    const decoded = fromTrigger(input, context?.triggerMetadata, options.cardinality);
    const messages: IncomingMessage[] = [];
    let failed = 0;
    for (const d of decoded) {
      transport.register(d.message, {
        settled: false,
        deadLetter: (reason) => poisonOrThrow(transport, d.message, reason, options.poisonQueue),
      });
      if (d.error === undefined) {
        messages.push(d.message);
        continue;
      }
      // A body the worker handed in a form that cannot be turned back into bytes: poison.
      try {
        await transport.deadLetter(d.message, { code: 'undecodable', description: d.error });
      } catch (err) {
        failed++;
        logger.warn('an undecodable Service Bus message could not be dead-lettered', {
          invocationId: context?.invocationId,
          messageId: d.message.messageId,
          error: describeError(err),
        });
      }
    }
    const results = await internals.processBatch(messages, {
      ordered: options.ordered ?? messages.some((m) => m.groupKey !== undefined),
    });
    failed += results.filter((r) => r !== 'ack').length;
    if (failed > 0) {
      throw new CloudmomError(
        'transport-failed',
        `${failed} of ${decoded.length} message(s) failed; the host abandons the invocation and Service Bus redelivers`,
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
  input: SdkBindingInput,
  transport: ServiceBusTransport,
  internals: ServiceBusBroker[typeof INTERNALS],
  options: AzureFunctionHandlerOptions,
): Promise<void> {
  const all = Array.isArray(input.messages) ? input.messages : [input.messages];
  const { actions } = input;
  const logger = internals.logger;
  const natives: Record<string, any>[] = [];
  const messages: IncomingMessage[] = [];
  const settle = async (what: string, messageId: unknown, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      logger.warn(
        'settling a Service Bus message failed; its lock will expire and it will be redelivered',
        { messageId: String(messageId), settlement: what, error: describeError(err) },
      );
    }
  };
  for (const native of all) {
    if (typeof native !== 'object' || native === null) {
      logger.error('the SDK binding handed a message that is not an object; it cannot be settled', {
        kind: typeof native,
      });
      continue;
    }
    let m: IncomingMessage;
    try {
      m = fromReceived(native as any);
    } catch (err) {
      // A body that cannot be turned back into bytes: poison, dead-lettered with the reason.
      await settle('deadletter', native.messageId, () =>
        actions.deadletter(native, undefined, 'undecodable', describeError(err)),
      );
      continue;
    }
    transport.register(m, {
      settled: false,
      deadLetter: (reason) =>
        actions.deadletter(native, undefined, reason.code, reason.description),
    });
    natives.push(native);
    messages.push(m);
  }
  const results = await internals.processBatch(messages, {
    ordered: options.ordered ?? messages.some((m) => m.groupKey !== undefined),
  });
  await Promise.all(
    results.map((r, i) => {
      const native = natives[i]!;
      const m = messages[i]!;
      if (r !== 'ack') return settle('abandon', m.messageId, () => actions.abandon(native));
      if (transport.settlerOf(m)?.settled) return undefined; // dead-lettered by the core
      return settle('complete', m.messageId, () => actions.complete(native));
    }),
  );
}

async function poisonOrThrow(
  transport: ServiceBusTransport,
  m: IncomingMessage,
  reason: DeadLetterReason,
  poisonQueue: string | undefined,
): Promise<void> {
  if (poisonQueue === undefined) {
    throw new SendError(
      `cannot dead-letter without the SDK-type binding (reason ${reason.code}: ${reason.description}); ` +
        'failing the invocation so the host abandons it (set poisonQueue or use sdkBinding)',
    );
  }
  const [outcome] = await transport.send([
    {
      body: m.body,
      target: m.target ?? '',
      messageId: m.messageId,
      contentType: m.contentType ?? 'application/octet-stream',
      headers: {
        ...m.headers,
        dead_letter_reason: reason.code,
        dead_letter_description: reason.description,
      },
      correlationId: m.correlationId,
      replyTo: m.replyTo,
      groupKey: m.groupKey,
      destination: poisonQueue,
    },
  ]);
  if (!outcome?.ok) throw outcome?.error ?? new SendError('no outcome for the poison message');
}

/**
 * One message decoded from a plain (non-SDK) trigger invocation.
 *
 * @example
 * ```ts
 * const [{ message, error }]: DecodedTriggerMessage[] = fromTrigger(body, context.triggerMetadata);
 * ```
 */
export interface DecodedTriggerMessage {
  readonly message: IncomingMessage;
  /** Set when the body could not be re-encoded as bytes (the message gets an empty body). */
  readonly error?: string;
}

/**
 * Turns a plain Service Bus trigger invocation (the body or bodies, and
 * `context.triggerMetadata`) into the core's messages. Pure; never throws.
 *
 * The Functions host hands the body as a string (the worker JSON-parses it when it can) or,
 * with `dataType: 'binary'`, as bytes; it is re-encoded: bytes as they are, strings as UTF-8 (a
 * string under a JSON content type is a parsed JSON string, written back as JSON), other values
 * as JSON. Application property names arrive with their first letter lower-cased by the host.
 *
 * @example
 * ```ts
 * const [d] = fromTrigger({ n: 1 }, { messageId: 'm-1', subject: 'sum', contentType: 'application/json', deliveryCount: 1 });
 * d.message.target; // "sum"
 * ```
 */
export function fromTrigger(
  input: unknown,
  metadata: Record<string, unknown> | undefined,
  cardinality?: 'one' | 'many',
): DecodedTriggerMessage[] {
  const md = typeof metadata === 'object' && metadata !== null ? metadata : {};
  const many = cardinality ? cardinality === 'many' : Array.isArray(md.messageIdArray);
  if (!many) return [decodeOne(input, (key) => md[key])];
  const bodies = Array.isArray(input) ? input : [input];
  return bodies.map((body, i) =>
    decodeOne(body, (key) => {
      const arr = md[`${key}Array`];
      return Array.isArray(arr) ? arr[i] : undefined;
    }),
  );
}

function decodeOne(body: unknown, get: (key: string) => unknown): DecodedTriggerMessage {
  // The worker JSON-parses string metadata that parses: an id "42" arrives as the number 42.
  const str = (key: string) => {
    const v = get(key);
    if (typeof v === 'string') return v === '' ? undefined : v;
    return typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  };
  const contentType = str('contentType');
  let bytes: Uint8Array;
  let error: string | undefined;
  try {
    bytes =
      typeof body === 'string' && contentType !== undefined && isJson(contentType)
        ? toBytes(JSON.stringify(body))
        : toBytes(body);
  } catch (err) {
    bytes = new Uint8Array(0);
    error = describeError(err);
  }
  const count = Number(get('deliveryCount'));
  const enqueued = get('enqueuedTimeUtc');
  const publishedAt =
    enqueued instanceof Date
      ? enqueued
      : typeof enqueued === 'string' || typeof enqueued === 'number'
        ? new Date(enqueued)
        : undefined;
  const message: IncomingMessage = {
    body: bytes,
    target: str('subject') ?? str('label'),
    messageId: str('messageId') ?? randomUUID(),
    contentType,
    headers: headersFromProperties(get('applicationProperties') ?? get('userProperties')),
    correlationId: str('correlationId'),
    replyTo: str('replyTo'),
    deliveryCount: Number.isInteger(count) && count >= 1 ? count : 1,
    publishedAt: publishedAt && !Number.isNaN(publishedAt.getTime()) ? publishedAt : undefined,
    groupKey: str('sessionId'),
    raw: { body, metadata: rawMetadata(get) },
  };
  return error === undefined ? { message } : { message, error };
}

const RAW_KEYS = [
  'messageId',
  'deliveryCount',
  'subject',
  'correlationId',
  'replyTo',
  'replyToSessionId',
  'contentType',
  'sessionId',
  'lockToken',
  'sequenceNumber',
  'enqueuedTimeUtc',
  'applicationProperties',
];

function rawMetadata(get: (key: string) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of RAW_KEYS) {
    const v = get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function isJson(contentType: string): boolean {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base.endsWith('+json');
}
