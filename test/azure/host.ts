/**
 * What the Azure Functions host hands a Node v4 Service Bus trigger, built from messages
 * actually received from the peer with `@azure/service-bus`:
 *
 * - trigger metadata as the Service Bus extension (v5, `ServiceBusTriggerBindingStrategy`)
 *   binds it — PascalCase keys, `DeliveryCount` 1-based (the .NET SDK adds 1 to the AMQP header),
 *   `Subject` and its back-compat `Label`, `ApplicationProperties` and `UserProperties`, an
 *   `…Array` form of each for `cardinality: 'many'` — then as the Node library
 *   (`@azure/functions` `fromRpcTriggerMetadata`) turns it into `context.triggerMetadata`: string
 *   values (and each string of an `…Array`) JSON-parsed when they parse, objects as JSON, keys
 *   lower-camel-cased recursively (first letter only);
 * - the trigger input: the body as a string, JSON-parsed when it parses (the worker's
 *   `tryJsonParse`), or bytes with `dataType: 'binary'`;
 * - for the SDK-type binding, `{ messages, actions }` where the actions settle through the
 *   receiver that holds the locks (the host settles over AMQP with the same lock tokens).
 */

import { InvocationContext } from '@azure/functions';
import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { ServiceBusSettlementActions } from 'cloudmom/azure';
import { bodyBytes } from '../../adapters/azure/wire.ts';

function hostFields(m: ServiceBusReceivedMessage): Record<string, unknown> {
  return {
    DeliveryCount: (m.deliveryCount ?? 0) + 1,
    DeadLetterSource: m.deadLetterSource,
    LockToken: m.lockToken,
    ExpiresAtUtc: m.expiresAtUtc?.toISOString(),
    EnqueuedTimeUtc: m.enqueuedTimeUtc?.toISOString(),
    MessageId: m.messageId === undefined ? undefined : String(m.messageId),
    ContentType: m.contentType,
    ReplyTo: m.replyTo,
    SequenceNumber: m.sequenceNumber?.toNumber(),
    To: m.to,
    Subject: m.subject,
    Label: m.subject,
    CorrelationId: m.correlationId === undefined ? undefined : String(m.correlationId),
    ApplicationProperties: { ...(m.applicationProperties ?? {}) },
    UserProperties: { ...(m.applicationProperties ?? {}) },
    SessionId: m.sessionId,
    ReplyToSessionId: m.replyToSessionId,
  };
}

function tryJsonParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

function camelKey(k: string): string {
  return k.charAt(0).toLowerCase() + k.slice(1);
}

function camelValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(camelValue);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [camelKey(k), camelValue(x)]));
}

/** `context.triggerMetadata` for these messages, as a Node v4 function sees it. */
export function hostTriggerMetadata(
  messages: readonly ServiceBusReceivedMessage[],
  cardinality: 'one' | 'many',
): Record<string, unknown> {
  const bound: Record<string, unknown> = {};
  if (cardinality === 'one') {
    for (const [k, v] of Object.entries(hostFields(messages[0]!))) {
      if (v === undefined) continue;
      bound[k] = typeof v === 'string' ? tryJsonParse(v) : v; // RpcTypedData.string → tryJsonParse
    }
  } else {
    // `…Array` of strings come as RpcTypedData collection_string, whose every element the
    // worker JSON-parses too (`data.collectionString.string.map(tryJsonParse)`).
    const rows = messages.map(hostFields);
    for (const k of Object.keys(rows[0] ?? {}))
      bound[`${k}Array`] = rows.map((r) => {
        const v = r[k];
        return typeof v === 'string' ? tryJsonParse(v) : (v ?? null);
      });
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(bound)) out[camelKey(k)] = camelValue(v);
  return out;
}

/** The trigger input: bodies as the worker hands them (text JSON-parsed when it parses, or bytes). */
export function hostInput(
  messages: readonly ServiceBusReceivedMessage[],
  cardinality: 'one' | 'many',
  dataType: 'string' | 'binary' = 'string',
): unknown {
  const one = (m: ServiceBusReceivedMessage) => {
    const bytes = Buffer.from(bodyBytes(m));
    return dataType === 'binary' ? bytes : tryJsonParse(bytes.toString('utf8'));
  };
  return cardinality === 'one' ? one(messages[0]!) : messages.map(one);
}

/** An InvocationContext as @azure/functions documents for tests. */
export function invocation(
  messages: readonly ServiceBusReceivedMessage[],
  cardinality: 'one' | 'many',
  functionName = 'cloudmom',
): InvocationContext {
  return new InvocationContext({
    invocationId: `inv-${Math.random().toString(36).slice(2)}`,
    functionName,
    triggerMetadata: hostTriggerMetadata(messages, cardinality),
    logHandler: () => {},
  });
}

/**
 * The SDK-type binding's settlement actions, settling through the receiver holding the locks.
 * The host settles over its own (.NET) AMQP stack, message by message; here the receiver is
 * rhea's, which coalesces dispositions written in one tick (see SettleGate in
 * adapters/azure/broker.ts), so the harness issues them one at a time like the host's gRPC calls.
 */
export function actionsFor(
  receiver: ServiceBusReceiver,
  log: string[] = [],
): ServiceBusSettlementActions {
  let tail: Promise<unknown> = Promise.resolve();
  const one = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
  return {
    complete: (m: ServiceBusReceivedMessage) =>
      one(async () => {
        log.push(`complete ${m.messageId}`);
        await receiver.completeMessage(m);
      }),
    abandon: (m: ServiceBusReceivedMessage) =>
      one(async () => {
        log.push(`abandon ${m.messageId}`);
        await receiver.abandonMessage(m);
      }),
    deadletter: (m: ServiceBusReceivedMessage, _props, reason, description) =>
      one(async () => {
        log.push(`deadletter ${m.messageId} ${reason}`);
        await receiver.deadLetterMessage(m, {
          deadLetterReason: reason ?? '',
          deadLetterErrorDescription: description ?? '',
        });
      }),
  };
}
