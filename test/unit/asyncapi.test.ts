/**
 * The AsyncAPI 3 document of a topology, validated with @asyncapi/parser (no error, no
 * warning) and read back through the parser's model: channels = targets, operations =
 * handlers with their replies, payloads from the targets' schemas.
 */
import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { topology as example } from '../../examples/topology.ts';
import { asyncapi, generateAsyncapi } from '../../src/asyncapi.ts';
import { defineTopology, InvalidArgumentError, type StandardSchema } from '../../src/index.ts';

const parser = new Parser();

async function parse(doc: object) {
  const { document, diagnostics } = await parser.parse(JSON.stringify(doc));
  // severity 0 = error, 1 = warning (2 = information, 3 = hint)
  const problems = diagnostics.filter((d) => d.severity <= 1);
  expect(problems.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
  expect(document).toBeDefined();
  return document!;
}

const miniJsonSchema = (s: StandardSchema) =>
  zm.toJSONSchema(s as zm.ZodMiniType, { target: 'draft-07', io: 'input' }) as Record<
    string,
    unknown
  >;

describe('asyncapi(topology)', () => {
  it('the example app: valid, a channel per target with the target as address, and replies', async () => {
    const doc = asyncapi(example, { jsonSchema: miniJsonSchema });
    const parsed = await parse(doc);
    expect(parsed.version()).toBe('3.0.0');
    expect(parsed.info().title()).toBe('cloudmom-examples');
    const channels = Object.fromEntries(
      parsed
        .channels()
        .all()
        .map((c) => [c.id(), c.address()]),
    );
    expect(channels).toEqual({
      hello: 'hello',
      sum: 'sum',
      audit: 'audit',
      flaky: 'flaky',
      replies: null,
    });
    const ops = parsed.operations();
    expect(
      ops
        .all()
        .map((o) => o.id())
        .sort(),
    ).toEqual(['audit', 'flaky', 'hello', 'sum']);
    for (const o of ops.all()) expect(o.action()).toBe('receive');
    const sum = ops.get('sum')!;
    expect(
      sum
        .tags()
        .all()
        .map((t) => t.name()),
    ).toEqual(['greeter']);
    expect(sum.reply()?.address()?.location()).toBe('$message.header#/reply_to');
    expect(sum.reply()?.channel()?.id()).toBe('replies');
    expect(ops.get('audit')!.reply()).toBeUndefined();
    expect(ops.get('flaky')!.reply()).toBeUndefined();
  });

  it('payloads: the zod schema of sum as JSON Schema; others open; headers and correlation id', async () => {
    const doc = asyncapi(example, { jsonSchema: miniJsonSchema });
    const parsed = await parse(doc);
    const sum = parsed.components().messages().get('sum')!;
    expect(sum.payload()?.type()).toBe('object');
    expect(sum.payload()?.required()).toEqual(['numbers']);
    expect(sum.payload()?.properties()?.numbers?.type()).toBe('array');
    expect(sum.payload()?.properties()?.numbers?.items()).toMatchObject({});
    expect(sum.correlationId()?.location()).toBe('$message.header#/correlation_id');
    const headers = sum.headers()!.properties()!;
    for (const h of [
      'target',
      'message_id',
      'correlation_id',
      'reply_to',
      'content_type',
      'traceparent',
      'delivery_count',
      'dead_letter_reason',
      'dead_letter_description',
      'dead_letter_truncated',
    ])
      expect(headers[h]?.type(), h).toBe('string');
    const hello = parsed.components().messages().get('hello')!;
    expect(hello.payload()?.type()).toBeUndefined(); // any JSON value
    expect(hello.payload()?.description()).toMatch(/declares no schema/);
  });

  it('without a converter: the Standard JSON Schema of a zod schema, else an open schema that says why', async () => {
    const topology = defineTopology({
      name: 'shop',
      services: {
        orders: {
          targets: {
            'order.created': { schema: z.object({ id: z.string(), qty: z.number().int() }) },
            'order.cancelled': { schema: zm.object({ id: zm.string() }) },
          },
        },
      },
    });
    const doc = asyncapi(topology);
    await parse(doc);
    const messages = doc.components.messages as Record<
      string,
      { payload: Record<string, unknown> }
    >;
    expect(messages.order_created!.payload).toMatchObject({
      type: 'object',
      required: ['id', 'qty'],
      properties: { id: { type: 'string' }, qty: { type: 'integer' } },
    });
    expect(messages.order_created!.payload.$schema).toBeUndefined();
    // zod/mini has no ~standard.jsonSchema: an open schema
    expect(messages.order_cancelled!.payload).toEqual({
      description:
        "Any JSON value: the target's zod schema has no JSON Schema form (give the jsonSchema option).",
    });
  });

  it('target names that are no AsyncAPI keys get ids of their own; addresses stay the targets', async () => {
    const topology = defineTopology({
      name: 'names',
      services: {
        a: { targets: ['order.created', 'order_created', 'x:y'] },
        b: { targets: { 'a.b-c': { replies: false } } },
      },
    });
    const parsed = await parse(asyncapi(topology));
    const byAddress = Object.fromEntries(
      parsed
        .channels()
        .all()
        .map((c) => [c.address(), c.id()]),
    );
    expect(byAddress).toEqual({
      'order.created': 'order_created',
      order_created: 'order_created_2',
      'x:y': 'x_y',
      'a.b-c': 'a_b-c',
      null: 'replies',
    });
  });

  it('a topology without replies: no replies channel, no reply; a stage names its queues', async () => {
    const topology = defineTopology({
      name: 'oneway',
      replies: false,
      services: { log: { targets: ['line'] }, audit: { targets: ['record'] } },
    });
    const doc = asyncapi(topology, { stage: 'prod', version: '2.1.0' });
    const parsed = await parse(doc);
    expect(parsed.info().version()).toBe('2.1.0');
    expect(parsed.channels().get('replies')).toBeUndefined();
    expect(parsed.operations().get('line')!.reply()).toBeUndefined();
    expect(JSON.stringify(doc)).toContain('oneway-prod-log');
    expect(
      parsed
        .info()
        .tags()
        .all()
        .map((t) => t.name()),
    ).toEqual(['log', 'audit']);
  });

  it('the parser check can fail: a reply message missing from the replies channel is an error', async () => {
    const doc = structuredClone(asyncapi(example)) as unknown as {
      channels: { replies: { messages: Record<string, unknown> } };
    };
    delete doc.channels.replies.messages.sumReply;
    const { diagnostics } = await parser.parse(JSON.stringify(doc));
    expect(diagnostics.filter((d) => d.severity === 0).length).toBeGreaterThan(0);
  });

  it('refuses unknown options, a bad version, a converter that returns no object', () => {
    expect(() => asyncapi(example, { nope: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => asyncapi(example, { version: '' })).toThrow(/version/);
    expect(() => asyncapi(example, { jsonSchema: () => 'x' as never })).toThrow(
      /JSON Schema of target "sum" is not an object/,
    );
  });

  it('generateAsyncapi: asyncapi.json, deterministic, ending in a newline', () => {
    const [a] = generateAsyncapi(example, { jsonSchema: miniJsonSchema });
    const [b] = generateAsyncapi(example, { jsonSchema: miniJsonSchema });
    expect(a!.path).toBe('asyncapi.json');
    expect(a!.content).toBe(b!.content);
    expect(JSON.parse(a!.content)).toEqual(asyncapi(example, { jsonSchema: miniJsonSchema }));
    expect(a!.content.endsWith('}\n')).toBe(true);
  });
});
