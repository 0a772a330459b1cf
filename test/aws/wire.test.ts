/** The SQS/SNS wire mapping, as pure functions (no peer). */
import { InvalidMessageError } from 'cloudmom';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attributeNameProblem,
  decodeBody,
  encodeBody,
  measureWire,
  parseSnsEnvelope,
  sanitize,
  toIncoming,
  validateWire,
  wireAttributes,
  xmlSafe,
} from '../../adapters/aws/wire.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const out = (o: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
  body: new TextEncoder().encode('"x"'),
  target: 't',
  messageId: 'm',
  contentType: 'application/json',
  headers: {},
  ...o,
});

describe('aws wire', () => {
  it('any bytes round-trip through the body encoding, and the wire text is always carriable', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const w = encodeBody(bytes);
        expect(w.text.length).toBeGreaterThan(0);
        expect(xmlSafe(w.text)).toBe(true);
        expect(Array.from(decodeBody(w.text, w.encoding))).toEqual(Array.from(bytes));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1 }), (s) => {
        const w = encodeBody(new TextEncoder().encode(s));
        if (xmlSafe(s)) expect(w).toEqual({ text: s });
      }),
    );
  });

  it('xmlSafe is the XML 1.0 Char production, read by code point', () => {
    // the production itself, code point by code point (what SQS and SNS accept)
    const char = (c: number) =>
      c === 0x9 ||
      c === 0xa ||
      c === 0xd ||
      (c >= 0x20 && c <= 0xd7ff) ||
      (c >= 0xe000 && c <= 0xfffd) ||
      (c >= 0x10000 && c <= 0x10ffff);
    const byProduction = (s: string) => {
      for (let i = 0; i < s.length; i++) {
        const c = s.codePointAt(i)!;
        if (!char(c)) return false; // a lone surrogate reads as its own code point
        if (c > 0xffff) i++;
      }
      return true;
    };
    const edges = [
      '',
      '\t\n\r',
      '\u0000',
      '\u0008',
      '\u000b',
      '\u000c',
      '\u001f',
      ' ~\u007f',
      '\ud7ff',
      '\ud800',
      '\udbff',
      '\udc00',
      'a\ud800b',
      '\udc00\ud800',
      '\ud83d\ude00',
      '\ue000',
      '\ufffd',
      '\ufffe',
      '\uffff',
      '\u{10ffff}',
      'x'.repeat(1000) + '\uffff',
    ];
    // sanitize: each code point outside it (a lone surrogate is one) becomes U+FFFD
    const bySanitizing = (s: string) => {
      let out = '';
      for (const ch of s) out += byProduction(ch) ? ch : '\ufffd';
      return out;
    };
    for (const s of edges) {
      expect(xmlSafe(s), JSON.stringify(s)).toBe(byProduction(s));
      expect(sanitize(s), JSON.stringify(s)).toBe(bySanitizing(s));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(xmlSafe(s)).toBe(byProduction(s));
        expect(sanitize(s)).toBe(bySanitizing(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('empty header values travel in empty_headers and come back', () => {
    const m = out({ headers: { a: '', b: 'x', c: '' } });
    const attrs = Object.fromEntries(wireAttributes(m));
    expect(attrs.empty_headers).toBe('a,c');
    expect('a' in attrs).toBe(false);
    const back = toIncoming({
      text: '"x"',
      attributes: attrs,
      messageId: 'id',
      deliveryCount: 1,
      raw: null,
    });
    expect(back.headers).toEqual({ a: '', b: 'x', c: '' });
  });

  it('validates attribute names, values and count', () => {
    expect(attributeNameProblem('ok-name_1.x')).toBeUndefined();
    for (const bad of ['', 'a b', '.a', 'a.', 'a..b', 'aws.x', 'Amazon.y', 'ü', 'x'.repeat(257)])
      expect(attributeNameProblem(bad), bad).toBeDefined();
    const headers = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`h${i}`, 'v']));
    expect(() => validateWire(out({ headers }), 'SQS')).not.toThrow();
    expect(() => validateWire(out({ headers, correlationId: 'c' }), 'SQS')).toThrow(
      InvalidMessageError,
    );
    // SNS also carries message_id
    expect(() => validateWire(out({ headers }), 'SNS', { messageId: true })).toThrow(/at most 10/);
    expect(() => validateWire(out({ target: 'a\u0000b' }), 'SQS')).toThrow(/target/);
  });

  it('measures body and attributes as SQS counts them', () => {
    const m = out({ body: new Uint8Array(300), headers: { k: 'vv' } });
    const base64 = Math.ceil(300 / 3) * 4;
    const attrs = wireAttributes(m);
    const expected =
      base64 + attrs.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 6, 0);
    expect(measureWire(m)).toBe(expected);
  });

  const copy = (o: Partial<OutgoingMessage> = {}): OutgoingMessage =>
    out({
      deadLetter: { code: 'handler-failed', description: 'Error: \u0000 bad', deliveryCount: 3 },
      ...o,
    });
  const readBack = (m: OutgoingMessage) =>
    toIncoming({
      text: '"x"',
      attributes: Object.fromEntries(wireAttributes(m)),
      messageId: 'sqs-id',
      deliveryCount: 1,
      raw: null,
    });

  it('dead-letter copies carry the reason, the original id and the delivery count where room', () => {
    const attrs = new Map(wireAttributes(copy({ headers: { tenant: 'a' } })));
    expect(attrs.get('dead_letter_reason')).toBe('handler-failed');
    expect(xmlSafe(attrs.get('dead_letter_description')!)).toBe(true);
    expect(attrs.get('message_id')).toBe('m');
    expect(attrs.get('delivery_count')).toBe('3');
    expect(attrs.get('tenant')).toBe('a');
    const back = readBack(copy({ headers: { tenant: 'a' } }));
    expect(back.headers).toEqual({ tenant: 'a' });
    expect(back.messageId).toBe('m');
  });

  it('a dead-letter copy of a message without target carries none (empty target accepted)', () => {
    const attrs = new Map(wireAttributes(copy({ target: '' })));
    expect(attrs.has('target')).toBe(false);
    expect(readBack(copy({ target: '' })).target).toBeUndefined();
  });

  it('dead-letter attributes stay within 10 by packing headers', () => {
    const headers = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`h${i}`, `v${i}`]));
    const attrs = wireAttributes(copy({ headers }));
    expect(attrs.length).toBeLessThanOrEqual(10);
    const map = new Map(attrs);
    expect(JSON.parse(map.get('dead_letter_headers')!)).toEqual(headers);
    expect(readBack(copy({ headers })).headers).toEqual(headers);
  });

  it('dead-letter copies pack headers that cannot be attributes of their own, __proto__ included', () => {
    const headers: Record<string, string> = Object.create(null);
    const proto = '__proto__';
    headers[proto] = 'p'; // an own property: the object has no prototype
    headers['with space'] = 'x';
    headers.ctl = 'bell\u0007';
    const attrs = wireAttributes(copy({ headers }));
    expect(attrs.length).toBeLessThanOrEqual(10);
    for (const [k, v] of attrs) {
      expect(attributeNameProblem(k), k).toBeUndefined();
      expect(xmlSafe(v), k).toBe(true);
    }
    expect(attrs.map(([k]) => k)).not.toContain('__proto__');
    const back = readBack(copy({ headers }));
    expect(Object.keys(back.headers).sort()).toEqual(['__proto__', 'ctl', 'with space']);
    expect(Object.getOwnPropertyDescriptor(back.headers, '__proto__')?.value).toBe('p');
    expect(back.headers.ctl).toBe('bell\u0007');
  });

  it('an unknown body_encoding marks the message poison (undecodable), not an exception', () => {
    const m = toIncoming({
      text: 'x',
      attributes: { target: 't', body_encoding: 'rot13' },
      messageId: 'id',
      deliveryCount: 1,
      raw: null,
    });
    expect(m.poison?.code).toBe('undecodable');
  });

  it('a header named __proto__ round-trips as a plain header', () => {
    const back = toIncoming({
      text: '1',
      attributes: JSON.parse('{"__proto__":"x","y":"z"}'),
      messageId: 'id',
      deliveryCount: 1,
      raw: null,
    });
    expect(Object.keys(back.headers).sort()).toEqual(['__proto__', 'y']);
    expect(Object.getOwnPropertyDescriptor(back.headers, '__proto__')?.value).toBe('x');
  });

  it('recognises SNS envelopes only', () => {
    const env = {
      Type: 'Notification',
      MessageId: 'id',
      TopicArn: 'arn:aws:sns:us-east-1:1:t',
      Message: 'hi',
    };
    expect(parseSnsEnvelope(JSON.stringify(env))?.Message).toBe('hi');
    expect(parseSnsEnvelope(JSON.stringify({ ...env, Type: 'SubscriptionConfirmation' }))).toBe(
      undefined,
    );
    expect(parseSnsEnvelope('{"TopicArn": broken')).toBeUndefined();
    expect(parseSnsEnvelope('"TopicArn"')).toBeUndefined();
  });
});
