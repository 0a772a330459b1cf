/** The Kafka wire mapping as pure functions: records out, records in, addresses, limits. */
import { InvalidMessageError } from 'cloudmom';
import {
  deadLetterOf,
  fromRecord,
  parseAddress,
  replyAddress,
  toRecord,
  type WireRecord,
} from 'cloudmom/kafka';
import { describe, expect, it } from 'vitest';
import { measure, recordId } from '../../adapters/kafka/wire.ts';
import { OffsetTracker } from '../../src/sources.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const enc = (s: string) => new TextEncoder().encode(s);

function out(m: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    body: enc('{"a":1}'),
    target: 'orders',
    messageId: 'm-1',
    contentType: 'application/json',
    headers: {},
    ...m,
  };
}

function headersOf(r: ReturnType<typeof toRecord>): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of r.headers) h[k.toString('utf8')] = v.toString('utf8');
  return h;
}

/** A received record from an outgoing one, as Kafka would hand it back. */
function roundTrip(m: OutgoingMessage, extra: Partial<WireRecord> = {}): WireRecord {
  const r = toRecord(m, 'orders');
  return {
    topic: r.topic,
    partition: 2,
    offset: 41n,
    timestamp: 1_700_000_000_000n,
    key: r.key ?? null,
    value: r.value,
    headers: [...r.headers],
    ...extra,
  };
}

describe('kafka wire: records out', () => {
  it('puts the target and the reserved names in headers, the body in the value, the group key in the key', () => {
    const r = toRecord(
      out({
        headers: { 'x-tenant': 'a', 'ünï code': 'v ✓' },
        correlationId: 'c-1',
        replyTo: 'cloudmom-replies#abc',
        groupKey: 'customer-7',
      }),
      'orders',
    );
    expect(r.topic).toBe('orders');
    expect(r.key?.toString()).toBe('customer-7');
    expect(r.value.toString()).toBe('{"a":1}');
    expect(headersOf(r)).toEqual({
      'x-tenant': 'a',
      'ünï code': 'v ✓',
      target: 'orders',
      content_type: 'application/json',
      message_id: 'm-1',
      correlation_id: 'c-1',
      reply_to: 'cloudmom-replies#abc',
    });
  });

  it('sends to the destination topic; a reply address gives the record its key', () => {
    const r = toRecord(out({ destination: 'cloudmom-replies#inst-1', groupKey: 'g' }), 'orders');
    expect(r.topic).toBe('cloudmom-replies');
    expect(r.key?.toString()).toBe('inst-1');
    expect(toRecord(out({ destination: 'other' }), 'orders').topic).toBe('other');
    expect(toRecord(out(), 'orders').key).toBeUndefined();
  });

  it('a dead-letter copy carries reason, description and delivery count, and may have no target', () => {
    const r = toRecord(
      out({
        target: '',
        destination: 'orders.dlt',
        groupKey: 'k',
        deadLetter: { code: 'handler-failed', description: 'TypeError: boom', deliveryCount: 3 },
      }),
      'orders',
    );
    const h = headersOf(r);
    expect(r.topic).toBe('orders.dlt');
    expect(r.key?.toString()).toBe('k');
    expect(h.target).toBeUndefined();
    expect(h).toMatchObject({
      dead_letter_reason: 'handler-failed',
      dead_letter_description: 'TypeError: boom',
      delivery_count: '3',
    });
    expect(deadLetterOf({ headers: [...r.headers] })).toEqual({
      code: 'handler-failed',
      description: 'TypeError: boom',
      deliveryCount: 3,
    });
    expect(deadLetterOf({ headers: [] })).toBeUndefined();
  });

  it('keeps bytes as they are (no copy of a Buffer, a view of a Uint8Array)', () => {
    const bytes = new Uint8Array([0, 0xff, 0xc3, 0x28]);
    const r = toRecord(out({ body: bytes, contentType: 'application/octet-stream' }), 'orders');
    expect([...r.value]).toEqual([0, 0xff, 0xc3, 0x28]);
    expect(r.value.buffer).toBe(bytes.buffer);
  });

  it('measures value, key and every header name and value', () => {
    const m = out({ headers: { ab: 'cd' }, groupKey: 'key', correlationId: 'c' });
    const r = toRecord(m, 'orders');
    let n = r.value.byteLength + (r.key?.byteLength ?? 0);
    for (const [k, v] of r.headers) n += k.byteLength + v.byteLength;
    expect(measure(m)).toBe(n);
    const reply = out({ destination: 'replies#xyz' });
    expect(measure(reply)).toBe(measure(out()) + 3);
  });
});

describe('kafka wire: addresses', () => {
  it('parses topics and reply addresses, refuses malformed ones', () => {
    expect(parseAddress('orders.v1_x-y')).toEqual({ topic: 'orders.v1_x-y' });
    expect(parseAddress(replyAddress('replies', 'k-1'))).toEqual({ topic: 'replies', key: 'k-1' });
    for (const bad of ['', 'has space', 'slash/topic', 'x'.repeat(250), 'replies#', '..', '#k'])
      expect(() => parseAddress(bad), bad).toThrow(InvalidMessageError);
  });
});

describe('kafka wire: records in', () => {
  it('round-trips every field', () => {
    const m = fromRecord(
      roundTrip(
        out({
          headers: { 'x-tenant': 'a', traceparent: '00-abc-def-01' },
          correlationId: 'c-1',
          replyTo: 'r#1',
          groupKey: 'g',
        }),
      ),
      'RAW',
      { ackId: 'ACK' },
    );
    expect(m).toMatchObject({
      target: 'orders',
      messageId: 'm-1',
      contentType: 'application/json',
      headers: { 'x-tenant': 'a', traceparent: '00-abc-def-01' },
      correlationId: 'c-1',
      replyTo: 'r#1',
      deliveryCount: 1,
      groupKey: 'g',
      ackId: 'ACK',
      source: 'orders',
      raw: 'RAW',
    });
    expect(m.publishedAt?.getTime()).toBe(1_700_000_000_000);
    expect(new TextDecoder().decode(m.body)).toBe('{"a":1}');
    expect(m.poison).toBeUndefined();
  });

  it('a foreign record: no target, an id from topic/partition/offset, no key, null value', () => {
    const m = fromRecord(
      { topic: 't', partition: 1, offset: 9n, key: null, value: null, headers: [], timestamp: -1n },
      null,
    );
    expect(m.target).toBeUndefined();
    expect(m.messageId).toBe(recordId('t', 1, 9n));
    expect(m.messageId).toBe('t/1/9');
    expect(m.groupKey).toBeUndefined();
    expect(m.body.byteLength).toBe(0);
    expect(m.publishedAt).toBeUndefined();
    expect(m.contentType).toBeUndefined();
  });

  it('an empty key is no group key; a later header of the same name wins; null header values are empty', () => {
    const m = fromRecord(
      {
        topic: 't',
        partition: 0,
        offset: 0n,
        key: new Uint8Array(0),
        value: enc('x'),
        headers: [
          [enc('target'), enc('first')],
          [enc('target'), enc('second')],
          [enc('h'), null],
          [null, enc('nameless')],
        ],
      },
      null,
    );
    expect(m.groupKey).toBeUndefined();
    expect(m.target).toBe('second');
    expect(m.headers).toEqual({ h: '' });
  });

  it('own headers that are not UTF-8 make the message poison; user headers are decoded with replacements', () => {
    const bad = new Uint8Array([0xc3, 0x28]);
    const m = fromRecord(
      {
        topic: 't',
        partition: 0,
        offset: 0n,
        key: null,
        value: enc('x'),
        headers: [
          [enc('target'), bad],
          [enc('user'), bad],
        ],
      },
      null,
    );
    expect(m.poison).toEqual({
      code: 'undecodable',
      description: 'header "target" is not valid UTF-8',
    });
    expect(m.headers.user).toBe('\ufffd(');
  });

  it('reserved names on a record (a dead-letter copy read back) are not user headers', () => {
    const m = fromRecord(
      roundTrip(
        out({
          destination: 'orders.dlt',
          deadLetter: { code: 'max-deliveries', description: 'd', deliveryCount: 5 },
        }),
      ),
      null,
    );
    expect(m.headers).toEqual({});
    expect(m.deliveryCount).toBe(1);
  });
});

describe('kafka commit watermarks (the core OffsetTracker; the Kafka source now keeps its own per-partition flags, covered by the conformance, chaos and rebalance tests)', () => {
  it('commit one past the longest settled prefix on random out-of-order settlement', () => {
    for (let run = 0; run < 200; run++) {
      const core = new OffsetTracker();
      const offsets: bigint[] = [];
      let o = BigInt(Math.floor(Math.random() * 5));
      for (let i = 0; i < 60; i++) {
        offsets.push(o);
        core.received('t:0', o);
        o += BigInt(1 + Math.floor(Math.random() * 3)); // gaps: compaction, control records
      }
      const order = [...offsets, offsets[3]!].sort(() => Math.random() - 0.5); // one settled twice
      const settled = new Set<bigint>();
      let prefix = 0;
      for (const x of order) {
        const again = settled.has(x);
        settled.add(x);
        const before = prefix;
        while (prefix < offsets.length && settled.has(offsets[prefix]!)) prefix++;
        const expected =
          again || prefix === before
            ? undefined
            : prefix === offsets.length
              ? offsets[offsets.length - 1]! + 1n
              : offsets[prefix];
        expect(core.settled('t:0', x)).toBe(expected);
      }
    }
    const w = new OffsetTracker();
    expect(w.settled('none', 1n)).toBeUndefined();
    w.received('p', 5n);
    w.forget('p');
    expect(w.settled('p', 5n)).toBeUndefined();
  });
});
