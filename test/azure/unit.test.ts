/**
 * Pure functions of the Azure adapter (no peer needed): the wire mapping, the decoding of
 * trigger invocations, options checks, and the settlement gate.
 */
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { InvalidArgumentError, InvalidMessageError } from 'cloudmom';
import { azureFunctionHandler, fromTrigger, ServiceBusBroker } from 'cloudmom/azure';
import { describe, expect, it } from 'vitest';
import { SettleGate } from '../../adapters/azure/broker.ts';
import {
  bodyBytes,
  fromReceived,
  headersFromProperties,
  measureServiceBus,
  toBytes,
  toServiceBusMessage,
} from '../../adapters/azure/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const CS =
  'Endpoint=sb://127.0.0.9;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true';
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function outgoing(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    body: utf8('{"a":1}'),
    target: 'orders',
    messageId: 'm-1',
    contentType: 'application/json',
    headers: {},
    ...over,
  };
}

describe('wire: toServiceBusMessage', () => {
  it('maps the fields and sends the body as a Buffer view of the same bytes', () => {
    const bytes = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    const m = toServiceBusMessage(
      outgoing({
        body: bytes,
        correlationId: 'c',
        replyTo: 'r',
        groupKey: 'g',
        headers: { h: 'v' },
        delaySeconds: 10,
      }),
    );
    expect(Buffer.isBuffer(m.body)).toBe(true);
    expect([...(m.body as Buffer)]).toEqual([1, 2, 3]);
    expect(m).toMatchObject({
      messageId: 'm-1',
      subject: 'orders',
      contentType: 'application/json',
      correlationId: 'c',
      replyTo: 'r',
      sessionId: 'g',
      applicationProperties: { h: 'v' },
    });
    expect(m.scheduledEnqueueTimeUtc!.getTime()).toBeGreaterThan(Date.now() + 9000);
  });

  it('uses the deduplication id as the message id (duplicate detection keys on it)', () => {
    expect(toServiceBusMessage(outgoing({ deduplicationId: 'dedupe' })).messageId).toBe('dedupe');
  });

  it('leaves optional fields out', () => {
    const m = toServiceBusMessage(outgoing());
    expect(Object.keys(m).sort()).toEqual(['body', 'contentType', 'messageId', 'subject']);
  });
});

describe('wire: measure and bytes', () => {
  it('measures body, properties and a per-field overhead', () => {
    const base = measureServiceBus(outgoing({ body: new Uint8Array(0) }));
    expect(measureServiceBus(outgoing({ body: new Uint8Array(1000) }))).toBe(base + 1000);
    const withHeader = measureServiceBus(
      outgoing({ body: new Uint8Array(0), headers: { k: 'vv' } }),
    );
    expect(withHeader - base).toBeGreaterThanOrEqual(2 * 3); // counted about twice, as the SDK does
    expect(measureServiceBus(outgoing({ correlationId: 'abc' }))).toBeGreaterThan(
      measureServiceBus(outgoing()) + 3,
    );
  });

  it('turns every body shape back into bytes', () => {
    expect(text(toBytes('héllo'))).toBe('héllo');
    expect(text(toBytes({ a: [1] }))).toBe('{"a":[1]}');
    expect(text(toBytes(42))).toBe('42');
    expect(text(toBytes(null))).toBe('null');
    expect(toBytes(undefined).byteLength).toBe(0);
    expect([...toBytes(Buffer.from([0xff, 0]))]).toEqual([0xff, 0]);
    expect([...toBytes({ typecode: 0x75, content: Buffer.from([7]) })]).toEqual([7]);
    expect(() => toBytes({ n: 1n })).toThrow();
  });

  it('prefers the raw AMQP data section (what the SDK-type binding decoded into text)', () => {
    const raw = Buffer.from([0xc3, 0x28]); // not UTF-8
    const m = { body: '\ufffd(', _rawAmqpMessage: { body: { typecode: 0x75, content: raw } } };
    expect([...bodyBytes(m)]).toEqual([0xc3, 0x28]);
    expect(text(bodyBytes({ body: 'plain' }))).toBe('plain');
  });

  it('writes application properties as string headers', () => {
    const d = new Date('2026-01-02T03:04:05.000Z');
    expect(
      headersFromProperties({ s: 'x', n: 1.5, b: false, d, nil: null, u: undefined, o: { a: 1 } }),
    ).toEqual({ s: 'x', n: '1.5', b: 'false', d: '2026-01-02T03:04:05.000Z', o: '{"a":1}' });
    expect(headersFromProperties([1, 2])).toEqual({});
    expect(headersFromProperties('x')).toEqual({});
  });
});

describe('fromReceived (messages from @azure/service-bus or the SDK-type binding)', () => {
  it('adds one to the raw AMQP delivery count and keeps header names exactly', () => {
    const m = fromReceived({
      body: Buffer.from('"x"'),
      messageId: 'id',
      subject: 'hello',
      contentType: 'application/json',
      deliveryCount: 0,
      applicationProperties: { 'X-Tenant': 'acme' },
      sessionId: 's',
      enqueuedTimeUtc: new Date(0),
    } as unknown as ServiceBusReceivedMessage);
    expect(m).toMatchObject({
      target: 'hello',
      messageId: 'id',
      deliveryCount: 1,
      groupKey: 's',
      headers: { 'X-Tenant': 'acme' },
      publishedAt: new Date(0),
    });
  });

  it('drops non-string fields instead of passing them on', () => {
    const m = fromReceived({
      body: undefined,
      messageId: 12,
      subject: 5,
      replyTo: { evil: true },
      deliveryCount: -4,
      enqueuedTimeUtc: 'yesterday',
    } as unknown as ServiceBusReceivedMessage);
    expect(m.messageId).toBe('12');
    expect(m.target).toBeUndefined();
    expect(m.replyTo).toBeUndefined();
    expect(m.deliveryCount).toBe(1);
    expect(m.publishedAt).toBeUndefined();
  });
});

describe('fromTrigger (plain binding)', () => {
  it('cardinality one: metadata keys as the host camel-cases them', () => {
    const [d] = fromTrigger(
      { numbers: [1, 2] },
      {
        messageId: 'm-1',
        subject: 'sum',
        contentType: 'application/json',
        correlationId: 42, // the worker JSON-parsed "42"
        replyTo: 'fn-replies',
        deliveryCount: 2,
        sessionId: 'g',
        enqueuedTimeUtc: '2026-11-27T10:00:00Z',
        applicationProperties: { tenant: 'a', count: 3 },
      },
    );
    expect(d!.poison).toBeUndefined();
    expect(text(d!.body)).toBe('{"numbers":[1,2]}');
    expect(d!).toMatchObject({
      target: 'sum',
      messageId: 'm-1',
      correlationId: '42',
      replyTo: 'fn-replies',
      deliveryCount: 2,
      groupKey: 'g',
      headers: { tenant: 'a', count: '3' },
    });
    expect(d!.publishedAt?.toISOString()).toBe('2026-11-27T10:00:00.000Z');
  });

  it('a string under a JSON content type was a JSON string: it is written back as JSON', () => {
    const [d] = fromTrigger('hello', { subject: 't', contentType: 'application/json' });
    expect(text(d!.body)).toBe('"hello"');
    const [t] = fromTrigger('hello', { subject: 't', contentType: 'text/plain' });
    expect(text(t!.body)).toBe('hello');
  });

  it('cardinality many: the …Array forms, by index; the label back-compat name for the subject', () => {
    const ds = fromTrigger([Buffer.from('a'), Buffer.from('b')], {
      messageIdArray: ['1', '2'],
      labelArray: ['x', 'y'],
      deliveryCountArray: [1, 3],
      applicationPropertiesArray: [{ k: 'v' }, {}],
    });
    expect(ds.map((d) => [text(d.body), d.target, d.deliveryCount])).toEqual([
      ['a', 'x', 1],
      ['b', 'y', 3],
    ]);
    expect(ds[0]!.headers).toEqual({ k: 'v' });
  });

  it('odd metadata does not throw: missing, wrong types, short arrays', () => {
    expect(fromTrigger('x', undefined)[0]!.target).toBeUndefined();
    const [d] = fromTrigger('x', { deliveryCount: 'many', messageId: {}, enqueuedTimeUtc: 'no' });
    expect(d!.deliveryCount).toBe(1);
    expect(d!.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(d!.publishedAt).toBeUndefined();
    const many = fromTrigger(['a', 'b', 'c'], { messageIdArray: ['1'] });
    expect(many).toHaveLength(3);
    expect(fromTrigger('single', { messageIdArray: ['1'] })).toHaveLength(1);
    const [bad] = fromTrigger({ n: 1n }, { subject: 't' });
    expect(bad!.poison).toMatchObject({
      code: 'undecodable',
      description: expect.stringMatching(/BigInt/),
    });
  });
});

describe('options', () => {
  it('rejects unknown keys, a subscription without topic, and a missing connection', () => {
    expect(() => new ServiceBusBroker({ connectionString: CS, queues: 'x' } as any)).toThrow(
      InvalidArgumentError,
    );
    expect(() => new ServiceBusBroker({ connectionString: CS, subscription: 's' })).toThrow(
      /subscription needs topic/,
    );
    const saved = process.env.SERVICEBUS_CONNECTION_STRING;
    delete process.env.SERVICEBUS_CONNECTION_STRING;
    expect(() => new ServiceBusBroker({})).toThrow(InvalidArgumentError);
    if (saved !== undefined) process.env.SERVICEBUS_CONNECTION_STRING = saved;
    expect(() => new ServiceBusBroker({ connectionString: CS, maxMessageBytes: 10 })).toThrow(
      InvalidArgumentError,
    );
  });

  it('azureFunctionHandler checks its options and its broker', () => {
    const b = new ServiceBusBroker({ connectionString: CS, logger: false });
    expect(() => azureFunctionHandler(b, { cardinalty: 'many' } as any)).toThrow(
      InvalidArgumentError,
    );
    expect(() => azureFunctionHandler(b, { cardinality: 'some' as any })).toThrow(
      InvalidArgumentError,
    );
    expect(() => azureFunctionHandler({} as any)).toThrow();
  });

  it('refuses at publish what Service Bus cannot carry: > 64 KB of properties, long ids', async () => {
    const b = new ServiceBusBroker({ connectionString: CS, logger: false, queue: 'q' });
    await expect(
      b.publish('x', 't', { headers: { big: 'v'.repeat(70_000) } }),
    ).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(b.publish('x', 't', { groupKey: 'g'.repeat(129) })).rejects.toBeInstanceOf(
      InvalidMessageError,
    );
    await b.stop();
  });
});

describe('SettleGate', () => {
  it('runs shared settlements together and a solo one alone, after those in flight', async () => {
    const gate = new SettleGate();
    const events: string[] = [];
    const task = (name: string, ms: number) => async () => {
      events.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`end ${name}`);
    };
    const a = gate.shared(task('a', 30));
    const b = gate.shared(task('b', 10));
    const s = gate.solo(task('s', 10));
    await new Promise((r) => setTimeout(r, 0));
    const c = gate.shared(task('c', 1));
    await Promise.all([a, b, s, c]);
    expect(events.slice(0, 2)).toEqual(['start a', 'start b']);
    const sStart = events.indexOf('start s');
    expect(sStart).toBeGreaterThan(events.indexOf('end a'));
    expect(events[sStart + 1]).toBe('end s');
    expect(events.indexOf('start c')).toBeGreaterThan(events.indexOf('end s'));
  });
});
