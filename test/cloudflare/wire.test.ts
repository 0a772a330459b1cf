import { describe, expect, it } from 'vitest';
import {
  deadLetterInfo,
  ENVELOPE_VERSION,
  type Envelope,
  encode,
  fromBase64,
  fromQueueMessage,
  LIMITS,
  measure,
  type QueueMessage,
  toBase64,
  toEnvelope,
  validate,
} from '../../adapters/cloudflare/wire.ts';
import { InvalidMessageError } from '../../src/errors.ts';
import type { OutgoingMessage } from '../../src/transport.ts';

const utf8 = new TextEncoder();
const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BYTES_TYPE = 'application/octet-stream';

function out(body: Uint8Array | string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    body: typeof body === 'string' ? utf8.encode(body) : body,
    target: 'orders',
    messageId: 'm-1',
    contentType: typeof body === 'string' ? JSON_TYPE : BYTES_TYPE,
    headers: {},
    ...extra,
  };
}

/** The envelope as a consumer receives it (content type `json`: through JSON). */
function delivered(m: OutgoingMessage, attempts = 1): QueueMessage {
  return {
    id: 'cf-id',
    timestamp: new Date(1_700_000_000_000),
    attempts,
    body: JSON.parse(JSON.stringify(toEnvelope(m))),
  };
}

function roundTrip(m: OutgoingMessage) {
  const r = fromQueueMessage(delivered(m));
  return { ...r, bytes: Array.from(r.body) };
}

describe('cloudflare wire: the envelope', () => {
  it('carries cloudmom attributes under their WIRE names, user headers beside them', () => {
    const e = toEnvelope(
      out('{"id":7}', {
        correlationId: 'c-1',
        replyTo: 'replies',
        headers: { 'x-tenant': 'a', traceparent: '00-abc-def-01' },
      }),
    );
    expect(e).toEqual({
      cloudmom: 1,
      attributes: {
        'x-tenant': 'a',
        traceparent: '00-abc-def-01',
        target: 'orders',
        message_id: 'm-1',
        content_type: JSON_TYPE,
        correlation_id: 'c-1',
        reply_to: 'replies',
      },
      body: { id: 7 },
    });
  });

  it('JSON bodies travel as values when canonical, else as text (bytes kept exactly)', () => {
    expect(toEnvelope(out('[1,"two",null]')).body).toEqual([1, 'two', null]);
    expect(toEnvelope(out('42')).body).toBe(42);
    expect(toEnvelope(out('null'))).toHaveProperty('body', null);
    // not canonical (spaces, big integers, 1.0) or not JSON: text, so the bytes survive
    for (const text of ['{ "a": 1 }', '12345678901234567890', '1.0', '{not json', '']) {
      const e = toEnvelope(out(text));
      expect(e.text).toBe(text);
      expect(e).not.toHaveProperty('body');
      expect(new TextDecoder().decode(roundTrip(out(text)).body)).toBe(text);
    }
  });

  it('text bodies travel as text, BOM and all; invalid UTF-8 as base64', () => {
    const t = out('\ufeffHello ✓ 日本', { contentType: TEXT_TYPE });
    expect(toEnvelope(t).text).toBe('\ufeffHello ✓ 日本');
    expect(roundTrip(t).bytes).toEqual(Array.from(t.body));
    const bad = out(new Uint8Array([0x68, 0xc3, 0x28]), { contentType: TEXT_TYPE });
    expect(toEnvelope(bad).base64).toBe('aMMo');
    expect(roundTrip(bad).bytes).toEqual([0x68, 0xc3, 0x28]);
  });

  it('octet-stream bodies always travel as base64, non-UTF-8 and empty included', () => {
    const bytes = new Uint8Array([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0xc3, 0x28]);
    expect(toEnvelope(out(bytes)).base64).toBe(toBase64(bytes));
    expect(roundTrip(out(bytes)).bytes).toEqual(Array.from(bytes));
    expect(toEnvelope(out(utf8.encode('plain ascii'))).base64).toBe(btoa('plain ascii'));
    expect(toEnvelope(out(new Uint8Array(0))).base64).toBe('');
    expect(roundTrip(out(new Uint8Array(0))).bytes).toEqual([]);
  });

  it('a custom content type keeps its bytes (text when UTF-8, else base64)', () => {
    const csv = out('a,1\nb,2', { contentType: 'text/csv' });
    expect(toEnvelope(csv).text).toBe('a,1\nb,2');
    const r = roundTrip(csv);
    expect(r.contentType).toBe('text/csv');
    expect(r.text).toBe('a,1\nb,2');
  });

  it('a received envelope gives the message back: ids, headers, attempts, timestamp', () => {
    const m = out('{"id":7}', {
      correlationId: 'c-1',
      replyTo: 'replies',
      headers: { 'x-tenant': 'a', '': 'empty name', 'with space': ' padded ' },
    });
    const r = fromQueueMessage(delivered(m, 3), { ackId: 'lease-1', source: 'q' });
    expect(r).toMatchObject({
      target: 'orders',
      messageId: 'm-1',
      correlationId: 'c-1',
      replyTo: 'replies',
      contentType: JSON_TYPE,
      headers: { 'x-tenant': 'a', '': 'empty name', 'with space': ' padded ' },
      deliveryCount: 3,
      publishedAt: new Date(1_700_000_000_000),
      ackId: 'lease-1',
      source: 'q',
      text: '{"id":7}',
    });
    expect(r.poison).toBeUndefined();
    expect(new TextDecoder().decode(r.body)).toBe('{"id":7}');
  });

  it('headers named __proto__ and constructor are data: carried and read back as own properties', () => {
    const headers: Record<string, string> = {};
    Object.defineProperty(headers, '__proto__', {
      value: 'p',
      enumerable: true,
      writable: true,
      configurable: true,
    });
    Object.assign(headers, { constructor: 'c' });
    const m = out('1', { headers });
    const e = toEnvelope(m);
    expect(Object.keys(e.attributes)).toEqual(expect.arrayContaining(['__proto__', 'constructor']));
    expect(JSON.stringify(e)).toContain('"__proto__":"p"');
    const r = fromQueueMessage(delivered(m));
    expect(Object.getPrototypeOf(r.headers)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(r.headers, '__proto__')?.value).toBe('p');
    expect(Object.getOwnPropertyDescriptor(r.headers, 'constructor')?.value).toBe('c');
  });

  it('an envelope that came as text (content type text, the HTTP API) is read the same', () => {
    const m = out('{"id":7}');
    const r = fromQueueMessage({
      id: 'x',
      timestamp: new Date(),
      attempts: 1,
      body: JSON.stringify(toEnvelope(m)),
    });
    expect(r.target).toBe('orders');
    expect(r.text).toBe('{"id":7}');
  });

  it('without a message_id the queue message id is the message id; empty target is none', () => {
    const r = fromQueueMessage({
      id: 'cf-id',
      timestamp: new Date(),
      attempts: 1,
      body: { cloudmom: 1, attributes: { target: '' }, body: 1 },
    });
    expect(r.messageId).toBe('cf-id');
    expect(r.target).toBeUndefined();
    expect(r.poison).toBeUndefined();
  });

  it('dead-letter copies carry the reason, description and delivery count; empty target allowed', () => {
    const copy = out('{"order":7}', {
      target: '',
      deadLetter: { code: 'handler-failed', description: 'TypeError: boom', deliveryCount: 5 },
    });
    const e = toEnvelope(copy);
    expect(e.attributes).toEqual({
      message_id: 'm-1',
      content_type: JSON_TYPE,
      dead_letter_reason: 'handler-failed',
      dead_letter_description: 'TypeError: boom',
      delivery_count: '5',
    });
    const r = fromQueueMessage(delivered(copy));
    expect(r.target).toBeUndefined();
    expect(deadLetterInfo(r.headers)).toEqual({
      code: 'handler-failed',
      description: 'TypeError: boom',
      deliveryCount: 5,
    });
    expect(deadLetterInfo({})).toMatchObject({ code: 'max-deliveries' });
  });
});

describe('cloudflare wire: poison on receipt (never throws)', () => {
  const at = (body: unknown) =>
    fromQueueMessage({ id: 'cf-id', timestamp: new Date(), attempts: 1, body });

  it.each([
    ['a JSON object without envelope', { orderId: 1 }, /without the cloudmom envelope/, JSON_TYPE],
    ['a JSON array', [1, 2], /without the cloudmom envelope/, JSON_TYPE],
    ['a number', 42, /without the cloudmom envelope/, JSON_TYPE],
    ['null', null, /without the cloudmom envelope/, JSON_TYPE],
    ['text that is not JSON', 'hello', /text body that is not JSON/, TEXT_TYPE],
    ['JSON text that is no envelope', '{"a":1}', /not a cloudmom envelope/, TEXT_TYPE],
    ['bytes', new Uint8Array([1, 2]).buffer, /bytes body/, BYTES_TYPE],
    ['a typed array (v8)', new Uint8Array([1, 2]), /bytes body/, BYTES_TYPE],
    ['a newer envelope', { cloudmom: 2, attributes: {}, body: 1 }, /version 2/, JSON_TYPE],
    ['no attributes', { cloudmom: 1, body: 1 }, /no attributes/, JSON_TYPE],
    ['array attributes', { cloudmom: 1, attributes: [], body: 1 }, /no attributes/, JSON_TYPE],
    [
      'a non-string attribute',
      { cloudmom: 1, attributes: { target: 7 }, body: 1 },
      /"target" is not a string/,
      JSON_TYPE,
    ],
  ])('%s → undecodable, its own body kept', (_name, body, description, contentType) => {
    const r = at(body);
    expect(r.poison?.code).toBe('undecodable');
    expect(r.poison?.description).toMatch(description);
    expect(r.contentType).toBe(contentType);
    expect(r.messageId).toBe('cf-id');
    expect(r.body).toBeInstanceOf(Uint8Array);
  });

  it('an envelope without a body, or with bad base64, is undecodable but keeps its target', () => {
    const none = at({ cloudmom: 1, attributes: { target: 't' } });
    expect(none.poison?.description).toMatch(/no body/);
    expect(none.target).toBe('t');
    const bad = at({ cloudmom: 1, attributes: { target: 't' }, base64: '%%%' });
    expect(bad.poison?.description).toMatch(/not valid base64/);
    expect(bad.target).toBe('t');
  });

  it('a missing target is not poison here: the core dead-letters it as missing-target', () => {
    const r = at({ cloudmom: 1, attributes: { content_type: JSON_TYPE }, body: { a: 1 } });
    expect(r.poison).toBeUndefined();
    expect(r.target).toBeUndefined();
  });
});

describe('cloudflare wire: sizes and limits', () => {
  it('measures the envelope as Cloudflare counts it: UTF-8 JSON plus 100 bytes of metadata', () => {
    const m = out('"ünï ✓"', { headers: { 'x-ü': '日本' } });
    expect(measure(m)).toBe(utf8.encode(JSON.stringify(toEnvelope(m))).byteLength + 100);
    expect(encode(m)).toBe(encode(m)); // built once per message
  });

  it('a bytes body fits up to ~95.8 KB (base64), a JSON or text body up to ~127.8 KB', () => {
    const largest = (make: (n: number) => OutgoingMessage) => {
      let lo = 0;
      let hi = LIMITS.messageBytes;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (measure(make(mid)) <= LIMITS.messageBytes) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    };
    const bytes = largest((n) => out(new Uint8Array(n)));
    const text = largest((n) => out('x'.repeat(n), { contentType: TEXT_TYPE }));
    expect(bytes).toBeGreaterThan(95_700);
    expect(bytes).toBeLessThan(95_900);
    expect(text).toBeGreaterThan(127_750);
    expect(text).toBeLessThan(127_900);
  });

  it('delaySeconds: an integer from 0 to 12 h', () => {
    expect(() => validate(out('1', { delaySeconds: 0 }))).not.toThrow();
    expect(() => validate(out('1', { delaySeconds: 43_200 }))).not.toThrow();
    for (const d of [-1, 43_201, 1.5, Number.NaN])
      expect(() => validate(out('1', { delaySeconds: d }))).toThrow(InvalidMessageError);
  });
});

describe('cloudflare wire: base64 without Buffer', () => {
  it('round-trips every byte value and refuses what is not base64', () => {
    const all = new Uint8Array(256 * 3).map((_, i) => i % 256);
    const s = toBase64(all);
    expect(s).toBe(Buffer.from(all).toString('base64'));
    expect(Array.from(fromBase64(s)!)).toEqual(Array.from(all));
    expect(fromBase64('not base64!')).toBeUndefined();
    expect(Array.from(fromBase64('')!)).toEqual([]);
  });

  it('the envelope version is 1', () => {
    const e: Envelope = toEnvelope(out('1'));
    expect(e.cloudmom).toBe(ENVELOPE_VERSION);
    expect(ENVELOPE_VERSION).toBe(1);
  });
});
