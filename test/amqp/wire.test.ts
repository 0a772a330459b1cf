import { InvalidMessageError } from 'cloudmom';
import { describe, expect, it } from 'vitest';
import {
  DeliveryTags,
  deliveredBody,
  fromWire,
  GROUP_KEY,
  headerFrameBytes,
  headerText,
  LIMITS,
  measure,
  routeOf,
  toEnvelope,
  toProperties,
  validate,
  type WireDelivery,
} from '../../adapters/amqp/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const msg = (over: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  body: new TextEncoder().encode('{"a":1}'),
  target: 'orders',
  messageId: 'm-1',
  contentType: 'application/json',
  headers: { tenant: 'a' },
  ...over,
});
const delivery = (over: Partial<WireDelivery> = {}): WireDelivery => ({
  body: new Uint8Array([1, 2]),
  routingKey: 'orders',
  redelivered: false,
  headers: {},
  ...over,
});
const fallbackId = () => 'generated';

describe('amqp wire: outgoing', () => {
  it('routes to the exchange with routing key = target', () => {
    expect(routeOf(msg(), 'cloudmom')).toEqual({ exchange: 'cloudmom', routingKey: 'orders' });
  });
  it('routes a reply to its queue through the default exchange', () => {
    expect(routeOf(msg({ destination: 'cloudmom.reply.x' }), 'cloudmom')).toEqual({
      exchange: '',
      routingKey: 'cloudmom.reply.x',
    });
  });
  it('routes a dead-letter copy to the dead-letter exchange, keeping the target as routing key', () => {
    const dl = msg({
      destination: 'cloudmom.dead-letter',
      target: '',
      deadLetter: { code: 'missing-target', description: 'no target', deliveryCount: 1 },
    });
    expect(routeOf(dl, 'cloudmom')).toEqual({ exchange: 'cloudmom.dead-letter', routingKey: '' });
  });
  it('writes persistent properties, ids and headers (target as a header too)', () => {
    const p = toProperties(
      msg({
        correlationId: 'c',
        replyTo: 'r',
        groupKey: 'g',
        headers: { traceparent: 't', x: 'y' },
      }),
      1_700_000_000_500,
    );
    expect(p).toEqual({
      messageId: 'm-1',
      contentType: 'application/json',
      correlationId: 'c',
      replyTo: 'r',
      timestamp: 1_700_000_000,
      deliveryMode: 2,
      headers: { traceparent: 't', x: 'y', target: 'orders', [GROUP_KEY]: 'g' },
    });
  });
  it('carries a dead-letter copy’s reason, description and delivery count; no target header when empty', () => {
    const p = toProperties(
      msg({
        target: '',
        deadLetter: { code: 'handler-failed', description: 'boom', deliveryCount: 3 },
      }),
    );
    expect(p.headers).toEqual({
      tenant: 'a',
      dead_letter_reason: 'handler-failed',
      dead_letter_description: 'boom',
      delivery_count: '3',
    });
  });
  it('builds the publish envelope as the properties plus the route and mandatory', () => {
    const m = msg({ correlationId: 'c', groupKey: 'g', headers: { x: 'y' } });
    const route = routeOf(m, 'cloudmom');
    const e = toEnvelope(m, route, 1_700_000_000);
    const { correlationId, replyTo, ...rest } = e;
    expect({
      ...rest,
      ...(correlationId && { correlationId }),
      ...(replyTo && { replyTo }),
    }).toEqual({
      ...toProperties(m, 1_700_000_000_999),
      exchange: 'cloudmom',
      routingKey: 'orders',
      mandatory: true,
    });
    expect(replyTo).toBeUndefined();
    // the message's own headers object is not the one sent (the mapping adds to a copy)
    expect(e.headers).not.toBe(m.headers);
    expect(m.headers).toEqual({ x: 'y' });
  });
  it('measures body plus the content header frame', () => {
    const m = msg();
    expect(measure(m)).toBe(m.body.byteLength + headerFrameBytes(m));
    expect(headerFrameBytes(msg({ headers: { k: 'v'.repeat(100) } }))).toBeGreaterThan(
      headerFrameBytes(msg({ headers: { k: 'v' } })) + 98,
    );
  });
  it('refuses shortstr fields over 255 bytes, which the client would cut silently', () => {
    expect(() => validate(msg({ target: 'é'.repeat(128) }))).toThrow(InvalidMessageError);
    expect(() => validate(msg({ correlationId: 'c'.repeat(256) }))).toThrow(/correlation_id/);
    expect(() => validate(msg({ headers: { ['k'.repeat(256)]: 'v' } }))).toThrow(/header name/);
    expect(() => validate(msg({ target: 't'.repeat(255) }))).not.toThrow();
  });
  it('refuses headers the mapping owns or RabbitMQ sets', () => {
    for (const k of [
      GROUP_KEY,
      'delivery_count',
      'x-delivery-count',
      'x-death',
      'x-first-death-reason',
    ])
      expect(() => validate(msg({ headers: { [k]: 'v' } }))).toThrow(InvalidMessageError);
    expect(() => validate(msg({ headers: { 'x-tenant': 'v', constructor: 'c' } }))).not.toThrow();
  });
  it('refuses properties that do not fit in one frame', () => {
    const headers = { big: 'v'.repeat(9000) };
    expect(() => validate(msg({ headers }), 8192)).toThrow(/frame_max/);
    expect(() => validate(msg({ headers }), LIMITS.frameMax)).not.toThrow();
  });
});

describe('amqp wire: incoming', () => {
  it('reads target from the header, else the routing key; empty is none', () => {
    expect(fromWire(delivery({ headers: { target: 'a' } }), null, { fallbackId }).target).toBe('a');
    expect(fromWire(delivery(), null, { fallbackId }).target).toBe('orders');
    expect(fromWire(delivery({ routingKey: '' }), null, { fallbackId }).target).toBeUndefined();
    expect(
      fromWire(delivery({ routingKey: undefined }), null, { fallbackId }).target,
    ).toBeUndefined();
  });
  it('maps properties and keeps user headers only', () => {
    const m = fromWire(
      delivery({
        contentType: 'text/plain; charset=utf-8',
        correlationId: 'c',
        replyTo: 'r',
        messageId: 'id',
        timestamp: 1_700_000_000,
        headers: {
          target: 't',
          tenant: 'a',
          [GROUP_KEY]: 'g',
          'x-delivery-count': 2,
          'x-death': [{ reason: 'rejected' }],
          'x-first-death-queue': 'q',
        },
      }),
      'raw',
      { fallbackId, ackId: 7, source: 'q' },
    );
    expect(m).toMatchObject({
      target: 't',
      messageId: 'id',
      contentType: 'text/plain; charset=utf-8',
      correlationId: 'c',
      replyTo: 'r',
      headers: { tenant: 'a' },
      groupKey: 'g',
      deliveryCount: 3,
      publishedAt: new Date(1_700_000_000_000),
      ackId: 7,
      source: 'q',
      raw: 'raw',
    });
  });
  it('counts deliveries: first 1, redelivered 2, quorum x-delivery-count + 1, own header', () => {
    const count = (d: Partial<WireDelivery>) =>
      fromWire(delivery(d), null, { fallbackId }).deliveryCount;
    expect(count({})).toBe(1);
    expect(count({ redelivered: true })).toBe(2);
    expect(count({ redelivered: true, headers: { 'x-delivery-count': 4 } })).toBe(5);
    expect(count({ headers: { delivery_count: '3' } })).toBe(3);
    expect(count({ redelivered: true, headers: { delivery_count: '3' } })).toBe(3);
  });
  it('a dead-letter copy keeps its delivery_count as a header, not as its own count', () => {
    const m = fromWire(
      delivery({ headers: { dead_letter_reason: 'handler-failed', delivery_count: '5' } }),
      null,
      { fallbackId },
    );
    expect(m.deliveryCount).toBe(1);
    expect(m.headers).toEqual({ dead_letter_reason: 'handler-failed', delivery_count: '5' });
  });
  it('keeps a `__proto__` header of a parsed Lambda event as an own header', () => {
    const headers = JSON.parse('{"__proto__":{"bytes":[112]},"constructor":"c"}');
    const m = fromWire(delivery({ headers }), null, { fallbackId });
    expect(Object.getOwnPropertyDescriptor(m.headers, '__proto__')?.value).toBe('p');
    expect(m.headers.constructor).toBe('c');
  });
  it('gives a message id to deliveries without one', () => {
    expect(fromWire(delivery(), null, { fallbackId }).messageId).toBe('generated');
  });
  it('parses the Lambda event date format', () => {
    const m = fromWire(delivery({ timestamp: 'Jan 1, 1970, 12:33:41 AM' }), null, { fallbackId });
    expect(m.publishedAt?.getTime()).toBe(Date.UTC(1970, 0, 1, 0, 33, 41));
    expect(
      fromWire(delivery({ timestamp: 'not a date' }), null, { fallbackId }).publishedAt,
    ).toBeUndefined();
  });
});

describe('amqp wire: header values', () => {
  it('writes every AMQP value kind as text', () => {
    expect(headerText('s')).toBe('s');
    expect(headerText(10)).toBe('10');
    expect(headerText(true)).toBe('true');
    expect(headerText(12n)).toBe('12');
    expect(headerText(Buffer.from('bytes'))).toBe('bytes');
    expect(headerText({ bytes: [118, 97, 108, 117, 101, 49] })).toBe('value1');
    expect(headerText({ bytes: [-61, -87] })).toBe('é'); // Java's signed bytes
    expect(headerText({ scale: 2, value: 1234 })).toBe('12.34');
    expect(headerText(new Date(0))).toBe('1970-01-01T00:00:00.000Z');
    expect(headerText([1, 'a', { bytes: [104] }])).toBe('[1,"a","h"]');
    expect(headerText({ a: Buffer.from('x') })).toBe('{"a":"x"}');
    expect(headerText(null)).toBeUndefined();
    expect(headerText(undefined)).toBeUndefined();
  });
});

describe('amqp wire: delivered bodies', () => {
  it('keeps bytes, gives text for strings and JSON the client parsed', () => {
    const b = Buffer.from([0xff, 0]);
    expect(deliveredBody(b).body).toBe(b);
    expect(deliveredBody(b).text).toBeUndefined();
    expect(deliveredBody('héllo')).toEqual({
      body: new TextEncoder().encode('héllo'),
      text: 'héllo',
    });
    expect(deliveredBody({ a: [1, null] }).text).toBe('{"a":[1,null]}');
    expect(deliveredBody(null).text).toBe('null');
  });
});

describe('amqp wire: acks of a channel (DeliveryTags)', () => {
  const delivered = (n: number) => {
    const tags = new DeliveryTags();
    for (let t = 1; t <= n; t++) tags.delivered(t);
    return tags;
  };

  it('acks a run of settled tags in one frame with multiple, naming the highest of the batch', () => {
    const tags = delivered(5);
    expect(tags.ack([2, 1, 3])).toEqual({ upTo: 3, each: [] });
    expect(tags.ack([5, 4])).toEqual({ upTo: 5, each: [] });
  });

  it('never holds an ack back for a message still in hand: those above it go one by one', () => {
    const tags = delivered(6);
    expect(tags.ack([1, 2, 4, 5])).toEqual({ upTo: 2, each: [4, 5] });
    // 3 settles: everything up to 5 is settled, but 4 and 5 were acked already: 3 names the run
    expect(tags.ack([3])).toEqual({ upTo: 3, each: [] });
    expect(tags.ack([6])).toEqual({ upTo: 6, each: [] });
  });

  it('a nacked tag is settled without a frame and does not hold the run back', () => {
    const tags = delivered(4);
    tags.forget(1);
    expect(tags.ack([2, 3])).toEqual({ upTo: 3, each: [] });
    tags.delivered(5);
    tags.forget(4);
    expect(tags.ack([5])).toEqual({ upTo: 5, each: [] });
  });

  it('keeps only unsettled tags: a stuck message does not make it grow', () => {
    const tags = delivered(1);
    for (let t = 2; t <= 10_000; t++) {
      tags.delivered(t);
      expect(tags.ack([t]).each).toEqual([t]);
    }
    expect(tags.ack([1])).toEqual({ upTo: 1, each: [] });
  });
});
