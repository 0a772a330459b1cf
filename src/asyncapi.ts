/**
 * The AsyncAPI 3 document of a topology: what an app's services receive and what they answer,
 * for docs, code generators and contract tests — from the same description as the IaC.
 *
 * - a channel per target, its `address` the target (carried by the `target` attribute on SQS,
 *   SNS and Pub/Sub, the Kafka header `target`, the Service Bus `subject`, the AMQP routing
 *   key, the Cloudflare Queues envelope), and the channel `replies` (address: the message's
 *   `reply_to`);
 * - an operation per target, `receive`, tagged with its service, with an AsyncAPI `reply`
 *   (address `$message.header#/reply_to`, on the channel `replies`) for targets that reply;
 * - messages whose payload is the target's schema as JSON Schema where it can be converted:
 *   the `jsonSchema` option, else the Standard JSON Schema extension of the schema
 *   (`schema['~standard'].jsonSchema.input()`: zod ≥ 4.2, arktype, valibot through
 *   `@valibot/to-json-schema`), else an open schema (any JSON value) that says so;
 * - the cloudmom headers (`correlation_id`, `reply_to`, `delivery_count`, the dead-letter
 *   reason…: the wire names of `WIRE`), and the correlation id at `$message.header#/correlation_id`.
 *
 * @example
 * ```ts
 * import { asyncapi } from 'cloudmom/infra';
 * const doc = asyncapi(topology, { version: '1.2.0' });
 * Object.keys(doc.channels); // one per target, and "replies"
 * ```
 * @module
 */
import { InvalidArgumentError } from './errors.ts';
import type { StandardSchema } from './schema.ts';
import type { TargetSpec, Topology } from './topology.ts';
import { checkOptionKeys } from './util.ts';
import * as WIRE from './wire-names.ts';

/** A JSON Schema (draft-07, the dialect AsyncAPI schemas extend), as a plain object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

/**
 * Options of {@link asyncapi}.
 *
 * @example
 * ```ts
 * import { z } from 'zod/mini';
 * asyncapi(topology, { version: '2.0.0', jsonSchema: (s) => z.toJSONSchema(s as never, { target: 'draft-07', io: 'input' }) });
 * ```
 */
export interface AsyncApiOptions {
  /** `info.version`, the version of the app's API. Default `1.0.0`. */
  readonly version?: string;
  /** The stage whose names the document gives (the reply destination). Default: none. */
  readonly stage?: string;
  /**
   * Converts a target's schema to JSON Schema (draft-07), or returns `undefined` when it
   * cannot (then the Standard JSON Schema extension is tried, then an open schema). Default:
   * none.
   */
  readonly jsonSchema?: (schema: StandardSchema, target: string) => JsonSchema | undefined;
}

/** An AsyncAPI 3.0 document, as a plain JSON object. */
export interface AsyncApiDocument {
  readonly asyncapi: '3.0.0';
  readonly info: Readonly<Record<string, unknown>>;
  readonly defaultContentType: string;
  readonly channels: Readonly<Record<string, unknown>>;
  readonly operations: Readonly<Record<string, unknown>>;
  readonly components: Readonly<Record<string, unknown>>;
}

const OPTION_KEYS = ['version', 'stage', 'jsonSchema'] as const;

/** The headers cloudmom reads and writes (user headers are any other string attribute). */
const HEADERS: Readonly<Record<string, JsonSchema>> = {
  [WIRE.target]: {
    type: 'string',
    description:
      'The target: which handlers get the message. The channel address; on AMQP the routing key, on Service Bus the subject, on Cloudflare Queues an envelope field.',
  },
  [WIRE.messageId]: { type: 'string', description: 'The message id (a UUID by default).' },
  [WIRE.correlationId]: {
    type: 'string',
    description:
      'Correlation id: a reply carries the one of the message it answers (or its message id).',
  },
  [WIRE.replyTo]: {
    type: 'string',
    description:
      'Where the reply to this message goes: a reply destination of the deployment (its reply allow-list).',
  },
  [WIRE.contentType]: {
    type: 'string',
    description:
      'How the body is encoded: application/json, text/plain; charset=utf-8, application/octet-stream, or a custom codec.',
  },
  [WIRE.traceparent]: {
    type: 'string',
    description: 'W3C Trace Context of the publish, when tracing is on.',
  },
  [WIRE.deliveryCount]: {
    type: 'string',
    pattern: '^[1-9][0-9]*$',
    description:
      'On a dead-letter copy (and where the platform has no count of its own): the deliveries so far.',
  },
  [WIRE.deadLetterReason]: {
    type: 'string',
    description:
      'On a dead-letter copy: why, in one word (handler-failed, max-deliveries, undecodable, missing-target, schema-invalid, unknown-target, reply-not-allowed, reply-failed, too-large).',
  },
  [WIRE.deadLetterDescription]: {
    type: 'string',
    description: 'On a dead-letter copy: the error, in words.',
  },
  [WIRE.deadLetterTruncated]: {
    type: 'string',
    description: 'On a dead-letter copy: set when the description was cut to fit the platform.',
  },
};

/** Channel and operation ids: `^[A-Za-z0-9_-]+$` (AsyncAPI's key rule). */
function ids(targets: readonly TargetSpec[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set(['replies']);
  for (const t of targets) {
    const base = t.name.replace(/[^A-Za-z0-9_-]/g, '_');
    let id = base;
    for (let i = 2; used.has(id); i++) id = `${base}_${i}`;
    used.add(id);
    out.set(t.name, id);
  }
  return out;
}

/** The target's payload schema, and whether it is the target's own (converted). */
function payloadOf(
  t: TargetSpec,
  convert: AsyncApiOptions['jsonSchema'],
): { schema: JsonSchema; converted: boolean } {
  if (t.schema) {
    const given =
      convert?.(t.schema, t.name) ??
      (
        t.schema['~standard'] as {
          jsonSchema?: { input?: (o: { target: string }) => JsonSchema };
        }
      ).jsonSchema?.input?.({ target: 'draft-07' });
    if (given !== undefined) {
      if (given === null || typeof given !== 'object' || Array.isArray(given))
        throw new InvalidArgumentError(
          `asyncapi: the JSON Schema of target "${t.name}" is not an object`,
        );
      const { $schema: _, ...schema } = given as Record<string, unknown>;
      return { schema, converted: true };
    }
    return {
      schema: {
        description: `Any JSON value: the target's ${t.schema['~standard'].vendor} schema has no JSON Schema form (give the jsonSchema option).`,
      },
      converted: false,
    };
  }
  return {
    schema: { description: 'Any JSON value (the target declares no schema).' },
    converted: false,
  };
}

/**
 * The AsyncAPI 3.0 document of a topology (see the module for what it holds).
 *
 * @example
 * ```ts
 * const doc = asyncapi(topology);
 * doc.operations.sum; // { action: 'receive', channel: { $ref: '#/channels/sum' }, reply: { … } }
 * ```
 */
export function asyncapi(topology: Topology, options: AsyncApiOptions = {}): AsyncApiDocument {
  checkOptionKeys(options, OPTION_KEYS, 'asyncapi');
  const version = options.version ?? '1.0.0';
  if (typeof version !== 'string' || version === '')
    throw new InvalidArgumentError('asyncapi: version must be a non-empty string');
  if (options.jsonSchema !== undefined && typeof options.jsonSchema !== 'function')
    throw new InvalidArgumentError('asyncapi: jsonSchema must be a function');
  const n = topology.names(options.stage);
  const targets = topology.targets();
  const id = ids(targets);
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  const replyMessages: Record<string, unknown> = {};
  const headers = { $ref: '#/components/schemas/headers' };
  const correlationId = { $ref: '#/components/correlationIds/correlationId' };

  for (const s of topology.services) {
    for (const t of s.targets) {
      const key = id.get(t.name)!;
      const payload = payloadOf(t, options.jsonSchema);
      messages[key] = {
        name: t.name,
        title: t.name,
        ...(t.description && { summary: t.description }),
        headers,
        correlationId,
        payload: payload.schema,
      };
      channels[key] = {
        address: t.name,
        title: t.name,
        description: `Messages for the target "${t.name}", served by the service "${s.name}" (queue ${n.services[s.name]!.queue}). The target travels in the \`target\` attribute (AMQP: the routing key; Service Bus: the subject; Cloudflare Queues: the envelope).`,
        messages: { [key]: { $ref: `#/components/messages/${key}` } },
      };
      const reply = t.replies && {
        address: {
          location: `$message.header#/${WIRE.replyTo}`,
          description: `The message's \`${WIRE.replyTo}\`${n.replies ? `: the topology's reply destination ${n.replies}, or a requester's own reply address` : ''}.`,
        },
        channel: { $ref: '#/channels/replies' },
        messages: [{ $ref: `#/channels/replies/messages/${key}Reply` }],
      };
      if (t.replies) {
        messages[`${key}Reply`] = {
          name: `${t.name} reply`,
          title: `Reply to ${t.name}`,
          summary: `What a handler of "${t.name}" returns, with the request's correlation id.`,
          headers,
          correlationId,
          payload: { description: 'The handler’s return value (any JSON value).' },
        };
        replyMessages[`${key}Reply`] = { $ref: `#/components/messages/${key}Reply` };
      }
      operations[key] = {
        action: 'receive',
        channel: { $ref: `#/channels/${key}` },
        title: `Handle ${t.name}`,
        summary: t.description ?? `The handlers of "${t.name}".`,
        description: `Service "${s.name}": up to ${s.maxDeliveries} deliveries (retried with backoff from ${s.retry.baseDelayMs} ms), then the message goes to ${n.services[s.name]!.deadLetter} with its dead_letter_reason.${t.replies ? ' A return value is the reply.' : ' One-way: no reply.'}${payload.converted ? ' A body that fails the schema is dead-lettered (schema-invalid).' : ''}`,
        tags: [{ name: s.name }],
        messages: [{ $ref: `#/channels/${key}/messages/${key}` }],
        ...(reply && { reply }),
      };
    }
  }
  if (Object.keys(replyMessages).length > 0)
    channels.replies = {
      address: null,
      title: 'Replies',
      description: `Replies, at the address of the message's \`${WIRE.replyTo}\`${n.replies ? ` (the topology's reply destination is ${n.replies}; request() uses a reply address of its own)` : ''}; a reply nobody waits for is dispatched to the target "reply".`,
      messages: replyMessages,
    };

  return {
    asyncapi: '3.0.0',
    info: {
      title: topology.name,
      version,
      ...(topology.description && { description: topology.description }),
      tags: topology.services.map((s) => ({
        name: s.name,
        ...(s.description && { description: s.description }),
      })),
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      messages,
      schemas: {
        headers: {
          type: 'object',
          description:
            'cloudmom attributes (message attributes, Kafka headers, AMQP properties and headers, Service Bus properties, a Cloudflare envelope); any other string attribute is a user header.',
          properties: HEADERS,
          additionalProperties: { type: 'string' },
        },
      },
      correlationIds: {
        correlationId: {
          description: 'Pairs a reply with its request.',
          location: `$message.header#/${WIRE.correlationId}`,
        },
      },
    },
  };
}

/**
 * The AsyncAPI document as a file (`asyncapi.json`, JSON: AsyncAPI tools read it as they read
 * YAML), in the shape of the IaC generators' output.
 *
 * @example
 * ```ts
 * const [file] = generateAsyncapi(topology);
 * writeFileSync(`docs/${file!.path}`, file!.content);
 * ```
 */
export function generateAsyncapi(
  topology: Topology,
  options: AsyncApiOptions = {},
): { path: string; content: string }[] {
  return [
    { path: 'asyncapi.json', content: `${JSON.stringify(asyncapi(topology, options), null, 2)}\n` },
  ];
}
